"""The closed loop (闭环): which action moves an event from which status, who may take it.

Every action is a compare-and-set on the event's version, and writes exactly one trail entry in
the same transaction; a stale version changes nothing and raises PreconditionFailed.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth import service as auth
from backend.auth.service import Actor, Forbidden
from backend.errors import Conflict, PreconditionFailed, ValidationFailed, field_error
from backend.events.models import Category, Event, EventAction, event_named
from backend.events.service import get_event
from backend.mediation import service as mediation
from backend.ops import metrics

OPEN = ("reported", "accepted", "dispatched", "in_progress")
SUPERVISING = ("supervisor", "admin")
HANDLING = ("worker", "supervisor", "admin")


@dataclass(frozen=True)
class Rule:
    sources: tuple[str, ...]
    target: str | None  # None: the status stays (escalate)
    roles: tuple[str, ...]
    needs: tuple[str, ...] = ()


RULES: dict[str, Rule] = {
    "accept": Rule(("reported",), "accepted", SUPERVISING),
    "reject": Rule(("reported", "accepted"), "rejected", SUPERVISING, ("reason",)),
    "dispatch": Rule(("accepted", "dispatched"), "dispatched", SUPERVISING),
    "start": Rule(("dispatched",), "in_progress", HANDLING),
    "resolve": Rule(("in_progress",), "resolved", HANDLING, ("note",)),
    "close": Rule(("resolved",), "closed", SUPERVISING),
    "return": Rule(("resolved",), "in_progress", SUPERVISING, ("reason",)),
    "escalate": Rule(OPEN, None, SUPERVISING, ("reason",)),
    "reopen": Rule(("closed",), "in_progress", SUPERVISING, ("reason",)),
}
ACTIONS = tuple(RULES)


@dataclass
class ActionInput:
    action: str
    version: int
    reason: str | None = None
    note: str | None = None
    assignee_id: int | None = None
    department: str | None = None
    duplicate_of: uuid.UUID | None = None


def act(session: Session, event_id: uuid.UUID, data: ActionInput, *, actor: Actor) -> Event:
    """Apply one action to an event the actor may see."""
    event = get_event(session, event_id, actor)
    rule = RULES[data.action]
    if actor.role not in rule.roles:
        raise Forbidden(f"{actor.role} may not {data.action} an event.")
    if data.action in ("start", "resolve") and actor.role == "worker" and not actor.handles(event):
        raise Forbidden("Only the assigned worker or a worker of the event's grid may do this.")
    if event.version != data.version:
        raise PreconditionFailed(
            f"The event is at version {event.version}, not {data.version}; reload it and retry.",
            current_version=event.version,
        )
    if event.status not in rule.sources:
        raise Conflict(
            f"Cannot {data.action} an event that is {event.status}; "
            f"{data.action} applies to {', '.join(rule.sources)}.",
            status_now=event.status,
        )
    for name in rule.needs:
        if not getattr(data, name):
            raise ValidationFailed(
                f"{data.action} needs a {name}.", errors=[field_error(name, f"Required to {data.action}.")]
            )
    now = session.execute(select(func.now())).scalar_one()
    changes, trail = _changes(session, event, data, actor, now)
    source = event.status
    target = rule.target or source
    result = session.execute(
        update(Event)
        .where(Event.id == event.id, Event.received_at == event.received_at, Event.version == data.version)
        .values(status=target, version=Event.version + 1, updated_at=now, **changes)
        .returning(Event.id)
    ).first()
    if result is None:  # another action got there first
        raise PreconditionFailed("The event changed meanwhile; reload it and retry.")
    session.add(
        EventAction(
            event_id=event.id,
            action=data.action,
            from_status=source,
            to_status=target,
            actor_id=actor.user_id,
            note=data.reason or data.note,
            data=trail or None,
        )
    )
    session.flush()
    metrics.count_action(session, data.action)
    session.expire(event)
    return get_event(session, event.id, actor)


def _changes(
    session: Session, event: Event, data: ActionInput, actor: Actor, now: datetime
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The columns an action sets, and what its trail entry records beyond the note."""
    action = data.action
    if action == "accept":
        return {"accepted_at": now, "due_at": now + _sla(session, event)}, {}
    if action == "reject":
        if data.duplicate_of is None:
            return {}, {}
        if data.duplicate_of == event.id:
            raise ValidationFailed(
                "An event is not a duplicate of itself.", errors=[field_error("duplicate_of", "Same event.")]
            )
        original = session.scalars(select(Event).where(event_named(data.duplicate_of))).one_or_none()
        if original is None or not actor.covers(original):
            raise ValidationFailed(
                "No such event to be a duplicate of.", errors=[field_error("duplicate_of", "Unknown event.")]
            )
        return {}, {"duplicate_of": str(original.id)}
    if action == "dispatch":
        if (data.assignee_id is None) == (data.department is None):
            raise ValidationFailed(
                "Dispatch to a worker (assignee_id) or a department, one of them.",
                errors=[field_error("assignee_id", "Give assignee_id or department.")],
            )
        if data.assignee_id is not None:
            worker = auth.find_user(session, data.assignee_id)
            if worker is None or worker.role != "worker" or worker.disabled:
                raise ValidationFailed(
                    "The assignee must be an active worker.",
                    errors=[field_error("assignee_id", "Not an active worker.")],
                )
        return {"assignee_id": data.assignee_id, "department": data.department}, {
            "assignee_id": data.assignee_id,
            "department": data.department,
        }
    if action == "resolve":
        return {"resolved_at": now, "resolved_by": actor.user_id}, {}
    if action == "close":
        if event.resolved_by is not None and event.resolved_by == actor.user_id:
            raise Forbidden("The person who resolved an event cannot also verify and close it.")
        if mediation.blocks_closing(session, event):
            raise Conflict(
                "The event's mediation case has no outcome yet: set it before closing the event.",
                status_now=event.status,
            )
        return {"closed_at": now, "closed_by": actor.user_id}, {}
    if action in ("return", "reopen"):
        return {"rework_count": Event.rework_count + 1, "closed_at": None, "closed_by": None}, {}
    if action == "escalate":
        current = event.responsible_code or event.district_code
        # A grid's event goes to its village centre, then the town's, then the district's.
        upper = areas.parent_code_of(current) if current is not None else None
        if upper is None:
            raise Conflict("The event already sits with the district centre; it cannot go higher.")
        if areas.get_areas(session, [upper]) == {}:
            raise Conflict(f"There is no centre {upper} above {current}.")
        return {"responsible_code": upper}, {"from_area": current, "to_area": upper}
    return {}, {}


def _sla(session: Session, event: Event) -> timedelta:
    hours = session.scalar(select(Category.sla_hours).where(Category.code == event.category_code))
    return timedelta(hours=hours or 72)


def trail(session: Session, event_id: uuid.UUID, actor: Actor) -> list[EventAction]:
    """The actions taken on an event the actor may see, oldest first."""
    get_event(session, event_id, actor)
    return list(
        session.scalars(select(EventAction).where(EventAction.event_id == event_id).order_by(EventAction.id))
    )
