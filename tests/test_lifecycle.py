"""The closed loop: transitions, roles, the verifier rule, escalation, versions and the trail."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
import requests
from sqlalchemy import text

from backend.events.lifecycle import RULES
from backend.events.models import STATUSES
from tests.conftest import client_as
from tests.factories import report

PROBLEM = "application/problem+json"
STEP = {  # what each action needs besides its name
    "accept": {},
    "reject": {"reason": "重复上报"},
    "dispatch": {},
    "start": {},
    "resolve": {"note": "已清理"},
    "close": {},
    "return": {"reason": "未清理干净"},
    "escalate": {"reason": "需镇级协调"},
    "reopen": {"reason": "群众反映复发"},
}
# The shortest path of actions from reported to each status.
PATH = {
    "reported": [],
    "accepted": ["accept"],
    "dispatched": ["accept", "dispatch"],
    "in_progress": ["accept", "dispatch", "start"],
    "resolved": ["accept", "dispatch", "start", "resolve"],
    "closed": ["accept", "dispatch", "start", "resolve", "close"],
    "rejected": ["reject"],
}


@pytest.fixture
def sup(app, accounts):  # type: ignore[no-untyped-def]
    return client_as(app, accounts, "supervisor")


@pytest.fixture
def worker(app, accounts):  # type: ignore[no-untyped-def]
    return client_as(app, accounts, "worker")


@pytest.fixture
def event(worker, accounts, session):  # type: ignore[no-untyped-def]
    """A fresh report in the worker's first grid (温泉镇), as the worker."""
    x, y = session.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM areas "
            "WHERE code = :c AND valid_to IS NULL) s"
        ),
        {"c": accounts.worker_grids[0]},
    ).one()
    response = worker.post("/api/v1/events", json=report(x, y, category="safety"))
    assert response.status_code == 201
    return response.json


def act(client, event_id, action, version=None, **extra):  # type: ignore[no-untyped-def]
    if version is None:
        version = client.get(f"/api/v1/events/{event_id}").json["version"]
    body = {"action": action, "version": version, **STEP[action], **extra}
    if action == "dispatch" and "assignee_id" not in extra and "department" not in extra:
        body["department"] = "城管执法队"
    return client.post(f"/api/v1/events/{event_id}/actions", json=body)


def walk(client, event_id, actions):  # type: ignore[no-untyped-def]
    for action in actions:
        response = act(client, event_id, action)
        assert response.status_code == 200, (action, response.json)
    return client.get(f"/api/v1/events/{event_id}").json


def test_the_full_loop_and_its_trail(sup, worker, accounts, event):
    accepted = walk(sup, event["id"], ["accept"])
    assert accepted["status"] == "accepted" and accepted["version"] == 2
    due = datetime.fromisoformat(accepted["due_at"]) - datetime.fromisoformat(accepted["accepted_at"])
    assert due == timedelta(hours=24)  # safety: 24 h
    dispatched = act(sup, event["id"], "dispatch", assignee_id=accounts.ids["worker"]).json
    assert dispatched["assignee_id"] == accounts.ids["worker"]
    walk(worker, event["id"], ["start", "resolve"])
    closed = walk(sup, event["id"], ["close"])
    assert closed["status"] == "closed" and closed["closed_at"] and closed["rework_count"] == 0
    trail = sup.get(f"/api/v1/events/{event['id']}/actions").json
    assert [(t["action"], t["from_status"], t["to_status"]) for t in trail] == [
        ("report", None, "reported"),
        ("accept", "reported", "accepted"),
        ("dispatch", "accepted", "dispatched"),
        ("start", "dispatched", "in_progress"),
        ("resolve", "in_progress", "resolved"),
        ("close", "resolved", "closed"),
    ]
    assert trail[4]["note"] == "已清理" and trail[2]["data"]["assignee_id"] == accounts.ids["worker"]


