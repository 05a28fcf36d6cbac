"""Every write route in the OpenAPI document, fed bodies built to break parsers and drivers.

For each POST, PUT and PATCH: a body nested 100,000 deep, a lone surrogate in every string field
its schema declares, and huge numbers in every number field. No answer may be a 5xx or anything
but problem+json, and no table may gain or lose a row.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, text

from backend import openapi_doc
from tests.conftest import client_as
from tests.org.factories import make_org_world

SPEC = json.loads(openapi_doc.PATH.read_text(encoding="utf-8"))
WRITES = sorted(
    (method.upper(), path)
    for path, item in SPEC["paths"].items()
    for method in item
    if method in ("post", "put", "patch")
)

DEEP = "[" * 100_000 + "]" * 100_000
DEEP_OBJECT = '{"a":' * 100_000 + "1" + "}" * 100_000
SURROGATE = "\ud800"
# Stand-ins replaced in the JSON text: numbers json.dumps cannot or will not write.
MARK = "__number__"
HUGE_NUMBERS = {
    "401 digits": "1" * 401,
    "5000 digits": "9" * 5000,
    "1e400": "1e400",
    "-1e400": "-1e400",
    "10^30": "1" + "0" * 30,
}


def resolve(schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 20:
        node: Any = SPEC
        for part in schema["$ref"].split("/")[1:]:
            node = node[part]
        schema, seen = node, seen + 1
    return schema


def fill(schema: dict[str, Any], leaf: str, depth: int = 0) -> Any:
    """A value shaped like `schema` whose every string (leaf "string") or number (leaf "number")
    is the bad one; None where the schema holds no such leaf."""
    schema = resolve(schema)
    if depth > 6:
        return None
    kind = schema.get("type")
    if "coordinates" in schema.get("properties", {}):  # a GeoJSON geometry
        kinds = schema["properties"]["type"].get("enum") or ["Point"]
        if leaf == "number":
            coordinates: Any = [MARK, MARK]
            if kinds[0] == "Polygon":
                coordinates = [[[MARK, MARK], [MARK, 0], [0, MARK], [MARK, MARK]]]
            elif kinds[0] == "MultiPolygon":
                coordinates = [[[[MARK, MARK], [MARK, 0], [0, MARK], [MARK, MARK]]]]
            return {"type": kinds[0], "coordinates": coordinates}
        return {"type": SURROGATE, "coordinates": [0, 0]}
    if kind == "object" or "properties" in schema:
        out = {}
        for name, sub in schema.get("properties", {}).items():
            value = fill(sub, leaf, depth + 1)
            if value is not None:
                out[name] = value
        if not schema.get("properties") and leaf == "string":
            out[SURROGATE] = SURROGATE
        return out or None
    if kind == "array":
        value = fill(schema.get("items", {}), leaf, depth + 1)
        return None if value is None else [value]
    if kind == "string" and leaf == "string":
        return SURROGATE
    if kind in ("number", "integer") and leaf == "number":
        return MARK
    return None


def component(name: str) -> dict[str, Any]:
    return resolve({"$ref": f"#/components/schemas/{name}"})


def feature(properties: str, geometry: str, leaf: str) -> dict[str, Any]:
    """A GeoJSON feature whose properties and geometry are shaped like a create schema's."""
    values = fill(component(properties), leaf) or {}
    shape = values.pop(geometry, None) or {"type": "Point", "coordinates": [113.5, 23.6]}
    return {"type": "Feature", "geometry": shape, "properties": values}


# Bodies whose items the document gives only as objects: each item is shaped like another schema.
ITEMS: dict[str, Callable[[str], Any]] = {
    "/api/v1/events/batch": lambda leaf: {"items": [fill(component("EventCreate"), leaf)]},
    "/api/v1/buildings/import": lambda leaf: {
        "type": "FeatureCollection",
        "features": [feature("BuildingCreate", "geometry", leaf)],
    },
    "/api/v1/emergency-units/import": lambda leaf: {
        "type": "FeatureCollection",
        "features": [feature("UnitCreate", "location", leaf)],
    },
}


