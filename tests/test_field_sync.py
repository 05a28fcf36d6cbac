"""Field sync: offline batches, photos, the worker's inbox and duplicate hints."""

from __future__ import annotations

import io
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from PIL import Image
from sqlalchemy import text

from tests.conftest import client_as
from tests.factories import report

PROBLEM = "application/problem+json"


@pytest.fixture
def worker(app, accounts):  # type: ignore[no-untyped-def]
    return client_as(app, accounts, "worker")


@pytest.fixture
def spot(session, accounts):  # type: ignore[no-untyped-def]
    """A point inside the worker's first grid."""
    return session.execute(
        text(
            "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM areas "
            "WHERE code = :c AND valid_to IS NULL) s"
        ),
        {"c": accounts.worker_grids[0]},
    ).one()


def new_report(spot, **extra):  # type: ignore[no-untyped-def]
    return report(spot[0], spot[1], id=str(uuid.uuid4()), **extra)


def count(session, ids):  # type: ignore[no-untyped-def]
    return session.execute(
        text("SELECT count(*) FROM events WHERE id = ANY(CAST(:ids AS uuid[]))"), {"ids": ids}
    ).scalar()


# --- batches -----------------------------------------------------------------------------------


def test_batch_with_all_four_outcomes_in_request_order(worker, spot, session):
    stored = new_report(spot)
    assert worker.post("/api/v1/events", json=stored).status_code == 201
    fresh = new_report(spot)
    items = [
        fresh,
        stored,  # same id, same content
        {**stored, "description": "另一件事"},  # same id, other content
        {**new_report(spot), "category": "nonsense"},  # invalid
        {"description": 5},  # invalid, and no id at all
    ]
    response = worker.post("/api/v1/events/batch", json={"items": items})
    assert response.status_code == 207
    body = response.json
    assert [i["outcome"] for i in body["items"]] == ["created", "duplicate", "conflict", "invalid", "invalid"]
    assert [i["index"] for i in body["items"]] == [0, 1, 2, 3, 4]
    assert body["counts"] == {"created": 1, "duplicate": 1, "conflict": 1, "invalid": 2}
    assert body["items"][0]["event"]["id"] == fresh["id"]
    assert body["items"][3]["problem"]["status"] == 422
    assert {e["field"] for e in body["items"][3]["problem"]["errors"]} == {"category"}
    assert body["items"][2]["problem"]["status"] == 409 and body["items"][2]["event"] is None
    assert count(session, [fresh["id"], stored["id"]]) == 2


def test_replaying_a_batch_changes_nothing(worker, spot, session):
    items = [new_report(spot) for _ in range(5)]
    first = worker.post("/api/v1/events/batch", json={"items": items})
    assert first.status_code == 200 and first.json["counts"]["created"] == 5
    before = session.execute(text("SELECT count(*) FROM events")).scalar()
    again = worker.post("/api/v1/events/batch", json={"items": items})
    assert again.status_code == 200 and again.json["counts"] == {
        "created": 0,
        "duplicate": 5,
        "conflict": 0,
        "invalid": 0,
    }
    assert session.execute(text("SELECT count(*) FROM events")).scalar() == before
    assert [i["event"]["version"] for i in again.json["items"]] == [1] * 5


@pytest.mark.parametrize("items", [[], [{}] * 201, "x"])
def test_batch_size_is_checked(worker, items):
    response = worker.post("/api/v1/events/batch", json={"items": items})
    assert response.status_code == 422 and response.content_type == PROBLEM


def test_batch_items_outside_the_workers_grids_are_invalid_not_fatal(worker, spot, session):
    inside = new_report(spot)
    elsewhere = report(113.92, 23.82, id=str(uuid.uuid4()))  # 吕田镇
    response = worker.post("/api/v1/events/batch", json={"items": [inside, elsewhere]})
    assert response.status_code == 207
    assert [i["outcome"] for i in response.json["items"]] == ["created", "invalid"]
    assert response.json["items"][1]["problem"]["status"] == 403
    assert count(session, [inside["id"], elsewhere["id"]]) == 1


def test_phone_clock_far_off_is_kept_but_flagged(worker, spot):
    ahead = (datetime.now(UTC) + timedelta(days=2)).isoformat()
    behind = (datetime.now(UTC) - timedelta(days=90)).isoformat()
    fine = (datetime.now(UTC) - timedelta(hours=3)).isoformat()
    for reported_at, suspect in ((ahead, True), (behind, True), (fine, False)):
        event = worker.post("/api/v1/events", json=new_report(spot, reported_at=reported_at)).json
        assert event["clock_suspect"] is suspect
        assert datetime.fromisoformat(event["reported_at"]) == datetime.fromisoformat(reported_at)
        assert abs(datetime.fromisoformat(event["received_at"]) - datetime.now(UTC)) < timedelta(minutes=5)


# --- photos ------------------------------------------------------------------------------------


