"""What check-in and alert-response statistics share: windows of local days, their groupings
(by area, or by local day, week or month) and the grouped statement's shape.

SQL is written as in backend.stats.queries: `:name` parameters, always bound (the time zone
too); only identifiers chosen from whitelists are formatted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import LEVELS
from backend.auth.service import Actor
from backend.errors import NotFound
from backend.stats import LOCAL_TZ
from backend.stats.validation import Limits, check_query

TIME_KEYS = ("day", "week", "month")
GROUP_KEYS = (*LEVELS, *TIME_KEYS)
DEFAULT_WINDOW_DAYS = 30
# A check-in rate counts every active unit on every day of the window (23,000 units a year are
# 8.4 million unit-days at Guangzhou's scale), so these windows stop at a year, a leap year's
# 366 days, where closure figures, one pass over indexed events, allow twenty.
LIMITS = Limits(GROUP_KEYS, timedelta(days=366), "366 days")


@dataclass(frozen=True)
class Window:
    """Local days [start, end) in Asia/Shanghai."""

    start: date
    end: date


def local_today() -> date:
    return datetime.now(ZoneInfo(LOCAL_TZ)).date()


def local_date(moment: datetime) -> date:
    """The local day (Asia/Shanghai) an instant falls on."""
    return moment.astimezone(ZoneInfo(LOCAL_TZ)).date()


def window(
    start: date | None,
    end: date | None,
    group_by: Sequence[str],
    *,
    include_today: bool,
    benchmark: float | None = None,
) -> Window:
    """Default to the last 30 local days, with or without the day in progress; refuse what
    every statistics query refuses (backend.stats.validation)."""
    end = end or local_today() + timedelta(days=1 if include_today else 0)
    start = start or end - timedelta(days=DEFAULT_WINDOW_DAYS)
    check_query(LIMITS, start=start, end=end, group_by=group_by, benchmark=benchmark)
    return Window(start, end)


def checked_area(session: Session, actor: Actor, code: str) -> Any:
    """The area, if the caller may read its subtree's figures; otherwise not found."""
    if not actor.reads_area(code):
        raise NotFound(f"No area {code}.")
    return areas.get_area(session, code)


def scope_sql(actor: Actor, area: str | None, alias: str) -> tuple[str, dict[str, Any]]:
    """Rows of `alias` (with area code columns) in the caller's scope and in `area`."""
    where, params = actor.sql_scope(alias)
    if area:
        where += f" AND {alias}.{areas.level_of(area)}_code = :area"
        params = {**params, "area": area}
    return where, params


def key_sql(key: str, alias: str, day: str) -> str:
    """A grouping's SQL: an area code column of `alias`, or the local `day` (an expression)
    truncated to its week or month."""
    if key in LEVELS:
        return f"{alias}.{key}_code"
    if key == "day":
        return day
    if key == "week":
        return f"CAST(date_trunc('week', {day}) AS date)"
    return f"to_char({day}, 'YYYY-MM')"


def grouping(keys: list[str], exprs: list[str]) -> tuple[str, str, str]:
    """Select list, GROUP BY (the groups and the grand total in one pass) and ORDER BY."""
    if not keys:
        return "", "", ""
    select_list = "".join(f"{e} AS {k}, " for k, e in zip(keys, exprs, strict=True))
    select_list += f"GROUPING({exprs[0]}) AS is_total, "
    group_by = f"GROUP BY GROUPING SETS (({', '.join(exprs)}), ())"
    order_by = "ORDER BY is_total, " + ", ".join(keys)
    return select_list, group_by, order_by


def shape(
    session: Session, keys: list[str], rows: Sequence[Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Split the total row from the groups and name the first area key of each group."""
    total: dict[str, Any] = {}
    groups: list[dict[str, Any]] = []
    for row in rows:
        data = dict(row._mapping)
        if not keys or data.pop("is_total"):
            total = {k: v for k, v in data.items() if k not in keys}
        else:
            groups.append({k: v.isoformat() if isinstance(v, date) else v for k, v in data.items()})
    area_key = next((k for k in keys if k in LEVELS), None)
    if area_key:
        names = areas.get_areas(session, {g[area_key] for g in groups})
        for group in groups:
            area = names.get(group[area_key])
            group["area_name"] = area.name if area else None
    return total, groups
