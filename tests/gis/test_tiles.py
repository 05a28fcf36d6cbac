"""Vector tiles at /tiles/{layer}/{z}/{x}/{y}.mvt, decoded with a vector-tile library."""

from __future__ import annotations

import gzip

import mapbox_vector_tile
from sqlalchemy import text

from backend import demo
from backend.gis import registry, service
from backend.gis.service import POINTS_FROM_ZOOM
from geo.tiles import tile_bounds, tile_of

MVT = "application/vnd.mapbox-vector-tile"

_point = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE code = :code AND valid_to IS NULL) s"
)


def tile_url(session, layer: str, code: str, zoom: int = 12) -> str:  # type: ignore[no-untyped-def]
    point = session.execute(_point, {"code": code}).one()
    x, y = tile_of(point.x, point.y, zoom)
    return f"/tiles/{layer}/{zoom}/{x}/{y}.mvt"


def decode(response):  # type: ignore[no-untyped-def]
    assert response.status_code == 200 and response.content_type == MVT
    return mapbox_vector_tile.decode(response.get_data())


def test_a_grid_tile_holds_the_grid_with_its_code_name_and_kind(gis, session):
    code = "440117103001001"
    layers = decode(gis.get(tile_url(session, "grids", code)))
    features = layers["grids"]["features"]
    mine = [f for f in features if f["properties"]["code"] == code]
    assert len(mine) == 1
    assert mine[0]["properties"]["level"] == "grid"
    assert mine[0]["properties"]["kind"] == "comprehensive"
    assert mine[0]["properties"]["name"].endswith("网格")
    assert mine[0]["geometry"]["type"] in ("Polygon", "MultiPolygon")
    assert all(f["properties"]["code"].startswith("440117") for f in features)


def test_every_area_level_has_tiles(gis, session):
    for layer, code in (("districts", "440117"), ("towns", "440117103"), ("villages", "440117103001")):
        layers = decode(gis.get(tile_url(session, layer, code, zoom=10)))
        assert code in {f["properties"]["code"] for f in layers[layer]["features"]}


def test_event_tiles_keep_to_the_scope_and_leave_personal_data_out(  # type: ignore[no-untyped-def]
    app, accounts, gis, session, reports
):
    from tests.conftest import client_as

    url = event_tile_url(session, reports.plain, POINTS_FROM_ZOOM + 2)
    features = decode(gis.get(url))["events"]["features"]
    ids = {f["properties"]["id"] for f in features}
    assert {reports.plain, reports.sensitive} <= ids
    assert set(features[0]["properties"]) == {"id", "category", "status", "grid"}
    other = client_as(app, accounts, "other_supervisor").get(url)
    assert other.status_code == 204 or not (
        {reports.plain} & {f["properties"]["id"] for f in decode(other)["events"]["features"]}
    )


def event_tile_url(session, event_id: str, zoom: int) -> str:  # type: ignore[no-untyped-def]
    point = session.execute(
        text("SELECT ST_X(location) AS x, ST_Y(location) AS y FROM events WHERE id = :id"), {"id": event_id}
    ).one()
    x, y = tile_of(point.x, point.y, zoom)
    return f"/tiles/events/{zoom}/{x}/{y}.mvt"


def test_every_feature_has_a_stable_numeric_id(gis, session, reports):
    grids = decode(gis.get(tile_url(session, "grids", "440117103001001")))["grids"]["features"]
    assert grids and all(f["id"] == int(f["properties"]["code"]) for f in grids)
    url = event_tile_url(session, reports.plain, POINTS_FROM_ZOOM + 2)
    events = decode(gis.get(url))["events"]["features"]
    by_uuid = {f["properties"]["id"]: f["id"] for f in events}
    # The first 63 bits of the uuid: the same in every tile and on every request.
    assert by_uuid[reports.plain] == int(reports.plain.replace("-", "")[:16], 16) & ((1 << 63) - 1)
    again = decode(gis.get(url))["events"]["features"]
    assert {f["properties"]["id"]: f["id"] for f in again} == by_uuid
    assert len(set(by_uuid.values())) == len(by_uuid) and all(v > 0 for v in by_uuid.values())


def test_low_zooms_count_events_in_cells_within_the_scope(gis, session, reports):
    zoom = 10
    url = event_tile_url(session, reports.plain, zoom)
    cells = decode(gis.get(url))["events"]["features"]
    assert cells and all(set(f["properties"]) == {"count"} for f in cells)
    assert all(f["geometry"]["type"] == "Point" for f in cells)
    assert len({f["id"] for f in cells}) == len(cells)
    x, y = (int(part) for part in url.removesuffix(".mvt").split("/")[-2:])
    west, south, east, north = tile_bounds(x, y, zoom)
    # The GIS key's events in the tile (its town only), each counted once.
    inside = session.execute(
        text(
            "SELECT count(*) FROM events WHERE town_code = '440117103' AND "
            "ST_Intersects(location, ST_MakeEnvelope(:w, :s, :e, :n, 4326))"
        ),
        {"w": west, "s": south, "e": east, "n": north},
    ).scalar()
    in_tile = sum(f["properties"]["count"] for f in cells if _inside_tile(f))
    assert in_tile == inside >= 2


def _inside_tile(feature) -> bool:  # type: ignore[no-untyped-def]
    x, y = feature["geometry"]["coordinates"]
    return 0 <= x < 4096 and 0 <= y < 4096


