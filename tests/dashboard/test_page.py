"""The supervisors' page in Debian's chromium: sign in, the map and the table, sorting,
drill-down and back, one town's supervisor, the phone layout, sign-out.

Screenshots at 1366x768 and 390x844 land in var/screenshots (not committed)."""

from __future__ import annotations

import csv
import io
import math
import re
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from zoneinfo import ZoneInfo

import mapbox_vector_tile
import pytest
from PIL import Image
from playwright.sync_api import Page, expect
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from backend.auth.scope import Actor
from backend.patrols import figures, queries, service
from geo.tiles import tile_of
from tests.dashboard.conftest import (
    DISTRICT,
    PASSWORD,
    TOWN,
    open_page,
    screenshot,
    sign_in,
    wait_ready,
)

ZONE = ZoneInfo("Asia/Shanghai")


def table_codes(page: Page) -> list[str]:
    return page.locator("#table tbody tr").evaluate_all("rows => rows.map(r => r.dataset.code)")


def column(page: Page, index: int) -> list[str]:
    return page.locator(f"#table tbody tr td:nth-child({index})").all_inner_texts()


def state(page: Page) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(page.url).query).items()}


def csv_rows(page: Page, base: str) -> list[dict[str, str]]:
    """The rows of the page's CSV link, as the table's CSV button downloads them."""
    href = page.locator("#csv").get_attribute("href")
    assert href is not None
    response = page.request.get(base + href)
    assert response.status == 200
    return list(csv.DictReader(io.StringIO(response.body().decode("utf-8-sig"))))


def map_codes(page: Page) -> list[str]:
    return page.evaluate("() => window.wangge.map.querySourceFeatures('areas').map(f => f.properties.code)")


def test_sign_in_draws_a_coloured_map_and_fills_the_table(watched):
    page, watch, base = watched
    page.goto(f"{base}/dashboard")
    expect(page.locator("#signin")).to_be_visible()
    page.fill("input[name=username]", "admin")
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    expect(page.locator("#signin-error")).to_have_text("用户名或密码错误")
    watch.errors.clear()  # the 401 of the wrong password is the browser's console line
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    wait_ready(page)
    assert state(page) == {"area": DISTRICT, "level": "town", "period": "this_month", "layer": "closure"}
    assert len(table_codes(page)) == 8  # Conghua's towns
    assert page.evaluate("() => window.wangge.renderedCount()") >= 8
    assert "8" in page.locator("#status").inner_text()
    assert "综合指数权重" in page.locator("#weights").inner_text()
    shot = screenshot(page, "dashboard-1366x768.png")
    # Not blank: the map's box holds the bands' colours, not one flat background.
    box = page.locator("#map").bounding_box()
    assert box is not None
    crop = (
        Image.open(shot)
        .convert("RGB")
        .crop((box["x"], box["y"], box["x"] + box["width"], box["y"] + box["height"]))
    )
    colours = crop.getcolors(maxcolors=1 << 20) or []
    assert len([c for c in colours if c[0] > 200]) >= 4
    # The page's cookies are out of its scripts' reach.
    assert page.evaluate("() => document.cookie") == ""
    assert not page.evaluate("() => Object.keys(localStorage).length + Object.keys(sessionStorage).length")
    # A reload keeps the login and the view.
    page.select_option("#layer", "composite")
    page.reload()
    wait_ready(page)
    assert state(page)["layer"] == "composite"
    assert all(request.startswith(base) for request in watch.requests)


def test_sorting_by_a_column_and_back(watched):
    page, _, base = watched
    sign_in(page, base, "admin", "?area=440117&level=village&period=this_year&layer=closure")
    assert len(table_codes(page)) > 100
    assert table_codes(page) == sorted(table_codes(page))
    header = page.locator("#table thead th[data-key='due']")
    header.click()
    expect(header).to_have_attribute("aria-sort", "descending")
    due = [int(v) for v in column(page, 3)]
    assert due == sorted(due, reverse=True) and due[0] > due[-1]
    header.click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    assert [int(v) for v in column(page, 3)] == sorted(due)
    page.locator("#table thead th[data-key='composite_index']").click()
    scores = [float(v) for v in column(page, 15) if v != "–"]
    assert scores == sorted(scores, reverse=True)
    # The CSV button downloads the rows in the table's order, by a figure and by name.
    assert [r["village 村居"] for r in csv_rows(page, base)] == table_codes(page)
    page.locator("#table thead th[data-key='name']").click()
    names = column(page, 1)
    assert names == sorted(names) and table_codes(page) != sorted(table_codes(page))
    assert [r["village 村居"] for r in csv_rows(page, base)] == table_codes(page)


