"""Field sync: batches of offline reports, and the worker's inbox of changed tasks."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth.service import Actor, Forbidden
from backend.errors import Conflict, DomainError, ValidationFailed, field_error
from backend.events.models import Event, SyncState
from backend.events.service import Report, report_event


@dataclass
class ItemResult:
    """One batch item's outcome: created, duplicate, conflict or invalid."""

    index: int
    outcome: str
    event: Event | None = None
    problem: DomainError | None = None


def report_batch(
    session: Session, items: Sequence[Report | DomainError], *, actor: Actor, nearest_min_m: float
) -> list[ItemResult]:
    """Store each report in its own savepoint, so one bad item never sinks the others."""
    results = []
    for index, item in enumerate(items):
        if isinstance(item, DomainError):
            results.append(ItemResult(index, "invalid", problem=item))
            continue
        try:
            with session.begin_nested():
                event, created = report_event(session, item, actor=actor, nearest_min_m=nearest_min_m)
            results.append(ItemResult(index, "created" if created else "duplicate", event=event))
        except Conflict as error:
            results.append(ItemResult(index, "conflict", problem=error))
        except (ValidationFailed, Forbidden) as error:
            results.append(ItemResult(index, "invalid", problem=error))
    return results


# --- the inbox ------------------------------------------------------------------------------

# A worker's tasks: assigned to them or in their grids, open or closed in the last 30 days.
_TASKS = """
    SELECT e.id, e.version, e.updated_at FROM events e
    WHERE (e.assignee_id = :me OR e.grid_code = ANY(:grids))
      AND (e.status NOT IN ('closed', 'rejected') OR e.updated_at > now() - interval '30 days')
"""
_CHANGED = text(
    f"WITH cur AS ({_TASKS}),"
    " seen AS (SELECT * FROM unnest(CAST(:ids AS uuid[]), CAST(:versions AS int[])) AS s(id, version))"
    " SELECT cur.id, cur.version FROM cur LEFT JOIN seen USING (id)"
    " WHERE seen.version IS DISTINCT FROM cur.version"
    " ORDER BY cur.updated_at, cur.id LIMIT :limit"
)
_GONE = text(
    f"WITH cur AS ({_TASKS})"
    " SELECT s.id FROM unnest(CAST(:ids AS uuid[])) AS s(id)"
    " WHERE NOT EXISTS (SELECT 1 FROM cur WHERE cur.id = s.id) ORDER BY s.id"
)

_PRUNE = text("DELETE FROM sync_states WHERE user_id = :me AND created_at < now() - interval '30 days'")


@dataclass
class InboxPage:
    changed: list[Event]
    removed: list[uuid.UUID]
    cursor: uuid.UUID
    more: bool


def inbox(
    session: Session,
    actor: Actor,
    cursor: uuid.UUID | None,
    limit: int,
    load: Callable[[list[uuid.UUID]], list[Event]],
) -> InboxPage:
    """Tasks changed since the cursor, and ones that left the worker's scope (once each).

    The cursor names what the phone holds (ids and versions), kept server-side; a page hands
    out at most `limit` changes, and the next cursor records them as held.
    """
    if actor.user_id is None:
        raise Forbidden("The inbox belongs to a user; API keys have none.")
    held: dict[uuid.UUID, int] = {}
    if cursor is not None:
        state = session.get(SyncState, cursor)
        if state is None or state.user_id != actor.user_id:
            raise ValidationFailed(
                "The cursor is not one this API gave you.",
                errors=[field_error("cursor", "Unknown cursor.", location="query")],
            )
        held = dict(zip(state.event_ids, state.versions, strict=True))
    params: dict[str, Any] = {
        "me": actor.user_id,
        "grids": list(actor.grid_codes),
        "ids": list(held),
        "versions": list(held.values()),
    }
    rows = session.execute(_CHANGED, {**params, "limit": limit + 1}).all()
    more = len(rows) > limit
    rows = rows[:limit]
    removed = [row.id for row in session.execute(_GONE, params)]
    for event_id in removed:
        held.pop(event_id)
    for row in rows:
        held[row.id] = row.version
    session.execute(_PRUNE, {"me": actor.user_id})
    state = SyncState(
        id=uuid.uuid4(), user_id=actor.user_id, event_ids=list(held), versions=list(held.values())
    )
    session.add(state)
    session.flush()
    events = {e.id: e for e in load([row.id for row in rows])}
    return InboxPage([events[row.id] for row in rows], removed, state.id, more)
