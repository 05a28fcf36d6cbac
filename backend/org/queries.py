"""Read-only figures over the organisation: an area's profile, check-in rates against the 98%
benchmark, and how fast called units respond."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import LEVELS
from backend.auth import service as auth
from backend.auth.service import Actor
from backend.errors import NotFound, ValidationFailed, field_error
from backend.org.models import Building, EmergencyUnit, PartyBranch, PartyGroup
from backend.org.service import LOCAL_TZ
from backend.stats.queries import DEFAULT_BENCHMARK, benchmark_figures

TIME_KEYS = ("day", "week", "month")
GROUP_KEYS = (*LEVELS, *TIME_KEYS)
MAX_WINDOW_DAYS = 366
DEFAULT_WINDOW_DAYS = 30


def may_read_area(actor: Actor, code: str) -> bool:
    """An area whose figures the actor may read: admins any, supervisors and GIS keys their
    subtree, workers their own grids."""
    if actor.is_admin:
        return True
    if actor.role == "worker":
        return code in actor.grid_codes
    return actor.area_code is not None and code.startswith(actor.area_code)


def _checked_area(session: Session, actor: Actor, code: str) -> Any:
    if areas.level_of(code) is None or not may_read_area(actor, code):
        raise NotFound(f"No area {code}.")
    return areas.get_area(session, code)


# --- profile ----------------------------------------------------------------------------------


def profile(session: Session, code: str, *, actor: Actor) -> dict[str, Any]:
    """What an area holds, summed over its subtree."""
    if not actor.reads_area(code):
        raise NotFound(f"No area {code}.")
    area = areas.get_area(session, code)
    level = area.level

    def count(model: Any, *where: Any) -> Any:
        return (
            select(func.count())
            .select_from(model)
            .where(model.code_column(level) == code, *where)
            .scalar_subquery()
        )

    def total(model: Any, column: Any) -> Any:
        return (
            select(func.coalesce(func.sum(column), 0))
            .where(model.code_column(level) == code)
            .scalar_subquery()
        )

    row = session.execute(
        select(
            count(PartyBranch).label("party_branches"),
            total(PartyBranch, PartyBranch.member_count).label("party_members"),
            count(PartyGroup).label("party_groups"),
            count(PartyGroup, PartyGroup.kind == "building").label("building_groups"),
            count(PartyGroup, PartyGroup.kind == "cooperative").label("cooperative_groups"),
            count(Building).label("buildings"),
            total(Building, Building.households).label("households"),
            total(Building, Building.rental_units).label("rental_units"),
            total(Building, Building.safe_rental_units).label("safe_rental_units"),
            count(Building, Building.access_control).label("buildings_with_access_control"),
            count(EmergencyUnit).label("emergency_units"),
            count(EmergencyUnit, EmergencyUnit.active).label("active_emergency_units"),
        )
    ).one()
    figures = {key: int(value) for key, value in row._mapping.items()}
    return {
        "area": {"code": area.code, "level": area.level, "name": area.name},
        "grids": areas.count_in_subtree(session, code, "grid"),
        **figures,
        "workers": auth.count_workers(session, code),
    }


# --- rates against the benchmark --------------------------------------------------------------


def rate_figures(successes: int, n: int, benchmark: float, name: str) -> dict[str, Any]:
    """A rate with its Wilson interval; below the benchmark only when the interval's top is."""
    return {name: successes / n if n else None, **benchmark_figures(successes, n, benchmark)}


@dataclass(frozen=True)
class Window:
    """Local days [start, end) in Asia/Shanghai."""

    start: date
    end: date


def local_today() -> date:
    return datetime.now(ZoneInfo(LOCAL_TZ)).date()


def check_window(start: date | None, end: date | None, *, include_today: bool = True) -> Window:
    """Default to the last 30 local days, with or without the day in progress; refuse empty or
    over-long windows."""
    end = end or local_today() + timedelta(days=1 if include_today else 0)
    start = start or end - timedelta(days=DEFAULT_WINDOW_DAYS)
    if start >= end:
        raise ValidationFailed(
            "`from` must be before `to`.", errors=[field_error("to", "Must be after from.", location="query")]
        )
    if (end - start).days > MAX_WINDOW_DAYS:
        raise ValidationFailed(
            f"The window is at most {MAX_WINDOW_DAYS} days.",
            errors=[field_error("from", f"At most {MAX_WINDOW_DAYS} days before to.", location="query")],
        )
    return Window(start, end)


def check_group_by(group_by: Sequence[str]) -> list[str]:
    keys = list(group_by)
    problem = None
    if len(keys) > 2:
        problem = "At most two keys."
    elif len(set(keys)) != len(keys):
        problem = "A key is repeated."
    elif sum(key in TIME_KEYS for key in keys) > 1:
        problem = "At most one of day, week, month."
    elif any(key not in GROUP_KEYS for key in keys):
        problem = f"Keys are {', '.join(GROUP_KEYS)}."
    if problem:
        raise ValidationFailed(
            f"Bad group_by: {problem}", errors=[field_error("group_by", problem, location="query")]
        )
    return keys


