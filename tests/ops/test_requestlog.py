"""One JSON line per request: its id, route, status, time and caller, and nothing personal."""

from __future__ import annotations

import json
import uuid

import pytest

from backend.ops.requestlog import request_id
from tests.conftest import client_as


def lines(captured: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in captured.splitlines() if line.startswith('{"ts"')]


def only_line(capsys: pytest.CaptureFixture[str]) -> dict[str, object]:
    found = lines(capsys.readouterr().err)
    assert len(found) == 1, found
    return found[0]


def test_a_line_per_request_with_route_status_time_and_caller(app, accounts, capsys):
    worker = client_as(app, accounts, "worker")
    capsys.readouterr()
    event_id = uuid.uuid4()
    response = worker.get(f"/api/v1/events/{event_id}")
    assert response.status_code == 404
    line = only_line(capsys)
    assert line["msg"] == "request"
    assert line["method"] == "GET"
    assert line["route"] == "/api/v1/events/<uuid:event_id>"
    assert line["status"] == 404
    assert isinstance(line["duration_ms"], float) and line["duration_ms"] >= 0
    assert line["caller"] == f"user:{accounts.ids['worker']}"
    assert line["request_id"] == response.headers["X-Request-ID"]
    assert str(event_id) not in json.dumps(line)


def test_an_api_key_in_the_query_string_is_never_logged(app, accounts, anon_client, capsys):
    capsys.readouterr()
    response = anon_client.get(f"/ogc/collections/grids/items?limit=1&api_key={accounts.gis_key}")
    assert response.status_code == 200
    captured = capsys.readouterr().err
    assert accounts.gis_key not in captured and "api_key" not in captured
    line = lines(captured)[0]
    assert line["route"] == "/ogc/collections/<string:collection_id>/items"
    assert str(line["caller"]).startswith("key:")


def test_no_token_password_name_or_phone_reaches_the_log(anon_client, accounts, capsys):
    capsys.readouterr()
    body = {"username": "admin", "password": accounts.passwords["admin"]}
    answer = anon_client.post("/api/v1/auth/token", json=body).json
    me = anon_client.get("/api/v1/me", headers={"Authorization": f"Bearer {answer['access_token']}"})
    assert me.status_code == 200
    captured = capsys.readouterr().err
    for secret in (
        accounts.passwords["admin"],
        answer["access_token"],
        answer["refresh_token"],
        "13800000000",
    ):
        assert secret not in captured
    first, second = lines(captured)
    assert first["route"] == "/api/v1/auth/token" and first["caller"] is None
    assert second["route"] == "/api/v1/me" and second["caller"] == f"user:{accounts.ids['admin']}"


def test_a_refused_request_is_logged_too(anon_client, capsys):
    capsys.readouterr()
    assert anon_client.get("/api/v1/me").status_code == 401
    line = only_line(capsys)
    assert line["status"] == 401 and line["caller"] is None and line["route"] == "/api/v1/me"


def test_a_sane_request_id_is_kept_and_returned(anon_client, capsys):
    capsys.readouterr()
    response = anon_client.get("/healthz", headers={"X-Request-ID": "lb-7f3a.2024:01_x"})
    assert response.headers["X-Request-ID"] == "lb-7f3a.2024:01_x"
    assert only_line(capsys)["request_id"] == "lb-7f3a.2024:01_x"


@pytest.mark.parametrize(
    "presented",
    ["", "x" * 129, "a b", "<script>", 'quote"d', "name\\n", "日志", "id,with,commas"],
)
def test_an_odd_request_id_is_replaced(anon_client, capsys, presented):
    capsys.readouterr()
    response = anon_client.get("/healthz", headers={"X-Request-ID": presented})
    replaced = response.headers["X-Request-ID"]
    assert replaced != presented and len(replaced) == 32 and int(replaced, 16) >= 0
    assert only_line(capsys)["request_id"] == replaced


def test_every_response_carries_a_request_id(anon_client):
    ids = {anon_client.get(path).headers["X-Request-ID"] for path in ("/healthz", "/nowhere", "/api/v1/me")}
    assert len(ids) == 3


def test_request_ids_are_bounded():
    assert request_id("a" * 128) == "a" * 128
    assert request_id("a" * 129) != "a" * 129
    assert request_id(None) != request_id(None)
