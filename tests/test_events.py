"""Reports: assignment by polygon lookup, idempotency, reading and listing."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text

from tests.factories import add_square_tree, report

PROBLEM = "application/problem+json"
# 30 m east of the tree's east edge at 30°N is about 0.00031 degrees.
EAST_EDGE = 120.4


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


def post(client, body):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/events", json=body)


def test_categories_carry_chinese_names_and_sla(client):
    categories = {c["code"]: c for c in client.get("/api/v1/categories").json}
    assert categories["dispute"]["name_zh"] == "矛盾纠纷" and categories["dispute"]["sensitive"]
    assert categories["emergency"]["sla_hours"] == 2
    assert len(categories) == 8


def test_report_inside_a_grid_is_assigned_by_contains(client, tree):
    response = post(client, report(120.05, 30.15))
    assert response.status_code == 201
    event = response.json
    assert event["grid"] == "330100001001002"
    assert (event["village"], event["town"], event["district"]) == ("330100001001", "330100001", "330100")
    assert event["assignment"] == "contains" and event["status"] == "reported"
    assert event["responsible_area"] == "330100001001"
    assert event["boundary_version"] is not None
    assert response.headers["ETag"] == '"1"'
    assert response.headers["Location"] == f"/api/v1/events/{event['id']}"


def test_point_on_a_shared_edge_goes_to_the_lowest_code(client, tree):
    # x = 120.1 is the edge between villages 330100001001 and 330100001002.
    assert post(client, report(120.1, 30.05)).json["grid"] == "330100001001001"
    # The corner where four grids meet.
    assert post(client, report(120.1, 30.1)).json["grid"] == "330100001001001"


def test_point_just_outside_goes_to_the_nearest_grid_within_50_m(client, tree):
    event = post(client, report(EAST_EDGE + 0.0003, 30.05)).json
    assert event["assignment"] == "nearest"
    assert event["grid"] == "330100002002001"
    assert 25 < event["assignment_distance_m"] < 35


def test_gps_accuracy_widens_the_nearest_radius(client, tree):
    far = report(EAST_EDGE + 0.001, 30.15)  # about 96 m out
    assert post(client, far).json["assignment"] == "unassigned"
    event = post(client, {**far, "accuracy_m": 150}).json
    assert event["assignment"] == "nearest" and event["grid"] == "330100002002002"


def test_point_far_away_is_unassigned_and_sits_with_no_grid(client, tree):
    event = post(client, report(125.0, 35.0)).json
    assert event["assignment"] == "unassigned"
    assert event["grid"] is None and event["village"] is None and event["boundary_version"] is None


def test_unassigned_point_inside_a_district_sits_with_that_district(client, session):
    from backend.areas import service as areas
    from tests.factories import square_tree

    areas.insert_trusted(session, square_tree()[:1])  # the district alone, no grids
    session.commit()
    event = post(client, report(120.2, 30.1)).json
    assert event["assignment"] == "unassigned"
    assert event["district"] == "330100" and event["responsible_area"] == "330100"


def test_gcj02_report_at_wenquan_seed_lands_in_wenquan(client):
    # 温泉镇's seed point as an AMap/Tencent phone would send it.
    event = post(client, report(113.640, 23.650, crs="gcj02")).json
    assert event["town"] == "440117103"
    lon, lat = event["location"]["coordinates"]
    assert 113.630 < lon < 113.640 and 23.650 < lat < 23.656  # shifted back to WGS84
    assert event["crs"] == "gcj02"


def test_lookup_answers_the_grid_and_its_ancestors(client):
    body = client.get("/api/v1/lookup?lon=113.640&lat=23.650&crs=gcj02").json
    assert body["town"] == {"code": "440117103", "level": "town", "name": "温泉镇"}
    assert body["district"]["name"] == "从化区"
    assert body["grid"]["code"].startswith(body["village"]["code"])
    assert body["method"] == "contains"


@pytest.mark.parametrize("crs", ["bd09", "cgcs2000", "wgs84"])
def test_every_supported_crs_is_accepted(client, crs):
    assert post(client, report(113.640, 23.650, crs=crs)).json["district"] == "440117"


def test_same_uuid_same_content_returns_the_stored_event(client, tree, session):
    body = report(120.05, 30.05, id=str(uuid.uuid4()), reported_at="2026-11-25T10:00:00+08:00")
    first = post(client, body)
    again = post(client, {**body, "reported_at": "2026-11-25T02:00:00Z"})  # same instant
    assert (first.status_code, again.status_code) == (201, 200)
    stored = first.json
    hints = stored.pop("possible_duplicates")
    assert again.json == stored and hints == []
    count = session.execute(text("SELECT count(*) FROM events WHERE id = :id"), {"id": body["id"]}).scalar()
    assert count == 1


def test_same_uuid_different_content_is_409(client, tree, session):
    body = report(120.05, 30.05, id=str(uuid.uuid4()))
    assert post(client, body).status_code == 201
    response = post(client, {**body, "description": "另一件事"})
    assert response.status_code == 409
    assert response.content_type == PROBLEM
    stored = session.execute(
        text("SELECT description FROM events WHERE id = :id"), {"id": body["id"]}
    ).scalar()
    assert stored == "路边垃圾堆积"


def test_report_writes_one_trail_entry(client, tree, session):
    event = post(client, report(120.05, 30.05)).json
    post(client, report(120.05, 30.05, id=event["id"]))
    rows = session.execute(
        text("SELECT action, to_status FROM event_actions WHERE event_id = :id"), {"id": event["id"]}
    ).all()
    assert [tuple(r) for r in rows] == [("report", "reported")]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "nope"}, "category"),
        ({"description": ""}, "description"),
        ({"description": "a\u0000b"}, "description"),
        ({"location": {"type": "Point", "coordinates": [181, 30]}}, "location"),
        ({"location": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 0]]]}}, "location"),
        ({"crs": "epsg:3857"}, "crs"),
        ({"accuracy_m": -1}, "accuracy_m"),
        ({"reported_at": "2026-11-25T10:00:00"}, "reported_at"),
        ({"id": "not-a-uuid"}, "id"),
        ({"contacts": [{"phone": "123"}]}, "contacts.0.name"),
    ],
)
def test_bad_reports_are_422_and_store_nothing(client, tree, session, change, field):
    before = session.execute(text("SELECT count(*) FROM events")).scalar()
    response = post(client, {**report(120.05, 30.05), **change})
    assert response.status_code == 422, response.json
    assert response.content_type == PROBLEM
    assert field in {e["field"] for e in response.json["errors"]}
    assert session.execute(text("SELECT count(*) FROM events")).scalar() == before


def test_not_json_is_a_problem(client):
    response = client.post("/api/v1/events", data="{not json", content_type="application/json")
    assert 400 <= response.status_code < 500
    assert response.content_type == PROBLEM


def test_get_event_and_404(client, tree):
    event = post(client, report(120.05, 30.05)).json
    event.pop("possible_duplicates")
    assert client.get(f"/api/v1/events/{event['id']}").json == event
    missing = client.get(f"/api/v1/events/{uuid.uuid4()}")
    assert missing.status_code == 404 and missing.content_type == PROBLEM


def test_list_filters_by_area_status_category_and_time(client, tree):
    a = post(client, report(120.05, 30.05)).json
    b = post(client, report(120.35, 30.15, category="safety")).json
    ids = lambda q: [e["id"] for e in client.get(f"/api/v1/events?{q}").json["items"]]  # noqa: E731
    assert set(ids("area=330100")) == {a["id"], b["id"]}
    assert ids("area=330100001") == [a["id"]]
    assert ids("area=330100002002002") == [b["id"]]
    assert ids("area=330100&category=safety") == [b["id"]]
    assert ids("area=330100&status=closed") == []
    assert ids("area=330100&from=2000-01-01T00:00:00Z&to=2001-01-01T00:00:00Z") == []


def test_list_paging_is_stable(client, tree):
    made = {post(client, report(120.05 + i * 0.01, 30.05)).json["id"] for i in range(7)}
    seen, cursor = [], None
    while True:
        page = client.get("/api/v1/events?area=330100&limit=3" + (f"&cursor={cursor}" if cursor else "")).json
        seen += [e["id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert len(seen) == len(set(seen)) == 7 and set(seen) == made


@pytest.mark.parametrize("query", ["area=12", "status=done", "cursor=xyz", "from=yesterday", "limit=-1"])
def test_bad_list_arguments_are_422(client, query):
    response = client.get(f"/api/v1/events?{query}")
    assert response.status_code == 422
    assert response.content_type == PROBLEM
