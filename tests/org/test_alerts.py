"""One-point calls (一点呼叫): the nearest active units by true distance, rings, responses."""

from __future__ import annotations

from datetime import timedelta

import pytest
from pyproj import Geod
from sqlalchemy import text

from backend.errors import ValidationFailed
from backend.org import alerts
from backend.stats.days import local_today
from tests.conftest import client_as
from tests.factories import add_square_tree
from tests.org.factories import (
    ADMIN,
    add_neighbour_district,
    grid_point,
    make_unit,
    point,
)

GEOD = Geod(ellps="WGS84")
# Inside grid 330100002002001, 0.001 degrees (about 96 m) west of the district's east edge.
NEAR_EDGE = (120.399, 30.05)


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    add_neighbour_district(session)
    session.commit()


def metres(a: tuple[float, float], b: tuple[float, float]) -> float:
    return float(GEOD.inv(a[0], a[1], b[0], b[1])[2])


def alert(client, lon, lat, **extra):  # type: ignore[no-untyped-def]
    response = client.post("/api/v1/alerts", json={"location": point(lon, lat), "kind": "fire", **extra})
    assert response.status_code == 201, response.json
    return response.json


def test_units_across_a_district_edge_are_called_by_true_distance(client, tree, session):
    across = make_unit(session, 120.402, 30.05, name="邻区商铺")  # 289 m east, in 330200
    inside = make_unit(session, 120.394, 30.05, name="本区商铺")  # 482 m west, in 330100
    session.commit()
    assert (across.district_code, inside.district_code) == ("330200", "330100")
    body = alert(client, *NEAR_EDGE)
    assert body["district"] == "330100" and body["grid"] == "330100002002001"
    assert [d["unit_id"] for d in body["dispatches"]] == [across.id, inside.id]
    assert [d["rank"] for d in body["dispatches"]] == [1, 2]
    for dispatch, where in zip(body["dispatches"], [(120.402, 30.05), (120.394, 30.05)], strict=True):
        assert dispatch["distance_m"] == pytest.approx(metres(NEAR_EDGE, where), abs=0.5)
    assert body["found"] == 2 and body["requested"] == 5


def test_order_is_by_metres_not_degrees(client, tree, session):
    # At 30°N a degree of longitude is ~96 km and of latitude ~111 km: 0.0030° east (289 m) is
    # nearer than 0.0028° north (310 m), though further in degrees.
    east = make_unit(session, NEAR_EDGE[0] + 0.0030, NEAR_EDGE[1])
    north = make_unit(session, NEAR_EDGE[0], NEAR_EDGE[1] + 0.0028)
    session.commit()
    body = alert(client, *NEAR_EDGE)
    assert [d["unit_id"] for d in body["dispatches"]] == [east.id, north.id]


def test_no_units_in_range_records_the_alert_and_says_so(client, tree, session):
    make_unit(session, 120.05, 30.05)  # about 34 km away
    session.commit()
    body = alert(client, *NEAR_EDGE)
    assert body["found"] == 0 and body["dispatches"] == []
    assert body["widened"] is False and body["radius_m"] == 1000
    assert "0 of 5" in body["shortfall"] and "widen" in body["shortfall"]
    assert body["summary"]["dispatched"] == 0
    stored = session.execute(
        text("SELECT found, requested FROM alerts WHERE id = :id"), {"id": body["id"]}
    ).one()
    assert tuple(stored) == (0, 5)


def test_inactive_units_nearby_are_never_called(client, tree, session):
    make_unit(session, NEAR_EDGE[0] + 0.0001, NEAR_EDGE[1], active=False)  # 10 m
    make_unit(session, NEAR_EDGE[0], NEAR_EDGE[1] + 0.0001, active=False)
    active = make_unit(session, NEAR_EDGE[0] - 0.005, NEAR_EDGE[1])  # 482 m
    session.commit()
    body = alert(client, *NEAR_EDGE)
    assert [d["unit_id"] for d in body["dispatches"]] == [active.id]
    widened = alert(client, *NEAR_EDGE, widen=True, count=3)
    assert [d["unit_id"] for d in widened["dispatches"]] == [active.id]
    # A unit switched off after being called keeps its record but is not called again.
    client.patch(f"/api/v1/emergency-units/{active.id}", json={"active": False})
    assert alert(client, *NEAR_EDGE)["found"] == 0


