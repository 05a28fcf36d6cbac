"""The closure rollups' tiers (per grid and local month or year, migration 0100): figures read
from them agree with the reference on random histories whose windows cross month and year
edges, the trigger keeps them equal to a count made afresh from the events, and the pieces (the
cover of a window, the histograms' sum and percentiles) do what they say.
"""

from __future__ import annotations

import random
import struct
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from backend.stats import queries, rollups
from tests.stats import reference
from tests.stats.reference import Ev
from tests.stats.test_closure_property import (
    AREA_NAMES,
    CATEGORIES,
    GRIDS,
    LATER,
    assert_matches,
    scopes,
    square,
)
from tests.stats.test_closure_rollups import assert_close_enough, random_changes

__all__ = ["square"]  # the fixture, used by name

BEIJING = ZoneInfo("Asia/Shanghai")
# New Year 2026 in Beijing: the histories span the months on either side.
Y0 = datetime(2026, 1, 1, tzinfo=BEIJING)
HOUR = timedelta(hours=1)


def at(days: int, hours: int = 0) -> datetime:
    return Y0 + timedelta(days=days, hours=hours)


@st.composite
def spread_events(draw: st.DrawFn) -> Ev:
    """An accepted event due within about three months (or, two in three, two years) either
    side of Y0: open, closed (on time or late, some after rework) or rejected."""
    spread = draw(st.sampled_from([1, 8, 8]))
    accepted = at(spread * draw(st.integers(-100, 100)), draw(st.integers(0, 23)))
    status = draw(st.sampled_from(["closed"] * 6 + ["in_progress", "accepted", "rejected"]))
    return Ev(
        grid=draw(st.one_of(st.none(), *[st.just(grid) for grid in GRIDS] * 3)),
        category=draw(st.sampled_from(CATEGORIES)),
        status=status,
        accepted_at=accepted,
        due_at=accepted + HOUR * draw(st.integers(1, 96)),
        closed_at=accepted + HOUR * draw(st.integers(0, 300)) if status == "closed" else None,
        rework_count=draw(st.sampled_from([0, 0, 0, 1, 2])),
    )


@st.composite
def long_windows(draw: st.DrawFn) -> tuple[datetime, datetime]:
    """Windows of days to months, from a midnight, a month's first day or any hour."""
    spread = draw(st.sampled_from([1, 8, 8]))
    start = at(spread * draw(st.integers(-110, 60)))
    start = draw(
        st.sampled_from(
            [
                start,
                datetime.combine(date(start.year, start.month, 1), time(0), BEIJING),
                start + HOUR * draw(st.integers(1, 23)),
            ]
        )
    )
    days = spread * draw(st.integers(1, 200))
    return start, start + timedelta(days=days, hours=draw(st.sampled_from([0, 0, 7])))


tier_group_bys = st.lists(st.sampled_from([*queries.AREA_LEVELS, "month"]), max_size=2, unique=True).map(
    tuple
)


def compare(session, categories, history, area, window, as_of, group_by, exact):  # type: ignore[no-untyped-def]
    stats = queries.closure_stats(
        session,
        area=area,
        window_from=window[0],
        window_to=window[1],
        as_of=as_of,
        group_by=group_by,
        exact=exact,
    )
    start = window[0].astimezone(BEIJING)
    first = start.date() + timedelta(days=0 if start.time() == time(0) else 1)
    end = min(window[1], as_of).astimezone(BEIJING).date()
    covered = rollups.cover(first, end, years="month" not in group_by) is not None
    if exact is False or queries.reads_tiers_by_default(area, *window):
        # From the tiers whenever they hold a whole month of the window (else from the events,
        # or from the daily rollups when asked not to be exact).
        assert not stats.exact if covered else (stats.exact or exact is False), (window, as_of)
    else:
        assert stats.exact
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
    return stats


@settings(
    max_examples=80,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    history=st.lists(spread_events(), min_size=10, max_size=60),
    area=scopes,
    window=long_windows(),
    later=st.integers(0, 24 * 40),
    group_by=tier_group_bys,
    exact=st.sampled_from([False, None]),
)
def test_tiers_match_the_reference(square, history, area, window, later, group_by, exact):  # type: ignore[no-untyped-def]
    session, categories = square
    nested = session.begin_nested()
    try:
        committed = session.execute(text("SELECT max(created_at) FROM event_actions")).scalar()
        reference.insert_events(session, history)
        # As of some time after the last action (the tiers hold what stands now), often inside
        # the window, so that its tail is read from the events; and long after.
        last = max(step.at for event in history for step in event.trail())
        as_of = max(last, committed or last) + HOUR * later
        compare(session, categories, history, area, window, as_of, group_by, exact)
        compare(session, categories, history, area, window, LATER, group_by, exact)
    finally:
        nested.rollback()