def _scope_sql(actor: Actor, area: str | None, alias: str) -> tuple[str, dict[str, Any]]:
    """SQL conditions (on whitelisted columns) keeping units in the actor's scope and the area."""
    conditions: list[str] = ["TRUE"]
    params: dict[str, Any] = {}
    if not actor.is_admin:
        if actor.role == "worker":
            conditions.append(f"{alias}.grid_code = ANY(:scope_grids)")
            params["scope_grids"] = list(actor.grid_codes)
        else:
            level = areas.level_of(actor.area_code or "")
            if level is None:
                conditions.append("FALSE")
            else:
                conditions.append(f"{alias}.{level}_code = :scope_area")
                params["scope_area"] = actor.area_code
    if area:
        conditions.append(f"{alias}.{areas.level_of(area)}_code = :area")
        params["area"] = area
    return " AND ".join(conditions), params


def _key_sql(key: str, alias: str, day: str) -> str:
    if key in LEVELS:
        return f"{alias}.{key}_code"
    if key == "day":
        return day
    if key == "week":
        return f"CAST(date_trunc('week', {day}) AS date)"
    return f"to_char({day}, 'YYYY-MM')"


def _grouping(keys: list[str], exprs: list[str]) -> tuple[str, str, str]:
    """Select list, GROUP BY (the groups and the grand total in one pass) and ORDER BY."""
    if not keys:
        return "", "", ""
    select_list = "".join(f"{e} AS {k}, " for k, e in zip(keys, exprs, strict=True))
    select_list += f"GROUPING({exprs[0]}) AS is_total, "
    group_by = f"GROUP BY GROUPING SETS (({', '.join(exprs)}), ())"
    order_by = "ORDER BY is_total, " + ", ".join(keys)
    return select_list, group_by, order_by


def _shape(
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
        _checked_area(session, actor, area)
    window = check_window(start, end, include_today=False)
    keys = check_group_by(group_by)
    where, params = _scope_sql(actor, area, "u")
    exprs = [_key_sql(key, "ud", "ud.day") for key in keys]
    select_list, group_sql, order_sql = _grouping(keys, exprs)
    sql = text(f"""
        WITH days AS (
            SELECT CAST(d AS date) AS day
            FROM generate_series(CAST(:start AS date), CAST(:last AS date), interval '1 day') AS d
        ), unit_days AS (
            SELECT u.id, u.grid_code, u.village_code, u.town_code, u.district_code, days.day
            FROM emergency_units u
            JOIN days ON days.day >= CAST(timezone('{LOCAL_TZ}', u.created_at) AS date)
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
        sql, {**params, "start": window.start, "last": window.end - timedelta(days=1)}
    ).all()
    total, groups = _shape(session, keys, rows)

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
        _checked_area(session, actor, area)
    window = check_window(start, end)
    keys = check_group_by(group_by)
    where, params = _scope_sql(actor, area, "u")
    local_day = f"CAST(timezone('{LOCAL_TZ}', a.created_at) AS date)"
    exprs = [_key_sql(key, "u", local_day) for key in keys]
    select_list, group_sql, order_sql = _grouping(keys, exprs)

    def seconds(column: str, fraction: float) -> str:
        return (
            f"percentile_cont({fraction}) WITHIN GROUP "
            f"(ORDER BY extract(epoch FROM d.{column} - d.dispatched_at))"
        )

    sql = text(f"""
        SELECT {select_list}
               count(DISTINCT d.alert_id) AS alerts,
               count(*) AS dispatches,
               count(d.acknowledged_at) AS acknowledged,
               count(d.arrived_at) AS arrived,
               {seconds("acknowledged_at", 0.5)} AS acknowledge_median_s,
               {seconds("acknowledged_at", 0.9)} AS acknowledge_p90_s,
               {seconds("arrived_at", 0.5)} AS arrive_median_s,
               {seconds("arrived_at", 0.9)} AS arrive_p90_s
        FROM alert_dispatches d
        JOIN alerts a ON a.id = d.alert_id
        JOIN emergency_units u ON u.id = d.unit_id
        WHERE a.created_at >= timezone('{LOCAL_TZ}', CAST(CAST(:start AS date) AS timestamp))
          AND a.created_at < timezone('{LOCAL_TZ}', CAST(CAST(:end AS date) AS timestamp))
          AND {where}
        {group_sql} {order_sql}
    """)  # noqa: S608 - identifiers come from whitelists, values are bound
    rows = session.execute(sql, {**params, "start": window.start, "end": window.end}).all()
    total, groups = _shape(session, keys, rows)

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
