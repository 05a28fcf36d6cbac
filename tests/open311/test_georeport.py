"""A GeoReport v2 client over HTTP against the app under gunicorn: every answer checked against
the spec's shapes (tests/open311/georeport.py), XML parsed, a request's round trip from POST to
closed, and every error the spec names."""

from __future__ import annotations

import uuid
from typing import Any
from xml.etree import ElementTree

import jsonschema_rs
import pytest
import requests
from sqlalchemy.orm import Session

from backend.open311 import service as open311
from tests.mediation.helpers import grid_point
from tests.open311 import georeport

MARK = "MARKPII"


def valid(schema: dict[str, Any], body: Any) -> Any:
    errors = [e.message for e in jsonschema_rs.validator_for(schema, validate_formats=True).iter_errors(body)]
    assert not errors, errors
    return body


def xml(response: requests.Response, root: str) -> ElementTree.Element:
    assert response.headers["Content-Type"].startswith("text/xml")
    assert response.content.startswith(b"<?xml")
    element = ElementTree.fromstring(response.content)
    assert element.tag == root
    return element


@pytest.fixture(scope="module")
def api_key(engine) -> str:  # type: ignore[no-untyped-def]
    with Session(engine) as session, session.begin():
        _, key = open311.create_app_key(session, name=f"test app {uuid.uuid4().hex[:6]}")
    return key


@pytest.fixture(scope="module")
def base(live_server) -> str:  # type: ignore[no-untyped-def]
    return f"{live_server}/open311/v2"


@pytest.fixture(scope="module")
def where(engine, accounts) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    with Session(engine) as session:
        return grid_point(session, accounts.worker_grids[0])


def post(base: str, fmt: str = "json", **form: Any) -> requests.Response:
    return requests.post(f"{base}/requests.{fmt}", data=form, timeout=30)


def test_discovery_and_services(base):
    discovery = valid(georeport.DISCOVERY, requests.get(f"{base}/discovery.json", timeout=30).json())
    assert discovery["endpoints"][0]["url"] == base
    assert (
        xml(requests.get(f"{base}/discovery.xml", timeout=30), "discovery").find("endpoints/endpoint/url")
        is not None
    )
    services = valid(georeport.SERVICES, requests.get(f"{base}/services.json", timeout=30).json())
    codes = {s["service_code"] for s in services}
    assert {"dispute", "environment", "safety"} <= codes
    listed = xml(requests.get(f"{base}/services.xml", timeout=30), "services")
    assert {s.findtext("service_code") for s in listed.findall("service")} == codes
    definition = requests.get(f"{base}/services/environment.json", timeout=30)
    assert valid(georeport.SERVICE_DEFINITION, definition.json())["service_code"] == "environment"
    assert xml(requests.get(f"{base}/services/environment.xml", timeout=30), "service_definition")


def test_a_request_from_post_to_closed(base, live_server, api_key, where, accounts):
    lon, lat = where
    posted = post(
        base,
        api_key=api_key,
        service_code="environment",
        lat=lat,
        long=lon,
        description="小区门口垃圾没人清理",
        media_url="https://example.com/photo.jpg",
    )
    assert posted.status_code == 201, posted.text
    (answer,) = valid(georeport.POSTED, posted.json())
    request_id, token = answer["service_request_id"], answer["token"]
    tokens = valid(georeport.TOKENS, requests.get(f"{base}/tokens/{token}.json", timeout=30).json())
    assert tokens == [{"service_request_id": request_id, "token": token}]
    one = requests.get(f"{base}/requests/{request_id}.json", timeout=30)
    (shown,) = valid(georeport.REQUESTS, one.json())
    assert shown["status"] == "open" and shown["service_code"] == "environment"
    assert shown["media_url"] == "https://example.com/photo.jpg"
    assert abs(shown["lat"] - lat) < 1e-6 and abs(shown["long"] - lon) < 1e-6
    as_xml = xml(
        requests.get(f"{base}/requests.xml?service_request_id={request_id}", timeout=30), "service_requests"
    )
    assert [r.findtext("service_request_id") for r in as_xml.findall("request")] == [request_id]
    assert as_xml.find("request/status").text == "open"  # type: ignore[union-attr]

    # The centre sees the resident's report as any other, in the grid the point lies in; the
    # closed loop closes it. (The resident's contacts: tests/open311/test_limits.py, in-process,
    # so that no committed event carries them.)
    staff = accounts.headers("supervisor")
    event = requests.get(f"{live_server}/api/v1/events/{request_id}", headers=staff, timeout=30).json()
    assert (event["channel"], event["grid"]) == ("citizen", accounts.worker_grids[0])
    for who, action in (
        ("supervisor", {"action": "accept"}),
        ("supervisor", {"action": "dispatch", "assignee_id": accounts.ids["worker"]}),
        ("worker", {"action": "start"}),
        ("worker", {"action": "resolve", "note": "已清理"}),
        ("supervisor", {"action": "close"}),
    ):
        response = requests.post(
            f"{live_server}/api/v1/events/{request_id}/actions",
            json={**action, "version": event["version"]},
            headers=accounts.headers(who),
            timeout=30,
        )
        assert response.status_code == 200, response.text
        event = response.json()
    (closed,) = valid(
        georeport.REQUESTS, requests.get(f"{base}/requests/{request_id}.json", timeout=30).json()
    )
    assert closed["status"] == "closed"
    ids = {
        r["service_request_id"]
        for r in requests.get(f"{base}/requests.json?status=closed", timeout=30).json()
    }
    assert request_id in ids
    ids = {
        r["service_request_id"] for r in requests.get(f"{base}/requests.json?status=open", timeout=30).json()
    }
    assert request_id not in ids


