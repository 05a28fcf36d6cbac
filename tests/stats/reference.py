"""A pure-Python reference for closure statistics, written from the definitions alone.

It shares no code with backend.stats: the SQL must agree with it on any event history. Every
figure as of a moment is read from the event's trail (its actions in the order they were
taken), never from the event's columns: closed when the last close or reopen at or before then
is a close, reworked as often as it was returned or reopened by then, rejected when a reject
came by then, due only when accepted by then.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

BEIJING = ZoneInfo("Asia/Shanghai")
Z = 1.959964
AREA_COLUMNS = {6: "district", 9: "town", 12: "village", 15: "grid"}


# When a trail made up from an event's columns begins if they give no time.
FIRST_REPORT = datetime(2025, 1, 1, tzinfo=BEIJING)


@dataclass(frozen=True)
class Step:
    """One action of an event's trail."""

    action: str
    at: datetime
    to_status: str


@dataclass
class Ev:
    """An event as the statistics see it: its columns, and its trail.

    Without `steps`, a trail is made up that agrees with the columns: reported, accepted at
    accepted_at, returned `rework_count` times then, rejected then, or closed at closed_at.
    """

    grid: str | None
    district: str = "330100"
    category: str = "environment"
    status: str = "closed"
    due_at: datetime | None = None
    accepted_at: datetime | None = None
    closed_at: datetime | None = None
    rework_count: int = 0
    assignee_id: int | None = None
    reporter_id: int | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    steps: list[Step] | None = None

    @property
    def village(self) -> str | None:
        return self.grid[:12] if self.grid else None

    @property
    def town(self) -> str | None:
        return self.grid[:9] if self.grid else None

    def trail(self) -> list[Step]:
        if self.steps is not None:
            return self.steps
        times = [t for t in (self.accepted_at, self.closed_at, self.due_at) if t is not None]
        start = min(times) if times else FIRST_REPORT
        steps = [Step("report", start, "reported")]
        if self.accepted_at is not None:
            steps.append(Step("accept", self.accepted_at, "accepted"))
        handled = self.accepted_at or start
        steps += [Step("return", handled, "in_progress")] * self.rework_count
        if self.status == "rejected":
            steps.append(Step("reject", handled, "rejected"))
        if self.status == "closed" and self.closed_at is not None:
            steps.append(Step("close", self.closed_at, "closed"))
        return steps


# Where each lifecycle action leads (escalate keeps the status).
TARGET = {
    "accept": "accepted",
    "reject": "rejected",
    "dispatch": "dispatched",
    "start": "in_progress",
    "resolve": "resolved",
    "close": "closed",
    "return": "in_progress",
    "reopen": "in_progress",
}


def lived(grid: str, actions: list[tuple[str, datetime]], *, sla: timedelta, **columns: Any) -> Ev:
    """An event whose trail is these actions at these times (the first a report), with the
    columns they set: accepted_at and due_at (= accepted_at + sla), status, closed_at and
    rework_count."""
    status, steps = "reported", []
    accepted_at = closed_at = None
    for action, at in actions:
        status = "reported" if action == "report" else TARGET.get(action, status)
        steps.append(Step(action, at, status))
        if action == "accept":
            accepted_at = at
        elif action == "close":
            closed_at = at
        elif action == "reopen":
            closed_at = None
    reworks = sum(1 for action, _ in actions if action in ("return", "reopen"))
    return Ev(
        grid=grid,
        status=status,
        due_at=accepted_at + sla if accepted_at is not None else None,
        accepted_at=accepted_at,
        closed_at=closed_at,
        rework_count=reworks,
        steps=steps,
        **columns,
    )


@dataclass(frozen=True)
class AsOf:
    """What the trail says an event stood at, at a moment."""

    accepted: bool
    rejected: bool
    closed_at: datetime | None
    reworks: int


def state_at(event: Ev, moment: datetime) -> AsOf:
    done = [step for step in event.trail() if step.at <= moment]
    closings = [step for step in done if step.action in ("close", "reopen")]
    last = closings[-1] if closings else None
    return AsOf(
        accepted=any(
            step.action == "accept" or (step.action == "report" and step.to_status != "reported")
            for step in done
        ),
        rejected=any(step.action == "reject" for step in done),
        closed_at=last.at if last is not None and last.action == "close" else None,
        reworks=sum(1 for step in done if step.action in ("return", "reopen")),
    )


