"""Vector tiles at /tiles/{layer}/{z}/{x}/{y}.mvt, decoded with a vector-tile library."""

from __future__ import annotations

import mapbox_vector_tile
from sqlalchemy import text

from geo.tiles import tile_of

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

    grid = session.execute(
        text("SELECT grid_code FROM events WHERE id = :id"), {"id": reports.plain}
    ).scalar()
    url = tile_url(session, "events", grid, zoom=10)
    features = decode(gis.get(url))["events"]["features"]
    ids = {f["properties"]["id"] for f in features}
    assert {reports.plain, reports.sensitive} <= ids
    assert set(features[0]["properties"]) == {"id", "category", "status", "grid"}
    other = client_as(app, accounts, "other_supervisor").get(url)
    assert other.status_code == 204 or not (
        {reports.plain} & {f["properties"]["id"] for f in decode(other)["events"]["features"]}
    )


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
