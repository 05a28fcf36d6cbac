"""Photo files: one on disk for each committed row and no other, and a failing disk is a problem
the client can act on, never a 500."""

from __future__ import annotations

import dataclasses
import errno
import io
import logging
import os
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from backend.events import photos
from tests.conftest import client_as
from tests.factories import report
from tests.org.factories import grid_point

PROBLEM = "application/problem+json"


def png(seed: int, size: tuple[int, int] = (16, 12)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (seed % 256, seed // 256 % 256, 90)).save(out, format="PNG")
    return out.getvalue()


@pytest.fixture
def media(app, tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A media folder of this test's own."""
    settings = dataclasses.replace(app.config["SETTINGS"], media_dir=tmp_path)
    monkeypatch.setitem(app.config, "SETTINGS", settings)
    return tmp_path


@pytest.fixture
def worker(app, accounts):  # type: ignore[no-untyped-def]
    return client_as(app, accounts, "worker")


@pytest.fixture
def event(worker, session, accounts):  # type: ignore[no-untyped-def]
    spot = grid_point(session, accounts.worker_grids[0])
    return worker.post("/api/v1/events", json=report(*spot, photos_expected=3)).json


def upload(client, event_id, data, name="photo.png"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/events/{event_id}/attachments",
        data={"file": (io.BytesIO(data), name), "stage": "report"},
        content_type="multipart/form-data",
    )


def files(media: Path) -> set[str]:
    """Every file under the media folder, temporary ones included."""
    return {p.name for p in media.rglob("*") if p.is_file()}


def rows(session, event_id) -> set[str]:  # type: ignore[no-untyped-def]
    return set(
        session.execute(
            text("SELECT sha256 FROM attachments WHERE event_id = :id"), {"id": event_id}
        ).scalars()
    )


# --- file names -------------------------------------------------------------------------------


def test_a_5000_character_file_name_is_cut_and_the_limit_holds(worker, event, media, session):
    name = "x" * 5000 + ".png"
    for seed in range(9):
        response = upload(worker, event["id"], png(seed), name=name)
        assert response.status_code == 201, response.json
        assert response.json["filename"] == "x" * 196 + ".png"
    tenth = upload(worker, event["id"], png(99), name=name)
    assert tenth.status_code == 422 and tenth.mimetype == PROBLEM
    # One file per row, and none for the refused tenth.
    assert files(media) == rows(session, event["id"]) and len(files(media)) == 9


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        ("a" * 300, "a" * 200),
        ("b" * 300 + ".jpeg", "b" * 195 + ".jpeg"),
        ("c" * 300 + "." + "d" * 50, ("c" * 300 + "." + "d" * 50)[:200]),
        ("照片.png", "png"),
        ("", None),
        (None, None),
    ],
    ids=["long", "long with extension", "long extension", "not ASCII", "empty", "none"],
)
def test_stored_file_names_fit_their_column(sent, kept):  # type: ignore[no-untyped-def]
    assert photos.stored_filename(sent) == kept


# --- a file only for a committed row ----------------------------------------------------------


def test_a_photo_is_in_place_only_once_its_row_commits(session, accounts, media):
    from backend.auth import service as auth
    from backend.events import service as events

    actor = auth.actor_for(session, auth.get_user(session, accounts.ids["worker"]))
    lon, lat = grid_point(session, accounts.worker_grids[0])
    event, _ = events.report_event(session, events.Report("environment", "垃圾", lon, lat), actor=actor)
    session.commit()

    def add(data: bytes):  # type: ignore[no-untyped-def]
        return photos.add_photo(
            session,
            event.id,
            data,
            actor=actor,
            media_dir=media,
            filename="a.png",
            stage="report",
            max_bytes=10**7,
            max_photos=9,
        )

    row, created = add(png(1))
    assert created and files(media) and not photos.media_path(media, row.sha256).exists()
    session.rollback()
    assert files(media) == set()  # the rollback took the staged file with it

    row, _ = add(png(2))
    session.commit()
    assert files(media) == {row.sha256}
    assert photos.media_path(media, row.sha256).read_bytes() == png(2)


def test_a_refused_upload_leaves_no_file(worker, event, media, monkeypatch):
    # The row cannot be written (as when the file name did not fit): nothing stays on disk.
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise photos.ValidationFailed("no")

    monkeypatch.setattr(photos, "stored_filename", broken)
    assert upload(worker, event["id"], png(3)).status_code == 422
    assert files(media) == set()


# --- missing files and failing disks ----------------------------------------------------------


def test_a_missing_file_is_410_and_logged(worker, event, media, caplog):
    sha = upload(worker, event["id"], png(4)).json["sha256"]
    photos.media_path(media, sha).unlink()
    with caplog.at_level(logging.ERROR, logger="backend.events.photos"):
        response = worker.get(f"/api/v1/attachments/{sha}")
    assert response.status_code == 410 and response.mimetype == PROBLEM
    assert any(sha in record.getMessage() for record in caplog.records)
    # The phone resends it: the same attachment, and the file is back.
    again = upload(worker, event["id"], png(4))
    assert again.status_code == 200 and again.json["sha256"] == sha
    assert worker.get(f"/api/v1/attachments/{sha}").status_code == 200


@pytest.mark.parametrize(
    ("code", "status"),
    [(errno.ENOSPC, 507), (errno.EDQUOT, 507), (errno.EROFS, 503), (errno.EACCES, 503)],
)
def test_a_full_or_read_only_media_folder_is_507_or_503(
    worker, event, media, session, monkeypatch, code, status
):  # type: ignore[no-untyped-def]
    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(code, os.strerror(code))

    monkeypatch.setattr(photos.tempfile, "mkstemp", failing)
    response = upload(worker, event["id"], png(5))
    assert response.status_code == status and response.mimetype == PROBLEM
    assert rows(session, event["id"]) == set() and files(media) == set()
    if status == 503:
        assert response.headers["Retry-After"]


def test_a_rename_failing_after_commit_is_a_503_and_a_resend_repairs_it(worker, event, media, monkeypatch):
    def failing(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(errno.EROFS, os.strerror(errno.EROFS))

    monkeypatch.setattr(photos.os, "replace", failing)
    response = upload(worker, event["id"], png(6))
    assert response.status_code == 503 and response.mimetype == PROBLEM
    assert files(media) == set()  # no temporary file left behind
    monkeypatch.undo()
    again = upload(worker, event["id"], png(6))
    assert again.status_code == 200  # the row was committed; the file is now in place
    assert worker.get(f"/api/v1/attachments/{again.json['sha256']}").status_code == 200


# --- complete images only ---------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 4, 12, 13, 40])
def test_a_png_with_its_last_bytes_cut_is_422(worker, event, media, session, cut):  # type: ignore[no-untyped-def]
    data = png(7, size=(64, 48))
    response = upload(worker, event["id"], data[:-cut])
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert {e["field"] for e in response.json["errors"]} == {"file"}
    assert rows(session, event["id"]) == set() and files(media) == set()
    assert upload(worker, event["id"], data).status_code == 201  # the whole file is fine