def image_bytes(kind: str = "JPEG", seed: int = 0, gps: bool = False) -> bytes:
    out = io.BytesIO()
    picture = Image.new("RGB", (16, 12), (seed * 25 % 256, 120, 200))
    options = {}
    if gps:
        exif = Image.Exif()
        exif[0x010F] = "WanggePhone"
        gps_ifd = exif.get_ifd(0x8825)
        gps_ifd.update({1: "N", 2: (23.0, 39.0, 0.0), 3: "E", 4: (113.0, 38.0, 0.0)})
        options["exif"] = exif.tobytes()
    picture.save(out, format=kind, **options)
    return out.getvalue()


def upload(client, event_id, data, name="photo.jpg", stage="report"):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1/events/{event_id}/attachments",
        data={"file": (io.BytesIO(data), name), "stage": stage},
        content_type="multipart/form-data",
    )


@pytest.fixture
def event(worker, spot):  # type: ignore[no-untyped-def]
    return worker.post("/api/v1/events", json=new_report(spot, photos_expected=3)).json


def test_photo_upload_once_and_only_once(worker, event, test_settings):
    data = image_bytes()
    first = upload(worker, event["id"], data)
    assert first.status_code == 201
    assert first.json["media_type"] == "image/jpeg" and first.json["width"] == 16
    again = upload(worker, event["id"], data)
    assert again.status_code == 200 and again.json["sha256"] == first.json["sha256"]
    listing = worker.get(f"/api/v1/events/{event['id']}/attachments").json
    assert (listing["expected"], listing["present"]) == (3, 1)
    stored = Path(
        test_settings.media_dir, first.json["sha256"][:2], first.json["sha256"][2:4], first.json["sha256"]
    )
    assert stored.read_bytes() == data
    assert not list(stored.parent.glob(".upload-*"))  # no half-written temporary file left


def test_a_png_named_jpg_is_fine(worker, event):
    response = upload(worker, event["id"], image_bytes("PNG"), name="camera.jpg")
    assert response.status_code == 201 and response.json["media_type"] == "image/png"


def test_webp_is_accepted(worker, event):
    assert upload(worker, event["id"], image_bytes("WEBP"), name="x.webp").status_code == 201


@pytest.mark.parametrize(
    "data",
    [b"this is not a picture at all\n" * 20, image_bytes()[:300], image_bytes("GIF")],
    ids=["text", "cut in its header", "GIF"],
)
def test_text_a_header_cut_short_or_other_formats_are_415(worker, event, data):
    response = upload(worker, event["id"], data, name="photo.jpg")
    assert response.status_code == 415 and response.content_type == PROBLEM


@pytest.mark.parametrize("data", [image_bytes()[:-1], image_bytes("PNG")[:-1]], ids=["JPEG", "PNG"])
def test_a_photo_missing_its_last_byte_is_422(worker, event, data):
    response = upload(worker, event["id"], data, name="photo.jpg")
    assert response.status_code == 422 and response.content_type == PROBLEM
    assert response.json["errors"][0]["field"] == "file"


def test_an_11_mb_photo_is_refused(worker, event, session):
    response = upload(worker, event["id"], b"\xff\xd8" + b"0" * (11 * 1024 * 1024))
    assert response.status_code == 413 and response.content_type == PROBLEM
    assert (
        session.execute(
            text("SELECT count(*) FROM attachments WHERE event_id = :id"), {"id": event["id"]}
        ).scalar()
        == 0
    )


def test_the_tenth_photo_is_refused(worker, event):
    for seed in range(9):
        assert upload(worker, event["id"], image_bytes(seed=seed)).status_code == 201
    tenth = upload(worker, event["id"], image_bytes(seed=99))
    assert tenth.status_code == 422 and tenth.json["errors"][0]["field"] == "file"
    assert upload(worker, event["id"], image_bytes(seed=3)).status_code == 200  # a resend still works


def test_a_path_like_file_name_goes_nowhere(worker, event, test_settings):
    response = upload(worker, event["id"], image_bytes(seed=5), name="../../../../tmp/evil.jpg")
    assert response.status_code == 201
    assert response.json["filename"] == "tmp_evil.jpg"
    assert not Path("/tmp/evil.jpg").exists()
    sha = response.json["sha256"]
    assert Path(test_settings.media_dir, sha[:2], sha[2:4], sha).exists()


