"""GIS benchmark: whole layers as GeoJSON and vector tiles at Guangzhou scale.

    .venv/bin/python -m bench.gis [--rounds N]

Its own database (`wangge_bench_gis` in the private cluster) holds the generated Guangzhou tree
(19,660 grids) and 100,000 synthetic events. For each layer it times
- Wangge's streamed download (/api/v1/exports/{layer}.geojson): time to first byte and total;
- Wangge's OGC API items, paged with limit=10000 by following `next` links;
- ogr2ogr reading the same rows from PostGIS directly into RFC 7946 GeoJSON (the ceiling);
- pygeoapi (in its own virtualenv under var/, installed from PyPI) serving the same rows through
  its PostgreSQL provider, paged with limit=10000;
- tipg (PostGIS OGC Features and Tiles, in its own virtualenv under var/ too), paged with
  limit=10000;
- GDAL's OAPIF driver copying the events from Wangge's /ogc with its default options;
and vector tiles at zooms 8, 12 and 15 over central Guangzhou from Wangge and tipg: p50/p95
times and the p95 and largest sizes. ogr2ogr, pygeoapi and tipg read views holding exactly the
rows and columns Wangge sends. Wangge and pygeoapi run under gunicorn, tipg under uvicorn, on
loopback with two workers each. Each timing is the median of `--rounds` runs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import requests
from sqlalchemy import create_engine, make_url, select, text
from sqlalchemy.orm import Session

from backend.auth import service as auth
from backend.auth.models import User
from backend.config import ROOT, Settings
from bench import datasets
from bench.common import database_url, free_port, percentile
from geo.tiles import tile_of

DATABASE = "wangge_bench_gis"
EVENTS = 100_000
GRIDS = 19_660
OUT = ROOT / "bench" / "out"
WORK = ROOT / "var" / "bench-gis"
PYGEOAPI_VENV = ROOT / "var" / "pygeoapi-venv"
PYGEOAPI_PACKAGES = ["pygeoapi==0.21.0", "psycopg2-binary", "geoalchemy2", "gunicorn"]
TIPG_VENV = ROOT / "var" / "tipg-venv"
TIPG_PACKAGES = ["tipg==1.6.1", "uvicorn==0.55.0"]
CENTRE = (113.26, 23.13)  # central Guangzhou (越秀/天河)
TILE_ZOOM = 12
TILE_ZOOMS = (8, 12, 15)
TILE_SPAN = 2  # tiles each side of the centre tile: a 5 x 5 block
PAGE = 10_000
GOAL_RATIO = 0.7
GOAL_TILE_MS = 30.0
GOAL_TILE_BYTES = 500_000
# The columns each layer's tiles carry in Wangge (tipg is asked for the same).
TILE_PROPERTIES = {"grids": "code,name,level,kind", "events": "id,category,status,grid"}

VIEWS = [
    """CREATE OR REPLACE VIEW bench_grids AS
       SELECT code, name, level, parent_code AS parent, kind, id AS boundary_version,
              valid_from, valid_to, geom
       FROM areas WHERE level = 'grid' AND valid_to IS NULL""",
    """CREATE OR REPLACE VIEW bench_events AS
       SELECT e.id, e.category_code AS category, c.name_zh AS category_name,
              CASE WHEN c.sensitive THEN NULL ELSE e.description END AS description, e.status,
              e.occurred_at, e.received_at, e.accuracy_m, e.grid_code AS grid,
              e.village_code AS village, e.town_code AS town, e.district_code AS district,
              e.assignment, e.responsible_code AS responsible_area, e.due_at, e.accepted_at,
              e.resolved_at, e.closed_at, e.rework_count, e.version, e.updated_at, e.location
       FROM events e JOIN categories c ON c.code = e.category_code""",
]
LAYERS = {
    "grids": ("bench_grids", "code", "geom", GRIDS),
    "events": ("bench_events", "id", "location", EVENTS),
}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def prepare(url: str) -> str:
    """Load the data once, (re)make the views; return an administrator's access token."""
    settings = Settings(database_url=url, access_token_minutes=240)
    datasets.guangzhou(url, settings.data_dir, events=EVENTS, log=log)
    engine = create_engine(url)
    with engine.begin() as conn:
        for view in VIEWS:
            conn.execute(text(view))
    with Session(engine) as session:
        if session.scalars(select(User).where(User.username == "bench-admin")).first() is None:
            auth.create_user(
                session,
                settings,
                username="bench-admin",
                password="bench-admin-password",
                display_name="bench",
                role="admin",
            )
        token = auth.login(session, settings, "bench-admin", "bench-admin-password").access_token
        session.commit()
    engine.dispose()
    return token


