"""How fast called emergency units answer one-point calls (一点呼叫): read-only SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.stats import LOCAL_TZ, days

# Seconds from a unit's call to its answer and to its arrival.
ACKNOWLEDGE_S = "extract(epoch FROM d.acknowledged_at - d.dispatched_at)"
ARRIVE_S = "extract(epoch FROM d.arrived_at - d.dispatched_at)"


def response_stats(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    start: date | None = None,
    end: date | None = None,
    group_by: Sequence[str] = (),
) -> dict[str, Any]:
    """How fast called units acknowledge (一线响应) and arrive (一片集结), by the unit's area or
    by the local day, week or month of the alert; alerts raised in local days [start, end)."""
    if area:
        days.checked_area(session, actor, area)
    keys = list(group_by)
    window = days.window(start, end, keys, include_today=True)
    where, params = days.scope_sql(actor, area, "u")
    exprs = [days.key_sql(key, "u", "CAST(timezone(:time_zone, a.created_at) AS date)") for key in keys]
    select_list, group_sql, order_sql = days.grouping(keys, exprs)
    sql = text(f"""
        SELECT {select_list}
               count(DISTINCT d.alert_id) AS alerts,
               count(*) AS dispatches,
               count(d.acknowledged_at) AS acknowledged,
               count(d.arrived_at) AS arrived,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY {ACKNOWLEDGE_S}) AS acknowledge_median_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY {ACKNOWLEDGE_S}) AS acknowledge_p90_s,
               percentile_cont(0.5) WITHIN GROUP (ORDER BY {ARRIVE_S}) AS arrive_median_s,
               percentile_cont(0.9) WITHIN GROUP (ORDER BY {ARRIVE_S}) AS arrive_p90_s
        FROM alert_dispatches d
        JOIN alerts a ON a.id = d.alert_id
        JOIN emergency_units u ON u.id = d.unit_id
        WHERE a.created_at >= timezone(:time_zone, CAST(CAST(:start AS date) AS timestamp))
          AND a.created_at < timezone(:time_zone, CAST(CAST(:end AS date) AS timestamp))
          AND {where}
        {group_sql} {order_sql}
    """)  # noqa: S608 - identifiers come from whitelists, values are bound
    rows = session.execute(
        sql, {**params, "start": window.start, "end": window.end, "time_zone": LOCAL_TZ}
    ).all()
    total, groups = days.shape(session, keys, rows)

    def figures(data: dict[str, Any]) -> dict[str, Any]:
        out = dict(data)
        for name in ("alerts", "dispatches", "acknowledged", "arrived"):
            out[name] = int(data.get(name) or 0)
        for name in ("acknowledge_median_s", "acknowledge_p90_s", "arrive_median_s", "arrive_p90_s"):
            out[name] = float(data[name]) if data.get(name) is not None else None
        n = out["dispatches"]
        out["acknowledge_rate"] = out["acknowledged"] / n if n else None
        out["arrive_rate"] = out["arrived"] / n if n else None
        return out

    return {
        "area": area,
        "from": window.start,
        "to": window.end,
        "group_by": keys,
        "total": figures(total),
        "groups": [figures(g) for g in groups],
    }
