"""Closure figures from the rollups agree with the reference on random event histories, and the
trigger keeps the rollups equal to a count made afresh from the events, whatever is written.

The counts must be the same; the median and 90th percentile of hours to close are within the
error bound the API documents (backend.stats.rollups).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.stats import queries, rollups
from tests.stats import reference
from tests.stats.reference import Ev
from tests.stats.test_closure_property import (
    AREA_NAMES,
    GRIDS,
    LATER,
    assert_matches,
    assert_same,
    events,
    moment,
    scopes,
    square,
)

__all__ = ["square"]  # the fixture, used by name

DAY = 96  # quarter hours
PERCENTILES = ("median_hours_to_close", "p90_hours_to_close")
COPIED = (
    "category_code, description, location, crs, source_lon, source_lat, assignment, content_hash,"
    " grid_code, village_code, town_code, district_code, status, due_at, accepted_at, closed_at,"
    " rework_count"
)


@st.composite
def day_windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    """Whole local days (T0 is a Beijing midnight)."""
    start = draw(st.integers(-3, 4))
    return moment(DAY * start), moment(DAY * (start + draw(st.integers(1, 10))))


group_bys = st.lists(
    st.sampled_from([key for key in queries.GROUP_KEYS if key in queries.ROLLUP_KEY_SQL]),
    max_size=2,
    unique=True,
).map(tuple)


def last_moment(history: list[Ev]) -> datetime:
    return max((step.at for event in history for step in event.trail()), default=moment(0))


def assert_close_enough(actual: dict[str, Any], expected: dict[str, Any], where: str) -> None:
    """Counts and rates the same, percentiles within the documented bound."""
    for name in PERCENTILES:
        got, value = actual.get(name), expected.get(name)
        if value is None:
            assert got is None, (where, name, got)
        else:
            bound = rollups.RELATIVE_ERROR * abs(value) + rollups.ABSOLUTE_ERROR_HOURS + 1e-9
            assert got is not None and abs(got - value) <= bound, (where, name, got, value)
    assert_same({**actual, **{name: expected.get(name) for name in PERCENTILES}}, expected, where)


def compare(session, categories, history, area, window, as_of, group_by):  # type: ignore[no-untyped-def]
    stats = queries.closure_stats(
        session,
        area=area,
        window_from=window[0],
        window_to=window[1],
        as_of=as_of,
        group_by=group_by,
        benchmark=0.98,
        exact=False,
    )
    assert not stats.exact
    expected = reference.closure(
        history,
        area=area,
        window_from=window[0],
        window_to=window[1],
        as_of=as_of,
        group_by=group_by,
        area_names=AREA_NAMES,
        category_names=categories,
    )
    assert_matches(stats, expected, assert_close_enough)


@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(events(), min_size=10, max_size=40),
    area=scopes,
    window=day_windows(),
    later=st.integers(0, 3 * DAY),
    group_by=group_bys,
)
def test_rollups_match_the_reference(square, history, area, window, later, group_by):  # type: ignore[no-untyped-def]
    session, categories = square
    nested = session.begin_nested()
    try:
        # Tests that run a live server leave committed actions behind (outside this scope);
        # the rollups answer only as of a moment after every action, so start after those.
        committed = session.execute(text("SELECT max(created_at) FROM event_actions")).scalar()
        reference.insert_events(session, history)
        # As of some time after the last action (often in the middle of a local day, where
        # the day's overdue events are read from the events), and long after.
        as_of = max(last_moment(history), committed or moment(0)) + timedelta(minutes=15 * later)
        compare(session, categories, history, area, window, as_of, group_by)
        compare(session, categories, history, area, window, LATER, group_by)
    finally:
        nested.rollback()


def test_the_events_answer_when_the_rollups_cannot(square):  # type: ignore[no-untyped-def]
    session, _ = square
    history = [
        Ev(grid=GRIDS[0], due_at=moment(10), accepted_at=moment(0), closed_at=moment(5)),
        Ev(grid=GRIDS[0], status="in_progress", due_at=moment(20), accepted_at=moment(0)),
    ]
    reference.insert_events(session, history)
    whole_days = (moment(-DAY), moment(DAY))

    def stats(window, as_of, group_by=(), **exact):  # type: ignore[no-untyped-def]
        return queries.closure_stats(
            session,
            area="330100",
            window_from=window[0],
            window_to=window[1],
            as_of=as_of,
            group_by=group_by,
            **exact,
        )

    assert not stats(whole_days, LATER, exact=False).exact
    # Exact unless asked otherwise.
    assert stats(whole_days, LATER).exact
    assert stats(whole_days, LATER, exact=True).exact
    # A window not of whole days, a grouping by worker or channel, an action after as_of.
    assert stats((moment(1), moment(DAY)), LATER, exact=False).exact
    assert stats(whole_days, LATER, ("worker",), exact=False).exact
    assert stats(whole_days, LATER, ("town", "channel"), exact=False).exact
    answer = stats(whole_days, moment(4), exact=False)
    assert answer.exact
    # The trail as of then: the first event's close (at 5) had not come yet.
    assert (answer.totals.due, answer.totals.closed) == (2, 0)


def rollups_differences(session) -> tuple[set[tuple[Any, ...]], set[tuple[Any, ...]]]:  # type: ignore[no-untyped-def]
    """What differs between the rollups as kept and as counted afresh from the events (the
    counts, and the histograms): nothing, when the trigger did its work."""
    key = "district_code, town_code, village_code, grid_code, category_code, due_day"
    of_delta = ", ".join(f"d.{column}" for column in key.split(", "))
    kept = session.execute(
        text(f"SELECT {key}, due, closed, closed_on_time, reworked FROM closure_rollups WHERE due <> 0")
    )
    fresh = session.execute(
        text(
            f"SELECT {of_delta}, sum(d.due), sum(d.closed), sum(d.closed_on_time), sum(d.reworked)"
            f" FROM events e, closure_rollup_delta(e, 1) d GROUP BY {of_delta}"
        )
    )
    kept_hours = session.execute(
        text(f"SELECT {key}, bucket, closed FROM closure_rollup_hours WHERE closed <> 0")
    )
    fresh_hours = session.execute(
        text(
            f"SELECT {of_delta}, d.bucket, sum(d.closed) FROM events e, closure_rollup_delta(e, 1) d"
            f" WHERE d.bucket IS NOT NULL GROUP BY {of_delta}, d.bucket"
        )
    )
    return (
        {tuple(row) for row in kept} ^ {tuple(row) for row in fresh},
        {tuple(row) for row in kept_hours} ^ {tuple(row) for row in fresh_hours},
    )


def random_changes(
    session: Any,
    pick: random.Random,
    history: list[Ev],
    when: Callable[[], datetime],
    check: Callable[[], None],
) -> None:
    """Store `history` and trail-free copies of its first 20 (which may be deleted: a trail may
    not), then make 80 random changes of the kinds the triggers follow; `check` before and after."""
    reference.insert_events(session, history)
    copies = [
        session.scalar(
            text(
                f"INSERT INTO events (id, {COPIED}) SELECT gen_random_uuid(), {COPIED}"
                " FROM events WHERE id = :id RETURNING id"
            ),
            {"id": event.id},
        )
        for event in history[:20]
    ]
    check()
    ids = [event.id for event in history] + copies
    for _ in range(80):
        change = pick.choice(
            ["close", "reopen", "reject", "move", "due", "undue", "rework", "delete", "note"]
        )
        if change == "delete" and not copies:
            continue
        event_id = pick.choice(copies if change == "delete" else ids)
        statement = {
            "close": "UPDATE events SET status = 'closed', closed_at = :at WHERE id = :id",
            "reopen": "UPDATE events SET status = 'in_progress', closed_at = NULL,"
            " rework_count = rework_count + 1 WHERE id = :id",
            "reject": "UPDATE events SET status = 'rejected', closed_at = NULL WHERE id = :id",
            "move": "UPDATE events SET grid_code = :grid, village_code = :village, town_code = :town"
            " WHERE id = :id",
            "due": "UPDATE events SET due_at = :at WHERE id = :id",
            "undue": "UPDATE events SET due_at = NULL WHERE id = :id",
            "rework": "UPDATE events SET rework_count = 0 WHERE id = :id",
            "delete": "DELETE FROM events WHERE id = :id",
            "note": "UPDATE events SET description = 'changed', version = version + 1 WHERE id = :id",
        }[change]
        if change == "delete":
            copies.remove(event_id)
            ids.remove(event_id)
        grid = pick.choice(GRIDS)
        session.execute(
            text(statement),
            {"id": event_id, "at": when(), "grid": grid, "village": grid[:12], "town": grid[:9]},
        )
    check()


@pytest.mark.parametrize("seed", range(5))
def test_the_trigger_keeps_the_rollups_equal_to_a_fresh_count(square, seed):  # type: ignore[no-untyped-def]
    session, _ = square
    pick = random.Random(seed)
    history = [
        Ev(
            grid=pick.choice([*GRIDS, None]),
            category=pick.choice(["environment", "safety", "dispute"]),
            status=pick.choice(["accepted", "closed", "rejected", "in_progress"]),
            due_at=moment(pick.randint(-200, 200)),
            accepted_at=moment(-300),
            closed_at=moment(pick.randint(-250, 250)),
            rework_count=pick.randint(0, 2),
        )
        for _ in range(60)
    ]

    def check() -> None:
        assert rollups_differences(session) == (set(), set())

    random_changes(session, pick, history, lambda: moment(pick.randint(-250, 250)), check)
