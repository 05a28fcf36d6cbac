"""A real PostGIS for every test: migrated once, each test in a transaction rolled back after."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, cast

import pytest
import requests
from alembic import command
from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.orm import Session, sessionmaker

from backend.db import alembic_config

ROOT = Path(__file__).resolve().parent.parent


def _test_database_url() -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return url
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "devdb.py"), "url", "wangge_test", "--fresh"],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@pytest.fixture(scope="session")
def database_url() -> str:
    from backend.config import _driver_url

    return _driver_url(_test_database_url())


# Cheap password hashing and long-lived access tokens keep the suite fast; production keeps
# the memory-hard defaults.
FAST_AUTH_ENV = {
    "WANGGE_ARGON2_TIME_COST": "1",
    "WANGGE_ARGON2_MEMORY_KIB": "1024",
    "WANGGE_ACCESS_TOKEN_MINUTES": "120",
    # Photos go to a throw-away folder, shared with the gunicorn processes of the run.
    "MEDIA_DIR": tempfile.mkdtemp(prefix="wangge-media-"),
}


@pytest.fixture(scope="session")
def test_settings(database_url: str):  # type: ignore[no-untyped-def]
    from backend.config import from_environ

    return from_environ({"DATABASE_URL": database_url, **FAST_AUTH_ENV})


@dataclass
class Accounts:
    """Committed once per run: one principal of each kind around 温泉镇 (440117103)."""

    ids: dict[str, int]
    tokens: dict[str, str]
    passwords: dict[str, str]
    gis_key: str
    worker_grids: list[str]

    def headers(self, who: str) -> dict[str, str]:
        if who == "gis":
            return {"X-API-Key": self.gis_key}
        return {"Authorization": f"Bearer {self.tokens[who]}"}


_STATE: dict[str, object] = {}

ACCOUNTS = {
    # name: (role, area)
    "admin": ("admin", None),
    "supervisor": ("supervisor", "440117103"),
    "village_supervisor": ("supervisor", "440117103001"),
    "other_supervisor": ("supervisor", "440117104"),
    "worker": ("worker", None),
    "other_worker": ("worker", None),
}


def _create_accounts(session: Session, settings) -> Accounts:  # type: ignore[no-untyped-def]
    from backend.areas import service as areas
    from backend.auth import service as auth

    ids, tokens, passwords = {}, {}, {}
    for name, (role, area) in ACCOUNTS.items():
        password = f"{name}-password"
        user = auth.create_user(
            session,
            settings,
            username=name,
            password=password,
            display_name=name,
            role=role,
            area_code=area,
            phone="13800000000",
        )
        ids[name], passwords[name] = user.id, password
    worker_grids = [g.code for g in areas.list_areas(session, level="grid", parent="440117103001", limit=2)]
    auth.set_user_grids(session, ids["worker"], worker_grids)
    other = [g.code for g in areas.list_areas(session, level="grid", parent="440117104001", limit=1)]
    auth.set_user_grids(session, ids["other_worker"], other)
    for name in ACCOUNTS:
        tokens[name] = auth.login(session, settings, name, passwords[name]).access_token
    _, gis_key = auth.create_api_key(session, name="test GIS", area_code="440117103")
    return Accounts(ids, tokens, passwords, gis_key, worker_grids)


@pytest.fixture(scope="session")
def accounts(engine: Engine) -> Accounts:
    return cast(Accounts, _STATE["accounts"])


@pytest.fixture(scope="session")
def engine(database_url: str, test_settings) -> Iterator[Engine]:  # type: ignore[no-untyped-def]
    """Migrate an emptied database to head, load the Conghua demo tree and accounts (committed)."""
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
        session.flush()
        _STATE["accounts"] = _create_accounts(session, test_settings)
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
    return sessionmaker(bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
def session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    with session_factory() as session:
        yield session


@pytest.fixture(scope="session")
def base_app(test_settings, engine: Engine):  # type: ignore[no-untyped-def]
    from backend import create_app

    app = create_app(test_settings, session_factory=sessionmaker(engine))
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
def anon_client(app):  # type: ignore[no-untyped-def]
    """A client that sends no credentials."""
    return app.test_client()


@pytest.fixture
def client(app, accounts):  # type: ignore[no-untyped-def]
    """A client signed in as the administrator."""
    return client_as(app, accounts, "admin")


def client_as(app, accounts: Accounts, who: str):  # type: ignore[no-untyped-def]
    client = app.test_client()
    for header, value in accounts.headers(who).items():
        client.environ_base["HTTP_" + header.upper().replace("-", "_")] = value
    return client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server(str):
    """A running server's base URL, and the pid of its gunicorn master."""

    pid: int


@contextmanager
def gunicorn(
    database_url: str, workers: int = 4, log_path: Path | None = None, **env: str
) -> Iterator[Server]:
    """Run the app under gunicorn on a free loopback port; yield its base URL. Its log (stderr)
    goes to `log_path`, kept, when given; housekeeping runs only when WANGGE_HOUSEKEEPING_EVERY_S
    asks for it."""
    port = _free_port()
    environ = {
        **os.environ,
        **FAST_AUTH_ENV,
        "DATABASE_URL": database_url,
        "WANGGE_POOL_SIZE": "4",
        "WANGGE_HOUSEKEEPING_EVERY_S": "0",
        **env,
    }
    # Logs go to a file: a pipe nobody reads would fill up and stall the server.
    log: IO[bytes]
    if log_path is not None:
        log = log_path.open("wb")
    else:
        log = tempfile.NamedTemporaryFile(prefix="wangge-gunicorn-", suffix=".log", delete=False)
    process = subprocess.Popen(
        [
            # Through this python: a copied venv's scripts still name the original's python.
            sys.executable,
            "-m",
            "gunicorn",
            "-c",
            str(ROOT / "scripts" / "gunicorn.conf.py"),
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            str(workers),
            "--worker-class",
            "gthread",
            "--threads",
            "4",
            "--reuse-port",
            "--log-level",
            "warning",
            "backend.wsgi:app",
        ],
        cwd=ROOT,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    base = Server(f"http://127.0.0.1:{port}")
    base.pid = process.pid
    deadline = time.monotonic() + 60
    try:
        while True:
            try:
                if requests.get(base + "/healthz", timeout=5).ok:
                    break
            except requests.RequestException:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("gunicorn did not start: " + Path(log.name).read_text()[-2000:])
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()
        if log_path is None:
            Path(log.name).unlink(missing_ok=True)


@pytest.fixture(scope="session")
def live_server(database_url: str, engine: Engine) -> Iterator[Server]:
    """The app under gunicorn on loopback, against the test database (commits are real)."""
    with gunicorn(database_url) as base:
        yield base
