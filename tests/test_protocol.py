"""HTTP itself: the server's own refusals, methods, empty PATCHes and what the document promises."""

from __future__ import annotations

import json
import socket
from urllib.parse import urlparse

import pytest
import requests

from backend import openapi_doc
from tests.conftest import gunicorn
from tests.factories import report
from tests.org.factories import grid_point

PROBLEM = "application/problem+json"
SPEC = json.loads(openapi_doc.PATH.read_text(encoding="utf-8"))
PATCHES = sorted(path for path, item in SPEC["paths"].items() if "patch" in item)


# --- the server's own refusals, through a real gunicorn -----------------------------------------


@pytest.fixture(scope="module")
def server(database_url, engine):  # type: ignore[no-untyped-def]
    with gunicorn(database_url, workers=1) as base:
        yield base


def raw(base: str, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes as they are (requests would refuse to); return status, headers and body."""
    address = urlparse(base)
    with socket.create_connection((address.hostname, address.port), timeout=10) as conn:
        conn.sendall(request)
        data = b""
        while chunk := conn.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines)}
    return int(status_line.split()[1]), headers, body


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"GET /healthz?" + b"q" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (
            b"GET /healthz HTTP/1.1\r\nHost: x\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(200))
            + b"\r\n",
            431,
        ),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"b" * 9000 + b"\r\n\r\n", 431),
        (b"GET /healthz HTTP/9.9\r\nHost: x\r\n\r\n", 400),
        (b"NOT A REQUEST\r\n\r\n", 400),
    ],
    ids=["request line too long", "too many headers", "header too big", "bad version", "garbage"],
)
def test_the_servers_own_refusals_are_problems(server, request_bytes, status):  # type: ignore[no-untyped-def]
    got, headers, body = raw(server, request_bytes)
    assert got == status
    assert headers["content-type"] == PROBLEM
    problem = json.loads(body)
    assert problem["status"] == status and problem["title"] and problem["type"]
    assert int(headers["content-length"]) == len(body)


def test_ordinary_requests_still_pass_the_server(server):  # type: ignore[no-untyped-def]
    assert requests.get(server + "/healthz?" + "q" * 3000, headers={"X-Long": "v" * 6000}, timeout=10).ok


# --- methods ----------------------------------------------------------------------------------


def test_405_says_which_methods_are_allowed(client):
    response = client.delete("/api/v1/categories")
    assert response.status_code == 405 and response.mimetype == PROBLEM
    assert {m.strip() for m in response.headers["Allow"].split(",")} >= {"GET", "POST"}
    assert "DELETE" not in response.headers["Allow"]


# --- PATCH without a body ---------------------------------------------------------------------


@pytest.mark.parametrize("path", PATCHES)
@pytest.mark.parametrize(
    "request_kwargs",
    [
        {},
        {"content_type": "application/json"},
        {"data": "  ", "content_type": "application/json"},
        {"data": "a=1"},
    ],
    ids=["nothing", "empty JSON", "blank JSON", "a form"],
)
def test_a_patch_without_a_body_is_refused(client, path, request_kwargs):  # type: ignore[no-untyped-def]
    url = path.replace("{code}", "440117103001")
    for name in ("user_id", "key_id", "branch_id", "group_id", "building_id", "unit_id"):
        url = url.replace("{" + name + "}", "1")
    response = client.patch(url, **request_kwargs)
    assert response.status_code == 400 and response.mimetype == PROBLEM
    assert "JSON body" in response.json["detail"]


def test_a_patch_with_a_body_still_works(client):
    response = client.patch("/api/v1/me", json={"display_name": "管理员"})
    assert response.status_code == 200 and response.json["display_name"] == "管理员"


# --- what the document promises ---------------------------------------------------------------


def test_the_412_body_matches_the_documented_problem(app, accounts, session, client):
    from tests.conftest import client_as

    worker = client_as(app, accounts, "worker")
    event = worker.post("/api/v1/events", json=report(*grid_point(session, accounts.worker_grids[0]))).json
    stale = client.post(f"/api/v1/events/{event['id']}/actions", json={"action": "accept", "version": 7})
    assert stale.status_code == 412
    documented = SPEC["components"]["schemas"]["Problem"]["properties"]
    assert set(stale.json) <= set(documented)
    assert documented["current_version"]["type"] == "integer" and documented["current_version"]["description"]
    assert "status_now" in documented


def test_the_upload_form_is_documented_in_its_request_body():
    operation = SPEC["paths"]["/api/v1/events/{event_id}/attachments"]["post"]
    assert all(p["in"] in ("path", "query", "header", "cookie") for p in operation.get("parameters", []))
    schema = operation["requestBody"]["content"]["multipart/form-data"]["schema"]
    if "$ref" in schema:
        schema = SPEC["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"file", "stage"}
    assert schema["properties"]["stage"]["enum"] == ["report", "resolution"]
    assert schema["required"] == ["file"]


def test_no_operation_has_a_form_data_parameter():
    for path, item in SPEC["paths"].items():
        for parameter in item.get("parameters", []):
            assert parameter["in"] != "formData", path
        for method, operation in item.items():
            if isinstance(operation, dict):
                for parameter in operation.get("parameters", []):
                    assert parameter["in"] != "formData", (method, path)


def test_the_actions_endpoint_documents_its_refusals():
    responses = SPEC["paths"]["/api/v1/events/{event_id}/actions"]["post"]["responses"]
    assert {"200", "403", "404", "409", "412", "422", "428"} <= set(responses)