def insert_events(session: Session, events: list[Ev]) -> None:
    """Write events straight into the table, and their trails (flush, no commit)."""
    if not events:
        return
    session.execute(
        text(
            "INSERT INTO events (id, category_code, description, location, crs, source_lon,"
            " source_lat, assignment, content_hash, grid_code, village_code, town_code,"
            " district_code, status, due_at, accepted_at, closed_at, rework_count, assignee_id,"
            " reporter_id)"
            " VALUES (:id, :category, 'test', ST_SetSRID(ST_MakePoint(120.05, 30.05), 4326),"
            " 'wgs84', 120.05, 30.05, :assignment, 'x', :grid, :village, :town, :district,"
            " :status, :due_at, :accepted_at, :closed_at, :rework_count, :assignee_id,"
            " :reporter_id)"
        ),
        [
            {
                "id": e.id,
                "category": e.category,
                "grid": e.grid,
                "village": e.village,
                "town": e.town,
                "district": e.district,
                "status": e.status,
                "due_at": e.due_at,
                "accepted_at": e.accepted_at,
                "closed_at": e.closed_at,
                "rework_count": e.rework_count,
                "assignee_id": e.assignee_id,
                "reporter_id": e.reporter_id,
                "assignment": "contains" if e.grid else "unassigned",
            }
            for e in events
        ],
    )
    actions = []
    for e in events:
        status = None
        for step in e.trail():
            actions.append(
                {
                    "event_id": e.id,
                    "action": step.action,
                    "from_status": status,
                    "to_status": step.to_status,
                    "created_at": step.at,
                }
            )
            status = step.to_status
    # One row at a time, in trail order: ids follow the order the actions were taken.
    session.execute(
        text(
            "INSERT INTO event_actions (event_id, action, from_status, to_status, created_at)"
            " VALUES (:event_id, :action, :from_status, :to_status, :created_at)"
        ),
        actions,
    )


def percentile_cont(values: list[float], fraction: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def wilson(successes: int, n: int) -> tuple[float, float]:
    p = successes / n
    spread = Z * math.sqrt(p * (1 - p) / n + Z**2 / (4 * n**2))
    denominator = 1 + Z**2 / n
    return ((p + Z**2 / (2 * n) - spread) / denominator, (p + Z**2 / (2 * n) + spread) / denominator)


def figures(events: list[Ev], moment: datetime, benchmark: float) -> dict[str, Any]:
    """The figures of events already known to be due in the window and in scope at `moment`."""
    states = [(e, state_at(e, moment)) for e in events]
    closed = [(e, state) for e, state in states if state.closed_at is not None]
    due = len(events)
    hours = [
        (state.closed_at - e.accepted_at).total_seconds() / 3600
        for e, state in closed
        if state.closed_at is not None and e.accepted_at is not None
    ]
    out: dict[str, Any] = {
        "due": due,
        "closed": len(closed),
        "closed_on_time": sum(1 for e, state in closed if state.closed_at <= e.due_at),  # type: ignore[operator,misc]
        "reworked": sum(1 for _, state in closed if state.reworks >= 1),
        "overdue_open": sum(1 for e, state in states if e.due_at < moment and state.closed_at is None),  # type: ignore[operator,misc]
        "closure_rate": len(closed) / due if due else None,
        "median_hours_to_close": percentile_cont(hours, 0.5),
        "p90_hours_to_close": percentile_cont(hours, 0.9),
    }
    out["on_time_rate"] = out["closed_on_time"] / due if due else None
    out["rework_rate"] = out["reworked"] / len(closed) if closed else None
    out["meets_benchmark"] = due > 0 and out["closure_rate"] >= benchmark
    low, high = wilson(len(closed), due) if due else (None, None)
    out["wilson_low"], out["wilson_high"] = low, high
    out["below_benchmark"] = high is not None and high < benchmark
    return out


def key_value(event: Ev, name: str) -> Any:
    if name in ("district", "town", "village", "grid", "category"):
        return getattr(event, name)
    if name == "worker":
        return event.assignee_id if event.assignee_id is not None else event.reporter_id
    assert event.due_at is not None, "only events with a due time are grouped by it"
    local = event.due_at.astimezone(BEIJING).date()
    if name == "day":
        return local.isoformat()
    if name == "week":
        return (local - timedelta(days=local.weekday())).isoformat()
    return local.replace(day=1).isoformat()


def closure(
    events: list[Ev],
    *,
    area: str,
    window_from: datetime,
    window_to: datetime,
    as_of: datetime,
    group_by: tuple[str, ...] = (),
    benchmark: float = 0.98,
    area_names: dict[str, str],
    category_names: dict[str, tuple[str, str]],
) -> dict[str, Any]:
    """Totals and groups as the API defines them, as of `as_of`: groups ordered by key, nulls
    last."""
    column = AREA_COLUMNS[len(area)]
    due = [
        e
        for e in events
        if getattr(e, column) == area
        and e.due_at is not None
        and window_from <= e.due_at < window_to
        and state_at(e, as_of).accepted
        and not state_at(e, as_of).rejected
    ]
    grouped: dict[tuple[Any, ...], list[Ev]] = defaultdict(list)
    for event in due:
        grouped[tuple(key_value(event, name) for name in group_by)].append(event)

    def order(key: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple((value is None, value if value is not None else 0) for value in key)

    groups = []
    for key in sorted(grouped, key=order) if group_by else []:
        described: dict[str, Any] = {}
        for name, value in zip(group_by, key, strict=True):
            described[name] = value
            if name in AREA_COLUMNS.values():
                described[f"{name}_name"] = area_names.get(value) if value else None
            elif name == "category":
                zh, en = category_names.get(value, (None, None))
                described["category_name_zh"], described["category_name_en"] = zh, en
        groups.append({"key": described, **figures(grouped[key], as_of, benchmark)})
    return {"totals": figures(due, as_of, benchmark), "groups": groups}
