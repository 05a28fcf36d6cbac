"""An operator's raster basemap under the page (WANGGE_BASEMAP_URL): the policy names its origin
and no other, its tiles are drawn under the areas, and under a GCJ-02 basemap (AMap) the page asks
for its polygons in GCJ-02. The basemap's host is answered by the test itself: no tile is fetched
from outside."""

from __future__ import annotations

import io
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest
from PIL import Image

from backend.config import from_environ
from tests.conftest import Server, gunicorn
from tests.dashboard.conftest import DISTRICT, open_page, sign_in

BASEMAP_ORIGIN = "https://basemap.example.test"
BASEMAP = {
    "WANGGE_BASEMAP_URL": BASEMAP_ORIGIN + "/amap/{z}/{x}/{y}.png",
    "WANGGE_BASEMAP_CRS": "gcj02",
    "WANGGE_BASEMAP_ATTRIBUTION": "© 高德地图",
}


@pytest.fixture(scope="module")
def basemap_server(page_database: str) -> Iterator[Server]:
    with gunicorn(page_database, workers=1, log_path=None, **BASEMAP) as base:
        yield base


def _tile() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (256, 256), (200, 220, 240)).save(out, format="PNG")
    return out.getvalue()


def test_a_gcj02_basemap_is_drawn_and_the_data_comes_shifted(browser, basemap_server):
    page, watch = open_page(browser, basemap_server, 1366, 768)
    tiles: list[str] = []
    png = _tile()

    def answer(route, request):  # type: ignore[no-untyped-def]
        tiles.append(request.url)
        route.fulfill(status=200, content_type="image/png", body=png)

    # Registered after open_page's watch, so it answers the basemap's host first.
    page.context.route(BASEMAP_ORIGIN + "/**", answer)
    response = page.goto(f"{basemap_server}/dashboard")
    assert response is not None
    policy = response.headers["content-security-policy"]
    directives = {d.split()[0]: d.split()[1:] for d in policy.split("; ")}
    assert BASEMAP_ORIGIN in directives["img-src"] and BASEMAP_ORIGIN in directives["connect-src"]
    assert policy.count("https://") == 2 and "http://" not in policy
    sign_in(page, basemap_server, "admin", f"?area={DISTRICT}&level=town&period=this_year")
    shapes = [u for u in watch.requests if "/api/v1/stats/closure.geojson" in u]
    assert shapes and all(parse_qs(urlsplit(u).query)["crs"] == ["gcj02"] for u in shapes)
    # The overdue points too: they would sit about 500 m off the shifted polygons otherwise.
    page.wait_for_function(
        "() => performance.getEntriesByType('resource').some(e => e.name.includes('/stats/overdue'))"
    )
    overdue = [u for u in watch.requests if "/api/v1/stats/overdue" in u]
    assert overdue and all(parse_qs(urlsplit(u).query)["crs"] == ["gcj02"] for u in overdue)
    page.wait_for_function("() => window.wangge.map.areTilesLoaded()")
    assert tiles and all(u.startswith(BASEMAP_ORIGIN + "/amap/") for u in tiles)
    assert page.locator(".maplibregl-ctrl-attrib").inner_text().strip().endswith("高德地图")
    assert page.evaluate("() => window.wangge.renderedCount()") > 0
    page.context.close()
    assert watch.foreign == [] and watch.errors == []


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"WANGGE_BASEMAP_URL": "ftp://tiles.example.test/{z}/{x}/{y}.png"}, "WANGGE_BASEMAP_URL"),
        ({"WANGGE_BASEMAP_URL": "https://tiles.example.test/tile.png"}, "WANGGE_BASEMAP_URL"),
        ({"WANGGE_BASEMAP_CRS": "bd09"}, "WANGGE_BASEMAP_CRS"),
    ],
)
def test_a_wrong_basemap_setting_stops_the_start(env, name):
    with pytest.raises(ValueError, match=name):
        from_environ({"DATABASE_URL": "postgresql://localhost/x", **env})