def test_no_tile_passes_500_kb_even_where_events_crowd(gis, session, monkeypatch):
    # 30,000 events in one town: single points at zoom 12 would weigh about a megabyte.
    demo.insert_synthetic_events(session, 30_000, seed=13013, prefix="440117103")
    session.flush()
    point = session.execute(_point, {"code": "440117103"}).one()
    sizes, kinds = {}, {}
    for zoom in (6, 8, 10, 12, 13, 14, 15):
        x, y = tile_of(point.x, point.y, zoom)
        response = gis.get(f"/tiles/events/{zoom}/{x}/{y}.mvt", headers={"Accept-Encoding": "identity"})
        assert response.status_code == 200
        sizes[zoom] = len(response.get_data())
        features = mapbox_vector_tile.decode(response.get_data())["events"]["features"]
        (kinds[zoom],) = {"cells" if "count" in f["properties"] else "points" for f in features}
    assert max(sizes.values()) < 500_000, sizes
    assert all(kinds[zoom] == "cells" for zoom in sizes if zoom < POINTS_FROM_ZOOM), kinds
    assert kinds[15] == "points", kinds
    # Where single points would pass the budget the tile holds cells instead.
    monkeypatch.setattr(service, "MAX_TILE_BYTES", 1_000)
    x, y = tile_of(point.x, point.y, 14)
    features = decode(gis.get(f"/tiles/events/14/{x}/{y}.mvt"))["events"]["features"]
    assert features and all(set(f["properties"]) == {"count"} for f in features)


def test_tiles_are_gzipped_for_clients_that_take_it(gis, session):
    url = tile_url(session, "grids", "440117103001001")
    plain = gis.get(url, headers={"Accept-Encoding": "identity"})
    zipped = gis.get(url, headers={"Accept-Encoding": "gzip"})
    assert zipped.headers["Content-Encoding"] == "gzip" and "Content-Encoding" not in plain.headers
    assert gzip.decompress(zipped.get_data()) == plain.get_data()
    assert len(zipped.get_data()) < len(plain.get_data())


def test_grids_start_at_their_minimum_zoom(gis, session):
    x, y = tile_of(113.5, 23.6, 8)
    assert gis.get(f"/tiles/grids/8/{x}/{y}.mvt").status_code == 204
    assert gis.get(f"/tiles/districts/8/{x}/{y}.mvt").status_code == 200


def test_tilejson_describes_each_tile_layer(gis, accounts, reports):
    for collection in registry.collections():
        response = gis.get(f"/tiles/{collection.id}.json")
        assert response.status_code == 200 and response.mimetype == "application/json"
        body = response.json
        assert body["tilejson"] == "3.0.0" and body["scheme"] == "xyz"
        assert body["tiles"] == [f"http://localhost/tiles/{collection.id}/{{z}}/{{x}}/{{y}}.mvt"]
        assert body["minzoom"] == collection.tile_minzoom and body["maxzoom"] == 22
        west, south, east, north = body["bounds"]
        assert west <= east and south <= north
        (layer,) = body["vector_layers"]
        assert layer["id"] == collection.id
        expected = {"id", *(p.name for p in collection.properties if p.in_tiles)}
        if collection.geometry_type == "Point":
            expected.add("count")
        assert set(layer["fields"]) == expected
    events = gis.get("/tiles/events.json").json
    assert events["vector_layers"][0]["fields"]["count"].startswith("Number")
    # The GIS key's scope: its town, 温泉镇, well inside Conghua.
    west, south, east, north = events["bounds"]
    assert 113.2 < west <= east < 114.1 and 23.3 < south <= north < 24.0
    assert gis.get("/tiles/grids.json").json["minzoom"] == 10
    carried = gis.get(f"/tiles/grids.json?api_key={accounts.gis_key}").json["tiles"][0]
    assert carried.endswith(f".mvt?api_key={accounts.gis_key}")


def test_tilejson_access_as_for_the_tiles(app, accounts, gis, anonymous_areas):
    anonymous = app.test_client()
    assert anonymous.get("/tiles/grids.json").status_code == 200
    assert anonymous.get("/tiles/grids.json").headers["Cache-Control"] == "public, max-age=60"
    assert anonymous.get("/tiles/events.json").status_code == 401
    assert gis.get("/tiles/parks.json").status_code == 404
    bad = gis.get("/tiles/grids.json?format=pbf")
    assert bad.status_code == 400 and bad.mimetype == "application/problem+json"


def test_empty_tiles_are_204_and_tiles_carry_cache_headers(gis, session):
    empty = gis.get("/tiles/grids/12/0/0.mvt")
    assert empty.status_code == 204 and empty.get_data() == b""
    url = tile_url(session, "grids", "440117103001001")
    full = gis.get(url)
    assert full.headers["Cache-Control"] == "private, max-age=60"
    assert gis.get(url, headers={"If-None-Match": full.headers["ETag"]}).status_code == 304


def test_tile_access_and_bad_requests(app, gis, session, anonymous_areas):
    anonymous = app.test_client()
    url = tile_url(session, "grids", "440117103001001")
    public = anonymous.get(url)
    assert public.status_code == 200 and public.headers["Cache-Control"] == "public, max-age=60"
    assert anonymous.get("/tiles/events/12/3336/1778.mvt").status_code == 401
    assert gis.get("/tiles/parks/1/0/0.mvt").status_code == 404
    assert gis.get("/tiles/grids/3/8/0.mvt").status_code == 404
    assert gis.get("/tiles/grids/30/0/0.mvt").status_code == 404
    assert gis.get(url + "?buffer=1").status_code == 400
