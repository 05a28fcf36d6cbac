"""The statistics endpoints: JSON, CSV and GeoJSON closure figures, the overdue list, and 422s."""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta

import pytest
import schemathesis
import shapely
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from sqlalchemy import text

from backend.common.pagination import encode_cursor
from geo.crs import wgs84_to_gcj02
from geo.geojson import parse_geometry
from tests import factories
from tests.conftest import client_as
from tests.stats.reference import Ev, insert_events

T0 = datetime(2025, 9, 1, tzinfo=UTC)
GRID_A, GRID_B = "330100001001001", "330100002002002"
# Exact figures: a district's month would otherwise come from the rollups' tiers.
QUERY = {
    "area": "330100",
    "from": "2025-09-01T00:00:00Z",
    "to": "2025-10-01T00:00:00Z",
    "as_of": "2025-11-01T00:00:00Z",
    "exact": "true",
}


def hours(n: float) -> datetime:
    return T0 + timedelta(hours=n)


@pytest.fixture
def history(session, accounts):  # type: ignore[no-untyped-def]
    """Grid A: 3 due (2 closed, 1 on time, 1 reworked); grid B: 1 due, open; 1 rejected."""
    factories.add_square_tree(session)
    insert_events(
        session,
        [
            Ev(
                grid=GRID_A,
                due_at=hours(24),
                accepted_at=hours(0),
                closed_at=hours(12),
                category="dispute",
                assignee_id=accounts.ids["worker"],
            ),
            Ev(
                grid=GRID_A,
                due_at=hours(48),
                accepted_at=hours(24),
                closed_at=hours(72),
                rework_count=1,
                category="dispute",
                reporter_id=accounts.ids["other_worker"],
            ),
            Ev(
                grid=GRID_A, status="in_progress", due_at=hours(100), accepted_at=hours(50), category="safety"
            ),
            Ev(grid=GRID_B, status="dispatched", due_at=hours(200), accepted_at=hours(150)),
            Ev(grid=GRID_B, status="rejected", due_at=hours(10), accepted_at=hours(1)),
            # Due outside the window: counted nowhere.
            Ev(grid=GRID_B, due_at=hours(24 * 40), accepted_at=hours(24 * 39), closed_at=hours(1)),
        ],
    )
    session.flush()
    return session


def test_a_districts_figures_come_from_the_tiers_unless_asked_exact(client, history):  # type: ignore[no-untyped-def]
    # As of now: the tiers hold the figures as they stand, and answer for an earlier as_of only
    # when no action came after it (live-server tests may have left some committed).
    query = {key: value for key, value in QUERY.items() if key not in ("exact", "as_of")}
    tiers = client.get("/api/v1/stats/closure", query_string={**query, "group_by": "grid"}).json
    exact = client.get(
        "/api/v1/stats/closure", query_string={**query, "exact": "true", "group_by": "grid"}
    ).json
    assert (tiers["exact"], exact["exact"]) == (False, True)
    counts = ("due", "closed", "closed_on_time", "reworked", "overdue_open")
    assert [tiers["totals"][name] for name in counts] == [exact["totals"][name] for name in counts]
    assert [g["key"] for g in tiers["groups"]] == [g["key"] for g in exact["groups"]]
    # 12 h and 48 h: each read from its bucket, within 4.5% (and 30 s).
    assert tiers["totals"]["median_hours_to_close"] == pytest.approx(30.0, rel=0.045)


def test_closure_json_totals_and_groups(client, history):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/stats/closure", query_string={**QUERY, "group_by": "grid"})
    assert response.status_code == 200
    assert response.content_type == "application/json"
    body = response.json
    assert (body["area"], body["benchmark"], body["group_by"]) == ("330100", 0.98, ["grid"])
    assert body["from"].startswith("2025-09-01T00:00:00")
    totals = body["totals"]
    assert (totals["due"], totals["closed"], totals["closed_on_time"]) == (4, 2, 1)
    assert (totals["overdue_open"], totals["reworked"], totals["closure_rate"]) == (2, 1, 0.5)
    assert totals["median_hours_to_close"] == 30.0  # 12 h and 48 h
    assert totals["p90_hours_to_close"] == pytest.approx(44.4)
    assert totals["meets_benchmark"] is False and totals["below_benchmark"] is True
    assert 0 < totals["wilson_low"] < 0.5 < totals["wilson_high"] < 0.98
    groups = body["groups"]
    assert [g["key"] for g in groups] == [
        {"grid": GRID_A, "grid_name": "测试村11第1网格"},
        {"grid": GRID_B, "grid_name": "测试村22第2网格"},
    ]
    assert (groups[0]["due"], groups[0]["closed"], groups[0]["rework_rate"]) == (3, 2, 0.5)
    assert (groups[1]["due"], groups[1]["closed"], groups[1]["closure_rate"]) == (1, 0, 0.0)
    assert groups[1]["median_hours_to_close"] is None and groups[1]["rework_rate"] is None


