"""The demo's people: the history names only real users, and a new account inherits none of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from backend import demo, history

END = datetime(2026, 6, 1, tzinfo=UTC)
# Every column of the events and the trail that names a user.
PERSON_COLUMNS = (
    ("events", "reporter_id"),
    ("events", "assignee_id"),
    ("events", "resolved_by"),
    ("events", "closed_by"),
    ("event_actions", "actor_id"),
)


def load_demo_history(session, settings):  # type: ignore[no-untyped-def]
    """The demo's staff and a small history over every Conghua grid (rolled back after)."""
    made = demo.load_staff(session, settings)
    plan = history.Plan(start=END - timedelta(days=365), end=END, events=2000, seed=9)
    summary = history.load_history(session, plan, points_per_grid=2, analyze=False)
    session.commit()
    return made, summary


@pytest.fixture
def demo_history(session, test_settings):  # type: ignore[no-untyped-def]
    return load_demo_history(session, test_settings)


def test_load_staff_fills_every_grid_and_centre_once(session, test_settings):  # type: ignore[no-untyped-def]
    supervisors, workers = demo.load_staff(session, test_settings)
    assert supervisors > 250 and workers > 1700
    assert demo.load_staff(session, test_settings) == (0, 0)
    short = session.execute(
        text(
            "SELECT count(*) FROM areas a WHERE a.level = 'grid' AND a.valid_to IS NULL"
            " AND (SELECT count(*) FROM user_grids g JOIN users u ON u.id = g.user_id"
            "      WHERE g.grid_code = a.code AND u.role = 'worker') < 2"
        )
    ).scalar()
    assert short == 0


def test_demo_history_names_only_real_users_of_its_grids(session, demo_history):  # type: ignore[no-untyped-def]
    _, summary = demo_history
    assert summary.events == 2000
    for table, column in PERSON_COLUMNS:
        named, dangling = session.execute(
            text(
                f"SELECT count(t.{column}), count(t.{column}) FILTER (WHERE u.id IS NULL)"
                f" FROM {table} t LEFT JOIN users u ON u.id = t.{column}"
            )
        ).one()
        assert named > 0 and dangling == 0, (table, column)
    # Reporters and assignees work the event's grid; the trail's other actors are supervisors of
    # a centre above it.
    misplaced = session.execute(
        text(
            "SELECT count(*) FROM events e WHERE EXISTS (SELECT 1 FROM (VALUES (e.reporter_id),"
            " (e.assignee_id), (e.resolved_by)) p(id) WHERE p.id IS NOT NULL AND NOT EXISTS"
            " (SELECT 1 FROM user_grids g WHERE g.user_id = p.id AND g.grid_code = e.grid_code))"
            # The history's events: live-server tests leave reports of their own, received now.
            " AND e.received_at < :end"
        ),
        {"end": END},
    ).scalar()
    assert misplaced == 0
    strangers = session.execute(
        text(
            "SELECT count(*) FROM event_actions a JOIN events e ON e.id = a.event_id"
            " JOIN users u ON u.id = a.actor_id"
            " WHERE NOT (u.role = 'worker' AND EXISTS (SELECT 1 FROM user_grids g"
            "            WHERE g.user_id = u.id AND g.grid_code = e.grid_code))"
            " AND NOT (u.role = 'supervisor' AND e.grid_code LIKE u.area_code || '%')"
            " AND e.received_at < :end"
        ),
        {"end": END},
    ).scalar()
    assert strangers == 0


def test_a_new_worker_sees_no_demo_events_and_has_no_tasks(app, client, session, test_settings):  # type: ignore[no-untyped-def]
    # One account made before the history is loaded and one after: a history that named
    # made-up ids would hand the first one someone's events.
    def new_worker(username: str):  # type: ignore[no-untyped-def]
        body = {"username": username, "password": "long-enough", "display_name": "新人", "role": "worker"}
        assert client.post("/api/v1/users", json=body).status_code == 201
        token = client.post("/api/v1/auth/token", json={"username": username, "password": "long-enough"})
        worker = app.test_client()
        worker.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token.json['access_token']}"
        return worker

    before = new_worker("before-history")
    load_demo_history(session, test_settings)
    after = new_worker("after-history")
    for worker in (before, after):
        events = worker.get("/api/v1/events")
        assert events.status_code == 200 and events.json["items"] == []
        tasks = worker.get("/api/v1/me/tasks")
        assert tasks.status_code == 200 and tasks.json["changed"] == [] and not tasks.json["more"]


