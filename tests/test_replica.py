"""Statistics read from a real hot standby (streaming replication of the private cluster), and
from the primary while the standby lags too far or is down: never an error.

The standby is the private cluster's (scripts/devdb.py, which makes it on first use). A database
of its own (emptied first) holds the square tree and an admin, committed; a gunicorn on loopback
serves it with the standby as its replica, at most MAX_LAG_S behind. Whether a read went to the
standby shows in its answer: replay is paused on the standby, a second event committed on the
primary, and the figures still count one.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import requests
from alembic import command
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from backend.config import _driver_url, from_environ
from backend.db import alembic_config
from tests import factories
from tests.conftest import FAST_AUTH_ENV, ROOT, gunicorn
from tests.stats import reference
from tests.stats.reference import Ev
from tests.stats.test_closure_property import GRIDS, moment

# Generous: on a busy machine the standby's replay falls seconds behind now and then.
MAX_LAG_S = 10.0
DATABASE = "wangge_test_replica"
WINDOW = {"area": "330100", "from": moment(-96).isoformat(), "to": moment(96 * 3).isoformat()}


def devdb(*args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "devdb.py"), *args],
        check=True,
        capture_output=True,
        text=True,
    )
    return result.stdout.strip()


@dataclass
class Replicated:
    primary: str  # SQLAlchemy URLs
    standby: str
    server: str
    headers: dict[str, str]

    def libpq(self, url: str) -> str:
        return url.replace("postgresql+psycopg://", "postgresql://", 1)

    def on_standby(self, sql: str) -> object:
        with psycopg.connect(self.libpq(self.standby), autocommit=True) as conn:
            row = conn.execute(sql).fetchone()
            return row[0] if row else None

    def commit_event(self) -> None:
        engine = create_engine(self.primary)
        with Session(engine) as session:
            reference.insert_events(
                session, [Ev(grid=GRIDS[0], due_at=moment(10), accepted_at=moment(0), closed_at=moment(5))]
            )
            session.commit()
        engine.dispose()

    def due(self) -> int:
        response = requests.get(
            f"{self.server}/api/v1/stats/closure", params=WINDOW, headers=self.headers, timeout=30
        )
        assert response.status_code == 200, response.text
        return int(response.json()["totals"]["due"])

    def ready(self) -> dict[str, object]:
        response = requests.get(f"{self.server}/readyz", timeout=30)
        assert response.status_code == 200, response.text
        return dict(response.json()["replica"])

    def metric(self, name: str) -> float:
        body = requests.get(f"{self.server}/metrics", timeout=30).text
        line = next(line for line in body.splitlines() if line.startswith(name + " "))
        return float(line.split()[1])


def wait_for(condition, what: str, seconds: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"waited {seconds} s for {what}"
        time.sleep(0.2)


@pytest.fixture(scope="module")
def replicated() -> Iterator[Replicated]:
    primary = _driver_url(devdb("url", DATABASE, "--fresh"))
    standby = _driver_url(devdb("replica-url", DATABASE))
    command.upgrade(alembic_config(primary), "head")
    settings = from_environ({"DATABASE_URL": primary, **FAST_AUTH_ENV})
    engine = create_engine(primary)
    from backend.auth import service as auth

    with Session(engine) as session:
        factories.add_square_tree(session)
        auth.create_user(
            session, settings, username="admin", password="admin-password", display_name="admin", role="admin"
        )
        token = auth.login(session, settings, "admin", "admin-password").access_token
        session.commit()
    engine.dispose()
    with gunicorn(
        primary, workers=1, DATABASE_REPLICA_URL=standby, WANGGE_REPLICA_MAX_LAG_S=str(MAX_LAG_S)
    ) as server:
        yield Replicated(primary, standby, server, {"Authorization": f"Bearer {token}"})


def test_statistics_read_the_standby_and_the_primary_while_it_lags(replicated):  # type: ignore[no-untyped-def]
    assert replicated.on_standby("SELECT pg_is_in_recovery()") is True
    replicated.commit_event()
    wait_for(lambda: replicated.due() == 1, "the standby to replay the first event")
    wait_for(lambda: replicated.ready()["status"] == "streaming", "the standby to be within the limit")
    assert replicated.metric("wangge_replica_up") == 1
    assert replicated.metric("wangge_replica_in_use") == 1
    replicated.on_standby("SELECT pg_wal_replay_pause()")
    try:
        replicated.commit_event()
        # Within the allowed lag, the figures are the standby's: one event, where the primary
        # holds two.
        assert replicated.due() == 1
        # Past it, the standby is skipped: the primary answers, and the service stays ready.
        wait_for(lambda: replicated.ready()["status"] == "lagging", "the lag to pass the limit", 60)
        assert replicated.due() == 2
        assert replicated.metric("wangge_replica_lag_seconds") > MAX_LAG_S
        assert replicated.metric("wangge_replica_in_use") == 0
    finally:
        replicated.on_standby("SELECT pg_wal_replay_resume()")
    wait_for(lambda: replicated.ready()["status"] == "streaming", "the standby to catch up", 60)
    assert replicated.due() == 2


def test_a_standby_that_is_down_is_skipped(replicated):  # type: ignore[no-untyped-def]
    devdb("replica-stop")
    try:
        # Once the state cached per process (a second) has gone.
        wait_for(lambda: replicated.ready()["status"] == "down", "the standby to be seen down")
        assert replicated.due() >= 1  # answered by the primary, not an error
        assert replicated.metric("wangge_replica_up") == 0
        export = requests.get(
            f"{replicated.server}/api/v1/stats/closure.csv",
            params=WINDOW,
            headers=replicated.headers,
            timeout=30,
        )
        assert export.status_code == 200
    finally:
        devdb("replica-start")
    wait_for(lambda: replicated.ready()["status"] == "streaming", "the standby to come back")
    assert replicated.due() >= 1