def test_closure_grouped_by_category_and_worker(client, accounts, history):  # type: ignore[no-untyped-def]
    body = client.get("/api/v1/stats/closure", query_string={**QUERY, "group_by": "category,worker"}).json
    keys = [g["key"] for g in body["groups"]]
    worker, other_worker = accounts.ids["worker"], accounts.ids["other_worker"]
    assert worker < other_worker
    assert keys[0] == {
        "category": "dispute",
        "category_name_zh": "矛盾纠纷",
        "category_name_en": "Disputes",
        "worker": worker,
    }
    assert [(k["category"], k["worker"]) for k in keys] == [
        ("dispute", worker),
        ("dispute", other_worker),
        ("environment", None),
        ("safety", None),
    ]


def test_closure_by_local_day_week_and_month(client, history):  # type: ignore[no-untyped-def]
    body = client.get("/api/v1/stats/closure", query_string={**QUERY, "group_by": "month,day"}).json
    # 2025-09-01T00:00Z is 08:00 in Beijing; 100 h later it is Friday 5 September there.
    assert [g["key"] for g in body["groups"]] == [
        {"month": "2025-09-01", "day": "2025-09-02"},
        {"month": "2025-09-01", "day": "2025-09-03"},
        {"month": "2025-09-01", "day": "2025-09-05"},
        {"month": "2025-09-01", "day": "2025-09-09"},
    ]
    body = client.get("/api/v1/stats/closure", query_string={**QUERY, "group_by": "week"}).json
    assert [(g["key"]["week"], g["due"]) for g in body["groups"]] == [("2025-09-01", 3), ("2025-09-08", 1)]


def test_closure_defaults_to_the_year_before_now(client, session):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    now = datetime.now(UTC)
    insert_events(
        session,
        [
            Ev(grid=GRID_A, due_at=now - timedelta(days=10), accepted_at=now - timedelta(days=11)),
            Ev(grid=GRID_A, due_at=now - timedelta(days=400), accepted_at=now - timedelta(days=401)),
        ],
    )
    body = client.get("/api/v1/stats/closure?area=330100").json
    assert body["groups"] == [] and body["totals"]["due"] == 1
    assert body["totals"]["overdue_open"] == 1
    as_of = datetime.fromisoformat(body["as_of"])
    assert datetime.fromisoformat(body["to"]) == as_of
    assert as_of - datetime.fromisoformat(body["from"]) == timedelta(days=365)


def test_empty_scope_has_zero_figures(client, session):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    body = client.get(
        "/api/v1/stats/closure", query_string={**QUERY, "area": GRID_A, "group_by": "grid"}
    ).json
    assert body["groups"] == []
    assert body["totals"]["due"] == 0 and body["totals"]["closure_rate"] is None
    assert body["totals"]["meets_benchmark"] is False
    assert body["totals"]["below_benchmark"] is False
    assert body["totals"]["wilson_high"] is None


def _read_csv(data: bytes) -> list[list[str]]:
    assert data.startswith(b"\xef\xbb\xbf"), "Excel needs the BOM to read UTF-8"
    assert b"\r\n" in data
    return list(csv.reader(io.StringIO(data[3:].decode("utf-8"))))


