"""Assessments (考核): a month's closure figures of an area's subtree, frozen as they stood at its
end.

Freezing an area's month counts the events due in that local month (Asia/Shanghai, LOCAL_TZ) as
closure statistics do, as of the month's end, not of the moment of freezing: a period's figures
as they stood at its end (DESIGN.md). Figures as of a past moment come from the trail, so the
month may be frozen any time after it ended with the same result, and /stats/closure for the
same window with as_of = the month's end keeps giving them; the assessment keeps them even where
that could not (the areas' names of the day, a trail row written late).

What is frozen: the area's totals and the figures of every area of each level below it down to
the grids (a district's towns, villages and grids; a grid's totals only), with the events of the
subtree in no area of a level as that level's group without a code. No per-person figures.

An area's month is frozen once: the rows are never updated (the database refuses it), and a
second freeze of the same area and month is a conflict. There are no versions: as of the month's
end the figures cannot come out differently.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth.service import Actor, Forbidden
from backend.errors import Conflict, NotFound, ValidationFailed, field_error
from backend.stats import LOCAL_TZ, queries
from backend.stats.models import Assessment, AssessmentFigures
from backend.stats.queries import AREA_LEVELS, ClosureStats, Figures, Group

FREEZERS = ("admin", "supervisor")
FIGURE_FIELDS = tuple(field.name for field in fields(Figures))


@dataclass(frozen=True)
class Summary:
    """An assessment with its totals, as lists show it."""

    id: int
    area: str
    area_name: str | None
    month: str  # YYYY-MM
    window_from: datetime
    window_to: datetime
    as_of: datetime
    benchmark: float
    levels: tuple[str, ...]
    created_at: datetime
    created_by: int | None
    totals: Figures


def levels_below(area: str) -> tuple[str, ...]:
    """The levels an area's assessment holds figures by: those below it, down to the grids."""
    level = areas.level_of(area)
    return AREA_LEVELS[AREA_LEVELS.index(level) + 1 :] if level is not None else ()