def test_drill_down_to_a_grid_and_back(watched):
    page, _, base = watched
    sign_in(page, base, "admin")
    path = []
    for level in ("village", "grid", "grid"):  # district → town → village → grid
        code = table_codes(page)[0]
        page.locator(f"#table tbody tr[data-code='{code}']").click()
        wait_ready(page)
        assert (state(page)["area"], state(page)["level"]) == (code, level)
        assert table_codes(page) and all(c.startswith(code) for c in table_codes(page))
        path.append(code)
    town, village, grid = path
    assert len(town) == 9 and len(village) == 12 and len(grid) == 15
    assert table_codes(page) == [grid] and page.evaluate("() => window.wangge.renderedCount()") >= 1
    crumbs = page.locator("#crumbs > *").all_inner_texts()
    assert crumbs[0] == "从化区" and len(crumbs) == 4
    # The breadcrumb back to the district; the browser's back button forward again.
    page.locator("#crumbs a").first.click()
    wait_ready(page)
    assert state(page)["area"] == DISTRICT and len(table_codes(page)) == 8
    page.go_back()
    wait_ready(page)
    assert state(page)["area"] == grid


def test_a_town_supervisor_sees_no_other_town_anywhere(browser, page_server):
    page, watch = open_page(browser, page_server, 1366, 768)
    # Even a shared link to the whole district opens only the supervisor's town.
    sign_in(page, page_server, "wenquan", f"?area={DISTRICT}&level=grid&period=this_year")
    assert state(page)["area"] == TOWN
    page.select_option("#level", "grid")
    wait_ready(page)
    codes = table_codes(page)
    assert len(codes) > 20 and all(c.startswith(TOWN) for c in codes)
    assert set(map_codes(page)) <= set(codes) and map_codes(page)
    assert [a.inner_text() for a in page.locator("#crumbs > *").all()] == ["温泉镇"]
    # The CSV link gives exactly the table's areas.
    rows = csv_rows(page, page_server)
    assert sorted(r["grid 网格"] for r in rows) == sorted(codes)
    assert "composite_index 综合指数" in rows[0]
    # Tiles of the figures over the whole district hold only the town's grids (the boundary
    # layers, towns and grids, are public to every caller by design).
    # Grid layers have tiles from zoom 10 on.
    x, y = tile_of(113.6, 23.65, 10)
    tile = page.request.get(f"{page_server}/tiles/grid_closure/10/{x}/{y}.mvt")
    assert tile.status == 200
    features = mapbox_vector_tile.decode(tile.body())["grid_closure"]["features"]
    assert features and all(f["properties"]["code"].startswith(TOWN) for f in features)
    # The API refuses the other towns, with the page's cookie as with a token.
    other = page.request.get(f"{page_server}/api/v1/stats/closure.geojson?area=440117104&group_by=grid")
    assert other.status == 404
    screenshot(page, "dashboard-town-supervisor.png")
    page.context.close()
    assert watch.errors == [] and watch.foreign == []


def test_the_phone_layout(browser, page_server):
    page, watch = open_page(browser, page_server, 390, 844)
    sign_in(page, page_server, "admin")
    screenshot(page, "dashboard-390x844.png")
    width = page.evaluate("() => document.documentElement.scrollWidth")
    assert width <= 390  # nothing sticks out sideways; the wide table scrolls in its own box
    box = page.locator("#map").bounding_box()
    assert box is not None and box["width"] >= 360 and box["height"] >= 300
    assert page.evaluate("() => window.wangge.renderedCount()") >= 8
    table = page.locator(".tablebox")
    assert table.evaluate("t => t.scrollWidth > t.clientWidth")
    # A tap on a row drills down as a click does.
    code = table_codes(page)[0]
    page.locator(f"#table tbody tr[data-code='{code}']").click()
    wait_ready(page)
    assert state(page)["area"] == code
    page.context.close()
    assert watch.errors == [] and watch.foreign == []


