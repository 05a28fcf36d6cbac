"""Every GET route of the OpenAPI document, and every OGC layer, walked with a read-only GIS key.

The world is made through the API, as the field makes it: a sensitive dispute with the people
involved, a trail with notes and a dispatch, a photo, a branch with its secretary, a group with
its leader, a building with its head, a unit with its leader, a check-in, an alert and an
assessment. Each
personal value carries a marker; no answer to the GIS key may carry a marker or a person-id
field. New routes join the walk by being documented.
"""

from __future__ import annotations

import io
import json
import re
import time
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import text

from backend import openapi_doc
from backend.patrols import figures
from backend.stats.days import local_today
from geo.tiles import tile_of
from tests.conftest import client_as

MARK = "MARKPII"
PHONE = "13977700000"
TOWN = "440117103"  # the GIS key's area
PERSON_KEYS = {
    "reporter_id",
    "assignee_id",
    "actor_id",
    "resolved_by",
    "closed_by",
    "created_by",
    "uploaded_by",
    "acknowledged_by",
    "arrived_by",
    "checked_in_by",
    "user_id",
    "worker",
    "contacts",
    "secretary",
    "leader",
    "head",
    "note",
    "phone",
    "worker_id",
    "track",
    "parties",
    "mediators",
    "notes",
    "opened_by",
    "outcome_by",
    "recorded_by",
    "outcome_note",
}

_POINT_IN = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE code = :code AND valid_to IS NULL) s"
)


@dataclass
class Walk:
    values: dict[str, str]
    point: tuple[float, float]


def _ok(response: Any, *statuses: int) -> Any:
    assert response.status_code in (statuses or (200, 201)), response.get_data(as_text=True)
    return response.get_json()


def _png() -> io.BytesIO:
    out = io.BytesIO()
    Image.new("RGB", (6, 6), (200, 30, 30)).save(out, format="PNG")
    out.seek(0)
    return out


