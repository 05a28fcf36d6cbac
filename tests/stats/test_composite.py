"""The composite index (综合指数): admins set its weights; JSON, CSV and GeoJSON give the same
index for every area of the level, computed in one place."""

from __future__ import annotations

import csv
import io
import json
from datetime import UTC, datetime, timedelta

import pytest
import shapely
from sqlalchemy import text

from backend import history
from backend.stats import composite
from backend.stats.queries import empty_figures
from geo.geojson import geometry_to_geojson
from tests.conftest import client_as
from tests.org.factories import unit_body

DISTRICT = "440117"
TOWN = "440117103"
WEIGHTS = {
    "closure_rate": 35.0,
    "on_time_rate": 25.0,
    "overdue_open": 15.0,
    "check_in_rate": 15.0,
    "alerts_in_progress": 10.0,
}


@pytest.fixture
def seeded(session):  # type: ignore[no-untyped-def]
    """About 2,000 events over the last 90 days in Conghua."""
    end = datetime.now(UTC).replace(microsecond=0)
    plan = history.Plan(start=end - timedelta(days=90), end=end, events=2000, seed=23)
    history.load_history(session, plan, points_per_grid=2, analyze=False, bulk=False)
    session.commit()
    return plan


def test_weights_are_read_by_everyone_and_set_by_admins(app, accounts):
    for who in ("admin", "supervisor", "worker", "gis"):
        assert client_as(app, accounts, who).get("/api/v1/stats/index-weights").json == WEIGHTS
    new = {**WEIGHTS, "closure_rate": 50.0, "alerts_in_progress": 0.0}
    admin = client_as(app, accounts, "admin")
    assert admin.put("/api/v1/stats/index-weights", json=new).json == new
    assert client_as(app, accounts, "gis").get("/api/v1/stats/index-weights").json == new
    assert (
        client_as(app, accounts, "supervisor").put("/api/v1/stats/index-weights", json=WEIGHTS).status_code
        == 403
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({k: v for k, v in WEIGHTS.items() if k != "check_in_rate"}, "check_in_rate"),
        ({**WEIGHTS, "on_time_rate": -1}, "on_time_rate"),
        ({**WEIGHTS, "on_time_rate": 101}, "on_time_rate"),
        ({**WEIGHTS, "closure_rate": "heavy"}, "closure_rate"),
        ({**WEIGHTS, "rework": 3}, "rework"),
        (dict.fromkeys(WEIGHTS, 0.0), "weights"),
    ],
)
def test_bad_weights_are_refused_naming_the_part(app, accounts, body, field):
    admin = client_as(app, accounts, "admin")
    response = admin.put("/api/v1/stats/index-weights", json=body)
    assert response.status_code == 422, response.json
    assert field in {e["field"] for e in response.json["errors"]}
    assert admin.get("/api/v1/stats/index-weights").json == WEIGHTS


def test_scores_and_their_weighted_mean():
    figures = empty_figures()
    blank = composite.scores(figures, composite.Extras(None, 0))
    # Nothing due and no units: only "no alert in progress" is measured.
    assert blank == {
        "closure_rate": None,
        "on_time_rate": None,
        "overdue_open": None,
        "check_in_rate": None,
        "alerts_in_progress": 100.0,
    }
    assert composite.combine(blank, WEIGHTS) == 100.0
    parts = {"closure_rate": 90.0, "on_time_rate": 80.0, "overdue_open": None, "check_in_rate": 50.0}
    parts["alerts_in_progress"] = 100.0 / 3  # two alerts in progress
    expected = (35 * 90 + 25 * 80 + 15 * 50 + 10 * 100 / 3) / (35 + 25 + 15 + 10)
    assert composite.combine(parts, WEIGHTS) == round(expected, 1)
    assert composite.combine(parts, dict.fromkeys(WEIGHTS, 0.0) | {"overdue_open": 1.0}) is None


def _csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))


def test_json_csv_and_geojson_give_every_area_the_same_index(app, accounts, seeded, session):
    admin = client_as(app, accounts, "admin")
    query = {"area": DISTRICT, "group_by": "town", "index": "true", "from": seeded.start.isoformat()}
    document = admin.get("/api/v1/stats/closure", query_string=query).json
    towns = session.execute(
        text("SELECT code FROM areas WHERE level = 'town' AND valid_to IS NULL ORDER BY code")
    ).scalars()
    groups = document["groups"]
    assert [g["key"]["town"] for g in groups] == list(towns)
    for group in groups:
        parts = {p: group[f"{p}_score"] for p in WEIGHTS}
        # The parts are shown to 0.1; the index weighs them unrounded.
        assert group["composite_index"] == pytest.approx(composite.combine(parts, WEIGHTS), abs=0.11)
        if group["due"]:
            assert group["closure_rate_score"] == round(100 * group["closure_rate"], 1)
            assert 0 <= group["composite_index"] <= 100
    assert any(g["due"] for g in groups)
    assert document["totals"]["composite_index"] is not None

    rows = _csv_rows(admin.get("/api/v1/stats/closure.csv", query_string=query).data)
    assert [r["town 镇街"] for r in rows] == [g["key"]["town"] for g in groups]
    assert [float(r["composite_index 综合指数"]) for r in rows] == [g["composite_index"] for g in groups]
    features = admin.get("/api/v1/stats/closure.geojson", query_string=query).json["features"]
    by_town = {f["properties"]["town"]: f["properties"]["composite_index"] for f in features}
    assert by_town == {g["key"]["town"]: g["composite_index"] for g in groups}

    # New weights change the index everywhere at once.
    admin.put("/api/v1/stats/index-weights", json={**dict.fromkeys(WEIGHTS, 0.0), "closure_rate": 1.0})
    again = admin.get("/api/v1/stats/closure", query_string=query).json["groups"]
    for group in again:
        expected = None if group["closure_rate"] is None else round(100 * group["closure_rate"], 1)
        assert group["composite_index"] == expected


