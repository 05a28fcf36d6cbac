"""Patrols from the phone: start, batches (idempotent, any order, any crs), end, the idle close,
and who reads a track."""

from __future__ import annotations

import math
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from backend.patrols import service
from geo.crs import wgs84_to_gcj02
from tests.conftest import client_as
from tests.org.factories import grid_point


def _points(lon: float, lat: float, t0: float, n: int, step_deg: float = 0.0001) -> list[dict[str, Any]]:
    return [
        {"lon": lon + i * step_deg, "lat": lat, "t": t0 + 10 * i, "accuracy_m": 8.0, "mock": False}
        for i in range(n)
    ]


def _start(client, **extra: Any) -> str:  # type: ignore[no-untyped-def]
    patrol_id = str(uuid.uuid4())
    response = client.post("/api/v1/patrols", json={"id": patrol_id, **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return patrol_id


def test_start_is_idempotent_on_the_phones_id(app, accounts):
    worker = client_as(app, accounts, "worker")
    patrol_id = str(uuid.uuid4())
    body = {"id": patrol_id, "started_at": "2026-12-01T09:00:00+08:00"}
    first = worker.post("/api/v1/patrols", json=body)
    again = worker.post("/api/v1/patrols", json=body)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json == again.json and first.json["worker_id"] == accounts.ids["worker"]
    # Another start under the same id is a conflict; so is someone else's.
    other = worker.post("/api/v1/patrols", json={**body, "started_at": "2026-12-01T10:00:00+08:00"})
    assert other.status_code == 409
    assert client_as(app, accounts, "other_worker").post("/api/v1/patrols", json=body).status_code == 409
    assert client_as(app, accounts, "gis").post("/api/v1/patrols", json=body).status_code in (401, 403)


def test_a_resent_batch_changes_nothing_and_another_under_its_key_is_409(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    patrol_id = _start(worker)
    url = f"/api/v1/patrols/{patrol_id}/points"
    batch = {"batch": "b1", "crs": "wgs84", "points": _points(lon, lat, time.time() - 600, 20)}
    first = worker.post(url, json=batch)
    again = worker.post(url, json=batch)
    assert (first.status_code, again.status_code) == (201, 200), again.get_data(as_text=True)
    assert first.json == again.json and first.json["points"] == 20
    changed = {**batch, "points": _points(lon, lat + 0.0001, time.time() - 600, 20)}
    conflict = worker.post(url, json=changed)
    assert conflict.status_code == 409 and conflict.mimetype == "application/problem+json"
    stored = session.execute(
        text("SELECT count(*) AS n, sum(n_points) AS points FROM patrol_batches WHERE patrol_id = :p"),
        {"p": patrol_id},
    ).one()
    assert (stored.n, stored.points) == (1, 20)
    assert worker.get(f"/api/v1/patrols/{patrol_id}").json["points"] == 20
    # Someone else's patrol takes no batch.
    other = client_as(app, accounts, "other_worker").post(url, json={**batch, "batch": "b2"})
    assert other.status_code == 404


def test_batches_out_of_order_make_one_track_in_time_order(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    patrol_id = _start(worker)
    t0 = time.time() - 3600
    points = _points(lon, lat, t0, 30)
    url = f"/api/v1/patrols/{patrol_id}/points"
    # The last batch first, and the points of the middle one shuffled.
    for key, chunk in (("c", points[20:]), ("a", points[:10]), ("b", points[10:20][::-1])):
        assert worker.post(url, json={"batch": key, "points": chunk}).status_code == 201
    track = worker.get(f"/api/v1/patrols/{patrol_id}").json["track"]
    assert track["type"] == "LineString"
    xs = [c[0] for c in track["coordinates"]]
    assert len(xs) == 30 and xs == sorted(xs)
    assert math.isclose(xs[0], lon, abs_tol=1e-9) and math.isclose(xs[-1], lon + 29 * 0.0001, abs_tol=1e-9)


def test_gcj02_points_are_stored_in_wgs84(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    patrol_id = _start(worker)
    gx, gy = wgs84_to_gcj02(lon, lat)
    # GCJ-02 moves points in Conghua by some hundreds of metres.
    assert abs(gx - lon) > 0.001 or abs(gy - lat) > 0.001
    points = [{"lon": gx, "lat": gy, "t": time.time() - 60}, {"lon": gx, "lat": gy, "t": time.time() - 50}]
    response = worker.post(
        f"/api/v1/patrols/{patrol_id}/points", json={"batch": "g", "crs": "gcj02", "points": points}
    )
    assert response.status_code == 201
    row = session.execute(
        text(
            "SELECT ST_X(ST_StartPoint(track)) AS x, ST_Y(ST_StartPoint(track)) AS y, crs"
            " FROM patrol_batches WHERE patrol_id = :p"
        ),
        {"p": patrol_id},
    ).one()
    assert row.crs == "gcj02"
    assert abs(row.x - lon) < 1e-7 and abs(row.y - lat) < 1e-7


def test_bad_points_are_named_by_index_and_nothing_is_stored(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    patrol_id = _start(worker)
    points = _points(lon, lat, time.time() - 600, 6)
    points[1]["lat"] = 91
    points[2]["t"] = time.time() + 86400
    points[4]["lon"] = "NaN"
    points[5]["mock"] = "yes"
    url = f"/api/v1/patrols/{patrol_id}/points"
    response = worker.post(url, json={"batch": "bad", "points": points})
    assert response.status_code == 422 and response.mimetype == "application/problem+json"
    fields = {e["field"] for e in response.json["errors"]}
    assert fields == {"points.1.lat", "points.2.t", "points.4.lon", "points.5.mock"}
    # A real NaN in the JSON is refused too (not valid JSON: 400), a batch too big is 422.
    nan = worker.post(
        url,
        data='{"batch": "n", "points": [{"lon": NaN, "lat": 1, "t": 1}]}',
        content_type="application/json",
    )
    assert nan.status_code in (400, 422)
    big = worker.post(url, json={"batch": "big", "points": _points(lon, lat, time.time() - 60000, 1001)})
    assert big.status_code == 422 and big.json["errors"][0]["field"] == "points"
    count = session.execute(
        text("SELECT count(*) FROM patrol_batches WHERE patrol_id = :p"), {"p": patrol_id}
    )
    assert count.scalar_one() == 0


def test_end_by_the_phone_and_the_idle_close(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    ended = _start(worker)
    t0 = time.time() - 7200
    idle = _start(worker, started_at=datetime.fromtimestamp(t0 - 60, UTC).isoformat())
    worker.post(f"/api/v1/patrols/{idle}/points", json={"batch": "1", "points": _points(lon, lat, t0, 5)})
    response = worker.post(f"/api/v1/patrols/{ended}/end", json={})
    assert response.status_code == 200 and response.json["closed_by"] == "phone"
    assert worker.post(f"/api/v1/patrols/{ended}/end", json={}).json == response.json
    # The server heard of the idle patrol two hours ago.
    session.execute(
        text("UPDATE patrols SET last_seen_at = now() - interval '2 hours' WHERE id = :p"), {"p": idle}
    )
    assert service.close_idle_patrols(session, minutes=180) == 0
    assert service.close_idle_patrols(session, minutes=60) >= 1
    closed = worker.get(f"/api/v1/patrols/{idle}").json
    assert closed["closed_by"] == "idle"
    # Closed at its last point, not when the server noticed.
    assert closed["ended_at"] == closed["last_point_at"]
    assert worker.get(f"/api/v1/patrols/{ended}").json["closed_by"] == "phone"


def test_reports_made_during_a_patrol_are_linked(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    now = datetime.now(UTC)
    patrol_id = _start(worker, started_at=(now - timedelta(hours=1)).isoformat())
    ended = worker.post(
        f"/api/v1/patrols/{patrol_id}/end", json={"ended_at": (now - timedelta(minutes=10)).isoformat()}
    )
    assert ended.status_code == 200

    def report(reported_at: datetime) -> str:
        body = {
            "category": "environment",
            "description": "路边垃圾",
            "location": {"type": "Point", "coordinates": [lon, lat]},
            "reported_at": reported_at.isoformat(),
        }
        response = worker.post("/api/v1/events", json=body)
        assert response.status_code == 201
        return str(response.json["id"])

    # Queued offline during the patrol and sent after it ended: linked by the phone's clock.
    during = report(now - timedelta(minutes=30))
    report(now)  # after the end
    assert worker.get(f"/api/v1/patrols/{patrol_id}").json["event_ids"] == [during]


def test_tracks_reach_their_worker_and_supervisors_in_scope_only(app, accounts, session):
    worker = client_as(app, accounts, "worker")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    patrol_id = _start(worker)
    worker.post(
        f"/api/v1/patrols/{patrol_id}/points",
        json={"batch": "1", "points": _points(lon, lat, time.time() - 99, 3)},
    )
    url = f"/api/v1/patrols/{patrol_id}"
    expected = {
        "worker": 200,
        "admin": 200,
        "supervisor": 200,  # the worker's grids lie in 温泉镇
        "village_supervisor": 200,
        "other_supervisor": 404,
        "other_worker": 404,
        "gis": 404,
    }
    seen = {who: client_as(app, accounts, who).get(url).status_code for who in expected}
    assert seen == expected
    assert client_as(app, accounts, "supervisor").get(url).json["track"]["type"] == "LineString"
    # Lists: mine, and the supervisor's workers'.
    mine = worker.get("/api/v1/me/patrols").json["items"]
    assert patrol_id in [p["id"] for p in mine]
    assert client_as(app, accounts, "other_worker").get("/api/v1/me/patrols").json["items"] == []
    listed = client_as(app, accounts, "supervisor").get(f"/api/v1/patrols?worker={accounts.ids['worker']}")
    assert patrol_id in [p["id"] for p in listed.json["items"]]
    for who in ("other_supervisor", "gis"):
        assert client_as(app, accounts, who).get("/api/v1/patrols").json["items"] == []
