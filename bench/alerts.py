"""Benchmark one-point calls (一点呼叫) on Guangzhou's 23,000 emergency units.

Times creating an alert and its dispatches through the service (own session, commit, as a route
does) at random points, against the raw nearest-active-units KNN query alone as the ceiling.

Run from the project root: `.venv/bin/python -m bench.alerts [--alerts 500]`. Uses
BENCH_ALERTS_DATABASE_URL, else the `wangge_bench_alerts` database of the private cluster; the
first run loads the Guangzhou-scale area tree (19,660 grids) and the units into it.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import time
from collections.abc import Callable

import psycopg
from alembic import command
from sqlalchemy import Engine, text
from sqlalchemy.orm import Session

from backend.db import alembic_config
from bench.common import database_url, percentile

DATABASE = "wangge_bench_alerts"
UNITS = 23_000
GOAL_P95_MS = 20.0
SEED = 7


def prepare(engine: Engine, url: str, units: int) -> tuple[float | None, float | None]:
    """Migrate; load the Guangzhou tree and the units unless present. Returns load times."""
    from backend import demo
    from backend.config import Settings
    from backend.org import demo as org_demo

    command.upgrade(alembic_config(url), "head")
    tree_s = units_s = None
    with Session(engine) as session:
        if not session.scalar(text("SELECT count(*) FROM areas")):
            started = time.perf_counter()
            demo.load_areas(session, demo.guangzhou_specs(Settings(database_url=url).data_dir))
            session.commit()
            tree_s = time.perf_counter() - started
        if session.scalar(text("SELECT count(*) FROM emergency_units WHERE active")) != units:
            started = time.perf_counter()
            session.execute(text("TRUNCATE alerts, alert_dispatches, check_ins, emergency_units"))
            grids = org_demo.current_grids(session)
            org_demo.copy_units(
                session, grids, units, random.Random(SEED), created_at=session.scalar(text("SELECT now()"))
            )
            session.commit()
            units_s = time.perf_counter() - started
        session.execute(text("DELETE FROM alerts"))  # earlier runs' alerts
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE"))
    return tree_s, units_s


def random_points(engine: Engine, n: int) -> list[tuple[float, float]]:
    """Points spread like the units: each near (within ~500 m of) a random unit."""
    rng = random.Random(SEED + 1)
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT ST_X(location::geometry), ST_Y(location::geometry) FROM emergency_units ORDER BY id")
        ).all()
    picks = [rows[rng.randrange(len(rows))] for _ in range(n)]
    return [(x + rng.uniform(-0.005, 0.005), y + rng.uniform(-0.005, 0.005)) for x, y in picks]


def timed(points: list[tuple[float, float]], run: Callable[[float, float], None]) -> list[float]:
    out = []
    for lon, lat in points:
        started = time.perf_counter()
        run(lon, lat)
        out.append((time.perf_counter() - started) * 1000)
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=500, help="alerts to time (default 500)")
    parser.add_argument("--units", type=int, default=UNITS)
    parser.add_argument("--radius", type=float, default=1000.0, help="metres (default 1000)")
    parser.add_argument("--count", type=int, default=5, help="units to call (default 5)")
    parser.add_argument("--widen", action="store_true", help="widen rings up to 8 km")
    args = parser.parse_args(argv)

    from backend.auth.service import Actor
    from backend.db import make_engine
    from backend.org import alerts

    url = database_url(DATABASE, "BENCH_ALERTS_DATABASE_URL")
    engine = make_engine(url, pool_size=2)
    tree_s, units_s = prepare(engine, url, args.units)
    if tree_s is not None:
        print(f"loaded the Guangzhou-scale area tree in {tree_s:.1f}s")
    if units_s is not None:
        print(f"placed {args.units:,} emergency units inside grids (COPY) in {units_s:.1f}s")

    actor = Actor(role="admin", username="bench")
    found: list[int] = []

    def service_call(lon: float, lat: float) -> None:
        with Session(engine, expire_on_commit=False) as session:
            view = alerts.create_alert(
                session,
                actor=actor,
                kind="fire",
                lon=lon,
                lat=lat,
                radius_m=args.radius,
                count=args.count,
                widen=args.widen,
            )
            session.commit()
            found.append(view.alert.found)

    radius = 8000.0 if args.widen else args.radius
    raw = psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://", 1), autocommit=True)
    sql = str(alerts.NEAREST_ACTIVE_UNITS.text)
    for name in ("lon", "lat", "radius", "count", "candidates"):
        sql = sql.replace(f":{name}", f"%({name})s")

    def raw_call(lon: float, lat: float) -> None:
        raw.execute(
            sql,
            {
                "lon": lon,
                "lat": lat,
                "radius": radius,
                "count": args.count,
                "candidates": args.count + alerts.SPARE_CANDIDATES,
            },
        ).fetchall()

    # What any durable write costs here: one small row and a commit (the WAL flush).
    raw.execute("CREATE TABLE IF NOT EXISTS bench_commits (at timestamptz DEFAULT now())")

    def commit_call(lon: float, lat: float) -> None:
        with raw.transaction():
            raw.execute("INSERT INTO bench_commits DEFAULT VALUES")

    warm = random_points(engine, 50)
    timed(warm, raw_call)
    timed(warm, service_call)
    found.clear()
    points = random_points(engine, args.alerts)
    # Interleaved halves, so a burst of load on a shared machine hits both alike.
    service_ms: list[float] = []
    raw_ms: list[float] = []
    commit_ms: list[float] = []
    half = len(points) // 2
    for chunk in (points[:half], points[half:]):
        raw_ms += timed(chunk, raw_call)
        service_ms += timed(chunk, service_call)
        commit_ms += timed(chunk[:100], commit_call)
    raw.execute("DROP TABLE bench_commits")
    raw.close()
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM alerts"))
    engine.dispose()

    rows = [
        ("alert + dispatches (service, commit)", service_ms),
        ("raw KNN query (ceiling)", raw_ms),
        ("one-row INSERT + COMMIT (WAL flush)", commit_ms),
    ]
    one, five, _ = os.getloadavg()
    mode = "widen to 8 km" if args.widen else f"radius {args.radius:g} m"
    print(
        f"\n{args.alerts} alerts on {args.units:,} units, {mode}, {args.count} units each; "
        f"{os.cpu_count()} CPUs, load {one:.2f} / {five:.2f}"
    )
    print(
        f"units called per alert: mean {statistics.mean(found):.2f}, "
        f"full {sum(f == args.count for f in found) / len(found):.0%}"
    )
    print(f"{'':38} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for label, values in rows:
        print(
            f"{label:38} {percentile(values, 0.5):8.2f} {percentile(values, 0.95):8.2f} "
            f"{percentile(values, 0.99):8.2f}"
        )
    ratio50 = percentile(service_ms, 0.5) / percentile(raw_ms, 0.5)
    ratio95 = percentile(service_ms, 0.95) / percentile(raw_ms, 0.95)
    print(f"{'ratio service / raw':38} {ratio50:8.1f}x {ratio95:7.1f}x")
    p95 = percentile(service_ms, 0.95)
    verdict = "PASS" if p95 < GOAL_P95_MS else "MISS"
    print(f"{verdict}: p95 {p95:.2f} ms to create an alert and its dispatches (goal < {GOAL_P95_MS:g} ms)")


if __name__ == "__main__":
    main()