def test_closure_csv_for_excel(client, history):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/stats/closure.csv", query_string={**QUERY, "group_by": "town,category"})
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="closure_330100_town-category_2025-09-01_2025-10-01.csv"'
    )
    rows = _read_csv(response.data)
    assert rows[0][:6] == [
        "town 镇街",
        "town_name 镇街名称",
        "category 事项分类",
        "category_name_zh 分类名称",
        "category_name_en 分类英文名称",
        "due 应结案数",
    ]
    assert "closure_rate 结案率" in rows[0] and "on_time_rate 按期结案率" in rows[0]
    assert "rework_rate 返工率" in rows[0] and "closed 结案数" in rows[0]
    record = dict(zip(rows[0], rows[1], strict=True))
    assert record["town 镇街"] == "330100001" and record["town_name 镇街名称"] == "测试镇1"
    assert record["category_name_zh 分类名称"] == "矛盾纠纷"
    assert record["due 应结案数"] == "2" and record["closure_rate 结案率"] == "1"
    assert record["median_hours_to_close 结案时长中位数(小时)"] == "30.00"
    assert record["meets_benchmark 达到基准"] == "TRUE"
    assert len(rows) == 1 + 3  # dispute and safety in town 1, environment in town 2
    empty = dict(zip(rows[0], rows[3], strict=True))
    assert empty["closure_rate 结案率"] == "0" and empty["rework_rate 返工率"] == ""


def test_closure_csv_by_accept_header_and_without_grouping(client, history):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/stats/closure", query_string=QUERY, headers={"Accept": "text/csv"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    rows = _read_csv(response.data)
    assert len(rows) == 2 and rows[0][0] == "due 应结案数" and rows[1][0] == "4"
    assert response.data == client.get("/api/v1/stats/closure.csv", query_string=QUERY).data


def test_closure_csv_defuses_formulas_in_names(client, history):  # type: ignore[no-untyped-def]
    history.execute(text("UPDATE areas SET name = '=HYPERLINK(\"x\")' WHERE code = :code"), {"code": GRID_A})
    rows = _read_csv(client.get("/api/v1/stats/closure.csv", query_string={**QUERY, "group_by": "grid"}).data)
    assert rows[1][1] == '\'=HYPERLINK("x")'


def test_closure_geojson_choropleth(client, history):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/stats/closure.geojson", query_string={**QUERY, "group_by": "grid"})
    assert response.status_code == 200
    assert response.mimetype == "application/geo+json"
    body = response.json
    assert body["type"] == "FeatureCollection" and body["totals"]["due"] == 4
    features = body["features"]
    assert len(features) == 8  # every grid of the district, with or without events
    by_id = {f["id"]: f for f in features}
    assert by_id[GRID_A]["properties"]["due"] == 3
    assert by_id[GRID_A]["properties"]["grid_name"] == "测试村11第1网格"
    quiet = by_id["330100001001002"]["properties"]
    assert quiet["due"] == 0 and quiet["closure_rate"] is None
    assert quiet["grid_name"] == "测试村11第2网格"
    geometry = parse_geometry(by_id[GRID_A]["geometry"], allowed=("Polygon", "MultiPolygon"))
    assert geometry.equals(shapely.box(120.0, 30.0, 120.1, 30.1))
    ring = by_id[GRID_A]["geometry"]["coordinates"][0][0]
    assert shapely.LinearRing(ring).is_ccw  # RFC 7946: exterior rings counter-clockwise


def test_closure_geojson_by_accept_header_in_gcj02(client, history):  # type: ignore[no-untyped-def]
    response = client.get(
        "/api/v1/stats/closure",
        query_string={**QUERY, "group_by": "town,month", "crs": "gcj02"},
        headers={"Accept": "application/geo+json"},
    )
    assert response.status_code == 200 and response.mimetype == "application/geo+json"
    features = response.json["features"]
    assert [f["id"] for f in features] == ["330100001", "330100002"]
    assert features[0]["properties"]["month"] == "2025-09-01"
    west = min(p[0] for p in features[0]["geometry"]["coordinates"][0][0])
    assert 120.003 < west < 120.01  # GCJ-02 is shifted a few hundred metres east here


