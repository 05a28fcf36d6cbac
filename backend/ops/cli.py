"""Flask commands for operators: backups and housekeeping."""

from __future__ import annotations

import json
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import click
import flask
from flask.cli import AppGroup, with_appcontext
from sqlalchemy.orm import Session, sessionmaker

from backend.config import Settings
from backend.ops import backup, housekeeping

backup_cli = AppGroup("backup", help="Back up and restore the database and the media files.")


def _settings() -> Settings:
    value: Settings = flask.current_app.config["SETTINGS"]
    return value


@backup_cli.command("create")
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
def create_backup(directory: Path) -> None:
    """Back up the database (pg_dump) and MEDIA_DIR into DIRECTORY, new or empty."""
    settings = _settings()
    try:
        summary = backup.create(settings.database_url, settings.media_dir, directory, settings.pg_bin)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(
        f"backed up the database and {summary.media_files} media files into {directory}"
        f" ({summary.bytes / 1e6:.1f} MB, {summary.files} files in {backup.MANIFEST})"
    )


@backup_cli.command("verify")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def verify_backup(directory: Path) -> None:
    """Check every file of a backup against its manifest."""
    try:
        entries = backup.verify(directory)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"{directory}: all {len(entries)} files match {backup.MANIFEST}")


@backup_cli.command("restore")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def restore_backup(directory: Path) -> None:
    """Restore a backup into the (empty) database of DATABASE_URL and into MEDIA_DIR."""
    settings = _settings()
    try:
        summary = backup.restore(settings.database_url, settings.media_dir, directory, settings.pg_bin)
    except backup.BackupError as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"restored the database and {summary.media_files} media files from {directory}")


def _line(msg: str, **fields: object) -> str:
    """One JSON line, like the request log's."""
    now = datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    return json.dumps({"ts": now, "msg": msg, **fields})


def _sweep(factory: sessionmaker[Session], retention: housekeeping.Retention) -> str:
    started = time.monotonic()
    done = housekeeping.sweep(factory, retention)
    return _line("housekeeping", done=done, duration_ms=round((time.monotonic() - started) * 1000, 1))


@click.command("housekeeping")
@with_appcontext
@click.option(
    "--loop",
    is_flag=True,
    help="Sweep now and then every WANGGE_HOUSEKEEPING_EVERY_S seconds, until stopped (0: exit).",
)
def housekeeping_command(loop: bool) -> None:
    """Delete old login attempts, refresh tokens, sync cursors and raw patrol tracks as the
    retention settings say, close idle patrols and compute the patrol figures due."""
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
