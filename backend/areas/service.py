"""Reading, creating and changing areas, and assigning a point to its grid."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import shapely
from geoalchemy2.elements import WKBElement
from shapely.geometry import MultiPolygon
from shapely.geometry.base import BaseGeometry
from sqlalchemy import ColumnElement, func, insert, select, text, update
from sqlalchemy.orm import Session

from backend.areas.models import CODE_LENGTH, GRID_KINDS, Area
from backend.common.fields import to_shape, to_wkb
from backend.db import driver_rows
from backend.errors import Conflict, NotFound, ValidationFailed, field_error
from geo import validate

PARENT_LEVEL = {"town": "district", "village": "town", "grid": "village"}
LEVEL_OF_LENGTH = {length: level for level, length in CODE_LENGTH.items()}


def level_of(code: str) -> str | None:
    """The level a code of this shape names, or None."""
    return LEVEL_OF_LENGTH.get(len(code)) if code.isdigit() and code.isascii() else None


def parent_code_of(code: str) -> str | None:
    level = level_of(code)
    if level is None or level == "district":
        return None
    return code[: CODE_LENGTH[PARENT_LEVEL[level]]]


def ancestor_codes(code: str) -> list[str]:
    """Codes of the district, town and village above `code` (top first)."""
    return [code[:n] for n in CODE_LENGTH.values() if n < len(code)]


def code_at(code: str, level: str) -> str:
    """The code of the area at `level` that holds `code` (itself at its own level)."""
    return code[: CODE_LENGTH[level]]


def current() -> ColumnElement[bool]:
    return Area.valid_to.is_(None)


def get_area(session: Session, code: str) -> Area:
    """The current version of an area, or NotFound."""
    area = None
    if level_of(code) is not None:
        area = session.scalars(select(Area).where(Area.code == code, current())).first()
    if area is None:
        raise NotFound(f"No area with code {code}.")
    return area


def get_areas(session: Session, codes: Iterable[str]) -> dict[str, Area]:
    codes = list(codes)
    if not codes:
        return {}
    rows = session.scalars(select(Area).where(Area.code.in_(codes), current()))
    return {area.code: area for area in rows}


def list_areas(
    session: Session,
    *,
    level: str | None = None,
    parent: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    after_code: str | None = None,
    limit: int = 100,
) -> list[Area]:
    """Current areas ordered by code, filtered in SQL."""
    query = select(Area).where(current()).order_by(Area.code).limit(limit)
    if level:
        query = query.where(Area.level == level)
    if parent:
        query = query.where(Area.parent_code == parent)
    if bbox:
        query = query.where(func.ST_Intersects(Area.geom, func.ST_MakeEnvelope(*bbox, 4326)))
    if after_code:
        query = query.where(Area.code > after_code)
    return list(session.scalars(query))


@dataclass(frozen=True)
class AreaInput:
    code: str
    name: str
    geometry: BaseGeometry
    level: str | None = None
    kind: str | None = None


def create_area(session: Session, data: AreaInput, *, tolerance_m: float = 1.0) -> Area:
    """Validate and add a new area under its (existing) parent."""
    level = _check_code(data.code, data.level)
    if session.scalar(select(Area.id).where(Area.code == data.code, current())) is not None:
        raise Conflict(f"Area {data.code} already exists.", code=data.code)
    _check_kind(level, data.kind)
    geometry = _checked_geometry(session, data.code, data.geometry, tolerance_m)
    area = Area(
        code=data.code,
        level=level,
        name=data.name,
        parent_code=parent_code_of(data.code),
        kind=data.kind if level == "grid" else None,
        geom=to_wkb(geometry),
    )
    session.add(area)
    session.flush()
    return area


def update_area(
    session: Session,
    code: str,
    *,
    name: str | None = None,
    kind: str | None = None,
    geometry: BaseGeometry | None = None,
    tolerance_m: float = 1.0,
) -> Area:
    """Rename an area in place; a new boundary closes this version and opens another."""
    area = get_area(session, code)
    if kind is not None:
        _check_kind(area.level, kind)
    if geometry is None:
        if name is not None:
            area.name = name
        if kind is not None:
            area.kind = kind
        session.flush()
        return area
    checked = _checked_geometry(session, code, geometry, tolerance_m)
    _check_children_inside(session, code, checked, tolerance_m)
    now = session.scalar(select(func.now()))
    session.execute(update(Area).where(Area.id == area.id).values(valid_to=now))
    session.flush()
    new = Area(
        code=area.code,
        level=area.level,
        name=name if name is not None else area.name,
        parent_code=area.parent_code,
        kind=kind if kind is not None else area.kind,
        geom=to_wkb(checked),
        valid_from=now,
    )
    session.expire(area)
    session.add(new)
    session.flush()
    return new


def _check_code(code: str, level: str | None) -> str:
    derived = level_of(code)
    if derived is None:
        raise ValidationFailed(
            f"Code {code!r} is not a 6, 9, 12 or 15-digit area code.",
            errors=[field_error("code", "Must be 6 (district), 9 (town), 12 (village) or 15 (grid) digits.")],
        )
    if level is not None and level != derived:
        raise ValidationFailed(
            f"Code {code} is a {derived} code, not a {level} code.",
            errors=[field_error("level", f"A {len(code)}-digit code is a {derived}.")],
        )
    return derived


def _check_kind(level: str, kind: str | None) -> None:
    if kind is not None and (level != "grid" or kind not in GRID_KINDS):
        raise ValidationFailed(
            "Only grids have a kind: comprehensive or dedicated.",
            errors=[field_error("kind", f"Must be one of {', '.join(GRID_KINDS)} on a grid.")],
        )


def _checked_geometry(
    session: Session, code: str, geometry: BaseGeometry, tolerance_m: float
) -> MultiPolygon:
    """Check validity, nesting in the parent and overlap with siblings; return a MultiPolygon."""
    problem = validate.invalidity(geometry)
    if problem is not None:
        raise _geometry_failed(f"The boundary of {code} is not a valid polygon: {problem.message}.", problem)
    multi = validate.to_multipolygon(geometry)
    parent = parent_code_of(code)
    if parent is not None:
        parent_area = session.scalars(select(Area).where(Area.code == parent, current())).first()
        if parent_area is None:
            raise ValidationFailed(
                f"The parent area {parent} of {code} does not exist.",
                errors=[field_error("code", f"No parent area {parent}.", parent=parent)],
            )
        problem = validate.outside_parent(multi, to_shape(parent_area.geom), tolerance_m)
        if problem is not None:
            raise _geometry_failed(
                f"Area {code} is not within its parent {parent}: {problem.message}.",
                problem,
                parent=parent,
            )
    for sibling_code, sibling_geom in _siblings_touching(session, code, parent, multi):
        problem = validate.overlap(multi, to_shape(sibling_geom), tolerance_m**2)
        if problem is not None:
            raise _geometry_failed(
                f"Area {code} overlaps its sibling {sibling_code}: {problem.message}.",
                problem,
                conflicts_with=sibling_code,
            )
    return multi


def _siblings_touching(
    session: Session, code: str, parent: str | None, geometry: MultiPolygon
) -> Sequence[tuple[str, WKBElement]]:
    level = level_of(code)
    query = select(Area.code, Area.geom).where(
        current(),
        Area.level == level,
        Area.code != code,
        func.ST_Intersects(Area.geom, func.ST_GeomFromWKB(shapely.to_wkb(geometry), 4326)),
    )
    if parent is not None:
        query = query.where(Area.parent_code == parent)
    return [(row.code, row.geom) for row in session.execute(query)]


def _check_children_inside(session: Session, code: str, geometry: MultiPolygon, tolerance_m: float) -> None:
    children = session.execute(select(Area.code, Area.geom).where(Area.parent_code == code, current()))
    for child_code, child_geom in children:
        problem = validate.outside_parent(to_shape(child_geom), geometry, tolerance_m)
        if problem is not None:
            raise _geometry_failed(
                f"The new boundary of {code} would leave its child {child_code} outside: {problem.message}.",
                problem,
                child=child_code,
            )


def _geometry_failed(detail: str, problem: validate.Problem, **extra: str) -> ValidationFailed:
    at = list(problem.location) if problem.location else None
    return ValidationFailed(
        detail,
        errors=[field_error("geometry", problem.message, kind=problem.kind, at=at, **extra)],
    )


def insert_trusted(session: Session, rows: Sequence[dict[str, object]]) -> int:
    """Bulk-insert generated areas (code, level, name, parent_code, kind, geometry) unchecked."""
    if not rows:
        return 0
    session.execute(
        insert(Area),
        [
            {
                "code": row["code"],
                "level": row["level"],
                "name": row["name"],
                "parent_code": row["parent_code"],
                "kind": row.get("kind"),
                "geom": to_wkb(row["geometry"]),  # type: ignore[arg-type]
            }
            for row in rows
        ],
    )
    return len(rows)


def count_areas(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Area).where(current())) or 0


# --- assignment by polygon lookup -------------------------------------------------------------

# One round trip whatever the outcome: PostgreSQL runs UNION ALL branches in order and stops at
# the first row, so a covered point (the usual case) costs only the first branch. The nearest
# branch finds candidates by KNN on the GiST index, then the true distance in metres decides.
_POINT = "ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)"
# The point is written out in each branch (not a CTE) so each can use its GiST index.
_ASSIGN = (
    "(SELECT 'contains' AS method, id, code, NULL::float8 AS distance FROM areas"
    f" WHERE level = 'grid' AND valid_to IS NULL AND ST_Covers(geom, {_POINT})"
    "  ORDER BY code LIMIT 1)"
    " UNION ALL"
    " (SELECT 'nearest', id, code, distance FROM ("
    f"   SELECT id, code, ST_Distance(geom::geography, {_POINT}::geography) AS distance"
    "   FROM areas WHERE level = 'grid' AND valid_to IS NULL"
    f"   ORDER BY geom <-> {_POINT} LIMIT 8) candidates"
    "  WHERE distance <= :radius ORDER BY distance, code LIMIT 1)"
    " UNION ALL"
    " (SELECT 'unassigned', NULL, code, NULL FROM areas"
    f"  WHERE level = 'district' AND valid_to IS NULL AND ST_Covers(geom, {_POINT})"
    "  ORDER BY code LIMIT 1)"
    " LIMIT 1"
)


@dataclass(frozen=True)
class Assignment:
    """Where a point landed: its grid (if any), how, and the boundary version used."""

    method: str
    grid_code: str | None = None
    boundary_id: int | None = None
    distance_m: float | None = None
    district_code: str | None = None

    @property
    def codes(self) -> dict[str, str | None]:
        """The grid and its village, town and district codes (all None when unassigned)."""
        code = self.grid_code
        return {
            "grid": code,
            "village": code[:12] if code else None,
            "town": code[:9] if code else None,
            "district": code[:6] if code else self.district_code,
        }


def assign_point(
    session: Session, lon: float, lat: float, *, accuracy_m: float | None, nearest_min_m: float
) -> Assignment:
    """Assign a WGS84 point: the covering grid, else the nearest within tolerance, else none."""
    radius = max(accuracy_m or 0.0, nearest_min_m)
    rows = driver_rows(session, _ASSIGN, {"lon": lon, "lat": lat, "radius": radius})
    if not rows:
        return Assignment("unassigned")
    method, area_id, code, distance = rows[0]
    if method == "unassigned":
        return Assignment("unassigned", district_code=code)
    return Assignment(method, code, area_id, float(distance) if distance is not None else None)


@dataclass(frozen=True)
class Rejection:
    index: int
    code: str | None
    reason: str


def import_features(
    session: Session, features: Sequence[object], *, level: str, crs: str, tolerance_m: float = 1.0
) -> tuple[int, list[Rejection]]:
    """Create areas from GeoJSON features; the caller commits only when nothing was rejected.

    Each feature is checked in its own savepoint, so one bad feature does not hide the others'
    problems. Properties: `code` (or `adcode`), `name`, optional `kind`.
    """
    from geo.crs import transform_geometry
    from geo.geojson import GeometryError, parse_geometry

    created = 0
    rejected: list[Rejection] = []
    for index, feature in enumerate(features):
        props = feature.get("properties") if isinstance(feature, dict) else None
        props = props if isinstance(props, dict) else {}
        code = str(props.get("code") or props.get("adcode") or "") or None
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise ValidationFailed("Not a GeoJSON Feature.")
            if code is None or not props.get("name"):
                raise ValidationFailed("Properties must give code (or adcode) and name.")
            geometry = parse_geometry(feature.get("geometry"), allowed=("Polygon", "MultiPolygon"))
            with session.begin_nested():
                create_area(
                    session,
                    AreaInput(
                        code=code,
                        level=level,
                        name=str(props["name"]),
                        kind=props.get("kind"),
                        geometry=transform_geometry(geometry, crs),
                    ),
                    tolerance_m=tolerance_m,
                )
            created += 1
        except (ValidationFailed, Conflict, GeometryError) as error:
            reason = str(error)
            if isinstance(error, ValidationFailed | Conflict) and error.errors:
                reason += " " + "; ".join(e["message"] for e in error.errors)
            rejected.append(Rejection(index, code, reason))
    return created, rejected


def count_in_subtree(session: Session, code: str, level: str) -> int:
    """How many current areas of a level lie in the subtree of `code` (itself included)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(Area)
            .where(current(), Area.level == level, Area.code.startswith(code, autoescape=True))
        )
        or 0
    )


_NAMED_PLACE = text(
    "SELECT code, ST_X(p) AS lon, ST_Y(p) AS lat FROM ("
    " SELECT code, name, ST_PointOnSurface(geom) AS p FROM areas"
    " WHERE valid_to IS NULL AND strpos(:address, name) > 0"
    " ORDER BY length(code) DESC, length(name) DESC, code LIMIT 1) s"
)


def place_named(session: Session, address: str) -> tuple[str, float, float] | None:
    """The most precise current area whose name the address contains (a grid before its village,
    its village before its town), and a WGS84 point inside it: (code, lon, lat); None when the
    address names none. A rough geocoder for reports that come with an address only."""
    row = session.execute(_NAMED_PLACE, {"address": address}).first()
    return (row.code, float(row.lon), float(row.lat)) if row else None
