"""The SQL closure statistics agree with the pure-Python reference on random event histories."""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.events.models import STATUSES
from backend.stats import queries
from tests import factories
from tests.stats import reference
from tests.stats.reference import Ev

# Monday 1 September 2025, midnight in Beijing: a day, a week and a month begin at once, in local
# time (in UTC it is still Sunday 31 August).
T0 = datetime(2025, 9, 1, tzinfo=timezone(timedelta(hours=8)))
GRIDS = [row["code"] for row in factories.square_tree() if len(row["code"]) == 15]
AREAS = [row["code"] for row in factories.square_tree()]
AREA_NAMES = {row["code"]: row["name"] for row in factories.square_tree()}
CATEGORIES = [
    "dispute",
    "public_security",
    "safety",
    "rental",
    "environment",
    "livelihood",
    "emergency",
    "other",
]


def moment(quarter_hours: int) -> datetime:
    return T0 + timedelta(minutes=15 * quarter_hours)


# Times on a coarse grid (whole hours within a day and a half either side of T0, a few on the
# quarter hour), so that window edges, as_of, due and closing times often coincide.
times = st.builds(
    lambda hour, quarter: moment(4 * hour + quarter),
    st.integers(-36, 36),
    st.sampled_from([0] * 9 + [1, 2, 3]),
)


def mostly(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """The strategy's values nine times in ten, else None."""
    return st.integers(0, 9).flatmap(lambda n: st.none() if n == 0 else strategy)


@st.composite
def events(draw: st.DrawFn) -> Ev:
    # Half of them closed; every other status, rejected included, shares the rest.
    status = draw(st.sampled_from(["closed"] * 6 + list(STATUSES)))
    accepted_at = draw(mostly(times))
    due_at = draw(mostly(times))
    closed_at = draw(times) if status == "closed" else None
    return Ev(
        grid=draw(mostly(st.sampled_from(GRIDS))),
        category=draw(st.sampled_from(CATEGORIES)),
        status=status,
        due_at=due_at,
        accepted_at=accepted_at,
        closed_at=closed_at,
        rework_count=draw(st.integers(0, 3)),
        assignee_id=draw(mostly(st.integers(1, 3))),
        reporter_id=draw(mostly(st.integers(1, 3))),
    )


@st.composite
def windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    start = draw(st.integers(-40, 30))
    return moment(4 * start), moment(4 * (start + draw(st.integers(1, 80))))


group_bys = st.lists(st.sampled_from(queries.GROUP_KEYS), max_size=2, unique=True).map(tuple)
# The whole district most often, so that groups have several events each.
scopes = st.sampled_from(["330100"] * 8 + AREAS)


@pytest.fixture
def square(session):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    names = {
        row.code: (row.name_zh, row.name_en)
        for row in session.execute(text("SELECT code, name_zh, name_en FROM categories"))
    }
    return session, names


def assert_same(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    assert actual.keys() == expected.keys(), where
    for name, value in expected.items():
        got = actual[name]
        if isinstance(value, float) and got is not None:
            assert math.isclose(got, value, rel_tol=1e-9, abs_tol=1e-9), (where, name, got, value)
        else:
            assert got == value, (where, name, got, value)


def check(session, categories, history, area, window, as_of, group_by, benchmark):  # type: ignore[no-untyped-def]
    nested = session.begin_nested()
    try:
        reference.insert_events(session, history)
        stats = queries.closure_stats(
            session,
            area=area,
            window_from=window[0],
            window_to=window[1],
            as_of=as_of,
            group_by=group_by,
            benchmark=benchmark,
        )
    finally:
        nested.rollback()
    expected = reference.closure(
        history,
        area=area,
        window_from=window[0],
        window_to=window[1],
        as_of=as_of,
        group_by=group_by,
        benchmark=benchmark,
        area_names=AREA_NAMES,
        category_names=categories,
    )
    assert_same(asdict(stats.totals), expected["totals"], "totals")
    actual_groups = [{"key": g.key, **asdict(g.figures)} for g in stats.groups]
    assert [g["key"] for g in actual_groups] == [g["key"] for g in expected["groups"]]
    for got, want in zip(actual_groups, expected["groups"], strict=True):
        assert_same(got, want, str(want["key"]))


ALL_REJECTED = [
    Ev(grid=GRIDS[0], status="rejected", due_at=moment(i), accepted_at=moment(i - 8)) for i in range(3)
]
CLOSED_LATE = [
    # Due in the window but closed after it, after as_of, on time, late, and reworked.
    Ev(grid=GRIDS[1], due_at=moment(10), accepted_at=moment(0), closed_at=moment(200)),
    Ev(grid=GRIDS[1], due_at=moment(10), accepted_at=moment(0), closed_at=moment(400)),
    Ev(grid=GRIDS[1], due_at=moment(10), accepted_at=moment(0), closed_at=moment(5), rework_count=2),
    Ev(grid=GRIDS[2], due_at=moment(20), accepted_at=moment(0), closed_at=moment(20)),
    Ev(grid=GRIDS[2], status="in_progress", due_at=moment(30), accepted_at=moment(0), rework_count=1),
]


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(events(), min_size=10, max_size=40),
    area=scopes,
    window=windows(),
    as_of=times,
    group_by=group_bys,
    benchmark=st.sampled_from([0.5, 0.9, 0.98, 1.0]),
)
@example(
    history=[],
    area="330100",
    window=(moment(0), moment(100)),
    as_of=moment(50),
    group_by=("grid",),
    benchmark=0.98,
)
@example(
    history=ALL_REJECTED + CLOSED_LATE,
    area="330100",
    window=(moment(0), moment(100)),
    as_of=moment(300),
    group_by=("grid", "week"),
    benchmark=0.98,
)
@example(
    history=ALL_REJECTED + CLOSED_LATE,
    area=GRIDS[1][:9],
    window=(moment(-100), moment(100)),
    as_of=moment(300),
    group_by=("category",),
    benchmark=0.5,
)
def test_sql_matches_the_reference(square, history, area, window, as_of, group_by, benchmark):  # type: ignore[no-untyped-def]
    session, categories = square
    check(session, categories, history, area, window, as_of, group_by, benchmark)


def test_all_rejected_and_empty_groups_do_not_appear(square):  # type: ignore[no-untyped-def]
    session, _ = square
    reference.insert_events(session, ALL_REJECTED + CLOSED_LATE)
    stats = queries.closure_stats(
        session,
        area="330100",
        window_from=moment(0),
        window_to=moment(100),
        as_of=moment(300),
        group_by=("grid",),
    )
    assert [g.key["grid"] for g in stats.groups] == [GRIDS[1], GRIDS[2]]
    first = stats.groups[0].figures
    # Closed after the window still counts (by as_of); closed after as_of does not.
    assert (first.due, first.closed, first.closed_on_time, first.reworked) == (3, 2, 1, 1)
    assert first.overdue_open == 1
    second = stats.groups[1].figures
    assert (second.due, second.closed, second.closed_on_time, second.overdue_open) == (2, 1, 1, 1)
    assert second.rework_rate == 0  # the reworked event there is still open
