"""Every endpoint in the OpenAPI document, for every kind of caller, in scope and out of scope.

The table below must name every operation the app documents: adding an endpoint without deciding
who may call it fails `test_every_documented_operation_has_an_entry`.
"""

from __future__ import annotations

import datetime
import functools
import io
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt
import pytest
from PIL import Image
from sqlalchemy import text

from backend import openapi_doc
from backend.auth import service as auth
from backend.events import photos
from backend.events import service as events
from backend.mediation import service as mediation
from backend.patrols import service as patrols
from backend.stats import assessments
from backend.stats.models import INDEX_PARTS
from tests.conftest import client_as
from tests.factories import polygon, report
from tests.org.access_cases import ORG_CASES
from tests.org.factories import OrgWorld, make_org_world
from tests.patrols.access_cases import PATROL_CASES

ROLES = ("admin", "supervisor", "worker", "gis")
BROKEN = ("no_token", "expired_token", "tampered_token", "disabled_user")
IN, OUT = "in", "out"


@dataclass
class World:
    """What a request needs: one event and one area on each side of the supervisor's scope."""

    event: dict[str, str]
    area: dict[str, str]
    point: dict[str, tuple[float, float]]
    user_id: int
    key_id: int
    refresh_token: str
    photo: dict[str, str]
    make_org: Callable[[], OrgWorld]
    make_assessments: Callable[[], dict[str, int]]
    patrol: dict[str, str]
    make_cases: Callable[[], dict[str, int]]

    @functools.cached_property
    def org(self) -> OrgWorld:
        """Organisation rows, made only for the operations that use them."""
        return self.make_org()

    @functools.cached_property
    def assessment(self) -> dict[str, int]:
        """An assessment of each town, made only for the operations that read them."""
        return self.make_assessments()

    @functools.cached_property
    def case(self) -> dict[str, int]:
        """A mediation case (with its agreement uploaded) on each event."""
        return self.make_cases()


class Multipart(dict):  # type: ignore[type-arg]
    """A request body sent as multipart/form-data instead of JSON."""


def png(seed: int) -> tuple[io.BytesIO, str]:
    """A small, real PNG file, different for each seed."""
    out = io.BytesIO()
    Image.new("RGB", (4, 4), (seed % 256, 40, 90)).save(out, format="PNG")
    out.seek(0)
    return out, f"photo{seed}.png"


@dataclass(frozen=True)
class Case:
    request: Callable[[World, str], tuple[str, str, Any]]
    # role -> (status in scope, status out of scope); public endpoints answer everyone alike.
    expect: dict[str, tuple[int, int]]
    public: bool = False


def same(status: int, **overrides: tuple[int, int]) -> dict[str, tuple[int, int]]:
    table = {role: (status, status) for role in ROLES}
    table.update(overrides)
    return table


ADMIN_ONLY = {"admin": (200, 200), "supervisor": (403, 403), "worker": (403, 403), "gis": (403, 403)}


def admin_only(status: int) -> dict[str, tuple[int, int]]:
    return {**ADMIN_ONLY, "admin": (status, status)}


# A mediation case: read like its event; run by admins and the supervisors in scope.
CASE_READ = {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (200, 404)}


def case_write(status: int) -> dict[str, tuple[int, int]]:
    return {"admin": (status, status), "supervisor": (status, 404), "worker": (403, 404), "gis": (403, 404)}


# Statistics of a town: its supervisor and its GIS key; a worker only has their grids.
STATS = {"admin": (200, 200), "supervisor": (200, 404), "worker": (404, 404), "gis": (200, 404)}


def get(url: Callable[[World, str], str]) -> Callable[[World, str], tuple[str, str, Any]]:
    return lambda w, s: ("GET", url(w, s), None)


