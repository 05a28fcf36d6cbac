"""The grid_closure layer gives the figures of /api/v1/stats/closure?group_by=grid, to the bit."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import mapbox_vector_tile
import pytest
from sqlalchemy import text

from backend import history
from backend.auth import service as auth
from tests.conftest import client_as
from tests.gis.test_tiles import tile_url

TOWN = "440117103"  # the supervisor's and the GIS key's town
FIGURES = (
    "due",
    "closed",
    "closed_on_time",
    "closure_rate",
    "meets_benchmark",
    "wilson_low",
    "wilson_high",
    "below_benchmark",
)
EMPTY = {
    "due": 0,
    "closed": 0,
    "closed_on_time": 0,
    "closure_rate": None,
    "meets_benchmark": False,
    "wilson_low": None,
    "wilson_high": None,
    "below_benchmark": False,
}


@pytest.fixture
def seeded(session):  # type: ignore[no-untyped-def]
    """The demo's kind of history over the Conghua tree: about 3,000 events in 200 days ending
    ten days ago, with weak towns and grids, so most grids have a few due events, some none."""
    end = (datetime.now(UTC) - timedelta(days=10)).replace(microsecond=0)
    plan = history.Plan(start=end - timedelta(days=200), end=end, events=3000, seed=17)
    history.load_history(session, plan, points_per_grid=2, analyze=False, bulk=False)
    session.commit()
    return plan


def _stats_by_grid(client, start: datetime, end: datetime) -> dict[str, dict[str, object]]:  # type: ignore[no-untyped-def]
    query = {"area": TOWN, "group_by": "grid", "from": start.isoformat(), "to": end.isoformat()}
    response = client.get("/api/v1/stats/closure", query_string=query)
    assert response.status_code == 200, response.json
    return {
        group["key"]["grid"]: {name: group[name] for name in FIGURES} for group in response.json["groups"]
    }


def _layer_by_grid(features: list[dict[str, object]]) -> dict[str, dict[str, object]]:
    out = {}
    for feature in features:
        properties = feature["properties"]
        assert isinstance(properties, dict)
        out[properties["code"]] = {name: properties[name] for name in FIGURES}
    return out


def test_the_layer_and_the_download_give_the_statistics_figures(app, accounts, seeded):  # type: ignore[no-untyped-def]
    supervisor = client_as(app, accounts, "supervisor")
    start, end = seeded.start + timedelta(days=20), seeded.end - timedelta(days=30)
    period = f"{start.isoformat().replace('+00:00', 'Z')}/{end.isoformat().replace('+00:00', 'Z')}"
    expected = _stats_by_grid(supervisor, start, end)
    assert len(expected) > 50
    assert any(f["below_benchmark"] for f in expected.values())
    assert any(f["closure_rate"] == 1 and not f["below_benchmark"] for f in expected.values())

    items = supervisor.get(f"/ogc/collections/grid_closure/items?datetime={period}&limit=1000")
    assert items.status_code == 200, items.get_data(as_text=True)[:500]
    download = supervisor.get(f"/api/v1/exports/grid_closure.geojson?datetime={period}")
    assert download.status_code == 200
    for layer in (
        _layer_by_grid(items.json["features"]),
        _layer_by_grid(json.loads(download.data)["features"]),
    ):
        assert set(layer) >= set(expected) and all(code.startswith(TOWN) for code in layer)
        for code, figures in layer.items():
            assert figures == expected.get(code, EMPTY), code


def test_grid_tiles_colour_by_the_same_figures(app, accounts, session, seeded):  # type: ignore[no-untyped-def]
    gis = client_as(app, accounts, "gis")
    # The tiles show the default period, the last 365 days: it holds the whole history.
    now = datetime.now(UTC)
    expected = _stats_by_grid(gis, now - timedelta(days=365), now)
    response = gis.get(tile_url(session, "grid_closure", f"{TOWN}001001", zoom=11))
    assert response.status_code == 200
    features = mapbox_vector_tile.decode(response.get_data())["grid_closure"]["features"]
    shown = {f["properties"]["code"]: f["properties"] for f in features}
    assert len(set(shown) & set(expected)) > 10 and all(code.startswith(TOWN) for code in shown)
    for code, properties in shown.items():
        want = expected.get(code, EMPTY)
        assert properties["due"] == want["due"], code
        assert properties["below_benchmark"] == want["below_benchmark"], code
        assert properties.get("closure_rate") == want["closure_rate"], code


@pytest.mark.parametrize(
    "who", ["admin", "supervisor", "village_supervisor", "worker", "gis", "other_supervisor"]
)
def test_the_layer_shows_the_grids_whose_figures_the_caller_may_read(app, accounts, session, who):  # type: ignore[no-untyped-def]
    if who == "gis":
        actor = auth.actor_from_api_key(session, accounts.gis_key)
    else:
        actor = auth.actor_from_access_token(session, app.config["SETTINGS"], accounts.tokens[who])
    grids = session.execute(
        text("SELECT code FROM areas WHERE level = 'grid' AND valid_to IS NULL")
    ).scalars()
    expected = {code for code in grids if actor.reads_area(code)}
    response = client_as(app, accounts, who).get("/ogc/collections/grid_closure/items?limit=10000")
    assert response.status_code == 200
    assert {f["id"] for f in response.json["features"]} == expected and expected
