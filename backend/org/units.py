"""Minimum emergency units (最小应急单元): 2-3 person teams at shops, hotels, markets and schools."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.errors import Conflict
from backend.org.models import AlertDispatch, CheckIn, EmergencyUnit
from backend.org.service import get_row, list_rows, place, point_wkb, require_write, set_codes, touch


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
    return list_rows(session, EmergencyUnit, actor, area, after_id, limit, *conditions)


def get_unit(session: Session, unit_id: int, actor: Actor) -> EmergencyUnit:
    return get_row(session, EmergencyUnit, unit_id, actor, "emergency unit")


def create_unit(
    session: Session, data: UnitInput, *, actor: Actor, nearest_min_m: float = 50.0
) -> EmergencyUnit:
    """Register an emergency unit in the grid its point lies in."""
    require_write(actor)
    assignment = place(session, data.lon, data.lat, nearest_min_m=nearest_min_m, name="location")
    require_write(actor, assignment.codes)
    unit = EmergencyUnit(
        location=point_wkb(data.lon, data.lat),
        assignment=assignment.method,
        **{name: getattr(data, name) for name in UNIT_FIELDS},
    )
    set_codes(unit, assignment.codes)
    session.add(unit)
    session.flush()
    session.refresh(unit)
    return unit


def update_unit(
    session: Session, unit_id: int, *, actor: Actor, nearest_min_m: float = 50.0, **changes: Any
) -> EmergencyUnit:
    """Change a unit; `location` is a WGS84 (lon, lat) pair and may move it to another grid."""
    unit = get_unit(session, unit_id, actor)
    require_write(actor, unit.area_codes())
    if changes.get("location") is not None:
        lon, lat = changes["location"]
        assignment = place(session, lon, lat, nearest_min_m=nearest_min_m, name="location")
        require_write(actor, assignment.codes)
        unit.location, unit.assignment = point_wkb(lon, lat), assignment.method
        set_codes(unit, assignment.codes)
    for name in UNIT_FIELDS:
        if name in changes:
            setattr(unit, name, changes[name])
    touch(unit)
    session.flush()
    session.refresh(unit)
    return unit


def delete_unit(session: Session, unit_id: int, *, actor: Actor) -> None:
    """Remove a unit that never checked in or was called; others are deactivated instead."""
    unit = get_unit(session, unit_id, actor)
    require_write(actor, unit.area_codes())
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