TABLE: dict[tuple[str, str], Case] = {
    ("GET", "/healthz"): Case(get(lambda w, s: "/healthz"), same(200), public=True),
    ("GET", "/readyz"): Case(get(lambda w, s: "/readyz"), same(200), public=True),
    ("POST", "/api/v1/auth/token"): Case(
        lambda w, s: ("POST", "/api/v1/auth/token", {"username": "worker", "password": "worker-password"}),
        same(200),
        public=True,
    ),
    ("POST", "/api/v1/auth/refresh"): Case(
        lambda w, s: ("POST", "/api/v1/auth/refresh", {"refresh_token": w.refresh_token}),
        same(200),
        public=True,
    ),
    ("POST", "/api/v1/auth/logout"): Case(
        lambda w, s: ("POST", "/api/v1/auth/logout", {"refresh_token": w.refresh_token}),
        same(204),
        public=True,
    ),
    ("GET", "/api/v1/me"): Case(get(lambda w, s: "/api/v1/me"), same(200)),
    ("PATCH", "/api/v1/me"): Case(
        lambda w, s: ("PATCH", "/api/v1/me", {"display_name": "新名字"}), same(200, gis=(403, 403))
    ),
    ("GET", "/api/v1/users"): Case(get(lambda w, s: "/api/v1/users"), ADMIN_ONLY),
    ("POST", "/api/v1/users"): Case(
        lambda w, s: (
            "POST",
            "/api/v1/users",
            {
                "username": f"u{uuid.uuid4().hex[:8]}",
                "password": "long-enough",
                "display_name": "新人",
                "role": "worker",
            },
        ),
        admin_only(201),
    ),
    ("GET", "/api/v1/users/{user_id}"): Case(get(lambda w, s: f"/api/v1/users/{w.user_id}"), ADMIN_ONLY),
    ("PATCH", "/api/v1/users/{user_id}"): Case(
        lambda w, s: ("PATCH", f"/api/v1/users/{w.user_id}", {"display_name": "改"}), ADMIN_ONLY
    ),
    ("PUT", "/api/v1/users/{user_id}/grids"): Case(
        lambda w, s: ("PUT", f"/api/v1/users/{w.user_id}/grids", {"grids": ["440117104001001"]}), ADMIN_ONLY
    ),
    ("GET", "/api/v1/api-keys"): Case(get(lambda w, s: "/api/v1/api-keys"), ADMIN_ONLY),
    ("POST", "/api/v1/api-keys"): Case(
        lambda w, s: ("POST", "/api/v1/api-keys", {"name": "QGIS", "area_code": "440117"}), admin_only(201)
    ),
    ("PATCH", "/api/v1/api-keys/{key_id}"): Case(
        lambda w, s: ("PATCH", f"/api/v1/api-keys/{w.key_id}", {"disabled": True}), ADMIN_ONLY
    ),
    ("GET", "/api/v1/categories"): Case(get(lambda w, s: "/api/v1/categories"), same(200)),
    ("POST", "/api/v1/categories"): Case(
        lambda w, s: (
            "POST",
            "/api/v1/categories",
            {"code": "noise", "name_zh": "噪音", "name_en": "Noise", "sla_hours": 48},
        ),
        admin_only(201),
    ),
    ("PATCH", "/api/v1/categories/{code}"): Case(
        lambda w, s: ("PATCH", "/api/v1/categories/other", {"sla_hours": 96}), ADMIN_ONLY
    ),
    ("GET", "/api/v1/areas"): Case(get(lambda w, s: "/api/v1/areas?level=town&geometry=false"), same(200)),
    ("POST", "/api/v1/areas"): Case(
        # A village laid over its siblings: who may try gets 422 (overlap), others 403.
        lambda w, s: (
            "POST",
            "/api/v1/areas",
            {
                "code": w.area[s][:9] + "999",
                "name": "新村",
                "geometry": polygon(*w.point[s], w.point[s][0] + 0.001, w.point[s][1] + 0.001),
            },
        ),
        {"admin": (422, 422), "supervisor": (422, 403), "worker": (403, 403), "gis": (403, 403)},
    ),
    ("GET", "/api/v1/areas/{code}"): Case(get(lambda w, s: f"/api/v1/areas/{w.area[s]}"), same(200)),
    ("PATCH", "/api/v1/areas/{code}"): Case(
        lambda w, s: ("PATCH", f"/api/v1/areas/{w.area[s]}", {"name": "改名村"}),
        {"admin": (200, 200), "supervisor": (200, 403), "worker": (403, 403), "gis": (403, 403)},
    ),
    ("GET", "/api/v1/areas/{code}/children"): Case(
        get(lambda w, s: f"/api/v1/areas/{w.area[s]}/children?geometry=false"), same(200)
    ),
    ("GET", "/api/v1/lookup"): Case(
        get(lambda w, s: "/api/v1/lookup?lon={}&lat={}".format(*w.point[s])), same(200)
    ),
    ("GET", "/api/v1/events"): Case(get(lambda w, s: "/api/v1/events"), same(200)),
    ("POST", "/api/v1/events"): Case(
        lambda w, s: ("POST", "/api/v1/events", report(*w.point[s])),
        {"admin": (201, 201), "supervisor": (201, 403), "worker": (201, 403), "gis": (403, 403)},
    ),
    ("GET", "/api/v1/events/{event_id}"): Case(
        get(lambda w, s: f"/api/v1/events/{w.event[s]}"),
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (200, 404)},
    ),
    ("POST", "/api/v1/events/batch"): Case(
        lambda w, s: ("POST", "/api/v1/events/batch", {"items": [report(*w.point[s])]}),
        {"admin": (200, 200), "supervisor": (200, 207), "worker": (200, 207), "gis": (207, 207)},
    ),
    ("GET", "/api/v1/events/{event_id}/attachments"): Case(
        get(lambda w, s: f"/api/v1/events/{w.event[s]}/attachments"),
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (200, 404)},
    ),
    ("POST", "/api/v1/events/{event_id}/attachments"): Case(
        lambda w, s: ("POST", f"/api/v1/events/{w.event[s]}/attachments", Multipart(file=png(7))),
        {"admin": (201, 201), "supervisor": (201, 404), "worker": (201, 404), "gis": (403, 404)},
    ),
    ("GET", "/api/v1/attachments/{sha256}"): Case(
        get(lambda w, s: f"/api/v1/attachments/{w.photo[s]}"),
        # The world's events are disputes: their photos are not for GIS keys.
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (404, 404)},
    ),
    ("GET", "/api/v1/me/tasks"): Case(get(lambda w, s: "/api/v1/me/tasks"), same(200, gis=(403, 403))),
    ("GET", "/api/v1/events/{event_id}/actions"): Case(
        get(lambda w, s: f"/api/v1/events/{w.event[s]}/actions"),
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (200, 404)},
    ),
    ("POST", "/api/v1/events/{event_id}/actions"): Case(
        lambda w, s: ("POST", f"/api/v1/events/{w.event[s]}/actions", {"action": "accept", "version": 1}),
        {"admin": (200, 200), "supervisor": (200, 404), "worker": (403, 404), "gis": (403, 404)},
    ),
    ("GET", "/api/v1/stats/closure"): Case(
        get(lambda w, s: f"/api/v1/stats/closure?area={w.area[s][:9]}&group_by=grid"), STATS
    ),
    ("GET", "/api/v1/stats/closure.csv"): Case(
        get(lambda w, s: f"/api/v1/stats/closure.csv?area={w.area[s][:9]}&group_by=village"), STATS
    ),
    ("GET", "/api/v1/stats/closure.geojson"): Case(
        get(lambda w, s: f"/api/v1/stats/closure.geojson?area={w.area[s][:9]}&group_by=village"), STATS
    ),
    # The composite index's weights: everyone reads them (the page states them), admins set them.
    ("GET", "/api/v1/stats/index-weights"): Case(get(lambda w, s: "/api/v1/stats/index-weights"), same(200)),
    ("PUT", "/api/v1/stats/index-weights"): Case(
        lambda w, s: ("PUT", "/api/v1/stats/index-weights", dict.fromkeys(INDEX_PARTS, 20.0)), ADMIN_ONLY
    ),
    ("GET", "/api/v1/stats/mediation"): Case(
        get(lambda w, s: f"/api/v1/stats/mediation?area={w.area[s][:9]}&group_by=village"), STATS
    ),
    ("GET", "/api/v1/stats/mediation.csv"): Case(
        get(lambda w, s: f"/api/v1/stats/mediation.csv?area={w.area[s][:9]}&group_by=dispute_type"), STATS
    ),
    ("GET", "/api/v1/stats/mediation.geojson"): Case(
        get(lambda w, s: f"/api/v1/stats/mediation.geojson?area={w.area[s][:9]}&group_by=village"), STATS
    ),
    ("GET", "/api/v1/stats/overdue"): Case(
        get(lambda w, s: f"/api/v1/stats/overdue?area={w.area[s][:9]}"), STATS
    ),
    ("GET", "/api/v1/stats/assessments"): Case(
        get(lambda w, s: f"/api/v1/stats/assessments?area={w.area[s][:9]}"), STATS
    ),
    # Freezing a month: admins, and supervisors in their scope; a worker or a GIS key never.
    ("POST", "/api/v1/stats/assessments"): Case(
        lambda w, s: ("POST", "/api/v1/stats/assessments", {"area": w.area[s][:9], "month": "2025-10"}),
        {"admin": (201, 201), "supervisor": (201, 404), "worker": (403, 403), "gis": (403, 403)},
    ),
    ("GET", "/api/v1/stats/assessments/{assessment_id}"): Case(
        get(lambda w, s: f"/api/v1/stats/assessments/{w.assessment[s]}"), STATS
    ),
    ("GET", "/api/v1/stats/assessments/{assessment_id}.csv"): Case(
        get(lambda w, s: f"/api/v1/stats/assessments/{w.assessment[s]}.csv"), STATS
    ),
    # Every caller downloads layers; events are filtered to what each may see (tests/gis).
    ("GET", "/api/v1/exports/{layer}.geojson"): Case(
        get(lambda w, s: "/api/v1/exports/events.geojson?area=" + w.area[s][:9]), same(200)
    ),
    # Users mint links acting as themselves (so within their scope); a GIS key may not.
    ("POST", "/api/v1/exports/links"): Case(
        lambda w, s: (
            "POST",
            "/api/v1/exports/links",
            {"layer": "events", "filters": {"area": w.area[s][:9]}},
        ),
        same(201, gis=(403, 403)),
    ),
}
MEDIATION = "/api/v1/mediation/cases"
TABLE.update(
    {
        ("GET", MEDIATION): Case(get(lambda w, s: MEDIATION), same(200)),
        ("POST", MEDIATION): Case(
            lambda w, s: (
                "POST",
                MEDIATION,
                {
                    "event_id": w.event[s],
                    "dispute_type": "neighbour",
                    "mediators": [{"role": "other", "name": "调解员"}],
                },
            ),
            case_write(201),
        ),
        ("GET", MEDIATION + "/{case_id}"): Case(get(lambda w, s: f"{MEDIATION}/{w.case[s]}"), CASE_READ),
        ("GET", MEDIATION + "/{case_id}/sessions"): Case(
            get(lambda w, s: f"{MEDIATION}/{w.case[s]}/sessions"), CASE_READ
        ),
        ("POST", MEDIATION + "/{case_id}/sessions"): Case(
            lambda w, s: ("POST", f"{MEDIATION}/{w.case[s]}/sessions", {"held_at": "2026-12-01T10:00:00Z"}),
            case_write(201),
        ),
        # The signed agreement names the parties: admins and supervisors in scope only.
        ("GET", MEDIATION + "/{case_id}/agreement"): Case(
            get(lambda w, s: f"{MEDIATION}/{w.case[s]}/agreement"),
            {"admin": (200, 200), "supervisor": (200, 404), "worker": (404, 404), "gis": (404, 404)},
        ),
        ("PUT", MEDIATION + "/{case_id}/agreement"): Case(
            lambda w, s: ("PUT", f"{MEDIATION}/{w.case[s]}/agreement", Multipart(file=png(9))),
            case_write(200),
        ),
        ("POST", MEDIATION + "/{case_id}/outcome"): Case(
            lambda w, s: ("POST", f"{MEDIATION}/{w.case[s]}/outcome", {"outcome": "withdrawn", "version": 2}),
            case_write(200),
        ),
    }
)
TABLE.update({op: Case(request, expect) for op, (request, expect) in ORG_CASES.items()})
TABLE.update({op: Case(request, expect) for op, (request, expect) in PATROL_CASES.items()})


