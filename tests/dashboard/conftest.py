"""The page in a real browser: Debian's chromium driven by Playwright, against the app under
gunicorn on its own database (committed data: a Conghua tree with three months of events).

Playwright's own browsers are never downloaded: bench.common.launch_chromium starts
/usr/bin/chromium, which scripts/bootstrap.sh installs. Every request the page makes is checked
to stay on the app's origin (anything else is aborted and fails the test), and every console
error fails it too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from alembic import command
from playwright.sync_api import Browser, Page, Playwright, sync_playwright
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.orm import Session

from backend.db import alembic_config
from bench.common import launch_chromium
from tests.conftest import FAST_AUTH_ENV, ROOT, Server, gunicorn

SCREENSHOTS = ROOT / "var" / "screenshots"
DISTRICT = "440117"
TOWN = "440117103"  # 温泉镇, the town supervisor's
# Each user signs in at most 10 times in five minutes (the sign-in limit): the district's
# supervisor spares the admin's sign-ins.
PEOPLE = {
    "admin": ("admin", None, "管理员"),
    "wenquan": ("supervisor", TOWN, "温泉镇综治中心"),
    "conghua": ("supervisor", DISTRICT, "从化区综治中心"),
}
PASSWORD = "page-test-password"


def _fresh_sibling(url: str, suffix: str) -> str:
    """A new, empty database beside the test database, with PostGIS."""
    base = make_url(url)
    name = f"{base.database}{suffix}"
    server = create_engine(base, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    sibling = base.set(database=name)
    engine = create_engine(sibling, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION postgis"))
    engine.dispose()
    return sibling.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def page_database(database_url: str) -> str:
    """Conghua's tree, about 3,000 events over the last three months, and two users."""
    from backend import demo, history
    from backend.auth import service as auth
    from backend.config import Settings, from_environ

    url = _fresh_sibling(database_url, "_page")
    previous = os.environ.get("DATABASE_URL")
    command.upgrade(alembic_config(url), "head")
    if previous is not None:
        os.environ["DATABASE_URL"] = previous  # alembic's env reads it
    settings = from_environ({"DATABASE_URL": url, **FAST_AUTH_ENV})
    engine = create_engine(url)
    with Session(engine) as session:
        demo.load_areas(session, demo.conghua_specs(Settings(database_url=url).data_dir))
        end = datetime.now(UTC).replace(microsecond=0)
        plan = history.Plan(start=end - timedelta(days=90), end=end, events=3000, seed=41)
        history.load_history(session, plan, points_per_grid=2, analyze=False, bulk=False)
        for username, (role, area, name) in PEOPLE.items():
            auth.create_user(
                session,
                settings,
                username=username,
                password=PASSWORD,
                display_name=name,
                role=role,
                area_code=area,
            )
        session.commit()
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def page_server(page_database: str) -> Iterator[Server]:
    with gunicorn(page_database, workers=2) as base:
        yield base


@pytest.fixture(scope="session")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="session")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch_chromium(playwright)
    yield browser
    browser.close()


@dataclass
class Watch:
    """What a page did that it must not: console errors, uncaught errors, requests elsewhere."""

    origin: str
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def open_page(browser: Browser, base: str, width: int, height: int) -> tuple[Page, Watch]:
    """A fresh browser context (no cookies) of this size, its requests and console watched."""
    context = browser.new_context(viewport={"width": width, "height": height}, locale="zh-CN")
    page = context.new_page()
    watch = Watch(_origin(base))

    def route(request_route, request):  # type: ignore[no-untyped-def]
        watch.requests.append(request.url)
        # data: and blob: URLs are made inside the page; anything with a host must be ours.
        if request.url.startswith(("data:", "blob:")) or _origin(request.url) == watch.origin:
            request_route.continue_()
        else:
            watch.foreign.append(request.url)
            request_route.abort()

    context.route("**/*", route)
    page.on("console", lambda m: watch.errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: watch.errors.append(str(e)))
    return page, watch


def sign_in(page: Page, base: str, who: str, query: str = "") -> None:
    page.goto(f"{base}/dashboard{query}")
    page.fill("input[name=username]", who)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    wait_ready(page)


def wait_ready(page: Page) -> None:
    """Until the map is coloured and the table filled (the page sets data-ready)."""
    page.wait_for_selector("body[data-ready='1']", state="attached", timeout=30_000)


def screenshot(page: Page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=False)
    return path


@pytest.fixture
def watched(browser: Browser, page_server: Server) -> Iterator[tuple[Page, Watch, str]]:
    """A desktop-sized page; after the test, no console error and no request elsewhere."""
    page, watch = open_page(browser, page_server, 1366, 768)
    yield page, watch, page_server
    page.context.close()
    assert watch.foreign == []
    assert watch.errors == []