def month_window(month: date) -> tuple[datetime, datetime]:
    """The local month's bounds [first midnight, next first midnight), in UTC."""
    zone = ZoneInfo(LOCAL_TZ)
    following = date(month.year + month.month // 12, month.month % 12 + 1, 1)
    start = datetime(month.year, month.month, 1, tzinfo=zone)
    end = datetime(following.year, following.month, 1, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def freeze(
    session: Session,
    *,
    actor: Actor,
    area: str,
    month: date,
    benchmark: float = queries.DEFAULT_BENCHMARK,
) -> Assessment:
    """Freeze the closure figures of an area's subtree for the events due in a local month that
    has ended, as of its end."""
    if actor.role not in FREEZERS:
        raise Forbidden("Only administrators and supervisors freeze assessments.")
    queries.check_reader(actor, area)
    queries.check_area(session, area)
    month = month.replace(day=1)
    window_from, window_to = month_window(month)
    now = session.execute(select(func.now())).scalar_one()
    if window_to > now:
        raise ValidationFailed(
            f"{month:%Y-%m} has not ended yet; an assessment freezes a month as it stood at its end.",
            errors=[field_error("month", f"Not over until {window_to.isoformat()}.")],
        )
    existing = session.scalar(
        select(Assessment.id).where(Assessment.area_code == area, Assessment.month == month)
    )
    if existing is not None:
        raise Conflict(
            f"{area}'s {month:%Y-%m} was frozen already, as assessment {existing}; assessments "
            "are never changed.",
            assessment_id=existing,
        )
    levels = levels_below(area)
    groupings: list[tuple[str, ...]] = [(level,) for level in levels] or [()]
    runs = [
        queries.closure_stats(
            session,
            area=area,
            window_from=window_from,
            window_to=window_to,
            as_of=window_to,
            group_by=grouping,
            benchmark=benchmark,
            # Frozen figures are the exact ones, never a histogram's estimate (the default).
            exact=True,
        )
        for grouping in groupings
    ]
    named = areas.get_areas(session, [area]).get(area)
    assessment = Assessment(
        area_code=area,
        area_name=named.name if named is not None else None,
        month=month,
        window_from=window_from,
        window_to=window_to,
        as_of=window_to,
        benchmark=benchmark,
        created_by=actor.user_id,
    )
    session.add(assessment)
    session.flush()
    own_level = areas.level_of(area) or "grid"
    rows = [_row(assessment.id, own_level, area, assessment.area_name, runs[0].totals)]
    for level, stats in zip(levels, runs, strict=False):
        rows += [
            _row(assessment.id, level, group.key[level], group.key[f"{level}_name"], group.figures)
            for group in stats.groups
        ]
    # One statement for a district's thousands of grids, not an ORM object each.
    session.execute(insert(AssessmentFigures), rows)
    return assessment


def _row(
    assessment_id: int, level: str, code: str | None, name: str | None, figures: Figures
) -> dict[str, Any]:
    return {"assessment_id": assessment_id, "level": level, "code": code, "name": name, **asdict(figures)}


def _figures(row: AssessmentFigures) -> Figures:
    return Figures(**{name: getattr(row, name) for name in FIGURE_FIELDS})


def _summary(assessment: Assessment, totals: Figures) -> Summary:
    return Summary(
        id=assessment.id,
        area=assessment.area_code,
        area_name=assessment.area_name,
        month=f"{assessment.month:%Y-%m}",
        window_from=assessment.window_from,
        window_to=assessment.window_to,
        as_of=assessment.as_of,
        benchmark=assessment.benchmark,
        levels=levels_below(assessment.area_code),
        created_at=assessment.created_at,
        created_by=assessment.created_by,
        totals=totals,
    )


def get_assessment(session: Session, assessment_id: int, actor: Actor) -> Assessment:
    """An assessment of an area whose figures the actor may read; any other is not found."""
    assessment = session.get(Assessment, assessment_id)
    if assessment is None or not actor.reads_area(assessment.area_code):
        raise NotFound(f"No assessment {assessment_id}.")
    return assessment


def summary(session: Session, assessment: Assessment) -> Summary:
    """The assessment with its totals: the row of its own area (every other row is of an area
    below it)."""
    row = session.scalars(
        select(AssessmentFigures).where(
            AssessmentFigures.assessment_id == assessment.id, AssessmentFigures.code == assessment.area_code
        )
    ).one()
    return _summary(assessment, _figures(row))


def list_assessments(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    month: date | None = None,
    before: int | None = None,
    limit: int = 100,
) -> list[Summary]:
    """The assessments the actor may read, newest first: of `area` and the areas below it, of
    `month`."""
    query = select(Assessment).where(actor.reads_areas(Assessment.area_code))
    if area is not None:
        queries.check_reader(actor, area)
        query = query.where(Assessment.area_code.startswith(area, autoescape=True))
    if month is not None:
        query = query.where(Assessment.month == month.replace(day=1))
    if before is not None:
        query = query.where(Assessment.id < before)
    found = list(session.scalars(query.order_by(Assessment.id.desc()).limit(limit)))
    if not found:
        return []
    own_rows = select(AssessmentFigures).join(
        Assessment,
        (Assessment.id == AssessmentFigures.assessment_id) & (Assessment.area_code == AssessmentFigures.code),
    )
    totals = {
        row.assessment_id: _figures(row)
        for row in session.scalars(own_rows.where(Assessment.id.in_([a.id for a in found])))
    }
    return [_summary(assessment, totals[assessment.id]) for assessment in found]


def frozen_stats(session: Session, assessment: Assessment, level: str | None) -> ClosureStats:
    """The frozen figures as closure statistics grouped by one level the assessment holds
    (None: the totals only)."""
    levels = levels_below(assessment.area_code)
    if level is not None and level not in levels:
        held = ", ".join(levels) or "none (a grid's assessment holds its totals only)"
        raise ValidationFailed(
            f"Assessment {assessment.id} holds figures by {held}.",
            errors=[
                field_error("group_by", f"Use one of the levels below the area: {held}.", location="query")
            ],
        )
    totals = summary(session, assessment).totals
    groups = []
    if level is not None:
        rows = session.scalars(
            select(AssessmentFigures)
            .where(AssessmentFigures.assessment_id == assessment.id, AssessmentFigures.level == level)
            .order_by(AssessmentFigures.code.asc().nulls_last())
        )
        groups = [Group({level: row.code, f"{level}_name": row.name}, _figures(row)) for row in rows]
    return ClosureStats(
        area=assessment.area_code,
        window_from=assessment.window_from,
        window_to=assessment.window_to,
        as_of=assessment.as_of,
        benchmark=assessment.benchmark,
        group_by=(level,) if level is not None else (),
        totals=totals,
        groups=groups,
    )
