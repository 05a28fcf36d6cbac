"""Through a real gunicorn on loopback: concurrent retries of one report (or one hotline ticket)
store it once."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import text

from tests.factories import report


def test_concurrent_retries_of_one_uuid_make_exactly_one_row(live_server, engine, accounts):
    event_id = str(uuid.uuid4())
    body = report(113.640, 23.650, crs="gcj02", id=event_id, accuracy_m=8)

    def send(_: int) -> tuple[int, str]:
        response = requests.post(
            f"{live_server}/api/v1/events", json=body, timeout=30, headers=accounts.headers("admin")
        )
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(send, range(48)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1 and statuses.count(200) == 47
    assert {returned for _, returned in results} == {event_id}
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": event_id}).scalar()
        trail = conn.execute(
            text("SELECT count(*) FROM event_actions WHERE event_id = :id"), {"id": event_id}
        ).scalar()
        claims = conn.execute(
            text("SELECT count(*) FROM event_ids WHERE id = :id"), {"id": event_id}
        ).scalar()
    assert (rows, trail, claims) == (1, 1, 1)


def test_concurrent_different_content_under_one_uuid_keeps_the_first(live_server, engine, accounts):
    event_id = str(uuid.uuid4())

    def send(i: int) -> int:
        body = report(113.640, 23.650, id=event_id, description=f"版本 {i % 2}")
        return requests.post(
            f"{live_server}/api/v1/events", json=body, timeout=30, headers=accounts.headers("admin")
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, range(32)))
    assert statuses.count(201) == 1
    assert set(statuses) <= {200, 201, 409} and 409 in statuses
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": event_id}).scalar()
    assert rows == 1


def test_concurrent_retries_and_conflicts_of_an_id_stored_months_ago(live_server, engine, accounts):
    """The id's claim, not the month's key, settles it: the stored event is two months old."""
    source = str(uuid.uuid4())
    body = report(113.640, 23.650, crs="gcj02", id=source, description="两个月前的事")
    first = requests.post(
        f"{live_server}/api/v1/events", json=body, timeout=30, headers=accounts.headers("admin")
    )
    assert first.status_code == 201
    old_id = str(uuid.uuid4())
    columns = (
        "category_code, description, location, crs, source_lon, source_lat, accuracy_m, occurred_at,"
        " reported_at, reporter_id, outside, assignment, boundary_id, assignment_distance_m,"
        " responsible_code, status, contacts, photos_expected, content_hash, channel, grid_code,"
        " village_code, town_code, district_code"
    )
    with engine.begin() as conn:
        conn.execute(
            text(
                f"INSERT INTO events (id, received_at, {columns}) SELECT :old_id,"
                f" received_at - interval '62 days', {columns} FROM events WHERE id = :id"
            ),
            {"old_id": old_id, "id": source},
        )

    def send(i: int) -> int:
        sent = {**body, "id": old_id, "description": body["description"] if i % 2 else "另一件事"}
        return requests.post(
            f"{live_server}/api/v1/events", json=sent, timeout=30, headers=accounts.headers("admin")
        ).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(pool.map(send, range(32)))
    assert statuses.count(200) == 16 and statuses.count(409) == 16
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": old_id}).scalar()
        trail = conn.execute(text("SELECT count(*) FROM event_actions WHERE event_id = :id"), {"id": old_id})
        assert (rows, trail.scalar()) == (1, 0)


def test_concurrent_handoffs_of_one_ticket_make_one_event(live_server, engine, accounts):
    """Through gunicorn: the hotline retries a handoff at once from many threads, without ids."""
    ticket = f"12345-live-{uuid.uuid4().hex[:8]}"
    body = report(113.640, 23.650, crs="gcj02", channel="hotline", external_ticket_id=ticket)

    def send(_: int) -> tuple[int, str]:
        response = requests.post(
            f"{live_server}/api/v1/events", json=body, timeout=30, headers=accounts.headers("admin")
        )
        return response.status_code, response.json()["id"]

    with ThreadPoolExecutor(max_workers=12) as pool:
        results = list(pool.map(send, range(36)))
    statuses = sorted(status for status, _ in results)
    assert statuses.count(201) == 1 and statuses.count(200) == 35
    assert len({event_id for _, event_id in results}) == 1
    with engine.connect() as conn:
        count = conn.execute(
            text(
                "SELECT count(*) FROM hotline_tickets t JOIN events e ON e.id = t.event_id"
                " WHERE t.ticket_id = :t"
            ),
            {"t": ticket},
        ).scalar()
    assert count == 1