@pytest.mark.parametrize("status", STATUSES)
@pytest.mark.parametrize("action", list(RULES))
def test_every_action_from_every_status(app, accounts, worker, event, status, action):
    admin = client_as(app, accounts, "admin")
    for step in PATH[status]:  # the worker handles, the administrator supervises
        assert act(worker if step in ("start", "resolve") else admin, event["id"], step).status_code == 200
    before = admin.get(f"/api/v1/events/{event['id']}").json
    response = act(admin, event["id"], action)
    if status in RULES[action].sources:
        assert response.status_code == 200, response.json
        target = RULES[action].target or status
        assert response.json["status"] == target and response.json["version"] == before["version"] + 1
    else:
        assert response.status_code == 409, response.json
        assert response.content_type == PROBLEM
        after = admin.get(f"/api/v1/events/{event['id']}").json
        assert after == before


def test_the_resolver_cannot_close(sup, worker, event):
    walk(sup, event["id"], ["accept", "dispatch", "start", "resolve"])
    response = act(sup, event["id"], "close")
    assert response.status_code == 403 and "resolved" in response.json["detail"]
    other = act(sup, event["id"], "return")  # returning is fine
    assert other.status_code == 200


def test_handled_on_spot_starts_resolved_and_needs_another_verifier(worker, sup, event, accounts, session):
    x, y = event["location"]["coordinates"]
    body = report(x, y, handled_on_spot=True, resolution_note="当场调解")
    response = worker.post("/api/v1/events", json=body)
    assert response.status_code == 201
    on_spot = response.json
    assert on_spot["status"] == "resolved" and on_spot["due_at"] and on_spot["resolved_at"]
    assert act(worker, on_spot["id"], "close").status_code == 403  # workers do not verify
    assert act(sup, on_spot["id"], "close").json["status"] == "closed"
    missing = worker.post("/api/v1/events", json=report(x, y, handled_on_spot=True))
    assert missing.status_code == 422 and missing.json["errors"][0]["field"] == "resolution_note"


def test_return_and_reopen_count_as_rework(sup, worker, event):
    walk(sup, event["id"], ["accept", "dispatch"])
    walk(worker, event["id"], ["start", "resolve"])
    assert act(sup, event["id"], "return").json["rework_count"] == 1
    walk(worker, event["id"], ["resolve"])
    closed = walk(sup, event["id"], ["close"])
    assert closed["status"] == "closed"
    reopened = act(sup, event["id"], "reopen").json
    assert reopened["status"] == "in_progress" and reopened["rework_count"] == 2
    assert reopened["closed_at"] is None


def test_escalation_climbs_village_town_district_then_stops(app, accounts, event):
    admin = client_as(app, accounts, "admin")
    grid = event["grid"]
    assert event["responsible_area"] == grid[:12]
    assert act(admin, event["id"], "escalate").json["responsible_area"] == grid[:9]
    assert act(admin, event["id"], "escalate").json["responsible_area"] == grid[:6]
    top = act(admin, event["id"], "escalate")
    assert top.status_code == 409
    trail = admin.get(f"/api/v1/events/{event['id']}/actions").json
    assert [t["data"]["to_area"] for t in trail if t["action"] == "escalate"] == [grid[:9], grid[:6]]


def test_workers_only_handle_and_only_their_own(app, accounts, worker, sup, event):
    assert act(worker, event["id"], "accept").status_code == 403
    walk(sup, event["id"], ["accept", "dispatch"])
    other = client_as(app, accounts, "other_worker")
    assert act(other, event["id"], "start", version=3).status_code == 404  # not in their scope
    assert act(worker, event["id"], "start").status_code == 200


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"assignee_id": 999999}, "assignee_id"),
        ({"department": ""}, "department"),
    ],
)
def test_dispatch_needs_a_real_worker_or_a_department(sup, event, extra, field):
    walk(sup, event["id"], ["accept"])
    body = {"action": "dispatch", "version": 2, **extra}
    response = sup.post(f"/api/v1/events/{event['id']}/actions", json=body)
    assert response.status_code == 422 and field in {e["field"] for e in response.json["errors"]}