def test_closure_geojson_needs_an_area_level_first(client, history):  # type: ignore[no-untyped-def]
    for path, headers in (
        ("/api/v1/stats/closure.geojson", {}),
        ("/api/v1/stats/closure", {"Accept": "application/geo+json"}),
    ):
        response = client.get(path, query_string={**QUERY, "group_by": "category,grid"}, headers=headers)
        assert response.status_code == 422
        assert response.content_type == "application/problem+json"
        assert [e["field"] for e in response.json["errors"]] == ["group_by"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"area": "12345"}, "area"),
        ({"area": "abcdef"}, "area"),
        ({"area": "999999"}, "area"),
        ({"from": "2025-10-01T00:00:00Z", "to": "2025-09-01T00:00:00Z"}, "from"),
        ({"from": "2025-10-01T00:00:00Z", "to": "2025-10-01T00:00:00Z"}, "from"),
        ({"from": "2000-01-01T00:00:00Z", "to": "2025-01-01T00:00:00Z"}, "from"),
        ({"from": "2025-09-01T00:00:00"}, "from"),
        ({"as_of": "yesterday"}, "as_of"),
        ({"group_by": "grid,province"}, "group_by"),
        ({"group_by": "grid,category,day"}, "group_by"),
        ({"group_by": "grid,grid"}, "group_by"),
        ({"benchmark": "0"}, "benchmark"),
        ({"benchmark": "1.5"}, "benchmark"),
        ({"benchmark": "nan"}, "benchmark"),
        ({"to": "0001-01-02T00:00:00Z", "from": None, "as_of": None}, "from"),
        ({"crs": "mercator"}, "crs"),
    ],
)
def test_closure_refuses_bad_input_naming_the_field(client, session, params, field):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    query = {k: v for k, v in {**QUERY, **params}.items() if v is not None}
    for path in ("/api/v1/stats/closure", "/api/v1/stats/closure.csv", "/api/v1/stats/closure.geojson"):
        response = client.get(path, query_string={"group_by": "grid", **query})
        assert response.status_code == 422, (path, response.json)
        assert response.content_type == "application/problem+json"
        named = [e["field"].split(".")[0] for e in response.json["errors"]]  # group_by.1 too
        assert field in named, response.json


def test_overdue_lists_open_events_past_due_oldest_first(client, session):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    now = datetime.now(UTC)
    old, older, oldest = (now - timedelta(days=d) for d in (1, 2, 3))
    overdue = [
        Ev(grid=GRID_A, status="in_progress", due_at=old, accepted_at=oldest),
        Ev(grid=GRID_A, status="resolved", due_at=oldest, accepted_at=oldest),
        Ev(grid=GRID_B, status="accepted", due_at=older, accepted_at=oldest),
    ]
    insert_events(
        session,
        [
            *overdue,
            Ev(grid=GRID_A, status="closed", due_at=older, accepted_at=oldest, closed_at=old),
            Ev(grid=GRID_A, status="rejected", due_at=older, accepted_at=oldest),
            Ev(grid=GRID_A, status="in_progress", due_at=now + timedelta(hours=1), accepted_at=oldest),
            Ev(grid=GRID_A, status="reported"),
        ],
    )
    response = client.get("/api/v1/stats/overdue?area=330100&limit=2")
    assert response.status_code == 200
    page = response.json
    expected = [str(e.id) for e in sorted(overdue, key=lambda e: e.due_at)]
    assert [item["id"] for item in page["items"]] == expected[:2]
    assert set(page["items"][0]) >= {"id", "status", "due_at", "grid", "location", "version"}
    rest = client.get(f"/api/v1/stats/overdue?area=330100&limit=2&cursor={page['next_cursor']}")
    assert [item["id"] for item in rest.json["items"]] == expected[2:]
    assert rest.json["next_cursor"] is None
    town = client.get("/api/v1/stats/overdue?area=330100002").json
    assert [item["id"] for item in town["items"]] == [str(overdue[2].id)]


def test_overdue_locations_come_in_the_asked_frame(client, session):  # type: ignore[no-untyped-def]
    """A map over a GCJ-02 basemap asks its points in GCJ-02, as it asks its polygons."""
    factories.add_square_tree(session)
    due = datetime.now(UTC) - timedelta(days=1)
    insert_events(session, [Ev(grid=GRID_A, status="in_progress", due_at=due, accepted_at=due)])
    wgs84 = client.get("/api/v1/stats/overdue?area=330100").json["items"][0]["location"]
    gcj02 = client.get("/api/v1/stats/overdue?area=330100&crs=gcj02").json["items"][0]["location"]
    assert gcj02["type"] == "Point"
    assert gcj02["coordinates"] == pytest.approx(list(wgs84_to_gcj02(*wgs84["coordinates"])), abs=1e-7)
    assert gcj02["coordinates"] != pytest.approx(wgs84["coordinates"], abs=1e-4)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("area=33010", "area"),
        ("area=999999", "area"),
        ("area=330100&cursor=nonsense", "cursor"),
        ("area=330100&limit=0", "limit"),
        ("area=330100&crs=epsg3857", "crs"),
        ("", "area"),
    ],
)
def test_overdue_refuses_bad_input(client, session, query, field):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    response = client.get(f"/api/v1/stats/overdue?{query}")
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json["errors"]]


