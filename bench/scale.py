"""Benchmark closure statistics on ten years of Guangzhou-scale events: rollups against events.

Run from the project root: `.venv/bin/python -m bench.scale` (`make bench-scale`). One database
of the private cluster (or BENCH_SCALE_URL) holds the Guangzhou tree (19,660 grids) and 10
million events over ten years (`--events` fewer, in a database of their own, to try changes),
written by one INSERT ... SELECT per million rows on the server (cheaper still than COPY:
nothing crosses the wire) in bulk mode (indexes, keys and the rollups'
triggers off, then built once); it is kept and reused. The events carry their lifecycle columns
(accepted, due, closed, reworked, rejected) but no trail: figures as of now read no trail.

It times, p50 and p95 over repeated calls, with the machine's load beside them:
- district by grid (the district with the most grids) over one year and over ten years, as of
  now, from the rollups' tiers (closure_stats as the API calls it by default: whole years and
  months from the tiers, the edge days from the events), from the daily rollups (one year only:
  they are slower than the events at this density) and from the events (exact=true: the same
  table without the rollups, the path every figure took before them);
- the whole city by district over one year, from the tiers (tier_stats over every area) and
  from the events (one statement; the API's scopes stop at the district);
- reporting and accepting an event (the trigger follows the acceptance, which sets the due
  time) with the rollups' trigger on and off, in the same run (bench.stats.write_costs);
- district by grid over one year through HTTP while 24 phones report to the primary, with the
  hot standby of the private cluster answering the statistics and without it, and the lag seen;
and reports the dataset's size on disk.
"""

from __future__ import annotations

import argparse
import http.client
import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from backend.db import alembic_config
from backend.stats import queries
from bench.common import database_url, format_table, log, machine, percentile
from bench.stats import write_costs

BEIJING = ZoneInfo("Asia/Shanghai")
END = datetime(2026, 1, 1, tzinfo=BEIJING)  # a local midnight, fixed so a rebuild is the same
YEARS = 10
START = END - timedelta(days=round(365.25 * YEARS))
GOAL_P95_MS = 300.0
GOAL_REPORT_SLOWDOWN = 0.15
CHUNK = 1_000_000
DATABASE = "wangge_bench_scale"
URL_VARIABLE = "BENCH_SCALE_URL"

# One million synthetic events [:lo, :hi) over the grids of scale_grids, from START to END: a
# random grid and category each, accepted within four hours, due its category's SLA later;
# 2% rejected, 3% returned once, the rest closed after 10% to 120% of the SLA (so about 8% late),
# or still open when that is after END.
GENERATE = """
INSERT INTO events (id, category_code, description, location, crs, source_lon, source_lat,
    assignment, boundary_id, content_hash, grid_code, village_code, town_code, district_code,
    responsible_code, status, received_at, reported_at, accepted_at, due_at, closed_at,
    rework_count, updated_at)
SELECT gen_random_uuid(), c.code, 'synthetic', ST_SetSRID(ST_MakePoint(g.lon, g.lat), 4326),
    'wgs84', g.lon, g.lat, 'contains', g.boundary_id, 'scale', g.code, left(g.code, 12),
    left(g.code, 9), left(g.code, 6), left(g.code, 12),
    CASE WHEN s.u < 0.02 THEN 'rejected' WHEN s.closing > :end THEN 'in_progress' ELSE 'closed' END,
    s.received, s.received, s.accepted, s.accepted + c.sla,
    CASE WHEN s.u >= 0.02 AND s.closing <= :end THEN s.closing END,
    CASE WHEN s.u >= 0.02 AND s.u < 0.05 THEN 1 ELSE 0 END, s.received
FROM (
    SELECT i, r.grid, r.category, r.u, r.received, r.accepted,
        r.accepted + (0.1 + r.v * 1.1) * cs.sla AS closing
    FROM generate_series(:lo, :hi - 1) i
    CROSS JOIN LATERAL (
        SELECT floor(random() * :grids)::int + 0 * i AS grid, floor(random() * 8)::int AS category,
            random() AS u, random() AS v,
            :start + random() * (:end - :start) AS received
    ) r0
    CROSS JOIN LATERAL (SELECT r0.*, r0.received + random() * interval '4 hours' AS accepted) r
    JOIN scale_categories cs ON cs.n = r.category
) s
JOIN scale_grids g ON g.n = s.grid
JOIN scale_categories c ON c.n = s.category
"""


