"""Benchmark the supervisors' page in Debian's chromium: from a cold page load to the first
coloured map and filled table, and a drill-down click.

Run from the project root: `.venv/bin/python -m bench.dashboard`. Two databases of the private
cluster, each built once and kept: the Conghua demo (`flask demo prepare`: 865 grids, two years
of events up to the day it was built) and the Guangzhou-scale tree (19,660 grids, with one year
of history), whose Conghua district holds 5,168 grids. The app runs under gunicorn as `make run`
runs it; chromium starts with an empty cache for every cold load, already signed in (the login's
cookies are set before the page opens), and the page marks the moment its map is coloured and
its table filled (`performance.mark('wangge-ready')`).

Each row gives the median and the slowest of the runs, and the API's own share: the wall time
during which at least one /api/ request was in flight (the browser's resource timings), and the
app's own time in those requests (their Server-Timing). Goals: 1.5 s for Conghua by grid, 3 s for
the 5,000-grid district.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from alembic import command
from playwright.sync_api import Browser, Page, sync_playwright
from sqlalchemy import create_engine, text
from sqlalchemy.orm import Session

from backend.db import alembic_config
from bench.common import ROOT, database_url, format_table, gunicorn, launch_chromium, log, machine
from geo.areatree import GUANGZHOU_GRIDS

if TYPE_CHECKING:
    from playwright._impl._api_structures import SetCookieParam  # the type add_cookies takes

CONGHUA_DATABASE = "wangge_bench_page"
GUANGZHOU_DATABASE = "wangge_bench_page_gz"
GUANGZHOU_EVENTS = 400_000
USER, PASSWORD = "page-bench", "page-bench-password"
# As `make run` serves it (scripts/gunicorn.conf.py; its housekeeping is off for the benchmark).
WORKERS = "-c scripts/gunicorn.conf.py -w 2 --worker-class gthread --threads 4 --reuse-port --preload"


@dataclass(frozen=True)
class Case:
    name: str
    query: str
    goal_ms: float | None
    drill: bool = False


# --- databases --------------------------------------------------------------------------------


def prepare_conghua() -> str:
    """The `make run` demo in its own database (loaded the first time only)."""
    url = database_url(CONGHUA_DATABASE, "BENCH_PAGE_CONGHUA_URL")
    env = {**os.environ, "DATABASE_URL": url}
    subprocess.run(
        [sys.executable, "-m", "flask", "--app", "backend.wsgi", "demo", "prepare"],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    return url


def prepare_guangzhou() -> str:
    """The Guangzhou-scale tree and a year of history, built once."""
    from backend import demo, history
    from backend.config import Settings

    url = database_url(GUANGZHOU_DATABASE, "BENCH_PAGE_GUANGZHOU_URL")
    command.upgrade(alembic_config(url), "head")
    engine = create_engine(url)
    with Session(engine) as session:
        grids = session.scalar(text("SELECT count(*) FROM areas WHERE level = 'grid' AND valid_to IS NULL"))
        events = session.scalar(text("SELECT count(*) FROM events"))
    if grids != GUANGZHOU_GRIDS or events != GUANGZHOU_EVENTS:
        engine.dispose()
        url = database_url(GUANGZHOU_DATABASE, "BENCH_PAGE_GUANGZHOU_URL", fresh=True)
        command.upgrade(alembic_config(url), "head")
        engine = create_engine(url)
        started = time.perf_counter()
        with Session(engine) as session:
            demo.load_areas(session, demo.guangzhou_specs(Settings(database_url=url).data_dir))
            session.commit()
        log(f"Guangzhou-scale tree in {time.perf_counter() - started:.0f} s")
        end = datetime.now(UTC).replace(microsecond=0)
        plan = history.Plan(start=end - timedelta(days=365), end=end, events=GUANGZHOU_EVENTS, seed=1966)
        with Session(engine) as session:
            summary = history.load_history(session, plan, points_per_grid=2)
            session.commit()
        log(f"{summary.events:,} events and {summary.actions:,} actions in {summary.seconds:.0f} s")
    engine.dispose()
    return url


def ensure_user(url: str) -> None:
    from backend import config
    from backend.auth import service as auth
    from backend.auth.models import User

    settings = config.from_environ({**os.environ, "DATABASE_URL": url})
    engine = create_engine(url)
    with Session(engine) as session:
        if session.query(User).filter_by(username=USER).first() is None:
            auth.create_user(
                session, settings, username=USER, password=PASSWORD, display_name="Benchmark", role="admin"
            )
            session.commit()
    engine.dispose()


# --- the page ---------------------------------------------------------------------------------

# The API's share of a load: the union of its requests' spans, and the app's own time in them.
SHARES = """
(since) => {
  const api = performance.getEntriesByType('resource')
    .filter((e) => new URL(e.name).pathname.startsWith('/api/') && e.startTime >= since)
    .map((e) => ({
      start: e.startTime, end: e.responseEnd, bytes: e.encodedBodySize,
      app: e.serverTiming.filter((t) => t.name === 'app').reduce((s, t) => s + t.duration, 0),
    }));
  api.sort((a, b) => a.start - b.start);
  let wall = 0, reach = -1;
  for (const span of api) {
    const from = Math.max(span.start, reach);
    if (span.end > from) wall += span.end - from;
    reach = Math.max(reach, span.end);
  }
  return { wall, app: api.reduce((s, e) => s + e.app, 0), bytes: api.reduce((s, e) => s + e.bytes, 0),
           requests: api.length };
}
"""


def _ready(page: Page) -> None:
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=60_000)


def _last(page: Page, name: str) -> float:
    return float(page.evaluate(f"() => performance.getEntriesByName('{name}').at(-1).startTime"))


def _open(browser: Browser, base: str, cookies: list[SetCookieParam], query: str) -> Page:
    """A fresh context (no cache), signed in, on the page; once it is ready."""
    context = browser.new_context(viewport={"width": 1366, "height": 768})
    context.add_cookies(cookies)
    page = context.new_page()
    page.goto(f"{base}/dashboard?{query}")
    _ready(page)
    return page


def _figures(page: Page, since: float) -> dict[str, float]:
    """The time from `since` to the ready mark, the API's share, what was drawn; then close."""
    figures = {
        "total": _last(page, "wangge-ready") - since,
        **page.evaluate(SHARES, since),
        "rows": int(page.locator("#table").get_attribute("data-rows") or 0),
        "drawn": page.evaluate("() => window.wangge.renderedCount()"),
    }
    page.context.close()
    return figures


