"""Who may call each organisation endpoint, in scope (the worker's grid, inside the supervisor's
town and the GIS key's area) and out of scope (another town's grid); see tests/test_access.py."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.org.factories import building_body, point, unit_body

Request = Callable[[Any, str], tuple[str, str, Any]]
Expect = dict[str, tuple[int, int]]

V1 = "/api/v1"


def _get(url: Callable[[Any, str], str]) -> Request:
    return lambda w, s: ("GET", url(w, s), None)


def _org(w: Any) -> Any:
    return w.org


READ_ALL: Expect = {"admin": (200, 200), "supervisor": (200, 200), "worker": (200, 200), "gis": (200, 200)}
READ_SCOPED: Expect = {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (200, 404)}


def created_in_scope(status: int = 201, out: int = 403) -> Expect:
    """Creating: admins anywhere, supervisors inside their area; workers and GIS keys never."""
    return {"admin": (status, status), "supervisor": (status, out), "worker": (403, 403), "gis": (403, 403)}


def changed_in_scope(status: int) -> Expect:
    """Changing a row: out of scope it does not exist (404); workers and GIS keys 403 in scope."""
    return {"admin": (status, status), "supervisor": (status, 404), "worker": (403, 404), "gis": (403, 404)}


def _feature(geometry: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def _building_import(w: Any, s: str) -> tuple[str, str, Any]:
    body = building_body(*_org(w).point[s])
    geometry = body.pop("geometry")
    return (
        "POST",
        f"{V1}/buildings/import",
        {"type": "FeatureCollection", "features": [_feature(geometry, body)]},
    )


def _unit_import(w: Any, s: str) -> tuple[str, str, Any]:
    body = unit_body(*_org(w).point[s])
    geometry = body.pop("location")
    return (
        "POST",
        f"{V1}/emergency-units/import",
        {"type": "FeatureCollection", "features": [_feature(geometry, body)]},
    )


def _respond(step: str) -> Request:
    return lambda w, s: ("POST", f"{V1}/alerts/{_org(w).alert[s]}/dispatches/{_org(w).unit[s]}/{step}", None)


ORG_CASES: dict[tuple[str, str], tuple[Request, Expect]] = {
    ("GET", f"{V1}/party-branches"): (_get(lambda w, s: f"{V1}/party-branches"), READ_ALL),
    ("POST", f"{V1}/party-branches"): (
        lambda w, s: ("POST", f"{V1}/party-branches", {"grid": _org(w).free_grid[s]}),
        created_in_scope(),
    ),
    ("GET", f"{V1}/party-branches/{{branch_id}}"): (
        _get(lambda w, s: f"{V1}/party-branches/{_org(w).branch[s]}"),
        READ_SCOPED,
    ),
    ("PATCH", f"{V1}/party-branches/{{branch_id}}"): (
        lambda w, s: ("PATCH", f"{V1}/party-branches/{_org(w).branch[s]}", {"member_count": 15}),
        changed_in_scope(200),
    ),
    ("DELETE", f"{V1}/party-branches/{{branch_id}}"): (
        lambda w, s: ("DELETE", f"{V1}/party-branches/{_org(w).bare_branch[s]}", None),
        changed_in_scope(204),
    ),
    ("GET", f"{V1}/party-groups"): (_get(lambda w, s: f"{V1}/party-groups"), READ_ALL),
    # Another area's branch is unknown to a supervisor: 422 on the field, like a missing one.
    ("POST", f"{V1}/party-groups"): (
        lambda w, s: (
            "POST",
            f"{V1}/party-groups",
            {
                "branch_id": _org(w).branch[s],
                "kind": "cooperative",
                "name": "第一经济社党小组",
                "cooperative": "第一经济社",
            },
        ),
        created_in_scope(out=422),
    ),
    ("GET", f"{V1}/party-groups/{{group_id}}"): (
        _get(lambda w, s: f"{V1}/party-groups/{_org(w).group[s]}"),
        READ_SCOPED,
    ),
    ("PATCH", f"{V1}/party-groups/{{group_id}}"): (
        lambda w, s: ("PATCH", f"{V1}/party-groups/{_org(w).group[s]}", {"leader": "陈组长"}),
        changed_in_scope(200),
    ),
    ("DELETE", f"{V1}/party-groups/{{group_id}}"): (
        lambda w, s: ("DELETE", f"{V1}/party-groups/{_org(w).group[s]}", None),
        changed_in_scope(204),
    ),
    ("GET", f"{V1}/buildings"): (_get(lambda w, s: f"{V1}/buildings"), READ_ALL),
    ("POST", f"{V1}/buildings"): (
        lambda w, s: ("POST", f"{V1}/buildings", building_body(*_org(w).point[s])),
        created_in_scope(),
    ),
    # Import reports a feature outside the supervisor's area and imports nothing: 422.
    ("POST", f"{V1}/buildings/import"): (_building_import, created_in_scope(out=422)),
    ("GET", f"{V1}/buildings/{{building_id}}"): (
        _get(lambda w, s: f"{V1}/buildings/{_org(w).building[s]}"),
        READ_SCOPED,
    ),
    ("PATCH", f"{V1}/buildings/{{building_id}}"): (
        lambda w, s: ("PATCH", f"{V1}/buildings/{_org(w).building[s]}", {"floors": 7}),
        changed_in_scope(200),
    ),
    ("DELETE", f"{V1}/buildings/{{building_id}}"): (
        lambda w, s: ("DELETE", f"{V1}/buildings/{_org(w).building[s]}", None),
        changed_in_scope(204),
    ),
    ("GET", f"{V1}/emergency-units"): (_get(lambda w, s: f"{V1}/emergency-units"), READ_ALL),
    ("POST", f"{V1}/emergency-units"): (
        lambda w, s: ("POST", f"{V1}/emergency-units", unit_body(*_org(w).point[s])),
        created_in_scope(),
    ),
    ("POST", f"{V1}/emergency-units/import"): (_unit_import, created_in_scope(out=422)),
    ("GET", f"{V1}/emergency-units/{{unit_id}}"): (
        _get(lambda w, s: f"{V1}/emergency-units/{_org(w).unit[s]}"),
        READ_SCOPED,
    ),
    ("PATCH", f"{V1}/emergency-units/{{unit_id}}"): (
        lambda w, s: ("PATCH", f"{V1}/emergency-units/{_org(w).unit[s]}", {"members": 2}),
        changed_in_scope(200),
    ),
    # The world's units were called by its alerts: they are deactivated, not deleted.
    ("DELETE", f"{V1}/emergency-units/{{unit_id}}"): (
        lambda w, s: ("DELETE", f"{V1}/emergency-units/{_org(w).unit[s]}", None),
        changed_in_scope(409),
    ),
    ("GET", f"{V1}/emergency-units/{{unit_id}}/check-ins"): (
        _get(lambda w, s: f"{V1}/emergency-units/{_org(w).unit[s]}/check-ins"),
        READ_SCOPED,
    ),
    # A unit has no login: a worker of its grid, a supervisor in scope or an admin checks it in.
    ("POST", f"{V1}/emergency-units/{{unit_id}}/check-ins"): (
        lambda w, s: ("POST", f"{V1}/emergency-units/{_org(w).unit[s]}/check-ins", {}),
        {"admin": (201, 201), "supervisor": (201, 404), "worker": (201, 404), "gis": (403, 404)},
    ),
    ("GET", f"{V1}/alerts"): (_get(lambda w, s: f"{V1}/alerts"), READ_ALL),
    ("POST", f"{V1}/alerts"): (
        lambda w, s: ("POST", f"{V1}/alerts", {"location": point(*_org(w).point[s]), "kind": "fire"}),
        created_in_scope(),
    ),
    ("GET", f"{V1}/alerts/{{alert_id}}"): (_get(lambda w, s: f"{V1}/alerts/{_org(w).alert[s]}"), READ_SCOPED),
    ("POST", f"{V1}/alerts/{{alert_id}}/dispatches/{{unit_id}}/acknowledge"): (
        _respond("acknowledge"),
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (403, 403)},
    ),
    ("POST", f"{V1}/alerts/{{alert_id}}/dispatches/{{unit_id}}/arrive"): (
        _respond("arrive"),
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (403, 403)},
    ),
    ("GET", f"{V1}/areas/{{code}}/profile"): (
        _get(lambda w, s: f"{V1}/areas/{_org(w).grid[s]}/profile"),
        READ_SCOPED,
    ),
    ("GET", f"{V1}/stats/check-ins"): (
        _get(lambda w, s: f"{V1}/stats/check-ins?area={_org(w).grid[s]}&group_by=day"),
        READ_SCOPED,
    ),
    ("GET", f"{V1}/stats/alert-responses"): (
        _get(lambda w, s: f"{V1}/stats/alert-responses?area={_org(w).grid[s]}"),
        READ_SCOPED,
    ),
}