def documented_operations() -> set[tuple[str, str]]:
    import json

    spec = json.loads(openapi_doc.PATH.read_text(encoding="utf-8"))
    methods = {"get", "post", "put", "patch", "delete"}
    return {(m.upper(), path) for path, item in spec["paths"].items() for m in item if m in methods}


def test_every_documented_operation_has_an_entry():
    assert documented_operations() == set(TABLE)


@pytest.fixture
def world(session, test_settings, accounts) -> World:  # type: ignore[no-untyped-def]
    worker = auth.actor_for(session, auth.get_user(session, accounts.ids["worker"]))
    other = auth.actor_for(session, auth.get_user(session, accounts.ids["other_worker"]))
    grid_in = session.execute(_centre, {"code": accounts.worker_grids[0]}).one()
    grid_out = session.execute(_centre, {"code": other.grid_codes[0]}).one()
    point = {IN: (grid_in.x, grid_in.y), OUT: (grid_out.x, grid_out.y)}
    made = {}
    for scope, actor in ((IN, worker), (OUT, other)):
        event, _ = events.report_event(
            session,
            events.Report(
                category="dispute",
                description="邻里纠纷",
                lon=point[scope][0],
                lat=point[scope][1],
                contacts=[{"name": "张三", "phone": "13912345678"}],
            ),
            actor=actor,
        )
        made[scope] = str(event.id)
    key, _ = auth.create_api_key(session, name="spare", area_code="440117")
    pair = auth.login(session, test_settings, "other_worker", "other_worker-password")
    photo = {}
    for scope, actor in ((IN, worker), (OUT, other)):
        data = png(1 if scope == IN else 2)[0].getvalue()
        row, _ = photos.add_photo(
            session,
            uuid.UUID(made[scope]),
            data,
            actor=actor,
            media_dir=test_settings.media_dir,
            filename="x.png",
            stage="report",
            max_bytes=10**7,
            max_photos=9,
        )
        photo[scope] = row.sha256
    patrol = {}
    for scope, actor in ((IN, worker), (OUT, other)):
        started, _ = patrols.start_patrol(session, actor, patrol_id=uuid.uuid4(), started_at=None)
        patrol[scope] = str(started.id)
    session.commit()

    def make_org() -> OrgWorld:
        org = make_org_world(session, accounts)
        session.commit()
        return org

    def make_assessments() -> dict[str, int]:
        admin = auth.actor_for(session, auth.get_user(session, accounts.ids["admin"]))
        made = {
            scope: assessments.freeze(session, actor=admin, area=town, month=datetime.date(2025, 9, 1)).id
            for scope, town in ((IN, "440117103"), (OUT, "440117104"))
        }
        session.commit()
        return made

    def make_cases() -> dict[str, int]:
        admin = auth.actor_for(session, auth.get_user(session, accounts.ids["admin"]))
        cases = {}
        for scope in (IN, OUT):
            case = mediation.open_case(
                session,
                uuid.UUID(made[scope]),
                actor=admin,
                dispute_type="neighbour",
                mediators=[{"role": "village_cadre", "name": "李村委"}],
                parties=[{"name": "张三", "phone": "13912345678"}],
            )
            mediation.attach_agreement(
                session,
                case.id,
                png(3)[0].getvalue(),
                actor=admin,
                media_dir=test_settings.media_dir,
                max_bytes=10**7,
            )
            cases[scope] = case.id
        session.commit()
        return cases

    return World(
        event=made,
        area={IN: "440117103001", OUT: "440117104001"},
        point=point,
        user_id=accounts.ids["other_worker"],
        key_id=key.id,
        refresh_token=pair.refresh_token,
        photo=photo,
        make_org=make_org,
        make_assessments=make_assessments,
        patrol=patrol,
        make_cases=make_cases,
    )


