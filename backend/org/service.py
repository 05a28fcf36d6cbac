"""The organisation in the grids: party branches and groups, buildings, emergency units, their
daily check-ins, and one-point calls (一点呼叫) with their dispatches."""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy import (
    ColumnElement,
    Date,
    DateTime,
    cast,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    text,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import LEVELS
from backend.auth.service import Actor, Forbidden
from backend.common.fields import to_wkb
from backend.errors import Conflict, DomainError, NotFound, ValidationFailed, field_error
from backend.org.models import (
    Alert,
    AlertDispatch,
    Building,
    CheckIn,
    EmergencyUnit,
    PartyBranch,
    PartyGroup,
    contact,
)
from backend.stats import LOCAL_TZ
from geo import validate
from geo.crs import to_wgs84

M = TypeVar("M", PartyBranch, PartyGroup, Building, EmergencyUnit)

# --- scope ------------------------------------------------------------------------------------


def codes_of(row: Any) -> dict[str, str | None]:
    """The grid, village, town and district codes a row carries."""
    return {level: getattr(row, f"{level}_code") for level in LEVELS}


def visible_to(actor: Actor, model: Any) -> ColumnElement[bool]:
    """The rows of an org table an actor may read, as a SQL condition on its code columns."""
    if actor.is_admin:
        return true()
    if actor.role == "worker":
        return model.grid_code.in_(actor.grid_codes) if actor.grid_codes else false()
    level = areas.level_of(actor.area_code or "")
    if level is None:
        return false()
    return getattr(model, f"{level}_code") == actor.area_code  # type: ignore[no-any-return]


def covers(actor: Actor, codes: Mapping[str, str | None]) -> bool:
    """A place with these codes lies in what the actor may read (and, if they write, change)."""
    if actor.is_admin:
        return True
    if actor.role == "worker":
        return codes.get("grid") in actor.grid_codes
    level = areas.level_of(actor.area_code or "")
    return level is not None and codes.get(level) == actor.area_code


def sees_personal_data(actor: Actor, row: Any) -> bool:
    """Building heads' and unit leaders' contacts: supervisors in scope and admins only."""
    return actor.role in ("admin", "supervisor") and covers(actor, codes_of(row))


def _require_manager(actor: Actor) -> None:
    if actor.role not in ("admin", "supervisor"):
        raise Forbidden("Only supervisors (inside their area) and administrators change this.")


def _check_may_place(actor: Actor, codes: Mapping[str, str | None]) -> None:
    if not covers(actor, codes):
        raise Forbidden("This place is outside your area.")


def _area_condition(model: Any, area: str | None) -> ColumnElement[bool]:
    if not area:
        return true()
    level = areas.level_of(area)
    if level is None:
        raise ValidationFailed("Not an area code.", errors=[field_error("area", "Not an area code.")])
    return getattr(model, f"{level}_code") == area  # type: ignore[no-any-return]


def _get(session: Session, model: type[M], row_id: int, actor: Actor, what: str) -> M:
    row = session.get(model, row_id)
    if row is None or not covers(actor, codes_of(row)):
        raise NotFound(f"No {what} {row_id}.")
    return row


def _list(
    session: Session,
    model: Any,
    actor: Actor,
    area: str | None,
    after_id: int | None,
    limit: int,
    *conditions: ColumnElement[bool],
) -> list[Any]:
    query = (
        select(model)
        .where(visible_to(actor, model), _area_condition(model, area), *conditions)
        .order_by(model.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(model.id > after_id)
    return list(session.scalars(query))


def _set_codes(row: Any, codes: Mapping[str, str | None]) -> None:
    for level in LEVELS:
        setattr(row, f"{level}_code", codes[level])


def _touch(row: Any) -> None:
    row.updated_at = func.now()


def _place(session: Session, lon: float, lat: float, *, nearest_min_m: float, name: str) -> areas.Assignment:
    """The grid a point belongs to (the events' polygon lookup); org data must sit in a grid."""
    assignment = areas.assign_point(session, lon, lat, accuracy_m=None, nearest_min_m=nearest_min_m)
    if assignment.grid_code is None:
        raise ValidationFailed(
            f"The {name} is not inside (or within {nearest_min_m:g} m of) any grid.",
            errors=[field_error(name, "Not inside any grid.")],
        )
    return assignment


# --- party branches ---------------------------------------------------------------------------


def list_branches(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[PartyBranch]:
    return _list(session, PartyBranch, actor, area, after_id, limit)


def get_branch(session: Session, branch_id: int, actor: Actor) -> PartyBranch:
    return _get(session, PartyBranch, branch_id, actor, "party branch")


def create_branch(
    session: Session,
    *,
    actor: Actor,
    grid: str,
    name: str | None = None,
    secretary: str | None = None,
    member_count: int = 0,
) -> PartyBranch:
    """Found the party branch of a grid; a grid has one."""
    _require_manager(actor)
    area = areas.get_areas(session, [grid]).get(grid)
    if area is None or area.level != "grid":
        raise ValidationFailed(
            f"No current grid {grid}.", errors=[field_error("grid", "Not a current grid code.")]
        )
    codes = areas.Assignment("manual", grid).codes
    _check_may_place(actor, codes)
    if session.scalar(select(PartyBranch.id).where(PartyBranch.grid_code == grid)) is not None:
        raise Conflict(
            f"Grid {grid} already has its party branch.",
            errors=[field_error("grid", "This grid has a branch already.")],
        )
    branch = PartyBranch(name=name or f"{area.name}党支部", secretary=secretary, member_count=member_count)
    _set_codes(branch, codes)
    session.add(branch)
    session.flush()
    return branch


def update_branch(session: Session, branch_id: int, *, actor: Actor, **changes: Any) -> PartyBranch:
    branch = get_branch(session, branch_id, actor)
    _require_manager(actor)
    for name in ("name", "secretary", "member_count"):
        if name in changes:
            setattr(branch, name, changes[name])
    _touch(branch)
    session.flush()
    session.refresh(branch)
    return branch


def delete_branch(session: Session, branch_id: int, *, actor: Actor) -> None:
    branch = get_branch(session, branch_id, actor)
    _require_manager(actor)
    if session.scalar(select(PartyGroup.id).where(PartyGroup.branch_id == branch.id).limit(1)):
        raise Conflict(f"Party branch {branch_id} still has party groups; delete them first.")
    session.delete(branch)
    session.flush()


# --- party groups -----------------------------------------------------------------------------


def list_groups(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    branch_id: int | None = None,
    kind: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[PartyGroup]:
    conditions = []
    if branch_id is not None:
        conditions.append(PartyGroup.branch_id == branch_id)
    if kind is not None:
        conditions.append(PartyGroup.kind == kind)
    return _list(session, PartyGroup, actor, area, after_id, limit, *conditions)


def get_group(session: Session, group_id: int, actor: Actor) -> PartyGroup:
    return _get(session, PartyGroup, group_id, actor, "party group")


def building_ids_of(session: Session, group_ids: Iterable[int]) -> dict[int, list[int]]:
    """The buildings each party group looks after."""
    ids = list(group_ids)
    out: dict[int, list[int]] = {group_id: [] for group_id in ids}
    if ids:
        rows = session.execute(
            select(Building.party_group_id, Building.id)
            .where(Building.party_group_id.in_(ids))
            .order_by(Building.id)
        )
        for group_id, building_id in rows:
            if group_id is not None:
                out[group_id].append(building_id)
    return out


def create_group(
    session: Session,
    *,
    actor: Actor,
    branch_id: int,
    kind: str,
    name: str,
    leader: str | None = None,
    member_count: int = 0,
    cooperative: str | None = None,
    building_ids: Sequence[int] | None = None,
) -> PartyGroup:
    """Set up a party group under a branch, for buildings of its grid or a cooperative."""
    _require_manager(actor)
    branch = session.get(PartyBranch, branch_id)
    if branch is None or not covers(actor, codes_of(branch)):
        raise ValidationFailed(
            f"No party branch {branch_id} in your area.",
            errors=[field_error("branch_id", "Unknown party branch.")],
        )
    group = PartyGroup(
        branch_id=branch.id,
        kind=kind,
        name=name,
        leader=leader,
        member_count=member_count,
        cooperative=cooperative,
    )
    _set_codes(group, codes_of(branch))
    session.add(group)
    session.flush()
    if building_ids:
        _link_buildings(session, group, building_ids)
    return group


def update_group(session: Session, group_id: int, *, actor: Actor, **changes: Any) -> PartyGroup:
    group = get_group(session, group_id, actor)
    _require_manager(actor)
    for name in ("name", "leader", "member_count", "cooperative"):
        if name in changes:
            setattr(group, name, changes[name])
    if changes.get("building_ids") is not None:
        _link_buildings(session, group, changes["building_ids"])
    _touch(group)
    session.flush()
    session.refresh(group)
    return group


def _link_buildings(session: Session, group: PartyGroup, building_ids: Sequence[int]) -> None:
    """Make the group look after exactly these buildings, all in its grid."""
    wanted = sorted(set(building_ids))
    if wanted and group.kind != "building":
        raise ValidationFailed(
            "Only building party groups look after buildings.",
            errors=[field_error("building_ids", "Not for a cooperative group.")],
        )
    found = set(
        session.scalars(
            select(Building.id).where(Building.id.in_(wanted), Building.grid_code == group.grid_code)
        )
    )
    missing = [i for i in wanted if i not in found]
    if missing:
        raise ValidationFailed(
            f"Buildings not in grid {group.grid_code}: {', '.join(map(str, missing[:10]))}.",
            errors=[
                field_error("building_ids", "Unknown buildings, or outside the group's grid.", ids=missing)
            ],
        )
    session.execute(
        update(Building)
        .where(Building.party_group_id == group.id, Building.id.not_in(wanted))
        .values(party_group_id=None)
    )
    if wanted:
        session.execute(update(Building).where(Building.id.in_(wanted)).values(party_group_id=group.id))
    session.expire_all()


def delete_group(session: Session, group_id: int, *, actor: Actor) -> None:
    """Dissolve a group; its buildings stay, without a group."""
    group = get_group(session, group_id, actor)
    _require_manager(actor)
    session.delete(group)  # its buildings' party_group_id: ON DELETE SET NULL
    session.flush()


# --- buildings --------------------------------------------------------------------------------


@dataclass(frozen=True)
class BuildingInput:
    """A building as given; `geometry` is a WGS84 point or footprint."""

    name: str
    geometry: BaseGeometry
    address: str | None = None
    floors: int | None = None
    households: int = 0
    rental_units: int = 0
    safe_rental_units: int = 0
    access_control: bool = False
    head_name: str | None = None
    head_phone: str | None = None
    party_group_id: int | None = None


BUILDING_FIELDS = (
    "name",
    "address",
    "floors",
    "households",
    "rental_units",
    "safe_rental_units",
    "access_control",
    "head_name",
    "head_phone",
)


def list_buildings(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    party_group_id: int | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[Building]:
    conditions = [] if party_group_id is None else [Building.party_group_id == party_group_id]
    return _list(session, Building, actor, area, after_id, limit, *conditions)


def get_building(session: Session, building_id: int, actor: Actor) -> Building:
    return _get(session, Building, building_id, actor, "building")


def _representative_point(geometry: BaseGeometry) -> Point:
    """The point itself, or a point on the footprint (inside it, unlike a centroid)."""
    if isinstance(geometry, Point):
        return geometry
    problem = validate.invalidity(geometry)
    if problem is not None:
        raise ValidationFailed(
            f"The footprint is not a valid polygon: {problem.message}.",
            errors=[field_error("geometry", problem.message, kind=problem.kind)],
        )
    point: Point = shapely.point_on_surface(geometry)
    return point


def _check_rentals(rental_units: int, safe_rental_units: int) -> None:
    if safe_rental_units > rental_units:
        raise ValidationFailed(
            "A building cannot have more safe-certified rental units than rental units.",
            errors=[field_error("safe_rental_units", "Must not exceed rental_units.")],
        )


def _check_group_for(session: Session, group_id: int | None, grid: str) -> None:
    if group_id is None:
        return
    group = session.get(PartyGroup, group_id)
    if group is None or group.kind != "building" or group.grid_code != grid:
        raise ValidationFailed(
            f"Party group {group_id} is not a building group of grid {grid}.",
            errors=[field_error("party_group_id", "Must be a building party group of the building's grid.")],
        )


def create_building(
    session: Session, data: BuildingInput, *, actor: Actor, nearest_min_m: float = 50.0
) -> Building:
    """Add a building to the grid its point (or footprint) lies in."""
    _require_manager(actor)
    point = _representative_point(data.geometry)
    assignment = _place(session, point.x, point.y, nearest_min_m=nearest_min_m, name="geometry")
    _check_may_place(actor, assignment.codes)
    _check_rentals(data.rental_units, data.safe_rental_units)
    _check_group_for(session, data.party_group_id, assignment.codes["grid"] or "")
    building = Building(
        geom=to_wkb(data.geometry),
        location=to_wkb(point),
        assignment=assignment.method,
        party_group_id=data.party_group_id,
        **{name: getattr(data, name) for name in BUILDING_FIELDS},
    )
    _set_codes(building, assignment.codes)
    session.add(building)
    session.flush()
    return building


def update_building(
    session: Session,
    building_id: int,
    *,
    actor: Actor,
    nearest_min_m: float = 50.0,
    **changes: Any,
) -> Building:
    """Change a building; a new geometry may move it to another grid (inside your area)."""
    building = get_building(session, building_id, actor)
    _require_manager(actor)
    grid = building.grid_code
    if changes.get("geometry") is not None:
        point = _representative_point(changes["geometry"])
        assignment = _place(session, point.x, point.y, nearest_min_m=nearest_min_m, name="geometry")
        _check_may_place(actor, assignment.codes)
        building.geom, building.location = to_wkb(changes["geometry"]), to_wkb(point)
        building.assignment = assignment.method
        _set_codes(building, assignment.codes)
        grid = assignment.codes["grid"] or ""
    _check_rentals(
        changes.get("rental_units", building.rental_units),
        changes.get("safe_rental_units", building.safe_rental_units),
    )
    group_id = changes["party_group_id"] if "party_group_id" in changes else building.party_group_id
    _check_group_for(session, group_id, grid)
    building.party_group_id = group_id
    for name in BUILDING_FIELDS:
        if name in changes:
            setattr(building, name, changes[name])
    _touch(building)
    session.flush()
    session.refresh(building)
    return building


def delete_building(session: Session, building_id: int, *, actor: Actor) -> None:
    building = get_building(session, building_id, actor)
    _require_manager(actor)
    session.delete(building)
    session.flush()


# --- emergency units --------------------------------------------------------------------------


@dataclass(frozen=True)
class UnitInput:
    """An emergency unit as given; lon/lat in WGS84."""

    name: str
    kind: str
    lon: float
    lat: float
    members: int = 3
    leader_name: str | None = None
    leader_phone: str | None = None
    active: bool = True


UNIT_FIELDS = ("name", "kind", "members", "leader_name", "leader_phone", "active")


def list_units(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[EmergencyUnit]:
    conditions = []
    if kind is not None:
        conditions.append(EmergencyUnit.kind == kind)
    if active is not None:
        conditions.append(EmergencyUnit.active.is_(active))
    return _list(session, EmergencyUnit, actor, area, after_id, limit, *conditions)


def get_unit(session: Session, unit_id: int, actor: Actor) -> EmergencyUnit:
    return _get(session, EmergencyUnit, unit_id, actor, "emergency unit")


def _point_wkb(lon: float, lat: float) -> Any:
    return to_wkb(Point(lon, lat))


def create_unit(
    session: Session, data: UnitInput, *, actor: Actor, nearest_min_m: float = 50.0
) -> EmergencyUnit:
    """Register an emergency unit in the grid its point lies in."""
    _require_manager(actor)
    assignment = _place(session, data.lon, data.lat, nearest_min_m=nearest_min_m, name="location")
    _check_may_place(actor, assignment.codes)
    unit = EmergencyUnit(
        location=_point_wkb(data.lon, data.lat),
        assignment=assignment.method,
        **{name: getattr(data, name) for name in UNIT_FIELDS},
    )
    _set_codes(unit, assignment.codes)
    session.add(unit)
    session.flush()
    session.refresh(unit)
    return unit


def update_unit(
    session: Session, unit_id: int, *, actor: Actor, nearest_min_m: float = 50.0, **changes: Any
) -> EmergencyUnit:
    """Change a unit; `location` is a WGS84 (lon, lat) pair and may move it to another grid."""
    unit = get_unit(session, unit_id, actor)
    _require_manager(actor)
    if changes.get("location") is not None:
        lon, lat = changes["location"]
        assignment = _place(session, lon, lat, nearest_min_m=nearest_min_m, name="location")
        _check_may_place(actor, assignment.codes)
        unit.location, unit.assignment = _point_wkb(lon, lat), assignment.method
        _set_codes(unit, assignment.codes)
    for name in UNIT_FIELDS:
        if name in changes:
            setattr(unit, name, changes[name])
    _touch(unit)
    session.flush()
    session.refresh(unit)
    return unit


def delete_unit(session: Session, unit_id: int, *, actor: Actor) -> None:
    """Remove a unit that never checked in or was called; others are deactivated instead."""
    unit = get_unit(session, unit_id, actor)
    _require_manager(actor)
    used = session.scalar(
        select(
            or_(exists().where(CheckIn.unit_id == unit.id), exists().where(AlertDispatch.unit_id == unit.id))
        )
    )
    if used:
        raise Conflict(
            f"Emergency unit {unit_id} has check-ins or calls on record; set active to false instead."
        )
    session.delete(unit)
    session.flush()


# --- bulk import ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    field: str = ""


def import_rows(
    session: Session,
    rows: Sequence[BuildingInput | UnitInput | Rejection],
    *,
    actor: Actor,
    nearest_min_m: float = 50.0,
) -> tuple[int, list[Rejection]]:
    """Create buildings or units one savepoint each, so every bad row is reported; the caller
    commits only when nothing was rejected. Rows the edge already refused come as Rejections."""
    _require_manager(actor)
    created = 0
    rejected: list[Rejection] = []
    for index, row in enumerate(rows):
        if isinstance(row, Rejection):
            rejected.append(row)
            continue
        try:
            with session.begin_nested():
                if isinstance(row, BuildingInput):
                    create_building(session, row, actor=actor, nearest_min_m=nearest_min_m)
                else:
                    create_unit(session, row, actor=actor, nearest_min_m=nearest_min_m)
            created += 1
        except DomainError as error:
            fields = [e.get("field", "") for e in error.errors or []]
            rejected.append(Rejection(index, error.detail, fields[0] if fields else ""))
    return created, rejected


# --- check-ins --------------------------------------------------------------------------------


def check_in(
    session: Session,
    unit_id: int,
    *,
    actor: Actor,
    at: datetime | None = None,
    members_on_duty: int | None = None,
) -> tuple[CheckIn, bool]:
    """Record a unit's check-in (报岗) for its local day (Asia/Shanghai), once.

    Returns the check-in and whether it was made now; a repeat the same local day returns the
    first one. `at` (default: the database clock) decides the day. Races are settled by the
    unique (unit, day) constraint, not by a prior read.
    """
    unit = get_unit(session, unit_id, actor)
    if actor.read_only:
        raise Forbidden("API keys are read-only.")
    if not unit.active:
        raise Conflict(f"Emergency unit {unit_id} is inactive and does not check in.")
    moment: Any = literal(at, DateTime(timezone=True)) if at is not None else func.now()
    day = cast(func.timezone(LOCAL_TZ, moment), Date)
    statement = (
        pg_insert(CheckIn)
        .values(
            unit_id=unit.id,
            local_day=day,
            checked_in_at=moment,
            user_id=actor.user_id,
            members_on_duty=members_on_duty,
        )
        .on_conflict_do_nothing(index_elements=[CheckIn.unit_id, CheckIn.local_day])
        .returning(CheckIn)
    )
    made = session.scalars(statement, execution_options={"populate_existing": True}).first()
    if made is not None:
        return made, True
    existing = session.scalars(
        select(CheckIn).where(CheckIn.unit_id == unit.id, CheckIn.local_day == select(day).scalar_subquery())
    ).one()
    return existing, False


def list_check_ins(
    session: Session, unit_id: int, *, actor: Actor, before_day: Any = None, limit: int = 100
) -> list[CheckIn]:
    """A unit's check-ins, latest day first."""
    unit = get_unit(session, unit_id, actor)
    query = select(CheckIn).where(CheckIn.unit_id == unit.id).order_by(CheckIn.local_day.desc()).limit(limit)
    if before_day is not None:
        query = query.where(CheckIn.local_day < before_day)
    return list(session.scalars(query))


# --- one-point calls --------------------------------------------------------------------------

UNIT_SUMMARY = (
    "id",
    "name",
    "kind",
    "members",
    "leader_name",
    "leader_phone",
    "grid_code",
    "village_code",
    "town_code",
    "district_code",
)

# The KNN order (`<->` on the partial GiST index over active units' geography) finds candidates
# nearest first on the sphere; the exact spheroid distance then decides the order and the radius.
# A few spare candidates cover the sphere/spheroid difference (under 0.5%).
NEAREST_ACTIVE_UNITS = text(
    f"SELECT {', '.join(UNIT_SUMMARY)}, distance FROM ("
    f"  SELECT {', '.join('u.' + c for c in UNIT_SUMMARY)},"
    "          ST_Distance(u.location, p.pt) AS distance"
    "  FROM emergency_units u,"
    "       (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS pt) p"
    "  WHERE u.active AND ST_DWithin(u.location, p.pt, :radius)"
    "  ORDER BY u.location <-> p.pt"
    "  LIMIT :candidates"
    ") c WHERE distance <= :radius ORDER BY distance, id LIMIT :count"
)
SPARE_CANDIDATES = 16

# The alert and all its dispatches in one statement (one round trip).
RECORD_ALERT = text(
    "WITH alert AS ("
    "  INSERT INTO alerts (kind, description, location, crs, source_lon, source_lat, grid_code,"
    "    village_code, town_code, district_code, requested_radius_m, radius_m, requested, found,"
    "    widened, created_by)"
    "  VALUES (:kind, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :crs,"
    "    :source_lon, :source_lat, :grid_code, :village_code, :town_code, :district_code,"
    "    :requested_radius_m, :radius_m, :requested, :found, :widened, :created_by)"
    "  RETURNING id, created_at"
    "), dispatched AS ("
    "  INSERT INTO alert_dispatches (alert_id, unit_id, rank, distance_m, dispatched_at)"
    "  SELECT alert.id, called.unit_id, called.rank, called.distance_m, alert.created_at"
    "  FROM alert, unnest(CAST(:unit_ids AS bigint[]), CAST(:distances AS double precision[]))"
    "       WITH ORDINALITY AS called(unit_id, distance_m, rank)"
    ") SELECT id, created_at FROM alert"
)


@dataclass(frozen=True)
class UnitSummary:
    """What an alert shows of a unit it called."""

    id: int
    name: str
    kind: str
    members: int
    leader_name: str | None
    leader_phone: str | None
    grid_code: str
    village_code: str
    town_code: str
    district_code: str

    @property
    def leader(self) -> dict[str, str | None] | None:
        return contact(self.leader_name, self.leader_phone)


def nearest_active_units(
    session: Session, lon: float, lat: float, *, radius_m: float, count: int
) -> list[tuple[UnitSummary, float]]:
    """Up to `count` active units within `radius_m` with their distances, nearest first."""
    rows = session.execute(
        NEAREST_ACTIVE_UNITS,
        {"lon": lon, "lat": lat, "radius": radius_m, "count": count, "candidates": count + SPARE_CANDIDATES},
    )
    return [(UnitSummary(*row[:-1]), float(row.distance)) for row in rows]


@dataclass
class DispatchView:
    """A unit an alert called, and how it answered."""

    alert_id: int
    unit_id: int
    rank: int
    distance_m: float
    dispatched_at: datetime
    acknowledged_at: datetime | None
    arrived_at: datetime | None
    unit: UnitSummary
    show_personal: bool = False

    @property
    def seconds_to_acknowledge(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.dispatched_at).total_seconds()

    @property
    def seconds_to_arrive(self) -> float | None:
        if self.arrived_at is None:
            return None
        return (self.arrived_at - self.dispatched_at).total_seconds()


@dataclass
class AlertView:
    """An alert with the units it called, nearest first."""

    alert: Alert
    dispatches: list[DispatchView] = field(default_factory=list)

    @property
    def shortfall(self) -> str | None:
        """Why fewer units than asked were called, or None."""
        alert = self.alert
        if alert.found >= alert.requested:
            return None
        if alert.widened or alert.radius_m > alert.requested_radius_m:
            return (
                f"Only {alert.found} of {alert.requested} active units within "
                f"{alert.radius_m:g} m, the widest ring allowed."
            )
        return (
            f"Only {alert.found} of {alert.requested} active units within {alert.radius_m:g} m;"
            f" send widen=true to call units in wider rings."
        )

    @property
    def summary(self) -> dict[str, Any]:
        acknowledged = [
            d.seconds_to_acknowledge for d in self.dispatches if d.seconds_to_acknowledge is not None
        ]
        arrived = [d.seconds_to_arrive for d in self.dispatches if d.seconds_to_arrive is not None]
        return {
            "dispatched": len(self.dispatches),
            "acknowledged": len(acknowledged),
            "arrived": len(arrived),
            "first_acknowledged_s": min(acknowledged) if acknowledged else None,
            "median_acknowledge_s": statistics.median(acknowledged) if acknowledged else None,
            "first_arrived_s": min(arrived) if arrived else None,
            "median_arrive_s": statistics.median(arrived) if arrived else None,
        }


def _next_ring(radius_m: float, needed_m: float, max_radius_m: float) -> float:
    """The first ring (radius doubled each time) reaching `needed_m`, capped at the maximum."""
    ring = radius_m
    while ring < needed_m and ring < max_radius_m:
        ring = min(ring * 2, max_radius_m)
    return ring


def create_alert(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    description: str | None = None,
    radius_m: float = 1000.0,
    count: int = 5,
    widen: bool = False,
    max_radius_m: float = 8000.0,
    nearest_min_m: float = 50.0,
) -> AlertView:
    """Call the `count` nearest active units within `radius_m` of a point (一点呼叫).

    With `widen`, a short ring doubles until enough units are found or `max_radius_m` is
    reached; without it, fewer units than asked are called and the alert says so. One query
    finds the units (at the widest radius allowed; the ring is then the smallest that holds
    them) and one statement records the alert with all its dispatches.
    """
    if actor.role not in ("admin", "supervisor"):
        raise Forbidden("Only supervisors (inside their area) and administrators raise alerts.")
    wgs_lon, wgs_lat = to_wgs84(lon, lat, crs)
    assignment = areas.assign_point(session, wgs_lon, wgs_lat, accuracy_m=None, nearest_min_m=nearest_min_m)
    codes = assignment.codes
    _check_may_place(actor, codes)
    max_radius_m = max(max_radius_m, radius_m)
    found = nearest_active_units(
        session, wgs_lon, wgs_lat, radius_m=max_radius_m if widen else radius_m, count=count
    )
    ring = radius_m
    if widen:
        needed = found[count - 1][1] if len(found) >= count else max_radius_m
        ring = _next_ring(radius_m, needed, max_radius_m)
        found = [(unit, distance) for unit, distance in found if distance <= ring]
    alert = Alert(
        kind=kind,
        description=description,
        location=_point_wkb(wgs_lon, wgs_lat),
        crs=crs,
        source_lon=lon,
        source_lat=lat,
        requested_radius_m=radius_m,
        radius_m=ring,
        requested=count,
        found=len(found),
        widened=ring > radius_m,
        created_by=actor.user_id,
        grid_code=codes["grid"],
        village_code=codes["village"],
        town_code=codes["town"],
        district_code=codes["district"],
    )
    columns = (
        "kind",
        "description",
        "crs",
        "source_lon",
        "source_lat",
        "grid_code",
        "village_code",
        "town_code",
        "district_code",
        "requested_radius_m",
        "radius_m",
        "requested",
        "found",
        "widened",
        "created_by",
    )
    row = session.execute(
        RECORD_ALERT,
        {
            **{name: getattr(alert, name) for name in columns},
            "lon": wgs_lon,
            "lat": wgs_lat,
            "unit_ids": [unit.id for unit, _ in found],
            "distances": [d for _, d in found],
        },
    ).one()
    alert.id, alert.created_at = row.id, row.created_at
    dispatches = [
        DispatchView(
            alert_id=alert.id,
            unit_id=unit.id,
            rank=rank,
            distance_m=distance,
            dispatched_at=alert.created_at,
            acknowledged_at=None,
            arrived_at=None,
            unit=unit,
            show_personal=sees_personal_data(actor, unit),
        )
        for rank, (unit, distance) in enumerate(found, start=1)
    ]
    return AlertView(alert, dispatches)


def alert_visible_to(actor: Actor) -> ColumnElement[bool]:
    """Alerts in the actor's scope, or that called a unit in it."""
    if actor.is_admin:
        return true()
    called_here = (
        select(AlertDispatch.alert_id)
        .join(EmergencyUnit, EmergencyUnit.id == AlertDispatch.unit_id)
        .where(AlertDispatch.alert_id == Alert.id, visible_to(actor, EmergencyUnit))
        .exists()
    )
    return or_(visible_to(actor, Alert), called_here)


def _dispatches(session: Session, alert_ids: Sequence[int], actor: Actor) -> dict[int, list[DispatchView]]:
    out: dict[int, list[DispatchView]] = {alert_id: [] for alert_id in alert_ids}
    if not alert_ids:
        return out
    rows = session.execute(
        select(AlertDispatch, *(getattr(EmergencyUnit, c) for c in UNIT_SUMMARY))
        .join(EmergencyUnit, EmergencyUnit.id == AlertDispatch.unit_id)
        .where(AlertDispatch.alert_id.in_(alert_ids))
        .order_by(AlertDispatch.alert_id, AlertDispatch.rank)
    )
    for dispatch, *columns in rows:
        unit = UnitSummary(*columns)
        out[dispatch.alert_id].append(
            DispatchView(
                alert_id=dispatch.alert_id,
                unit_id=dispatch.unit_id,
                rank=dispatch.rank,
                distance_m=dispatch.distance_m,
                dispatched_at=dispatch.dispatched_at,
                acknowledged_at=dispatch.acknowledged_at,
                arrived_at=dispatch.arrived_at,
                unit=unit,
                show_personal=sees_personal_data(actor, unit),
            )
        )
    return out


def get_alert(session: Session, alert_id: int, actor: Actor) -> AlertView:
    """An alert the actor may see, with who responded and how fast."""
    alert = session.scalars(select(Alert).where(Alert.id == alert_id, alert_visible_to(actor))).first()
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    return AlertView(alert, _dispatches(session, [alert.id], actor)[alert.id])


def list_alerts(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AlertView]:
    """Alerts newest first."""
    query = (
        select(Alert)
        .where(alert_visible_to(actor), _area_condition(Alert, area))
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    alerts = list(session.scalars(query))
    calls = _dispatches(session, [a.id for a in alerts], actor)
    return [AlertView(a, calls[a.id]) for a in alerts]


def respond(
    session: Session,
    alert_id: int,
    unit_id: int,
    *,
    actor: Actor,
    step: str,
    at: datetime | None = None,
) -> DispatchView:
    """Record that a called unit acknowledged (一线响应) or arrived (一片集结); the first time
    counts, a repeat changes nothing. Arriving implies acknowledging."""
    if actor.read_only:
        raise Forbidden("API keys are read-only.")
    view = get_alert(session, alert_id, actor)
    dispatch = next((d for d in view.dispatches if d.unit_id == unit_id), None)
    if dispatch is None:
        raise NotFound(f"Alert {alert_id} did not call unit {unit_id}.")
    unit_in_scope = covers(actor, codes_of(dispatch.unit))
    alert_in_scope = actor.role != "worker" and covers(actor, codes_of(view.alert))
    if not (unit_in_scope or alert_in_scope):
        raise Forbidden(f"Unit {unit_id} is not yours to answer for.")
    if at is not None and at < dispatch.dispatched_at:
        raise ValidationFailed(
            "A response cannot precede the call.", errors=[field_error("at", "Before the dispatch time.")]
        )
    moment: Any = literal(at, DateTime(timezone=True)) if at is not None else func.statement_timestamp()
    values: dict[str, Any] = {
        "acknowledged_at": func.coalesce(AlertDispatch.acknowledged_at, moment),
        "acknowledged_by": func.coalesce(AlertDispatch.acknowledged_by, actor.user_id),
    }
    if step == "arrive":
        values["arrived_at"] = func.coalesce(AlertDispatch.arrived_at, moment)
        values["arrived_by"] = func.coalesce(AlertDispatch.arrived_by, actor.user_id)
    session.execute(
        update(AlertDispatch)
        .where(AlertDispatch.alert_id == alert_id, AlertDispatch.unit_id == unit_id)
        .values(**values)
    )
    session.expire_all()
    calls = _dispatches(session, [alert_id], actor)[alert_id]
    return next(d for d in calls if d.unit_id == unit_id)
