"""Organisation rows for tests (flush, never commit) and request bodies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shapely.geometry import Point
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.org import alerts, branches, buildings, groups, units

ADMIN = Actor(role="admin", user_id=None, username="test-admin")

_POINT_IN = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE code = :code AND valid_to IS NULL) s"
)


def grid_point(session: Session, code: str) -> tuple[float, float]:
    """A point inside the current polygon of an area."""
    row = session.execute(_POINT_IN, {"code": code}).one()
    return float(row.x), float(row.y)


def point(lon: float, lat: float) -> dict[str, Any]:
    return {"type": "Point", "coordinates": [lon, lat]}


def building_body(lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "3栋",
        "address": "温泉镇某村3巷3号",
        "geometry": point(lon, lat),
        "floors": 6,
        "households": 24,
        "rental_units": 10,
        "safe_rental_units": 8,
        "access_control": True,
        "head": {"name": "李楼长", "phone": "13900000001"},
    }
    body.update(extra)
    return body


def unit_body(lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "某某商铺最小应急单元",
        "kind": "shop",
        "members": 3,
        "location": point(lon, lat),
        "leader": {"name": "王队长", "phone": "13900000002"},
    }
    body.update(extra)
    return body


def make_unit(
    session: Session,
    lon: float,
    lat: float,
    *,
    active: bool = True,
    name: str = "应急单元",
    kind: str = "shop",
) -> Any:
    unit = units.create_unit(
        session,
        units.UnitInput(
            name=name,
            kind=kind,
            lon=lon,
            lat=lat,
            active=active,
            leader_name="王队长",
            leader_phone="13900000002",
        ),
        actor=ADMIN,
    )
    return unit


def make_building(session: Session, lon: float, lat: float, **extra: Any) -> Any:
    fields = {
        "name": "1栋",
        "households": 20,
        "rental_units": 6,
        "safe_rental_units": 4,
        "head_name": "李楼长",
        "head_phone": "13900000001",
        **extra,
    }
    return buildings.create_building(
        session, buildings.BuildingInput(geometry=Point(lon, lat), **fields), actor=ADMIN
    )


@dataclass
class OrgWorld:
    """One of each org row in the worker's grid (in) and in the other worker's grid (out)."""

    grid: dict[str, str]
    free_grid: dict[str, str]
    point: dict[str, tuple[float, float]]
    branch: dict[str, int]
    bare_branch: dict[str, int]
    group: dict[str, int]
    building: dict[str, int]
    unit: dict[str, int]
    alert: dict[str, int]


def make_org_world(session: Session, accounts: Any) -> OrgWorld:
    """Build the rows the access table needs; the caller commits (into its rolled-back test)."""
    other_grid = session.execute(
        text("SELECT grid_code FROM user_grids WHERE user_id = :id ORDER BY grid_code LIMIT 1"),
        {"id": accounts.ids["other_worker"]},
    ).scalar_one()
    grids = {"in": accounts.worker_grids[0], "out": other_grid}
    second = {"in": accounts.worker_grids[1]}
    free = {}
    for scope, town in (("in", "440117103"), ("out", "440117104")):
        taken = [grids[scope], *([second[scope]] if scope in second else [])]
        spare = (
            session.execute(
                text(
                    "SELECT code FROM areas WHERE level = 'grid' AND valid_to IS NULL "
                    "AND code LIKE :town AND code <> ALL(:taken) ORDER BY code LIMIT 2"
                ),
                {"town": town + "%", "taken": taken},
            )
            .scalars()
            .all()
        )
        if scope == "out":
            second["out"] = spare[1]
        free[scope] = spare[0]
    world = OrgWorld(
        grid=grids,
        free_grid=free,
        point={},
        branch={},
        bare_branch={},
        group={},
        building={},
        unit={},
        alert={},
    )
    for scope in ("in", "out"):
        lon, lat = grid_point(session, grids[scope])
        world.point[scope] = (lon, lat)
        branch = branches.create_branch(
            session, actor=ADMIN, grid=grids[scope], secretary="张书记", member_count=12
        )
        world.branch[scope] = branch.id
        world.bare_branch[scope] = branches.create_branch(session, actor=ADMIN, grid=second[scope]).id
        building = make_building(session, lon, lat)
        world.building[scope] = building.id
        world.group[scope] = groups.create_group(
            session,
            actor=ADMIN,
            branch_id=branch.id,
            kind="building",
            name="1栋党小组",
            building_ids=[building.id],
        ).id
        world.unit[scope] = make_unit(session, lon, lat).id
        alert = alerts.create_alert(session, actor=ADMIN, kind="fire", lon=lon, lat=lat)
        world.alert[scope] = alert.alert.id
    return world


# A district east of the square tree's (tests.factories: 120.0-120.4 x 30.0-30.2), sharing its
# edge at 120.4, with one town, village and grid.
NEIGHBOUR = "330200"


def add_neighbour_district(session: Session) -> None:
    from shapely.geometry import box

    from backend.areas import service as areas
    from geo.validate import to_multipolygon

    rows: list[dict[str, object]] = []
    for code, name in (
        (NEIGHBOUR, "邻区"),
        (NEIGHBOUR + "001", "邻镇"),
        (NEIGHBOUR + "001001", "邻村"),
        (NEIGHBOUR + "001001001", "邻村第1网格"),
    ):
        rows.append(
            {
                "code": code,
                "level": areas.level_of(code),
                "name": name,
                "parent_code": areas.parent_code_of(code),
                "kind": "comprehensive" if len(code) == 15 else None,
                "geometry": to_multipolygon(box(120.4, 30.0, 120.6, 30.2)),
            }
        )
    areas.insert_trusted(session, rows)
    session.flush()
