"""Backups: made from a database with events and photos, restored into a new empty database,
every table's rows and every photo's bytes the same; a backup that does not match is refused."""

from __future__ import annotations

import hashlib
import io
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from alembic import command
from PIL import Image
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from backend import create_app
from backend.auth.service import Actor
from backend.config import Settings
from backend.db import alembic_config
from backend.events import photos
from backend.events import service as events
from backend.ops import backup
from tests.conftest import FAST_AUTH_ENV
from tests.factories import add_square_tree

PG_BIN = Path("/usr/lib/postgresql/15/bin")
PHOTOS = 3


def _admin_url(database_url: str) -> str:
    """A libpq URL of the cluster's maintenance database."""
    url = make_url(database_url).set(drivername="postgresql", database="postgres")
    return url.render_as_string(hide_password=False)


@dataclass
class Cluster:
    database_url: str

    def create(self, name: str, postgis: bool = False) -> str:
        with psycopg.connect(_admin_url(self.database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}"')
        url = make_url(self.database_url).set(database=name).render_as_string(hide_password=False)
        if postgis:
            engine = create_engine(url, poolclass=NullPool)
            with engine.begin() as conn:
                conn.execute(text("CREATE EXTENSION postgis"))
            engine.dispose()
        return url

    def drop(self, name: str) -> None:
        with psycopg.connect(_admin_url(self.database_url), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="module")
def cluster(database_url: str) -> Cluster:
    return Cluster(database_url)


def _png(seed: int) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (8, 8), (seed * 40 % 256, 90, 30)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture(scope="module")
def source(cluster: Cluster, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """A migrated database with a small tree, some events, their trail and photos (committed)."""
    name = f"wangge_backup_src_{uuid.uuid4().hex[:8]}"
    url = cluster.create(name, postgis=True)
    command.upgrade(alembic_config(url), "head")
    media = tmp_path_factory.mktemp("media-src")
    settings = Settings(database_url=url, media_dir=media)
    engine = create_engine(url, poolclass=NullPool)
    with Session(engine) as session:
        add_square_tree(session)
        actor = Actor(role="admin", username="backup-test")
        for i in range(5):
            event, _ = events.report_event(
                session, events.Report("environment", f"垃圾 {i}", 120.05 + i * 0.01, 30.15), actor=actor
            )
            if i < PHOTOS:
                photos.add_photo(
                    session,
                    event.id,
                    _png(i),
                    actor=actor,
                    media_dir=media,
                    filename=f"p{i}.png",
                    stage="report",
                    max_bytes=settings.max_photo_bytes,
                    max_photos=settings.max_photos_per_event,
                )
        session.commit()
    engine.dispose()
    yield settings
    cluster.drop(name)


def _counts(url: str) -> dict[str, int]:
    """Rows of every table outside the system schemas."""
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        tables = conn.execute(
            text(
                "SELECT schemaname, tablename FROM pg_tables"
                " WHERE schemaname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1, 2"
            )
        ).all()
        counts = {
            f"{schema}.{table}": conn.execute(text(f'SELECT count(*) FROM "{schema}"."{table}"')).scalar_one()
            for schema, table in tables
        }
    engine.dispose()
    return counts


def _photo_hashes(url: str) -> list[str]:
    engine = create_engine(url, poolclass=NullPool)
    with engine.connect() as conn:
        hashes = list(conn.scalars(text("SELECT sha256 FROM attachments ORDER BY sha256")))
    engine.dispose()
    return hashes


def _app(url: str, media: Path):  # type: ignore[no-untyped-def]
    settings = Settings(
        database_url=url,
        media_dir=media,
        argon2_time_cost=1,
        argon2_memory_kib=int(FAST_AUTH_ENV["WANGGE_ARGON2_MEMORY_KIB"]),
    )
    return create_app(settings)


def test_a_backup_restores_into_a_new_empty_database(cluster, source, tmp_path):
    target = tmp_path / "backup"
    made = (
        _app(source.database_url, source.media_dir)
        .test_cli_runner()
        .invoke(args=["backup", "create", str(target)])
    )
    assert made.exit_code == 0, made.output
    assert f"{PHOTOS} media files" in made.output
    listed = backup.read_manifest(target)
    assert set(listed) == {
        backup.DUMP,
        backup.INFO,
        *(
            f"media/{p.relative_to(source.media_dir).as_posix()}"
            for p in source.media_dir.rglob("*")
            if p.is_file()
        ),
    }

    name = f"wangge_backup_dst_{uuid.uuid4().hex[:8]}"
    url = cluster.create(name)  # empty: not even PostGIS, which the dump brings
    media = tmp_path / "media-dst"
    try:
        restored = _app(url, media).test_cli_runner().invoke(args=["backup", "restore", str(target)])
        assert restored.exit_code == 0, restored.output
        before, after = _counts(source.database_url), _counts(url)
        assert after == before
        assert after["public.events"] == 5 and after["public.attachments"] == PHOTOS
        assert after["public.event_actions"] == 5 and after["public.areas"] > 0
        hashes = _photo_hashes(url)
        assert len(hashes) == PHOTOS
        for sha256 in hashes:
            assert hashlib.sha256(photos.media_path(media, sha256).read_bytes()).hexdigest() == sha256

        # A second restore finds the database no longer empty and changes nothing.
        again = _app(url, media).test_cli_runner().invoke(args=["backup", "restore", str(target)])
        assert again.exit_code != 0 and "not empty" in again.output
        assert _counts(url) == before
    finally:
        cluster.drop(name)


@pytest.fixture(scope="module")
def made(source, tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    target = tmp_path_factory.mktemp("made") / "backup"
    backup.create(source.database_url, source.media_dir, target, PG_BIN)
    return target


def _copy(made: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(made, copy)
    return copy


def _first_photo(directory: Path) -> Path:
    return next(path for path in sorted((directory / "media").rglob("*")) if path.is_file())


@pytest.mark.parametrize(
    "spoil, complaint",
    [
        (lambda d: _first_photo(d).write_bytes(_first_photo(d).read_bytes() + b"x"), "does not match"),
        (lambda d: _first_photo(d).unlink(), "missing"),
        (lambda d: (d / "media" / "extra.png").write_bytes(b"not listed"), "not in the manifest"),
        (lambda d: (d / backup.DUMP).write_bytes((d / backup.DUMP).read_bytes()[:-10]), "does not match"),
        (lambda d: (d / backup.MANIFEST).unlink(), "not a finished backup"),
        (
            lambda d: (d / backup.MANIFEST).write_text(
                (d / backup.MANIFEST).read_text() + f"{'0' * 64}  ../../etc/passwd\n"
            ),
            "not a manifest line",
        ),
    ],
    ids=[
        "photo changed",
        "photo missing",
        "file not listed",
        "dump cut short",
        "no manifest",
        "path escapes",
    ],
)
def test_a_backup_that_does_not_match_its_manifest_is_refused(cluster, made, tmp_path, spoil, complaint):
    copy = _copy(made, tmp_path)
    spoil(copy)
    name = f"wangge_backup_bad_{uuid.uuid4().hex[:8]}"
    url = cluster.create(name)
    media = tmp_path / "media"
    try:
        result = _app(url, media).test_cli_runner().invoke(args=["backup", "restore", str(copy)])
        assert result.exit_code != 0 and complaint in result.output, result.output
        assert backup.database_is_empty(url)
        assert not media.exists() or not any(media.rglob("*"))
    finally:
        cluster.drop(name)


def test_verify_names_what_is_wrong_and_passes_a_good_backup(made, tmp_path):
    assert set(backup.verify(made)) >= {backup.DUMP, backup.INFO}
    copy = _copy(made, tmp_path)
    _first_photo(copy).write_bytes(b"changed")
    with pytest.raises(backup.BackupError, match="does not match its SHA-256"):
        backup.verify(copy)


def test_a_backup_goes_only_into_a_new_or_empty_directory(source, tmp_path):
    (tmp_path / "something").write_text("here")
    with pytest.raises(backup.BackupError, match="not an empty directory"):
        backup.create(source.database_url, source.media_dir, tmp_path, PG_BIN)


def test_the_manifest_is_what_sha256sum_checks(made):
    import subprocess

    result = subprocess.run(
        ["sha256sum", "--check", "--quiet", backup.MANIFEST], cwd=made, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
