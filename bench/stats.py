"""Benchmark closure statistics on ten years of events, and what their indexes cost reporting.

Run from the project root: `.venv/bin/python -m bench.stats`. Two databases of the private
cluster (or BENCH_STATS_CONGHUA_URL / BENCH_STATS_GUANGZHOU_URL): Conghua's tree with 1.37
million events over ten years (the seed articles' figure), and the Guangzhou-scale tree with two
million. Each is built once (areas, then the history by backend.history with COPY) and reused
while it holds that history. For the district with the most events, it times district-wide
closure statistics grouped by grid over the last year and over all ten (p50 and p95 of repeated
calls), with and without the statistics indexes, against a naive single GROUP BY over the raw
events table, and the same windows a month earlier as of their end (read from the trail for the
events handled since); then the cost of reporting an event (backend.events.service.report_event)
and of accepting one (the update that sets due_at) with and without those indexes.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import statistics
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from alembic import command
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.orm import Session

from backend.db import alembic_config
from bench.common import database_url, format_table, log, percentile

END = datetime(2026, 1, 1, tzinfo=UTC)  # fixed, so a rebuilt history is the same
YEARS = 10
STATS_INDEXES = ("ix_events_district_due", "ix_events_town_due", "ix_events_open_due")
GOAL_P95_MS = 300.0
GOAL_REPORT_SLOWDOWN = 0.20
NAIVE_LABEL = "naive GROUP BY grid (counts only)"
# As of the end of the history (nothing happened since: the events' columns answer), and as of
# a month earlier (the trail answers for the events handled since).
PAST = timedelta(days=30)
NOW_LABEL = "now"
PAST_LABEL = "30 days ago"


@dataclass(frozen=True)
class Dataset:
    name: str
    database: str
    url_variable: str
    events: int
    seed: int
    points_per_grid: int


# --- databases --------------------------------------------------------------------------------


def dataset_url(dataset: Dataset, fresh: bool = False) -> str:
    return database_url(dataset.database, dataset.url_variable, fresh)


def migrate(url: str) -> None:
    command.upgrade(alembic_config(url), "head")


def make_engine(url: str) -> Engine:
    return create_engine(url, connect_args={"options": "-c timezone=UTC"})


def counts(engine: Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        areas = conn.scalar(text("SELECT count(*) FROM areas")) or 0
        events = conn.scalar(text("SELECT count(*) FROM events")) or 0
    return areas, events


def prepare(dataset: Dataset) -> Engine:
    """The dataset's database with its area tree and history, built when missing."""
    from backend import demo, history
    from backend.config import Settings

    url = dataset_url(dataset)
    migrate(url)
    engine = make_engine(url)
    areas, events = counts(engine)
    if events == dataset.events:
        log(f"{dataset.name}: reusing {areas:,} areas and {events:,} events")
        return engine
    if areas or events:
        engine.dispose()
        log(f"{dataset.name}: the database holds other data; rebuilding it")
        url = dataset_url(dataset, fresh=True)
        migrate(url)
        engine = make_engine(url)
    data_dir = Settings(database_url=url).data_dir
    started = time.perf_counter()
    with Session(engine) as session:
        specs = (
            demo.conghua_specs(data_dir) if dataset.name == "Conghua" else (demo.guangzhou_specs(data_dir))
        )
        count = demo.load_areas(session, specs)
        session.commit()
    log(f"{dataset.name}: {count:,} areas in {time.perf_counter() - started:.0f} s")
    plan = history.Plan(
        start=END - timedelta(days=round(365.25 * YEARS)), end=END, events=dataset.events, seed=dataset.seed
    )
    with Session(engine) as session:
        # The people the history names: two workers per grid, a supervisor per centre. The demo
        # logins among them belong to Conghua's towns, so the Guangzhou-scale tree's history
        # names nobody (the figures timed here are per area, not per person).
        if dataset.name == "Conghua":
            demo.load_staff(session, Settings(database_url=url))
        summary = history.load_history(session, plan, points_per_grid=dataset.points_per_grid, analyze=False)
        session.commit()
    log(
        f"{dataset.name}: {summary.events:,} events and {summary.actions:,} actions over "
        f"{YEARS} years in {summary.seconds:.0f} s (weak towns {', '.join(summary.weak_towns)})"
    )
    started = time.perf_counter()
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE events"))
        conn.execute(text("VACUUM ANALYZE event_actions"))
    log(f"{dataset.name}: VACUUM ANALYZE in {time.perf_counter() - started:.0f} s")
    return engine


@contextmanager
def without_stats_indexes(session: Session) -> Iterator[None]:
    """Hide the statistics indexes from this transaction (dropped, then rolled back)."""
    session.rollback()
    for name in STATS_INDEXES:
        session.execute(text(f"DROP INDEX {name}"))
    try:
        yield
    finally:
        session.rollback()