def test_layers_periods_language_and_an_overdue_event(watched):
    page, _, base = watched
    sign_in(page, base, "admin", "?area=440117&level=town&period=last_month")
    query = parse_qs(urlsplit(page.locator("#csv").get_attribute("href") or "").query)
    assert query["from"][0].endswith("-01T00:00:00+08:00") and query["to"][0].endswith("-01T00:00:00+08:00")
    for layer in ("on_time", "overdue", "check_in", "alerts", "composite"):
        page.select_option("#layer", layer)
        assert state(page)["layer"] == layer
    page.select_option("#period", "custom")
    page.fill("#from", "2026-01-01")
    page.fill("#to", "2026-01-31")
    page.locator("#to").dispatch_event("change")
    wait_ready(page)
    assert state(page)["period"] == "custom" and state(page)["to"] == "2026-01-31"
    page.click("#lang")
    expect(page.locator("#table thead th[data-key='composite_index']")).to_have_text(
        re.compile("Composite index")
    )
    assert state(page)["lang"] == "en"
    page.select_option("#period", "this_year")
    wait_ready(page)
    first = page.locator("#overdue li button").first
    first.click()
    expect(page.locator("#event")).to_be_visible()
    expect(page.locator("#event h4").first).to_have_text("Trail")
    assert page.locator("#event .trail li").count() >= 1


def test_sign_out_ends_the_login(watched):
    page, _, base = watched
    sign_in(page, base, "admin")
    cookies = page.context.cookies()
    assert {c["name"]: c["httpOnly"] for c in cookies} == {"wangge_session": True, "wangge_refresh": True}
    assert {c["sameSite"] for c in cookies} == {"Strict"}
    page.click("#signout")
    expect(page.locator("#signin")).to_be_visible()
    assert page.context.cookies() == []
    # The cookie taken before signing out opens nothing any more.
    session = next(c for c in cookies if c["name"] == "wangge_session")
    page.context.add_cookies([{"name": session["name"], "value": session["value"], "url": base}])
    assert page.request.get(f"{base}/api/v1/me").status == 401


def test_a_long_table_lays_out_its_rows_as_it_is_scrolled(watched):
    page, _, base = watched
    sign_in(page, base, "admin", f"?area={DISTRICT}&level=grid&period=this_year&layer=closure")
    total = int(page.locator("#table").get_attribute("data-rows") or 0)
    assert total == 865 and len(table_codes(page)) == 300
    for shown in (600, 865):
        page.locator("#table tbody tr").last.scroll_into_view_if_needed()
        expect(page.locator("#table tbody tr")).to_have_count(shown)
    codes = table_codes(page)
    assert codes == sorted(codes) and len(set(codes)) == total
    assert [r["grid 网格"] for r in csv_rows(page, base)] == codes


def api_json(page: Page, url: str) -> Any:
    response = page.request.get(url)
    assert response.status == 200, response.text()
    return response.json()


def rendered(page: Page, prop: str) -> dict[str, Any]:
    """What the drawn area features carry of one property, by code."""
    return page.evaluate(
        """prop => Object.fromEntries(window.wangge.map.queryRenderedFeatures({layers: ['area-fill']})
            .map(f => [f.properties.code, f.properties[prop] ?? null]))""",
        prop,
    )


def cells(page: Page, key: str) -> dict[str, str]:
    """A column's texts by the rows' codes, found by its heading's key."""
    keys = page.locator("#table thead th").evaluate_all("hs => hs.map(h => h.dataset.key)")
    assert key in keys, keys
    return dict(zip(table_codes(page), column(page, keys.index(key) + 1), strict=True))


def percent(value: float | None) -> str:
    return "–" if value is None else f"{value * 100:.1f}%"


