"""Declarative base, engine and the one session per request."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import Any, cast

import flask
import psycopg
import psycopg.errors
from alembic.config import Config
from psycopg.rows import namedtuple_row
from sqlalchemy import Engine, MetaData, create_engine, text
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker

from backend.errors import ServiceUnavailable

log = logging.getLogger(__name__)
ROOT = Path(__file__).resolve().parent.parent

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def make_engine(
    url: str,
    pool_size: int = 10,
    statement_timeout_ms: int = 15_000,
    lock_timeout_ms: int = 5_000,
    connect_timeout_s: int | None = None,
) -> Engine:
    """Create the engine; every connection talks UTC, and gives up on a statement or a lock after
    the timeouts (a request kind may set its own; commands lift them)."""
    connect: dict[str, Any] = {} if connect_timeout_s is None else {"connect_timeout": connect_timeout_s}
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        # A connection is checked before use, so none left dead by a database restart is handed
        # out (the ping is one loopback round trip, well under the cost of any request).
        pool_pre_ping=True,
        pool_recycle=1800,
        connect_args={
            "options": f"-c timezone=UTC -c statement_timeout={int(statement_timeout_ms)}"
            f" -c lock_timeout={int(lock_timeout_ms)}",
            **connect,
        },
    )


def init_app(app: flask.Flask, factory: sessionmaker[Session]) -> None:
    """Install the session factory and close each request's session on teardown."""
    app.extensions["session_factory"] = factory

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = flask.g.pop("db_session", None)
        if session is not None:
            session.close()


def warm_pool(app: flask.Flask, connections: int) -> None:
    """Open `connections` of the pool's connections now (a forked worker's pool starts empty), so
    its first requests do not each wait for a connection to be made."""
    engine = app.extensions["session_factory"].kw["bind"]
    held = [engine.connect() for _ in range(min(connections, engine.pool.size()))]
    for connection in held:
        connection.close()


def get_session() -> Session:
    """Return this request's session, opening it on first use."""
    if "db_session" not in flask.g:
        flask.g.db_session = flask.current_app.extensions["session_factory"]()
    session: Session = flask.g.db_session
    return session


def detach_session() -> Session:
    """Hand this request's session to the caller, who closes it: a streamed response outlives
    the request's teardown, and so must its session (and server-side cursor)."""
    session = get_session()
    flask.g.pop("db_session", None)
    return session


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """Give a command its own transaction, without the requests' timeouts: commit on success,
    roll back on error."""
    session = factory()
    try:
        session.execute(text("SET LOCAL statement_timeout = 0"))
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


# `:name`, as SQLAlchemy's text() takes it; not a `::type` cast.
_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_]\w*)")


@lru_cache(maxsize=256)
def _driver_sql(sql: str) -> str:
    return _PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))


def driver_rows(
    session: Session, sql: str, params: dict[str, Any], *, binary: bool = False, generic: bool = False
) -> list[Any]:
    """Run SQL on the driver's own connection, inside the session's transaction.

    For the few statements on every request (sign-in, point assignment, the report insert):
    SQLAlchemy's statement and result handling costs more than those queries do. The SQL is
    written like any other in the project, with `:name` placeholders and every value bound.
    `binary` asks for the results in PostgreSQL's binary format (bytea as it is, not in hex).
    `generic` prepares the statement on the connection and has PostgreSQL keep one generic plan
    for it from the second call on: for a statement whose planning costs more than it takes to
    run (one over every month's partition of events), which a connection then plans once.
    """
    try:
        with driver_connection(session).cursor(row_factory=namedtuple_row) as cursor:
            if not generic:
                return cursor.execute(_driver_sql(sql), params, binary=binary).fetchall()
            cursor.execute("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)")
            rows = cursor.execute(_driver_sql(sql), params, binary=binary, prepare=True).fetchall()
            cursor.execute("SELECT set_config('plan_cache_mode', 'auto', true)")
            return rows
    except (psycopg.OperationalError, psycopg.InterfaceError) as error:
        raise unavailable(session, error) from error


def unavailable(session: Session, error: Exception) -> ServiceUnavailable:
    """The 503 for a database that failed under the driver: a restart, a cancelled statement (a
    lock or the statement timeout), a dropped connection. The connection is dropped from the pool
    so that no later request gets it."""
    log.warning("database unavailable: %s", error)
    if not isinstance(error, psycopg.errors.QueryCanceled | psycopg.errors.LockNotAvailable):
        session.connection().invalidate(error)
    return ServiceUnavailable("The database is not reachable or too busy just now; retry shortly.")


def driver_connection(session: Session) -> psycopg.Connection[Any]:
    """psycopg's own connection under the session's, inside the session's transaction."""
    # None only for a connection the pool has invalidated, which session.connection() never hands out.
    return cast("psycopg.Connection[Any]", session.connection().connection.driver_connection)


def alembic_config(url: str | None = None) -> Config:
    """Alembic's configuration for this project; migrations/env.py takes `url` from it."""
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "migrations"))
    if url is not None:
        config.attributes["url"] = url
    return config