@pytest.fixture
def walk(app, accounts, session) -> Walk:  # type: ignore[no-untyped-def]
    admin = client_as(app, accounts, "admin")
    worker = client_as(app, accounts, "worker")
    supervisor = client_as(app, accounts, "supervisor")
    grid = accounts.worker_grids[0]
    row = session.execute(_POINT_IN, {"code": grid}).one()
    lon, lat = float(row.x), float(row.y)
    location = {"type": "Point", "coordinates": [lon, lat]}
    event = _ok(
        worker.post(
            "/api/v1/events",
            json={
                "category": "dispute",
                "description": f"邻里纠纷 {MARK}",
                "location": location,
                "contacts": [{"name": f"张{MARK}", "phone": PHONE, "role": "当事人"}],
            },
        )
    )
    version = event["version"]
    for action in (
        {"action": "accept", "note": f"受理 {MARK}"},
        {"action": "dispatch", "assignee_id": accounts.ids["worker"], "note": f"派给 {MARK}"},
        {"action": "start", "note": f"开始 {MARK}"},
    ):
        who = worker if action["action"] == "start" else supervisor
        event = _ok(who.post(f"/api/v1/events/{event['id']}/actions", json={**action, "version": version}))
        version = event["version"]
    photo = _ok(
        worker.post(
            f"/api/v1/events/{event['id']}/attachments",
            data={"file": (_png(), "p.png"), "stage": "report"},
            content_type="multipart/form-data",
        ),
        201,
    )
    branch = _ok(admin.post("/api/v1/party-branches", json={"grid": grid, "secretary": f"书记{MARK}"}))
    group = _ok(
        admin.post(
            "/api/v1/party-groups",
            json={"branch_id": branch["id"], "kind": "building", "name": "一组", "leader": f"组长{MARK}"},
        )
    )
    building = _ok(
        admin.post(
            "/api/v1/buildings",
            json={
                "name": "1栋",
                "geometry": location,
                "households": 10,
                "rental_units": 2,
                "safe_rental_units": 1,
                "head": {"name": f"楼长{MARK}", "phone": PHONE},
            },
        )
    )
    unit = _ok(
        admin.post(
            "/api/v1/emergency-units",
            json={
                "name": "应急单元",
                "kind": "shop",
                "members": 3,
                "location": location,
                "leader": {"name": f"队长{MARK}", "phone": PHONE},
            },
        )
    )
    _ok(worker.post(f"/api/v1/emergency-units/{unit['id']}/check-ins", json={}))
    alert = _ok(
        supervisor.post(
            "/api/v1/alerts",
            json={"location": location, "kind": "fire", "radius_m": 1000, "count": 3, "description": "起火"},
        )
    )
    # Last month of the GIS key's town, frozen by its supervisor (who is named in it).
    assessment = _ok(
        supervisor.post("/api/v1/stats/assessments", json={"area": TOWN, "month": "2025-10"}), 201
    )
    # A patrol with its track, and its day's figures.
    patrol = _ok(worker.post("/api/v1/patrols", json={"id": str(uuid.uuid4())}), 201)
    points = [{"lon": lon + i * 1e-4, "lat": lat, "t": time.time() - 600 + 10 * i} for i in range(5)]
    _ok(worker.post(f"/api/v1/patrols/{patrol['id']}/points", json={"batch": "1", "points": points}), 201)
    figures.compute_day(session, local_today())
    # The dispute goes to mediation: names of parties and mediators, session notes, the agreement.
    case = _ok(
        supervisor.post(
            "/api/v1/mediation/cases",
            json={
                "event_id": event["id"],
                "dispute_type": "neighbour",
                "mediators": [{"role": "village_cadre", "name": f"调解员{MARK}"}],
                "parties": [{"name": f"当事人{MARK}", "phone": PHONE}],
            },
        ),
        201,
    )
    _ok(
        supervisor.post(
            f"/api/v1/mediation/cases/{case['id']}/sessions",
            json={"held_at": "2026-12-01T10:00:00Z", "notes": f"笔录 {MARK}"},
        ),
        201,
    )
    _ok(
        supervisor.put(
            f"/api/v1/mediation/cases/{case['id']}/agreement",
            data={"file": (_png(), "agreement.png")},
            content_type="multipart/form-data",
        )
    )
    # A resident's report of a dispute through Open311, with their contacts.
    from backend.open311 import service as open311

    _, key = open311.create_app_key(session, name="walk app")
    session.commit()
    citizen = admin.post(
        "/open311/v2/requests.json",
        data={
            "api_key": key,
            "service_code": "dispute",
            "lat": str(lat),
            "long": str(lon),
            "description": f"邻里纠纷 {MARK}",
            "first_name": MARK,
            "phone": PHONE,
            "email": f"{MARK}@example.com",
        },
    )
    posted = _ok(citizen, 201)[0]
    values = {
        "patrol_id": patrol["id"],
        "grid_kind": "comprehensive",
        "request_id": posted["service_request_id"],
        "token": posted["token"],
        "case_id": str(case["id"]),
        "assessment_id": str(assessment["id"]),
        "event_id": event["id"],
        "sha256": photo["sha256"],
        "branch_id": str(branch["id"]),
        "group_id": str(group["id"]),
        "building_id": str(building["id"]),
        "unit_id": str(unit["id"]),
        "alert_id": str(alert["id"]),
        "code": TOWN,
        "user_id": str(accounts.ids["worker"]),
        "area": TOWN,
    }
    return Walk(values, (lon, lat))


