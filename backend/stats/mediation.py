"""Mediation statistics (调解成功率): how disputes taken to mediation ended.

For a scope (an area code), a window [from, to) of outcome times:
- cases: cases in scope whose outcome was set in the window (调解案件数, with an outcome);
- agreements (调解成功), failed_referred (调解不成, referred on), withdrawn (撤回);
- judicially_confirmed: agreements confirmed by a court (司法确认);
- referrals by body: to a court (诉调对接), a petition office (访调对接), the police (警调对接);
- success_rate = agreements / cases (null when cases = 0), against the benchmark (default 0.98)
  with the Wilson 95% interval; below_benchmark when even its upper end is under it;
- days to outcome (outcome_at - opened_at): median and 90th percentile, interpolated.

Grouped by area level, mediator (a case counts once for each of its team), dispute type, or the
day, week or month of the outcome (Beijing time). Per-mediator figures name people: only admins
and the supervisors whose scope holds the area get them (backend.auth.scope).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth.scope import Actor
from backend.auth.service import Forbidden
from backend.db import driver_rows
from backend.errors import NotFound
from backend.mediation.models import DISPUTE_TYPE_NAMES, REFERRAL_BODIES
from backend.stats import LOCAL_TZ
from backend.stats.queries import AREA_LEVELS, DEFAULT_BENCHMARK, benchmark_figures, check_area
from backend.stats.validation import Limits, check_query

GROUP_KEYS = (*AREA_LEVELS, "mediator", "dispute_type", "day", "week", "month")
PER_PERSON_KEYS = ("mediator",)
LIMITS = Limits(GROUP_KEYS, timedelta(days=round(20 * 365.25)), "20 years")
DEFAULT_WINDOW = timedelta(days=365)

KEY_SQL = {
    **{level: f"c.{level}_code" for level in AREA_LEVELS},
    "mediator": "m.value->>'name'",
    "dispute_type": "c.dispute_type",
    **{
        unit: f"date_trunc('{unit}', c.outcome_at AT TIME ZONE :time_zone)::date"
        for unit in ("day", "week", "month")
    },
}


@dataclass(frozen=True)
class MediationFigures:
    cases: int
    agreements: int
    failed_referred: int
    withdrawn: int
    judicially_confirmed: int
    referred_court: int
    referred_petition_office: int
    referred_police: int
    success_rate: float | None
    meets_benchmark: bool
    wilson_low: float | None
    wilson_high: float | None
    below_benchmark: bool
    median_days_to_outcome: float | None
    p90_days_to_outcome: float | None


def mediation_figures(counts: dict[str, Any], benchmark: float) -> MediationFigures:
    """The rates and the verdict from a group's counts (the same arithmetic as the reference)."""
    cases, agreements = counts["cases"], counts["agreements"]
    return MediationFigures(
        cases=cases,
        agreements=agreements,
        failed_referred=counts["failed_referred"],
        withdrawn=counts["withdrawn"],
        judicially_confirmed=counts["judicially_confirmed"],
        **{f"referred_{body}": counts[f"referred_{body}"] for body in REFERRAL_BODIES},
        success_rate=agreements / cases if cases else None,
        **benchmark_figures(agreements, cases, benchmark),
        median_days_to_outcome=counts["median_days"],
        p90_days_to_outcome=counts["p90_days"],
    )


EMPTY_COUNTS: dict[str, Any] = {
    "cases": 0,
    "agreements": 0,
    "failed_referred": 0,
    "withdrawn": 0,
    "judicially_confirmed": 0,
    **{f"referred_{body}": 0 for body in REFERRAL_BODIES},
    "median_days": None,
    "p90_days": None,
}


@dataclass(frozen=True)
class MediationStats:
    area: str
    window_from: datetime
    window_to: datetime
    benchmark: float
    group_by: tuple[str, ...]
    totals: MediationFigures
    groups: list[tuple[dict[str, Any], MediationFigures]]


