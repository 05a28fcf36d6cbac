"""Grid party branches (网格党支部): one per grid ("支部建在网格上")."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth.service import Actor
from backend.errors import Conflict, ValidationFailed, field_error
from backend.org.models import PartyBranch, PartyGroup
from backend.org.service import get_row, list_rows, require_write, set_codes, touch


def list_branches(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    after_id: int | None = None,
    limit: int = 100,
) -> list[PartyBranch]:
    return list_rows(session, PartyBranch, actor, area, after_id, limit)


def get_branch(session: Session, branch_id: int, actor: Actor) -> PartyBranch:
    return get_row(session, PartyBranch, branch_id, actor, "party branch")


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
    require_write(actor)
    area = areas.get_areas(session, [grid]).get(grid)
    if area is None or area.level != "grid":
        raise ValidationFailed(
            f"No current grid {grid}.", errors=[field_error("grid", "Not a current grid code.")]
        )
    codes = areas.Assignment("manual", grid).codes
    require_write(actor, codes)
    if session.scalar(select(PartyBranch.id).where(PartyBranch.grid_code == grid)) is not None:
        raise Conflict(
            f"Grid {grid} already has its party branch.",
            errors=[field_error("grid", "This grid has a branch already.")],
        )
    branch = PartyBranch(name=name or f"{area.name}党支部", secretary=secretary, member_count=member_count)
    set_codes(branch, codes)
    session.add(branch)
    session.flush()
    return branch


def update_branch(session: Session, branch_id: int, *, actor: Actor, **changes: Any) -> PartyBranch:
    branch = get_branch(session, branch_id, actor)
    require_write(actor, branch.area_codes())
    for name in ("name", "secretary", "member_count"):
        if name in changes:
            setattr(branch, name, changes[name])
    touch(branch)
    session.flush()
    session.refresh(branch)
    return branch


def delete_branch(session: Session, branch_id: int, *, actor: Actor) -> None:
    branch = get_branch(session, branch_id, actor)
    require_write(actor, branch.area_codes())
    if session.scalar(select(PartyGroup.id).where(PartyGroup.branch_id == branch.id).limit(1)):
        raise Conflict(f"Party branch {branch_id} still has party groups; delete them first.")
    session.delete(branch)
    session.flush()
