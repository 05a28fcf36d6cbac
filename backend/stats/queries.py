"""Closure statistics (结案率) and overdue events: read-only SQL over the events and their trail.

For a scope (an area code: events whose district, town, village or grid column, chosen by the
code's length, equals it), a window [from, to) and an as-of time, every figure is what stood at
the as-of time:

- due (应结案数): events in scope, accepted and not rejected by as_of, with due_at in the window;
- closed (结案数): of those, closed at as_of: the last of their close and reopen actions taken by
  then is a close (closed_at below is the time of that close);
- closed_on_time (按期结案数): of the closed, closed_at <= due_at;
- closure_rate = closed / due, on_time_rate = closed_on_time / due (null when due = 0);
- rework_rate (返工率) = closed events returned or reopened at least once by as_of / closed
  (null when closed = 0);
- hours to close = closed_at - accepted_at over the closed events: the median and the 90th
  percentile, interpolated (percentile_cont; null when none has both times);
- overdue_open: due events not closed as of as_of whose due_at is before as_of;
- meets_benchmark: closure_rate >= benchmark; the Wilson 95% score interval of closed / due
  (wilson_low, wilson_high); below_benchmark: wilson_high < benchmark, so a grid with 3 events
  is flagged only when even its interval's upper end misses the benchmark. (False / null when
  due = 0.)

As of a past moment the figures come from the append-only trail (event_actions, by created_at),
so an event closed then and reopened since still counts as closed then, and last month's figures
stay what they were (an assessment, 考核, keeps them: backend.stats.assessments). The events'
own columns (status, closed_at, rework_count) hold the latest state: when no action that sets them
was taken after as_of (as of now, the default), they are what the trail says and are read as
they are (the fast path, which checks that itself, in the same statement); otherwise a second
statement still reads them for the events they answer for (closed by as_of and not reopened
since; never returned or reopened) and the trail for the few others (see `due_events_sql`).
due_at and accepted_at are set once, on acceptance; no later action changes them. A property
test holds both statements to a reference that reads only the trail.

What remains simplified: an action is dated by its transaction's start (now()), so one committed
after a figure was read but dated at or before its as_of (its transaction was open across that
moment) changes that figure; groups are named with the areas' current names.

Every figure is computed in one SQL statement per request (FILTER clauses, percentile_cont and
GROUPING SETS for the totals); only the per-group counts come back to Python, where the rates and
the Wilson interval are derived from them.

The definitions of due, closed and closed on time are written once (`due_events_sql`,
`COUNTS_SQL`) and the grid_closure GIS layer counts with them too (`closure_by_grid`), with the
rates, the verdict and the Wilson interval in SQL (`benchmark_sql`, the same arithmetic as
`wilson_interval`, which stays the reference).

SQL here is written one way: `:name` parameters, always bound (the time zone too); only
identifiers chosen from whitelists are formatted in.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Subquery,
    Text,
    case,
    cast,
    false,
    func,
    literal,
    select,
    text,
    tuple_,
)
from sqlalchemy.dialects.postgresql import DOUBLE_PRECISION
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import CODE_LENGTH
from backend.auth.service import Actor, Forbidden
from backend.db import driver_rows
from backend.errors import NotFound, ValidationFailed, field_error
from backend.events.models import CHANNEL_NAMES, STATISTICS_ACTIONS, Event
from backend.stats import LOCAL_TZ, rollups
from backend.stats.validation import Limits, query_errors, refuse

AREA_LEVELS = ("district", "town", "village", "grid")
GROUP_KEYS = (*AREA_LEVELS, "category", "channel", "worker", "day", "week", "month")
# Groupings whose groups are people: their figures are personal.
PER_PERSON_KEYS = ("worker",)
DEFAULT_WINDOW = timedelta(days=365)
# Closure figures are counted in one pass over the due events of the scope on its statistics
# index, so even a district's ten years (1.37 million events) answer quickly: windows may span
# twenty years, the whole history a deployment keeps.
LIMITS = Limits(GROUP_KEYS, timedelta(days=round(20 * 365.25)), "20 years")
DEFAULT_BENCHMARK = 0.98
Z95 = 1.959964
HASH_MEMORY = {"work_mem": "64MB", "multiplier": "8"}  # for this transaction only

KEY_SQL = {
    "district": "e.district_code",
    "town": "e.town_code",
    "village": "e.village_code",
    "grid": "e.grid_code",
    "category": "e.category_code",
    "channel": "e.channel",
    "worker": "COALESCE(e.assignee_id, e.reporter_id)",
    **{
        unit: f"date_trunc('{unit}', e.due_at AT TIME ZONE :time_zone)::date"
        for unit in ("day", "week", "month")
    },
}


@dataclass(frozen=True)
class Figures:
    """The closure figures of one group (or of the whole scope)."""

    due: int
    closed: int
    closed_on_time: int
    reworked: int
    overdue_open: int
    closure_rate: float | None
    on_time_rate: float | None
    rework_rate: float | None
    median_hours_to_close: float | None
    p90_hours_to_close: float | None
    meets_benchmark: bool
    wilson_low: float | None
    wilson_high: float | None
    below_benchmark: bool


@dataclass(frozen=True)
class Group:
    """A group's key, e.g. {"grid": "440117103001001", "grid_name": "..."}, and its figures."""

    key: dict[str, Any]
    figures: Figures
    # Columns beyond the closure figures (the composite index's, backend.stats.composite).
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ClosureStats:
    area: str
    window_from: datetime
    window_to: datetime
    as_of: datetime
    benchmark: float
    group_by: tuple[str, ...]
    totals: Figures
    groups: list[Group]
    totals_extra: dict[str, Any] = field(default_factory=dict)
    # The names of the extra columns each group and the totals carry, in order.
    extra_columns: tuple[str, ...] = ()
    # False when the percentiles of hours to close come from the rollups' histograms.
    exact: bool = True


