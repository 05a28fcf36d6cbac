"""Patrol tracks at Guangzhou scale: ingest over HTTP against COPY, a day's figures, storage.

    .venv/bin/python -m bench.patrols [--seconds 20] [--concurrency 8] [--day-workers 19660]
        [--connections 2] [--day-only]

(a) points accepted per second over HTTP (a real gunicorn on loopback), batches of 500 GCJ-02
    points, each checked, converted, hashed and stored as one LineStringM row;
(b) the ceiling: COPY of the same points, a row per point (WGS84 already), into a table with
    the (patrol, time) index a row-per-point design would need;
(c) the daily figures (backend.patrols.figures) for a day of `--day-workers` workers walking
    their grids 8 hours, a point every 10 s (2,880 a worker; 57 million for all 19,660), in
    one run split by worker over `--connections` connections; with fewer workers the full day
    is extrapolated, and labelled so, from the wall time and from the CPU time of the database
    and of the process computing the figures (the wall time on two idle cores);
and the storage per worker-day of each form.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import time
import uuid
from datetime import date, datetime, timedelta
from datetime import time as clock
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import psycopg
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from bench.common import (
    Stopwatch,
    bench_database_url,
    cluster_cpu,
    cpu_used,
    drive_http,
    format_table,
    gunicorn,
    libpq_url,
    log,
    machine,
    prepare_bench_database,
    server_cpu_probe,
)
from geo.crs import transform_arrays

OPTIONS = "--worker-class gthread -w 2 --threads 4 --reuse-port"
BATCH = 500
POINTS_PER_DAY = 8 * 360  # 8 hours, a point every 10 s
DAY_BATCH = 480
ZONE = ZoneInfo("Asia/Shanghai")
BENCH_WORKER = "bench-patrol-walker"
WORKER_PREFIX = "bench-patrol-"


def _scalar(conn: psycopg.Connection[Any], sql: str, params: Any = None) -> Any:
    row = conn.execute(sql, params).fetchone()
    return row[0] if row else None


# --- the bench's people ---------------------------------------------------------------------


def ensure_workers(conn: psycopg.Connection[Any]) -> int:
    """A worker in every grid (COPY, once): the people whose day (c) computes."""
    have = _scalar(conn, "SELECT count(*) FROM users WHERE username LIKE %s", (WORKER_PREFIX + "4%",))
    grids = conn.execute(
        "SELECT code FROM areas WHERE level = 'grid' AND valid_to IS NULL ORDER BY code"
    ).fetchall()
    if have == len(grids):
        return int(have)
    log(f"creating {len(grids):,} workers, one per grid ...")
    with conn.transaction():
        conn.execute(
            "DELETE FROM user_grids WHERE user_id IN (SELECT id FROM users WHERE username LIKE %s)",
            (WORKER_PREFIX + "4%",),
        )
        conn.execute("DELETE FROM users WHERE username LIKE %s", (WORKER_PREFIX + "4%",))
        with conn.cursor().copy(
            "COPY users (username, password_hash, display_name, role, worker_kind) FROM STDIN"
        ) as copy:
            for (code,) in grids:
                copy.write_row((WORKER_PREFIX + code, "!", "巡查员", "worker", "full_time"))
        conn.execute(
            "INSERT INTO user_grids (user_id, grid_code)"
            " SELECT id, substr(username, %s) FROM users WHERE username LIKE %s",
            (len(WORKER_PREFIX) + 1, WORKER_PREFIX + "4%"),
        )
    return len(grids)


def walker_token(url: str) -> tuple[int, str, str]:
    """The HTTP walker (a worker with a password) and a fresh access token; its grid."""
    from backend import config
    from backend.auth import service as auth
    from backend.auth.models import User

    settings = config.from_environ({**os.environ, "DATABASE_URL": url})
    engine = create_engine(url)
    with Session(engine) as session:
        user = session.query(User).filter(User.username == BENCH_WORKER).one_or_none()
        grid = session.execute(
            text("SELECT code FROM areas WHERE level = 'grid' AND valid_to IS NULL ORDER BY code LIMIT 1")
        ).scalar_one()
        if user is None:
            user = auth.create_user(
                session,
                settings,
                username=BENCH_WORKER,
                password="bench-only-password",
                display_name="Bench walker",
                role="worker",
                worker_kind="full_time",
            )
            auth.set_user_grids(session, user.id, [grid])
        token = auth.login(session, settings, BENCH_WORKER, "bench-only-password").access_token
        session.commit()
        user_id = user.id
    engine.dispose()
    return user_id, token, grid


# --- (a) HTTP and (b) COPY ------------------------------------------------------------------


def batch_points(conn: psycopg.Connection[Any], grid: str) -> list[dict[str, Any]]:
    """500 points of a walk in the grid, in GCJ-02 as the phone sends them, 10 s apart."""
    x, y = conn.execute(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM areas"
        " WHERE code = %s AND valid_to IS NULL) s",
        (grid,),
    ).fetchone()  # type: ignore[misc]
    rng = np.random.default_rng(15)
    heading = np.cumsum(rng.normal(0, 0.4, BATCH))
    lon = x + np.cumsum(np.cos(heading)) * 1.3e-4 * 0.2
    lat = y + np.cumsum(np.sin(heading)) * 1.3e-4 * 0.2
    glon, glat = transform_arrays(lon, lat, "wgs84", "gcj02")
    t0 = time.time() - BATCH * 10 - 60
    return [
        {
            "lon": round(float(glon[i]), 7),
            "lat": round(float(glat[i]), 7),
            "t": round(t0 + 10 * i, 1),
            "accuracy_m": round(float(rng.uniform(4, 25)), 1),
            "mock": False,
        }
        for i in range(BATCH)
    ]


def measure_http(
    url: str, token: str, worker_id: int, points: list[dict[str, Any]], *, seconds: float, concurrency: int
) -> dict[str, Any]:
    patrols = [uuid.uuid4() for _ in range(64)]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        with conn.cursor().copy("COPY patrols (id, worker_id, started_at) FROM STDIN") as copy:
            for patrol in patrols:
                copy.write_row((patrol, worker_id, datetime.now(ZONE) - timedelta(hours=3)))
        conn.execute("VACUUM ANALYZE patrols, patrol_batches")
    run = uuid.uuid4().hex[:8]

    def make(n: int) -> tuple[str, str, object]:
        body = {"batch": f"{run}-{n}", "crs": "gcj02", "points": points}
        return "POST", f"/api/v1/patrols/{patrols[n % len(patrols)]}/points", body

    with (
        gunicorn(url, OPTIONS, pool_size=4) as server,
        psycopg.connect(libpq_url(url), autocommit=True) as conn,
    ):
        result = drive_http(
            server.port,
            make,
            seconds=seconds,
            warmup=3,
            concurrency=concurrency,
            headers={"Authorization": f"Bearer {token}"},
            cpu_probe=server_cpu_probe(conn, server),
        )
        if set(result.statuses) - {201}:
            log(f"  not all answers were 201 ({result.summary()}); gunicorn: {server.last_error()}")
    accepted = result.count(201)
    return {
        "points_s": accepted * BATCH / seconds,
        "batches": accepted,
        "p50_ms": result.percentile(0.5) * 1000,
        "p95_ms": result.percentile(0.95) * 1000,
        "summary": result.summary(),
        "cpu_ms_per_batch": {k: v / accepted * 1000 for k, v in result.cpu_seconds.items()}
        if accepted
        else {},
    }


def measure_copy(url: str, points: list[dict[str, Any]], batches: int) -> dict[str, Any]:
    """COPY `batches` x 500 of the same points (converted to WGS84 first, outside the timing)
    as a row per point, into a table with the (patrol, time) index it would need."""
    lon, lat = transform_arrays(
        np.array([p["lon"] for p in points]), np.array([p["lat"] for p in points]), "gcj02", "wgs84"
    )
    rows = [
        (f"SRID=4326;POINT({lon[i]:.7f} {lat[i]:.7f})", points[i]["t"], points[i]["accuracy_m"], False)
        for i in range(len(points))
    ]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_patrol_points")
        conn.execute(
            "CREATE TABLE bench_patrol_points (patrol_id uuid NOT NULL, t double precision NOT NULL,"
            " location geometry(Point, 4326) NOT NULL, accuracy_m real, mock boolean NOT NULL,"
            " PRIMARY KEY (patrol_id, t))"
        )
        with Stopwatch() as watch:
            with conn.cursor().copy(
                "COPY bench_patrol_points (patrol_id, location, t, accuracy_m, mock) FROM STDIN"
            ) as copy:
                for _ in range(batches):
                    patrol = uuid.uuid4()
                    for location, t, accuracy, mock in rows:
                        copy.write_row((patrol, location, t, accuracy, mock))
        conn.execute("VACUUM ANALYZE bench_patrol_points")
        size = _scalar(conn, "SELECT pg_total_relation_size('bench_patrol_points')")
        conn.execute("DROP TABLE bench_patrol_points")
    count = batches * len(rows)
    return {"points_s": count / watch.seconds, "points": count, "bytes_per_point": size / count}


# --- (c) a day of tracks --------------------------------------------------------------------


def working_day() -> date:
    """The latest past Monday-to-Friday day at least two days back."""
    day = datetime.now(ZONE).date() - timedelta(days=2)
    while day.isoweekday() > 5:
        day -= timedelta(days=1)
    return day


def _array(values: np.ndarray, fmt: str) -> str:
    return "{" + ",".join(fmt % v for v in values) + "}"


def load_day(conn: psycopg.Connection[Any], day: date, workers: int) -> tuple[int, float]:
    """Write a day of tracks for the first `workers` bench workers (spread over all grids):
    random walks of about 1.3 m/s inside each grid's box, 8 hours from 08:00, with a few mock
    points, bad accuracies and jumps. Returns the points written and the seconds taken."""
    rows = conn.execute(
        "SELECT u.id, ST_XMin(a.geom), ST_YMin(a.geom), ST_XMax(a.geom), ST_YMax(a.geom),"
        " ST_X(ST_PointOnSurface(a.geom)), ST_Y(ST_PointOnSurface(a.geom))"
        " FROM users u JOIN user_grids ug ON ug.user_id = u.id"
        " JOIN areas a ON a.code = ug.grid_code AND a.valid_to IS NULL"
        " WHERE u.username LIKE %s ORDER BY md5(u.username) LIMIT %s",
        (WORKER_PREFIX + "4%", workers),
    ).fetchall()
    data = np.array([r[1:] for r in rows], dtype=np.float64)
    ids = [r[0] for r in rows]
    rng = np.random.default_rng(19660)
    t0 = datetime.combine(day, clock(8), ZONE).timestamp()
    times = t0 + 10.0 * np.arange(POINTS_PER_DAY)
    written = 0
    with Stopwatch() as watch, conn.transaction():
        with conn.cursor().copy(
            "COPY patrols (id, worker_id, started_at, ended_at, closed_by) FROM STDIN"
        ) as copy:
            patrols = [uuid.uuid4() for _ in ids]
            for patrol, worker in zip(patrols, ids, strict=True):
                copy.write_row(
                    (
                        patrol,
                        worker,
                        datetime.fromtimestamp(t0, ZONE),
                        datetime.fromtimestamp(times[-1], ZONE),
                        "phone",
                    )
                )
        sql = (
            "COPY patrol_batches (patrol_id, batch_key, content_hash, crs, first_at, last_at, n_points,"
            " track, accuracy_m, mock) FROM STDIN"
        )
        with conn.cursor().copy(sql) as copy:
            for index, patrol in enumerate(patrols):
                xmin, ymin, xmax, ymax, x0, y0 = data[index]
                heading = np.cumsum(rng.normal(0, 0.3, POINTS_PER_DAY))
                step = 13.0 / 111_000
                lon = x0 + np.cumsum(np.cos(heading)) * step / np.cos(np.radians(y0))
                lat = y0 + np.cumsum(np.sin(heading)) * step
                # Fold the walk back into the grid's box.
                lon = _fold(lon, xmin, xmax)
                lat = _fold(lat, ymin, ymax)
                accuracy = rng.uniform(4, 30, POINTS_PER_DAY)
                accuracy[rng.integers(0, POINTS_PER_DAY, 3)] = 900.0
                mock = np.zeros(POINTS_PER_DAY, dtype=bool)
                mock[rng.integers(0, POINTS_PER_DAY, 2)] = True
                lat[rng.integers(1, POINTS_PER_DAY, 2)] += 0.02  # two jumps of 2 km
                for start in range(0, POINTS_PER_DAY, DAY_BATCH):
                    part = slice(start, start + DAY_BATCH)
                    coords = np.column_stack((lon[part], lat[part], times[part])).astype("<f8")
                    wkb = (
                        b"\x01"
                        + (2002).to_bytes(4, "little")
                        + len(coords).to_bytes(4, "little")
                        + coords.tobytes()
                    )
                    copy.write_row(
                        (
                            patrol,
                            str(start // DAY_BATCH),
                            hashlib.sha256(wkb).digest(),
                            "wgs84",
                            datetime.fromtimestamp(times[part][0], ZONE),
                            datetime.fromtimestamp(times[part][-1], ZONE),
                            len(coords),
                            wkb.hex(),
                            _array(accuracy[part], "%.1f"),
                            "{" + ",".join("t" if m else "f" for m in mock[part]) + "}",
                        )
                    )
                written += POINTS_PER_DAY
    return written, watch.seconds


def _fold(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """Reflect a walk at the edges of [low, high] (inset a little)."""
    inset = (high - low) * 0.02
    low, high = low + inset, high - inset
    span = high - low
    folded = np.mod(values - low, 2 * span)
    return low + np.where(folded > span, 2 * span - folded, folded)


def storage(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Bytes of each patrol table, indexes and TOAST included."""
    conn.execute("VACUUM ANALYZE patrols, patrol_batches, patrol_days, patrol_grid_days")
    return {
        table: int(_scalar(conn, "SELECT pg_total_relation_size(%s)", (table,)))
        for table in ("patrols", "patrol_batches", "patrol_days", "patrol_grid_days")
    }