def test_the_mediation_layer_and_its_columns(watched):
    page, watch, base = watched
    sign_in(page, base, "conghua", f"?area={DISTRICT}&level=town&period=this_year")
    # The default layer asks nothing of mediation, nor loads the code asking for it; the table
    # has none of its columns.
    assert not any("/stats/mediation" in r or r.endswith("/extra.js") for r in watch.requests)
    assert page.locator("#table thead th[data-key='mediation_cases']").count() == 0
    page.select_option("#layer", "mediation")
    wait_ready(page)
    assert state(page)["layer"] == "mediation"
    asked = [r for r in watch.requests if "/stats/mediation" in r]
    assert len(asked) == 1 and "group_by=town" in asked[0] and "area=440117" in asked[0]
    query = parse_qs(urlsplit(asked[0]).query)
    expected = api_json(page, f"{base}/api/v1/stats/mediation?{urlsplit(asked[0]).query}")
    assert query["from"][0].endswith("-01-01T00:00:00+08:00")
    groups = {g["key"]["town"]: g for g in expected["groups"]}
    # The demo mediates its disputes about 98% to an agreement: those figures are on the page.
    assert expected["totals"]["cases"] > 20 and 0.9 < expected["totals"]["success_rate"] <= 1
    assert groups and set(groups) <= set(table_codes(page))
    drawn = rendered(page, "mediation_success_rate")
    for code, group in groups.items():
        assert drawn[code] == pytest.approx(group["success_rate"])
    below = rendered(page, "mediation_below")
    flagged = {c for c, g in groups.items() if g["below_benchmark"]}
    assert {c for c, v in below.items() if v} == flagged
    assert (
        set(page.locator("#table tbody tr.below").evaluate_all("rs => rs.map(r => r.dataset.code)"))
        == flagged
    )
    assert cells(page, "mediation_cases") == {
        c: str(groups[c]["cases"]) if c in groups else "–" for c in table_codes(page)
    }
    assert cells(page, "mediation_agreements") == {
        c: str(groups[c]["agreements"]) if c in groups else "–" for c in table_codes(page)
    }
    rates = cells(page, "mediation_success_rate")
    intervals = cells(page, "mediation_wilson_low")
    referrals = cells(page, "mediation_referrals")
    for code, group in groups.items():
        assert rates[code] == percent(group["success_rate"])
        assert intervals[code] == f"{percent(group['wilson_low'])} – {percent(group['wilson_high'])}"
        bodies = ("referred_court", "referred_petition_office", "referred_police")
        assert referrals[code] == str(sum(group[b] for b in bodies))
    legend = page.locator("#legend").inner_text()
    assert "调解成功率" in legend and "98%" in legend
    screenshot(page, "dashboard-mediation.png")
    heads = page.locator("#table thead").inner_text()
    assert "调解结案数" in heads and "调解成功数" in heads and "调解成功率95%置信区间" in heads
    # The layer in the URL: a reload asks for its figures at once and shows them.
    page.reload()
    wait_ready(page)
    assert cells(page, "mediation_cases") == {
        c: str(groups[c]["cases"]) if c in groups else "–" for c in table_codes(page)
    }
    page.click("#lang")
    expect(page.locator("#table thead th[data-key='mediation_cases']")).to_have_text("Mediation cases")
    # Back to closure: its own outline and columns stay right.
    page.select_option("#layer", "closure")
    wait_ready(page)
    assert rendered(page, "closure_rate")
    assert all(r.startswith(base) for r in watch.requests)