def test_the_nearest_count_are_called_nearest_first(client, tree, session):
    units = [make_unit(session, NEAR_EDGE[0] - 0.0005 * (i + 1), NEAR_EDGE[1]) for i in range(7)]
    session.commit()
    body = alert(client, *NEAR_EDGE, count=5)
    assert [d["unit_id"] for d in body["dispatches"]] == [u.id for u in units[:5]]
    distances = [d["distance_m"] for d in body["dispatches"]]
    assert distances == sorted(distances) and body["shortfall"] is None


def test_widening_doubles_the_ring_only_when_asked(client, tree, session):
    near = make_unit(session, NEAR_EDGE[0] - 0.015, NEAR_EDGE[1])  # ~1.45 km
    far = make_unit(session, NEAR_EDGE[0] - 0.030, NEAR_EDGE[1])  # ~2.9 km
    session.commit()
    plain = alert(client, *NEAR_EDGE, count=2)
    assert plain["found"] == 0 and plain["widened"] is False
    ring = alert(client, *NEAR_EDGE, count=1, widen=True)
    assert (ring["radius_m"], ring["widened"], ring["found"]) == (2000, True, 1)
    assert [d["unit_id"] for d in ring["dispatches"]] == [near.id]
    both = alert(client, *NEAR_EDGE, count=2, widen=True)
    assert (both["radius_m"], both["found"]) == (4000, 2)
    assert [d["unit_id"] for d in both["dispatches"]] == [near.id, far.id]
    short = alert(client, *NEAR_EDGE, count=3, widen=True, max_radius_m=5000)
    assert (short["radius_m"], short["found"]) == (5000, 2)
    assert "widest" in short["shortfall"]


def test_alert_in_gcj02_is_converted(client, session):
    grid = "440117103001001"
    lon, lat = grid_point(session, grid)
    unit = make_unit(session, lon, lat)
    session.commit()
    from geo.crs import from_wgs84

    body = alert(client, *from_wgs84(lon, lat, "gcj02"), crs="gcj02")
    assert body["crs"] == "gcj02" and body["grid"] == grid
    assert body["dispatches"][0]["unit_id"] == unit.id
    assert body["dispatches"][0]["distance_m"] < 1.0


def test_acknowledge_and_arrive_record_how_fast(session, tree):
    first = make_unit(session, NEAR_EDGE[0] - 0.001, NEAR_EDGE[1])
    second = make_unit(session, NEAR_EDGE[0] - 0.002, NEAR_EDGE[1])
    view = alerts.create_alert(session, actor=ADMIN, kind="violence", lon=NEAR_EDGE[0], lat=NEAR_EDGE[1])
    sent = view.dispatches[0].dispatched_at
    ack = alerts.respond(
        session, view.alert.id, first.id, actor=ADMIN, step="acknowledge", at=sent + timedelta(seconds=30)
    )
    assert ack.seconds_to_acknowledge == 30 and ack.arrived_at is None
    again = alerts.respond(
        session, view.alert.id, first.id, actor=ADMIN, step="acknowledge", at=sent + timedelta(seconds=90)
    )
    assert again.seconds_to_acknowledge == 30  # the first answer counts
    arrived = alerts.respond(
        session, view.alert.id, first.id, actor=ADMIN, step="arrive", at=sent + timedelta(seconds=300)
    )
    assert (arrived.seconds_to_acknowledge, arrived.seconds_to_arrive) == (30, 300)
    # Arriving without acknowledging first acknowledges at the same moment.
    direct = alerts.respond(
        session, view.alert.id, second.id, actor=ADMIN, step="arrive", at=sent + timedelta(seconds=200)
    )
    assert (direct.seconds_to_acknowledge, direct.seconds_to_arrive) == (200, 200)
    summary = alerts.get_alert(session, view.alert.id, ADMIN).summary
    assert summary == {
        "dispatched": 2,
        "acknowledged": 2,
        "arrived": 2,
        "first_acknowledged_s": 30,
        "median_acknowledge_s": 115,
        "first_arrived_s": 200,
        "median_arrive_s": 250,
    }
    with pytest.raises(ValidationFailed):
        alerts.respond(
            session, view.alert.id, first.id, actor=ADMIN, step="arrive", at=sent - timedelta(seconds=1)
        )


