"""Real GDAL (Debian's gdal-bin) against the app under gunicorn: what GIS analysts run.

ogrinfo exits 0 even when it prints errors, so every run is also checked for ERROR lines.
"""

from __future__ import annotations

import json
import re
import shutil
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import geojson_validator
import pytest
import requests
from shapely.geometry import shape
from sqlalchemy import Column, text
from sqlalchemy.orm import Session

from backend import demo
from backend.gis import registry
from tests.conftest import gunicorn

SYNTHETIC_SEED = 4490


def gdal(*args: str) -> subprocess.CompletedProcess[str]:
    tool = shutil.which(args[0])
    if tool is None:
        pytest.fail(f"{args[0]} is missing: scripts/bootstrap.sh installs gdal-bin")
    result = subprocess.run([tool, *args[1:]], capture_output=True, text=True, timeout=300)
    errors = [line for line in (result.stdout + result.stderr).splitlines() if "ERROR" in line]
    assert result.returncode == 0 and not errors, f"{args[0]} failed:\n{result.stderr[-3000:]}"
    return result


@pytest.fixture(scope="module")
def events_committed(engine) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Synthetic events all over Conghua, committed for gunicorn to see, removed afterwards."""
    with Session(engine) as session:
        demo.insert_synthetic_events(session, 300, seed=SYNTHETIC_SEED, prefix="440117")
        session.commit()
    yield
    with engine.begin() as conn:
        conn.execute(
            text("DELETE FROM events WHERE content_hash LIKE :mark"),
            {"mark": f"synthetic:{SYNTHETIC_SEED}:%"},
        )


@pytest.fixture
def header(accounts) -> list[str]:  # type: ignore[no-untyped-def]
    return ["--config", "GDAL_HTTP_HEADERS", f"X-API-Key: {accounts.gis_key}"]


def test_ogrinfo_lists_every_collection(live_server, header, accounts):
    listed = gdal("ogrinfo", *header, "-ro", "-q", f"OAPIF:{live_server}/ogc").stdout
    names = re.findall(r"^\d+: (\w+)", listed, flags=re.M)
    assert names == [c.id for c in registry.collections()]
    # Clients that cannot set headers put the key in the URL; the links carry it on.
    by_query = gdal(
        "ogrinfo", "-ro", "-so", "-al", f"OAPIF:{live_server}/ogc?api_key={accounts.gis_key}"
    ).stdout
    assert "Feature Count: 865" in by_query and "Layer name: events" in by_query


def test_ogr2ogr_copies_grids_and_events_to_a_geopackage(
    live_server, header, engine, events_committed, tmp_path: Path
):
    target = tmp_path / "wangge.gpkg"
    gdal("ogr2ogr", *header, "-f", "GPKG", str(target), f"OAPIF:{live_server}/ogc", "grids", "events")
    with engine.connect() as conn:
        grids = set(
            conn.execute(text("SELECT code FROM areas WHERE level = 'grid' AND valid_to IS NULL")).scalars()
        )
        # The key's scope: town 440117103.
        events = {
            str(i)
            for i in conn.execute(text("SELECT id FROM events WHERE town_code = '440117103'")).scalars()
        }
    copied = sqlite3.connect(target)
    try:
        copied_grids = [row[0] for row in copied.execute("SELECT id FROM grids")]
        copied_events = [row[0] for row in copied.execute("SELECT id FROM events")]
        columns = {row[1] for row in copied.execute("PRAGMA table_info(events)")}
    finally:
        copied.close()
    assert len(copied_grids) == len(grids) == 865 and set(copied_grids) == grids
    assert len(events) > 20
    assert len(copied_events) == len(events) and set(copied_events) == events
    assert {"category", "status", "grid", "description"} <= columns
    assert not {"contacts", "reporter_id"} & columns


def test_geojson_download_reads_in_gdal_and_passes_rfc_7946_validation(live_server, accounts, tmp_path: Path):
    target = tmp_path / "grids.geojson"
    with requests.get(
        f"{live_server}/api/v1/exports/grids.geojson",
        stream=True,
        timeout=60,
        headers=accounts.headers("gis"),
    ) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/geo+json"
        with target.open("wb") as out:
            for chunk in response.iter_content(65536):
                out.write(chunk)
    summary = gdal("ogrinfo", "-ro", "-so", "-al", str(target)).stdout
    assert "Feature Count: 865" in summary and "Multi Polygon" in summary
    assert geojson_validator.validate_structure(str(target), check_crs=True) == {}
    # Every check but precision: 7 decimals (1 cm) is kept on purpose, one more than the
    # validator's taste, as in the rest of the API.
    problematic = [
        c
        for c in geojson_validator.geometry_validation.VALIDATION_CRITERIA["problematic"]
        if c != "excessive_coordinate_precision"
    ]
    results = geojson_validator.validate_geometries(str(target), criteria_problematic=problematic)
    assert results["invalid"] == {} and results["problematic"] == {}, results
    geometries = [
        shape(f["geometry"])
        for f in requests.get(
            f"{live_server}/api/v1/exports/grids.geojson", timeout=60, headers=accounts.headers("gis")
        ).json()["features"]
    ]
    assert all(g.is_valid and all(p.exterior.is_ccw for p in g.geoms) for g in geometries)  # type: ignore[attr-defined]


def test_gdal_types_fields_from_the_described_by_schema(live_server, header):
    def fields(layer: str) -> dict[str, str]:
        summary = gdal("ogrinfo", *header, "-ro", "-so", f"OAPIF:{live_server}/ogc", layer).stdout
        return dict(re.findall(r"^(\w+): (\w+) \(", summary, flags=re.M))

    grids = fields("grids")
    assert grids["valid_to"] == "DateTime" and grids["valid_from"] == "DateTime"
    assert grids["boundary_version"] == "Integer"
    events = fields("events")
    assert events["accuracy_m"] == "Real" and events["occurred_at"] == "DateTime"
    assert events["rework_count"] == "Integer" and events["status"] == "String"


def test_a_connection_url_chooses_the_closure_period(live_server, accounts, tmp_path: Path):
    # QGIS and GDAL keep the query of the connection URL and send it with every request.
    period = "2001-01-01/2001-01-31"
    url = f"OAPIF:{live_server}/ogc?datetime={period}&api_key={accounts.gis_key}"
    target = tmp_path / "closure.json"
    run = gdal("ogr2ogr", "--config", "CPL_DEBUG", "ON", "-f", "GeoJSON", str(target), url, "grid_closure")
    fetched = re.findall(r"HTTP: Fetch\((\S+)\)", run.stderr)
    items = [u for u in fetched if "/collections/grid_closure/items" in u]
    assert items and all(f"datetime={period}" in u.replace("%2F", "/") for u in fetched), fetched
    features = json.loads(target.read_text())["features"]
    # No event is due in January 2001: every grid of the key's town shows nothing due.
    assert len(features) > 10 and all(f["properties"]["due"] == 0 for f in features)
    assert {f["properties"]["code"][:9] for f in features} == {"440117103"}


MANY_SEED = 4491


def _items_requests(log: Path) -> int:
    route = '"route":"/ogc/collections/<string:collection_id>/items"'
    return sum(route in line for line in log.read_text().splitlines())


def test_gdal_copies_thousands_of_events_whole_and_in_few_pages_with_default_options(
    engine, database_url, header, tmp_path: Path
):
    with Session(engine) as session:
        demo.insert_synthetic_events(session, 4000, seed=MANY_SEED, prefix="440117103")
        session.commit()
    copies: dict[str, Any] = {}
    try:
        for name, options in (("default", []), ("pages of 1000", ["-oo", "PAGE_SIZE=1000"])):
            log = tmp_path / f"{len(copies)}.log"
            target = tmp_path / f"{len(copies)}.json"
            with gunicorn(database_url, workers=2, log_path=log) as base:
                started = time.monotonic()
                gdal(
                    "ogr2ogr", *header, *options, "-f", "GeoJSON", str(target), f"OAPIF:{base}/ogc", "events"
                )
                elapsed = time.monotonic() - started
            features = json.loads(target.read_text())["features"]
            copies[name] = ([f["properties"]["id"] for f in features], _items_requests(log), elapsed)
            print(
                f"GDAL ({name}): {len(features)} events in {elapsed:.1f} s, {copies[name][1]} items requests"
            )
        with engine.connect() as conn:
            expected = {
                str(i)
                for i in conn.execute(text("SELECT id FROM events WHERE town_code = '440117103'")).scalars()
            }
    finally:
        with engine.begin() as conn:
            conn.execute(
                text("DELETE FROM events WHERE content_hash LIKE :mark"), {"mark": f"synthetic:{MANY_SEED}:%"}
            )
    assert len(expected) >= 4000
    for copied, _, _ in copies.values():
        assert len(copied) == len(expected) and set(copied) == expected
    # GDAL 3.6 asks for 10 a page (it reads no limit from /ogc/api) but follows the next links,
    # which ask for ten times more each: 10, 100, 1000, 10000, after the 10 it samples first.
    assert copies["default"][1] <= 6
    assert copies["pages of 1000"][1] <= len(expected) // 1000 + 3
    # A few thousand events: well inside the minute that 200,000 take (bench/gis.py).
    assert copies["default"][2] < 60


def _ogr_types(url: str, layer: str, header: list[str]) -> dict[str, str]:
    summary = gdal("ogrinfo", *header, "-ro", "-so", url, layer).stdout
    return dict(re.findall(r"^(\w+): (\w+)(?:\(\w+\))? \(", summary, flags=re.M))


# How GDAL types each PostgreSQL column type (what ogr2ogr from PostGIS itself gives).
OGR_TYPE = {
    "timestamp with time zone": "DateTime",
    "double precision": "Real",
    "integer": "Integer",
    "smallint": "Integer",
    "bigint": "Integer64",
    "boolean": "Integer",  # OFTInteger with the Boolean subtype
    "character varying": "String",
    "text": "String",
    "uuid": "String",
}


def test_gdal_field_types_match_the_database_columns(live_server, header, engine):
    """Every property that is one column of the table is typed by GDAL as the column is."""
    checked = 0
    with engine.connect() as conn:
        for layer, table in (("events", "events"), ("grids", "areas"), ("buildings", "buildings")):
            collection = registry.get(layer)
            assert collection is not None
            columns = dict(
                conn.execute(
                    text(
                        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = :t"
                    ),
                    {"t": table},
                ).all()
            )
            types = _ogr_types(f"OAPIF:{live_server}/ogc", layer, header)
            for prop in collection.properties:
                column = getattr(prop.expr, "__clause_element__", lambda e=prop.expr: e)()
                if not isinstance(column, Column) or column.table.name != table:
                    continue  # computed, or from a joined table
                expected = OGR_TYPE[columns[column.name]]
                if expected == "Integer64":
                    # Ids of boundary versions stay far below 2^31: JSON Schema `integer`.
                    expected = "Integer"
                assert types[prop.name] == expected, (
                    layer,
                    prop.name,
                    columns[column.name],
                    types[prop.name],
                )
                checked += 1
    assert checked > 25


def test_gdal_where_reaches_the_server_as_cql2(live_server, header, engine, events_committed, tmp_path: Path):
    where = (
        "status = 'reported' AND rework_count = 0 AND grid LIKE '440117103%' "
        "AND received_at >= '2025/06/01 00:00:00'"
    )
    target = tmp_path / "where.json"
    run = gdal(
        "ogr2ogr",
        *header,
        "--config",
        "CPL_DEBUG",
        "ON",
        "-where",
        where,
        "-f",
        "GeoJSON",
        str(target),
        f"OAPIF:{live_server}/ogc",
        "events",
    )
    fetched = re.findall(r"HTTP: Fetch\((\S+)\)", run.stderr)
    items = [unquote(u) for u in fetched if "/collections/events/items" in u]
    # The first request samples the layer; every one after it carries the whole filter.
    filtered = [u for u in items if "filter=" in u]
    assert filtered and all("filter-lang=cql-text" in u for u in filtered), items
    assert "status = 'reported'" in filtered[0] and "rework_count = 0" in filtered[0]
    assert "grid LIKE '440117103%'" in filtered[0] and "received_at >= '2025-06-01T00:00:00Z'" in filtered[0]
    assert "evaluated on client side" not in run.stderr and "Only part of the filter" not in run.stderr
    copied = {f["properties"]["id"] for f in json.loads(target.read_text())["features"]}
    with engine.connect() as conn:
        expected = {
            str(i)
            for i in conn.execute(
                text(
                    "SELECT id FROM events WHERE town_code = '440117103' AND status = 'reported' "
                    "AND rework_count = 0 AND grid_code LIKE '440117103%' "
                    "AND received_at >= '2025-06-01T00:00:00Z'"
                )
            ).scalars()
        }
    assert expected and copied == expected


def test_gdal_opens_a_download_by_url(live_server, accounts):
    url = f"{live_server}/api/v1/exports/grids.geojson?api_key={accounts.gis_key}"
    for source in (f"/vsicurl/{url}", url):
        summary = gdal("ogrinfo", "-ro", "-so", "-al", source).stdout
        assert "Feature Count: 865" in summary and "Multi Polygon" in summary, source
        assert re.search(r"^valid_from: DateTime", summary, flags=re.M), summary


def test_gdal_reads_a_signed_events_link_by_vsicurl(live_server, accounts, events_committed, engine):
    minted = requests.post(
        f"{live_server}/api/v1/exports/links",
        json={"layer": "events", "filters": {"area": "440117103"}, "lifetime_s": 600},
        headers=accounts.headers("supervisor"),
        timeout=60,
    )
    assert minted.status_code == 201, minted.text
    url = minted.json()["url"]
    assert "api_key" not in url and "token=" in url
    summary = gdal("ogrinfo", "-ro", "-so", "-al", f"/vsicurl/{url}").stdout
    with engine.connect() as conn:
        count = conn.execute(text("SELECT count(*) FROM events WHERE town_code = '440117103'")).scalar()
    assert f"Feature Count: {count}" in summary and "Point" in summary, summary
    assert re.search(r"^received_at: DateTime", summary, flags=re.M), summary