def test_a_second_report_nearby_hears_of_the_first_and_sensitive_text_stays_in(base, api_key, where):
    lon, lat = where
    form = {
        "api_key": api_key,
        "service_code": "dispute",
        "lat": lat,
        "long": lon,
        "description": f"邻居吵架 {MARK}",
    }
    first = post(base, **form).json()[0]["service_request_id"]
    second = valid(georeport.POSTED, post(base, **form).json())[0]
    assert first in second["possible_duplicates"] and second["service_notice"]
    listed = requests.get(f"{base}/requests.json?service_code=dispute", timeout=30)
    shown = {r["service_request_id"]: r for r in valid(georeport.REQUESTS, listed.json())}
    assert shown[first]["description"] is None and MARK not in listed.text


def test_an_address_alone_is_placed_in_the_area_it_names(base, live_server, api_key, accounts):
    admin = accounts.headers("admin")
    village = requests.get(f"{live_server}/api/v1/areas/440117103001", headers=admin, timeout=30).json()
    name = village["properties"]["name"]
    posted = post(base, api_key=api_key, service_code="livelihood", address_string=f"从化区温泉镇{name}村口")
    assert posted.status_code == 201, posted.text
    request_id = posted.json()[0]["service_request_id"]
    event = requests.get(f"{live_server}/api/v1/events/{request_id}", headers=admin, timeout=30).json()
    assert event["village"] == "440117103001"
    (shown,) = requests.get(f"{base}/requests/{request_id}.json", timeout=30).json()
    assert shown["address"] == f"从化区温泉镇{name}村口"


def _error(response: requests.Response, status: int) -> str:
    assert response.status_code == status, response.text
    (error,) = valid(georeport.ERRORS, response.json())
    assert error["code"] == status
    return str(error["description"])


def test_every_error_the_spec_names(base, api_key, where):
    lon, lat = where
    good = {"api_key": api_key, "service_code": "environment", "lat": lat, "long": lon}
    assert "api_key" in _error(post(base, **{k: v for k, v in good.items() if k != "api_key"}), 403)
    _error(post(base, **{**good, "api_key": "o311_nope_nope"}), 403)
    _error(post(base, **{**good, "api_key": "wg_not_an_app"}), 403)
    assert "service_code" in _error(post(base, **{**good, "service_code": "potholes"}), 400)
    assert "service_code" in _error(post(base, **{k: v for k, v in good.items() if k != "service_code"}), 400)
    for lat_value, long_value in (("abc", lon), (95, lon), (lat, 200), ("nan", lon), (lat, ""), (0, 0)):
        description = _error(post(base, **{**good, "lat": lat_value, "long": long_value}), 400)
        assert "lat" in description or "long" in description
    assert "location" in _error(
        post(base, **{k: v for k, v in good.items() if k not in ("lat", "long")}), 400
    )
    _error(post(base, **{**good, "media_url": "javascript:alert(1)"}), 400)
    _error(requests.get(f"{base}/services/potholes.json", timeout=30), 404)
    _error(requests.get(f"{base}/requests/{uuid.uuid4()}.json", timeout=30), 404)
    _error(requests.get(f"{base}/requests/not-an-id.json", timeout=30), 404)
    _error(requests.get(f"{base}/tokens/nope.json", timeout=30), 404)
    _error(requests.get(f"{base}/requests.json?status=pending", timeout=30), 400)
    _error(requests.get(f"{base}/requests.json?start_date=yesterday", timeout=30), 400)
    _error(
        requests.get(
            f"{base}/requests.json?start_date=2026-01-01T00:00:00Z&end_date=2026-06-01T00:00:00Z", timeout=30
        ),
        400,
    )
    _error(requests.get(f"{base}/requests.json?page_size=1001", timeout=30), 400)
    _error(requests.get(f"{base}/requests.json?service_request_id=x,y", timeout=30), 400)
    _error(requests.get(f"{base}/nothing.json", timeout=30), 404)
    refused = post(base, fmt="xml", **{**good, "api_key": ""})
    assert refused.status_code == 403
    error = xml(refused, "errors").find("error")
    assert error is not None and error.findtext("code") == "403" and error.findtext("description")


def test_paging(base, api_key, where):
    lon, lat = where
    for _ in range(3):
        assert post(base, api_key=api_key, service_code="other", lat=lat, long=lon).status_code == 201
    pages = [
        [
            r["service_request_id"]
            for r in requests.get(
                f"{base}/requests.json?service_code=other&page_size=2&page={p}", timeout=30
            ).json()
        ]
        for p in (1, 2)
    ]
    assert len(pages[0]) == 2 and pages[1] and not set(pages[0]) & set(pages[1])
