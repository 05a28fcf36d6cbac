"""Patrol norms and compliance rates: read-only SQL over the daily figures.

A unit of compliance is a worker's working day (Monday to Friday, Asia/Shanghai, unless the work
calendar says otherwise: holidays off, their make-up weekend days worked) in one of their
grids whose kind has a norm: it meets the norm when the worker spent at least `min_hours` inside
that grid and covered at least `min_coverage` of it. The rate is worker-days meeting the norm
over working worker-days, with the Wilson 95% interval and `below_benchmark` as for closure
statistics (backend.stats). Figures are per grid: never a track.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import BigInteger, Double, Subquery, Text, select, text
from sqlalchemy.orm import Session

from backend.areas.models import GRID_KINDS, LEVELS
from backend.auth.scope import Actor
from backend.auth.service import Forbidden, require
from backend.common.fields import to_shape
from backend.errors import ValidationFailed, field_error
from backend.patrols.models import CalendarDay, PatrolNorm
from backend.stats import days, export
from backend.stats import queries as stats_queries
from backend.stats.check_ins import rate_figures
from backend.stats.validation import Limits, check_query
from geo.crs import transform_geometry
from geo.geojson import geometry_to_geojson

DEFAULT_BENCHMARK = 0.9
GROUP_KEYS = (*LEVELS, "worker", "day", "week", "month")
LIMITS = Limits(GROUP_KEYS, timedelta(days=366), "366 days")
CALENDAR_SPAN = timedelta(days=3 * 366)


# A worker-day in a grid meets its kind's norm; working days are Monday to Friday unless the
# work calendar (joined as c) lists the day.
COMPLIANT_SQL = "d.inside_seconds >= n.min_hours * 3600 AND d.coverage >= n.min_coverage"
CALENDAR_JOIN = "LEFT JOIN work_calendar c ON c.day = d.day"
WORKING_DAY_SQL = "COALESCE(c.working, extract(isodow FROM d.day) < 6)"


def compliance_by_grid(*, start: date, end: date) -> Subquery:
    """Working worker-days, those meeting the norm and the mean coverage per grid over local
    days [start, end): a subquery (grid_code, worker_days, compliant_days, mean_coverage) for
    the coverage layer. Per grid only: no worker, no track."""
    statement = text(f"""
        SELECT d.grid_code, count(*) AS worker_days,
               count(*) FILTER (WHERE {COMPLIANT_SQL}) AS compliant_days,
               avg(d.coverage) AS mean_coverage
        FROM patrol_grid_days d
        JOIN patrol_norms n ON n.grid_kind = d.grid_kind
        {CALENDAR_JOIN}
        WHERE d.day >= :start AND d.day < :end AND {WORKING_DAY_SQL}
        GROUP BY d.grid_code
    """)  # noqa: S608 - constant SQL fragments
    return (
        statement.bindparams(start=start, end=end)
        .columns(grid_code=Text, worker_days=BigInteger, compliant_days=BigInteger, mean_coverage=Double)
        .subquery("patrol_compliance")
    )


def list_norms(session: Session) -> list[PatrolNorm]:
    return list(session.execute(select(PatrolNorm).order_by(PatrolNorm.grid_kind)).scalars())


def set_norm(
    session: Session, actor: Actor, *, grid_kind: str, min_hours: float, min_coverage: float
) -> PatrolNorm:
    """Set the norm of a grid kind (admins)."""
    require(actor, "admin")
    if grid_kind not in GRID_KINDS:
        raise ValidationFailed(
            "Unknown grid kind.", errors=[field_error("grid_kind", f"One of {', '.join(GRID_KINDS)}.")]
        )
    norm = session.get(PatrolNorm, grid_kind) or PatrolNorm(grid_kind=grid_kind)
    norm.min_hours, norm.min_coverage = min_hours, min_coverage
    session.add(norm)
    session.flush()
    return norm


def calendar(session: Session, *, start: date | None, end: date | None) -> list[CalendarDay]:
    """The work calendar's days in [start, end], in order (default: this local year)."""
    start = start or days.local_today().replace(month=1, day=1)
    end = end or start.replace(month=12, day=31)
    if end < start:
        raise ValidationFailed("The range is empty.", errors=[field_error("to", "Must not be before from.")])
    if end - start > CALENDAR_SPAN:
        raise ValidationFailed(
            "The range is too long.", errors=[field_error("to", "At most 3 years after from.")]
        )
    query = (
        select(CalendarDay).where(CalendarDay.day >= start, CalendarDay.day <= end).order_by(CalendarDay.day)
    )
    return list(session.execute(query).scalars())


def set_calendar_day(
    session: Session, actor: Actor, *, day: date, working: bool, name: str | None
) -> CalendarDay:
    """Mark a day working or not (admins): a holiday, or a weekend day worked in its place."""
    require(actor, "admin")
    entry = session.get(CalendarDay, day) or CalendarDay(day=day)
    entry.working, entry.name = working, name
    entry.updated_at = datetime.now(UTC)
    session.add(entry)
    session.flush()
    return entry


