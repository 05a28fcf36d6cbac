"""Expensive requests take bounded slots; the database failing under the driver is a 503."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import text

from backend import load
from backend.auth.scope import Actor
from tests.conftest import client_as

EXPORT = "/api/v1/exports/grids.geojson"


@pytest.fixture
def tight(app) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """One expensive slot per process, a short wait for it, one at a time per caller."""
    before = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(
        before, expensive_slots=1, expensive_wait_s=0.2, expensive_per_caller=1
    )
    yield
    app.config["SETTINGS"] = before


def test_an_expensive_request_waits_briefly_for_a_slot_then_gets_503(app, accounts, tight) -> None:  # type: ignore[no-untyped-def]
    client = client_as(app, accounts, "supervisor")
    slots = load._slots(1)
    assert slots.acquire(timeout=1)
    try:
        busy = client.get(EXPORT)
        assert busy.status_code == 503
        assert busy.mimetype == "application/problem+json"
        assert busy.headers["Retry-After"]
        # Cheap requests are not held back by the busy slots.
        assert client.get("/api/v1/me").status_code == 200
    finally:
        slots.release()
    assert client.get(EXPORT).status_code == 200
    # The slot came back after the answer.
    assert slots.acquire(timeout=0.1)
    slots.release()


def test_a_caller_runs_only_so_many_expensive_requests_at_once(app, accounts, tight, engine) -> None:  # type: ignore[no-untyped-def]
    supervisor = client_as(app, accounts, "supervisor")
    me = supervisor.get("/api/v1/me").get_json()
    key = load.caller_key(Actor(role="supervisor", user_id=me["id"]))
    held = threading.Event()
    done = threading.Event()

    def hold() -> None:
        # Another request of the same caller, elsewhere, holding the caller's one slot.
        with engine.connect() as other, other.begin():
            other.execute(text("SELECT pg_advisory_xact_lock(:n, :k)"), {"n": load.LOCK_NAMESPACE, "k": key})
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert held.wait(10)
        refused = supervisor.get(EXPORT)
        assert refused.status_code == 429
        assert refused.headers["Retry-After"]
        # Another caller is not held back.
        assert client_as(app, accounts, "admin").get(EXPORT).status_code == 200
    finally:
        done.set()
        thread.join()
    assert supervisor.get(EXPORT).status_code == 200


def test_a_cancelled_statement_on_the_driver_path_is_a_503(app, accounts, session) -> None:  # type: ignore[no-untyped-def]
    """The report insert goes straight to the driver: a lock it cannot get is a 503 to retry,
    not a 500 with an empty body."""
    from tests.factories import report

    worker = client_as(app, accounts, "worker")
    point = session.execute(
        text("SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM areas WHERE code = :c) s"),
        {"c": accounts.worker_grids[0]},
    ).one()
    session.execute(text("SET LOCAL lock_timeout = '100ms'"))
    session.commit()
    # The app's session shares this test's connection, so a lock held by another connection
    # blocks its insert.
    with session.get_bind().engine.connect() as other, other.begin():  # type: ignore[union-attr]
        other.execute(text("LOCK TABLE events IN ACCESS EXCLUSIVE MODE"))
        response = worker.post("/api/v1/events", json=report(point[0], point[1]))
    assert response.status_code == 503, response.get_data(as_text=True)
    assert response.mimetype == "application/problem+json"
    assert response.headers["Retry-After"]
