"""A real PostGIS for every test: migrated once, each test in a transaction rolled back after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

ROOT = Path(__file__).resolve().parent.parent


def _test_database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "devdb.py"), "url", "wangge_test", "--fresh"],
        check=True, capture_output=True, text=True,
    )
    return result.stdout.strip()


def alembic_config(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    config.cmd_opts = None
    config.attributes["url"] = url
    return config


@pytest.fixture(scope="session")
def database_url() -> str:
    from backend.config import _driver_url

    return _driver_url(_test_database_url())


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """Migrate an emptied database to head and load the Conghua demo tree (committed)."""
    from backend import demo
    from backend.config import Settings

    engine = create_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    os.environ["DATABASE_URL"] = database_url
    command.upgrade(alembic_config(database_url), "head")
    with Session(engine) as session:
        demo.load_areas(session, demo.conghua_specs(Settings(database_url=database_url).data_dir))
        session.commit()
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn:
        outer = conn.begin()
        yield conn
        outer.rollback()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def base_app(database_url: str, engine: Engine):  # type: ignore[no-untyped-def]
    from backend import create_app
    from backend.config import Settings

    app = create_app(Settings(database_url=database_url), session_factory=sessionmaker(engine))
    app.config["TESTING"] = True
    return app


@pytest.fixture
def app(base_app, session_factory):  # type: ignore[no-untyped-def]
    """The app, its sessions joined to this test's rolled-back transaction."""
    previous = base_app.extensions["session_factory"]
    base_app.extensions["session_factory"] = session_factory
    yield base_app
    base_app.extensions["session_factory"] = previous


@pytest.fixture
def client(app):  # type: ignore[no-untyped-def]
    return app.test_client()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def live_server(database_url: str, engine: Engine) -> Iterator[str]:
    """The app under gunicorn on loopback, against the test database (commits are real)."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "WANGGE_POOL_SIZE": "4"}
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "-b", f"127.0.0.1:{port}", "-w", "4",
         "--worker-class", "gthread", "--threads", "4", "--log-level", "warning",
         "backend.wsgi:app"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if requests.get(base + "/healthz", timeout=5).ok:
                break
        except requests.RequestException:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise RuntimeError("gunicorn did not start: " + process.stderr.read().decode()[-2000:])
        time.sleep(0.2)
    yield base
    process.terminate()
    process.wait(timeout=10)
