"""A GIS key reads the organisation without personal data, as the OGC layers give it: no office
holders' names, no contacts, no person ids, no free text; a supervisor in scope reads them all."""

from __future__ import annotations

from typing import Any

import pytest

from tests.conftest import client_as
from tests.org.factories import make_org_world, point

V1 = "/api/v1"
# Names of office holders, contacts, person ids and free text: what a GIS key never gets.
PERSONAL = {
    "secretary",
    "leader",
    "head",
    "phone",
    "user_id",
    "created_by",
    "acknowledged_by",
    "arrived_by",
    "checked_in_by",
    "description",
}


def keys(body: Any) -> set[str]:
    """Every key at any depth of a JSON answer."""
    if isinstance(body, dict):
        return set(body).union(*(keys(value) for value in body.values()))
    if isinstance(body, list):
        return set().union(*(keys(value) for value in body))
    return set()


@pytest.fixture
def rows(app, accounts, session):  # type: ignore[no-untyped-def]
    """The org world, a group leader, a check-in and an alert raised by the supervisor in scope."""
    world = make_org_world(session, accounts)
    session.commit()
    supervisor = client_as(app, accounts, "supervisor")
    group = world.group["in"]
    assert supervisor.patch(f"{V1}/party-groups/{group}", json={"leader": "陈组长"}).status_code == 200
    unit = world.unit["in"]
    assert supervisor.post(f"{V1}/emergency-units/{unit}/check-ins", json={}).status_code == 201
    alert = supervisor.post(
        f"{V1}/alerts",
        json={"location": point(*world.point["in"]), "kind": "fire", "description": "3栋起火，有人被困"},
    )
    assert alert.status_code == 201
    return {
        "branch": world.branch["in"],
        "group": group,
        "building": world.building["in"],
        "unit": unit,
        "alert": alert.json["id"],
        "grid": world.grid["in"],
    }


def detail_urls(r: dict[str, Any]) -> dict[str, str]:
    return {
        "branch": f"{V1}/party-branches/{r['branch']}",
        "group": f"{V1}/party-groups/{r['group']}",
        "building": f"{V1}/buildings/{r['building']}",
        "unit": f"{V1}/emergency-units/{r['unit']}",
        "check_ins": f"{V1}/emergency-units/{r['unit']}/check-ins",
        "alert": f"{V1}/alerts/{r['alert']}",
        "profile": f"{V1}/areas/{r['grid']}/profile",
    }


LISTS = {
    "branch": f"{V1}/party-branches?limit=1000",
    "group": f"{V1}/party-groups?limit=1000",
    "building": f"{V1}/buildings?limit=1000",
    "unit": f"{V1}/emergency-units?limit=1000",
    "alert": f"{V1}/alerts?limit=1000",
}


def test_a_gis_key_gets_no_names_contacts_person_ids_or_free_text(app, accounts, rows):
    gis = client_as(app, accounts, "gis")
    answers = {}
    for url in [*detail_urls(rows).values(), *LISTS.values()]:
        response = gis.get(url)
        assert response.status_code == 200, url
        answers[url] = response.json
        assert keys(response.json) & PERSONAL == set(), url
    for what, url in LISTS.items():
        assert rows[what] in {item["id"] for item in answers[url]["items"]}, url
    # The rows themselves are there, with what the OGC layers give.
    building = answers[detail_urls(rows)["building"]]
    assert building["households"] == 20 and building["grid"] == rows["grid"]
    assert answers[detail_urls(rows)["alert"]]["dispatches"][0]["unit_id"] == rows["unit"]


def test_a_supervisor_in_scope_reads_them_and_one_outside_gets_404(app, accounts, rows):
    supervisor = client_as(app, accounts, "supervisor")
    urls = detail_urls(rows)
    seen = {what: supervisor.get(url).json for what, url in urls.items()}
    assert seen["branch"]["secretary"] == "张书记"
    assert seen["group"]["leader"] == "陈组长"
    assert seen["building"]["head"] == {"name": "李楼长", "phone": "13900000001"}
    assert seen["unit"]["leader"] == {"name": "王队长", "phone": "13900000002"}
    assert seen["check_ins"]["items"][0]["user_id"] == accounts.ids["supervisor"]
    alert = seen["alert"]
    assert alert["created_by"] == accounts.ids["supervisor"] and alert["description"] == "3栋起火，有人被困"
    assert alert["dispatches"][0]["leader"]["phone"] == "13900000002"
    for what, url in LISTS.items():
        item = next(i for i in supervisor.get(url).json["items"] if i["id"] == rows[what])
        assert keys(item) & PERSONAL, url
    outside = client_as(app, accounts, "other_supervisor")
    for url in urls.values():
        assert outside.get(url).status_code == 404, url
    for what, url in LISTS.items():
        assert rows[what] not in {item["id"] for item in outside.get(url).json["items"]}, url
