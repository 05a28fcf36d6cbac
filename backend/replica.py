"""A hot standby for reads that may lag a little: statistics, GIS, tiles and exports.

PostgreSQL's streaming replication keeps the standby a moment behind the primary. Writes, sign-in
and whatever a caller must see right after writing stay on the primary (backend.db.get_session);
the reads above take `get_read_session`, which hands out a session on the standby while it
answers and is at most `max_lag_s` behind, and the primary's session otherwise: a standby that
is down or too far behind is skipped, never an error. Its state is checked at most once a second
per process, so a request pays for no check of its own.

The lag is how long ago the last transaction the standby replayed was committed on the primary,
when WAL it has received is still waiting to be replayed; 0 when it has replayed all it
received. (A primary that writes nothing for a while and then commits shows that pause as lag
for the moment it takes to replay the commit.)
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field

import flask
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from backend import db

log = logging.getLogger(__name__)

CHECK_EVERY_S = 1.0
LAG_SQL = """SELECT pg_is_in_recovery() AS standby,
    CASE WHEN NOT pg_is_in_recovery() OR pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn() THEN 0
    ELSE coalesce(extract(epoch FROM clock_timestamp() - pg_last_xact_replay_timestamp()), 0)
    END AS lag_s"""


@dataclass(frozen=True)
class ReplicaState:
    """What the last check found: up (it answered) and its lag in seconds (None when down)."""

    up: bool
    lag_s: float | None
    usable: bool

    @property
    def status(self) -> str:
        if not self.up:
            return "down"
        return "streaming" if self.usable else "lagging"


@dataclass
class Replica:
    factory: sessionmaker[Session]
    max_lag_s: float
    _state: ReplicaState | None = None
    _checked_at: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def state(self, *, fresh: bool = False) -> ReplicaState:
        """The standby's state, checked again when the last check is older than a second."""
        now = time.monotonic()
        with self._lock:
            if not fresh and self._state is not None and now - self._checked_at < CHECK_EVERY_S:
                return self._state
            self._checked_at = now
        state = self._check()
        with self._lock:
            self._state = state
        return state

    def _check(self) -> ReplicaState:
        try:
            with self.factory() as session:
                row = session.execute(text(LAG_SQL)).one()
        except DBAPIError as error:
            log.warning("replica: skipped, it did not answer: %s", error.orig)
            return ReplicaState(up=False, lag_s=None, usable=False)
        lag = float(row.lag_s)
        return ReplicaState(up=True, lag_s=lag, usable=lag <= self.max_lag_s)


def init_app(
    app: flask.Flask, url: str | None, *, max_lag_s: float, pool_size: int, statement_timeout_ms: int
) -> None:
    """Use the standby at `url` for lagging reads (none when url is None)."""
    if url is None:
        return
    # A standby that does not answer must not hold a request up: connect quickly or skip it.
    engine = db.make_engine(url, pool_size, statement_timeout_ms, connect_timeout_s=2)
    app.extensions["replica"] = Replica(sessionmaker(engine, expire_on_commit=False), max_lag_s)

    @app.teardown_appcontext
    def _close_read_session(_exc: BaseException | None) -> None:
        session = flask.g.pop("db_read_session", None)
        if session is not None:
            session.close()


def replica() -> Replica | None:
    """The app's standby, if it has one."""
    value: Replica | None = flask.current_app.extensions.get("replica")
    return value


def get_read_session() -> Session:
    """This request's session for reads that may lag a little: on the standby when it is usable,
    else the primary's (backend.db.get_session)."""
    if "db_read_session" in flask.g:
        session: Session = flask.g.db_read_session
        return session
    if flask.g.get("db_read_on_primary"):
        return db.get_session()
    standby = replica()
    if standby is None or not standby.state().usable:
        # Decided once per request: all its reads see the same database.
        flask.g.db_read_on_primary = True
        return db.get_session()
    flask.g.db_read_session = standby.factory()
    return flask.g.db_read_session