def test_a_demo_worker_signs_in_with_the_demo_password_and_finds_tasks(app, session, demo_history):  # type: ignore[no-untyped-def]
    username = session.execute(
        text(
            "SELECT u.username FROM events e JOIN users u ON u.id = e.assignee_id"
            " WHERE u.username LIKE 'worker-%' AND e.status NOT IN ('closed', 'rejected')"
            " ORDER BY u.username LIMIT 1"
        )
    ).scalar_one()
    token = app.test_client().post(
        "/api/v1/auth/token", json={"username": username, "password": demo.DEMO_PASSWORD}
    )
    assert token.status_code == 200
    worker = app.test_client()
    worker.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token.json['access_token']}"
    assert worker.get("/api/v1/me/tasks").json["changed"]


def test_an_event_or_trail_entry_naming_no_user_is_refused(session):  # type: ignore[no-untyped-def]
    nobody = session.execute(text("SELECT coalesce(max(id), 0) + 1000 FROM users")).scalar_one()
    grid = session.execute(
        text("SELECT id, code FROM areas WHERE level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT 1")
    ).one()
    insert_event = text(
        "INSERT INTO events (id, category_code, description, location, crs, source_lon, source_lat,"
        " reporter_id, grid_code, assignment, boundary_id, content_hash)"
        " VALUES (:id, 'other', 'x', ST_SetSRID(ST_MakePoint(113.6, 23.6), 4326), 'wgs84', 113.6, 23.6,"
        " :reporter, :grid, 'contains', :boundary, 'x')"
    )
    values = {"grid": grid.code, "boundary": grid.id}
    with pytest.raises(IntegrityError, match="fk_events_reporter_id_users"), session.begin_nested():
        session.execute(insert_event, {**values, "id": uuid.uuid4(), "reporter": nobody})
    event_id = uuid.uuid4()
    session.execute(insert_event, {**values, "id": event_id, "reporter": None})
    with pytest.raises(IntegrityError, match="fk_event_actions_actor_id_users"), session.begin_nested():
        session.execute(
            text(
                "INSERT INTO event_actions (event_id, action, to_status, actor_id)"
                " VALUES (:id, 'report', 'reported', :actor)"
            ),
            {"id": event_id, "actor": nobody},
        )


def test_demo_history_comes_in_through_every_channel_and_mediates_its_disputes(session, demo_history):  # type: ignore[no-untyped-def]
    channels = dict(session.execute(text("SELECT channel, count(*) FROM events GROUP BY channel")).all())
    assert set(channels) == {"grid_worker", "hotline", "centre_desk", "citizen", "video"}
    assert 0.75 < channels["grid_worker"] / 2000 < 0.85
    # Each handoff keeps its ticket, each resident's report is an Open311 request, each camera
    # alert names its camera.
    missing = session.execute(
        text(
            "SELECT count(*) FILTER (WHERE e.channel = 'hotline' AND t.ticket_id IS NULL),"
            " count(*) FILTER (WHERE e.channel = 'citizen' AND r.token IS NULL),"
            " count(*) FILTER (WHERE (e.channel = 'video') <> (e.camera_id IS NOT NULL))"
            " FROM events e LEFT JOIN hotline_tickets t ON t.event_id = e.id"
            " LEFT JOIN open311_requests r ON r.event_id = e.id"
        )
    ).one()
    assert tuple(missing) == (0, 0, 0)
    # Every accepted dispute went to mediation; every closed one's case has an outcome, about
    # 98% of them agreements.
    row = session.execute(
        text(
            "SELECT count(*) AS disputes, count(c.id) AS cases,"
            " count(*) FILTER (WHERE e.status = 'closed' AND c.outcome IS NULL) AS closed_open,"
            " count(c.outcome) AS ended, count(*) FILTER (WHERE c.outcome = 'agreement') AS agreements,"
            " count(*) FILTER (WHERE c.outcome_at <= c.opened_at) AS backwards"
            " FROM events e LEFT JOIN mediation_cases c ON c.event_id = e.id"
            " WHERE e.category_code = 'dispute' AND e.accepted_at IS NOT NULL AND e.status <> 'rejected'"
        )
    ).one()
    assert row.disputes == row.cases > 100
    assert row.closed_open == 0 and row.backwards == 0
    assert 0.95 < row.agreements / row.ended <= 1.0
    # Loading the details again adds nothing.
    history.add_channel_details(session)
    history.add_mediation_history(session)
    assert session.execute(text("SELECT count(*) FROM mediation_cases")).scalar() == row.cases