@contextmanager
def serve(
    command: list[str],
    env: dict[str, str],
    probe: str,
    port: int | None = None,
    bind: list[str] | None = None,
) -> Iterator[str]:
    """Run a server on a free loopback port until the block ends; yield its base URL."""
    port = port or free_port()
    # The server's log goes to a file: a pipe nobody reads fills up (a line per request) and
    # stalls the server.
    log = tempfile.TemporaryFile()
    process = subprocess.Popen(
        [*command[:1], *(bind or ["-b", f"127.0.0.1:{port}"]), *command[1:]],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if requests.get(base + probe, timeout=10).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                log.seek(0)
                raise RuntimeError(f"{command[0]} did not start: " + log.read().decode()[-3000:])
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)
        log.close()


GUNICORN = ["-w", "2", "--worker-class", "gthread", "--threads", "4", "--log-level", "warning"]


def wangge(url: str) -> AbstractContextManager[str]:
    return serve(
        [str(ROOT / ".venv" / "bin" / "gunicorn"), *GUNICORN, "backend.wsgi:app"],
        {"DATABASE_URL": url, "WANGGE_POOL_SIZE": "4"},
        "/healthz",
    )


# --- pygeoapi ---------------------------------------------------------------------------------


def install(venv: Path, packages: list[str], module: str) -> str:
    """Install a peer in its own virtualenv once; return its version."""
    python = venv / "bin" / "python"
    version = [str(python), "-c", f"import {module}; print({module}.__version__)"]
    if not python.exists() or subprocess.run(version, capture_output=True).returncode != 0:
        log(f"installing {module} into {venv.relative_to(ROOT)} (once) ...")
        subprocess.run([shutil.which("python3") or sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *packages], check=True
        )
    return subprocess.run(version, check=True, capture_output=True, text=True).stdout.strip()


def install_pygeoapi() -> str:
    return install(PYGEOAPI_VENV, PYGEOAPI_PACKAGES, "pygeoapi")


def install_tipg() -> str:
    return install(TIPG_VENV, TIPG_PACKAGES, "tipg")


def pygeoapi_config(url: str, base: str) -> dict[str, object]:
    parts = make_url(url)
    data = {
        "host": parts.host,
        "port": parts.port,
        "dbname": parts.database,
        "user": parts.username,
        "password": parts.password or "",
        "search_path": ["public"],
    }

    def resource(name: str) -> dict[str, object]:
        view, id_field, geometry, _ = LAYERS[name]
        return {
            "type": "collection",
            "title": name,
            "description": f"Wangge {name}",
            "keywords": [name],
            "extents": {
                "spatial": {
                    "bbox": [112.9, 22.5, 114.1, 23.95],
                    "crs": "http://www.opengis.net/def/crs/OGC/1.3/CRS84",
                }
            },
            "providers": [
                {
                    "type": "feature",
                    "name": "PostgreSQL",
                    "data": data,
                    "id_field": id_field,
                    "table": view,
                    "geom_field": geometry,
                }
            ],
        }

    return {
        "server": {
            "bind": {"host": "127.0.0.1", "port": 0},
            "url": base,
            "mimetype": "application/json; charset=UTF-8",
            "encoding": "utf-8",
            "language": "en-US",
            "pretty_print": False,
            "limits": {"default_items": 100, "max_items": PAGE},
            "map": {"url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png", "attribution": "OpenStreetMap"},
        },
        "logging": {"level": "ERROR"},
        "metadata": {
            "identification": {
                "title": "Wangge benchmark",
                "description": "bench",
                "keywords": ["bench"],
                "url": base,
                "terms_of_service": "https://creativecommons.org/licenses/by/4.0/",
            },
            "license": {"name": "CC-BY 4.0", "url": "https://creativecommons.org/licenses/by/4.0/"},
            "provider": {"name": "bench", "url": base},
            "contact": {"name": "bench"},
        },
        "resources": {name: resource(name) for name in LAYERS},
    }