_centre = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE code = :code AND valid_to IS NULL) s"
)


def _rows() -> list[tuple[tuple[str, str], str, str]]:
    rows = []
    for op in sorted(TABLE):
        for role in ROLES:
            for scope in (IN, OUT):
                rows.append((op, role, scope))
        for broken in BROKEN:
            rows.append((op, broken, IN))
    return rows


def _broken_headers(kind: str, session, test_settings, accounts) -> dict[str, str]:  # type: ignore[no-untyped-def]
    if kind == "no_token":
        return {}
    if kind == "expired_token":
        claims = {"sub": str(accounts.ids["admin"]), "epoch": 0, "exp": int(time.time()) - 60}
        return {"Authorization": "Bearer " + jwt.encode(claims, test_settings.secret_key, algorithm="HS256")}
    if kind == "tampered_token":
        header, payload, signature = accounts.tokens["worker"].split(".")
        claims = jwt.decode(accounts.tokens["worker"], options={"verify_signature": False})
        claims["role"], claims["sub"] = "admin", str(accounts.ids["admin"])
        forged = jwt.encode(claims, "not-the-server-secret-but-long-enough-0123456789", algorithm="HS256")
        return {"Authorization": "Bearer " + forged.rsplit(".", 1)[0] + "." + signature}
    user = auth.create_user(
        session,
        test_settings,
        username=f"gone{uuid.uuid4().hex[:6]}",
        password="disabled-password",
        display_name="离职",
        role="admin",
    )
    token = auth.login(session, test_settings, user.username, "disabled-password").access_token
    auth.update_user(session, test_settings, user.id, auth.UserChanges(disabled=True))
    session.commit()
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("operation", "who", "scope"), _rows(), ids=lambda v: " ".join(v) if isinstance(v, tuple) else v
)
def test_access(app, accounts, session, test_settings, world, operation, who, scope):  # type: ignore[no-untyped-def]
    case = TABLE[operation]
    method, url, body = case.request(world, scope)
    if who in ROLES:
        client = client_as(app, accounts, who)
        expected = case.expect[who][0 if scope == IN else 1]
    else:
        client = app.test_client()
        for name, value in _broken_headers(who, session, test_settings, accounts).items():
            client.environ_base["HTTP_" + name.upper().replace("-", "_")] = value
        expected = case.expect["admin"][0] if case.public else 401
    if isinstance(body, Multipart):
        response = client.open(url, method=method, data=dict(body), content_type="multipart/form-data")
    else:
        response = client.open(url, method=method, json=body)
    assert response.status_code == expected, response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert response.content_type == "application/problem+json"
    if expected == 401:
        assert "WWW-Authenticate" in response.headers


