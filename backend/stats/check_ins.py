"""Check-in rates (报岗率) of emergency units against the benchmark: read-only SQL."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.stats import LOCAL_TZ, days
from backend.stats.queries import DEFAULT_BENCHMARK, benchmark_figures


def rate_figures(successes: int, n: int, benchmark: float, name: str) -> dict[str, Any]:
    """A rate with its Wilson interval; below the benchmark only when the interval's top is."""
    return {name: successes / n if n else None, **benchmark_figures(successes, n, benchmark)}


def check_in_stats(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    start: date | None = None,
    end: date | None = None,
    group_by: Sequence[str] = (),
    benchmark: float = DEFAULT_BENCHMARK,
) -> dict[str, Any]:
    """Check-in (报岗) rates over local days [start, end): for each day, every unit that is
    active and existed that day counts once; it checked in if it has a check-in that day.
    By default the last 30 complete days: the day in progress would drag the rate down."""
    if area:
        days.checked_area(session, actor, area)
    keys = list(group_by)
    window = days.window(start, end, keys, include_today=False, benchmark=benchmark)
    where, params = days.scope_sql(actor, area, "u")
    exprs = [days.key_sql(key, "ud", "ud.day") for key in keys]
    select_list, group_sql, order_sql = days.grouping(keys, exprs)
    sql = text(f"""
        WITH days AS (
            SELECT CAST(d AS date) AS day
            FROM generate_series(CAST(:start AS date), CAST(:last AS date), interval '1 day') AS d
        ), unit_days AS (
            SELECT u.id, u.grid_code, u.village_code, u.town_code, u.district_code, days.day
            FROM emergency_units u
            JOIN days ON days.day >= CAST(timezone(:time_zone, u.created_at) AS date)
            WHERE u.active AND {where}
        )
        SELECT {select_list}
               count(DISTINCT ud.id) AS active_units,
               count(DISTINCT c.unit_id) AS units_checked_in,
               count(*) AS active_unit_days,
               count(c.id) AS checked_in_unit_days
        FROM unit_days ud
        LEFT JOIN check_ins c ON c.unit_id = ud.id AND c.local_day = ud.day
        {group_sql} {order_sql}
    """)  # noqa: S608 - identifiers come from whitelists, values are bound
    rows = session.execute(
        sql,
        {
            **params,
            "start": window.start,
            "last": window.end - timedelta(days=1),
            "time_zone": LOCAL_TZ,
        },
    ).all()
    total, groups = days.shape(session, keys, rows)

    def figures(data: dict[str, Any]) -> dict[str, Any]:
        n, x = int(data.get("active_unit_days") or 0), int(data.get("checked_in_unit_days") or 0)
        return {
            **data,
            "active_units": int(data.get("active_units") or 0),
            "units_checked_in": int(data.get("units_checked_in") or 0),
            "active_unit_days": n,
            "checked_in_unit_days": x,
            **rate_figures(x, n, benchmark, "check_in_rate"),
        }

    return {
        "area": area,
        "from": window.start,
        "to": window.end,
        "group_by": keys,
        "benchmark": benchmark,
        "total": figures(total),
        "groups": [figures(g) for g in groups],
    }
