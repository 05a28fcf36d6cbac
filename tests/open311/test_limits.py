"""Anonymous abuse: per-app and per-address limits on residents' reports."""

from __future__ import annotations

import dataclasses

from backend.open311 import service as open311
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