@pytest.mark.parametrize(
    ("who", "sees_in", "sees_out"),
    [
        ("admin", True, True),
        ("supervisor", True, False),
        ("village_supervisor", True, False),
        ("worker", True, False),  # reported the in-scope event
        ("other_supervisor", False, True),
        ("other_worker", False, True),
        ("gis", False, False),
    ],
)
def test_contacts_reach_only_the_reporter_and_supervisors_in_scope(
    app, accounts, world, who, sees_in, sees_out
):  # type: ignore[no-untyped-def]
    client = client_as(app, accounts, who)
    listed = {e["id"]: e for e in client.get("/api/v1/events?limit=1000").json["items"]}
    for scope, may_see in ((IN, sees_in), (OUT, sees_out)):
        single = client.get(f"/api/v1/events/{world.event[scope]}")
        if may_see:
            assert single.status_code == 200 and world.event[scope] in listed
        for body in (single.json if single.status_code == 200 else {}, listed.get(world.event[scope], {})):
            assert ("contacts" in body) == (may_see and bool(body))
    # Events that carry contacts (others, such as ones committed by live-server tests, have none
    # to leak whoever may read the field).
    for event in listed.values():
        if event.get("contacts"):
            assert event["id"] in {
                world.event[s] for s, ok in ((IN, sees_in), (OUT, sees_out)) if ok
            } or event["reporter_id"] == accounts.ids.get(who)