def body_schema(operation: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    content = operation.get("requestBody", {}).get("content", {})
    for media_type, entry in content.items():
        return media_type, resolve(entry.get("schema", {}))
    return None


@pytest.fixture
def org(session, accounts):  # type: ignore[no-untyped-def]
    world = make_org_world(session, accounts)
    session.commit()
    return world


@pytest.fixture
def case_id(session, accounts) -> int:  # type: ignore[no-untyped-def]
    """An open mediation case in 温泉镇."""
    from backend.auth import service as auth
    from backend.events import service as events
    from backend.mediation import service as mediation

    row = session.execute(
        text(
            "SELECT ST_X(ST_PointOnSurface(geom)) AS x, ST_Y(ST_PointOnSurface(geom)) AS y FROM areas"
            " WHERE code = :code AND valid_to IS NULL"
        ),
        {"code": accounts.worker_grids[0]},
    ).one()
    admin = auth.actor_for(session, auth.get_user(session, accounts.ids["admin"]))
    event, _ = events.report_event(
        session, events.Report(category="dispute", description="纠纷", lon=row.x, lat=row.y), actor=admin
    )
    case = mediation.open_case(
        session,
        event.id,
        actor=admin,
        dispute_type="other",
        mediators=[{"role": "other", "name": "调解员"}],
        parties=[],
    )
    session.commit()
    return case.id


@pytest.fixture
def patrol(session, accounts) -> str:  # type: ignore[no-untyped-def]
    """A patrol of the admin, who walks the write routes."""
    from backend.auth.scope import Actor
    from backend.patrols import service as patrols

    admin = Actor(role="admin", user_id=accounts.ids["admin"])
    started, _ = patrols.start_patrol(session, admin, patrol_id=uuid.uuid4(), started_at=None)
    session.commit()
    return str(started.id)


def path_for(path: str, org: Any, accounts: Any, exists: bool, case_id: int = 0, patrol: str = "") -> str:
    """Fill the path's parameters with rows that exist, or with ones that do not."""
    values: dict[str, str] = {
        "event_id": str(uuid.uuid4()),
        "user_id": str(accounts.ids["other_worker"]) if exists else "999999999",
        "key_id": "1" if exists else "999999999",
        "branch_id": str(org.branch["in"]) if exists else "999999999",
        "group_id": str(org.group["in"]) if exists else "999999999",
        "building_id": str(org.building["in"]) if exists else "999999999",
        "unit_id": str(org.unit["in"]) if exists else "999999999",
        "alert_id": str(org.alert["in"]) if exists else "999999999",
        "case_id": str(case_id) if exists else "999999999",
        "code": ("other" if "categories" in path else "440117103001") if exists else "nope",
        "patrol_id": patrol if exists else str(uuid.uuid4()),
        "grid_kind": "comprehensive" if exists else "nope",
        "day": "2026-10-01" if exists else "nope",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, path
    return path


def bodies(path: str, operation: dict[str, Any]) -> list[tuple[str, str, bytes]]:
    """(case, content type, body) for one operation: each body is one it must refuse, unless the
    operation takes no body at all."""
    out = [
        ("deep array", "application/json", DEEP.encode()),
        ("deep object", "application/json", DEEP_OBJECT.encode()),
    ]
    found = body_schema(operation)
    if found is None:
        return out
    media_type, schema = found
    strings = ITEMS[path]("string") if path in ITEMS else fill(schema, "string")
    numbers = ITEMS[path]("number") if path in ITEMS else fill(schema, "number")
    if strings is None:
        return out + _numbers(numbers)
    if media_type == "multipart/form-data":
        form = {k: v for k, v in strings.items() if isinstance(v, str)}
        boundary = "wangge-boundary"
        parts = [
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
            + value.encode("utf-8", "surrogatepass")
            + b"\r\n"
            for name, value in form.items()
        ]
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        out.append(("surrogates", f"multipart/form-data; boundary={boundary}", body))
        return out
    out.append(("surrogates", "application/json", json.dumps(strings).encode()))
    return out + _numbers(numbers)


def _numbers(numbers: Any) -> list[tuple[str, str, bytes]]:
    if numbers is None:
        return []
    template = json.dumps(numbers)
    return [
        (name, "application/json", template.replace(f'"{MARK}"', number).encode())
        for name, number in HUGE_NUMBERS.items()
    ]


def row_counts(connection: Connection) -> dict[str, int]:
    tables = connection.execute(
        text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY tablename")
    ).scalars()
    counts = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)
    return dict(connection.execute(text(f"SELECT {counts}")).one()._mapping)


def test_every_write_route_is_walked():
    assert len(WRITES) >= 30
    assert ("POST", "/api/v1/auth/refresh") in WRITES


@pytest.mark.parametrize(("method", "path"), WRITES, ids=[f"{m} {p}" for m, p in WRITES])
def test_bad_bodies_get_problems_and_change_nothing(  # type: ignore[no-untyped-def]
    app, accounts, connection, org, case_id, patrol, method, path, monkeypatch, caplog
):
    # A crash answers 500 here, as in production, instead of failing the request in the client.
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)
    client = client_as(app, accounts, "admin")
    operation = SPEC["paths"][path][method.lower()]
    takes_body = body_schema(operation) is not None
    before = row_counts(connection)
    failures = []
    for exists in (True, False):
        url = path_for(path, org, accounts, exists, case_id, patrol)
        for case, content_type, body in bodies(path, operation):
            caplog.clear()
            response = client.open(url, method=method, data=body, content_type=content_type)
            where = f"{case} {'existing' if exists else 'missing'}: {response.status_code}"
            if response.status_code >= 500:
                crash = [r.exc_info[1] for r in caplog.records if r.exc_info]
                failures.append(f"{where} {crash[-1]!r}"[:300] if crash else where)
            elif response.status_code == 207:  # a batch: each bad item fails alone
                outcomes = {item["outcome"] for item in response.json["items"]}
                if outcomes != {"invalid"}:
                    failures.append(f"{where} outcomes {outcomes}")
            elif takes_body and response.mimetype != "application/problem+json":
                failures.append(f"{where} answered {response.mimetype}")
            after = row_counts(connection)
            changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
            if changed:
                failures.append(f"{where} changed rows {changed}")
                before = after
    assert not failures, "\n".join(failures)
