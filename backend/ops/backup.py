"""Backups of the database and the media files, checked by a SHA-256 manifest on restore.

A backup is one directory:

    database.dump     pg_dump's custom format of the whole database
    media/...         every file of MEDIA_DIR at its own relative path (photos: ab/cd/<sha256>)
    backup.json       when it was made, the schema's migration, the pg_dump that made it
    MANIFEST.sha256   "<sha256>  <path>" for each file above, as `sha256sum -c` reads it

The database is dumped before the media are copied: a photo stored meanwhile is in the copy
even if its row is not, never the other way round. The manifest is written last, so a
directory without one is an unfinished backup. A restore checks every file against the
manifest first (a file missing, changed or not listed refuses the restore), restores only into
an empty database, copies the media (a photo already there must be the same) and then restores
the database in one transaction.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.pool import NullPool

MANIFEST = "MANIFEST.sha256"
DUMP = "database.dump"
INFO = "backup.json"
MEDIA = "media"
FORMAT = 1
# Files a photo upload writes before renaming them into place: not yet photos.
IN_PROGRESS = ".upload-"
CHUNK = 1 << 20


class BackupError(Exception):
    """A backup that cannot be made or restored; the message says why."""


@dataclass(frozen=True)
class Summary:
    files: int
    media_files: int
    bytes: int


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _copy_hashed(source: Path, target: Path) -> str:
    """Copy a file through a temporary name in the target's folder; return the hash of what was
    written."""
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=IN_PROGRESS)
    try:
        with source.open("rb") as reader, os.fdopen(fd, "wb") as writer:
            while chunk := reader.read(CHUNK):
                digest.update(chunk)
                writer.write(chunk)
            writer.flush()
            os.fsync(writer.fileno())
        shutil.copystat(source, tmp)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return digest.hexdigest()


def _libpq(database_url: str) -> tuple[str, dict[str, str]]:
    """A URL that pg_dump and pg_restore read, and the environment that carries the password
    (never on the command line, where any user of the machine could read it)."""
    url = make_url(database_url)
    env = {**os.environ, "PGCONNECT_TIMEOUT": "10"}
    if url.password is not None:
        env["PGPASSWORD"] = str(url.password)
    plain = url.set(drivername="postgresql", password=None).render_as_string(hide_password=False)
    return plain, env


def _run(command: list[str], env: dict[str, str]) -> None:
    try:
        result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BackupError(f"could not run {command[0]}: {error}") from error
    if result.returncode != 0:
        raise BackupError(f"{Path(command[0]).name} failed: {result.stderr.strip()[-2000:]}")


def _tool(pg_bin: Path, name: str) -> str:
    path = pg_bin / name
    if not path.exists():
        raise BackupError(f"{path} is missing: install PostgreSQL 15's client (postgresql-client-15)")
    return str(path)


def _media_files(media_dir: Path) -> list[Path]:
    if not media_dir.is_dir():
        return []
    return sorted(
        path
        for path in media_dir.rglob("*")
        if path.is_file() and not path.is_symlink() and not path.name.startswith(IN_PROGRESS)
    )


def _migration(database_url: str) -> str | None:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            version: str | None = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            return version
    except ProgrammingError:
        return None
    finally:
        engine.dispose()


def create(database_url: str, media_dir: Path, target: Path, pg_bin: Path) -> Summary:
    """Back up the database and the media files into `target`, a new or empty directory."""
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise BackupError(f"{target} exists and is not an empty directory")
    pg_dump = _tool(pg_bin, "pg_dump")
    target.mkdir(parents=True, exist_ok=True)
    url, env = _libpq(database_url)
    _run([pg_dump, "--format=custom", "--file", str(target / DUMP), "--dbname", url], env)
    lines = [(_sha256_file(target / DUMP), DUMP)]
    media = _media_files(media_dir)
    total = (target / DUMP).stat().st_size
    for source in media:
        relative = source.relative_to(media_dir).as_posix()
        lines.append((_copy_hashed(source, target / MEDIA / relative), f"{MEDIA}/{relative}"))
        total += source.stat().st_size
    version = subprocess.run([pg_dump, "--version"], capture_output=True, text=True, check=False)
    info = {
        "format": FORMAT,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "migration": _migration(database_url),
        "pg_dump": version.stdout.strip(),
        "media_files": len(media),
    }
    (target / INFO).write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    lines.append((_sha256_file(target / INFO), INFO))
    manifest = "".join(f"{digest}  {path}\n" for digest, path in sorted(lines, key=lambda line: line[1]))
    partial = target / (MANIFEST + ".partial")
    partial.write_text(manifest, encoding="utf-8")
    os.replace(partial, target / MANIFEST)
    return Summary(files=len(lines), media_files=len(media), bytes=total)


def read_manifest(source: Path) -> dict[str, str]:
    """The manifest's paths and their hashes; a malformed or unsafe line refuses the backup."""
    path = source / MANIFEST
    if not path.is_file():
        raise BackupError(f"{path} is missing: not a finished backup")
    entries: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        digest, sep, name = line.partition("  ")
        relative = PurePosixPath(name)
        if (
            not sep
            or len(digest) != 64
            or any(c not in "0123456789abcdef" for c in digest)
            or relative.is_absolute()
            or ".." in relative.parts
            or not name
            or name in entries
        ):
            raise BackupError(f"{path}, line {number}: not a manifest line")
        entries[name] = digest
    return entries


