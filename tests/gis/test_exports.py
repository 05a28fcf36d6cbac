"""Whole-layer GeoJSON downloads at /api/v1/exports/{layer}.geojson."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
from shapely.geometry import shape
from sqlalchemy import text

from backend.areas import service as areas
from geo.crs import wgs84_to_gcj02
from tests.conftest import client_as

GEOJSON = "application/geo+json"


def download(client, url, **headers):  # type: ignore[no-untyped-def]
    response = client.get(url, headers=headers)
    body = json.loads(response.get_data(as_text=True)) if response.status_code == 200 else None
    return response, body


def test_grids_stream_as_one_rfc_7946_feature_collection(gis, session):
    response = gis.get("/api/v1/exports/grids.geojson")
    assert response.status_code == 200 and response.content_type == GEOJSON
    assert response.is_streamed
    body = json.loads(response.get_data(as_text=True))
    assert response.headers["Content-Disposition"] == 'attachment; filename="grids.geojson"'
    assert body["type"] == "FeatureCollection" and body["name"] == "grids" and "crs" not in body
    codes = [a.code for a in areas.list_areas(session, level="grid", limit=10_000)]
    assert [f["id"] for f in body["features"]] == codes
    for feature in body["features"]:
        geometry = shape(feature["geometry"])
        assert geometry.is_valid and all(p.exterior.is_ccw for p in geometry.geoms)
        assert set(feature["properties"]) == {
            "code",
            "name",
            "level",
            "parent",
            "kind",
            "boundary_version",
            "valid_from",
            "valid_to",
        }


def test_unchanged_layers_answer_304_and_a_change_moves_the_etag(gis, session):
    response, _ = download(gis, "/api/v1/exports/villages.geojson")
    etag, modified = response.headers["ETag"], response.headers["Last-Modified"]
    assert etag.startswith('"') and modified.endswith("GMT")
    again = gis.get("/api/v1/exports/villages.geojson", headers={"If-None-Match": etag})
    assert again.status_code == 304 and again.get_data() == b"" and again.headers["ETag"] == etag
    filtered, _ = download(gis, "/api/v1/exports/villages.geojson?area=440117103")
    assert filtered.headers["ETag"] != etag
    areas.update_area(session, "440117103001", name="改名社区")  # in place: no new version
    session.commit()
    changed = gis.get("/api/v1/exports/villages.geojson", headers={"If-None-Match": etag})
    assert changed.status_code == 200 and changed.headers["ETag"] != etag
    assert "改名社区" in changed.get_data(as_text=True)


def test_if_modified_since_alone_answers_304(gis):
    response, _ = download(gis, "/api/v1/exports/villages.geojson")
    modified = response.headers["Last-Modified"]
    unchanged = gis.get("/api/v1/exports/villages.geojson", headers={"If-Modified-Since": modified})
    assert unchanged.status_code == 304 and unchanged.get_data() == b""
    older = "Mon, 01 Jan 2001 00:00:00 GMT"
    assert (
        gis.get("/api/v1/exports/villages.geojson", headers={"If-Modified-Since": older}).status_code == 200
    )
    # If-None-Match decides when both are sent.
    both = {"If-Modified-Since": modified, "If-None-Match": '"other"'}
    assert gis.get("/api/v1/exports/villages.geojson", headers=both).status_code == 200


def test_the_events_etag_moves_when_an_event_or_a_category_changes(gis, session, reports):
    url = "/api/v1/exports/events.geojson"
    etag = gis.get(url).headers["ETag"]
    assert gis.get(url, headers={"If-None-Match": etag}).status_code == 304
    session.execute(
        text(
            "UPDATE events SET status = 'accepted', version = version + 1, updated_at = now() WHERE id = :id"
        ),
        {"id": reports.plain},
    )
    session.commit()
    second = gis.get(url, headers={"If-None-Match": etag})
    assert second.status_code == 200 and second.headers["ETag"] != etag
    etag = second.headers["ETag"]
    session.execute(text("UPDATE categories SET sensitive = true WHERE code = 'environment'"))
    session.commit()
    third = gis.get(url, headers={"If-None-Match": etag})
    assert third.status_code == 200
    described = {f["id"]: f["properties"]["description"] for f in third.json["features"]}
    assert described[reports.plain] is None


def test_events_download_is_scoped_and_has_no_personal_data(app, accounts, gis, reports):
    body = download(gis, "/api/v1/exports/events.geojson")[1]
    ids = {f["id"] for f in body["features"]}
    assert {reports.plain, reports.sensitive} <= ids and reports.outside not in ids
    raw = gis.get("/api/v1/exports/events.geojson").get_data(as_text=True)
    assert "李四" not in raw and "contacts" not in raw and "reporter_id" not in raw
    admin = download(client_as(app, accounts, "admin"), "/api/v1/exports/events.geojson")[1]
    assert reports.outside in {f["id"] for f in admin["features"]}
    # Each caller's ETag is their own, though the rows may coincide.
    assert (
        gis.get("/api/v1/exports/events.geojson").headers["ETag"]
        != client_as(app, accounts, "supervisor").get("/api/v1/exports/events.geojson").headers["ETag"]
    )


def test_filters_bbox_and_datetime(gis, reports):
    kinds = download(gis, "/api/v1/exports/grids.geojson?area=440117103&kind=comprehensive")[1]
    assert kinds["features"] and all(f["id"].startswith("440117103") for f in kinds["features"])
    box = download(gis, "/api/v1/exports/towns.geojson?bbox=113.55,23.55,113.56,23.56")[1]
    assert 1 <= len(box["features"]) <= 2
    events = download(gis, "/api/v1/exports/events.geojson?category=dispute")[1]
    # This test's dispute, and any that live-server tests left committed: disputes only.
    assert reports.sensitive in [f["id"] for f in events["features"]]
    assert {f["properties"]["category"] for f in events["features"]} == {"dispute"}
    assert (
        download(gis, "/api/v1/exports/events.geojson?datetime=../2000-01-01T00:00:00Z")[1]["features"] == []
    )


def test_gcj02_output_is_shifted_like_chinese_web_maps(gis):
    plain = download(gis, "/api/v1/exports/districts.geojson")[1]["features"][0]
    shifted = download(gis, "/api/v1/exports/districts.geojson?crs=gcj02")[1]["features"][0]
    lon, lat = plain["geometry"]["coordinates"][0][0][0]
    assert shifted["geometry"]["coordinates"][0][0][0] == pytest.approx(
        list(wgs84_to_gcj02(lon, lat)), abs=1e-6
    )
    assert shifted["properties"] == plain["properties"] and shifted["id"] == plain["id"]
    assert shape(shifted["geometry"]).geoms[0].exterior.is_ccw


@pytest.mark.parametrize(
    ("query", "status"),
    [
        ("bbox=1,2,3", 422),
        ("datetime=soon", 422),
        ("kind=dedicated&status=closed", 422),
        ("crs=bd09", 422),
    ],
)
def test_bad_arguments_are_422(gis, query, status):
    response = gis.get(f"/api/v1/exports/grids.geojson?{query}")
    assert response.status_code == status and response.content_type == "application/problem+json"


def test_unknown_layer_is_404_and_credentials_are_required(app, gis):
    assert gis.get("/api/v1/exports/parks.geojson").status_code == 404
    assert app.test_client().get("/api/v1/exports/grids.geojson").status_code == 401


def test_head_answers_the_headers_without_a_body(gis):
    response = gis.head("/api/v1/exports/towns.geojson")
    assert response.status_code == 200 and response.get_data() == b""
    assert response.headers["ETag"] and response.content_type == GEOJSON


def test_a_download_takes_the_key_in_its_url_and_serves_byte_ranges(app, accounts):
    anonymous = app.test_client()
    url = f"/api/v1/exports/grids.geojson?api_key={accounts.gis_key}"
    whole = anonymous.get(url)
    assert whole.status_code == 200 and whole.content_type == GEOJSON
    data = whole.get_data()
    assert int(whole.headers["Content-Length"]) == len(data) and whole.headers["Accept-Ranges"] == "bytes"
    assert len(json.loads(data)["features"]) == 865
    part = anonymous.get(url, headers={"Range": "bytes=10-99"})
    assert part.status_code == 206 and part.get_data() == data[10:100]
    assert part.headers["Content-Range"] == f"bytes 10-99/{len(data)}"
    # A range of a file that changed since is the whole new file (If-Range).
    stale = anonymous.get(url, headers={"Range": "bytes=10-99", "If-Range": '"other"'})
    assert stale.status_code == 200 and stale.get_data() == data
    head = anonymous.head(url)
    assert head.status_code == 200 and int(head.headers["Content-Length"]) == len(data)
    assert anonymous.get("/api/v1/exports/grids.geojson?api_key=wrong").status_code == 401


def _event_ids(response) -> set[str]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    return {f["id"] for f in json.loads(response.get_data())["features"]}


def test_a_signed_link_downloads_one_layer_as_its_minter_until_it_expires(app, accounts, reports):
    supervisor = client_as(app, accounts, "supervisor")
    minted = supervisor.post(
        "/api/v1/exports/links",
        json={"layer": "events", "filters": {"status": "reported"}, "lifetime_s": 3600},
    )
    assert minted.status_code == 201, minted.json
    url = urlsplit(minted.json["url"])
    assert url.path == "/api/v1/exports/events.geojson" and minted.json["layer"] == "events"
    expires = datetime.fromisoformat(minted.json["expires_at"])
    assert timedelta(minutes=59) < expires - datetime.now(UTC) <= timedelta(hours=1)
    anonymous = app.test_client()
    link = f"{url.path}?{url.query}"
    seen = _event_ids(anonymous.get(link))
    # The supervisor's scope: their town's events, not the other town's.
    assert reports.plain in seen and reports.outside not in seen
    assert seen == _event_ids(supervisor.get("/api/v1/exports/events.geojson?status=reported"))
    assert anonymous.head(link).status_code == 200
    token = parse_qs(url.query)["token"][0]
    for other in (
        f"/api/v1/exports/events.geojson?status=closed&token={token}",  # other filters
        f"/api/v1/exports/events.geojson?token={token}",  # none
        f"/api/v1/exports/grids.geojson?status=reported&token={token}",  # another layer
        f"/api/v1/me?status=reported&token={token}",  # another resource
        f"/api/v1/exports/events.geojson?status=reported&token={token[:-2]}xx",  # tampered
    ):
        assert anonymous.get(other).status_code == 401, other
    # Not an access token either.
    bearer = anonymous.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401


def test_a_signed_link_expires_and_dies_with_a_sign_out(app, accounts, session, test_settings):
    from backend.auth import service as auth

    actor = auth.actor_for(session, auth.get_user(session, accounts.ids["supervisor"]))
    path = "/api/v1/exports/grids.geojson"
    token, _ = auth.sign_link(session, test_settings, actor, path, [], timedelta(seconds=1))
    anonymous = app.test_client()
    assert anonymous.get(f"{path}?token={token}").status_code == 200
    expired = jwt.encode(
        {**jwt.decode(token, options={"verify_signature": False}), "exp": 1},
        auth._link_key(test_settings),
        algorithm="HS256",
    )
    assert anonymous.get(f"{path}?token={expired}").status_code == 401
    token, _ = auth.sign_link(session, test_settings, actor, path, [], timedelta(days=1))
    auth.revoke_user_tokens(session, auth.get_user(session, accounts.ids["supervisor"]))
    session.commit()
    assert anonymous.get(f"{path}?token={token}").status_code == 401


def test_a_gis_key_cannot_mint_a_link_and_a_link_lives_at_most_a_week(app, accounts, gis):
    assert gis.post("/api/v1/exports/links", json={"layer": "events"}).status_code == 403
    admin = client_as(app, accounts, "admin")
    week = 7 * 86_400
    assert admin.post("/api/v1/exports/links", json={"layer": "grids", "lifetime_s": week}).status_code == 201
    too_long = admin.post("/api/v1/exports/links", json={"layer": "grids", "lifetime_s": week + 1})
    assert too_long.status_code == 422
    for filters in ({"kind": "big"}, {"status": "reported"}, {"api_key": "x"}, {"bbox": "1,2"}):
        bad = admin.post("/api/v1/exports/links", json={"layer": "grids", "filters": filters})
        assert bad.status_code == 422, filters
    assert admin.post("/api/v1/exports/links", json={"layer": "nothing"}).status_code == 422