@contextmanager
def pygeoapi(url: str) -> Iterator[str]:
    WORK.mkdir(parents=True, exist_ok=True)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    config, openapi = WORK / "pygeoapi.yml", WORK / "pygeoapi-openapi.yml"
    config.write_text(json.dumps(pygeoapi_config(url, base), indent=1))  # JSON is YAML
    bin_dir = PYGEOAPI_VENV / "bin"
    env = {"PYGEOAPI_CONFIG": str(config), "PYGEOAPI_OPENAPI": str(openapi)}
    subprocess.run(
        [str(bin_dir / "pygeoapi"), "openapi", "generate", str(config), "--output-file", str(openapi)],
        check=True,
        env={**os.environ, **env},
        capture_output=True,
    )
    process = subprocess.Popen(
        [str(bin_dir / "gunicorn"), "-b", f"127.0.0.1:{port}", *GUNICORN, "pygeoapi.flask_app:APP"],
        cwd=WORK,
        env={**os.environ, **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 90
    try:
        while True:
            try:
                if requests.get(base + "/collections?f=json", timeout=10).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                error = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError("pygeoapi did not start: " + error[-3000:])
            time.sleep(0.3)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=20)


# --- tipg -------------------------------------------------------------------------------------


@contextmanager
def tipg(url: str) -> Iterator[str]:
    """tipg under uvicorn with two workers, serving the two views (collections
    `public.bench_grids` and `public.bench_events`)."""
    parts = make_url(url)
    dsn = parts.set(drivername="postgresql").render_as_string(hide_password=False)
    env = {
        "DATABASE_URL": dsn,
        "TIPG_DB_SCHEMAS": '["public"]',
        "TIPG_DB_TABLES": json.dumps([f"public.{view}" for view, *_ in LAYERS.values()]),
        "TIPG_TABLE_CONFIG__public_bench_grids__PK": "code",
        "TIPG_TABLE_CONFIG__public_bench_events__PK": "id",
        "TIPG_MAX_FEATURES_PER_QUERY": str(PAGE),
        "TIPG_DB_MAX_CONN_SIZE": "4",
    }
    port = free_port()
    WORK.mkdir(parents=True, exist_ok=True)
    with serve(
        [str(TIPG_VENV / "bin" / "uvicorn"), "--workers", "2", "--log-level", "warning", "tipg.main:app"],
        env,
        "/collections",
        port=port,
        bind=["--host", "127.0.0.1", "--port", str(port)],
    ) as base:
        yield base


# --- timings ----------------------------------------------------------------------------------


@dataclass
class Timing:
    ttfb: float
    total: float
    features: int
    size: int = 0


def download(http: requests.Session, url: str, headers: dict[str, str]) -> Timing:
    """One streamed GET: time to the first body byte and to the last."""
    started = time.perf_counter()
    first = None
    chunks = []
    with http.get(url, headers=headers, stream=True, timeout=600) as response:
        response.raise_for_status()
        for chunk in response.iter_content(1 << 16):
            if first is None:
                first = time.perf_counter() - started
            chunks.append(chunk)
    total = time.perf_counter() - started
    body = b"".join(chunks)
    return Timing(first or total, total, len(json.loads(body)["features"]), len(body))


def paged(http: requests.Session, url: str, headers: dict[str, str]) -> Timing:
    """Follow `next` links from the first page to the last, parsing each page as a client does."""
    started = time.perf_counter()
    first = None
    features = size = 0
    next_url: str | None = url
    while next_url:
        response = http.get(next_url, headers=headers, timeout=600)
        response.raise_for_status()
        if first is None:
            first = time.perf_counter() - started
        page = response.json()
        features += len(page["features"])
        size += len(response.content)
        links = [link["href"] for link in page.get("links", []) if link.get("rel") == "next"]
        next_url = links[0] if links and page["features"] else None
    total = time.perf_counter() - started
    return Timing(first or total, total, features, size)


def ogr2ogr(url: str, view: str) -> Timing:
    parts = make_url(url)
    connection = (
        f"PG:host={parts.host} port={parts.port} dbname={parts.database} user={parts.username} tables={view}"
    )
    started = time.perf_counter()
    result = subprocess.run(
        ["ogr2ogr", "-f", "GeoJSON", "-lco", "RFC7946=YES", "/vsistdout/", connection, view],
        capture_output=True,
        check=True,
    )
    total = time.perf_counter() - started
    if b"ERROR" in result.stderr:
        raise RuntimeError(result.stderr.decode()[-2000:])
    return Timing(total, total, len(json.loads(result.stdout)["features"]), len(result.stdout))


def median(runs: Callable[[], Timing], rounds: int, expect: int) -> Timing:
    timings = [runs() for _ in range(rounds)]
    for timing in timings:
        if timing.features != expect:
            raise RuntimeError(f"expected {expect} features, got {timing.features}")
    return Timing(
        statistics.median(t.ttfb for t in timings),
        statistics.median(t.total for t in timings),
        expect,
        timings[0].size,
    )


def request_floor(http: requests.Session, base: str, headers: dict[str, str], count: int) -> list[float]:
    """Times of the cheapest signed-in request (GET /api/v1/me): the server's floor right now."""
    times = []
    for _ in range(count):
        started = time.perf_counter()
        http.get(f"{base}/api/v1/me", headers=headers, timeout=60).raise_for_status()
        times.append((time.perf_counter() - started) * 1000)
    return times


@dataclass
class Tiles:
    """One server's tiles of one layer at one zoom: request times (ms) and body sizes (bytes)."""

    times: list[float]
    sizes: list[int]
    empty: int


def tile_times(
    http: requests.Session,
    url: Callable[[int, int, int], str],
    zoom: int,
    headers: dict[str, str],
    rounds: int,
) -> Tiles:
    """A 5 x 5 block of tiles around the centre at `zoom`, `rounds` times after a warm-up
    round; sizes as sent to a client taking gzip (both servers compress tiles)."""
    cx, cy = tile_of(*CENTRE, zoom)
    block = [
        (cx + dx, cy + dy)
        for dy in range(-TILE_SPAN, TILE_SPAN + 1)
        for dx in range(-TILE_SPAN, TILE_SPAN + 1)
    ]
    result = Tiles([], [], 0)
    for round_ in range(rounds + 1):
        for x, y in block:
            started = time.perf_counter()
            response = http.get(url(zoom, x, y), headers=headers, timeout=60)
            elapsed = time.perf_counter() - started
            if response.status_code not in (200, 204):
                raise RuntimeError(f"tile {zoom}/{x}/{y}: {response.status_code} {response.text[:300]}")
            if round_:  # the first round warms the caches and is not counted
                result.times.append(elapsed * 1000)
                # The decoded body: the tile's own size (what the 500 kB promise is about).
                result.sizes.append(len(response.content))
                result.empty += response.status_code == 204 or not response.content
    return result


def gdal_default_copy(base: str, token: str, expect: int) -> Timing:
    """ogr2ogr copying the events from /ogc with GDAL's default options (its page size: 10)."""
    started = time.perf_counter()
    result = subprocess.run(
        [
            "ogr2ogr",
            "--config",
            "GDAL_HTTP_HEADERS",
            f"Authorization: Bearer {token}",
            "-f",
            "GeoJSON",
            "/vsistdout/",
            f"OAPIF:{base}/ogc",
            "events",
        ],
        capture_output=True,
        check=True,
    )
    total = time.perf_counter() - started
    if b"ERROR" in result.stderr:
        raise RuntimeError(result.stderr.decode()[-2000:])
    timing = Timing(total, total, len(json.loads(result.stdout)["features"]), len(result.stdout))
    if timing.features != expect:
        raise RuntimeError(f"GDAL copied {timing.features} events, not {expect}")
    return timing


# --- the table --------------------------------------------------------------------------------


@dataclass
class Row:
    layer: str
    features: int
    export: Timing
    ogc: Timing
    ogr: Timing
    peers: dict[str, Timing | None]
    notes: list[str] = field(default_factory=list)


PEERS = ("pygeoapi", "tipg")


def rate(timing: Timing | None) -> str:
    return f"{timing.features / timing.total:>9,.0f}/s" if timing else f"{'n/a':>11}"


def seconds(value: float | None) -> str:
    return f"{value:7.2f} s" if value is not None else f"{'n/a':>9}"


def report(
    rows: list[Row],
    tiles: dict[tuple[str, int, str], Tiles],
    floor: list[float],
    gdal_copy: Timing | None,
    meta: str,
) -> str:
    lines = [meta, ""]
    lines.append(
        f"{'layer':<7} {'features':>8} | {'export TTFB':>11} {'total':>9} {'rate':>11} | "
        f"{'OGC total':>9} {'rate':>11} | {'ogr2ogr':>9} {'rate':>11} | "
        + " | ".join(f"{peer:>9} {'rate':>11}" for peer in PEERS)
        + f" | {'export/ogr':>10} {'OGC/ogr':>8} "
        + " ".join(f"{'x ' + peer:>10}" for peer in PEERS)
    )
    goals = []
    for row in rows:
        export_ratio = row.ogr.total / row.export.total
        ogc_ratio = row.ogr.total / row.ogc.total
        speedups = []
        for peer in PEERS:
            timing = row.peers.get(peer)
            speedups.append(
                f"{timing.total / row.export.total:5.1f}/{timing.total / row.ogc.total:.1f}"
                if timing
                else "n/a"
            )
        lines.append(
            f"{row.layer:<7} {row.features:>8,} | {seconds(row.export.ttfb):>11} "
            f"{seconds(row.export.total)} {rate(row.export)} | {seconds(row.ogc.total)} "
            f"{rate(row.ogc)} | {seconds(row.ogr.total)} {rate(row.ogr)} | "
            + " | ".join(
                f"{seconds(t.total if t else None)} {rate(t)}" for t in (row.peers.get(p) for p in PEERS)
            )
            + f" | {export_ratio:>10.2f} {ogc_ratio:>8.2f} "
            + " ".join(f"{speedup:>10}" for speedup in speedups)
        )
        goals.append(
            (
                f"{row.layer}: export rate >= {GOAL_RATIO} x ogr2ogr",
                export_ratio >= GOAL_RATIO,
                f"{export_ratio:.2f}",
            )
        )
        for peer in PEERS:
            timing = row.peers.get(peer)
            if timing:
                goals.append(
                    (
                        f"{row.layer}: export and OGC paging faster than {peer}",
                        row.export.total < timing.total and row.ogc.total < timing.total,
                        f"{timing.total / row.export.total:.1f}x and {timing.total / row.ogc.total:.1f}x",
                    )
                )
            else:
                goals.append((f"{row.layer}: faster than {peer}", False, f"{peer} not run"))
    lines.append("")
    lines.append(
        "rates are features per second; export/ogr and OGC/ogr are fractions of the "
        "ogr2ogr rate; x peer: how many times faster Wangge is (export/OGC)"
    )
    if gdal_copy:
        lines.append("")
        lines.append(
            f"GDAL OAPIF, default options (page size 10), events from /ogc: {gdal_copy.features:,} in "
            f"{gdal_copy.total:.1f} s ({rate(gdal_copy).strip()})"
        )
        goals.append(
            ("GDAL default copy of the events under 60 s", gdal_copy.total < 60, f"{gdal_copy.total:.1f} s")
        )
    lines.append("")
    cx, cy = tile_of(*CENTRE, TILE_ZOOM)
    lines.append(
        f"tiles: {2 * TILE_SPAN + 1}x{2 * TILE_SPAN + 1} blocks around ({CENTRE[0]}, {CENTRE[1]}) "
        f"at each zoom; sizes uncompressed"
    )
    lines.append(
        f"  {'layer':<7} {'zoom':>4} {'server':<7} {'requests':>8} {'p50 ms':>7} {'p95 ms':>7} "
        f"{'p95 KiB':>8} {'max KiB':>8} {'empty':>5}"
    )
    for (layer, zoom, server), result in tiles.items():
        p50, p95 = percentile(result.times, 0.5), percentile(result.times, 0.95)
        size95 = percentile([float(n) for n in result.sizes], 0.95) / 1024
        largest = max(result.sizes) / 1024
        lines.append(
            f"  {layer:<7} {zoom:>4} {server:<7} {len(result.times):>8} {p50:>7.1f} {p95:>7.1f} "
            f"{size95:>8.1f} {largest:>8.1f} {result.empty:>5}"
        )
        if server != "wangge":
            continue
        if zoom == TILE_ZOOM:
            goals.append(
                (f"tiles {layer} z{zoom}: p95 < {GOAL_TILE_MS:.0f} ms", p95 < GOAL_TILE_MS, f"{p95:.1f} ms")
            )
        goals.append(
            (
                f"tiles {layer} z{zoom}: none over {GOAL_TILE_BYTES // 1000} kB",
                max(result.sizes) <= GOAL_TILE_BYTES,
                f"largest {largest:.0f} KiB",
            )
        )
    lines.append(
        f"  floor: GET /api/v1/me (sign-in only) p50 {percentile(floor, 0.5):6.1f} ms  "
        f"p95 {percentile(floor, 0.95):6.1f} ms"
    )
    lines.append("")
    for name, ok, value in goals:
        lines.append(f"  {'PASS' if ok else 'MISS'}  {name} ({value})")
    for row in rows:
        lines += [f"  note: {note}" for note in row.notes]
    return "\n".join(lines)


def _peer(
    name: str,
    start: Callable[[str], AbstractContextManager[str]],
    url: str,
    items: Callable[[str, str], str],
    http: requests.Session,
    rounds: int,
    found: dict[str, dict[str, Timing | None]],
    notes: list[str],
    tiles: Callable[[str], None] | None = None,
) -> None:
    """Time one peer's paging of each layer (and, when given, its tiles)."""
    try:
        with start(url) as base:
            for layer, (_, _, _, expect) in LAYERS.items() if rounds else ():
                log(f"{layer}: {name} paging ...")
                page_url = items(base, layer)
                found[layer][name] = median(partial(paged, http, page_url, {}), rounds, expect)
            if tiles:
                tiles(base)
    except (RuntimeError, subprocess.CalledProcessError, requests.RequestException) as error:
        notes.append(f"{name} failed: {str(error)[:500]}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--tile-rounds", type=int, default=4)
    parser.add_argument("--tiles-only", action="store_true", help="time the tiles alone")
    args = parser.parse_args(argv)

    url = database_url(DATABASE)
    token = prepare(url)
    headers = {"Authorization": f"Bearer {token}"}
    notes: list[str] = []
    versions: dict[str, str | None] = {}
    for peer, installer in (("pygeoapi", install_pygeoapi), ("tipg", install_tipg)):
        try:
            versions[peer] = installer()
        except (subprocess.CalledProcessError, OSError) as error:
            versions[peer] = None
            notes.append(f"{peer} could not be installed: {error}")
    gdal = subprocess.run(["ogr2ogr", "--version"], capture_output=True, text=True).stdout.strip()
    rows: list[Row] = []
    tiles: dict[tuple[str, int, str], Tiles] = {}
    http = requests.Session()
    gdal_copy = None
    with wangge(url) as base:
        timings = {}
        for layer, (view, _, _, expect) in LAYERS.items():
            if args.tiles_only:
                break
            log(f"{layer}: wangge export, OGC paging, ogr2ogr ...")
            export_url = f"{base}/api/v1/exports/{layer}.geojson"
            ogc_url = f"{base}/ogc/collections/{layer}/items?limit={PAGE}"
            export = median(partial(download, http, export_url, headers), args.rounds, expect)
            ogc = median(partial(paged, http, ogc_url, headers), args.rounds, expect)
            ogr = median(partial(ogr2ogr, url, view), args.rounds, expect)
            timings[layer] = (export, ogc, ogr, expect)
        if not args.tiles_only:
            log("events: GDAL with default options ...")
            gdal_copy = gdal_default_copy(base, token, LAYERS["events"][3])
        for layer in LAYERS:
            for zoom in TILE_ZOOMS:
                log(f"tiles {layer} z{zoom} ...")
                tiles[(layer, zoom, "wangge")] = tile_times(
                    http,
                    partial("{}/tiles/{}/{}/{}/{}.mvt".format, base, layer),
                    zoom,
                    headers,
                    args.tile_rounds,
                )
        floor = request_floor(http, base, headers, 25 * args.tile_rounds)
    found: dict[str, dict[str, Timing | None]] = {layer: dict.fromkeys(PEERS) for layer in LAYERS}

    def tipg_tiles(peer: str) -> None:
        for layer, (view, *_) in LAYERS.items():
            for zoom in TILE_ZOOMS:
                log(f"tiles {layer} z{zoom} (tipg) ...")
                tiles[(layer, zoom, "tipg")] = tile_times(
                    http,
                    partial(
                        "{peer}/collections/public.{view}/tiles/WebMercatorQuad/{}/{}/{}?properties={properties}".format,
                        peer=peer,
                        view=view,
                        properties=TILE_PROPERTIES[layer],
                    ),
                    zoom,
                    {},
                    args.tile_rounds,
                )

    if versions["pygeoapi"] and not args.tiles_only:
        _peer(
            "pygeoapi",
            pygeoapi,
            url,
            lambda b, layer: f"{b}/collections/{layer}/items?f=json&limit={PAGE}",
            http,
            args.rounds,
            found,
            notes,
        )
    if versions["tipg"]:
        _peer(
            "tipg",
            tipg,
            url,
            lambda b, layer: f"{b}/collections/public.{LAYERS[layer][0]}/items?f=geojson&limit={PAGE}",
            http,
            0 if args.tiles_only else args.rounds,
            found,
            notes,
            tipg_tiles,
        )
    for layer, (export, ogc, ogr, expect) in timings.items():
        rows.append(Row(layer, expect, export, ogc, ogr, found[layer]))
    if rows:
        rows[0].notes += notes
    postgis = create_engine(url).connect().execute(text("SELECT postgis_lib_version()")).scalar()
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    meta = (
        f"Wangge GIS benchmark: {os.cpu_count()} cores (load average {load}), Python "
        f"{platform.python_version()}, PostGIS {postgis}, {gdal}, pygeoapi "
        f"{versions['pygeoapi'] or 'n/a'}, tipg {versions['tipg'] or 'n/a'}; median of {args.rounds} runs"
    )
    table = report(rows, tiles, floor, gdal_copy, meta)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / ("gis-tiles.txt" if args.tiles_only else "gis.txt")).write_text(table + "\n", encoding="utf-8")
    print(table)
    if notes and not rows:
        print("\n".join(f"  note: {note}" for note in notes))


if __name__ == "__main__":
    main()