def cold_load(browser: Browser, base: str, cookies: list[SetCookieParam], query: str) -> dict[str, float]:
    """One cold load, timed from navigation start."""
    return _figures(_open(browser, base, cookies, query), 0.0)


def drill(browser: Browser, base: str, cookies: list[SetCookieParam], query: str) -> dict[str, float]:
    """Load the district by town, then time a click on the busiest town (to its villages)."""
    page = _open(browser, base, cookies, query)
    page.locator("#table thead th[data-key='due']").click()  # the busiest town first
    page.locator("#table tbody tr").first.click()
    _ready(page)
    return _figures(page, _last(page, "wangge-load"))


def sign_in(base: str) -> list[SetCookieParam]:
    import requests

    response = requests.post(
        f"{base}/dashboard/session",
        json={"username": USER, "password": PASSWORD},
        headers={"X-Wangge-Page": "1"},
        timeout=30,
    )
    response.raise_for_status()
    return [
        {"name": c.name, "value": c.value or "", "domain": "127.0.0.1", "path": c.path, "httpOnly": True}
        for c in response.cookies
    ]


def run(url: str, cases: list[Case], repeats: int) -> list[list[object]]:
    ensure_user(url)
    rows: list[list[object]] = []
    with gunicorn(url, WORKERS) as server, sync_playwright() as driver:
        base = f"http://127.0.0.1:{server.port}"
        browser = launch_chromium(driver)
        cookies = sign_in(base)
        for case in cases:
            measure = drill if case.drill else cold_load
            measure(browser, base, cookies, case.query)  # the server's first request of the kind
            runs = [measure(browser, base, cookies, case.query) for _ in range(repeats)]
            totals = [r["total"] for r in runs]
            median = statistics.median(totals)
            middle = min(runs, key=lambda r: abs(r["total"] - median))
            verdict = "" if case.goal_ms is None else ("yes" if median <= case.goal_ms else "NO")
            rows.append(
                [
                    case.name,
                    int(middle["rows"]),
                    round(median),
                    round(max(totals)),
                    round(middle["wall"]),
                    f"{middle['wall'] / median:.0%}",
                    round(middle["app"]),
                    f"{middle['bytes'] / 1e6:.2f}",
                    "" if case.goal_ms is None else f"{case.goal_ms:.0f}",
                    verdict,
                ]
            )
            log(f"{case.name}: {median:.0f} ms")
        browser.close()
    return rows


HEADERS = [
    "view",
    "areas",
    "median ms",
    "slowest ms",
    "API wall ms",
    "API share",
    "app ms",
    "API MB",
    "goal ms",
    "met",
]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    log("preparing the Conghua demo database ...")
    conghua = prepare_conghua()
    log("preparing the Guangzhou-scale database ...")
    guangzhou = prepare_guangzhou()
    period = "period=this_month&layer=closure"
    rows = run(
        conghua,
        [
            Case("Conghua demo, by grid (cold)", f"area=440117&level=grid&{period}", 1500),
            Case("Conghua demo, by town (cold)", f"area=440117&level=town&{period}", None),
            Case(
                "Conghua demo, drill-down: a town's villages", f"area=440117&level=town&{period}", None, True
            ),
        ],
        args.repeats,
    )
    rows += run(
        guangzhou,
        [
            Case("Guangzhou-scale 440117, 5,168 grids (cold)", f"area=440117&level=grid&{period}", 3000),
            Case("Guangzhou-scale 440117, drill-down", f"area=440117&level=town&{period}", None, True),
        ],
        args.repeats,
    )
    print(f"\nThe supervisors' page in chromium ({machine()}); {args.repeats} runs each, cold cache")
    print(format_table(HEADERS, rows))
    print(
        "API wall: time with at least one /api/ request in flight; app: the app's own time in them"
        " (Server-Timing). The rest is the browser: parsing, MapLibre's workers, drawing, the table."
    )


if __name__ == "__main__":
    main()