def clear_calendar_day(session: Session, actor: Actor, *, day: date) -> None:
    """Give a day back to the week's rule (admins); a day not listed is left as it is."""
    require(actor, "admin")
    entry = session.get(CalendarDay, day)
    if entry is not None:
        session.delete(entry)
        session.flush()


def compliance(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    start: date | None = None,
    end: date | None = None,
    group_by: Sequence[str] = (),
    benchmark: float = DEFAULT_BENCHMARK,
) -> dict[str, Any]:
    """Compliance with the patrol norms over local days [start, end) (default: the last 30
    complete days), by area, worker or time."""
    if area:
        days.checked_area(session, actor, area)
    keys = list(group_by)
    if "worker" in keys and not actor.sees_people:
        raise Forbidden("Per-person figures (group_by=worker) are not for GIS keys: group by area or time.")
    end = end or days.local_today()
    start = start or end - timedelta(days=days.DEFAULT_WINDOW_DAYS)
    check_query(LIMITS, start=start, end=end, group_by=keys, benchmark=benchmark)
    where, params = days.scope_sql(actor, area, "d")
    exprs = ["d.worker_id" if key == "worker" else days.key_sql(key, "d", "d.day") for key in keys]
    select_list, group_sql, order_sql = days.grouping(keys, exprs)
    sql = text(f"""
        SELECT {select_list}
               count(*) AS worker_days,
               count(*) FILTER (WHERE {COMPLIANT_SQL}) AS compliant_days,
               avg(d.coverage) AS mean_coverage,
               avg(d.inside_seconds) / 3600 AS mean_hours
        FROM patrol_grid_days d
        JOIN patrol_norms n ON n.grid_kind = d.grid_kind
        {CALENDAR_JOIN}
        WHERE d.day >= :start AND d.day < :end AND {WORKING_DAY_SQL} AND {where}
        {group_sql} {order_sql}
    """)  # noqa: S608 - identifiers come from whitelists, values are bound
    rows = session.execute(sql, {**params, "start": start, "end": end}).all()
    total, groups = days.shape(session, keys, rows)

    def figures(data: dict[str, Any]) -> dict[str, Any]:
        n, x = int(data.get("worker_days") or 0), int(data.get("compliant_days") or 0)
        return {
            **data,
            "worker_days": n,
            "compliant_days": x,
            **rate_figures(x, n, benchmark, "compliance_rate"),
        }

    return {
        "area": area,
        "from": start,
        "to": end,
        "group_by": keys,
        "benchmark": benchmark,
        "total": figures(total),
        "groups": [figures(group) for group in groups],
    }


# --- CSV and GeoJSON ----------------------------------------------------------------------------

FIGURE_HEADERS = {
    "worker_days": "worker_days 应巡查人日",
    "compliant_days": "compliant_days 达标人日",
    "compliance_rate": "compliance_rate 巡查达标率",
    "mean_coverage": "mean_coverage 平均覆盖率",
    "mean_hours": "mean_hours 平均巡查时长(小时)",
    "meets_benchmark": "meets_benchmark 达到基准",
    "wilson_low": "wilson_low 置信区间下限",
    "wilson_high": "wilson_high 置信区间上限",
    "below_benchmark": "below_benchmark 显著低于基准",
}


def compliance_csv(figures: dict[str, Any]) -> bytes:
    """One row per group (the totals without a grouping), UTF-8 with a BOM for Excel."""
    keys = list(figures["group_by"])
    if keys and keys[0] in LEVELS:
        keys.insert(1, "area_name")
    headers = {**export.KEY_HEADERS, "area_name": "area_name 名称"}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([headers[k] for k in keys] + list(FIGURE_HEADERS.values()))
    for row in figures["groups"] if figures["group_by"] else [figures["total"]]:
        writer.writerow([export._cell(k, row.get(k)) for k in [*keys, *FIGURE_HEADERS]])
    return out.getvalue().encode("utf-8-sig")


def compliance_features(
    session: Session, actor: Actor, figures: dict[str, Any], crs: str = "wgs84"
) -> list[dict[str, Any]]:
    """A feature per area of the first grouping's level in the query's area, with its figures
    (areas without worker-days too)."""
    level = figures["group_by"][0] if figures["group_by"] else None
    if level not in LEVELS:
        raise ValidationFailed(
            "A map needs an area level first in group_by.",
            errors=[field_error("group_by", "Start with district, town, village or grid.")],
        )
    by_code = {group[level]: group for group in figures["groups"]}
    features = []
    for shape in stats_queries.area_shapes(session, level=level, area=figures["area"] or ""):
        if not actor.reads_area(shape.code):
            continue
        geometry = to_shape(shape.geom)
        if crs != "wgs84":
            geometry = transform_geometry(geometry, "wgs84", crs)
        properties = by_code.get(shape.code) or {level: shape.code, "worker_days": 0, "compliant_days": 0}
        features.append(
            {
                "type": "Feature",
                "id": shape.code,
                "geometry": geometry_to_geojson(geometry, precision=7),
                "properties": {**properties, "area_name": shape.name},
            }
        )
    return features