def test_upload_without_a_file_is_422(worker, event):
    response = worker.post(
        f"/api/v1/events/{event['id']}/attachments",
        data={"stage": "report"},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422


def test_location_is_stripped_for_viewers_outside_the_events_personal_scope(app, accounts, worker, event):
    sha = upload(worker, event["id"], image_bytes(gps=True)).json["sha256"]
    full = worker.get(f"/api/v1/attachments/{sha}")
    assert full.status_code == 200 and full.headers["Cache-Control"].startswith("private")
    assert Image.open(io.BytesIO(full.data)).getexif().get_ifd(0x8825)
    gis = client_as(app, accounts, "gis").get(f"/api/v1/attachments/{sha}")
    assert gis.status_code == 200 and gis.content_type == "image/jpeg"
    exif = Image.open(io.BytesIO(gis.data)).getexif()
    assert not exif.get_ifd(0x8825) and exif[0x010F] == "WanggePhone"
    assert client_as(app, accounts, "other_worker").get(f"/api/v1/attachments/{sha}").status_code == 404
    again = worker.get(f"/api/v1/attachments/{sha}", headers={"If-None-Match": full.headers["ETag"]})
    assert again.status_code == 304


# --- the inbox ---------------------------------------------------------------------------------


def sync_all(client, cursor=None, limit=200):  # type: ignore[no-untyped-def]
    """Page through the inbox; return (changed ids in order, removed ids, final cursor)."""
    changed, removed = [], []
    while True:
        url = f"/api/v1/me/tasks?limit={limit}" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url)
        assert page.status_code == 200, page.json
        changed += [e["id"] for e in page.json["changed"]]
        removed += page.json["removed"]
        cursor = page.json["cursor"]
        if not page.json["more"]:
            return changed, removed, cursor


def test_inbox_syncs_to_the_end_then_has_nothing_new(worker, spot):
    made = [worker.post("/api/v1/events", json=new_report(spot)).json["id"] for _ in range(5)]
    changed, removed, cursor = sync_all(worker, limit=2)
    assert set(made) <= set(changed) and len(changed) == len(set(changed)) and removed == []
    assert sync_all(worker, cursor)[:2] == ([], [])


def test_inbox_shows_each_change_once(app, accounts, worker, spot):
    event = worker.post("/api/v1/events", json=new_report(spot)).json
    _, _, cursor = sync_all(worker)
    sup = client_as(app, accounts, "supervisor")
    sup.post(f"/api/v1/events/{event['id']}/actions", json={"action": "accept", "version": 1})
    changed, removed, cursor = sync_all(worker, cursor)
    assert changed == [event["id"]] and removed == []
    assert sync_all(worker, cursor)[:2] == ([], [])


def test_events_leaving_the_scope_are_removed_once(app, accounts, client, spot):
    # A fresh worker on the same grids, then moved elsewhere by an administrator.
    user = client.post(
        "/api/v1/users",
        json={"username": "mover", "password": "long-enough", "display_name": "调岗", "role": "worker"},
    ).json
    client.put(f"/api/v1/users/{user['id']}/grids", json={"grids": accounts.worker_grids})
    token = client.post("/api/v1/auth/token", json={"username": "mover", "password": "long-enough"}).json
    mover = app.test_client()
    mover.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token['access_token']}"
    event = mover.post("/api/v1/events", json=new_report(spot)).json
    changed, _, cursor = sync_all(mover)
    assert event["id"] in changed
    client.put(f"/api/v1/users/{user['id']}/grids", json={"grids": ["440117104001001"]})
    # Re-scoping revokes old tokens; sign in again, keep the cursor.
    token = client.post("/api/v1/auth/token", json={"username": "mover", "password": "long-enough"}).json
    mover.environ_base["HTTP_AUTHORIZATION"] = f"Bearer {token['access_token']}"
    changed, removed, cursor = sync_all(mover, cursor)
    # The inbox holds their grids' and their assigned tasks, so the event leaves it, once.
    assert event["id"] in removed and event["id"] not in changed
    assert sync_all(mover, cursor)[:2] == ([], [])


def test_inbox_cursor_of_another_user_is_422(app, accounts, worker):
    _, _, cursor = sync_all(worker)
    other = client_as(app, accounts, "other_worker")
    assert other.get(f"/api/v1/me/tasks?cursor={cursor}").status_code == 422


# --- duplicate hints ---------------------------------------------------------------------------


def test_nearby_open_reports_of_the_same_category_are_offered_as_duplicates(worker, spot):
    first = worker.post("/api/v1/events", json=new_report(spot)).json
    near = (spot[0] + 0.0003, spot[1])  # about 30 m east
    second = worker.post("/api/v1/events", json=new_report(near)).json
    # Live-server tests report near this spot too and leave their events committed: the hints
    # are judged on this test's own events (every hint must still be near and of the category).
    hints = second["possible_duplicates"]
    assert all(h["distance_m"] <= 100 for h in hints)
    ours = [h for h in hints if h["id"] == first["id"]]
    assert len(ours) == 1 and 20 < ours[0]["distance_m"] < 40
    other_kind = worker.post("/api/v1/events", json=new_report(near, category="safety")).json
    assert first["id"] not in [h["id"] for h in other_kind["possible_duplicates"]]
    far = worker.post("/api/v1/events", json=new_report((spot[0] + 0.003, spot[1]))).json  # ~300 m
    assert first["id"] not in [h["id"] for h in far["possible_duplicates"]]
    # A retry answers the stored event, without hints.
    retry = worker.post("/api/v1/events", json=new_report(near) | {"id": second["id"]})
    assert retry.status_code == 200 and retry.json["id"] == second["id"]
    assert "possible_duplicates" not in retry.json
