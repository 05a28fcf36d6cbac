"""The SQL closure statistics agree with the pure-Python reference on random event histories.

Each history is a random walk through the lifecycle at random times (closed, reopened, closed
again; returned; rejected; handled on the spot), and the SQL is asked as of a random moment,
usually within the history, and as of a moment after all of it: the first is answered from
the trail, the second from the events' columns, and the reference reads the trail for both.
"""

from __future__ import annotations

import math
from dataclasses import asdict
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.stats import queries
from tests import factories
from tests.stats import reference
from tests.stats.reference import TARGET, Ev, Step

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


# Where each action leads, and which may follow (escalate keeps the status).
NEXT = {
    "reported": ["accept"] * 6 + ["reject"],
    "accepted": ["dispatch"] * 4 + ["reject", "escalate"],
    "dispatched": ["start"] * 3 + ["dispatch", "escalate"],
    "in_progress": ["resolve"] * 3 + ["escalate"],
    "resolved": ["close"] * 3 + ["return"],
    "closed": ["reopen"],
}


@st.composite
def events(draw: st.DrawFn) -> Ev:
    """An event and its trail: a walk through the lifecycle, each action a few quarter hours
    (or none) after the one before, stopped anywhere; its columns are what the actions set."""
    at = draw(times)
    on_the_spot = draw(st.integers(0, 9)) == 0
    steps = [Step("report", at, "resolved" if on_the_spot else "reported")]
    sla = timedelta(minutes=15 * draw(st.integers(1, 96)))
    accepted_at = due_at = closed_at = None
    if on_the_spot:
        accepted_at, due_at = at, at + sla
    for _ in range(draw(st.integers(0, 14))):
        status = steps[-1].to_status
        if status not in NEXT:
            break
        action = draw(st.sampled_from(NEXT[status]))
        at = at + timedelta(minutes=15 * draw(st.sampled_from([0, 0, 1, 2, 4, 8, 16, 48])))
        steps.append(Step(action, at, TARGET.get(action, status)))
        if action == "accept":
            accepted_at, due_at = at, at + sla
        elif action == "close":
            closed_at = at
        elif action in ("return", "reopen"):
            closed_at = None
    actions = [step.action for step in steps]
    return Ev(
        grid=draw(mostly(st.sampled_from(GRIDS))),
        category=draw(st.sampled_from(CATEGORIES)),
        status=steps[-1].to_status,
        due_at=due_at,
        accepted_at=accepted_at,
        closed_at=closed_at,
        rework_count=actions.count("return") + actions.count("reopen"),
        assignee_id=draw(mostly(st.integers(1, 3))),
        reporter_id=draw(mostly(st.integers(1, 3))),
        steps=steps,
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


# After every action of every history, and after anything another test wrote: as of then, no
# statistics action follows, so the statistics read the events' columns.
LATER = datetime(2099, 1, 1, tzinfo=UTC)


def add_a_later_action(session) -> None:  # type: ignore[no-untyped-def]
    """An action after every moment asked about (on an event that is never due), so that the
    statistics read the trail as of any of them."""
    event = Ev(grid=None, status="resolved")
    reference.insert_events(session, [event])
    session.execute(
        text(
            "INSERT INTO event_actions (event_id, action, from_status, to_status, created_at)"
            " VALUES (:id, 'close', 'resolved', 'closed', :at)"
        ),
        {"id": event.id, "at": LATER + timedelta(days=365)},
    )


def sql_figures(session, history, area, window, as_of, group_by, benchmark, *, from_trail):  # type: ignore[no-untyped-def]
    nested = session.begin_nested()
    try:
        reference.insert_events(session, history)
        if from_trail:
            add_a_later_action(session)
        return queries.closure_stats(
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


def check(session, categories, history, area, window, as_of, group_by, benchmark, *, from_trail=True):  # type: ignore[no-untyped-def]
    stats = sql_figures(session, history, area, window, as_of, group_by, benchmark, from_trail=from_trail)
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
    assert_matches(stats, expected)


def assert_matches(stats: queries.ClosureStats, expected: dict[str, Any], same=assert_same) -> None:  # type: ignore[no-untyped-def]
    """The totals and groups of `stats` are the reference's, figure by figure, as `same` holds."""
    same(asdict(stats.totals), expected["totals"], "totals")
    actual_groups = [{"key": g.key, **asdict(g.figures)} for g in stats.groups]
    assert [g["key"] for g in actual_groups] == [g["key"] for g in expected["groups"]]
    for got, want in zip(actual_groups, expected["groups"], strict=True):
        same(got, want, str(want["key"]))


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


def walked(*actions: tuple[str, int], sla: int = 40) -> Ev:
    """An event of GRIDS[3] whose trail is these actions at these moments (due `sla` quarter
    hours after acceptance)."""
    return reference.lived(
        GRIDS[3], [(action, moment(q)) for action, q in actions], sla=timedelta(minutes=15 * sla)
    )


LIFECYCLE = ("report", 0), ("accept", 1), ("dispatch", 2), ("start", 3), ("resolve", 4)
REOPENED = [
    # Closed at 10, reopened at 30, closed again at 50: as of 20 closed (on time), as of 40
    # open and reworked, as of 60 closed late and reworked.
    walked(*LIFECYCLE, ("close", 10), ("reopen", 30), ("start", 31), ("resolve", 32), ("close", 50)),
    # Returned before its only close: reworked from 6, closed from 8.
    walked(*LIFECYCLE, ("return", 6), ("resolve", 7), ("close", 8)),
    # Accepted at 1 but rejected at 35: due until then, then not.
    walked(("report", 0), ("accept", 1), ("reject", 35)),
    # Accepted at 45 only: not due before.
    walked(("report", 0), ("accept", 45), sla=2),
    # Closed, reopened and closed again at the same moment: closed as of then.
    walked(*LIFECYCLE, ("close", 20), ("reopen", 20), ("resolve", 20), ("close", 20)),
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
@example(
    history=REOPENED,
    area=GRIDS[3],
    window=(moment(0), moment(100)),
    as_of=moment(40),
    group_by=(),
    benchmark=0.98,
)
def test_sql_matches_the_reference(square, history, area, window, as_of, group_by, benchmark):  # type: ignore[no-untyped-def]
    session, categories = square
    # As of a moment within the history, and as of the moment of its middle action (where
    # things happen): from the trail.
    check(session, categories, history, area, window, as_of, group_by, benchmark)
    moments = sorted(step.at for event in history for step in event.trail())
    if moments:
        middle = moments[len(moments) // 2]
        check(session, categories, history, area, window, middle, group_by, benchmark)
    # As of now (after everything): from the columns, and from the trail, alike.
    for from_trail in (False, True):
        check(session, categories, history, area, window, LATER, group_by, benchmark, from_trail=from_trail)


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


@pytest.mark.parametrize(
    ("quarter", "due", "closed", "on_time", "reworked"),
    [(0, 0, 0, 0, 0), (9, 4, 1, 1, 1), (20, 4, 3, 3, 2), (40, 3, 2, 2, 2), (60, 4, 3, 2, 3)],
)
def test_a_reopened_event_counts_as_it_stood(square, quarter, due, closed, on_time, reworked):  # type: ignore[no-untyped-def]
    session, _ = square
    stats = sql_figures(
        session, REOPENED, GRIDS[3], (moment(0), moment(100)), moment(quarter), (), 0.98, from_trail=True
    )
    totals = stats.totals
    assert (totals.due, totals.closed, totals.closed_on_time, totals.reworked) == (
        due,
        closed,
        on_time,
        reworked,
    )