def test_personal_fields_for_the_supervisor_in_scope_and_the_reporter(app, accounts, world):  # type: ignore[no-untyped-def]
    for who in ("supervisor", "worker", "admin"):
        body = client_as(app, accounts, who).get(f"/api/v1/events/{world.event[IN]}").json
        assert body["contacts"] == [{"name": "张三", "phone": "13912345678"}]
    gis = client_as(app, accounts, "gis").get(f"/api/v1/events/{world.event[IN]}").json
    assert "contacts" not in gis


def test_lists_are_filtered_in_sql_by_scope(app, accounts, world):  # type: ignore[no-untyped-def]
    def ids(who: str) -> set[str]:
        items = client_as(app, accounts, who).get("/api/v1/events?limit=1000").json["items"]
        return {e["id"] for e in items}

    assert {world.event[IN], world.event[OUT]} <= ids("admin")
    for who in ("supervisor", "village_supervisor", "worker", "gis"):
        assert world.event[IN] in ids(who) and world.event[OUT] not in ids(who)
    assert world.event[OUT] in ids("other_supervisor") and world.event[IN] not in ids("other_supervisor")


# --- Open311 GeoReport v2: a standard of its own, outside the document, listed here by hand --------

OPEN311_CALLERS = ("anonymous", "app", "gis", "admin", "worker")


