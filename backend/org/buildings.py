"""Buildings (楼栋): a point or a footprint in a grid, with its households and rental housing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import shapely
from shapely.geometry import Point
from shapely.geometry.base import BaseGeometry
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.common.fields import to_wkb
from backend.errors import ValidationFailed, field_error
from backend.org.models import Building, PartyGroup
from backend.org.service import get_row, list_rows, place, require_write, set_codes, touch
from geo import validate


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
    return list_rows(session, Building, actor, area, after_id, limit, *conditions)


def get_building(session: Session, building_id: int, actor: Actor) -> Building:
    return get_row(session, Building, building_id, actor, "building")


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
    require_write(actor)
    point = _representative_point(data.geometry)
    assignment = place(session, point.x, point.y, nearest_min_m=nearest_min_m, name="geometry")
    require_write(actor, assignment.codes)
    _check_rentals(data.rental_units, data.safe_rental_units)
    _check_group_for(session, data.party_group_id, assignment.codes["grid"] or "")
    building = Building(
        geom=to_wkb(data.geometry),
        location=to_wkb(point),
        assignment=assignment.method,
        party_group_id=data.party_group_id,
        **{name: getattr(data, name) for name in BUILDING_FIELDS},
    )
    set_codes(building, assignment.codes)
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
    require_write(actor, building.area_codes())
    grid = building.grid_code
    if changes.get("geometry") is not None:
        point = _representative_point(changes["geometry"])
        assignment = place(session, point.x, point.y, nearest_min_m=nearest_min_m, name="geometry")
        require_write(actor, assignment.codes)
        building.geom, building.location = to_wkb(changes["geometry"]), to_wkb(point)
        building.assignment = assignment.method
        set_codes(building, assignment.codes)
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
    touch(building)
    session.flush()
    session.refresh(building)
    return building


def delete_building(session: Session, building_id: int, *, actor: Actor) -> None:
    building = get_building(session, building_id, actor)
    require_write(actor, building.area_codes())
    session.delete(building)
    session.flush()