def wilson_interval(successes: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion successes / n (None when n = 0)."""
    if n <= 0:
        return None
    p = successes / n
    z2 = z * z
    denominator = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denominator
    half = z / denominator * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def benchmark_figures(successes: int, n: int, benchmark: float) -> dict[str, Any]:
    """A rate's verdict against the benchmark and its Wilson 95% interval: below the benchmark
    only when even the interval's upper end is (False / None when n = 0)."""
    interval = wilson_interval(successes, n)
    return {
        "meets_benchmark": n > 0 and successes / n >= benchmark,
        "wilson_low": interval[0] if interval else None,
        "wilson_high": interval[1] if interval else None,
        "below_benchmark": interval is not None and interval[1] < benchmark,
    }


def figures(
    *,
    due: int,
    closed: int,
    closed_on_time: int,
    reworked: int,
    overdue_open: int,
    median_hours: float | None,
    p90_hours: float | None,
    benchmark: float,
) -> Figures:
    """Derive the rates and the benchmark verdict from a group's counts."""
    return Figures(
        due=due,
        closed=closed,
        closed_on_time=closed_on_time,
        reworked=reworked,
        overdue_open=overdue_open,
        closure_rate=closed / due if due else None,
        on_time_rate=closed_on_time / due if due else None,
        rework_rate=reworked / closed if closed else None,
        median_hours_to_close=median_hours,
        p90_hours_to_close=p90_hours,
        **benchmark_figures(closed, due, benchmark),
    )


def empty_figures(benchmark: float = DEFAULT_BENCHMARK) -> Figures:
    return figures(
        due=0,
        closed=0,
        closed_on_time=0,
        reworked=0,
        overdue_open=0,
        median_hours=None,
        p90_hours=None,
        benchmark=benchmark,
    )


def check_closure_query(
    session: Session,
    *,
    area: str,
    window_from: datetime,
    window_to: datetime,
    group_by: tuple[str, ...],
    benchmark: float,
) -> None:
    """Refuse a request that cannot be answered, naming each bad field."""
    refuse(
        _area_errors(session, area)
        + query_errors(LIMITS, start=window_from, end=window_to, group_by=group_by, benchmark=benchmark)
    )


def _scope_column(area: str) -> str:
    """The events column that holds the code of an area of this one's level."""
    return str(Event.code_column(areas.level_of(area) or "grid").key)


def _area_errors(session: Session, area: str) -> list[dict[str, Any]]:
    if areas.level_of(area) is None:
        return [field_error("area", "Must be a 6, 9, 12 or 15-digit area code.", location="query")]
    if not session.scalar(text("SELECT EXISTS (SELECT 1 FROM areas WHERE code = :code)"), {"code": area}):
        return [field_error("area", f"No area has the code {area}.", location="query")]
    return []


def check_area(session: Session, area: str) -> None:
    """Refuse a scope that is not the code of an area (current or past)."""
    errors = _area_errors(session, area)
    if errors:
        raise ValidationFailed(errors[0]["message"], errors=errors)


def check_reader(actor: Actor, area: str, group_by: Sequence[str] = ()) -> None:
    """Refuse figures the caller may not read: an area outside their scope is not found (as
    for other reads); per-person groupings need a caller who sees people."""
    if not actor.reads_area(area):
        raise NotFound(f"No area {area} in your scope.")
    personal = [key for key in group_by if key in PER_PERSON_KEYS]
    if personal and not actor.sees_people:
        raise Forbidden(
            f"Per-person figures (group_by={personal[0]}) are not for GIS keys: they carry "
            "person ids. Group by area, category or time instead."
        )


# --- the closure definition, shared with the grid_closure layer --------------------------------


# What an event stood at as of :as_of, from its trail (event_actions): closed when more of its
# close actions than reopen actions were taken by then (the two alternate: only a closed event is
# reopened, and only reopening leaves closed), at the last of those closes; reworked as many
# times as it was returned or reopened by then; rejected when it was rejected by then (rejecting
# is final, and done once). Scalar subqueries, each an index probe per event that needs it.
_TRAIL_CLOSED_AT = """(SELECT CASE
        WHEN count(*) FILTER (WHERE x.action = 'close') > count(*) FILTER (WHERE x.action = 'reopen')
        THEN max(x.created_at) FILTER (WHERE x.action = 'close') END
    FROM event_actions x
    WHERE x.event_id = e.id AND x.created_at <= :as_of AND x.action IN ('close', 'reopen'))"""
_TRAIL_REWORKS = """(SELECT count(*) FROM event_actions x
    WHERE x.event_id = e.id AND x.created_at <= :as_of AND x.action IN ('return', 'reopen'))"""
_TRAIL_REJECTED_AT = """(SELECT min(x.created_at) FROM event_actions x
    WHERE x.event_id = e.id AND x.action = 'reject')"""
# The columns already say what stood at :as_of for an event closed by then (nothing follows a
# close but a reopen, so nothing happened to it since) and for one never returned or reopened
# (closed at most once: at closed_at, or never); the trail is read for the others, a few in a
# hundred.
_CLOSED_AT = f"""CASE WHEN e.closed_at <= :as_of THEN e.closed_at
    WHEN e.rework_count > 0 THEN {_TRAIL_CLOSED_AT} END"""
_REWORKS = f"""CASE WHEN e.rework_count = 0 OR e.closed_at <= :as_of THEN e.rework_count
    ELSE {_TRAIL_REWORKS} END"""
# Whether no statistics action was taken after :as_of, so that the events' columns are what the
# trail says stood then. The latest one is read off ix_event_actions_statistics_since, whatever
# the plan (an EXISTS with :as_of inside would, under a generic plan, scan the whole trail to
# find none after now).
UNCHANGED_SQL = f"""COALESCE((SELECT max(created_at) FROM event_actions
    WHERE {STATISTICS_ACTIONS}) <= :as_of, true)"""


def due_events_sql(
    columns: Sequence[str], where: str, *, from_trail: bool = True, window: str = "window"
) -> str:
    """The due events (应结案) of the window [:window_from, :window_to) as they stood at
    :as_of: the events `e` in `where`, accepted and not rejected by then, due in the window,
    each with `columns`, its due_at and accepted_at (set once, on acceptance; an event written
    with a due time but without its acceptance time, by hand or by an import, counts as
    accepted), its closed_at and rework_count as of :as_of, whether it was closed then (结案,
    `closed`) and closed by its due time (按期结案, `closed_on_time`).

    From the trail where it may differ from the events' columns, or (`from_trail=False`, the
    fast path) from the columns alone: then no row comes out unless UNCHANGED_SQL holds, and
    the caller must read the trail when it does not.

    `columns` and `where` are SQL built from whitelisted identifiers; every value is bound.
    `window` names the window's parameters (:<window>_from, :<window>_to).
    """
    selected = "".join(f"{column}, " for column in columns)
    if not from_trail:
        return f"""
            SELECT {selected}e.due_at, e.accepted_at, e.closed_at, e.rework_count,
                e.closed_at <= :as_of AS closed,
                e.closed_at <= :as_of AND e.closed_at <= e.due_at AS closed_on_time
            FROM events e
            WHERE {where} AND e.status <> 'rejected'
                AND e.due_at >= :{window}_from AND e.due_at < :{window}_to
                AND {UNCHANGED_SQL}
        """
    return f"""
        SELECT {selected}e.due_at, e.accepted_at, {_CLOSED_AT} AS closed_at,
            {_REWORKS} AS rework_count,
            ({_CLOSED_AT}) IS NOT NULL AS closed,
            ({_CLOSED_AT}) <= e.due_at AS closed_on_time
        FROM events e
        WHERE {where} AND e.due_at >= :{window}_from AND e.due_at < :{window}_to
            AND (e.accepted_at <= :as_of OR e.accepted_at IS NULL)
            AND (e.status <> 'rejected' OR {_TRAIL_REJECTED_AT} > :as_of)
    """


# The three counts over the rows of due_events_sql.
COUNTS_SQL = """count(*) AS due,
    count(*) FILTER (WHERE closed) AS closed,
    count(*) FILTER (WHERE closed_on_time) AS closed_on_time"""


def closure_by_grid(*, window_from: datetime, window_to: datetime, as_of: datetime) -> Subquery:
    """Due, closed and closed on time per grid: closure_stats' counts grouped by grid, as a
    subquery (columns grid_code, due, closed, closed_on_time) to join grids to.

    One statement, from the trail: as of now that reads it only for the few rejected or
    reworked events still open.
    """
    statement = text(f"""
        SELECT s.grid_code, {COUNTS_SQL}
        FROM ({due_events_sql(["e.grid_code"], "e.grid_code IS NOT NULL")}) s
        GROUP BY s.grid_code
    """)  # noqa: S608 - identifiers come from whitelists, values are bound
    return (
        statement.bindparams(window_from=window_from, window_to=window_to, as_of=as_of)
        .columns(grid_code=Text, due=BigInteger, closed=BigInteger, closed_on_time=BigInteger)
        .subquery("closure")
    )


def benchmark_sql(
    successes: ColumnElement[Any], n: ColumnElement[Any], benchmark: float, z: float = Z95
) -> dict[str, ColumnElement[Any]]:
    """`benchmark_figures` and the rate in SQL, for figures the database writes out itself.

    The same arithmetic in the same order as wilson_interval (the reference), in double
    precision, so both give the same numbers to the last bit; null and false when n = 0.
    """
    count = func.nullif(cast(n, DOUBLE_PRECISION), 0, type_=DOUBLE_PRECISION)
    rate = cast(successes, DOUBLE_PRECISION) / count
    z_value = literal(z, DOUBLE_PRECISION)
    z2 = z_value * z_value
    one = literal(1.0, DOUBLE_PRECISION)
    denominator = one + z2 / count
    centre = (rate + z2 / (2 * count)) / denominator
    half = z_value / denominator * func.sqrt(rate * (one - rate) / count + z2 / (4 * count * count))
    # GREATEST and LEAST skip nulls: keep the bounds null when n = 0.
    low = case((count.is_not(None), func.greatest(0.0, centre - half)))
    high = case((count.is_not(None), func.least(1.0, centre + half)))
    limit = literal(benchmark, DOUBLE_PRECISION)
    return {
        "rate": rate,
        "meets_benchmark": func.coalesce(rate >= limit, false()),
        "wilson_low": low,
        "wilson_high": high,
        "below_benchmark": func.coalesce(high < limit, false()),
    }


# --- closure statistics -----------------------------------------------------------------------


@lru_cache(maxsize=256)
def _closure_sql(scope_column: str, group_by: tuple[str, ...], from_trail: bool) -> str:
    """One statement: the due events of the scope, counted per group and in total; made once
    per scope level, grouping and path. Its column `unchanged` says whether the fast path
    (from the columns) held; when it did not, its counts are empty.

    The groups are hashed, not sorted: an ordered-set aggregate such as percentile_cont would
    force sorting every due event by its key. Instead each group collects its closed events'
    hours in an array, and percentile_cont runs over that small array once per group.
    """
    keys = [f"{KEY_SQL[key]} AS k{i}" for i, key in enumerate(group_by)]
    key_names = [f"k{i}" for i in range(len(group_by))]
    grouping = f"GROUPING({', '.join(key_names)})" if key_names else "0"
    group_clause = f"GROUP BY GROUPING SETS (({', '.join(key_names)}), ())" if key_names else ""
    names, joins, order = _group_names(group_by)
    due_events = due_events_sql(keys, f"e.{scope_column} = :area", from_trail=from_trail)
    sql = f"""
        WITH g AS (
            SELECT {"".join(f"{k}, " for k in key_names)}{grouping} AS rollup,
                {COUNTS_SQL},
                count(*) FILTER (WHERE closed AND rework_count >= 1) AS reworked,
                count(*) FILTER (WHERE due_at < :as_of AND closed IS NOT TRUE) AS overdue_open,
                array_agg(date_part('epoch', closed_at - accepted_at) / 3600)
                    FILTER (WHERE closed AND accepted_at IS NOT NULL) AS hours
            FROM ({due_events}) s
            {group_clause}
        )
        SELECT {"".join(f"g.k{i}, " for i in range(len(group_by)))}g.rollup, g.due, g.closed,
            g.closed_on_time, g.reworked, g.overdue_open,
            {"true" if from_trail else UNCHANGED_SQL} AS unchanged,
            (SELECT percentile_cont(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (ORDER BY h)
             FROM unnest(g.hours) h) AS hours
            {names}
        FROM g {joins}
        ORDER BY {order}
    """  # noqa: S608 - identifiers come from whitelists, values are bound
    return sql


def _group_names(group_by: tuple[str, ...]) -> tuple[str, str, str]:
    """The name columns of the groups `g` (k0, k1, ...) and rollup flag, the joins they come
    from, and the order of the groups (the totals first, then by key, nulls last)."""
    names, joins = [], []
    for i, key in enumerate(group_by):
        if key in AREA_LEVELS:
            names.append(f", a{i}.name AS k{i}_name")
            joins.append(f"LEFT JOIN areas a{i} ON a{i}.code = g.k{i} AND a{i}.valid_to IS NULL")
        elif key == "category":
            names.append(f", c{i}.name_zh AS k{i}_name_zh, c{i}.name_en AS k{i}_name_en")
            joins.append(f"LEFT JOIN categories c{i} ON c{i}.code = g.k{i}")
    order = ", ".join(["g.rollup DESC", *(f"g.k{i} NULLS LAST" for i in range(len(group_by)))])
    return "".join(names), " ".join(joins), order


def _grouping(keys: dict[str, str], group_by: tuple[str, ...], extra: str = "") -> tuple[str, str, str, str]:
    """For rows `r` of a subquery that selects `inner` (the key columns k0, k1, ...): the key
    columns to select over it, the GROUPING flag of the totals and the GROUP BY clause, with
    `extra` (a column of the rows) in every grouping set."""
    inner = "".join(f"{keys[key]} AS k{i}, " for i, key in enumerate(group_by))
    names = [f"k{i}" for i in range(len(group_by))]
    outer = "".join(f"r.{name}, " for name in names)
    grouping = f"GROUPING({', '.join(f'r.{name}' for name in names)})" if names else "0"
    sets = [", ".join([*(f"r.{name}" for name in names), *([extra] if extra else [])]), extra]
    if names:
        clause = f"GROUP BY GROUPING SETS (({sets[0]}), ({sets[1]}))"
    else:
        clause = f"GROUP BY {extra}" if extra else ""
    return inner, outer, grouping, clause


# --- closure statistics from the rollups ------------------------------------------------------

ROLLUP_KEY_SQL = {
    **{level: f"NULLIF(r.{level}_code, '')" for level in AREA_LEVELS},
    "category": "r.category_code",
    "day": "r.due_day",
    **{unit: f"date_trunc('{unit}', r.due_day::timestamp)::date" for unit in ("week", "month")},
}


def _rollup_scope(area: str) -> tuple[str, dict[str, str]]:
    """The rollups of an area's subtree: equal codes at its level and above (codes nest, so an
    area's code begins with its parents'), a prefix of the rollups' primary key."""
    levels = [level for level in AREA_LEVELS if CODE_LENGTH[level] <= len(area)]
    where = " AND ".join(f"r.{level}_code = :scope_{level}" for level in levels)
    return where, {f"scope_{level}": area[: CODE_LENGTH[level]] for level in levels}


@lru_cache(maxsize=256)
def _rollup_sql(area_length: int, group_by: tuple[str, ...]) -> tuple[str, str]:
    """Two statements over the rollups of a scope's days [:from_day, :to_day): the counts per
    group and in total (due events of days before :today that are not closed are overdue), and
    the histograms of hours to close per group and in total."""
    scope, _ = _rollup_scope("0" * area_length)
    where = f"{scope} AND r.due_day >= :from_day AND r.due_day < :to_day"
    inner, outer, grouping, clause = _grouping(ROLLUP_KEY_SQL, group_by)
    names, joins, order = _group_names(group_by)
    counts = f"""
        WITH g AS (
            SELECT {outer}{grouping} AS rollup, sum(r.due) AS due, sum(r.closed) AS closed,
                sum(r.closed_on_time) AS closed_on_time, sum(r.reworked) AS reworked,
                coalesce(sum(r.due - r.closed) FILTER (WHERE r.due_day < :today), 0) AS overdue_open
            FROM (SELECT {inner}r.* FROM closure_rollups r WHERE {where}) r
            {clause}
            HAVING sum(r.due) > 0
        )
        SELECT g.*{names} FROM g {joins} ORDER BY {order}
    """  # noqa: S608 - identifiers come from whitelists, values are bound
    inner, outer, grouping, clause = _grouping(ROLLUP_KEY_SQL, group_by, "r.bucket")
    hours = f"""
        SELECT {outer}{grouping} AS rollup, r.bucket, sum(r.closed) AS closed
        FROM (SELECT {inner}r.* FROM closure_rollup_hours r WHERE {where}) r
        {clause}
        HAVING sum(r.closed) > 0
    """  # noqa: S608 - identifiers come from whitelists, values are bound
    return counts, hours


@lru_cache(maxsize=256)
def _overdue_today_sql(scope_column: str, group_by: tuple[str, ...]) -> str:
    """The events due in [:due_from, :due_to) (a part of the as-of day) not closed, per group
    and in total: the overdue the rollups' whole days cannot tell."""
    inner, outer, grouping, clause = _grouping(KEY_SQL, group_by)
    return f"""
        SELECT {outer}{grouping} AS rollup, count(*) AS overdue_open
        FROM (SELECT {inner}e.id FROM events e
            WHERE e.{scope_column} = :area AND e.status <> 'rejected' AND e.closed_at IS NULL
                AND e.due_at >= :due_from AND e.due_at < :due_to) r
        {clause}
    """  # noqa: S608 - identifiers come from whitelists, values are bound


def _local_day(moment: datetime) -> date | None:
    """The local date a moment is the midnight of (None if it is not a local midnight)."""
    local = moment.astimezone(ZoneInfo(LOCAL_TZ))
    return local.date() if local.time() == time(0) else None


def _rollup_stats(
    session: Session,
    *,
    area: str,
    window_from: datetime,
    window_to: datetime,
    as_of: datetime,
    group_by: tuple[str, ...],
    benchmark: float,
    exact: bool,
) -> ClosureStats | None:
    """The figures from the rollups, or None when they cannot give them: exact ones asked for,
    a grouping the rollups do not hold (worker, channel), a window not of whole local days, or an
    action taken after as_of (the rollups hold what stands now)."""
    from_day, to_day = _local_day(window_from), _local_day(window_to)
    if exact or not ROLLUP_KEY_SQL.keys() >= set(group_by) or from_day is None or to_day is None:
        return None
    if not driver_rows(session, f"SELECT {UNCHANGED_SQL} AS unchanged", {"as_of": as_of})[0].unchanged:
        return None
    local_as_of = as_of.astimezone(ZoneInfo(LOCAL_TZ))
    today = local_as_of.date()
    params: dict[str, Any] = {
        **_rollup_scope(area)[1],
        "from_day": from_day,
        "to_day": to_day,
        "today": today,
    }
    counts_sql, hours_sql = _rollup_sql(len(area), group_by)
    rows = driver_rows(session, counts_sql, params)
    # Events due earlier today than as_of are overdue if open: read them from the events.
    overdue: dict[tuple[Any, ...] | None, int] = {}
    due_from = max(window_from, datetime.combine(today, time(0), local_as_of.tzinfo))
    due_to = min(window_to, as_of)
    if due_from < due_to:
        today_rows = driver_rows(
            session,
            _overdue_today_sql(_scope_column(area), group_by),
            {"area": area, "due_from": due_from, "due_to": due_to, "time_zone": LOCAL_TZ},
        )
        for row in today_rows:
            overdue[_group_of(group_by, row)] = row.overdue_open
    histograms: dict[tuple[Any, ...] | None, list[tuple[int, int]]] = {}
    for row in driver_rows(session, hours_sql, params):
        histograms.setdefault(_group_of(group_by, row), []).append((row.bucket, row.closed))
    totals = empty_figures(benchmark)
    groups = []
    for row in rows:
        group = _group_of(group_by, row)
        hours = rollups.percentiles(histograms.get(group, ()), (0.5, 0.9)) or (None, None)
        result = figures(
            due=row.due,
            closed=row.closed,
            closed_on_time=row.closed_on_time,
            reworked=row.reworked,
            overdue_open=row.overdue_open + overdue.get(group, 0),
            median_hours=hours[0],
            p90_hours=hours[1],
            benchmark=benchmark,
        )
        if group is None:
            totals = result
        else:
            groups.append(Group(_key(group_by, row), result))
    return ClosureStats(area, window_from, window_to, as_of, benchmark, group_by, totals, groups, exact=False)


def _group_of(group_by: tuple[str, ...], row: Any) -> tuple[Any, ...] | None:
    """A row's group key values, or None for the totals."""
    if row.rollup or not group_by:
        return None
    return tuple(getattr(row, f"k{i}") for i in range(len(group_by)))


# --- closure statistics from the tiers (per grid and local month or year) ---------------------

TIER_KEY_SQL = {**{level: f"NULLIF(r.{level}_code, '')" for level in AREA_LEVELS}, "month": "r.month"}
# Unless the caller asks, a district's figures and any over a longer window come from the tiers
# when whole months of the window have passed: reading them costs about a dozen rows per grid
# (bench/scale.py), where the events cost one row per due event.
LONG_WINDOW = timedelta(days=366)


def _tier_part(
    table: str, period: str, group_by: tuple[str, ...], scope: str, bounds: str, sign: str = ""
) -> str:
    """The rows of one tier in the scope over the periods [:<lo>, :<hi>) (`bounds` "lo hi"),
    their counts added, or taken away (`sign` "-")."""
    low, high = bounds.split()
    keys = "".join(f"{TIER_KEY_SQL[key]} AS k{i}, " for i, key in enumerate(group_by))
    return f"""SELECT {keys}{sign}1 AS sign, {sign}r.due AS due, {sign}r.closed AS closed,
            {sign}r.closed_on_time AS closed_on_time, {sign}r.reworked AS reworked,
            {sign}(r.due - r.closed) AS overdue_open, r.hours
        FROM {table} r WHERE {scope}r.{period} >= :{low} AND r.{period} < :{high}"""


# Planned once per connection (generic): planning it looks at every month's partition of the trail.
_UNCHANGED = f"SELECT {UNCHANGED_SQL} AS unchanged"


def _edge_part(scope_column: str | None, group_by: tuple[str, ...], window: str, sign: str = "") -> str:
    """The due events of the window :<window>_from, :<window>_to (as of now: the fast path),
    one row each, with the tiers' columns: its counts (added, or taken away: `sign` "-") and its
    hours' histogram entry."""
    columns = [f"{KEY_SQL[key]} AS k{i}" for i, key in enumerate(group_by)]
    # The whole city: each district's due events, one index range each.
    where = f"e.{scope_column} = :area" if scope_column else "e.district_code = ANY(:districts)"
    due = due_events_sql(columns, where, from_trail=False, window=window)
    keys = "".join(f"s.k{i}, " for i in range(len(group_by)))
    return f"""SELECT {keys}{sign}1 AS sign, {sign}1 AS due,
            {sign}coalesce(s.closed, false)::int AS closed,
            {sign}coalesce(s.closed_on_time, false)::int AS closed_on_time,
            {sign}coalesce(s.closed AND s.rework_count >= 1, false)::int AS reworked,
            {sign}(s.due_at < :as_of AND s.closed IS NOT TRUE)::int AS overdue_open,
            CASE WHEN s.closed AND s.accepted_at IS NOT NULL THEN closure_hours_entry(
                closure_hours_bucket(date_part('epoch', s.closed_at - s.accepted_at) / 3600), 1)
            END AS hours
        FROM ({due}) s"""


@lru_cache(maxsize=256)
def _tiers_sql(area_length: int, group_by: tuple[str, ...], edges: tuple[str, ...]) -> str:
    """One statement: per group, the counts and the concatenated histograms (those added, and
    those taken away) of the parts of a window `rollups.cover` cuts: whole years (unless
    grouped by month), whole months, and due events at the `edges` that are not empty (an
    edge's events are found in every month's partition of events: one left out is as many
    partitions fewer to plan). Empty ranges of the tiers (their low end at or after their high
    end) read nothing."""
    scope = _rollup_scope("0" * area_length)[0] if area_length else "r.district_code <> ''"
    scope = f"{scope} AND "
    months = "closure_rollup_months"
    parts = [
        _tier_part(months, "month", group_by, scope, "months_from years_from"),
        _tier_part(months, "month", group_by, scope, "years_from months_from", "-"),
        _tier_part(months, "month", group_by, scope, "years_to months_to"),
    ]
    if "month" not in group_by:
        parts.append(_tier_part("closure_rollup_years", "year", group_by, scope, "years_from years_to"))
    scope_column = _scope_column("0" * area_length) if area_length else None
    signs = {"head": "", "less": "-", "tail": ""}
    parts += [_edge_part(scope_column, group_by, edge, signs[edge]) for edge in edges]
    keys = [f"r.k{i}" for i in range(len(group_by))]
    names, joins, order = _group_names(group_by)
    union = "\nUNION ALL\n".join(parts)
    return f"""
        WITH g AS (
            SELECT {"".join(f"{k}, " for k in keys)}0 AS rollup, sum(r.due) AS due,
                sum(r.closed) AS closed, sum(r.closed_on_time) AS closed_on_time,
                sum(r.reworked) AS reworked, sum(r.overdue_open) AS overdue_open,
                string_agg(r.hours, ''::bytea) FILTER (WHERE r.sign > 0) AS hours,
                string_agg(r.hours, ''::bytea) FILTER (WHERE r.sign < 0) AS hours_less
            FROM ({union}) r
            {f"GROUP BY {', '.join(keys)}" if keys else ""}
            HAVING sum(r.due) > 0
        )
        SELECT g.*{names} FROM g {joins} ORDER BY {order}
    """  # noqa: S608 - identifiers come from whitelists, values are bound


def tier_stats(
    session: Session,
    *,
    area: str,
    window_from: datetime,
    window_to: datetime,
    as_of: datetime,
    group_by: tuple[str, ...],
    benchmark: float,
) -> ClosureStats | None:
    """The figures from the tiers: whole local years and months that ended by as_of (the
    window's, or a little more, the excess taken away), and the due events of the days around
    them; None when the tiers cannot give them
    (a grouping they do not hold, no whole month, or an action taken after as_of). `area` ""
    is every district (the whole city; the API's scopes stop at the district)."""
    if not TIER_KEY_SQL.keys() >= set(group_by):
        return None
    local = ZoneInfo(LOCAL_TZ)
    start = window_from.astimezone(local)
    first = start.date() + timedelta(days=0 if start.time() == time(0) else 1)
    plan = rollups.cover(first, min(window_to, as_of).astimezone(local).date(), years="month" not in group_by)
    if plan is None:
        return None
    if not driver_rows(session, _UNCHANGED, {"as_of": as_of}, generic=True)[0].unchanged:
        return None
    params: dict[str, Any] = {
        **(_rollup_scope(area)[1] if area else {"districts": _district_codes(session)}),
        "area": area,
        "as_of": as_of,
        "time_zone": LOCAL_TZ,
        "months_from": plan.start,
        "months_to": plan.stop,
        "years_from": plan.years[0],
        "years_to": plan.years[1],
        # Days before the first whole month, or (when it starts before the window) taken away.
        "head_from": window_from,
        "head_to": datetime.combine(plan.start, time(0), local),
        "less_from": datetime.combine(plan.start, time(0), local),
        "less_to": window_from,
        "tail_from": datetime.combine(plan.stop, time(0), local),
        "tail_to": window_to,
    }
    edges = tuple(edge for edge in ("head", "less", "tail") if params[f"{edge}_from"] < params[f"{edge}_to"])
    rows = driver_rows(session, _tiers_sql(len(area), group_by, edges), params, binary=True, generic=True)
    histograms = rollups.merged([row.hours for row in rows]) - rollups.merged(
        [row.hours_less for row in rows]
    )
    hours = rollups.percentiles_of(histograms, (0.5, 0.9))
    totals_hours = rollups.percentiles_of(histograms.sum(axis=0, keepdims=True), (0.5, 0.9))[0]
    counts = ("due", "closed", "closed_on_time", "reworked", "overdue_open")
    total = dict.fromkeys(counts, 0)
    groups = []
    for row, group_hours in zip(rows, hours, strict=True):
        values = {name: int(getattr(row, name)) for name in counts}
        for name in counts:
            total[name] += values[name]
        if group_by:
            groups.append(Group(_key(group_by, row), _tier_figures(values, group_hours, benchmark)))
    totals = _tier_figures(total, totals_hours, benchmark) if rows else empty_figures(benchmark)
    return ClosureStats(area, window_from, window_to, as_of, benchmark, group_by, totals, groups, exact=False)


def _district_codes(session: Session) -> list[str]:
    return [
        row.code
        for row in driver_rows(session, "SELECT DISTINCT code FROM areas WHERE level = 'district'", {})
    ]


def _tier_figures(counts: dict[str, int], hours: list[float] | None, benchmark: float) -> Figures:
    return figures(
        **counts,
        median_hours=hours[0] if hours else None,
        p90_hours=hours[1] if hours else None,
        benchmark=benchmark,
    )


def reads_tiers_by_default(area: str, window_from: datetime, window_to: datetime) -> bool:
    """Whether figures not asked to be exact come from the tiers: a district's, or any over
    more than LONG_WINDOW."""
    return areas.level_of(area) == "district" or window_to - window_from > LONG_WINDOW


_HASH_MEMORY_SQL = (
    "SELECT set_config('work_mem', :work_mem, true) AS w,"
    " set_config('hash_mem_multiplier', :multiplier, true) AS m"
)


def closure_stats(
    session: Session,
    *,
    area: str,
    window_from: datetime,
    window_to: datetime,
    as_of: datetime,
    group_by: tuple[str, ...] = (),
    benchmark: float = DEFAULT_BENCHMARK,
    exact: bool | None = True,
) -> ClosureStats:
    """The closure figures of an area's subtree over a window, in total and per group.

    With `exact=False`, from the rollups when they can give them: the tiers (whole local months
    and years, the edges from the events), else the daily rollups (whole local days); the
    counts are the same, the percentiles of hours to close come from histograms
    (backend.stats.rollups states the error bound). With `exact=None`, from the tiers when
    `reads_tiers_by_default` (large scopes and long windows), else from the events. The daily
    rollups are not read by default: at Guangzhou's density (about one due event per grid,
    category and day) they hold about as many rows as there are events, and reading them is
    slower than reading the events' covering statistics indexes (bench/scale.py).
    """
    group_by = tuple(group_by)
    check_closure_query(
        session,
        area=area,
        window_from=window_from,
        window_to=window_to,
        group_by=group_by,
        benchmark=benchmark,
    )
    if exact is False or (exact is None and reads_tiers_by_default(area, window_from, window_to)):
        tiered = tier_stats(
            session,
            area=area,
            window_from=window_from,
            window_to=window_to,
            as_of=as_of,
            group_by=group_by,
            benchmark=benchmark,
        )
        if tiered is not None:
            return tiered
    approximate = _rollup_stats(
        session,
        area=area,
        window_from=window_from,
        window_to=window_to,
        as_of=as_of,
        group_by=group_by,
        benchmark=benchmark,
        exact=exact is not False,
    )
    if approximate is not None:
        return approximate
    # Hash the groups rather than sort every due event by its key. The planner budgets 8 kB of
    # memory for each group's array of hours and so sorts a district's grids; they take about
    # 1 kB (5 MB for 5,000 grids over a year), and hashing them takes two thirds of the time.
    driver_rows(session, _HASH_MEMORY_SQL, HASH_MEMORY)
    params = {
        "area": area,
        "window_from": window_from,
        "window_to": window_to,
        "as_of": as_of,
        "time_zone": LOCAL_TZ,
    }
    scope = _scope_column(area)
    # SQLAlchemy's result handling of thousands of groups costs more than the driver's. First
    # the events' columns (as of now), then, if an action was taken since as_of, the trail.
    rows = driver_rows(session, _closure_sql(scope, group_by, False), params)
    if not rows or not rows[0].unchanged:
        rows = driver_rows(session, _closure_sql(scope, group_by, True), params)
    totals = empty_figures(benchmark)
    groups = []
    for row in rows:
        hours = row.hours or (None, None)
        result = figures(
            due=row.due,
            closed=row.closed,
            closed_on_time=row.closed_on_time,
            reworked=row.reworked,
            overdue_open=row.overdue_open,
            median_hours=hours[0],
            p90_hours=hours[1],
            benchmark=benchmark,
        )
        if row.rollup:
            totals = result
        elif not group_by:
            totals = result
        else:
            groups.append(Group(_key(group_by, row), result))
    return ClosureStats(area, window_from, window_to, as_of, benchmark, group_by, totals, groups)


def _key(group_by: tuple[str, ...], row: Any) -> dict[str, Any]:
    key: dict[str, Any] = {}
    for i, name in enumerate(group_by):
        value = getattr(row, f"k{i}")
        if name in ("day", "week", "month"):
            key[name] = value.isoformat() if value is not None else None
        else:
            key[name] = value
        if name in AREA_LEVELS:
            key[f"{name}_name"] = getattr(row, f"k{i}_name")
        elif name == "category":
            key["category_name_zh"] = getattr(row, f"k{i}_name_zh")
            key["category_name_en"] = getattr(row, f"k{i}_name_en")
        elif name == "channel":
            key["channel_name"] = CHANNEL_NAMES.get(value)
    return key


def require_area_level_first(group_by: tuple[str, ...]) -> str:
    """The area level a map of the figures is drawn at: the first grouping must be one."""
    if not group_by or group_by[0] not in AREA_LEVELS:
        raise ValidationFailed(
            "A map needs the first grouping to be an area level.",
            errors=[
                field_error(
                    "group_by",
                    "The first grouping must be district, town, village or grid for GeoJSON.",
                    location="query",
                )
            ],
        )
    return group_by[0]


@dataclass(frozen=True)
class AreaShape:
    code: str
    name: str
    geom: Any  # WKB from the database
    geojson: str | None = None  # RFC 7946 text written by PostGIS, instead of `geom`, when asked for


def area_shapes(
    session: Session, *, level: str, area: str, geometry: bool = True, geojson: bool = False
) -> list[AreaShape]:
    """The current polygons of one level's areas within (or above) an area, by code (without
    their polygons when `geometry` is false; as GeoJSON text, written by PostGIS, when `geojson`:
    thousands of polygons take it milliseconds, and Python most of a second)."""
    columns = "NULL AS geom, ST_AsGeoJSON(ST_ForcePolygonCCW(geom), 7)" if geojson else "geom, NULL"
    if not geometry:
        columns = "NULL AS geom, NULL"
    length = CODE_LENGTH[level]
    if length >= len(area):
        where, params = "left(code, :n) = :area", {"n": len(area), "area": area}
    else:
        where, params = "code = :code", {"code": area[:length]}
    rows = session.execute(
        text(
            f"SELECT code, name, {columns} AS geojson FROM areas"
            f" WHERE level = :level AND valid_to IS NULL"
            f" AND {where} ORDER BY code"
        ),
        {"level": level, **params},
    )
    return [AreaShape(row.code, row.name, row.geom, row.geojson) for row in rows]


def overdue_events(
    session: Session,
    *,
    area: str,
    as_of: datetime,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[Event]:
    """Open events (neither closed nor rejected) past their due time, oldest due first."""
    check_area(session, area)
    query = (
        select(Event)
        .where(
            Event.code_column(areas.level_of(area) or "grid") == area,
            Event.status.not_in(("closed", "rejected")),
            Event.due_at < as_of,
        )
        .order_by(Event.due_at, Event.id)
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(Event.due_at, Event.id) > tuple_(*after))
    return list(session.scalars(query))
