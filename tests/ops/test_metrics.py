"""/metrics: who may read it, what it counts, and counts that add up across gunicorn workers."""

from __future__ import annotations

import os
import signal
import time
import uuid
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from backend.events import service as events
from backend.ops import metrics
from tests.conftest import client_as, gunicorn
from tests.factories import add_square_tree, report

ELSEWHERE = {"REMOTE_ADDR": "203.0.113.7"}


def samples(body: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Every sample of a Prometheus text, by name and labels."""
    found = {}
    for family in text_string_to_metric_families(body):
        for sample in family.samples:
            found[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return found


def value(found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


def local(name: str, **labels: str) -> float:
    """A value of this process's metrics (the in-process app's)."""
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


def test_an_admin_or_a_caller_on_this_machine_reads_metrics(app, accounts, anon_client):
    admin = client_as(app, accounts, "admin")
    response = admin.get("/metrics", environ_base=ELSEWHERE)
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    assert "wangge_http_request_duration_seconds" in response.text
    # The test client comes from 127.0.0.1: a scraper on this machine needs no credential.
    assert anon_client.get("/metrics").status_code == 200


@pytest.mark.parametrize("who", ["supervisor", "worker", "gis"])
def test_other_callers_get_404(app, accounts, who):
    response = client_as(app, accounts, who).get("/metrics", environ_base=ELSEWHERE)
    assert response.status_code == 404
    assert response.content_type == "application/problem+json"


@pytest.mark.parametrize(
    "environ",
    [
        ELSEWHERE,
        {**ELSEWHERE, "HTTP_AUTHORIZATION": "Bearer not-a-token"},
        # A proxy on this machine passes requests from anywhere on.
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_X_FORWARDED_FOR": "203.0.113.7"},
        {"REMOTE_ADDR": "127.0.0.1", "HTTP_FORWARDED": "for=203.0.113.7"},
    ],
)
def test_anonymous_callers_from_elsewhere_get_404(anon_client, environ):
    assert anon_client.get("/metrics", environ_base=environ).status_code == 404


def test_loopback_over_ipv6_counts_as_this_machine(anon_client):
    assert anon_client.get("/metrics", environ_base={"REMOTE_ADDR": "::1"}).status_code == 200
    assert anon_client.get("/metrics", environ_base={"REMOTE_ADDR": "::ffff:127.0.0.1"}).status_code == 200


def test_metrics_are_not_in_the_api_document(app):
    from backend import openapi_doc

    assert "/metrics" not in openapi_doc.PATH.read_text(encoding="utf-8")


def test_requests_count_by_url_rule_not_path(client, tree):
    name = "wangge_http_request_duration_seconds_count"
    rule = "/api/v1/events/<uuid:event_id>"
    before = local(name, route=rule, method="GET", status="404")
    for _ in range(3):
        assert client.get(f"/api/v1/events/{uuid.uuid4()}").status_code == 404
    assert local(name, route=rule, method="GET", status="404") == before + 3
    unmatched = local(name, route="(unmatched)", method="GET", status="404")
    client.get(f"/no/such/{uuid.uuid4()}")
    assert local(name, route="(unmatched)", method="GET", status="404") == unmatched + 1
    # A made-up method is one label, however many there are.
    other = local(name, route="(unmatched)", method="OTHER", status="405")
    assert client.open("/healthz", method="BREW").status_code == 405
    assert local(name, route="(unmatched)", method="OTHER", status="405") == other + 1


def test_reports_count_by_assignment_once_committed(client, tree):
    before = {a: local("wangge_reports_total", assignment=a) for a in metrics.ASSIGNMENTS}
    for lon, lat in [(120.05, 30.15), (120.15, 30.05), (120.4003, 30.05), (125.0, 35.0)]:
        assert client.post("/api/v1/events", json=report(lon, lat)).status_code == 201
    after = {a: local("wangge_reports_total", assignment=a) for a in metrics.ASSIGNMENTS}
    assert {a: after[a] - before[a] for a in after} == {"contains": 2, "nearest": 1, "unassigned": 1}
    # A retry stores nothing new and counts nothing.
    body = report(120.05, 30.15, id=str(uuid.uuid4()))
    assert client.post("/api/v1/events", json=body).status_code == 201
    assert client.post("/api/v1/events", json=body).status_code == 200
    assert local("wangge_reports_total", assignment="contains") == after["contains"] + 1


def test_a_report_rolled_back_is_not_counted(session, tree, accounts):
    from backend.auth.service import Actor

    actor = Actor(role="admin", user_id=accounts.ids["admin"])
    before = local("wangge_reports_total", assignment="contains")
    with pytest.raises(RuntimeError):
        with session.begin_nested():
            events.report_event(session, events.Report("environment", "x", 120.05, 30.15), actor=actor)
            raise RuntimeError("undo")
    with session.begin_nested():  # a savepoint released: counted when the outer commit comes
        events.report_event(session, events.Report("environment", "y", 120.05, 30.15), actor=actor)
    assert local("wangge_reports_total", assignment="contains") == before
    session.commit()
    assert local("wangge_reports_total", assignment="contains") == before + 1
    events.report_event(session, events.Report("environment", "z", 120.05, 30.15), actor=actor)
    session.rollback()
    assert local("wangge_reports_total", assignment="contains") == before + 1


def test_actions_count_by_kind(client, tree):
    event = client.post("/api/v1/events", json=report(120.05, 30.15)).json
    before = local("wangge_event_actions_total", action="accept")
    response = client.post(f"/api/v1/events/{event['id']}/actions", json={"action": "accept", "version": 1})
    assert response.status_code == 200
    assert local("wangge_event_actions_total", action="accept") == before + 1
    # A stale version changes nothing and counts nothing.
    stale = client.post(f"/api/v1/events/{event['id']}/actions", json={"action": "accept", "version": 1})
    assert stale.status_code == 412
    assert local("wangge_event_actions_total", action="accept") == before + 1


def test_sign_in_failures_count(anon_client, accounts):
    name = "wangge_sign_in_failures_total"
    before = local(name, reason="credentials")
    wrong = {"username": "admin", "password": "not-the-password"}
    assert anon_client.post("/api/v1/auth/token", json=wrong).status_code == 401
    assert anon_client.post("/api/v1/auth/token", json={**wrong, "username": "nobody"}).status_code == 401
    assert local(name, reason="credentials") == before + 2
    ok = {"username": "admin", "password": accounts.passwords["admin"]}
    assert anon_client.post("/api/v1/auth/token", json=ok).status_code == 200
    assert local(name, reason="credentials") == before + 2


def test_open_overdue_events_are_counted_at_scrape_time(client, tree, session):
    def overdue() -> float:
        return value(samples(client.get("/metrics").text), "wangge_events_overdue_open")

    before = overdue()
    assert before == events.count_open_overdue(session)
    event = client.post("/api/v1/events", json=report(120.05, 30.15)).json
    session.execute(
        text("UPDATE events SET due_at = now() - interval '1 hour' WHERE id = :id"), {"id": event["id"]}
    )
    session.commit()
    assert overdue() == before + 1
    assert value(samples(client.get("/metrics").text), "wangge_database_up") == 1


def test_a_scrape_answers_without_its_database_figures_when_the_query_fails(client, monkeypatch):
    from sqlalchemy.exc import OperationalError

    def broken(_session):  # type: ignore[no-untyped-def]
        raise OperationalError("SELECT", {}, Exception("canceling statement due to statement timeout"))

    monkeypatch.setattr(events, "count_open_overdue", broken)
    response = client.get("/metrics")
    assert response.status_code == 200
    found = samples(response.text)
    assert value(found, "wangge_database_up") == 0
    assert ("wangge_events_overdue_open", frozenset()) not in found


def test_a_broken_metrics_store_fails_no_request(client, monkeypatch):
    def broken(*_args, **_kwargs):  # type: ignore[no-untyped-def]
        raise OSError("No such file or directory")

    monkeypatch.setattr(metrics.REQUEST_SECONDS, "labels", broken)
    assert client.get("/healthz").status_code == 200


# --- under gunicorn -------------------------------------------------------------------------


def _worker_pids(metrics_dir: Path) -> set[int]:
    return {int(path.stem.rsplit("_", 1)[1]) for path in metrics_dir.glob("histogram_*.db")}


def _scrape(base: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = requests.get(f"{base}/metrics", timeout=30)
    assert response.status_code == 200
    return samples(response.text)


def test_counts_add_up_across_two_gunicorn_workers(database_url, engine, tmp_path):
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    (metrics_dir / "counter_1.db").write_bytes(b"stale, from an earlier server")
    log_path = tmp_path / "gunicorn.log"
    rounds = 40
    with gunicorn(
        database_url, workers=2, log_path=log_path, PROMETHEUS_MULTIPROC_DIR=str(metrics_dir)
    ) as base:
        assert not (metrics_dir / "counter_1.db").exists()  # a fresh start empties the directory
        # A new connection each time, so that both workers' sockets get some.
        for _ in range(rounds):
            assert requests.get(f"{base}/readyz", timeout=30).status_code == 200
        wrong = {"username": f"nobody-{uuid.uuid4().hex[:8]}", "password": "wrong-password"}
        try:
            for _ in range(3):
                assert requests.post(f"{base}/api/v1/auth/token", json=wrong, timeout=30).status_code == 401
        finally:
            # The server commits its sign-in counts: leave none to the limits tested elsewhere.
            with engine.begin() as conn:
                conn.execute(
                    text("DELETE FROM login_attempts WHERE key IN ('addr:127.0.0.1', :user)"),
                    {"user": f"user:{wrong['username']}"},
                )
        pids = _worker_pids(metrics_dir)
        assert len(pids) == 2, "both workers should have served requests"

        ready = {"route": "/readyz", "method": "GET", "status": "200"}
        for _ in range(6):  # whichever worker answers the scrape, the sums are the same
            found = _scrape(base)
            assert value(found, "wangge_http_request_duration_seconds_count", **ready) == rounds
            assert value(found, "wangge_http_request_duration_seconds_bucket", le="+Inf", **ready) == rounds
            assert value(found, "wangge_sign_in_failures_total", reason="credentials") == 3
            # Two workers of WANGGE_POOL_SIZE=4 (plus as much overflow); the scrape holds one.
            assert value(found, "wangge_db_pool_limit") == 16
            assert value(found, "wangge_db_pool_checked_out") == 1
            assert value(found, "wangge_database_up") == 1

        # A worker that goes keeps its counts; its live gauges go with it.
        gone = pids.pop()
        os.kill(gone, signal.SIGTERM)
        deadline = time.monotonic() + 30
        while (metrics_dir / f"gauge_livesum_{gone}.db").exists():
            assert time.monotonic() < deadline, "child_exit should remove the gone worker's gauges"
            time.sleep(0.2)
        found = _scrape(base)
        assert value(found, "wangge_http_request_duration_seconds_count", **ready) == rounds
        assert value(found, "wangge_sign_in_failures_total", reason="credentials") == 3
        assert value(found, "wangge_db_pool_limit") in (8, 16)  # the new worker counts once it serves

    lines = [line for line in log_path.read_text().splitlines() if '"msg":"request"' in line]
    assert sum('"route":"/readyz"' in line for line in lines) == rounds