def test_openapi_documents_the_three_representations(client):  # type: ignore[no-untyped-def]
    paths = client.get("/openapi.json").json["paths"]
    content = paths["/api/v1/stats/closure"]["get"]["responses"]["200"]["content"]
    assert set(content) == {"application/json", "text/csv", "application/geo+json"}
    assert set(paths["/api/v1/stats/closure.csv"]["get"]["responses"]["200"]["content"]) == {"text/csv"}
    assert set(paths["/api/v1/stats/closure.geojson"]["get"]["responses"]["200"]["content"]) == {
        "application/geo+json"
    }
    assert "/api/v1/stats/overdue" in paths


def test_overdue_refuses_a_cursor_with_a_bad_key(client, session):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    for key in (["2025-09-01T00:00:00+00:00", "not-a-uuid"], ["not a time", str(uuid.uuid4())]):
        response = client.get(f"/api/v1/stats/overdue?area=330100&cursor={encode_cursor(key)}")
        assert response.status_code == 422
        assert [e["field"] for e in response.json["errors"]] == ["cursor"]


@pytest.mark.parametrize(
    ("path", "query", "accept"),
    [
        ("/api/v1/stats/closure", {"group_by": "grid,month"}, "application/json"),
        ("/api/v1/stats/closure", {"group_by": "category,worker"}, "application/json"),
        ("/api/v1/stats/closure", {"group_by": "grid"}, "text/csv"),
        ("/api/v1/stats/closure", {"group_by": "town,week"}, "application/geo+json"),
        ("/api/v1/stats/closure.csv", {"group_by": "day"}, None),
        ("/api/v1/stats/closure.geojson", {"group_by": "village"}, None),
        ("/api/v1/stats/closure.geojson", {"group_by": "district,category", "crs": "bd09"}, None),
    ],
)
def test_answers_with_data_match_the_openapi_document(app, accounts, history, path, query, accept):  # type: ignore[no-untyped-def]
    # The fuzz test rarely reaches a scope with events; these cases do.
    schema = schemathesis.openapi.from_wsgi("/openapi.json", app)
    headers = {**accounts.headers("admin"), **({"Accept": accept} if accept else {})}
    case = schema[path]["GET"].Case(query={**QUERY, **query}, headers=headers)
    response = case.call_and_validate(
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ]
    )
    assert response.status_code == 200


def test_json_body_is_what_the_response_schema_dumps(client, history):  # type: ignore[no-untyped-def]
    from backend.stats import queries
    from backend.stats.schemas import ClosureStatsSchema

    query = {**QUERY, "group_by": "grid,category"}
    body = client.get("/api/v1/stats/closure", query_string=query).json
    stats = queries.closure_stats(
        history,
        area="330100",
        window_from=datetime.fromisoformat(body["from"]),
        window_to=datetime.fromisoformat(body["to"]),
        as_of=datetime.fromisoformat(body["as_of"]),
        group_by=("grid", "category"),
    )
    dumped = ClosureStatsSchema().dump(
        {**vars(stats), "groups": [{"key": g.key, **vars(g.figures)} for g in stats.groups]}
    )
    assert body == dumped


def test_per_person_figures_are_not_for_gis_keys(app, accounts):  # type: ignore[no-untyped-def]
    town = {"area": "440117103", "from": QUERY["from"], "to": QUERY["to"]}
    gis = client_as(app, accounts, "gis")
    for path in ("/api/v1/stats/closure", "/api/v1/stats/closure.csv", "/api/v1/stats/closure.geojson"):
        # (A map's first grouping must be an area level: worker alone is a 422 there.)
        for grouping in ("grid,worker",) if path.endswith(".geojson") else ("worker", "grid,worker"):
            response = gis.get(path, query_string={**town, "group_by": grouping})
            assert response.status_code == 403, (path, response.json)
            assert response.content_type == "application/problem+json"
            assert "not for GIS keys" in response.json["detail"]
        assert gis.get(path, query_string={**town, "group_by": "grid"}).status_code == 200
    supervisor = client_as(app, accounts, "supervisor")
    assert (
        supervisor.get("/api/v1/stats/closure", query_string={**town, "group_by": "worker"}).status_code
        == 200
    )
    # Outside the key's scope it stays not found, whatever the grouping.
    other = {**town, "area": "440117104", "group_by": "worker"}
    assert gis.get("/api/v1/stats/closure", query_string=other).status_code == 404