def measure_ingest(
    url: str, token: str, worker_id: int, points: list[dict[str, Any]], args: argparse.Namespace
) -> list[list[object]]:
    """(a) and (b), as the rows of the table."""
    log(f"(a) HTTP: batches of {BATCH} GCJ-02 points, {args.concurrency} connections, {OPTIONS} ...")
    http = measure_http(url, token, worker_id, points, seconds=args.seconds, concurrency=args.concurrency)
    log(f"    {http['summary']}")
    log(f"    CPU per batch: {', '.join(f'{k} {v:.1f} ms' for k, v in http['cpu_ms_per_batch'].items())}")
    load_a = os.getloadavg()[0]
    log(f"(b) COPY of {args.copy_batches:,} x {BATCH} of the same points, a row per point ...")
    copied = measure_copy(url, points, args.copy_batches)
    load_b = os.getloadavg()[0]
    return [
        ["(a) HTTP points/s (500 a batch)", http["points_s"], ">= 20,000", f"{load_a:.2f}"],
        ["(a) HTTP batch latency p50 / p95 ms", f"{http['p50_ms']:.0f} / {http['p95_ms']:.0f}", "", ""],
        ["(b) COPY points/s (row per point)", copied["points_s"], "ceiling", f"{load_b:.2f}"],
        ["(a) / (b)", http["points_s"] / copied["points_s"], ">= 0.3", ""],
        [
            "storage kB / worker-day: row per point",
            copied["bytes_per_point"] * POINTS_PER_DAY / 1000,
            "",
            "",
        ],
    ]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="HTTP measuring window")
    parser.add_argument("--concurrency", type=int, default=8, help="HTTP connections")
    parser.add_argument("--copy-batches", type=int, default=2000, help="batches of 500 points to COPY")
    parser.add_argument("--connections", type=int, default=2, help="connections sharing (c)")
    parser.add_argument("--day-workers", type=int, default=19_660, help="workers walking in (c)")
    parser.add_argument("--day-only", action="store_true", help="measure (c) and storage only")
    args = parser.parse_args(argv)

    url = bench_database_url()
    tree = prepare_bench_database(url)
    log(f"bench database: {tree.grids:,} grids; {machine()}")
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("TRUNCATE patrols, patrol_batches, patrol_days, patrol_grid_days")
        workers = ensure_workers(conn)
        conn.execute(
            "INSERT INTO patrol_norms (grid_kind, min_hours, min_coverage) VALUES"
            " ('comprehensive', 4, 0.6), ('dedicated', 4, 0.6) ON CONFLICT DO NOTHING"
        )
        worker_id, token, grid = walker_token(url)
        points = batch_points(conn, grid)

    ingest: list[list[object]] = []
    if not args.day_only:
        ingest = measure_ingest(url, token, worker_id, points, args)

    day = working_day()
    day_workers = min(args.day_workers, workers)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        conn.execute("TRUNCATE patrols, patrol_batches, patrol_days, patrol_grid_days")
        log(f"(c) writing {day} for {day_workers:,} walking workers (of {workers:,}) ...")
        written, load_s = load_day(conn, day, day_workers)
        conn.execute("VACUUM ANALYZE patrols, patrol_batches, users, user_grids")
        log(f"    {written:,} points in {load_s:.0f} s; computing the day's figures in one run ...")
    from backend.patrols import figures

    engine = create_engine(url)
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        before = cluster_cpu(conn)
        own_before = time.process_time()
        with Stopwatch() as watch:
            rows = figures.compute_day_in_parts(sessionmaker(engine), day, connections=args.connections)
        # The numpy and Shapely work runs here, in this process's threads: its CPU counts too.
        python_cpu_s = time.process_time() - own_before
        # The pool keeps the parts' connections open, so their backends' CPU is still counted.
        postgres_cpu_s = cpu_used({"pg": before}, {"pg": cluster_cpu(conn)})["pg"]
    load_c = os.getloadavg()[0]
    with psycopg.connect(libpq_url(url), autocommit=True) as conn:
        sizes = storage(conn)
        flagged = conn.execute(
            "SELECT sum(flagged_speed), sum(flagged_accuracy), sum(flagged_mock), avg(distance_m),"
            " avg(patrol_seconds) / 3600 FROM patrol_days WHERE points > 0"
        ).fetchone()
        assert flagged is not None
        coverage = _scalar(conn, "SELECT avg(coverage) FROM patrol_grid_days WHERE inside_seconds > 0")
    engine.dispose()
    fraction = day_workers / workers
    full_day_s = watch.seconds / fraction

    print()
    print(
        format_table(
            ["measure", "value", "goal", "load (1 min)"],
            [
                *ingest,
                [
                    f"(c) day's figures, {day_workers:,} walking workers, {args.connections} connections, s",
                    watch.seconds,
                    "",
                    f"{load_c:.2f}",
                ],
                [
                    "(c) full day, 19,660 workers, s" + ("" if fraction >= 1 else " (EXTRAPOLATED)"),
                    full_day_s,
                    "< 600",
                    "",
                ],
                [
                    f"(c) CPU s, {day_workers:,} walking workers: database / figures' process",
                    f"{postgres_cpu_s:.1f} / {python_cpu_s:.1f}",
                    "",
                    "",
                ],
                [
                    "(c) full day on 2 idle cores, s (EXTRAPOLATED from CPU)",
                    (postgres_cpu_s + python_cpu_s) / fraction / 2,
                    "< 600",
                    "",
                ],
                ["worker-day rows written", rows, "", ""],
                [
                    "storage kB / worker-day: track batches (LineStringM)",
                    (sizes["patrol_batches"] + sizes["patrols"]) / day_workers / 1000,
                    "< 100",
                    "",
                ],
                [
                    "storage kB / worker-day: daily figures",
                    (sizes["patrol_days"] + sizes["patrol_grid_days"]) / max(rows, 1) / 1000,
                    "",
                    "",
                ],
            ],
        )
    )
    print()
    print(
        f"per walking worker-day: {flagged[3]:,.0f} m walked, {flagged[4]:.1f} h counted, mean coverage "
        f"{coverage:.0%}; flagged in all: {flagged[0]:,} jumps, {flagged[1]:,} bad accuracies, "
        f"{flagged[2]:,} mock points"
    )
    print(machine())


if __name__ == "__main__":
    main()
