"""Flask commands for operators: housekeeping."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime

import click
import flask
from flask.cli import with_appcontext
from sqlalchemy.orm import Session, sessionmaker

from backend.config import Settings
from backend.ops import housekeeping


def _settings() -> Settings:
    value: Settings = flask.current_app.config["SETTINGS"]
    return value


def _line(msg: str, **fields: object) -> str:
    """One JSON line, like the request log's."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return json.dumps({"ts": now, "msg": msg, **fields})


def _sweep(factory: sessionmaker[Session], retention: housekeeping.Retention) -> str:
    started = time.monotonic()
    deleted = housekeeping.sweep(factory, retention)
    return _line("housekeeping", deleted=deleted, duration_ms=round((time.monotonic() - started) * 1000, 1))


@click.command("housekeeping")
@with_appcontext
@click.option(
    "--loop",
    is_flag=True,
    help="Sweep now and then every WANGGE_HOUSEKEEPING_EVERY_S seconds, until stopped (0: exit).",
)
def housekeeping_command(loop: bool) -> None:
    """Delete old login attempts, refresh tokens and sync cursors, as the retention settings say."""
    settings = _settings()
    factory = flask.current_app.extensions["session_factory"]
    retention = housekeeping.Retention.of(settings)
    if not loop:
        click.echo(_sweep(factory, retention))
        return
    if settings.housekeeping_every_s <= 0:
        return
    while True:
        try:
            click.echo(_sweep(factory, retention), err=True)
        except Exception as error:  # the database may be away for a while: try again next time
            first_line = (str(error).splitlines() or [""])[0]
            click.echo(_line("housekeeping failed", error=f"{type(error).__name__}: {first_line}"), err=True)
        sys.stderr.flush()
        time.sleep(settings.housekeeping_every_s)
