"""In-process: a resident's contacts, per-app and per-address limits on residents' reports,
and bytes no column takes."""

from __future__ import annotations

import dataclasses

from backend.open311 import service as open311
from tests.conftest import client_as
from tests.mediation.helpers import grid_point


def test_reports_are_limited_per_address_and_per_app(app, session, accounts, monkeypatch):
    _, key = open311.create_app_key(session, name="busy app")
    _, other_key = open311.create_app_key(session, name="quiet app")
    session.commit()
    settings = dataclasses.replace(
        app.config["SETTINGS"], open311_limit_per_address=2, open311_limit_per_app=4
    )
    monkeypatch.setitem(app.config, "SETTINGS", settings)
    lon, lat = grid_point(session, accounts.worker_grids[0])
    form = {"service_code": "environment", "lat": lat, "long": lon}
    client = app.test_client()

    def send(api_key: str, address: str) -> int:
        response = client.post(
            "/open311/v2/requests.json",
            data={**form, "api_key": api_key},
            environ_base={"REMOTE_ADDR": address},
        )
        if response.status_code == 429:
            assert int(response.headers["Retry-After"]) >= 1
            assert response.json[0]["code"] == 429
        return response.status_code

    assert [send(key, "10.0.0.1") for _ in range(3)] == [201, 201, 429]
    # Another address, same app: every attempt counts for the app, whose limit (4) is reached
    # on its fifth.
    assert [send(key, "10.0.0.2"), send(key, "10.0.0.3")] == [201, 429]
    # Another app from a fresh address is not held back by the first app's count.
    assert send(other_key, "10.0.0.4") == 201


def test_bytes_no_column_takes_are_refused_not_crashed(app):
    client = app.test_client()
    for url in (
        "/open311/v2/tokens/a%00b.json",
        "/open311/v2/requests.json?service_code=a%00b",
        "/open311/v2/requests/a%00b.json",
        "/open311/v2/services/a%00b.json",
    ):
        response = client.get(url)
        assert response.status_code in (400, 404), url
        assert response.json[0]["code"] == response.status_code
    for key in ("o311_ab%00cdefg_x", "o311_\x00\x00\x00\x00\x00\x00\x00\x00_x"):
        response = client.post("/open311/v2/requests.json", data={"api_key": key.replace("%00", "\x00")})
        assert response.status_code == 403
    response = client.post("/open311/v2/requests.json", data={"api_key": "x", "description": "a\x00b"})
    assert response.status_code == 403


def test_a_residents_contacts_reach_the_centre_and_no_open311_answer(app, session, accounts):
    _, key = open311.create_app_key(session, name="contacts app")
    session.commit()
    lon, lat = grid_point(session, accounts.worker_grids[0])
    posted = app.test_client().post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "environment",
            "lat": lat,
            "long": lon,
            "first_name": "三",
            "last_name": "张",
            "email": "zhang@example.com",
            "phone": "13977700011",
        },
    )
    assert posted.status_code == 201
    request_id = posted.json[0]["service_request_id"]
    event = client_as(app, accounts, "supervisor").get(f"/api/v1/events/{request_id}").json
    assert event["contacts"] == [
        {"name": "张 三", "role": "反映人 (reporter)", "phone": "13977700011", "email": "zhang@example.com"}
    ]
    assert "contacts" not in client_as(app, accounts, "gis").get(f"/api/v1/events/{request_id}").json
    shown = app.test_client().get(f"/open311/v2/requests/{request_id}.json")
    assert "13977700011" not in shown.get_data(as_text=True) and "zhang" not in shown.get_data(as_text=True)