def make_engine(url: str) -> Engine:
    return create_engine(url, connect_args={"options": "-c timezone=UTC"})


def _counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        grids = conn.scalar(text("SELECT count(*) FROM areas WHERE level = 'grid' AND valid_to IS NULL"))
        # The synthetic events only: the phones' reports of an earlier run stay (without a due
        # time, they change no closure figure).
        present = conn.scalar(text("SELECT count(*) FROM events WHERE content_hash = 'scale'"))
    return grids or 0, present or 0


def prepare(events: int, database: str = DATABASE) -> Engine:
    """The database with the Guangzhou tree and `events` synthetic events, built when missing."""
    from backend import demo, history
    from backend.config import Settings
    from backend.events import partitions
    from geo.areatree import GUANGZHOU_GRIDS

    url = database_url(database, URL_VARIABLE)
    command.upgrade(alembic_config(url), "head")
    engine = make_engine(url)
    grids, present = _counts(engine)
    if present == events:
        log(f"reusing {present:,} events")
        return engine
    if present:
        # The trail refuses TRUNCATE: start from an empty database instead.
        engine.dispose()
        url = database_url(database, URL_VARIABLE, fresh=True)
        command.upgrade(alembic_config(url), "head")
        engine = make_engine(url)
        grids, present = _counts(engine)
    if grids != GUANGZHOU_GRIDS:
        started = time.perf_counter()
        with Session(engine) as session:
            demo.load_areas(session, demo.guangzhou_specs(Settings(database_url=url).data_dir))
            session.commit()
        log(f"Guangzhou tree built in {time.perf_counter() - started:.0f} s")
    started = time.perf_counter()
    with Session(engine) as session:
        session.execute(
            text(
                "CREATE TEMP TABLE scale_grids AS SELECT (row_number() OVER (ORDER BY code) - 1)::int AS n,"
                " code, id AS boundary_id, ST_X(p) AS lon, ST_Y(p) AS lat FROM ("
                " SELECT code, id, ST_PointOnSurface(geom) AS p FROM areas"
                " WHERE level = 'grid' AND valid_to IS NULL) a"
            )
        )
        session.execute(
            text(
                "CREATE TEMP TABLE scale_categories AS SELECT (row_number() OVER (ORDER BY code) - 1)::int"
                " AS n, code, sla_hours * interval '1 hour' AS sla FROM categories ORDER BY code LIMIT 8"
            )
        )
        session.execute(text("CREATE UNIQUE INDEX ON scale_grids (n)"))
        # One partition per month of the ten years, so they do not all land in the default one.
        partitions.create_partitions(session, partitions.month_of(START), partitions.month_of(END))
        with history.bulk_mode(session):
            for lo in range(0, events, CHUNK):
                session.execute(
                    text(GENERATE),
                    {
                        "lo": lo,
                        "hi": min(lo + CHUNK, events),
                        "grids": GUANGZHOU_GRIDS,
                        "start": START,
                        "end": END,
                    },
                )
                log(f"  {min(lo + CHUNK, events):,} events in {time.perf_counter() - started:.0f} s")
        session.commit()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE events"))
        conn.execute(text("VACUUM ANALYZE closure_rollups"))
        conn.execute(text("VACUUM ANALYZE closure_rollup_hours"))
        conn.execute(text("VACUUM ANALYZE closure_rollup_months"))
        conn.execute(text("VACUUM ANALYZE closure_rollup_years"))
    log(f"{events:,} events, indexes and rollups built in {time.perf_counter() - started:.0f} s")
    return engine