def _spec() -> dict[str, Any]:
    return json.loads(openapi_doc.PATH.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


def _urls(spec: dict[str, Any], walk: Walk) -> list[str]:
    """Every GET of the document with its path filled in, and one call per grouping where a
    route groups."""
    from backend.gis import registry

    urls = []
    for path, item in spec["paths"].items():
        if "get" not in item:
            continue
        operation = item["get"]
        parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
        if "{layer}" in path:
            fills = [{"layer": c.id} for c in registry.collections()]
        else:
            fills = [{}]
        for fill in fills:
            values = {**walk.values, **fill}
            url = re.sub(r"\{(\w+)\}", lambda m, v=values: v[m.group(1)], path)  # type: ignore[misc]
            query = {"lon": str(walk.point[0]), "lat": str(walk.point[1])}
            required = [p["name"] for p in parameters if p["in"] == "query" and p.get("required")]
            base = {name: query.get(name) or walk.values[name] for name in required}
            urls.append(_with_query(url, base))
            grouping = next((p for p in parameters if p["name"] == "group_by"), None)
            for key in (grouping or {}).get("schema", {}).get("items", {}).get("enum", []):
                urls.append(_with_query(url, {**base, "group_by": key}))
    for collection in registry.collections():
        urls.append(f"/ogc/collections/{collection.id}/items?limit=1000")
        # /ogc and /tiles are outside the main document: their GETs with data, by hand.
        urls.append(f"/ogc/collections/{collection.id}/queryables")
        urls.append(f"/tiles/{collection.id}.json")
        for zoom in (10, 15):
            x, y = tile_of(*walk.point, zoom)
            urls.append(f"/tiles/{collection.id}/{zoom}/{x}/{y}.mvt")
    return urls


def _with_query(url: str, query: dict[str, str]) -> str:
    return url + ("?" + "&".join(f"{k}={v}" for k, v in query.items()) if query else "")


def _person_keys(value: Any, path: str = "$") -> list[str]:
    found = []
    if isinstance(value, dict):
        for key, item in value.items():
            if key in PERSON_KEYS and item not in (None, [], {}):
                found.append(f"{path}.{key}")
            found += _person_keys(item, f"{path}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += _person_keys(item, f"{path}[{index}]")
    return found


def test_a_gis_key_gets_no_personal_data_on_any_route(app, accounts, walk) -> None:  # type: ignore[no-untyped-def]
    gis = client_as(app, accounts, "gis")
    supervisor = client_as(app, accounts, "supervisor")
    leaks: list[str] = []
    walked = 0
    for url in _urls(_spec(), walk):
        response = gis.get(url)
        assert response.status_code < 500, (url, response.get_data(as_text=True)[:500])
        body = response.get_data().decode(errors="replace")
        if MARK in body or PHONE in body:
            leaks.append(f"{url}: a marked value")
        if response.is_json:
            leaks += [f"{url}: {key}" for key in _person_keys(response.get_json())]
        walked += response.status_code == 200
    assert not leaks, "\n".join(leaks)
    # The walk saw the data: the same routes give the marks to a supervisor in scope.
    assert walked > 40
    seen = supervisor.get(f"/api/v1/events/{walk.values['event_id']}").get_data(as_text=True)
    assert MARK in seen and PHONE in seen
    trail = supervisor.get(f"/api/v1/events/{walk.values['event_id']}/actions").get_json()
    assert any(step.get("note") and MARK in step["note"] for step in trail)
    case = f"/api/v1/mediation/cases/{walk.values['case_id']}"
    assert MARK in supervisor.get(case).get_data(as_text=True)
    assert MARK in supervisor.get(f"{case}/sessions").get_data(as_text=True)
    assert supervisor.get(f"{case}/agreement").status_code == 200


def test_per_person_figures_are_refused_to_a_gis_key(app, accounts, walk) -> None:  # type: ignore[no-untyped-def]
    gis = client_as(app, accounts, "gis")
    response = gis.get(f"/api/v1/stats/closure?area={TOWN}&group_by=worker")
    assert response.status_code == 403
    assert response.mimetype == "application/problem+json"
    supervisor = client_as(app, accounts, "supervisor")
    assert supervisor.get(f"/api/v1/stats/closure?area={TOWN}&group_by=worker").status_code == 200


def test_photos_of_sensitive_events_are_not_for_gis_keys(app, accounts, walk) -> None:  # type: ignore[no-untyped-def]
    url = f"/api/v1/attachments/{walk.values['sha256']}"
    assert client_as(app, accounts, "gis").get(url).status_code == 404
    assert client_as(app, accounts, "supervisor").get(url).status_code == 200


OPEN311_GETS = (
    "discovery",
    "services",
    "services/dispute",
    "requests",
    "requests?status=open",
    "requests?service_code=dispute",
    "requests?service_request_id={request_id}",
    "requests/{request_id}",
    "tokens/{token}",
)


def test_open311_answers_carry_no_personal_data_or_sensitive_text(app, accounts, walk) -> None:  # type: ignore[no-untyped-def]
    """Open311 is outside the API document: its GETs are walked here, by anyone and by the GIS
    key, in both formats."""
    leaks = []
    for client in (app.test_client(), client_as(app, accounts, "gis")):
        for path in OPEN311_GETS:
            resource, _, query = path.format(**walk.values).partition("?")
            for fmt in ("json", "xml"):
                url = f"/open311/v2/{resource}.{fmt}" + (f"?{query}" if query else "")
                response = client.get(url)
                assert response.status_code == 200, (url, response.get_data(as_text=True)[:300])
                body = response.get_data(as_text=True)
                if MARK in body or PHONE in body:
                    leaks.append(url)
                if fmt == "json":
                    leaks += [f"{url}: {key}" for key in _person_keys(response.get_json())]
    assert not leaks, leaks
    shown = app.test_client().get(f"/open311/v2/requests/{walk.values['request_id']}.json").get_json()
    assert shown[0]["description"] is None and shown[0]["service_code"] == "dispute"
    # The supervisor in scope reads the resident's contacts on the event itself.
    event = client_as(app, accounts, "supervisor").get(f"/api/v1/events/{walk.values['request_id']}")
    assert PHONE in event.get_data(as_text=True)
