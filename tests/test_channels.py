"""Channels (渠道): every event says where it came from; desk walk-ins, hotline handoffs and
camera alerts are registered by centre staff, and each goes round the same closed loop."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text

from tests.conftest import client_as
from tests.factories import report

_POINT_IN = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE code = :code AND valid_to IS NULL) s"
)


@pytest.fixture
def point(session, accounts) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    row = session.execute(_POINT_IN, {"code": accounts.worker_grids[0]}).one()
    return float(row.x), float(row.y)


def test_a_workers_report_is_of_the_grid_worker_channel_and_nothing_else(app, accounts, point):
    worker = client_as(app, accounts, "worker")
    event = worker.post("/api/v1/events", json=report(*point)).json
    assert event["channel"] == "grid_worker"
    assert event["external_ticket_id"] is None and event["camera_id"] is None
    for channel, extra in (("centre_desk", {}), ("hotline", {"external_ticket_id": "T1"}), ("other", {})):
        refused = worker.post("/api/v1/events", json=report(*point, channel=channel, **extra))
        assert refused.status_code == 403, channel
        assert refused.mimetype == "application/problem+json"


@pytest.mark.parametrize(
    ("who", "tier"), [("supervisor", "440117103"), ("village_supervisor", "440117103001")]
)
def test_a_desk_walk_in_sits_with_the_centre_that_registered_it(app, accounts, point, who, tier):
    staff = client_as(app, accounts, who)
    event = staff.post("/api/v1/events", json=report(*point, channel="centre_desk")).json
    assert event["channel"] == "centre_desk"
    assert event["grid"] == accounts.worker_grids[0]
    assert event["responsible_area"] == tier
    # Outside the staff's area it is refused like any report of theirs.
    other = client_as(app, accounts, "other_supervisor")
    assert other.post("/api/v1/events", json=report(*point, channel="centre_desk")).status_code == 403


def test_a_hotline_handoff_is_idempotent_on_its_ticket(app, accounts, point):
    staff = client_as(app, accounts, "supervisor")
    body = report(*point, channel="hotline", external_ticket_id="12345-2026-000042", description="热线转办")
    first = staff.post("/api/v1/events", json=body)
    assert first.status_code == 201
    assert first.json["channel"] == "hotline" and first.json["external_ticket_id"] == "12345-2026-000042"
    again = staff.post("/api/v1/events", json=body)
    assert again.status_code == 200 and again.json["id"] == first.json["id"]
    # The hotline sent no id either time: still one event for the ticket.
    listed = staff.get("/api/v1/events?channel=hotline&limit=1000").json["items"]
    assert [e["id"] for e in listed if e["external_ticket_id"] == "12345-2026-000042"] == [first.json["id"]]
    changed = staff.post("/api/v1/events", json={**body, "description": "另一件事"})
    assert changed.status_code == 409
    assert changed.json["errors"][0]["field"] == "external_ticket_id"


def test_a_handoff_needs_its_ticket_and_a_camera_alert_its_camera(app, accounts, point):
    staff = client_as(app, accounts, "supervisor")
    for body, field in (
        (report(*point, channel="hotline"), "external_ticket_id"),
        (report(*point, channel="video"), "camera_id"),
        (report(*point, camera_id="CAM-7"), "camera_id"),
        (report(*point, channel="centre_desk", external_ticket_id="T"), "external_ticket_id"),
    ):
        response = staff.post("/api/v1/events", json=body)
        assert response.status_code == 422, body
        assert response.json["errors"][0]["field"] == field
    video = staff.post("/api/v1/events", json=report(*point, channel="video", camera_id="雪亮-0071"))
    assert video.status_code == 201 and video.json["camera_id"] == "雪亮-0071"


def test_residents_come_only_through_open311(app, accounts, point):
    for who in ("admin", "supervisor"):
        response = client_as(app, accounts, who).post(
            "/api/v1/events", json=report(*point, channel="citizen")
        )
        assert response.status_code == 422
        assert response.json["errors"][0]["field"] == "channel"


def test_every_channel_goes_round_the_closed_loop(app, accounts, point):
    staff = client_as(app, accounts, "supervisor")
    worker = client_as(app, accounts, "worker")
    bodies = {
        "centre_desk": report(*point, channel="centre_desk"),
        "hotline": report(*point, channel="hotline", external_ticket_id="12345-loop"),
        "video": report(*point, channel="video", camera_id="CAM-1"),
        "other": report(*point, channel="other"),
    }
    for channel, body in bodies.items():
        event = staff.post("/api/v1/events", json=body).json
        for who, action in (
            (staff, {"action": "accept"}),
            (staff, {"action": "dispatch", "assignee_id": accounts.ids["worker"]}),
            (worker, {"action": "start"}),
            (worker, {"action": "resolve", "note": "处理完毕"}),
            (staff, {"action": "close"}),
        ):
            response = who.post(
                f"/api/v1/events/{event['id']}/actions", json={**action, "version": event["version"]}
            )
            assert response.status_code == 200, (channel, action, response.json)
            event = response.json
        assert event["status"] == "closed" and event["channel"] == channel


def test_closure_statistics_group_by_channel(app, accounts, point, session):
    staff = client_as(app, accounts, "supervisor")
    made = {}
    for channel, extra in (("centre_desk", {}), ("hotline", {"external_ticket_id": "12345-stats"})):
        event = staff.post("/api/v1/events", json=report(*point, channel=channel, **extra)).json
        staff.post(f"/api/v1/events/{event['id']}/actions", json={"action": "accept", "version": 1})
        made[channel] = event["id"]
    now = datetime.now(UTC)
    window = {"from": (now - timedelta(days=1)).isoformat(), "to": (now + timedelta(days=30)).isoformat()}
    query = "&".join(f"{k}={v.replace('+', '%2B')}" for k, v in window.items())
    stats = staff.get(f"/api/v1/stats/closure?area=440117103&group_by=channel&{query}").json
    groups = {g["key"]["channel"]: g for g in stats["groups"]}
    assert groups["centre_desk"]["due"] >= 1 and groups["hotline"]["due"] >= 1
    assert groups["hotline"]["key"]["channel_name"] == "12345热线"
    expected = dict(
        session.execute(
            text(
                "SELECT channel, count(*) FROM events WHERE town_code = '440117103' AND status <> 'rejected'"
                " AND due_at >= :start AND due_at < :end GROUP BY channel"
            ),
            {"start": now - timedelta(days=1), "end": now + timedelta(days=30)},
        ).all()
    )
    assert {k: g["due"] for k, g in groups.items()} == expected
    csv = staff.get(f"/api/v1/stats/closure.csv?area=440117103&group_by=channel&{query}")
    assert csv.status_code == 200
    header = csv.get_data().decode("utf-8-sig").splitlines()[0]
    assert header.startswith("channel 渠道,channel_name 渠道名称,")
