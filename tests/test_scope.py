"""The one access rule, as a table: every role, at every level of the tree, against rows placed
everywhere around it; and the SQL forms (`reads`, `sql_scope`) agreeing with the row checks."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import select, text, update

from backend.auth.scope import Actor
from backend.events import service as events
from backend.events.models import Event
from backend.org.models import Alert, Building, EmergencyUnit, PartyBranch, PartyGroup

ME, OTHER = 9001, 9002
GRID = "440117103001001"
# Where rows sit: (grid code or None for an unassigned report).
PLACES = {
    "my_grid": GRID,
    "same_village": "440117103001002",
    "same_town": "440117103002001",
    "other_town": "440117104001001",
    "unassigned": None,
}
# Events outside the worker's grids that name them.
NAMED = {"reported_by_me": ("reporter_id", "other_town"), "dispatched_to_me": ("assignee_id", "other_town")}

ACTORS = {
    "admin": Actor(role="admin", user_id=1),
    "district_supervisor": Actor(role="supervisor", user_id=2, area_code="440117"),
    "town_supervisor": Actor(role="supervisor", user_id=3, area_code="440117103"),
    "village_supervisor": Actor(role="supervisor", user_id=4, area_code="440117103001"),
    "grid_supervisor": Actor(role="supervisor", user_id=5, area_code=GRID),
    "district_key": Actor(role="gis", area_code="440117", api_key_id=1),
    "town_key": Actor(role="gis", area_code="440117103", api_key_id=2),
    "village_key": Actor(role="gis", area_code="440117103001", api_key_id=3),
    "worker": Actor(role="worker", user_id=ME, grid_codes=(GRID,)),
    "worker_without_grids": Actor(role="worker", user_id=OTHER),
}

EVERY_EVENT = set(PLACES) | set(NAMED)
DISTRICT = {"my_grid", "same_village", "same_town", "other_town", *NAMED}
TOWN = {"my_grid", "same_village", "same_town"}
VILLAGE = {"my_grid", "same_village"}
# actor -> the events they read.
READS_EVENTS = {
    "admin": EVERY_EVENT,
    "district_supervisor": DISTRICT,
    "town_supervisor": TOWN,
    "village_supervisor": VILLAGE,
    "grid_supervisor": {"my_grid"},
    "district_key": DISTRICT,
    "town_key": TOWN,
    "village_key": VILLAGE,
    "worker": {"my_grid", *NAMED},
    "worker_without_grids": set(),
}
# actor -> the emergency units (no person reaches them) they read.
READS_UNITS = {
    name: {p for p in seen if p in PLACES and p != "unassigned"} for name, seen in READS_EVENTS.items()
}
# actor -> the events whose contacts they see.
CONTACTS = {
    "admin": EVERY_EVENT,
    "district_supervisor": DISTRICT,
    "town_supervisor": TOWN,
    "village_supervisor": VILLAGE,
    "grid_supervisor": {"my_grid"},
    "district_key": set(),
    "town_key": set(),
    "village_key": set(),
    "worker": set(NAMED),
    "worker_without_grids": set(),
}
# actor -> areas whose whole-subtree figures they read.
AREAS = ("440117", "440117103", "440117103001", GRID, "440117104", "440117104001001")
READS_AREAS = {
    "admin": set(AREAS),
    "district_supervisor": set(AREAS),
    "town_supervisor": {"440117103", "440117103001", GRID},
    "village_supervisor": {"440117103001", GRID},
    "grid_supervisor": {GRID},
    "district_key": set(AREAS),
    "town_key": {"440117103", "440117103001", GRID},
    "village_key": {"440117103001", GRID},
    "worker": {GRID},
    "worker_without_grids": set(),
}


def _codes(grid: str | None) -> dict[str, str | None]:
    if grid is None:
        return dict.fromkeys(("grid", "village", "town", "district"))
    return {"grid": grid, "village": grid[:12], "town": grid[:9], "district": grid[:6]}


def _event(place: str, named: str | None = None) -> Event:
    event = Event(reporter_id=None, assignee_id=None)
    for level, code in _codes(PLACES[place]).items():
        setattr(event, f"{level}_code", code)
    if named:
        setattr(event, named, ME)
    return event


def _events() -> dict[str, Event]:
    rows = {place: _event(place) for place in PLACES}
    rows.update({name: _event(place, column) for name, (column, place) in NAMED.items()})
    return rows


# Every other model placed in the tree: no person reaches its rows, so grids and areas decide.
ORG_MODELS = (PartyBranch, PartyGroup, Building, EmergencyUnit, Alert)


@pytest.mark.parametrize("name", ACTORS)
def test_what_each_actor_reads_and_whose_contacts(name: str) -> None:
    actor = ACTORS[name]
    rows = _events()
    assert {key for key, row in rows.items() if actor.covers(row)} == READS_EVENTS[name]
    assert {key for key, row in rows.items() if actor.sees_personal(row)} == CONTACTS[name]
    assert {code for code in AREAS if actor.reads_area(code)} == READS_AREAS[name]
    assert actor.sees_people == actor.sees_sensitive_text == (actor.role != "gis")


@pytest.mark.parametrize("model", ORG_MODELS, ids=lambda m: m.__name__)
@pytest.mark.parametrize("name", ACTORS)
def test_what_each_actor_reads_of_every_model(name: str, model: type) -> None:
    actor = ACTORS[name]
    rows = {
        place: model(**{f"{k}_code": v for k, v in _codes(g).items()}) for place, g in PLACES.items() if g
    }
    assert {key for key, row in rows.items() if actor.covers(row)} == READS_UNITS[name]
    # Contacts on organisation rows (building heads, unit leaders) go to admins and supervisors.
    contacts = READS_UNITS[name] if actor.role in ("admin", "supervisor") else set()
    assert {key for key, row in rows.items() if actor.sees_personal(row)} == contacts


@pytest.mark.parametrize("name", ACTORS)
def test_who_changes_organisation_rows(name: str) -> None:
    actor = ACTORS[name]
    writes = {place for place, grid in PLACES.items() if grid and actor.may_write(_codes(grid))}
    expected = READS_UNITS[name] if actor.role in ("admin", "supervisor") else set()
    assert writes == expected


def test_the_sql_forms_select_what_the_row_check_accepts(session, test_settings) -> None:  # type: ignore[no-untyped-def]
    """`reads(Event)` and `sql_scope` over stored events give exactly `covers`' answer."""
    from backend.auth import service as auth

    for user_id in (ME, OTHER):
        user = auth.create_user(
            session,
            test_settings,
            username=f"scope{user_id}",
            password="scope-password",
            display_name="scope",
            role="worker",
        )
        session.execute(text("UPDATE users SET id = :new WHERE id = :old"), {"new": user_id, "old": user.id})
    admin = ACTORS["admin"]
    point = text(
        "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
        "WHERE code = :code AND valid_to IS NULL) s"
    )
    ids: dict[str, uuid.UUID] = {}
    for name, row in _events().items():
        grid = row.grid_code
        lon, lat = session.execute(point, {"code": grid}).one() if grid else (10.0, 10.0)
        report = events.Report(category="environment", description=name, lon=lon, lat=lat, outside=True)
        event, _ = events.report_event(session, report, actor=admin)
        named = {column: getattr(row, column) for column in ("reporter_id", "assignee_id")}
        session.execute(update(Event).where(Event.id == event.id).values(**named))
        ids[name] = event.id
    assert session.get(Event, ids["my_grid"]).grid_code == GRID
    names = {event_id: name for name, event_id in ids.items()}
    for name, actor in ACTORS.items():
        orm = set(session.scalars(select(Event.id).where(Event.id.in_(ids.values()), actor.reads(Event))))
        condition, params = actor.sql_scope("e", Event)
        raw = set(
            session.scalars(
                text(f"SELECT e.id FROM events e WHERE e.id = ANY(:ids) AND {condition}"),
                {"ids": list(ids.values()), **params},
            )
        )
        assert {names[i] for i in orm} == READS_EVENTS[name], name
        assert {names[i] for i in raw} == READS_EVENTS[name], name