# --- timings ----------------------------------------------------------------------------------


def timed(call: Callable[[], object], repeats: int, warmup: int = 2) -> list[float]:
    for _ in range(warmup):
        call()
    out = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        out.append((time.perf_counter() - started) * 1000)
    return out


NAIVE = text(
    "SELECT grid_code, count(*) AS due, count(*) FILTER (WHERE closed_at <= :as_of) AS closed"
    " FROM events WHERE district_code = :area AND status <> 'rejected'"
    " AND due_at >= :window_from AND due_at < :window_to GROUP BY grid_code"
)


def _figures(stats: object, ms: list[float]) -> list[object]:
    return [stats.totals.due, len(stats.groups), percentile(ms, 0.5), percentile(ms, 0.95)]  # type: ignore[attr-defined]


def busiest_district(session: Session) -> str:
    return session.execute(
        text(
            "SELECT district_code FROM events WHERE due_at >= :since GROUP BY 1"
            " ORDER BY count(*) DESC LIMIT 1"
        ),
        {"since": END - timedelta(days=365)},
    ).scalar_one()


def query_rows(dataset: Dataset, engine: Engine, repeats: int) -> list[list[object]]:
    from backend import config, create_app, settle_heap
    from backend.stats import queries
    from bench.common import bench_access_token

    rows: list[list[object]] = []
    with Session(engine) as session:
        district = busiest_district(session)
        grids = session.scalar(
            text("SELECT count(*) FROM areas WHERE level = 'grid' AND code LIKE :d || '%'"), {"d": district}
        )
        log(f"{dataset.name}: district {district} ({grids:,} grids)")
        windows = {
            "1 year": END - timedelta(days=365),
            f"{YEARS} years": END - timedelta(days=round(365.25 * YEARS)),
        }

        def stats_call(start: datetime, end: datetime = END) -> Callable[[], object]:
            return lambda: queries.closure_stats(
                session, area=district, window_from=start, window_to=end, as_of=end, group_by=("grid",)
            )

        def naive_call(start: datetime) -> Callable[[], object]:
            params = {"area": district, "window_from": start, "window_to": END, "as_of": END}
            return lambda: session.execute(NAIVE, params).all()

        url = engine.url.render_as_string(False)
        settings = config.from_environ({**os.environ, "DATABASE_URL": url})
        app = create_app(settings, session_factory=lambda: Session(engine))  # type: ignore[arg-type]
        settle_heap()  # as backend.wsgi does for gunicorn
        client = app.test_client()
        headers = {"Authorization": f"Bearer {bench_access_token(url)}"}

        def http_call(start: datetime, end: datetime = END) -> Callable[[], object]:
            query = {
                "area": district,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "as_of": end.isoformat(),
                "group_by": "grid",
            }

            def call() -> object:
                # The request's log line is written, as in production, but not onto this table.
                with open(os.devnull, "w") as quiet, contextlib.redirect_stderr(quiet):
                    response = client.get("/api/v1/stats/closure", query_string=query, headers=headers)
                assert response.status_code == 200, response.data[:500]
                return response

            return call

        for label, start in windows.items():
            n = repeats if label == "1 year" else max(3, repeats // 3)
            due = stats_call(start)()
            assert isinstance(due, queries.ClosureStats)
            for what, call in (
                ("closure_stats by grid", stats_call(start)),
                ("GET /stats/closure?group_by=grid", http_call(start)),
                (NAIVE_LABEL, naive_call(start)),
            ):
                ms = timed(call, n)
                rows.append([dataset.name, what, "stats indexes", label, NOW_LABEL, *_figures(due, ms)])
            # The same window a month earlier, as of its end: events handled since then are
            # read from their trail.
            past = stats_call(start - PAST, END - PAST)()
            assert isinstance(past, queries.ClosureStats)
            for what, call in (
                ("closure_stats by grid", stats_call(start - PAST, END - PAST)),
                ("GET /stats/closure?group_by=grid", http_call(start - PAST, END - PAST)),
            ):
                ms = timed(call, n)
                rows.append([dataset.name, what, "stats indexes", label, PAST_LABEL, *_figures(past, ms)])
            with without_stats_indexes(session):
                for what, call in (
                    ("closure_stats by grid", stats_call(start)),
                    (NAIVE_LABEL, naive_call(start)),
                ):
                    ms = timed(call, max(3, n // 3), warmup=1)
                    rows.append([dataset.name, what, "none (baseline)", label, NOW_LABEL, *_figures(due, ms)])
    return rows


def write_rows(dataset: Dataset, engine: Engine, inserts: int, rounds: int) -> list[list[object]]:
    """Per-event cost of reporting and of accepting, with and without the statistics indexes."""
    return [[dataset.name, *row] for row in write_costs(engine, inserts, rounds, without_stats_indexes)]


def write_costs(
    engine: Engine, inserts: int, rounds: int, without: Callable[[Session], AbstractContextManager[None]]
) -> list[list[object]]:
    """Per-event cost (ms) of reporting (backend.events.service.report_event) and of accepting
    (the update that sets due_at), without something (`without(session)` takes it away from the
    transaction) and with it, in alternate rounds; rows of write, events, without, with, change."""
    from backend import history
    from backend.auth.service import Actor
    from backend.events import service

    with Session(engine) as session:
        grids = history.read_grids(session, points_per_grid=2, seed=1)
    rng = random.Random(7)
    points = [p for g in grids for p in g.points]
    results: dict[tuple[str, bool], list[float]] = {}

    def one_round(with_it: bool) -> None:
        with Session(engine) as session:
            with nullcontext() if with_it else without(session):
                ids = []
                started = time.perf_counter()
                for _ in range(inserts):
                    lon, lat = rng.choice(points)
                    event, _ = service.report_event(
                        session,
                        service.Report(category="environment", description="路边垃圾堆积", lon=lon, lat=lat),
                        actor=Actor(role="admin", username="bench"),
                    )
                    ids.append(event.id)
                reported = time.perf_counter() - started
                started = time.perf_counter()
                for event_id in ids:
                    session.execute(
                        text(
                            "UPDATE events SET status = 'accepted', accepted_at = now(),"
                            " due_at = now() + interval '48 hours', version = version + 1"
                            " WHERE id = :id"
                        ),
                        {"id": event_id},
                    )
                accepted = time.perf_counter() - started
                session.rollback()
        results.setdefault(("report_event", with_it), []).append(reported / inserts * 1000)
        results.setdefault(("accept (UPDATE sets due_at)", with_it), []).append(accepted / inserts * 1000)

    one_round(True)  # warm the caches
    results.clear()
    for _ in range(rounds):
        one_round(False)
        one_round(True)
    rows: list[list[object]] = []
    for what in ("report_event", "accept (UPDATE sets due_at)"):
        before = statistics.median(results[(what, False)])
        after = statistics.median(results[(what, True)])
        rows.append([what, inserts * rounds, before, after, f"{(after / before - 1) * 100:+.1f}%"])
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conghua-events", type=int, default=1_370_000)
    parser.add_argument("--guangzhou-events", type=int, default=2_000_000)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--inserts", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--skip-guangzhou", action="store_true")
    args = parser.parse_args(argv)
    datasets = [
        Dataset(
            "Conghua", "wangge_bench_stats_conghua", "BENCH_STATS_CONGHUA_URL", args.conghua_events, 2024, 12
        )
    ]
    if not args.skip_guangzhou:
        datasets.append(
            Dataset(
                "Guangzhou",
                "wangge_bench_stats_guangzhou",
                "BENCH_STATS_GUANGZHOU_URL",
                args.guangzhou_events,
                2025,
                4,
            )
        )
    log(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    query_table: list[list[object]] = []
    write_table: list[list[object]] = []
    for dataset in datasets:
        engine = prepare(dataset)
        try:
            query_table += query_rows(dataset, engine, args.repeats)
            write_table += write_rows(dataset, engine, args.inserts, args.rounds)
        finally:
            engine.dispose()
    log("")
    log("District-wide closure statistics grouped by grid (ms per call; as_of = window end)")
    log(
        format_table(
            ["dataset", "query", "indexes", "window", "as of", "due", "groups", "p50 ms", "p95 ms"],
            query_table,
        )
    )
    log("")
    log("Cost per event of writes, with and without the statistics indexes (ms)")
    log(format_table(["dataset", "write", "events", "without", "with", "change"], write_table))
    log("")
    one_year = [
        r for r in query_table if r[1] != NAIVE_LABEL and r[2] == "stats indexes" and r[3] == "1 year"
    ]
    for row in one_year:
        p95 = float(str(row[8]))
        verdict = "met" if p95 < GOAL_P95_MS else "MISSED"
        log(
            f"goal {row[0]} district-by-grid, 1 year, as of {row[4]}, p95 < {GOAL_P95_MS:.0f} ms, "
            f"{row[1]}: {verdict} ({p95:.0f} ms)"
        )
    for row in write_table:
        if row[1] == "report_event":
            slower = float(row[4]) / float(row[3]) - 1  # type: ignore[arg-type]
            verdict = "met" if slower <= GOAL_REPORT_SLOWDOWN else "MISSED"
            log(
                f"goal {row[0]} reporting at most {GOAL_REPORT_SLOWDOWN:.0%} slower: {verdict} "
                f"({slower:+.1%})"
            )
    log(f"load average now {os.getloadavg()[0]:.1f} (other work on the machine skews timings)")


if __name__ == "__main__":
    main()
