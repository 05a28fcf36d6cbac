"""The composite index (综合指数): each area's figures scaled to 0-100 and combined with the
weights admins set, computed here only, so that the map, the table and the CSV agree.

Parts (each 0-100, higher is better; a part with nothing to measure is left out and the other
weights count in its place):

- closure_rate: 100 × the closure rate (结案率) of the events due in the window;
- on_time_rate: 100 × the on-time rate;
- overdue_open: 100 × (1 − overdue open events ÷ due events), at least 0;
- check_in_rate: 100 × the emergency units' check-in rate (报岗率) over the window's local days
  up to yesterday (its last year at most);
- alerts_in_progress: 100 ÷ (1 + alerts in progress), an alert being in progress while it is
  under a day old and some unit it called has not arrived.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from backend.auth.scope import Actor
from backend.auth.service import require
from backend.errors import ValidationFailed, field_error
from backend.stats import check_ins, days
from backend.stats.models import INDEX_PARTS, IndexWeight
from backend.stats.queries import AREA_LEVELS, ClosureStats, Figures, Group, area_shapes, empty_figures

# What the index adds to each group (and the totals), in order.
COLUMNS = ("check_in_rate", "alerts_in_progress", *(f"{p}_score" for p in INDEX_PARTS), "composite_index")
IN_PROGRESS_FOR = timedelta(days=1)


def weights(session: Session) -> dict[str, float]:
    """The index's weights, by part, in the parts' order."""
    stored = {row.part: row.weight for row in session.execute(select(IndexWeight.part, IndexWeight.weight))}
    return {part: float(stored.get(part, 0.0)) for part in INDEX_PARTS}


def set_weights(session: Session, actor: Actor, new: dict[str, float]) -> dict[str, float]:
    """Replace the weights (admins); every part is given, and at least one weighs something."""
    require(actor, "admin")
    missing = [part for part in INDEX_PARTS if part not in new]
    if missing:
        raise ValidationFailed(
            "Give every part's weight.", errors=[field_error(part, "Missing weight.") for part in missing]
        )
    if not any(new[part] > 0 for part in INDEX_PARTS):
        raise ValidationFailed(
            "At least one weight must be above 0.", errors=[field_error("weights", "All 0.")]
        )
    for part in INDEX_PARTS:
        row = session.get(IndexWeight, part) or IndexWeight(part=part)
        row.weight = float(new[part])
        row.updated_at = datetime.now().astimezone()
        session.add(row)
    session.flush()
    return weights(session)


@dataclass(frozen=True)
class Extras:
    """What the closure figures do not hold: check-in rate and alerts in progress."""

    check_in_rate: float | None
    alerts_in_progress: int


_ALERTS_IN_PROGRESS = """
    SELECT {key} AS key, count(*) AS n
    FROM alerts a
    WHERE {where} AND a.created_at > :since
      AND EXISTS (SELECT 1 FROM alert_dispatches d WHERE d.alert_id = a.id AND d.arrived_at IS NULL)
    GROUP BY ROLLUP ({key})
"""


def _extras(session: Session, actor: Actor, stats: ClosureStats, level: str) -> dict[str | None, Extras]:
    """Check-in rates and alerts in progress by area code of `level` (None: the totals)."""
    keys = [level]
    # Local days up to yesterday (today's check-ins are still coming), a year at most.
    end = min(days.local_date(stats.window_to), days.local_today())
    start = max(days.local_date(stats.window_from), end - days.LIMITS.max_window)
    rates: dict[str | None, float | None] = {}
    if start < end:
        found = check_ins.check_in_stats(
            session, actor=actor, area=stats.area, start=start, end=end, group_by=keys
        )
        rates[None] = found["total"]["check_in_rate"]
        for group in found["groups"]:
            rates[group[level]] = group["check_in_rate"]
    where, params = days.scope_sql(actor, stats.area, "a")
    key = f"a.{level}_code"
    rows = session.execute(
        text(_ALERTS_IN_PROGRESS.format(key=key, where=where)),  # noqa: S608 - whitelisted names
        {**params, "since": datetime.now().astimezone() - IN_PROGRESS_FOR},
    ).all()
    alerts: dict[str | None, int] = {}
    for row in rows:
        # ROLLUP's grand total comes with a NULL key, the totals' own.
        alerts[row.key] = int(row.n)
    codes = set(rates) | set(alerts)
    return {code: Extras(rates.get(code), alerts.get(code, 0)) for code in codes | {None}}


def scores(figures: Figures, extras: Extras) -> dict[str, float | None]:
    """Each part scaled to 0-100 (None when there is nothing to measure)."""
    due = figures.due
    return {
        "closure_rate": _percent(figures.closure_rate),
        "on_time_rate": _percent(figures.on_time_rate),
        "overdue_open": max(0.0, 100.0 * (1 - figures.overdue_open / due)) if due else None,
        "check_in_rate": _percent(extras.check_in_rate),
        "alerts_in_progress": 100.0 / (1 + extras.alerts_in_progress),
    }


def _percent(rate: float | None) -> float | None:
    return None if rate is None else 100.0 * rate


def combine(part_scores: dict[str, float | None], weights: dict[str, float]) -> float | None:
    """The weighted mean of the parts that have a score; None when no weighed part has one."""
    weighed = [(weights[p], s) for p, s in part_scores.items() if s is not None and weights[p] > 0]
    total = sum(w for w, _ in weighed)
    return round(sum(w * s for w, s in weighed) / total, 1) if total else None


def index_columns(figures: Figures, extras: Extras, weights: dict[str, float]) -> dict[str, Any]:
    part_scores = scores(figures, extras)
    return {
        "check_in_rate": extras.check_in_rate,
        "alerts_in_progress": extras.alerts_in_progress,
        **{f"{p}_score": None if s is None else round(s, 1) for p, s in part_scores.items()},
        "composite_index": combine(part_scores, weights),
    }


def with_index(session: Session, actor: Actor, stats: ClosureStats) -> ClosureStats:
    """The statistics by one area level with every current area of that level in scope (those
    with nothing due too), each group and the totals with the index's columns."""
    if len(stats.group_by) != 1 or stats.group_by[0] not in AREA_LEVELS:
        raise ValidationFailed(
            "The composite index is by area: group by one of district, town, village or grid.",
            errors=[
                field_error("group_by", "Give exactly one area level with index=true.", location="query")
            ],
        )
    level = stats.group_by[0]
    extras = _extras(session, actor, stats, level)
    weight = weights(session)
    found = {g.key[level]: g for g in stats.groups}
    blank_figures, blank_extras = empty_figures(stats.benchmark), Extras(None, 0)
    groups = []
    for shape in area_shapes(session, level=level, area=stats.area, geometry=False):
        group = found.get(shape.code) or Group(
            {level: shape.code, f"{level}_name": shape.name}, blank_figures
        )
        columns = index_columns(group.figures, extras.get(shape.code, blank_extras), weight)
        groups.append(replace(group, extra=columns))
    return replace(
        stats,
        groups=groups,
        totals_extra=index_columns(stats.totals, extras[None], weight),
        extra_columns=COLUMNS,
    )
