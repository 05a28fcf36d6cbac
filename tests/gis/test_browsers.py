"""What browsers and scripts get besides the data: gzip and CORS."""

from __future__ import annotations

import dataclasses
import gzip
import json
from collections.abc import Iterator

import pytest

from tests.gis.test_tiles import tile_url

GZIP = {"Accept-Encoding": "gzip, deflate"}


def test_json_geojson_and_schemas_come_gzipped_when_asked(gis):
    for path in (
        "/ogc/collections/grids/items?limit=50",
        "/ogc/collections",
        "/ogc/api",
        "/ogc/collections/events/schema",
    ):
        plain = gis.get(path)
        packed = gis.get(path, headers=GZIP)
        assert plain.status_code == packed.status_code == 200, path
        assert "Content-Encoding" not in plain.headers and "Accept-Encoding" in plain.headers["Vary"]
        assert packed.headers["Content-Encoding"] == "gzip", path
        assert len(packed.get_data()) < len(plain.get_data()) / 2
        unpacked = json.loads(gzip.decompress(packed.get_data()))
        body = json.loads(plain.get_data())
        for doc in (unpacked, body):
            doc.pop("timeStamp", None)
        assert unpacked == body, path
    # Small answers stay plain.
    assert "Content-Encoding" not in gis.get("/ogc/conformance", headers=GZIP).headers


def test_tiles_come_gzipped_with_a_weak_etag_that_still_answers_304(gis, session):
    url = tile_url(session, "grids", "440117103001001", zoom=12)
    plain = gis.get(url)
    packed = gis.get(url, headers=GZIP)
    assert packed.status_code == 200 and packed.headers["Content-Encoding"] == "gzip"
    assert gzip.decompress(packed.get_data()) == plain.get_data()
    etag = packed.headers["ETag"]
    assert etag == "W/" + plain.headers["ETag"]
    assert gis.get(url, headers={**GZIP, "If-None-Match": etag}).status_code == 304


def test_downloads_stay_plain_for_byte_ranges(gis):
    response = gis.get("/api/v1/exports/grids.geojson", headers=GZIP)
    assert response.status_code == 200 and "Content-Encoding" not in response.headers


@pytest.fixture
def cors_origin(app) -> Iterator[str]:  # type: ignore[no-untyped-def]
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, cors_origins=("https://map.example.cn",))
    yield "https://map.example.cn"
    app.config["SETTINGS"] = settings


def test_cors_answers_the_configured_origins_only(app, gis, cors_origin):
    anonymous = app.test_client()
    for path, method in (("/ogc/collections/events/items", "GET"), ("/api/v1/exports/links", "POST")):
        preflight = anonymous.options(
            path,
            headers={
                "Origin": cors_origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "x-api-key",
            },
        )
        assert preflight.status_code == 204, path
        assert preflight.headers["Access-Control-Allow-Origin"] == cors_origin
        assert method in preflight.headers["Access-Control-Allow-Methods"]
        assert "X-API-Key" in preflight.headers["Access-Control-Allow-Headers"]
    response = gis.get("/ogc/collections", headers={"Origin": cors_origin})
    assert response.headers["Access-Control-Allow-Origin"] == cors_origin
    assert (
        "ETag" in response.headers["Access-Control-Expose-Headers"] and "Origin" in response.headers["Vary"]
    )
    other = gis.get("/ogc/collections", headers={"Origin": "https://elsewhere.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    refused = anonymous.options(
        "/ogc/collections",
        headers={"Origin": "https://elsewhere.example", "Access-Control-Request-Method": "GET"},
    )
    assert "Access-Control-Allow-Origin" not in refused.headers


def test_no_cors_by_default(gis):
    response = gis.get("/ogc/collections", headers={"Origin": "https://map.example.cn"})
    assert "Access-Control-Allow-Origin" not in response.headers
