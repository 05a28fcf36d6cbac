"""The organisation in the grids: what its parts share. Each part has its module beside this one:
`branches` (party branches), `groups` (party groups), `buildings`, `units` (emergency units),
`imports` (bulk GeoJSON import), `check_ins` and `alerts` (one-point calls and their dispatches).

Who may read or change a row is the caller's `Actor` to say (backend/auth/scope.py); these
helpers only turn its answers into 404s and 403s."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from shapely.geometry import Point
from sqlalchemy import ColumnElement, func, select, true
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import LEVELS, InArea
from backend.auth.service import Actor, Forbidden
from backend.common.fields import to_wkb
from backend.errors import NotFound, ValidationFailed, field_error
from backend.org.models import Building, EmergencyUnit, PartyBranch, PartyGroup

M = TypeVar("M", PartyBranch, PartyGroup, Building, EmergencyUnit)


def require_write(
    actor: Actor, codes: Mapping[str, str | None] | None = None, *, doing: str = "change this"
) -> None:
    """Refuse (403) a caller who changes no organisation rows, or none placed at these codes."""
    if not actor.may_write_somewhere:
        raise Forbidden(f"Only supervisors (inside their area) and administrators {doing}.")
    if codes is not None and not actor.may_write(codes):
        raise Forbidden("This place is outside your area.")


def in_area(model: type[InArea], area: str | None) -> ColumnElement[bool]:
    """Rows in the subtree of `area` (the `area` query filter; the scope is the actor's)."""
    if not area:
        return true()
    level = areas.level_of(area)
    if level is None:
        raise ValidationFailed("Not an area code.", errors=[field_error("area", "Not an area code.")])
    return model.code_column(level) == area  # type: ignore[no-any-return]


def get_row(session: Session, model: type[M], row_id: int, actor: Actor, what: str) -> M:
    """A row the actor may read; any other is unknown to them (404)."""
    row = session.get(model, row_id)
    if row is None or not actor.covers(row):
        raise NotFound(f"No {what} {row_id}.")
    return row


def list_rows(
    session: Session,
    model: type[M],
    actor: Actor,
    area: str | None,
    after_id: int | None,
    limit: int,
    *conditions: ColumnElement[bool],
) -> list[M]:
    """A page of the rows the actor may read, in id order, filtered in SQL."""
    query = (
        select(model)
        .where(actor.reads(model), in_area(model, area), *conditions)
        .order_by(model.id)
        .limit(limit)
    )
    if after_id is not None:
        query = query.where(model.id > after_id)
    return list(session.scalars(query))


def set_codes(row: InArea, codes: Mapping[str, str | None]) -> None:
    for level in LEVELS:
        setattr(row, f"{level}_code", codes[level])


def touch(row: Any) -> None:
    row.updated_at = func.now()


def place(session: Session, lon: float, lat: float, *, nearest_min_m: float, name: str) -> areas.Assignment:
    """The grid a point belongs to (the events' polygon lookup); org data must sit in a grid."""
    assignment = areas.assign_point(session, lon, lat, accuracy_m=None, nearest_min_m=nearest_min_m)
    if assignment.grid_code is None:
        raise ValidationFailed(
            f"The {name} is not inside (or within {nearest_min_m:g} m of) any grid.",
            errors=[field_error(name, "Not inside any grid.")],
        )
    return assignment


def point_wkb(lon: float, lat: float) -> Any:
    return to_wkb(Point(lon, lat))
