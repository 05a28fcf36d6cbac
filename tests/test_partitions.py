"""Events and their trail partitioned by month: the phone's UUID stays unique across months,
housekeeping makes the coming months, rows outside them land in the default partition, and the
migration carries existing rows there and back."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import date

import psycopg
import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import NullPool

from backend.db import alembic_config
from backend.events import partitions
from backend.events.models import Event, event_named
from tests.factories import add_square_tree, report

PROBLEM = "application/problem+json"
# Every column of an event but its id and received_at, to copy a stored one under another id.
_COPIED = (
    "category_code, description, location, crs, source_lon, source_lat, accuracy_m, occurred_at,"
    " reported_at, reporter_id, outside, assignment, boundary_id, assignment_distance_m,"
    " responsible_code, assignee_id, department, status, due_at, accepted_at, resolved_at,"
    " resolved_by, closed_at, closed_by, rework_count, version, contacts, photos_expected,"
    " content_hash, updated_at, channel, camera_id, grid_code, village_code, town_code, district_code"
)


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


def _copy_event(session, source: str, new_id: str, shift: str) -> int:  # type: ignore[no-untyped-def]
    """Store event `source` again under `new_id`, received `shift` earlier (another month)."""
    result = session.execute(
        text(
            f"INSERT INTO events (id, received_at, {_COPIED})"
            f" SELECT :new_id, received_at - CAST(:shift AS interval), {_COPIED} FROM events WHERE id = :id"
        ),
        {"new_id": new_id, "id": source, "shift": shift},
    )
    return int(result.rowcount)


def _partition_of(session, table: str, column: str, value: str) -> str:  # type: ignore[no-untyped-def]
    return str(
        session.execute(
            text(f"SELECT tableoid::regclass::text FROM {table} WHERE {column} = :v"), {"v": value}
        ).scalar_one()
    )


def _partitions(session, parent: str) -> set[str]:  # type: ignore[no-untyped-def]
    rows = session.execute(
        text("SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = CAST(:p AS regclass)"),
        {"p": parent},
    )
    return set(rows.scalars())


def test_a_report_lands_in_its_months_partition_and_claims_its_id(client, tree, session):
    created = client.post("/api/v1/events", json=report(120.05, 30.05)).json
    now = session.execute(text("SELECT now()")).scalar_one()
    month = partitions.month_of(now)
    assert _partition_of(session, "events", "id", created["id"]) == f"events_{month:%Y_%m}"
    assert (
        _partition_of(session, "event_actions", "event_id", created["id"]) == f"event_actions_{month:%Y_%m}"
    )
    claim = session.execute(text("SELECT received_at FROM event_ids WHERE id = :id"), {"id": created["id"]})
    assert (
        claim.scalar_one()
        == session.execute(
            text("SELECT received_at FROM events WHERE id = :id"), {"id": created["id"]}
        ).scalar_one()
    )


def test_an_id_stored_in_another_month_answers_retries_and_conflicts(client, tree, session):
    first = client.post("/api/v1/events", json=report(120.05, 30.05, description="井盖缺失")).json
    moved = str(uuid.uuid4())
    # The same report under another id, received two months earlier: another partition.
    assert _copy_event(session, first["id"], moved, "62 days") == 1
    session.commit()
    assert _partition_of(session, "events", "id", moved) != _partition_of(
        session, "events", "id", first["id"]
    )

    same = client.post("/api/v1/events", json=report(120.05, 30.05, description="井盖缺失", id=moved))
    assert same.status_code == 200 and same.json["id"] == moved
    other = client.post("/api/v1/events", json=report(120.05, 30.05, description="另一件事", id=moved))
    assert other.status_code == 409 and other.content_type == PROBLEM
    # Nor does a writer going around the service store a second event under a claimed id.
    assert _copy_event(session, first["id"], moved, "0 days") == 0
    count = session.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": moved}).scalar()
    trail = session.execute(text("SELECT count(*) FROM event_actions WHERE event_id = :id"), {"id": moved})
    assert (count, trail.scalar()) == (1, 0)


def test_an_events_received_at_never_changes(client, tree, session):
    created = client.post("/api/v1/events", json=report(120.05, 30.05)).json["id"]
    # It would move the row to another month, where the claim (taken) would drop it.
    with pytest.raises(DBAPIError, match="never changes"), session.begin_nested():
        session.execute(
            text("UPDATE events SET received_at = received_at - interval '3 months' WHERE id = :id"),
            {"id": created},
        )
    assert session.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": created}).scalar() == 1


def test_events_far_in_the_past_or_future_land_in_the_default_partition(client, tree, session):
    source = client.post("/api/v1/events", json=report(120.05, 30.05)).json["id"]
    past, future = str(uuid.uuid4()), str(uuid.uuid4())
    assert _copy_event(session, source, past, "30 years") == 1
    assert _copy_event(session, source, future, "-200 years") == 1
    session.execute(
        text(
            "INSERT INTO event_actions (event_id, action, to_status, created_at)"
            " VALUES (:id, 'report', 'reported', now() + interval '200 years')"
        ),
        {"id": future},
    )
    assert _partition_of(session, "events", "id", past) == "events_default"
    assert _partition_of(session, "events", "id", future) == "events_default"
    assert _partition_of(session, "event_actions", "event_id", future) == "event_actions_default"
    # Lookups by id still find them, through the API too.
    assert client.get(f"/api/v1/events/{past}").status_code == 200


def test_housekeeping_makes_the_coming_months_partitions(session):
    now = session.execute(text("SELECT now()")).scalar_one()
    this_month = partitions.month_of(now)
    partitions.create_partitions_ahead(session, months=5)
    months = [partitions.add_months(this_month, n) for n in range(6)]
    for parent in ("events", "event_actions"):
        assert {f"{parent}_{month:%Y_%m}" for month in months} <= _partitions(session, parent)
        assert f"{parent}_default" in _partitions(session, parent)
    # A second run makes nothing.
    assert partitions.create_partitions_ahead(session, months=5) == 0


def test_a_sweep_makes_partitions_ahead(session_factory):
    from backend.config import Settings
    from backend.ops import housekeeping

    with session_factory() as session:
        this_month = partitions.month_of(session.execute(text("SELECT now()")).scalar_one())
        coming = {f"events_{partitions.add_months(this_month, n):%Y_%m}" for n in range(4)}
        # As if housekeeping had not run for a while: the coming months are missing.
        for name in sorted(coming):
            session.execute(text(f"DROP TABLE {name}"))
            session.execute(text(f"DROP TABLE event_actions{name.removeprefix('events')}"))
        session.commit()
        assert not coming & _partitions(session, "events")
    retention = housekeeping.Retention.of(Settings(database_url="unused"))
    done = housekeeping.sweep(session_factory, retention)
    assert done["partitions"] == 8
    with session_factory() as session:
        assert coming <= _partitions(session, "events")


def test_partitions_are_local_months(session):
    assert partitions.create_partitions(session, date(2090, 2, 1), date(2090, 3, 1)) == 4
    bounds = session.execute(
        text("SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'events_2090_02'")
    ).scalar_one()
    # Midnight in Asia/Shanghai is 16:00 UTC the day before.
    assert "2090-01-31 16:00:00+00" in bounds and "2090-02-28 16:00:00+00" in bounds


def test_a_month_already_in_the_default_partition_is_left_there(client, tree, session):
    source = client.post("/api/v1/events", json=report(120.05, 30.05)).json["id"]
    stray = str(uuid.uuid4())
    session.execute(
        text(
            f"INSERT INTO events (id, received_at, {_COPIED})"
            f" SELECT :stray, TIMESTAMPTZ '2092-05-10 12:00+08', {_COPIED} FROM events WHERE id = :id"
        ),
        {"stray": stray, "id": source},
    )
    # The trail's month is made; the events' is not, and nothing fails.
    assert partitions.create_partitions(session, date(2092, 5, 1), date(2092, 5, 1)) == 1
    assert "events_2092_05" not in _partitions(session, "events")
    assert "event_actions_2092_05" in _partitions(session, "event_actions")
    assert _partition_of(session, "events", "id", stray) == "events_default"


def test_a_lookup_by_id_reads_one_partition(client, tree, session):
    created = client.post("/api/v1/events", json=report(120.05, 30.05)).json["id"]
    partitions.create_partitions(session, date(2025, 1, 1), date(2025, 12, 1))
    statement = select(Event).where(event_named(uuid.UUID(created)))
    sql = str(statement.compile(session.get_bind(), compile_kwargs={"literal_binds": True}))
    plan = session.execute(text(f"EXPLAIN (ANALYZE, COSTS OFF) {sql}")).scalars().all()
    scans = [line for line in plan if " on events_" in line]
    executed = [line for line in scans if "never executed" not in line]
    assert len(scans) > 12 and len(executed) == 1


# The migration there and back, on a database of its own with rows of several months.


def _admin_url(database_url: str) -> str:
    url = make_url(database_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@pytest.fixture
def scratch(database_url: str) -> Iterator[tuple[str, Engine]]:
    name = f"wangge_partitions_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(_admin_url(database_url), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = make_url(database_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url, poolclass=NullPool)
    try:
        yield url, engine
    finally:
        engine.dispose()
        with psycopg.connect(_admin_url(database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_OLD_EVENTS = text(
    "INSERT INTO events (id, category_code, description, location, crs, source_lon, source_lat,"
    " assignment, content_hash, status, received_at, accepted_at, due_at, closed_at)"
    " SELECT md5('partition-test' || i)::uuid, 'environment', 'event ' || i,"
    " ST_SetSRID(ST_MakePoint(120.05, 30.05), 4326), 'wgs84', 120.05, 30.05, 'unassigned',"
    " 'hash' || i, CASE WHEN i % 2 = 0 THEN 'closed' ELSE 'accepted' END,"
    " TIMESTAMPTZ '2026-03-15 12:00+08' + make_interval(days => i * 9),"
    " TIMESTAMPTZ '2026-03-15 13:00+08' + make_interval(days => i * 9),"
    " TIMESTAMPTZ '2026-03-16 13:00+08' + make_interval(days => i * 9),"
    " CASE WHEN i % 2 = 0 THEN TIMESTAMPTZ '2026-03-15 20:00+08' + make_interval(days => i * 9) END"
    " FROM generate_series(0, 39) AS i"
)
_OLD_TRAIL = text(
    "INSERT INTO event_actions (event_id, action, to_status, created_at)"
    " SELECT id, 'report', 'reported', received_at FROM events"
)
_HOTLINE = text(
    "INSERT INTO hotline_tickets (ticket_id, event_id) SELECT 'ticket-' || id, id FROM events LIMIT 3"
)
_ROLLUPS = text("SELECT sum(due), sum(closed), sum(closed_on_time) FROM closure_rollups")


def _counts(conn) -> tuple[int, int, int, int]:  # type: ignore[no-untyped-def]
    return (
        conn.execute(text("SELECT count(*) FROM events")).scalar(),
        conn.execute(text("SELECT count(*) FROM event_actions")).scalar(),
        conn.execute(text("SELECT max(id) FROM event_actions")).scalar(),
        conn.execute(text("SELECT count(*) FROM hotline_tickets")).scalar(),
    )


def test_the_migration_carries_the_rows_there_and_back(scratch):
    url, engine = scratch
    config = alembic_config(url)
    command.upgrade(config, "0090")
    with engine.begin() as conn:
        conn.execute(_OLD_EVENTS)
        conn.execute(_OLD_TRAIL)
        conn.execute(_HOTLINE)
        before, rollups = _counts(conn), tuple(conn.execute(_ROLLUPS).one())

    command.upgrade(config, "0110")
    with engine.begin() as conn:
        assert _counts(conn) == before and tuple(conn.execute(_ROLLUPS).one()) == rollups
        assert conn.execute(text("SELECT count(*) FROM event_ids")).scalar() == before[0]
        # Each month of the rows got its partition; none went to the default.
        assert conn.execute(text("SELECT count(*) FROM events_default")).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM events_2026_04")).scalar() >= 3
        assert conn.execute(text("SELECT count(*) FROM event_actions_2026_07")).scalar() >= 3
        # The trail's identity goes on from the copied rows; the rollups' trigger still follows.
        new_action = conn.execute(
            text(
                "INSERT INTO event_actions (event_id, action, to_status)"
                " SELECT id, 'accept', 'accepted' FROM events LIMIT 1 RETURNING id"
            )
        ).scalar_one()
        assert new_action > before[2]
        conn.execute(text("UPDATE events SET status = 'rejected' WHERE status = 'accepted'"))
        due_after = conn.execute(_ROLLUPS).one()[0]
        assert due_after == rollups[0] - 20
        conn.execute(text("UPDATE events SET status = 'accepted' WHERE status = 'rejected'"))

    command.downgrade(config, "0090")
    with engine.begin() as conn:
        counts = _counts(conn)
        assert counts[0] == before[0] and counts[1] == before[1] + 1 and counts[3] == before[3]
        assert tuple(conn.execute(_ROLLUPS).one()) == rollups
        assert conn.execute(text("SELECT to_regclass('event_ids')")).scalar() is None
        kinds = conn.execute(
            text("SELECT relkind FROM pg_class WHERE relname IN ('events', 'event_actions')")
        ).scalars()
        assert set(kinds) == {"r"}
        references = conn.execute(
            text("SELECT count(*) FROM pg_constraint WHERE confrelid = CAST('events' AS regclass)")
        ).scalar()
        assert references == 5

    command.upgrade(config, "head")
    with engine.connect() as conn:
        assert _counts(conn)[0] == before[0]