def test_a_worker_opens_and_works_the_task_dispatched_outside_their_grids(app, accounts, session) -> None:  # type: ignore[no-untyped-def]
    """The inbox, the read rule and the write rule agree: a dispatched task is the worker's."""
    from tests.conftest import client_as

    supervisor = client_as(app, accounts, "supervisor")
    worker = client_as(app, accounts, "worker")
    grid = "440117103002001"
    assert grid not in accounts.worker_grids
    point = text(
        "SELECT ST_X(p), ST_Y(p) FROM (SELECT ST_PointOnSurface(geom) p FROM areas WHERE code = :c) s"
    )
    lon, lat = session.execute(point, {"c": grid}).one()
    body = {
        "category": "safety",
        "description": "燃气泄漏",
        "location": {"type": "Point", "coordinates": [lon, lat]},
    }
    event = supervisor.post("/api/v1/events", json=body).get_json()
    assert event["grid"] == grid
    assert worker.get(f"/api/v1/events/{event['id']}").status_code == 404
    for action in ({"action": "accept"}, {"action": "dispatch", "assignee_id": accounts.ids["worker"]}):
        event = supervisor.post(
            f"/api/v1/events/{event['id']}/actions", json={**action, "version": event["version"]}
        ).get_json()
    tasks = worker.get("/api/v1/me/tasks").get_json()
    assert event["id"] in [task["id"] for task in tasks["changed"]]
    seen = worker.get(f"/api/v1/events/{event['id']}")
    assert seen.status_code == 200
    started = worker.post(
        f"/api/v1/events/{event['id']}/actions", json={"action": "start", "version": event["version"]}
    )
    assert started.status_code == 200, started.get_json()
    assert started.get_json()["status"] == "in_progress"
    listed = worker.get("/api/v1/events").get_json()["items"]
    assert event["id"] in [item["id"] for item in listed]