def verify(source: Path) -> dict[str, str]:
    """Check every file of a backup against its manifest; return the manifest, or raise
    BackupError naming each file missing, changed or not listed."""
    entries = read_manifest(source)
    problems = []
    present = {
        path.relative_to(source).as_posix()
        for path in source.rglob("*")
        if path.is_file() and path.name != MANIFEST
    }
    for name in sorted(present - set(entries)):
        problems.append(f"{name}: not in the manifest")
    for name, digest in sorted(entries.items()):
        path = source / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif _sha256_file(path) != digest:
            problems.append(f"{name}: does not match its SHA-256 in the manifest")
    for required in (DUMP, INFO):
        if required not in entries:
            problems.append(f"{required}: not in the manifest")
    if problems:
        raise BackupError("the backup does not match its manifest:\n  " + "\n  ".join(problems))
    return entries


# Tables, views and sequences outside the system schemas that no extension (PostGIS) brought.
_USER_RELATIONS = text(
    "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
    " WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')"
    " AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'"
    " AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass"
    "  AND d.objid = c.oid AND d.deptype = 'e')"
)


def database_is_empty(database_url: str) -> bool:
    engine = create_engine(database_url, poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.execute(_USER_RELATIONS).scalar_one()) == 0
    finally:
        engine.dispose()


def restore(database_url: str, media_dir: Path, source: Path, pg_bin: Path) -> Summary:
    """Restore a verified backup into an empty database and MEDIA_DIR."""
    entries = verify(source)
    pg_restore = _tool(pg_bin, "pg_restore")
    if not database_is_empty(database_url):
        raise BackupError("the database is not empty: restore into a new, empty database")
    media = sorted(name for name in entries if name.startswith(MEDIA + "/"))
    clashes = []
    for name in media:
        existing = media_dir / name[len(MEDIA) + 1 :]
        if existing.exists() and _sha256_file(existing) != entries[name]:
            clashes.append(str(existing))
    if clashes:
        raise BackupError("media files differ from the backup's: " + ", ".join(clashes[:10]))
    total = 0
    for name in media:
        target = media_dir / name[len(MEDIA) + 1 :]
        total += (source / name).stat().st_size
        if target.exists():
            continue
        if _copy_hashed(source / name, target) != entries[name]:
            target.unlink()
            raise BackupError(f"{name} changed while it was restored")
    url, env = _libpq(database_url)
    _run(
        [
            pg_restore,
            "--exit-on-error",
            "--single-transaction",
            # Objects belong to whoever restores; the roles of the old server need not exist.
            "--no-owner",
            "--no-privileges",
            "--dbname",
            url,
            str(source / DUMP),
        ],
        env,
    )
    return Summary(files=len(entries), media_files=len(media), bytes=total + (source / DUMP).stat().st_size)
