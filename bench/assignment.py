"""Benchmark assigning points to grids: the service, the HTTP endpoint, raw SQL and set-based SQL.

Run from the project root: `.venv/bin/python -m bench.assignment` (or `make bench`). Uses
BENCH_DATABASE_URL, else the `wangge_bench` database of the private cluster, and loads the
Guangzhou-scale tree (19,660 grids) into it the first time. Events posted over HTTP stay there.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import uuid
from collections import Counter
from dataclasses import dataclass
from typing import Any

import psycopg
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session

from bench.common import (
    LoadResult,
    RequestMaker,
    Stopwatch,
    bench_access_token,
    bench_database_url,
    drive_http,
    format_table,
    gunicorn,
    libpq_url,
    log,
    machine,
    prepare_bench_database,
    rate,
    server_cpu_probe,
)

SEED = 42
OUTSIDE_SHARE = 0.05
METRES_PER_DEGREE = 111_320.0
GOAL_SERVICE_VS_RAW = 0.5
GOAL_REPORTS_PER_SECOND = 300.0

# Candidates for a 2-core machine; the fastest one is kept for the timed run. gthread workers
# keep their keep-alive connections, and without --reuse-port the first to accept takes them
# all: one process (one core, by the GIL) would serve every client while the others idle.
GUNICORN_CONFIGS = (
    "--worker-class gthread -w 3 --threads 2 --reuse-port",
    "--worker-class gthread -w 4 --threads 2 --reuse-port",
    "--worker-class gthread -w 2 --threads 4 --reuse-port",
    "--worker-class sync -w 4",
)

RAW_COVERING_GRID = (
    "SELECT id, code FROM areas WHERE level = 'grid' AND valid_to IS NULL"
    " AND ST_Covers(geom, ST_SetSRID(ST_MakePoint(%s, %s), 4326)) ORDER BY code LIMIT 1"
)

SET_DEFAULT = (
    "SELECT p.id, g.code FROM bench_points p JOIN areas g ON ST_Covers(g.geom, p.geom)"
    " WHERE g.level = 'grid' AND g.valid_to IS NULL"
)

# OFFSET 0 keeps the planner from pulling a LATERAL subquery up into a plain join (which would
# give it the default plan back), so these two fix who drives: each grid polygon probes the
# points' GiST index, or each point probes the grids' GiST index (what assign_point does).
SET_LATERAL = (
    "SELECT p.id, g.code FROM areas g"
    " CROSS JOIN LATERAL ("
    "   SELECT p.id FROM bench_points p WHERE ST_Covers(g.geom, p.geom) OFFSET 0"
    " ) p"
    " WHERE g.level = 'grid' AND g.valid_to IS NULL"
)
SET_BY_POINT = (
    "SELECT p.id, g.code FROM bench_points p"
    " CROSS JOIN LATERAL ("
    "   SELECT g.code FROM areas g WHERE g.level = 'grid' AND g.valid_to IS NULL"
    "   AND ST_Covers(g.geom, p.geom) OFFSET 0"
    " ) g"
)
SET_PLANS = (
    ("d-default", "set join, the planner's plan", SET_DEFAULT),
    ("d-lateral", "set join, polygon-driven LATERAL", SET_LATERAL),
    ("d-by-point", "set join, point-driven LATERAL", SET_BY_POINT),
)


# --- test points ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Points:
    """WGS84 test points and the grid each was drawn inside (None: drawn outside the city)."""

    xy: list[tuple[float, float]]
    drawn_in: list[str | None]

    def __len__(self) -> int:
        return len(self.xy)


class PointMaker:
    """Draw points inside random grids, and a few just outside the city or anywhere around it."""

    def __init__(self, session: Session) -> None:
        rows = session.execute(
            text(
                "SELECT code, ST_AsBinary(geom) FROM areas"
                " WHERE level = 'grid' AND valid_to IS NULL ORDER BY code"
            )
        ).all()
        self.codes = [row[0] for row in rows]
        self.grids = shapely.from_wkb([bytes(row[1]) for row in rows])
        shapely.prepare(self.grids)
        self.bounds = shapely.bounds(self.grids).tolist()
        city_wkb = session.scalar(
            text(
                "SELECT ST_AsBinary(ST_Union(geom)) FROM areas WHERE level = 'district' AND valid_to IS NULL"
            )
        )
        self.city = shapely.from_wkb(bytes(city_wkb))
        shapely.prepare(self.city)
        self.city_edge: Any = self.city.boundary
        minx, miny, maxx, maxy = self.city.bounds
        self.around = (minx - 0.05, miny - 0.05, maxx + 0.05, maxy + 0.05)

    def make(self, n: int, rng: random.Random) -> Points:
        outside = round(n * OUTSIDE_SHARE)
        drawn: list[tuple[tuple[float, float], str | None]] = [self._inside(rng) for _ in range(n - outside)]
        drawn += [(self._outside(rng, near_edge=k % 2 == 0), None) for k in range(outside)]
        rng.shuffle(drawn)
        return Points([xy for xy, _ in drawn], [code for _, code in drawn])

    def _inside(self, rng: random.Random) -> tuple[tuple[float, float], str]:
        i = rng.randrange(len(self.codes))
        grid = self.grids[i]
        minx, miny, maxx, maxy = self.bounds[i]
        for _ in range(100):
            x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if shapely.contains_xy(grid, x, y):
                return (x, y), self.codes[i]
        point = shapely.point_on_surface(grid)
        return (point.x, point.y), self.codes[i]

    def _outside(self, rng: random.Random, *, near_edge: bool) -> tuple[float, float]:
        while True:
            if near_edge:  # 5 to 300 m beyond the city's edge
                edge: Any = shapely.line_interpolate_point(self.city_edge, rng.random(), normalized=True)
                distance, angle = rng.uniform(5, 300), rng.uniform(0, 2 * math.pi)
                x = edge.x + distance * math.cos(angle) / (METRES_PER_DEGREE * math.cos(math.radians(edge.y)))
                y = edge.y + distance * math.sin(angle) / METRES_PER_DEGREE
            else:
                minx, miny, maxx, maxy = self.around
                x, y = rng.uniform(minx, maxx), rng.uniform(miny, maxy)
            if not shapely.intersects_xy(self.city, x, y):
                return x, y


# --- the measurements -------------------------------------------------------------------------


@dataclass(frozen=True)
class Measure:
    row: str
    what: str
    count: int
    seconds: float
    note: str = ""

    @property
    def per_second(self) -> float:
        return rate(self.count, self.seconds)


def measure_point_lookups(url: str, points: Points, rounds: int) -> tuple[Measure, Measure, str]:
    """(a) assign_point per point on one plain Session and (c) the raw prepared query per point.

    The two alternate for `rounds` rounds and each keeps its best, so a busy moment on a shared
    machine does not land on one side only.
    """
    from backend.areas.service import Assignment, assign_point
    from backend.db import make_engine

    def service_pass() -> list[Assignment]:
        return [
            assign_point(session, lon, lat, accuracy_m=None, nearest_min_m=50.0) for lon, lat in points.xy
        ]

    def raw_pass() -> list[str | None]:
        codes: list[str | None] = []
        for lon, lat in points.xy:
            cur.execute(RAW_COVERING_GRID, (lon, lat), prepare=True)
            row = cur.fetchone()
            codes.append(row[1] if row else None)
        return codes

    engine = make_engine(url)
    try:
        with Session(engine) as session, psycopg.connect(libpq_url(url)) as conn:
            cur = conn.cursor()
            for lon, lat in points.xy[:50]:  # connect, and let psycopg prepare the statements
                assign_point(session, lon, lat, accuracy_m=None, nearest_min_m=50.0)
                cur.execute(RAW_COVERING_GRID, (lon, lat), prepare=True)
                cur.fetchone()
            service_best = raw_best = math.inf
            for _ in range(rounds):
                with Stopwatch() as watch:
                    found = service_pass()
                service_best = min(service_best, watch.seconds)
                with Stopwatch() as watch:
                    codes = raw_pass()
                raw_best = min(raw_best, watch.seconds)
            session.rollback()
            conn.rollback()
    finally:
        engine.dispose()
    methods = Counter(a.method for a in found)
    service = Measure(
        "a",
        "assign_point(), SQLAlchemy Session",
        len(points),
        service_best,
        ", ".join(f"{m} {n:,}" for m, n in methods.most_common()) + f"; best of {rounds}",
    )
    hits = sum(code is not None for code in codes)
    raw = Measure(
        "c",
        "raw prepared query, psycopg",
        len(points),
        raw_best,
        f"covered {hits:,}; best of {rounds}",
    )
    differ = sum(a.method == "contains" and a.grid_code != code for a, code in zip(found, codes, strict=True))
    agreement = "agree" if differ == 0 else f"DISAGREE on {differ:,} points"
    return service, raw, agreement


def _report(points: Points) -> RequestMaker:
    def make(i: int) -> tuple[str, str, object]:
        lon, lat = points.xy[i % len(points)]
        return (
            "POST",
            "/api/v1/events",
            {
                "id": str(uuid.uuid4()),
                "category": "environment",
                "description": "bench",
                "location": {"type": "Point", "coordinates": [lon, lat]},
                "crs": "wgs84",
                "accuracy_m": 10,
            },
        )

    return make


def _threads_of(options: str) -> int:
    words = options.split()
    return int(words[words.index("--threads") + 1]) if "--threads" in words else 1


def _run_http(
    url: str,
    token: str,
    options: str,
    points: Points,
    seconds: float,
    warmup: float,
    concurrency: int,
) -> LoadResult:
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        # Every run starts from a vacuumed table, so that no run has autovacuum's turn in it.
        conn.execute("VACUUM ANALYZE events, event_actions")
    with (
        gunicorn(url, options, pool_size=max(2, _threads_of(options))) as server,
        psycopg.connect(libpq_url(url), autocommit=True) as conn,
    ):
        result = drive_http(
            server.port,
            _report(points),
            seconds=seconds,
            warmup=warmup,
            concurrency=concurrency,
            headers={"Authorization": f"Bearer {token}"},
            cpu_probe=server_cpu_probe(conn, server),
        )
        if result.errors or set(result.statuses) - {201}:
            log(f"  not all answers were 201; gunicorn last logged: {server.last_error()}")
        return result


def _cpu_per_report(result: LoadResult) -> str:
    accepted = result.count(201)
    if not accepted:
        return "no report accepted"
    app, pg = (result.cpu_seconds.get(k, 0.0) / accepted * 1000 for k in ("app", "postgres"))
    return (
        f"CPU per accepted report: gunicorn {app:.1f} ms + PostgreSQL backends {pg:.1f} ms "
        f"= {app + pg:.1f} ms, so {os.cpu_count()} free CPUs would take at most "
        f"~{(os.cpu_count() or 1) * 1000 / (app + pg):,.0f} reports/s"
    )


def measure_http(
    url: str,
    points: Points,
    *,
    seconds: float,
    trial_seconds: float,
    concurrency: int,
    configs: list[str],
) -> tuple[Measure, str, str]:
    """(b) POST /api/v1/events under gunicorn as the bench admin; time the fastest config."""
    token = bench_access_token(url)
    best = configs[0]
    if len(configs) > 1:
        trials = []
        for options in configs:
            result = _run_http(url, token, options, points, trial_seconds, 1.0, concurrency)
            trials.append((rate(result.count(201), result.seconds), options))
            log(
                f"  trial {options!r}: {trials[-1][0]:,.0f} accepted/s; {result.summary()}; "
                f"{_cpu_per_report(result)}"
            )
        best = max(trials)[1]
    result = _run_http(url, token, best, points, seconds, 2.0, concurrency)
    accepted = result.count(201)
    log(f"  timed {best!r}: {rate(accepted, result.seconds):,.0f} accepted/s; {result.summary()}")
    rejected = sum(result.statuses.values()) - accepted + sum(result.errors.values())
    note = f"gunicorn {best}, {concurrency} client connections, {rejected:,} not 201"
    measure = Measure("b", "POST /api/v1/events, 201s", accepted, result.seconds, note)
    return measure, best, _cpu_per_report(result)


def _plan_shape(cur: psycopg.Cursor, query: str) -> str:
    """The join node of a plan and what drives it, e.g. 'Nested Loop: bench_points -> areas'."""
    cur.execute("EXPLAIN (FORMAT JSON) " + query)
    plan = cur.fetchone()[0][0]["Plan"]  # type: ignore[index]
    while "Plans" in plan and plan["Node Type"] not in ("Nested Loop", "Hash Join", "Merge Join"):
        plan = plan["Plans"][0]

    def relation(node: dict[str, object]) -> str:
        if "Relation Name" in node:
            index = f" ({node['Index Name']})" if "Index Name" in node else ""
            return f"{node['Relation Name']}{index}"
        children = node.get("Plans") or []
        return relation(children[0]) if children else str(node["Node Type"])  # type: ignore[index]

    children = plan.get("Plans") or []
    if len(children) == 2:
        return f"{plan['Node Type']}: {relation(children[0])} -> {relation(children[1])}"
    return str(plan["Node Type"])


def measure_set_based(url: str, points: Points, repeats: int = 2) -> tuple[list[Measure], str]:
    """(d) assign all points in one statement, several plans, in a transaction rolled back."""
    with psycopg.connect(libpq_url(url)) as conn:
        cur = conn.cursor()
        with Stopwatch() as load:
            cur.execute(
                "CREATE TEMP TABLE bench_points (id integer PRIMARY KEY,"
                " geom geometry(Point, 4326) NOT NULL) ON COMMIT DROP"
            )
            with cur.copy("COPY bench_points (id, geom) FROM STDIN") as copy:
                for i, (lon, lat) in enumerate(points.xy):
                    copy.write_row((i, f"SRID=4326;POINT({lon!r} {lat!r})"))
            cur.execute("CREATE INDEX ON bench_points USING gist (geom)")
            cur.execute("ANALYZE bench_points")
        shapes = {row: _plan_shape(cur, query) for row, _, query in SET_PLANS}
        best = {row: math.inf for row, _, _ in SET_PLANS}
        results: dict[str, set[tuple[int, str]]] = {}
        for _ in range(repeats):
            for row, _, query in SET_PLANS:
                with Stopwatch() as watch:
                    cur.execute(query)
                    found = cur.fetchall()
                best[row] = min(best[row], watch.seconds)
                results[row] = set(found)
        conn.rollback()
    first = results[SET_PLANS[0][0]]
    if any(found != first for found in results.values()):
        raise RuntimeError("the set-based plans assigned the points differently")
    assigned = dict(first)
    expected = sum(code is not None for code in points.drawn_in)
    agree = sum(assigned.get(i) == code for i, code in enumerate(points.drawn_in) if code)
    check = (
        f"{len(assigned):,} of {len(points):,} points covered ({expected:,} drawn inside), "
        f"{agree:,} in the grid they were drawn in; COPY + GiST index + ANALYZE "
        f"{load.seconds:.2f} s"
    )
    measures = [Measure(row, what, len(points), best[row], shapes[row]) for row, what, _ in SET_PLANS]
    return measures, check


# --- the run ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.assignment", description=__doc__)
    parser.add_argument(
        "--points",
        type=int,
        default=2_000,
        help="points for (a) service, (b) HTTP and (c) raw SQL (default 2,000)",
    )
    parser.add_argument(
        "--bulk-points",
        type=int,
        default=100_000,
        help="points for (d) set-based SQL (default 100,000)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="alternating rounds of (a) and (c), best kept (default 3)",
    )
    parser.add_argument(
        "--seconds",
        type=float,
        default=15.0,
        help="timed HTTP run after a 2 s warm-up (default 15)",
    )
    parser.add_argument(
        "--trial-seconds",
        type=float,
        default=5.0,
        help="HTTP run per gunicorn config tried (default 5)",
    )
    parser.add_argument("--concurrency", type=int, default=24, help="HTTP client connections (default 24)")
    parser.add_argument(
        "--gunicorn",
        action="append",
        metavar="OPTIONS",
        help="gunicorn options to try (repeatable); one skips the trials; "
        f"default: {' | '.join(GUNICORN_CONFIGS)}",
    )
    args = parser.parse_args(argv)

    url = bench_database_url()
    log(f"Machine: {machine()}")
    log(f"Bench database: {url}")
    with Stopwatch() as watch:
        tree = prepare_bench_database(url)
    how = f"built in {tree.built_seconds:.1f} s" if tree.built_seconds is not None else "reused"
    outlines = "real Guangzhou district outlines" if tree.real_outlines else "synthetic district outlines"
    log(f"Grids loaded: {tree.grids:,} ({how}, {outlines}); ready in {watch.seconds:.1f} s")

    from backend.db import make_engine

    rng = random.Random(SEED)
    engine = make_engine(url)
    with Session(engine) as session, Stopwatch() as watch:
        maker = PointMaker(session)
        points = maker.make(args.points, rng)
        bulk = maker.make(args.bulk_points, rng)
    engine.dispose()
    log(
        f"Points: {len(points):,} and {len(bulk):,} ({OUTSIDE_SHARE:.0%} outside the city), "
        f"drawn in {watch.seconds:.1f} s"
    )

    log(f"(a) assign_point and (c) raw prepared query, {args.rounds} rounds ...")
    service, raw, agreement = measure_point_lookups(url, points, args.rounds)
    log(f"    (a) and (c) {agreement} on the covering grid")
    log("(d) set-based joins ...")
    set_based, check = measure_set_based(url, bulk)
    log(f"    {check}")
    log("(b) POST /api/v1/events under gunicorn ...")
    http, config, http_cpu = measure_http(
        url,
        points,
        seconds=args.seconds,
        trial_seconds=args.trial_seconds,
        concurrency=args.concurrency,
        configs=args.gunicorn or list(GUNICORN_CONFIGS),
    )

    measures = [service, http, raw, *set_based]
    log(f"Machine at the end: {machine()}")
    print()
    print(
        format_table(
            ["", "what", "count", "seconds", "lookups/s", "notes"],
            [[m.row, m.what, m.count, round(m.seconds, 3), m.per_second, m.note] for m in measures],
        )
    )
    print()
    a_c = service.per_second / raw.per_second
    b_c = http.per_second / raw.per_second
    by_row = {m.row: m for m in set_based}
    lateral = by_row["d-lateral"]
    print(f"a/c = {a_c:.2f}   b/c = {b_c:.2f}")
    print(f"b: {http_cpu}")
    for other in (by_row["d-default"], by_row["d-by-point"]):
        plan = (
            "the same join order as d-lateral, so the difference is noise"
            if other.note == lateral.note
            else other.note
        )
        print(
            f"set-based: {other.row} takes {other.seconds / lateral.seconds:.2f}x the time of "
            f"d-lateral ({plan})"
        )
    print(f"goal a/c >= {GOAL_SERVICE_VS_RAW}: {a_c:.2f}  {'PASS' if a_c >= GOAL_SERVICE_VS_RAW else 'MISS'}")
    print(
        f"goal b >= {GOAL_REPORTS_PER_SECOND:.0f} accepted reports/s: {http.per_second:,.0f}  "
        f"{'PASS' if http.per_second >= GOAL_REPORTS_PER_SECOND else 'MISS'}  "
        f"(gunicorn {config})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
