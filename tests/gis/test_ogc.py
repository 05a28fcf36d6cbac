"""OGC API - Features at /ogc through the Flask test client."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import shape
from sqlalchemy import text

from backend.areas import service as areas
from backend.gis import registry
from backend.gis.params import CRS84, DEFAULT_LIMIT, EPSG_4326, EPSG_4490, MAX_LIMIT
from backend.stats.queries import wilson_interval
from tests.conftest import client_as

GEOJSON = "application/geo+json"
PROBLEM = "application/problem+json"
OAS30 = "application/vnd.oai.openapi+json;version=3.0"


def links(body, rel):  # type: ignore[no-untyped-def]
    return [link for link in body["links"] if link["rel"] == rel]


def follow(client, url):  # type: ignore[no-untyped-def]
    parts = urlsplit(url)
    assert parts.scheme == "http" and parts.netloc, f"not absolute: {url}"
    return client.get(parts.path + ("?" + parts.query if parts.query else ""))


def test_landing_page_links_the_definition_conformance_and_data(gis):
    response = gis.get("/ogc")
    assert response.status_code == 200 and response.content_type == "application/json"
    body = response.json
    (desc,) = links(body, "service-desc")
    assert desc["type"] == OAS30 and desc["href"] == "http://localhost/ogc/api"
    (data,) = links(body, "data")
    assert data["href"] == "http://localhost/ogc/collections" and data["type"] == "application/json"
    assert links(body, "conformance") and links(body, "self")
    assert gis.get("/ogc/").json == body


def test_conformance_declares_core_geojson_oas30_and_crs(gis):
    classes = set(gis.get("/ogc/conformance").json["conformsTo"])
    assert {
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
        "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
        "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    } <= classes


def test_api_definition_is_openapi_30_with_every_collection(gis):
    response = gis.get("/ogc/api")
    assert response.status_code == 200 and response.content_type == OAS30
    doc = response.json
    assert doc["openapi"].startswith("3.0") and doc["servers"] == [{"url": "http://localhost/ogc"}]
    limit = doc["components"]["parameters"]["limit"]["schema"]
    assert (limit["maximum"], limit["default"]) == (MAX_LIMIT, 1000) == (10_000, DEFAULT_LIMIT)
    # GDAL looks for the limit on the generic items path.
    generic = doc["paths"]["/collections/{collectionId}/items"]["get"]["parameters"]
    assert {"$ref": "#/components/parameters/limit"} in generic
    for collection in registry.collections():
        items = doc["paths"][f"/collections/{collection.id}/items"]["get"]
        names = {p.get("name") or p["$ref"].rsplit("/", 1)[1] for p in items["parameters"]}
        assert {"limit", "bbox", "datetime", "crs", "bbox-crs"} <= names
        assert {f.name for f in collection.filters} <= names
        assert "application/geo+json" in items["responses"]["200"]["content"]


def test_collections_list_every_layer_with_extent_and_crs(gis):
    body = gis.get("/ogc/collections").json
    listed = {c["id"]: c for c in body["collections"]}
    assert set(listed) == {c.id for c in registry.collections()}
    grids = listed["grids"]
    assert grids["crs"][0] == CRS84 and EPSG_4490 in grids["crs"] and grids["storageCrs"] == CRS84
    west, south, east, north = grids["extent"]["spatial"]["bbox"][0]
    assert 113 < west < east < 114.5 and 23 < south < north < 24.5
    (items,) = links(grids, "items")
    assert items["type"] == GEOJSON and items["href"] == "http://localhost/ogc/collections/grids/items"
    single = gis.get("/ogc/collections/grids").json
    assert single["id"] == "grids" and single["extent"] == grids["extent"]


def test_grids_page_through_every_grid_once_by_next_links(gis, session):
    expected = [a.code for a in areas.list_areas(session, level="grid", limit=10_000)]
    seen: list[str] = []
    url = "http://localhost/ogc/collections/grids/items?limit=300"
    pages = 0
    while url:
        response = follow(gis, url)
        assert response.status_code == 200 and response.content_type == GEOJSON
        assert response.headers["Content-Crs"] == f"<{CRS84}>"
        body = response.json
        assert body.get("numberMatched", len(expected)) == len(expected)
        assert ("numberMatched" in body) == (pages == 0)
        # Each next link asks for ten times the page before: 300, then 3,000.
        assert body["numberReturned"] == len(body["features"]) <= 300 * 10**pages
        seen += [f["id"] for f in body["features"]]
        nxt = links(body, "next")
        assert all(link["type"] == GEOJSON for link in body["links"] if link["rel"] != "collection")
        url = nxt[0]["href"] if nxt else None
        pages += 1
    assert seen == expected and pages == 2


def test_next_links_grow_the_page_up_to_the_maximum(gis):
    sizes = []
    url = "http://localhost/ogc/collections/grids/items?limit=1"
    while url:
        body = follow(gis, url).json
        sizes.append(body["numberReturned"])
        nxt = links(body, "next")
        url = nxt[0]["href"] if nxt else None
        if url:
            assert parse_qs(urlsplit(url).query)["limit"] == [str(min(MAX_LIMIT, 10 ** len(sizes)))]
    # 1 + 10 + 100 + the remaining 754 of 865.
    assert sizes == [1, 10, 100, 754]


def test_prev_link_returns_the_page_before(gis):
    first = gis.get("/ogc/collections/towns/items?limit=3").json
    assert not links(first, "prev")
    second = follow(gis, links(first, "next")[0]["href"]).json
    back = follow(gis, links(second, "prev")[0]["href"]).json
    assert [f["id"] for f in back["features"]] == [f["id"] for f in first["features"]]
    assert not links(back, "prev") and links(back, "next")
    # The next page asked for 30: it holds the rest.
    assert [f["id"] for f in second["features"]][-2:] == ["440117111", "440117113"]
    assert not links(second, "next")


def test_default_limit_is_1000_and_above_the_maximum_the_maximum_is_used(gis):
    assert gis.get("/ogc/collections/grids/items").json["numberReturned"] == 865
    body = gis.get(f"/ogc/collections/grids/items?limit={MAX_LIMIT + 1}").json
    assert body["numberReturned"] == 865 and not links(body, "next")


@pytest.mark.parametrize(
    "query",
    [
        "foo=1",
        "limit=0",
        "limit=-3",
        "limit=ten",
        "bbox=1,2,3",
        "bbox=113,24,114,23",
        "bbox=a,b,c,d",
        "bbox-crs=" + CRS84,
        "crs=EPSG:4326",
        "crs=http://www.opengis.net/def/crs/EPSG/0/3857",
        "datetime=yesterday",
        "datetime=2024-02-30",
        "datetime=2024-01-01T00:00:00",
        "datetime=../..",
        "datetime=2025-01-01T00:00:00Z/2024-01-01T00:00:00Z",
        "after=abc",
        "after=440117103001001&before=440117103001009",
        "offset=-1",
        "offset=x",
        "offset=2&after=440117103001001",
        "kind=big",
        "parent=12",
        "f=xml",
        "limit=5&limit=6",
    ],
)
def test_bad_parameters_are_400_problems(gis, query):
    response = gis.get(f"/ogc/collections/grids/items?{query}")
    assert response.status_code == 400, query
    assert response.content_type == PROBLEM
    assert response.json["code"] == "InvalidParameterValue" and response.json["description"]


def test_a_repeated_identical_parameter_is_accepted(gis):
    assert gis.get("/ogc/collections/grids/items?limit=5&limit=5").json["numberReturned"] == 5


def test_other_resources_refuse_unknown_parameters(gis):
    for path in (
        "/ogc?x=1",
        "/ogc/conformance?x=1",
        "/ogc/collections?x=1",
        "/ogc/collections/grids?x=3",
        "/ogc/collections/grids/items/440117103001001?x=1",
    ):
        assert gis.get(path).status_code == 400, path


def test_other_resources_ignore_the_items_parameters_of_a_connection_url(gis):
    # GDAL repeats the query of `OAPIF:http://.../ogc?datetime=...` on every request.
    query = "datetime=2026-10-01&crs=" + EPSG_4490 + "&limit=1000&area=440117103&offset=0"
    for path in (
        "/ogc",
        "/ogc/conformance",
        "/ogc/api",
        "/ogc/collections",
        "/ogc/collections/grid_closure",
        "/ogc/collections/grids/queryables",
        "/ogc/collections/grids/items/440117103001001",
    ):
        assert gis.get(f"{path}?{query}").status_code == 200, path
    # The period is carried into the items links, for clients that do not repeat the query.
    body = gis.get("/ogc/collections?datetime=2026-10-01/2026-10-31").json
    for collection in body["collections"]:
        (items,) = links(collection, "items")
        assert parse_qs(urlsplit(items["href"]).query)["datetime"] == ["2026-10-01/2026-10-31"]


def test_a_date_alone_is_the_whole_local_day(gis, reports, session):
    received = session.scalar(text("SELECT received_at FROM events WHERE id = :id"), {"id": reports.plain})
    day = received.astimezone(ZoneInfo("Asia/Shanghai")).date()

    def ids(value: str) -> set[str]:
        response = gis.get(f"/ogc/collections/events/items?datetime={value}&limit=10000")
        assert response.status_code == 200, value
        return {f["id"] for f in response.json["features"]}

    assert reports.plain in ids(day.isoformat())
    assert reports.plain not in ids((day - timedelta(days=1)).isoformat())
    assert reports.plain in ids(f"{day - timedelta(days=3)}/{day}")
    assert reports.plain not in ids(f"{day + timedelta(days=1)}/..")
    # The day's bounds, in Beijing time (UTC+8).
    start = datetime.combine(day, time(), ZoneInfo("Asia/Shanghai")).astimezone(UTC)
    exact = f"{start:%Y-%m-%dT%H:%M:%SZ}/{start + timedelta(days=1, microseconds=-1):%Y-%m-%dT%H:%M:%S.%fZ}"
    assert ids(day.isoformat()) == ids(exact)
    assert gis.get("/ogc/collections/grids/items?datetime=2026-10-01").status_code == 200


def test_offset_pages_like_the_cursor(gis):
    whole = [f["id"] for f in gis.get("/ogc/collections/grids/items?limit=6").json["features"]]
    page = gis.get("/ogc/collections/grids/items?limit=2&offset=2").json
    assert [f["id"] for f in page["features"]] == whole[2:4]
    (next_link,) = links(page, "next")
    assert "offset" not in parse_qs(urlsplit(next_link["href"]).query)
    assert [f["id"] for f in follow(gis, next_link["href"]).json["features"]][:2] == whole[4:6]
    (prev_link,) = links(page, "prev")
    assert [f["id"] for f in follow(gis, prev_link["href"]).json["features"]] == whole[0:2]
    assert not links(gis.get("/ogc/collections/grids/items?limit=2&offset=0").json, "prev")


def test_the_landing_page_links_a_service_doc(gis):
    (doc,) = links(gis.get("/ogc").json, "service-doc")
    assert doc["type"] == "text/html"
    page = follow(gis, doc["href"])
    assert page.status_code == 200 and page.content_type.startswith("text/html")
    text_ = page.get_data(as_text=True)
    assert all(f"<h2 id={c.id}>" in text_ for c in registry.collections())
    assert "accuracy_m<td>number" in text_


def test_bbox_selects_intersecting_grids_in_either_axis_order(gis, session):
    box = (113.55, 23.55, 113.60, 23.60)
    expected = session.execute(
        text(
            "SELECT count(*) FROM areas WHERE level = 'grid' AND valid_to IS NULL AND "
            "ST_Intersects(geom, ST_MakeEnvelope(:a, :b, :c, :d, 4326))"
        ),
        dict(zip("abcd", box, strict=True)),
    ).scalar()
    assert expected > 3
    lon_lat = gis.get("/ogc/collections/grids/items?limit=1000&bbox={},{},{},{}".format(*box)).json
    lat_lon = gis.get(
        "/ogc/collections/grids/items?limit=1000&bbox={1},{0},{3},{2}&bbox-crs={4}".format(*box, EPSG_4490)
    ).json
    assert lon_lat["numberMatched"] == lat_lon["numberMatched"] == expected
    assert [f["id"] for f in lon_lat["features"]] == [f["id"] for f in lat_lon["features"]]


def test_crs_4490_and_4326_answer_latitude_first(gis):
    plain = gis.get("/ogc/collections/grids/items/440117103001001").json
    for crs in (EPSG_4490, EPSG_4326):
        response = gis.get(f"/ogc/collections/grids/items/440117103001001?crs={crs}")
        assert response.headers["Content-Crs"] == f"<{crs}>"
        ring = response.json["geometry"]["coordinates"][0][0]
        flipped = {(lat, lon) for lon, lat in plain["geometry"]["coordinates"][0][0]}
        assert flipped == set(map(tuple, ring))
        assert 23 < ring[0][0] < 24 and 113 < ring[0][1] < 114
    items = gis.get(f"/ogc/collections/districts/items?crs={EPSG_4490}")
    assert items.headers["Content-Crs"] == f"<{EPSG_4490}>"


def test_polygons_are_valid_with_counter_clockwise_exteriors(gis):
    for feature in gis.get("/ogc/collections/villages/items?limit=1000").json["features"]:
        geometry = shape(feature["geometry"])
        assert geometry.is_valid and all(p.exterior.is_ccw for p in geometry.geoms)


def test_datetime_selects_the_boundary_version_in_force(gis, session):
    code = "440117103001001"
    old = areas.get_area(session, code)
    old_id, old_from = old.id, old.valid_from
    new = areas.update_area(
        session,
        code,
        geometry=shape(gis.get(f"/ogc/collections/grids/items/{code}").json["geometry"]).buffer(-0.0005),
    )
    session.commit()
    current = gis.get(f"/ogc/collections/grids/items?area={code}").json["features"]
    assert [f["properties"]["boundary_version"] for f in current] == [new.id]
    at = old_from.isoformat()
    past = gis.get("/ogc/collections/grids/items", query_string={"area": code, "datetime": at}).json
    assert [f["properties"]["boundary_version"] for f in past["features"]] == [old_id]
    assert past["features"][0]["properties"]["valid_to"] is not None
    interval = gis.get(
        "/ogc/collections/grids/items", query_string={"area": code, "datetime": f"../{at}"}
    ).json
    assert [f["properties"]["boundary_version"] for f in interval["features"]] == [old_id]
    everything = gis.get("/ogc/collections/grids/items", query_string={"datetime": at, "limit": 1000}).json
    assert everything["numberMatched"] == 865


def test_events_show_only_the_keys_scope_without_personal_data(gis, reports):
    body = gis.get("/ogc/collections/events/items?limit=1000").json
    features = {f["id"]: f for f in body["features"]}
    assert {reports.plain, reports.sensitive} <= set(features) and reports.outside not in features
    assert all(f["properties"]["town"] == "440117103" for f in features.values())
    assert features[reports.plain]["properties"]["description"] == "plain 描述"
    assert features[reports.sensitive]["properties"]["description"] is None
    assert features[reports.sensitive]["properties"]["category"] == "dispute"
    for feature in features.values():
        assert feature["geometry"]["type"] == "Point"
        assert not {"contacts", "reporter_id", "assignee_id", "resolved_by", "closed_by"} & set(
            feature["properties"]
        )
    assert "李四" not in gis.get("/ogc/collections/events/items?limit=1000").get_data(as_text=True)


def test_event_filters(gis, reports):
    def ids(query: str) -> set[str]:
        return {f["id"] for f in gis.get(f"/ogc/collections/events/items?{query}").json["features"]}

    disputes = ids("category=dispute")
    assert reports.sensitive in disputes and reports.plain not in disputes
    assert {reports.plain, reports.sensitive} <= ids("status=reported&area=440117103")
    assert ids("status=closed") & {reports.plain, reports.sensitive} == set()
    assert ids("area=440117104") == set()  # outside the key's scope
    assert reports.plain in ids("datetime=2000-01-01T00:00:00Z/..")
    assert ids("datetime=../2000-01-01T00:00:00Z") == set()


def test_admin_sees_every_event_and_a_single_event_is_scoped(app, accounts, reports, gis):
    admin = client_as(app, accounts, "admin")
    ids = {f["id"] for f in admin.get("/ogc/collections/events/items?limit=1000").json["features"]}
    assert {reports.plain, reports.outside} <= ids
    one = gis.get(f"/ogc/collections/events/items/{reports.plain}")
    assert one.status_code == 200 and one.content_type == GEOJSON
    assert one.json["id"] == reports.plain
    assert links(one.json, "self") and links(one.json, "collection")
    assert gis.get(f"/ogc/collections/events/items/{reports.outside}").status_code == 404
    assert admin.get(f"/ogc/collections/events/items/{reports.outside}").status_code == 200


def test_missing_things_are_404_problems(gis):
    for path in (
        "/ogc/collections/parks",
        "/ogc/collections/parks/items",
        "/ogc/collections/grids/items/440117999999999",
        "/ogc/collections/grids/items/abc",
        "/ogc/collections/events/items/not-a-uuid",
    ):
        response = gis.get(path)
        assert response.status_code == 404 and response.content_type == PROBLEM, path


def test_credentials_by_header_query_or_token(app, accounts):
    anonymous = app.test_client()
    assert anonymous.get("/ogc").status_code == 200  # the landing page is public
    for path in ("/ogc/collections", "/ogc/collections/grids/items", "/ogc/collections/events/items"):
        response = anonymous.get(path)
        assert response.status_code == 401 and response.content_type == PROBLEM
        assert "WWW-Authenticate" in response.headers
    key = accounts.gis_key
    by_scheme = {"Authorization": f"ApiKey {key}"}
    assert anonymous.get("/ogc/collections/grids/items", headers=by_scheme).status_code == 200
    assert anonymous.get(f"/ogc/collections/grids/items?api_key={key}").status_code == 200
    token = accounts.headers("worker")
    assert anonymous.get("/ogc/collections/events/items", headers=token).status_code == 200
    assert anonymous.get("/ogc/collections/grids/items?api_key=wg_nope_nope").status_code == 401


def test_a_query_key_is_carried_into_every_link(app, accounts):
    client = app.test_client()
    key = accounts.gis_key
    landing = client.get(f"/ogc?api_key={key}").json
    for link in landing["links"]:
        assert parse_qs(urlsplit(link["href"]).query)["api_key"] == [key]
    page = client.get(f"/ogc/collections/grids/items?limit=10&api_key={key}").json
    nxt = links(page, "next")[0]["href"]
    assert parse_qs(urlsplit(nxt).query) == {
        "limit": ["100"],
        "after": [page["features"][-1]["id"]],
        "api_key": [key],
    }
    assert follow(client, nxt).status_code == 200


def test_anonymous_callers_get_only_area_layers_when_allowed(app, anonymous_areas):
    anonymous = app.test_client()
    listed = {c["id"] for c in anonymous.get("/ogc/collections").json["collections"]}
    assert listed == {"districts", "towns", "villages", "grids"}
    assert anonymous.get("/ogc/collections/grids/items?limit=1").status_code == 200
    assert anonymous.get("/ogc/collections/events/items").status_code == 401
    assert anonymous.get("/ogc/collections/events").status_code == 401
    assert anonymous.get("/ogc/collections/grids?api_key=wg_bad_key").status_code == 401


def test_filter_values_postgresql_cannot_store_are_400(gis):
    for value in ("a\x00b", "长" * 201):
        response = gis.get("/ogc/collections/grids/items", query_string={"name": value})
        assert response.status_code == 400


def test_grid_closure_layer_counts_due_and_closed_events_in_the_period(app, accounts, session):
    grid = accounts.worker_grids[0]
    x, y = session.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)), ST_Y(ST_PointOnSurface(geom)) FROM areas "
            "WHERE code = :c AND valid_to IS NULL"
        ),
        {"c": grid},
    ).one()
    # Three events due in March 2024: two closed (one late), one still open; one due in April.
    for n, (due, closed) in enumerate(
        [
            ("2024-03-05", "2024-03-04"),
            ("2024-03-10", "2024-03-12"),
            ("2024-03-20", None),
            ("2024-04-02", "2024-04-01"),
        ]
    ):
        session.execute(
            text(
                "INSERT INTO events (id, category_code, description, location, crs, source_lon,"
                " source_lat, grid_code, village_code, town_code, district_code, assignment,"
                " status, due_at, closed_at, content_hash)"
                " VALUES (gen_random_uuid(), 'other', 'x', ST_SetSRID(ST_MakePoint(:x, :y), 4326),"
                " 'wgs84', :x, :y, CAST(:g AS text), left(CAST(:g AS text), 12),"
                " left(CAST(:g AS text), 9), left(CAST(:g AS text), 6), 'contains',"
                " CASE WHEN CAST(:closed AS text) IS NULL THEN 'in_progress' ELSE 'closed' END,"
                " CAST(:due AS timestamptz), CAST(CAST(:closed AS text) AS timestamptz), :h)"
            ),
            {"x": x, "y": y, "g": grid, "due": due, "closed": closed, "h": f"t{n}"},
        )
    session.commit()
    supervisor = client_as(app, accounts, "supervisor")
    url = (
        f"/ogc/collections/grid_closure/items?area={grid}&datetime=2024-03-01T00:00:00Z/2024-04-01T00:00:00Z"
    )
    response = supervisor.get(url)
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    (feature,) = response.json["features"]
    props = feature["properties"]
    assert (props["due"], props["closed"], props["closed_on_time"]) == (3, 2, 1)
    assert props["closure_rate"] == pytest.approx(2 / 3) and props["meets_benchmark"] is False
    assert (props["wilson_low"], props["wilson_high"]) == pytest.approx(wilson_interval(2, 3))
    assert props["below_benchmark"] is True  # even the interval's top, 0.94, is under 98%
    other = client_as(app, accounts, "other_supervisor").get(url)
    assert other.json["features"] == []  # statistics stay within the caller's scope


SCHEMA_JSON = "application/schema+json"


def test_queryables_and_schema_type_every_property_from_the_registry(gis):
    for collection in registry.collections():
        body = gis.get(f"/ogc/collections/{collection.id}").json
        (described,) = links(body, "describedBy")
        assert described["type"] == SCHEMA_JSON
        (queryables_link,) = links(body, "http://www.opengis.net/def/rel/ogc/1.0/queryables")
        response = follow(gis, queryables_link["href"])
        assert response.status_code == 200 and response.content_type == SCHEMA_JSON
        queryables = response.json
        assert queryables["$id"] == queryables_link["href"]
        assert queryables["properties"]["id"]["x-ogc-role"] == "id"
        assert queryables["properties"]["geometry"]["x-ogc-role"] == "primary-geometry"
        assert set(queryables["properties"]) == {"id", "geometry", *(p.name for p in collection.properties)}
        schema = follow(gis, described["href"])
        assert schema.status_code == 200 and schema.content_type == SCHEMA_JSON
        typed = schema.json["properties"]["properties"]["properties"]
        for prop in collection.properties:
            expected = "string" if prop.type == "date-time" else prop.type
            assert typed[prop.name]["type"] == expected == queryables["properties"][prop.name]["type"]
            assert (typed[prop.name].get("format") == "date-time") == (prop.type == "date-time")
    grids = gis.get("/ogc/collections/grids/queryables").json["properties"]
    assert grids["valid_to"] == {
        "title": "valid_to",
        "type": "string",
        "format": "date-time",
        "description": "Null while the boundary is current",
    }
    assert (
        gis.get("/ogc/collections/events/schema").json["properties"]["properties"]["properties"][
            "accuracy_m"
        ]["type"]
        == "number"
    )


def test_queryables_need_the_collections_credentials(app):
    anonymous = app.test_client()
    assert anonymous.get("/ogc/collections/events/queryables").status_code == 401
    assert anonymous.get("/ogc/collections/events/schema").status_code == 401


def test_only_the_first_page_counts_the_matches(gis):
    first = gis.get("/ogc/collections/grids/items?limit=300").json
    assert first["numberMatched"] == 865 and first["numberReturned"] == 300
    second = follow(gis, links(first, "next")[0]["href"]).json
    assert "numberMatched" not in second and second["numberReturned"] == 865 - 300
    assert "numberMatched" not in gis.get("/ogc/collections/grids/items?limit=300&offset=300").json
    # 865 grids: one page by default.
    whole = gis.get("/ogc/collections/grids/items").json
    assert whole["numberReturned"] == 865 < DEFAULT_LIMIT and not links(whole, "next")