def test_dispatch_to_a_supervisor_is_refused(sup, event, accounts):
    walk(sup, event["id"], ["accept"])
    response = act(sup, event["id"], "dispatch", assignee_id=accounts.ids["supervisor"])
    assert response.status_code == 422


def test_reject_as_duplicate(sup, event, worker):
    x, y = event["location"]["coordinates"]
    again = worker.post("/api/v1/events", json=report(x, y, category="safety")).json
    rejected = act(sup, again["id"], "reject", duplicate_of=event["id"]).json
    assert rejected["status"] == "rejected"
    trail = sup.get(f"/api/v1/events/{again['id']}/actions").json
    assert trail[-1]["data"] == {"duplicate_of": event["id"]} and trail[-1]["note"] == "重复上报"
    self_dup = act(sup, event["id"], "reject", duplicate_of=event["id"])
    assert self_dup.status_code == 422
    assert act(sup, event["id"], "reject", reason="").status_code == 422


def test_stale_version_is_412_and_changes_nothing(sup, event, session):
    assert act(sup, event["id"], "accept", version=1).status_code == 200
    stale = act(sup, event["id"], "reject", version=1)
    assert stale.status_code == 412 and stale.content_type == PROBLEM
    assert stale.json["current_version"] == 2
    assert sup.get(f"/api/v1/events/{event['id']}").json["status"] == "accepted"
    assert len(sup.get(f"/api/v1/events/{event['id']}/actions").json) == 2


def test_if_match_carries_the_version(sup, event):
    url = f"/api/v1/events/{event['id']}/actions"
    etag = sup.get(f"/api/v1/events/{event['id']}").headers["ETag"]
    ok = sup.post(url, json={"action": "accept"}, headers={"If-Match": etag})
    assert ok.status_code == 200 and ok.headers["ETag"] == '"2"'
    assert (
        sup.post(url, json={"action": "dispatch", "department": "x"}, headers={"If-Match": etag}).status_code
        == 412
    )
    assert sup.post(url, json={"action": "dispatch", "department": "x"}).status_code == 428
    assert (
        sup.post(
            url, json={"action": "dispatch", "department": "x"}, headers={"If-Match": '"abc"'}
        ).status_code
        == 412
    )


def test_trail_is_append_only_in_the_database(sup, event, session):
    walk(sup, event["id"], ["accept"])
    from sqlalchemy.exc import DBAPIError

    with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
        session.execute(
            text("UPDATE event_actions SET note = 'rewritten' WHERE event_id = :id"), {"id": event["id"]}
        )


def test_two_supervisors_at_the_same_moment(live_server, accounts, engine):
    """Real concurrent requests: exactly one wins, the other gets 412, the trail has one action."""
    base = live_server
    headers = accounts.headers("supervisor")
    with engine.connect() as conn:
        x, y = conn.execute(
            text(
                "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM areas "
                "WHERE code = :c AND valid_to IS NULL) s"
            ),
            {"c": accounts.worker_grids[1]},
        ).one()
    created = requests.post(
        f"{base}/api/v1/events", json=report(x, y), timeout=30, headers=accounts.headers("worker")
    ).json()
    url = f"{base}/api/v1/events/{created['id']}/actions"
    other = accounts.headers("village_supervisor")
    results: dict[str, int] = {}
    barrier = threading.Barrier(2)

    def go(h: dict[str, str], action: dict[str, object]) -> None:
        barrier.wait()
        response = requests.post(url, json={**action, "version": 1}, headers=h, timeout=30)
        results[str(action["action"])] = response.status_code

    threads = [
        threading.Thread(target=go, args=(headers, {"action": "accept"})),
        threading.Thread(target=go, args=(other, {"action": "reject", "reason": "无效"})),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results.values()) == [200, 412]
    winner = next(action for action, status in results.items() if status == 200)
    trail = requests.get(url, headers=headers, timeout=30).json()
    assert [t["action"] for t in trail] == ["report", winner]