def test_responses_over_http_by_the_units_grid_worker(app, accounts, session):
    grid = accounts.worker_grids[0]
    lon, lat = grid_point(session, grid)
    unit = make_unit(session, lon, lat)
    session.commit()
    body = alert(client_as(app, accounts, "supervisor"), lon, lat)
    url = f"/api/v1/alerts/{body['id']}/dispatches/{unit.id}"
    assert client_as(app, accounts, "other_worker").post(url + "/acknowledge").status_code == 404
    assert client_as(app, accounts, "gis").post(url + "/acknowledge").status_code == 403
    worker = client_as(app, accounts, "worker")
    ack = worker.post(url + "/acknowledge")
    assert ack.status_code == 200 and ack.json["acknowledged_at"] is not None
    assert ack.json["seconds_to_acknowledge"] >= 0 and "leader" not in ack.json
    arrived = worker.post(url + "/arrive").json
    assert arrived["acknowledged_at"] == ack.json["acknowledged_at"]
    assert arrived["seconds_to_arrive"] >= arrived["seconds_to_acknowledge"]
    shown = client_as(app, accounts, "supervisor").get(f"/api/v1/alerts/{body['id']}").json
    assert shown["summary"]["arrived"] == 1
    assert shown["dispatches"][0]["leader"] == {"name": "王队长", "phone": "13900000002"}
    assert "leader" not in worker.get(f"/api/v1/alerts/{body['id']}").json["dispatches"][0]
    assert worker.post(f"/api/v1/alerts/{body['id']}/dispatches/999999/arrive").status_code == 404


def test_worker_sees_an_alert_that_called_their_unit_across_a_boundary(app, accounts, session):
    # The alert sits in the other worker's grid, but calls a unit in this worker's grid.
    lon, lat = grid_point(session, accounts.worker_grids[0])
    unit = make_unit(session, lon, lat)
    view = alerts.create_alert(session, actor=ADMIN, kind="fire", lon=lon, lat=lat, radius_m=20_000)
    session.execute(
        text(
            "UPDATE alerts SET grid_code = '440117104001001', village_code = "
            "'440117104001', town_code = '440117104' WHERE id = :id"
        ),
        {"id": view.alert.id},
    )
    session.commit()
    worker = client_as(app, accounts, "worker")
    assert worker.get(f"/api/v1/alerts/{view.alert.id}").status_code == 200
    assert view.alert.id in {a["id"] for a in worker.get("/api/v1/alerts").json["items"]}
    assert worker.post(f"/api/v1/alerts/{view.alert.id}/dispatches/{unit.id}/acknowledge").status_code == 200


def test_response_statistics_by_area_and_day(client, session, tree):
    a = make_unit(session, NEAR_EDGE[0] - 0.001, NEAR_EDGE[1])  # 330100002002001
    b = make_unit(session, 120.402, 30.05)  # 330200001001001
    timings = {a.id: (20, 200), b.id: (60, None)}
    for _ in range(3):
        view = alerts.create_alert(session, actor=ADMIN, kind="fire", lon=NEAR_EDGE[0], lat=NEAR_EDGE[1])
        for dispatch in view.dispatches:
            ack, arrive = timings[dispatch.unit_id]
            alerts.respond(
                session,
                view.alert.id,
                dispatch.unit_id,
                actor=ADMIN,
                step="acknowledge",
                at=dispatch.dispatched_at + timedelta(seconds=ack),
            )
            if arrive:
                alerts.respond(
                    session,
                    view.alert.id,
                    dispatch.unit_id,
                    actor=ADMIN,
                    step="arrive",
                    at=dispatch.dispatched_at + timedelta(seconds=arrive),
                )
    session.commit()
    body = client.get("/api/v1/stats/alert-responses?group_by=district").json
    groups = {g["district"]: g for g in body["groups"]}
    assert groups["330100"]["dispatches"] == 3 and groups["330100"]["arrive_median_s"] == 200
    assert groups["330200"]["acknowledge_median_s"] == 60 and groups["330200"]["arrived"] == 0
    assert groups["330200"]["arrive_rate"] == 0 and groups["330200"]["area_name"] == "邻区"
    assert body["total"]["alerts"] == 3 and body["total"]["dispatches"] == 6
    assert body["total"]["acknowledge_median_s"] == pytest.approx(40)
    today = local_today().isoformat()
    by_day = client.get("/api/v1/stats/alert-responses?group_by=day").json["groups"]
    assert [(g["day"], g["alerts"]) for g in by_day] == [(today, 3)]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "party"}, "kind"),
        ({"count": 0}, "count"),
        ({"count": 51}, "count"),
        ({"radius_m": 5}, "radius_m"),
        ({"crs": "epsg:3857"}, "crs"),
        ({"location": {"type": "Point", "coordinates": [200, 30]}}, "location"),
    ],
)
def test_bad_alerts_are_422_naming_the_field(client, change, field):
    body = {"location": point(*NEAR_EDGE), "kind": "fire", **change}
    response = client.post("/api/v1/alerts", json=body)
    assert response.status_code == 422
    assert field in {e["field"] for e in response.json["errors"]}