def check_reader(actor: Actor, area: str, group_by: tuple[str, ...]) -> None:
    if not actor.reads_area(area):
        raise NotFound(f"No area {area} in your scope.")
    if any(key in PER_PERSON_KEYS for key in group_by) and not actor.sees_people_of_area(area):
        raise Forbidden("Per-mediator figures name people: for admins and the supervisors of this area.")


_COUNTS = """count(*) AS cases,
    count(*) FILTER (WHERE c.outcome = 'agreement') AS agreements,
    count(*) FILTER (WHERE c.outcome = 'failed_referred') AS failed_referred,
    count(*) FILTER (WHERE c.outcome = 'withdrawn') AS withdrawn,
    count(*) FILTER (WHERE c.judicially_confirmed) AS judicially_confirmed,
    count(*) FILTER (WHERE c.referred_to = 'court') AS referred_court,
    count(*) FILTER (WHERE c.referred_to = 'petition_office') AS referred_petition_office,
    count(*) FILTER (WHERE c.referred_to = 'police') AS referred_police,
    percentile_cont(0.5) WITHIN GROUP (ORDER BY date_part('epoch', c.outcome_at - c.opened_at) / 86400)
        AS median_days,
    percentile_cont(0.9) WITHIN GROUP (ORDER BY date_part('epoch', c.outcome_at - c.opened_at) / 86400)
        AS p90_days"""


def _sql(scope_column: str, group_by: tuple[str, ...]) -> str:
    """One statement: the cases with an outcome in the window, counted per group (in total
    when there is no grouping; with mediators, a case counts once for each of them)."""
    keys = "".join(f"{KEY_SQL[key]} AS k{i}, " for i, key in enumerate(group_by))
    positions = ", ".join(str(i + 1) for i in range(len(group_by)))
    lateral = "CROSS JOIN LATERAL jsonb_array_elements(c.mediators) m" if "mediator" in group_by else ""
    grouping = f"GROUP BY {positions} ORDER BY {positions}" if group_by else ""
    return f"""
        SELECT {keys}{_COUNTS}
        FROM mediation_cases c {lateral}
        WHERE c.{scope_column} = :area AND c.outcome_at >= :window_from AND c.outcome_at < :window_to
        {grouping}
    """  # noqa: S608 - identifiers come from whitelists, values are bound


def mediation_stats(
    session: Session,
    *,
    area: str,
    window_from: datetime,
    window_to: datetime,
    group_by: tuple[str, ...] = (),
    benchmark: float = DEFAULT_BENCHMARK,
) -> MediationStats:
    """The mediation figures of an area's subtree over a window of outcomes, in total and per group."""
    check_area(session, area)
    check_query(LIMITS, start=window_from, end=window_to, group_by=group_by, benchmark=benchmark)
    scope = f"{areas.level_of(area)}_code"
    params = {"area": area, "window_from": window_from, "window_to": window_to, "time_zone": LOCAL_TZ}
    (total,) = driver_rows(session, _sql(scope, ()), params)
    totals = mediation_figures(total._asdict(), benchmark)
    groups = []
    if group_by:
        rows = driver_rows(session, _sql(scope, group_by), params)
        names = _area_names(session, group_by, rows)
        for row in rows:
            counts = row._asdict()
            key: dict[str, Any] = {}
            for i, name in enumerate(group_by):
                value = counts.pop(f"k{i}")
                key[name] = value.isoformat() if name in ("day", "week", "month") and value else value
                if name in AREA_LEVELS:
                    key[f"{name}_name"] = names.get(value)
                elif name == "dispute_type":
                    key["dispute_type_name"] = DISPUTE_TYPE_NAMES.get(value)
            groups.append((key, mediation_figures(counts, benchmark)))
    return MediationStats(area, window_from, window_to, benchmark, tuple(group_by), totals, groups)


def _area_names(session: Session, group_by: tuple[str, ...], rows: list[Any]) -> dict[str, str]:
    codes = {getattr(row, f"k{i}") for row in rows for i, key in enumerate(group_by) if key in AREA_LEVELS}
    found = areas.get_areas(session, [c for c in codes if c])
    return {code: area.name for code, area in found.items()}