def _open311_world(session: Any, accounts: Any) -> dict[str, str]:
    from backend.open311 import service as open311
    from tests.mediation.helpers import grid_point

    _, key = open311.create_app_key(session, name="access app")
    lon, lat = grid_point(session, accounts.worker_grids[0])
    app_row = open311.app_for_key(session, key)
    done = open311.submit(
        session,
        app_row,
        open311.Submission("environment", "垃圾", lat, lon, None, None, None),
        nearest_min_m=50,
    )
    session.commit()
    return {
        "key": key,
        "id": str(done.event.id),
        "token": done.request.token,
        "lat": str(lat),
        "long": str(lon),
    }


# rule -> (method, url, whether the form carries the caller's key), status per caller
OPEN311_TABLE: dict[tuple[str, str], tuple[Callable[[dict[str, str]], str], dict[str, int]]] = {
    ("GET", "/open311/v2/discovery.<fmt>"): (
        lambda w: "/open311/v2/discovery.json",
        dict.fromkeys(OPEN311_CALLERS, 200),
    ),
    ("GET", "/open311/v2/services.<fmt>"): (
        lambda w: "/open311/v2/services.xml",
        dict.fromkeys(OPEN311_CALLERS, 200),
    ),
    ("GET", "/open311/v2/services/<code>.<fmt>"): (
        lambda w: "/open311/v2/services/dispute.json",
        dict.fromkeys(OPEN311_CALLERS, 200),
    ),
    ("GET", "/open311/v2/requests.<fmt>"): (
        lambda w: "/open311/v2/requests.json",
        dict.fromkeys(OPEN311_CALLERS, 200),
    ),
    ("GET", "/open311/v2/requests/<request_id>.<fmt>"): (
        lambda w: f"/open311/v2/requests/{w['id']}.json",
        dict.fromkeys(OPEN311_CALLERS, 200),
    ),
    ("GET", "/open311/v2/tokens/<token>.<fmt>"): (
        lambda w: f"/open311/v2/tokens/{w['token']}.json",
        dict.fromkeys(OPEN311_CALLERS, 200),
    ),
    # Only a registered app's api_key submits: a GIS key or a user's token is no app.
    ("POST", "/open311/v2/requests.<fmt>"): (
        lambda w: "/open311/v2/requests.json",
        {"anonymous": 403, "app": 201, "gis": 403, "admin": 403, "worker": 403},
    ),
    ("GET", "/open311/v2/<anything>"): (
        lambda w: "/open311/v2/nothing.json",
        dict.fromkeys(OPEN311_CALLERS, 404),
    ),
    ("POST", "/open311/v2/<anything>"): (
        lambda w: "/open311/v2/nothing.json",
        dict.fromkeys(OPEN311_CALLERS, 404),
    ),
}


def test_every_open311_route_has_an_entry(app):  # type: ignore[no-untyped-def]
    rules = {
        (
            method,
            rule.rule.replace("<any(json, xml):fmt>", "<fmt>")
            .replace("<string:", "<")
            .replace("<path:", "<"),
        )
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith("/open311/")
        for method in rule.methods or ()
        if method in ("GET", "POST")
    }
    assert rules == set(OPEN311_TABLE)


@pytest.mark.parametrize("caller", OPEN311_CALLERS)
@pytest.mark.parametrize("operation", sorted(OPEN311_TABLE), ids=lambda op: " ".join(op))
def test_open311_access(app, accounts, session, operation, caller):  # type: ignore[no-untyped-def]
    world = _open311_world(session, accounts)
    url, expect = OPEN311_TABLE[operation]
    client = app.test_client() if caller in ("anonymous", "app") else client_as(app, accounts, caller)
    form = {"service_code": "environment", "lat": world["lat"], "long": world["long"]}
    if caller == "app":
        form["api_key"] = world["key"]
    elif caller == "gis":
        form["api_key"] = accounts.gis_key
    response = client.open(url(world), method=operation[0], data=form if operation[0] == "POST" else None)
    assert response.status_code == expect[caller], response.get_data(as_text=True)[:300]
    if response.status_code >= 400:
        assert response.json[0]["code"] == response.status_code
