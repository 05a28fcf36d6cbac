"""Read-only figures over the organisation: an area's profile. (Check-in rates and alert
responses are statistics: backend.stats.check_ins and backend.stats.responses.)"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth import service as auth
from backend.auth.service import Actor
from backend.errors import NotFound
from backend.org.models import Building, EmergencyUnit, PartyBranch, PartyGroup

# --- profile ----------------------------------------------------------------------------------


def profile(session: Session, code: str, *, actor: Actor) -> dict[str, Any]:
    """What an area holds, summed over its subtree."""
    if not actor.reads_area(code):
        raise NotFound(f"No area {code}.")
    area = areas.get_area(session, code)
    level = area.level

    def count(model: Any, *where: Any) -> Any:
        return (
            select(func.count())
            .select_from(model)
            .where(model.code_column(level) == code, *where)
            .scalar_subquery()
        )

    def total(model: Any, column: Any) -> Any:
        return (
            select(func.coalesce(func.sum(column), 0))
            .where(model.code_column(level) == code)
            .scalar_subquery()
        )

    row = session.execute(
        select(
            count(PartyBranch).label("party_branches"),
            total(PartyBranch, PartyBranch.member_count).label("party_members"),
            count(PartyGroup).label("party_groups"),
            count(PartyGroup, PartyGroup.kind == "building").label("building_groups"),
            count(PartyGroup, PartyGroup.kind == "cooperative").label("cooperative_groups"),
            count(Building).label("buildings"),
            total(Building, Building.households).label("households"),
            total(Building, Building.rental_units).label("rental_units"),
            total(Building, Building.safe_rental_units).label("safe_rental_units"),
            count(Building, Building.access_control).label("buildings_with_access_control"),
            count(EmergencyUnit).label("emergency_units"),
            count(EmergencyUnit, EmergencyUnit.active).label("active_emergency_units"),
        )
    ).one()
    figures = {key: int(value) for key, value in row._mapping.items()}
    return {
        "area": {"code": area.code, "level": area.level, "name": area.name},
        "grids": areas.count_in_subtree(session, code, "grid"),
        **figures,
        "workers": auth.count_workers(session, code),
    }
