"""The seeded event history: lifecycle invariants, realistic shares, and loading it."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from backend import history
from backend.events.models import STATUSES
from backend.stats import queries
from tests.stats.test_closure_rollups import rollups_differences

SLA = {
    "dispute": 72,
    "public_security": 24,
    "safety": 24,
    "rental": 72,
    "environment": 48,
    "livelihood": 120,
    "emergency": 2,
    "other": 72,
}
END = datetime(2026, 6, 1, tzinfo=UTC)
EVENT = {name: i for i, (name, _) in enumerate(history.EVENT_COLUMNS)}
ACTION = {name: i for i, (name, _) in enumerate(history.ACTION_COLUMNS)}


def sites() -> list[history.GridSite]:
    """40 grids in 8 towns, two points each."""
    out = []
    for t in range(8):
        for g in range(5):
            code = f"440117{t + 1:03d}{1:03d}{g + 1:03d}"
            points = ((113.5 + t / 100, 23.5 + g / 100), (113.505 + t / 100, 23.505 + g / 100))
            out.append(history.GridSite(code, t * 10 + g, points, {"wgs84": points}))
    return out


@pytest.fixture(scope="module")
def generated() -> tuple[history.Plan, list[tuple[object, ...]], list[tuple[object, ...]]]:
    plan = history.Plan(start=END - timedelta(days=365), end=END, events=6000, seed=11)
    events, actions = [], []
    for event_rows, action_rows in history.generate(sites(), SLA, plan, batch=1000):
        events += event_rows
        actions += action_rows
    return plan, events, actions


def test_every_event_follows_the_lifecycle(generated):  # type: ignore[no-untyped-def]
    plan, events, actions = generated
    assert len(events) == plan.events
    trails = defaultdict(list)
    for action in actions:
        trails[action[ACTION["event_id"]]].append(action)
    start, end = history.micros(plan.start), history.micros(plan.end)
    received = [e[EVENT["received_at"]] for e in events]
    assert received == sorted(received) and start <= received[0] and received[-1] < end
    for event in events:
        value = {name: event[i] for name, i in EVENT.items()}
        trail = trails[value["id"]]
        assert value["status"] in STATUSES
        assert trail[0][ACTION["action"]] == "report"
        times = [a[ACTION["created_at"]] for a in trail]
        assert times == sorted(times) and times[-1] <= end
        assert times[0] == value["received_at"] and times[-1] == value["updated_at"]
        for before, after in zip(trail, trail[1:], strict=False):
            assert after[ACTION["from_status"]] == before[ACTION["to_status"]]
        assert trail[-1][ACTION["to_status"]] == value["status"]
        assert value["version"] == len(trail)
        actions_done = Counter(a[ACTION["action"]] for a in trail)
        assert value["rework_count"] == actions_done["return"] + actions_done["reopen"]
        if value["accepted_at"] is None:
            assert value["due_at"] is None and value["status"] in ("reported", "rejected")
        else:
            sla = SLA[value["category_code"]] * history.HOUR
            assert value["due_at"] == value["accepted_at"] + sla
        assert (value["closed_at"] is not None) == (value["status"] == "closed")
        if value["status"] == "closed":
            assert value["closed_at"] == max(
                a[ACTION["created_at"]] for a in trail if a[ACTION["action"]] == "close"
            )
        assert (value["resolved_at"] is not None) == (value["status"] in ("resolved", "closed"))
        grid = value["grid_code"]
        assert (value["village_code"], value["town_code"], value["district_code"]) == (
            grid[:12],
            grid[:9],
            grid[:6],
        )
        assert value["responsible_code"] in (grid[:12], grid[:9], grid[:6])


def test_shares_are_realistic(generated):  # type: ignore[no-untyped-def]
    plan, events, actions = generated
    n = len(events)
    status = Counter(e[EVENT["status"]] for e in events)
    done = Counter(a[ACTION["action"]] for a in actions)
    assert 0.01 < status["rejected"] / n < 0.035
    assert 0.02 < done["return"] / n < 0.045
    assert 0.01 < done["escalate"] / n < 0.035
    assert 0.003 < done["reopen"] / n < 0.02
    duplicates = [a for a in actions if a[ACTION["note"]] == "重复上报"]
    assert duplicates and all("duplicate_of" in a[ACTION["data"]].obj for a in duplicates)
    # Closure of the events due more than a week before the end: near 98% in all, clearly
    # lower in the weak town.
    cutoff = history.micros(plan.end) - 7 * history.DAY
    weak_towns, _ = history.pick_weak(sites(), plan)
    closed, due = Counter(), Counter()
    for e in events:
        if e[EVENT["status"]] != "rejected" and e[EVENT["due_at"]] and e[EVENT["due_at"]] < cutoff:
            weak = e[EVENT["town_code"]] in weak_towns
            due[weak] += 1
            closed[weak] += e[EVENT["closed_at"]] is not None
    overall = (closed[True] + closed[False]) / (due[True] + due[False])
    assert 0.975 < overall < 0.995
    assert closed[True] / due[True] < 0.95 < closed[False] / due[False]
    on_time = (
        sum(1 for e in events if e[EVENT["closed_at"]] and e[EVENT["closed_at"]] <= e[EVENT["due_at"]]) / n
    )
    assert 0.75 < on_time < 0.97
    still_open = [e for e in events if e[EVENT["status"]] not in ("closed", "rejected")]
    assert any(e[EVENT["due_at"]] and e[EVENT["due_at"]] < cutoff for e in still_open)


def test_the_same_seed_gives_the_same_history():
    plan = history.Plan(start=END - timedelta(days=30), end=END, events=200, seed=5)
    first = [rows for rows, _ in history.generate(sites(), SLA, plan)]
    again = [rows for rows, _ in history.generate(sites(), SLA, plan)]
    other = [
        rows
        for rows, _ in history.generate(
            sites(), SLA, plan.__class__(start=plan.start, end=plan.end, events=200, seed=6)
        )
    ]
    assert first == again and first != other


def test_the_history_names_only_its_staff_and_they_change_no_times_or_statuses():
    plan = history.Plan(start=END - timedelta(days=90), end=END, events=1500, seed=8)
    grids = sites()
    # Workers in all but the last grid; a supervisor for each village and for the district.
    workers = {g.code: (100 + 2 * i, 101 + 2 * i) for i, g in enumerate(grids[:-1])}
    supervisors = {g.code[:12]: 900 + i for i, g in enumerate(grids)} | {"440117": 999}
    staff = history.Staff(workers, supervisors)
    named = list(history.generate(grids, SLA, plan, staff=staff))
    nameless = list(history.generate(grids, SLA, plan))
    people = ("reporter_id", "assignee_id", "resolved_by", "closed_by")
    for a, b in zip(_events(named), _events(nameless), strict=True):
        for name in ("id", "status", "received_at", "accepted_at", "closed_at", "rework_count"):
            assert a[EVENT[name]] == b[EVENT[name]]
        assert all(b[EVENT[name]] is None for name in people)
    by_id = {e[EVENT["id"]]: e for e in _events(named)}
    actors = set()
    for event in by_id.values():
        grid_workers = workers.get(event[EVENT["grid_code"]], ())
        for name in ("reporter_id", "assignee_id", "resolved_by"):
            assert event[EVENT[name]] is None or event[EVENT[name]] in grid_workers
        if not grid_workers and event[EVENT["status"]] not in ("reported", "accepted", "rejected"):
            assert event[EVENT["assignee_id"]] is None and event[EVENT["department"]] == history.DEPARTMENT
    for _, actions in named:
        for action in actions:
            actors.add(action[ACTION["actor_id"]])
            event = by_id[action[ACTION["event_id"]]]
            if action[ACTION["action"]] in ("accept", "dispatch", "reject"):
                assert action[ACTION["actor_id"]] == supervisors[event[EVENT["village_code"]]]
    assert sum(e[EVENT["reporter_id"]] is not None for e in by_id.values()) > 0.7 * len(by_id)
    assert actors <= {None, 999, *supervisors.values(), *(w for ws in workers.values() for w in ws)}


def _events(batches):  # type: ignore[no-untyped-def]
    return [event for events, _ in batches for event in events]


def _schema_objects(session):  # type: ignore[no-untyped-def]
    return (
        session.execute(
            text(
                "SELECT indexdef FROM pg_indexes WHERE tablename IN ('events', 'event_actions')"
                " UNION ALL SELECT pg_get_constraintdef(oid) FROM pg_constraint"
                " WHERE conrelid IN ('events'::regclass, 'event_actions'::regclass) ORDER BY 1"
            )
        )
        .scalars()
        .all()
    )


@pytest.mark.parametrize("bulk", [False, True])
def test_load_history_writes_events_and_their_trail(session, bulk):  # type: ignore[no-untyped-def]
    before = _schema_objects(session)
    counted = "SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM event_actions)"
    events_before, actions_before = session.execute(text(counted)).one()
    plan = history.Plan(start=END - timedelta(days=365), end=END, events=3000, seed=3)
    summary = history.load_history(session, plan, points_per_grid=2, bulk=bulk)
    assert summary.events == 3000 and len(summary.weak_towns) == 1
    events_now, actions_now = session.execute(text(counted)).one()
    assert (events_now - events_before, actions_now - actions_before) == (summary.events, summary.actions)
    # Each event's version counts its trail; every point lies in the grid it was filed under.
    mismatched = session.execute(
        text(
            "SELECT count(*) FROM events e JOIN areas a ON a.id = e.boundary_id"
            " WHERE e.description <> 'test' AND (e.version <> (SELECT count(*) FROM event_actions x"
            "   WHERE x.event_id = e.id) OR NOT ST_Covers(a.geom, e.location) OR a.code <> e.grid_code)"
        )
    ).scalar()
    assert mismatched == 0
    assert _schema_objects(session) == before  # bulk mode put every index and key back
    # ... and the rollups' triggers, after counting the rollups afresh.
    assert rollups_differences(session) == (set(), set())
    enabled = "SELECT DISTINCT tgenabled FROM pg_trigger WHERE tgname LIKE 'closure_rollups%'"
    assert session.execute(text(enabled)).scalars().all() == ["O"]
    stats = queries.closure_stats(
        session,
        area="440117",
        window_from=plan.start,
        window_to=plan.end - timedelta(days=7),
        as_of=plan.end,
        group_by=("town",),
    )
    assert 0.96 < stats.totals.closure_rate < 0.995
    weakest = min(stats.groups, key=lambda g: g.figures.closure_rate or 1)
    assert weakest.key["town"] in summary.weak_towns


@pytest.fixture
def runner(app):  # type: ignore[no-untyped-def]
    return app.test_cli_runner()


def test_demo_events_command_loads_a_history_once(runner, session):  # type: ignore[no-untyped-def]
    had_events = session.scalar(text("SELECT EXISTS (SELECT 1 FROM events)"))
    result = runner.invoke(args=["demo", "events", "--event-count", "300", "--years", "0.5"])
    assert result.exit_code == 0, result.output
    if had_events:  # another test committed reports for real
        assert "events exist already" in result.output
        return
    assert "loaded 300 events" in result.output
    assert session.scalar(text("SELECT count(*) FROM events")) == 300
    again = runner.invoke(args=["demo", "events", "--event-count", "300"])
    assert "events exist already" in again.output


def test_demo_load_if_empty_skips_the_history_too(runner, session):  # type: ignore[no-untyped-def]
    result = runner.invoke(args=["demo", "load", "--if-empty"])
    assert result.exit_code == 0 and "already loaded" in result.output
    assert "events" not in result.output