@pytest.mark.parametrize("seed", range(4))
def test_whole_years_months_and_edges_add_up_to_the_reference(square, seed):  # type: ignore[no-untyped-def]
    """Histories over four years, windows of two to four years from any hour: the years'
    tier, both months' ranges and both edges all hold events."""
    session, categories = square
    pick = random.Random(seed)
    history = []
    for _ in range(150):
        accepted = at(pick.randint(-3 * 365, 365), pick.randint(0, 23))
        status = pick.choice(["closed"] * 6 + ["in_progress", "rejected"])
        history.append(
            Ev(
                grid=pick.choice([*GRIDS, None]),
                category=pick.choice(CATEGORIES),
                status=status,
                accepted_at=accepted,
                due_at=accepted + HOUR * pick.randint(1, 96),
                closed_at=accepted + HOUR * pick.randint(0, 300) if status == "closed" else None,
                rework_count=pick.choice([0, 0, 1]),
            )
        )
    reference.insert_events(session, history)
    window = (at(pick.randint(-3 * 365, -2 * 365), pick.randint(0, 23)), at(pick.randint(-40, 380)))
    for group_by in [(), ("grid",), ("town", "month"), ("village",)]:
        for as_of in (at(400), LATER):
            stats = compare(session, categories, history, "330100", window, as_of, group_by, None)
            assert not stats.exact


def test_the_tiers_answer_a_long_window_by_default_and_exact_reads_the_events(square):  # type: ignore[no-untyped-def]
    session, _ = square
    history = [
        Ev(grid=GRIDS[0], accepted_at=at(-40), due_at=at(-39), closed_at=at(-39, 5)),
        Ev(grid=GRIDS[1], status="in_progress", accepted_at=at(3), due_at=at(4)),
        Ev(grid=GRIDS[1], accepted_at=at(40), due_at=at(41), closed_at=at(50)),
    ]
    reference.insert_events(session, history)

    def stats(area: str, days: int, **exact: Any) -> queries.ClosureStats:
        return queries.closure_stats(
            session, area=area, window_from=at(-days), window_to=at(days), as_of=LATER, **exact
        )

    # A district's figures, or any over more than a year, from the tiers unless asked exact.
    assert not stats("330100", 60, exact=None).exact
    assert not stats(GRIDS[1], 200, exact=None).exact
    assert stats(GRIDS[1], 60, exact=None).exact
    assert stats("330100", 60, exact=True).exact
    assert stats("330100", 60).exact  # the function's own default stays exact
    answer = stats("330100", 60, exact=None)
    assert (answer.totals.due, answer.totals.closed, answer.totals.overdue_open) == (3, 2, 1)
    assert answer.totals.closed_on_time == 0


def tier_rows(rows: Any) -> set[tuple[Any, ...]]:
    out = set()
    for *key, due, closed, on_time, reworked, hours in rows:
        entries: dict[int, int] = {}
        for i in range(0, len(hours or b""), 5):
            bucket, count = struct.unpack(">Bi", hours[i : i + 5])
            entries[bucket] = entries.get(bucket, 0) + count
        histogram = tuple(sorted((b, n) for b, n in entries.items() if n))
        if due or closed or on_time or reworked or histogram:
            out.add((*key, due, closed, on_time, reworked, histogram))
    return out