@pytest.fixture(scope="module")
def patrol_day(page_database: str) -> tuple[date, str]:
    """Two workers of one Conghua grid on the last working day before today: one patrols half
    an hour there (the norm, a quarter of an hour, met), the other five minutes (not met)."""
    engine = create_engine(page_database)
    day = datetime.now(ZONE).date() - timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    with Session(engine) as session:
        grid, kind, lon, lat = session.execute(
            text(
                "SELECT code, kind, ST_X(p), ST_Y(p) FROM (SELECT code, kind, ST_PointOnSurface(geom) AS p"
                " FROM areas WHERE level = 'grid' AND code LIKE :town AND kind IS NOT NULL"
                " AND valid_to IS NULL ORDER BY code LIMIT 1) g"
            ),
            {"town": f"{TOWN}%"},
        ).one()
        queries.set_norm(session, Actor(role="admin"), grid_kind=kind, min_hours=0.25, min_coverage=0.001)
        for minutes in (30, 5):
            user_id = session.execute(
                text(
                    "INSERT INTO users (username, password_hash, display_name, role, worker_kind)"
                    " VALUES (:name, 'x', '巡查员', 'worker', 'full_time') RETURNING id"
                ),
                {"name": f"walker-{minutes}"},
            ).scalar_one()
            session.execute(
                text("INSERT INTO user_grids (user_id, grid_code) VALUES (:u, :g)"), {"u": user_id, "g": grid}
            )
            walker = Actor(role="worker", user_id=user_id, username=f"walker-{minutes}", grid_codes=(grid,))
            t0 = datetime.combine(day, time(9), ZONE).timestamp()
            # Round and round a 20 m circle about a point inside the grid, a point every 10 s.
            points = [
                {
                    "lon": lon + 0.0002 * math.cos(i / 6),
                    "lat": lat + 0.00018 * math.sin(i / 6),
                    "t": t0 + 10 * i,
                    "accuracy_m": 5,
                }
                for i in range(minutes * 6 + 1)
            ]
            patrol_id = uuid.uuid4()
            service.start_patrol(
                session, walker, patrol_id=patrol_id, started_at=datetime.fromtimestamp(t0, ZONE)
            )
            service.add_batch(
                session, walker, patrol_id, batch="1", crs="wgs84", points=points, max_points=1000
            )
        figures.compute_day(session, day)
        session.commit()
    engine.dispose()
    return day, grid


def test_the_patrol_layer_and_its_columns(watched, patrol_day):
    page, watch, base = watched
    day, grid = patrol_day
    town = grid[:9]
    sign_in(page, base, "conghua", f"?area={DISTRICT}&level=town&period=custom&from={day}&to={day}")
    assert not any("/stats/patrols" in r for r in watch.requests)
    page.select_option("#layer", "patrols")
    wait_ready(page)
    assert state(page)["layer"] == "patrols"
    asked = [r for r in watch.requests if "/stats/patrols" in r]
    assert len(asked) == 1
    query = parse_qs(urlsplit(asked[0]).query)
    assert query["group_by"] == ["town"] and query["area"] == [DISTRICT]
    assert (query["from"], query["to"]) == ([str(day)], [str(day + timedelta(days=1))])
    expected = api_json(page, f"{base}/api/v1/stats/patrols?{urlsplit(asked[0]).query}")
    groups = {g["town"]: g for g in expected["groups"]}
    # One worker-day of two met the norm in the walkers' town; no figures elsewhere.
    assert set(groups) == {town}
    assert (groups[town]["worker_days"], groups[town]["compliant_days"]) == (2, 1)
    assert groups[town]["compliance_rate"] == pytest.approx(0.5)
    assert groups[town]["mean_coverage"] > 0
    drawn = rendered(page, "patrol_compliance_rate")
    assert drawn[town] == pytest.approx(0.5)
    assert {c for c, v in drawn.items() if v is not None} == {town}
    compliance = cells(page, "patrol_compliance_rate")
    coverage = cells(page, "patrol_mean_coverage")
    assert compliance[town] == "50.0%"
    assert coverage[town] == percent(groups[town]["mean_coverage"])
    assert {c for c, v in compliance.items() if v != "–"} == {town}
    assert "巡查达标率" in page.locator("#legend").inner_text()
    assert "平均覆盖率" in page.locator("#table thead").inner_text()
    # Down to the town's grids: the walkers' grid has the figures, the layer stays chosen.
    page.locator(f"#table tbody tr[data-code='{town}']").click()
    wait_ready(page)
    page.select_option("#level", "grid")
    wait_ready(page)
    assert state(page)["layer"] == "patrols"
    assert cells(page, "patrol_compliance_rate")[grid] == "50.0%"
    assert rendered(page, "patrol_compliance_rate")[grid] == pytest.approx(0.5)
    assert all(r.startswith(base) for r in watch.requests)
