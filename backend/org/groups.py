"""Party groups (党小组) under a branch: for buildings (楼栋) of its grid or a village economic
cooperative (经济社)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.errors import ValidationFailed, field_error
from backend.org.models import Building, PartyBranch, PartyGroup
from backend.org.service import get_row, list_rows, require_write, set_codes, touch


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
    return list_rows(session, PartyGroup, actor, area, after_id, limit, *conditions)


def get_group(session: Session, group_id: int, actor: Actor) -> PartyGroup:
    return get_row(session, PartyGroup, group_id, actor, "party group")


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
    require_write(actor)
    branch = session.get(PartyBranch, branch_id)
    if branch is None or not actor.may_write(branch.area_codes()):
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
    set_codes(group, branch.area_codes())
    session.add(group)
    session.flush()
    if building_ids:
        _link_buildings(session, group, building_ids)
    return group


def update_group(session: Session, group_id: int, *, actor: Actor, **changes: Any) -> PartyGroup:
    group = get_group(session, group_id, actor)
    require_write(actor, group.area_codes())
    for name in ("name", "leader", "member_count", "cooperative"):
        if name in changes:
            setattr(group, name, changes[name])
    if changes.get("building_ids") is not None:
        _link_buildings(session, group, changes["building_ids"])
    touch(group)
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
    require_write(actor, group.area_codes())
    session.delete(group)  # its buildings' party_group_id: ON DELETE SET NULL
    session.flush()
