"""Databases at Guangzhou scale for benchmarks and scale tests, built once and kept.

A dataset database sits beside another database on the same server (its name + a suffix), is
migrated to head and holds the generated Guangzhou tree (19,660 grids) and, if asked, synthetic
events. Building the tree takes tens of seconds, so a database already holding it is reused.
"""

from __future__ import annotations

import time
from pathlib import Path

from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import create_engine, make_url, text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.orm import Session

from backend import demo
from backend.config import _driver_url
from backend.db import alembic_config
from geo.areatree import GUANGZHOU_GRIDS

SYNTHETIC_SEED = 19660


def sibling_database(url: str, name: str) -> str:
    """The URL of database `name` on the server of `url`, created (with PostGIS) if missing."""
    url = _driver_url(url)
    server = create_engine(url, isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        exists = text("SELECT 1 FROM pg_database WHERE datname = :n")
        if conn.execute(exists, {"n": name}).first() is None:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    server.dispose()
    sibling = make_url(url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(sibling, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    return sibling


def _state(url: str) -> tuple[str | None, int, int]:
    engine = create_engine(url)
    try:
        with engine.connect() as conn:
            revision = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            grids = conn.execute(
                text("SELECT count(*) FROM areas WHERE level = 'grid' AND valid_to IS NULL")
            ).scalar()
            events = conn.execute(
                text("SELECT count(*) FROM events WHERE content_hash LIKE 'synthetic:' || :seed || ':%'"),
                {"seed": SYNTHETIC_SEED},
            ).scalar()
            return revision, grids or 0, events or 0
    except ProgrammingError:
        return None, 0, 0
    finally:
        engine.dispose()


def guangzhou(url: str, data_dir: Path, *, events: int = 0, log=print) -> None:  # type: ignore[no-untyped-def]
    """Make the database at `url` hold the Guangzhou tree and exactly `events` synthetic events."""
    head = ScriptDirectory.from_config(alembic_config(url)).get_current_head()
    revision, grids, present = _state(url)
    engine = create_engine(url)
    if revision != head or grids != GUANGZHOU_GRIDS:
        started = time.monotonic()
        log("building the Guangzhou tree (once; it is kept) ...")
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        command.upgrade(alembic_config(url), "head")
        with Session(engine) as session:
            demo.load_areas(session, demo.guangzhou_specs(data_dir))
            session.commit()
        present = 0
        log(f"  built in {time.monotonic() - started:.0f} s")
    if present != events:
        with Session(engine) as session:
            session.execute(
                text("DELETE FROM events WHERE content_hash LIKE 'synthetic:' || :seed || ':%'"),
                {"seed": SYNTHETIC_SEED},
            )
            if events:
                log(f"inserting {events:,} synthetic events ...")
                demo.insert_synthetic_events(session, events, seed=SYNTHETIC_SEED)
            session.commit()
        with engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    engine.dispose()