def tiers_differences(session) -> set[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """What differs between the tiers as kept and as counted afresh from the events."""
    differences = set()
    for table, period in rollups.TIERS.items():
        key = f"district_code, {period}, town_code, village_code, grid_code"
        kept = session.execute(
            text(f"SELECT {key}, due, closed, closed_on_time, reworked, hours FROM {table}")
        )
        fresh_key = (
            f"d.district_code, date_trunc('{period}', d.due_day)::date,"
            " d.town_code, d.village_code, d.grid_code"
        )
        fresh = session.execute(
            text(
                f"SELECT {fresh_key}, sum(d.due)::int, sum(d.closed)::int, sum(d.closed_on_time)::int,"
                f" sum(d.reworked)::int, string_agg(closure_hours_entry(d.bucket, d.closed), ''::bytea)"
                f" FILTER (WHERE d.bucket IS NOT NULL)"
                f" FROM events e, closure_rollup_delta(e, 1) d GROUP BY 1, 2, 3, 4, 5"
            )
        )
        differences |= {(table, *row) for row in tier_rows(kept) ^ tier_rows(fresh)}
    return differences


@pytest.mark.parametrize("seed", range(3))
def test_the_trigger_keeps_the_tiers_equal_to_a_fresh_count(square, seed):  # type: ignore[no-untyped-def]
    session, _ = square
    pick = random.Random(seed)
    history = [
        Ev(
            grid=pick.choice([*GRIDS, None]),
            status=pick.choice(["accepted", "closed", "rejected", "in_progress"]),
            accepted_at=at(-200),
            due_at=at(pick.randint(-60, 60), pick.randint(0, 23)),
            closed_at=at(pick.randint(-60, 60)),
            rework_count=pick.randint(0, 2),
        )
        for _ in range(60)
    ]

    def check() -> None:
        assert tiers_differences(session) == set()

    random_changes(session, pick, history, lambda: at(pick.randint(-60, 60), pick.randint(0, 23)), check)
    rollups.rebuild(session)
    assert tiers_differences(session) == set()


def next_month(day: date) -> date:
    return (day.replace(day=28) + timedelta(days=4)).replace(day=1)


@given(
    first=st.dates(date(2015, 1, 1), date(2030, 1, 1)),
    days=st.integers(0, 4000),
    years=st.booleans(),
)
def test_a_cover_reads_each_day_of_the_period_once(first, days, years):  # type: ignore[no-untyped-def]
    end = first + timedelta(days=days)
    plan = rollups.cover(first, end, years=years)
    if plan is None:
        # Not one whole month inside the period.
        assert not any(
            first <= date(y, m, 1) and next_month(date(y, m, 1)) <= end
            for y in range(first.year, end.year + 1)
            for m in range(1, 13)
        )
        return
    # Count how often each day is read: +1 added, -1 taken away, by tier or from the events.
    read: dict[date, int] = {}

    def add(low: date, high: date, sign: int) -> None:
        day = low
        while day < high:
            read[day] = read.get(day, 0) + sign
            day += timedelta(days=1)

    years_from, years_to = plan.years
    add(plan.start, years_from, 1)  # months before the years
    add(years_from, plan.start, -1)  # or a year's months before the first month read, taken away
    add(years_to, plan.stop, 1)  # months after the years
    add(years_from, years_to, 1)  # the years
    add(first, plan.start, 1)  # days before the first month read
    add(plan.start, first, -1)  # or a month read whole, its days before the period taken away
    add(plan.stop, end, 1)  # days after the last month read
    expected = {first + timedelta(days=i): 1 for i in range(days)}
    assert {day: n for day, n in read.items() if n} == expected
    # Months and years whole, ended by the period's end; years only when asked.
    assert plan.start.day == plan.stop.day == 1 and plan.start < plan.stop <= end
    assert years_from.day == years_to.day == 1
    if years_from < years_to:
        assert years and years_from.month == years_to.month == 1 and years_to <= plan.stop
    else:
        assert years_from == years_to == plan.stop
    # A month or a year read whole and partly taken away only when that part is the smaller.
    assert (first - plan.start).days <= (next_month(plan.start) - first).days
    if years_from < plan.start:
        assert plan.start.month - 1 < 13 - plan.start.month


@given(
    st.lists(
        st.lists(st.tuples(st.integers(0, rollups.LAST_BUCKET), st.integers(0, 50)), max_size=8), max_size=6
    )
)
def test_merged_histograms_give_the_percentiles_of_their_sum(parts):  # type: ignore[no-untyped-def]
    blobs = [b"".join(struct.pack(">Bi", bucket, n) for bucket, n in part) for part in parts]
    histograms = rollups.merged(blobs)
    assert histograms.shape == (len(parts), rollups.LAST_BUCKET + 1)
    for row, part in zip(histograms, parts, strict=True):
        expected = np.zeros(rollups.LAST_BUCKET + 1, np.int64)
        for bucket, n in part:
            expected[bucket] += n
        assert (row == expected).all()
        assert rollups.percentiles_of(row[None, :], (0.5, 0.9))[0] == rollups.percentiles(part, (0.5, 0.9))