def timed(call: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


CITY_EVENTS = """SELECT district_code, count(*) AS due,
    count(*) FILTER (WHERE closed_at IS NOT NULL) AS closed,
    count(*) FILTER (WHERE closed_at <= due_at) AS closed_on_time,
    count(*) FILTER (WHERE closed_at IS NOT NULL AND rework_count > 0) AS reworked,
    percentile_cont(ARRAY[0.5, 0.9]::float8[]) WITHIN GROUP (
        ORDER BY date_part('epoch', closed_at - accepted_at) / 3600) AS hours
    FROM events WHERE status <> 'rejected' AND due_at >= :window_from AND due_at < :window_to
    GROUP BY district_code"""


def city_from_tiers(session: Session, start: datetime) -> queries.ClosureStats:
    stats = queries.tier_stats(
        session,
        area="",
        window_from=start,
        window_to=END,
        as_of=datetime.now(BEIJING),
        group_by=("district",),
        benchmark=queries.DEFAULT_BENCHMARK,
    )
    assert stats is not None
    return stats


def query_rows(engine: Engine, repeats: int) -> list[list[object]]:
    from backend import settle_heap

    settle_heap()  # as backend.wsgi does for gunicorn: collections walk only what calls make
    rows: list[list[object]] = []
    with Session(engine) as session:
        district = session.execute(
            text(
                "SELECT left(code, 6) FROM areas WHERE level = 'grid' AND valid_to IS NULL"
                " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
        log(f"district {district}")
        now = datetime.now(BEIJING)
        sources: list[tuple[str, bool | None]] = [("tiers", None), ("daily rollups", False), ("events", True)]
        for label, start in (("1 year", END - timedelta(days=365)), (f"{YEARS} years", START)):
            for source, exact in sources:
                if source == "daily rollups" and label != "1 year":
                    continue

                def call(start: datetime = start, exact: bool | None = exact) -> queries.ClosureStats:
                    if exact is False:
                        # The daily rollups alone, as before the tiers.
                        answer = queries._rollup_stats(
                            session,
                            area=district,
                            window_from=start,
                            window_to=END,
                            as_of=now,
                            group_by=("grid",),
                            benchmark=queries.DEFAULT_BENCHMARK,
                            exact=False,
                        )
                        assert answer is not None
                        return answer
                    return queries.closure_stats(
                        session,
                        area=district,
                        window_from=start,
                        window_to=END,
                        as_of=now,
                        group_by=("grid",),
                        exact=exact,
                    )

                answer = call()
                assert answer.exact == (exact is True)
                n = repeats if source == "tiers" else max(3, repeats // (5 if label == "1 year" else 10))
                ms = timed(call, n, warmup=1)
                rows.append(
                    [
                        f"district {district} by grid",
                        label,
                        source,
                        answer.totals.due,
                        len(answer.groups),
                        answer.totals.median_hours_to_close,
                        percentile(ms, 0.5),
                        percentile(ms, 0.95),
                    ]
                )
        start = END - timedelta(days=365)
        answer_tiers = city_from_tiers(session, start)
        params = {"window_from": start, "window_to": END}
        answer_events = {row.district_code: row for row in session.execute(text(CITY_EVENTS), params)}
        for group in answer_tiers.groups:
            assert answer_events[group.key["district"]].due == group.figures.due, group.key
        for source, city_call in (
            ("tiers", lambda: city_from_tiers(session, start)),
            ("events", lambda: session.execute(text(CITY_EVENTS), params).all()),
        ):
            ms = timed(city_call, repeats if source == "tiers" else max(3, repeats // 5), warmup=1)
            rows.append(
                ["city by district", "1 year", source, answer_tiers.totals.due, len(answer_tiers.groups)]
                + [answer_tiers.totals.median_hours_to_close, percentile(ms, 0.5), percentile(ms, 0.95)]
            )
    return rows


@contextmanager
def without_rollups(session: Session) -> Iterator[None]:
    """Switch the rollups' triggers off in this transaction (rolled back after)."""
    from backend.stats import rollups

    session.rollback()
    rollups.set_triggers(session, enabled=False)
    try:
        yield
    finally:
        session.rollback()


def replica_rows(engine: Engine, seconds: float, phones: int) -> list[list[object]]:
    """District-by-grid statistics (one year) over HTTP while `phones` phones report to the
    primary, with the hot standby answering them and without one; the standby's lag seen."""
    from backend import history
    from bench.common import ROOT, bench_access_token, drive_http, gunicorn

    url = engine.url.render_as_string(hide_password=False)
    standby = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "devdb.py"), "replica-url", engine.url.database or ""],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    token = bench_access_token(url)
    headers = {"Authorization": f"Bearer {token}"}
    with Session(engine) as session:
        points = [p for g in history.read_grids(session, points_per_grid=1, seed=3) for p in g.points]
        district = session.execute(
            text(
                "SELECT left(code, 6) FROM areas WHERE level = 'grid' AND valid_to IS NULL"
                " GROUP BY 1 ORDER BY count(*) DESC LIMIT 1"
            )
        ).scalar_one()
    query = (
        f"area={district}&group_by=grid&from={(END - timedelta(days=365)).isoformat()}&to={END.isoformat()}"
    )
    query = query.replace("+", "%2B")

    def report(i: int) -> tuple[str, str, object]:
        lon, lat = points[(i * 7919) % len(points)]
        body = {
            "id": str(uuid.uuid4()),
            "category": "environment",
            "description": "bench",
            "location": {"type": "Point", "coordinates": [lon, lat]},
        }
        return "POST", "/api/v1/events", body

    rows: list[list[object]] = []
    for label, replica_url in (("standby", standby), ("primary only", "")):
        os.environ["DATABASE_REPLICA_URL"] = replica_url
        try:
            with gunicorn(url, "-w 2 --worker-class gthread --threads 8", pool_size=8) as server:
                asked = _Asked(server.port, f"/api/v1/stats/closure?{query}", headers)
                asker = threading.Thread(target=asked.run, daemon=True)
                asker.start()
                load = drive_http(
                    server.port, report, seconds=seconds, warmup=2, concurrency=phones, headers=headers
                )
                asked.done.set()
                asker.join()
        finally:
            os.environ.pop("DATABASE_REPLICA_URL", None)
        rows.append(
            [
                label,
                len(asked.ms),
                percentile(asked.ms, 0.5),
                percentile(asked.ms, 0.95),
                load.count(201),
                f"{load.count(201) / load.seconds:.0f}",
                load.percentile(0.95) * 1000,
                f"{max(asked.lags):.2f}" if asked.lags else "-",
                f"{sum(asked.in_use) / len(asked.in_use):.0%}" if asked.in_use else "-",
            ]
        )
    return rows


@dataclass
class _Asked:
    """Statistics asked for one after the other until `done`, each followed by a scrape of the
    standby's lag and whether reads go to it."""

    port: int
    path: str
    headers: dict[str, str]
    done: threading.Event = field(default_factory=threading.Event)
    ms: list[float] = field(default_factory=list)
    lags: list[float] = field(default_factory=list)
    in_use: list[float] = field(default_factory=list)

    def run(self) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)
        while not self.done.is_set():
            started = time.perf_counter()
            conn.request("GET", self.path, headers=self.headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
            self.ms.append((time.perf_counter() - started) * 1000)
            conn.request("GET", "/metrics")
            for line in conn.getresponse().read().decode().splitlines():
                if line.startswith("wangge_replica_lag_seconds "):
                    self.lags.append(float(line.split()[1]))
                elif line.startswith("wangge_replica_in_use "):
                    self.in_use.append(float(line.split()[1]))


def sizes(engine: Engine) -> list[list[object]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                # A partitioned table holds nothing itself: its size is its partitions'.
                "SELECT relname, COALESCE((SELECT sum(pg_total_relation_size(t.relid))"
                "  FROM pg_partition_tree(c.oid) t), pg_total_relation_size(c.oid)) FROM pg_class c"
                " WHERE relname IN ('events', 'event_ids', 'event_actions', 'closure_rollups',"
                " 'closure_rollup_hours', 'closure_rollup_months', 'closure_rollup_years')"
                " ORDER BY relname"
            )
        ).all()
        database = conn.scalar(text("SELECT pg_database_size(current_database())"))
        counts = {
            name: conn.scalar(text(f"SELECT count(*) FROM {name}"))  # noqa: S608 - fixed names
            for name in (
                "events",
                "event_ids",
                "closure_rollups",
                "closure_rollup_hours",
                "closure_rollup_months",
                "closure_rollup_years",
            )
        }
    table = [[name, f"{(size or 0) / 2**20:,.0f} MB", counts.get(name, "")] for name, size in rows]
    return [*table, ["(whole database)", f"{(database or 0) / 2**20:,.0f} MB", ""]]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument(
        "--database", default=None, help=f"default {DATABASE} (10 million events) or <it>_<n>"
    )
    parser.add_argument("--skip-http", action="store_true", help="leave out the phones and the standby")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--inserts", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--phones", type=int, default=24)
    parser.add_argument("--phone-seconds", type=float, default=20)
    parser.add_argument("--build-only", action="store_true")
    args = parser.parse_args(argv)
    database = args.database or (DATABASE if args.events == 10_000_000 else f"{DATABASE}_{args.events}")
    engine = prepare(args.events, database)
    try:
        if args.build_only:
            return
        log(f"machine: {machine()}")
        query_table = query_rows(engine, args.repeats)
        log(f"machine: {machine()}")
        write_table = write_costs(engine, args.inserts, args.rounds, without_rollups)
        log(f"machine: {machine()}")
        replica_table = [] if args.skip_http else replica_rows(engine, args.phone_seconds, args.phones)
        log(f"machine: {machine()}")
        size_table = sizes(engine)
    finally:
        engine.dispose()
    log("")
    log(f"Closure statistics as of now on {args.events:,} events over {YEARS} years (ms per call)")
    headers = ["question", "window", "read from", "due", "groups", "median h", "p50 ms", "p95 ms"]
    log(format_table(headers, query_table))
    log("")
    log("Cost per event of writes, with the rollups' trigger off and on (ms)")
    log(format_table(["write", "events", "without rollups", "with rollups", "change"], write_table))
    log("")
    log(f"District by grid (1 year) over HTTP while {args.phones} phones report to the primary")
    headers = ["statistics read from", "calls", "p50 ms", "p95 ms", "reports", "reports/s"]
    headers += ["report p95 ms", "max lag s", "on standby"]
    log(format_table(headers, replica_table))
    log("")
    log("Size on disk (tables with their indexes)")
    log(format_table(["relation", "size", "rows"], size_table))
    log("")
    for row in query_table:
        if row[2] == "tiers" and (row[1] != "1 year" or row[0] == "city by district"):
            verdict = "met" if float(row[7]) < GOAL_P95_MS else "MISSED"  # type: ignore[arg-type]
            log(f"goal {row[0]}, {row[1]}, p95 < {GOAL_P95_MS:.0f} ms: {verdict} ({float(row[7]):.0f} ms)")  # type: ignore[arg-type]
    slower = float(write_table[0][3]) / float(write_table[0][2]) - 1  # type: ignore[arg-type]
    verdict = "met" if slower <= GOAL_REPORT_SLOWDOWN else "MISSED"
    log(f"goal reporting at most {GOAL_REPORT_SLOWDOWN:.0%} slower: {verdict} ({slower:+.1%})")
    log(f"machine: {machine()}")


if __name__ == "__main__":
    main()
