"""Photo files: one on disk for each committed row and no other, and a failing disk is a problem
the client can act on, never a 500."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

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


# --- complete images only ---------------------------------------------------------------------


@pytest.mark.parametrize("cut", [1, 4, 12, 13, 40])
def test_a_png_with_its_last_bytes_cut_is_422(worker, event, media, session, cut):  # type: ignore[no-untyped-def]
    data = png(7, size=(64, 48))
    response = upload(worker, event["id"], data[:-cut])
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert {e["field"] for e in response.json["errors"]} == {"file"}
    assert rows(session, event["id"]) == set() and files(media) == set()
    assert upload(worker, event["id"], data).status_code == 201  # the whole file is fine