def test_check_ins_and_alerts_in_progress_count_by_area(app, accounts, session):
    admin = client_as(app, accounts, "admin")
    point = session.execute(
        text(
            "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas"
            " WHERE code = :code AND valid_to IS NULL) s"
        ),
        {"code": TOWN + "001"},
    ).one()
    units = [admin.post("/api/v1/emergency-units", json=unit_body(point.x, point.y)).json for _ in range(2)]
    # Both units existed for the last four days; one checked in on each of them.
    session.execute(
        text("UPDATE emergency_units SET created_at = now() - interval '4 days' WHERE id = ANY(:ids)"),
        {"ids": [u["id"] for u in units]},
    )
    session.execute(
        text(
            "INSERT INTO check_ins (unit_id, local_day, checked_in_at)"
            " SELECT :unit, CAST(timezone('Asia/Shanghai', now()) AS date) - d, now() - d * interval '1 day'"
            " FROM generate_series(1, 4) AS d"
        ),
        {"unit": units[0]["id"]},
    )
    alert = admin.post(
        "/api/v1/alerts",
        json={"location": {"type": "Point", "coordinates": [point.x, point.y]}, "kind": "fire", "count": 1},
    )
    assert alert.status_code == 201, alert.json
    start = (datetime.now(UTC) - timedelta(days=4)).isoformat()
    query = {"area": DISTRICT, "group_by": "town", "index": "true", "from": start}
    groups = {
        g["key"]["town"]: g for g in admin.get("/api/v1/stats/closure", query_string=query).json["groups"]
    }
    town = groups[TOWN]
    rates = admin.get(
        "/api/v1/stats/check-ins", query_string={"area": DISTRICT, "group_by": "town", "from": start[:10]}
    ).json
    expected_rate = next(g for g in rates["groups"] if g["town"] == TOWN)["check_in_rate"]
    assert town["check_in_rate"] == expected_rate and 0.3 < expected_rate < 0.7
    assert town["check_in_rate_score"] == round(100 * expected_rate, 1)
    assert town["alerts_in_progress"] == 1 and town["alerts_in_progress_score"] == 50.0
    others = [g for code, g in groups.items() if code != TOWN]
    assert all(g["alerts_in_progress"] == 0 and g["check_in_rate"] is None for g in others)


@pytest.mark.parametrize("group_by", [["category"], ["town", "category"], []])
def test_the_index_is_by_one_area_level(app, accounts, group_by):
    query = {"area": DISTRICT, "index": "true"} | ({"group_by": ",".join(group_by)} if group_by else {})
    response = client_as(app, accounts, "admin").get("/api/v1/stats/closure", query_string=query)
    assert response.status_code == 422
    assert response.json["errors"][0]["field"] == "group_by"


def test_sort_orders_the_csv_and_json_as_the_page_table(app, accounts, seeded):
    admin = client_as(app, accounts, "admin")
    query = {"area": DISTRICT, "group_by": "town", "index": "true", "from": seeded.start.isoformat()}
    plain = admin.get("/api/v1/stats/closure", query_string=query).json["groups"]
    by_index = sorted(
        (g for g in plain if g["composite_index"] is not None), key=lambda g: -g["composite_index"]
    ) + [g for g in plain if g["composite_index"] is None]
    sorted_query = {**query, "sort": "-composite_index"}
    rows = _csv_rows(admin.get("/api/v1/stats/closure.csv", query_string=sorted_query).data)
    assert [r["town 镇街"] for r in rows] == [g["key"]["town"] for g in by_index]
    assert [r["town 镇街"] for r in rows] != [g["key"]["town"] for g in plain]
    groups = admin.get("/api/v1/stats/closure", query_string={**query, "sort": "town_name"}).json["groups"]
    names = [g["key"]["town_name"] for g in groups]
    assert names == sorted(names)
    for bad in ("password", "-", "closure rate"):
        response = admin.get("/api/v1/stats/closure.csv", query_string={**query, "sort": bad})
        assert response.status_code == 422, bad
        assert response.content_type == "application/problem+json"
        assert response.json["errors"][0]["field"] == "sort"


def test_the_geojson_polygons_are_those_python_would_write(app, accounts, session):
    """PostGIS writes the polygons (RFC 7946: exteriors counter-clockwise, 7 decimals), as
    geo.geojson does."""
    features = (
        client_as(app, accounts, "admin")
        .get("/api/v1/stats/closure.geojson", query_string={"area": TOWN, "group_by": "village"})
        .json["features"]
    )
    rows = session.execute(
        text(
            "SELECT code, ST_AsBinary(geom) AS wkb FROM areas"
            " WHERE level = 'village' AND valid_to IS NULL AND left(code, 9) = :town"
        ),
        {"town": TOWN},
    )
    expected = {row.code: geometry_to_geojson(shapely.from_wkb(row.wkb), precision=7) for row in rows}
    assert len(features) == len(expected) > 5
    for feature in features:
        written = expected[feature["properties"]["village"]]
        assert feature["geometry"]["type"] == written["type"]
        assert feature["geometry"]["coordinates"] == json.loads(json.dumps(written["coordinates"]))
