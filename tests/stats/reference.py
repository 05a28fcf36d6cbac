"""A pure-Python reference for closure statistics, written from the definitions alone.

It shares no code with backend.stats: the SQL must agree with it on any event history.
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


@dataclass
class Ev:
    """An event as the statistics see it."""

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

    @property
    def village(self) -> str | None:
        return self.grid[:12] if self.grid else None

    @property
    def town(self) -> str | None:
        return self.grid[:9] if self.grid else None


def insert_events(session: Session, events: list[Ev]) -> None:
    """Write events straight into the table (flush, no commit)."""
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


def figures(events: list[Ev], as_of: datetime, benchmark: float) -> dict[str, Any]:
    """The figures of events already known to be due in the window and in scope."""
    closed = [e for e in events if e.closed_at is not None and e.closed_at <= as_of]
    closed_ids = {e.id for e in closed}
    due = len(events)
    hours = [
        (e.closed_at - e.accepted_at).total_seconds() / 3600 for e in closed if e.accepted_at is not None
    ]
    out: dict[str, Any] = {
        "due": due,
        "closed": len(closed),
        "closed_on_time": sum(1 for e in closed if e.closed_at <= e.due_at),
        "reworked": sum(1 for e in closed if e.rework_count >= 1),
        "overdue_open": sum(1 for e in events if e.due_at < as_of and e.id not in closed_ids),
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
    """Totals and groups as the API defines them: groups ordered by key, nulls last."""
    column = AREA_COLUMNS[len(area)]
    due = [
        e
        for e in events
        if getattr(e, column) == area
        and e.status != "rejected"
        and e.due_at is not None
        and window_from <= e.due_at < window_to
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
