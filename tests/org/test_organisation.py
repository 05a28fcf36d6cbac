"""Party branches, party groups, buildings and units in their grids: CRUD, scope, personal
fields, GeoJSON import and the area profile."""

from __future__ import annotations

import pytest
from shapely.geometry import box, mapping
from sqlalchemy import text

from backend.auth import service as auth
from tests.conftest import client_as
from tests.factories import add_square_tree, polygon
from tests.org.factories import building_body, grid_point, make_org_world, point, unit_body

PROBLEM = "application/problem+json"


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


@pytest.fixture
def world(session, accounts):  # type: ignore[no-untyped-def]
    made = make_org_world(session, accounts)
    session.commit()
    return made


def test_a_grid_has_one_branch(client, tree):
    created = client.post(
        "/api/v1/party-branches", json={"grid": "330100001001001", "secretary": "张书记", "member_count": 18}
    )
    assert created.status_code == 201
    branch = created.json
    assert branch["name"] == "测试村11第1网格党支部"
    assert (branch["grid"], branch["village"], branch["town"], branch["district"]) == (
        "330100001001001",
        "330100001001",
        "330100001",
        "330100",
    )
    again = client.post("/api/v1/party-branches", json={"grid": "330100001001001"})
    assert again.status_code == 409 and again.content_type == PROBLEM
    for grid in ("330100001001009", "330100001001"):
        response = client.post("/api/v1/party-branches", json={"grid": grid})
        assert response.status_code == 422
        assert {e["field"] for e in response.json["errors"]} == {"grid"}
    changed = client.patch(f"/api/v1/party-branches/{branch['id']}", json={"member_count": 20}).json
    assert changed["member_count"] == 20 and changed["secretary"] == "张书记"
    assert changed["updated_at"] >= branch["updated_at"]
    assert client.patch(f"/api/v1/party-branches/{branch['id']}", json={}).status_code == 422


def test_groups_look_after_buildings_of_their_grid(client, tree):
    branch = client.post("/api/v1/party-branches", json={"grid": "330100001001001"}).json
    here = [
        client.post("/api/v1/buildings", json=building_body(120.01 + 0.01 * i, 30.01)).json for i in range(3)
    ]
    there = client.post("/api/v1/buildings", json=building_body(120.25, 30.05)).json
    assert {b["grid"] for b in here} == {"330100001001001"} and there["grid"] == "330100002001001"
    body = {
        "branch_id": branch["id"],
        "kind": "building",
        "name": "1-2栋党小组",
        "leader": "陈组长",
        "member_count": 5,
        "building_ids": [here[0]["id"], here[1]["id"]],
    }
    group = client.post("/api/v1/party-groups", json=body)
    assert group.status_code == 201
    assert group.json["building_ids"] == [here[0]["id"], here[1]["id"]]
    assert group.json["grid"] == "330100001001001"
    group_id = group.json["id"]
    assert client.get(f"/api/v1/buildings/{here[0]['id']}").json["party_group_id"] == group_id
    outside = client.post("/api/v1/party-groups", json={**body, "building_ids": [there["id"]]})
    assert outside.status_code == 422 and outside.json["errors"][0]["field"] == "building_ids"
    cooperative = client.post("/api/v1/party-groups", json={**body, "kind": "cooperative"})
    assert cooperative.status_code == 422
    replaced = client.patch(f"/api/v1/party-groups/{group_id}", json={"building_ids": [here[2]["id"]]})
    assert replaced.json["building_ids"] == [here[2]["id"]]
    assert client.get(f"/api/v1/buildings/{here[0]['id']}").json["party_group_id"] is None
    # A building cannot join a group of another grid, nor move away from its group's grid.
    assert (
        client.patch(f"/api/v1/buildings/{there['id']}", json={"party_group_id": group_id}).status_code == 422
    )
    moved = client.patch(f"/api/v1/buildings/{here[2]['id']}", json={"geometry": point(120.25, 30.05)})
    assert moved.status_code == 422 and moved.json["errors"][0]["field"] == "party_group_id"
    listed = client.get(f"/api/v1/party-groups?branch_id={branch['id']}&kind=building").json["items"]
    assert [g["id"] for g in listed] == [group_id]
    # The branch keeps its groups until they are dissolved; dissolving keeps the buildings.
    assert client.delete(f"/api/v1/party-branches/{branch['id']}").status_code == 409
    assert client.delete(f"/api/v1/party-groups/{group_id}").status_code == 204
    assert client.get(f"/api/v1/buildings/{here[2]['id']}").json["party_group_id"] is None
    assert client.delete(f"/api/v1/party-branches/{branch['id']}").status_code == 204
    assert client.get(f"/api/v1/party-branches/{branch['id']}").status_code == 404


def test_a_footprint_is_assigned_by_a_point_on_it(client, tree):
    footprint = dict(mapping(box(120.0995, 30.01, 120.1003, 30.0105)))  # across a village edge
    building = client.post("/api/v1/buildings", json=building_body(0, 0, geometry=footprint)).json
    assert building["geometry"]["type"] == "Polygon"
    lon, lat = building["location"]["coordinates"]
    assert 120.0995 < lon < 120.1003 and 30.01 < lat < 30.0105
    assert building["grid"] == ("330100001001001" if lon <= 120.1 else "330100001002001")


def test_buildings_and_units_must_lie_in_a_grid(client, tree):
    for path, body in (
        ("buildings", building_body(125.0, 35.0)),
        ("emergency-units", unit_body(125.0, 35.0)),
    ):
        response = client.post(f"/api/v1/{path}", json=body)
        assert response.status_code == 422
        assert response.json["errors"][0]["field"] in {"geometry", "location"}
    near = client.post("/api/v1/emergency-units", json=unit_body(120.4003, 30.05)).json  # 29 m out
    assert near["assignment"] == "nearest" and near["grid"] == "330100002002001"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"safe_rental_units": 11}, "safe_rental_units"),
        ({"name": ""}, "name"),
        ({"floors": 0}, "floors"),
        ({"households": -1}, "households"),
        ({"geometry": {"type": "LineString", "coordinates": [[120, 30], [120.1, 30.1]]}}, "geometry"),
        (
            {
                "geometry": {
                    "type": "Polygon",
                    "coordinates": [
                        [[120.01, 30.01], [120.02, 30.02], [120.02, 30.01], [120.01, 30.02], [120.01, 30.01]]
                    ],
                }
            },
            "geometry",
        ),
        ({"head": {"name": "x" * 51}}, "head.name"),
        ({"crs": "epsg:3857"}, "crs"),
    ],
)
def test_bad_buildings_are_422_naming_the_field(client, tree, session, change, field):
    response = client.post("/api/v1/buildings", json={**building_body(120.05, 30.05), **change})
    assert response.status_code == 422, response.json
    assert field in {e["field"] for e in response.json["errors"]}
    assert session.execute(text("SELECT count(*) FROM buildings")).scalar() == 0


def test_units_accept_gcj02_and_move_with_their_point(client, session):
    lon, lat = grid_point(session, "440117103001001")
    from geo.crs import from_wgs84

    unit = client.post(
        "/api/v1/emergency-units", json=unit_body(*from_wgs84(lon, lat, "gcj02"), crs="gcj02")
    ).json
    assert unit["grid"] == "440117103001001"
    assert unit["location"]["coordinates"] == [pytest.approx(lon, abs=1e-6), pytest.approx(lat, abs=1e-6)]
    lon2, lat2 = grid_point(session, "440117104001001")
    moved = client.patch(f"/api/v1/emergency-units/{unit['id']}", json={"location": point(lon2, lat2)}).json
    assert moved["grid"] == "440117104001001" and moved["town"] == "440117104"


def test_a_supervisor_cannot_move_a_row_out_of_their_area(app, accounts, world, session):
    supervisor = client_as(app, accounts, "supervisor")
    elsewhere = point(*world.point["out"])
    for path, key in (("buildings", "geometry"), ("emergency-units", "location")):
        row = world.building["in"] if path == "buildings" else world.unit["in"]
        assert supervisor.patch(f"/api/v1/{path}/{row}", json={key: elsewhere}).status_code == 403
    next_village = session.execute(
        text("SELECT min(code) FROM areas WHERE level = 'grid' AND code LIKE '440117103002%'")
    ).scalar()
    village_supervisor = client_as(app, accounts, "village_supervisor")
    assert village_supervisor.post("/api/v1/party-branches", json={"grid": next_village}).status_code == 403
    assert (
        village_supervisor.post("/api/v1/party-branches", json={"grid": world.free_grid["in"]}).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("who", "sees"),
    [
        ("admin", True),
        ("supervisor", True),
        ("village_supervisor", True),
        ("worker", False),
        ("gis", False),
        ("other_supervisor", None),
        ("other_worker", None),
    ],
)
def test_contacts_of_building_heads_and_unit_leaders_are_personal(app, accounts, world, who, sees):
    client = client_as(app, accounts, who)
    for path, row, name in (
        ("buildings", world.building["in"], "head"),
        ("emergency-units", world.unit["in"], "leader"),
    ):
        single = client.get(f"/api/v1/{path}/{row}")
        listed = {r["id"]: r for r in client.get(f"/api/v1/{path}?limit=1000").json["items"]}
        if sees is None:  # out of their scope altogether
            assert single.status_code == 404 and row not in listed
            continue
        for body in (single.json, listed[row]):
            assert (name in body) == sees, (path, body)
            if sees:
                assert body[name]["phone"].startswith("139")
    alert = client.get(f"/api/v1/alerts/{world.alert['in']}")
    if sees is not None:
        assert ("leader" in alert.json["dispatches"][0]) == sees


def test_lists_are_scoped_in_sql_and_filter_by_area(app, accounts, world):
    def ids(who: str, path: str, query: str = "") -> set[int]:
        return {
            r["id"]
            for r in client_as(app, accounts, who).get(f"/api/v1/{path}?limit=1000{query}").json["items"]
        }

    for path, rows in (
        ("party-branches", world.branch),
        ("party-groups", world.group),
        ("buildings", world.building),
        ("emergency-units", world.unit),
    ):
        for who in ("supervisor", "village_supervisor", "worker", "gis"):
            seen = ids(who, path)
            assert rows["in"] in seen and rows["out"] not in seen, (who, path)
        assert rows["out"] in ids("other_supervisor", path) and rows["in"] not in ids(
            "other_supervisor", path
        )
        assert {rows["in"], rows["out"]} <= ids("admin", path)
        assert ids("admin", path, "&area=440117104") & {rows["in"], rows["out"]} == {rows["out"]}
    assert ids("admin", "emergency-units", "&kind=hotel") & set(world.unit.values()) == set()
    assert ids("admin", "emergency-units", "&active=true") >= set(world.unit.values())


def test_pages_follow_an_opaque_cursor(client, tree):
    made = [
        client.post("/api/v1/buildings", json=building_body(120.01 + 0.001 * i, 30.01)).json["id"]
        for i in range(5)
    ]
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/v1/buildings?area=330100&limit=2" + (f"&cursor={cursor}" if cursor else "")
        ).json
        seen += [b["id"] for b in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == made
    assert client.get("/api/v1/buildings?cursor=nonsense").status_code == 422


# --- import -----------------------------------------------------------------------------------


def feature(geometry, **properties):  # type: ignore[no-untyped-def]
    return {"type": "Feature", "geometry": geometry, "properties": properties}


def collection(*features, crs="wgs84"):  # type: ignore[no-untyped-def]
    return {"type": "FeatureCollection", "features": list(features), "crs": crs}


def test_building_import_is_all_or_nothing_with_a_report(client, tree, session):
    good = feature(point(120.05, 30.05), name="1栋", rental_units=4, safe_rental_units=4)
    footprint = feature(
        polygon(120.051, 30.051, 120.052, 30.052),
        name="2栋",
        floors=9,
        head={"name": "周楼长", "phone": "13700000000"},
    )
    bad = [
        feature(point(125.0, 35.0), name="远方"),  # 1: in no grid
        feature(point(120.06, 30.06), name="3栋", rental_units=1, safe_rental_units=2),  # 2
        feature({"type": "Point", "coordinates": [300, 30]}, name="4栋"),  # 3
        feature(point(120.07, 30.07)),  # 4: no name
        {"type": "Nothing"},  # 5
    ]
    response = client.post("/api/v1/buildings/import", json=collection(good, *bad, footprint))
    assert response.status_code == 422 and response.content_type == PROBLEM
    errors = {e["index"]: e for e in response.json["errors"]}
    assert sorted(errors) == [1, 2, 3, 4, 5]
    assert errors[2]["field"] == "features.2.safe_rental_units"
    assert errors[4]["field"] == "features.4.properties.name"
    assert "5 of 7" in response.json["detail"]
    assert session.execute(text("SELECT count(*) FROM buildings")).scalar() == 0
    ok = client.post("/api/v1/buildings/import", json=collection(good, footprint))
    assert ok.status_code == 201 and ok.json == {"created": 2}
    stored = client.get("/api/v1/buildings?area=330100").json["items"]
    assert [b["name"] for b in stored] == ["1栋", "2栋"] and stored[1]["head"]["name"] == "周楼长"


def test_unit_import_converts_gcj02_points(client, session):
    from geo.crs import from_wgs84

    lon, lat = grid_point(session, "440117103001001")
    body = collection(
        feature(point(*from_wgs84(lon, lat, "gcj02")), name="温泉酒店应急单元", kind="hotel", members=2),
        crs="gcj02",
    )
    assert client.post("/api/v1/emergency-units/import", json=body).json == {"created": 1}
    unit = client.get("/api/v1/emergency-units?area=440117103001001&kind=hotel").json["items"][0]
    assert unit["members"] == 2 and unit["grid"] == "440117103001001"
    polygon_unit = collection(feature(polygon(lon, lat, lon + 0.001, lat + 0.001), name="x", kind="shop"))
    response = client.post("/api/v1/emergency-units/import", json=polygon_unit)
    assert response.status_code == 422 and response.json["errors"][0]["field"] == "features.0.geometry"


def test_import_by_a_supervisor_rejects_features_outside_their_area(app, accounts, session):
    inside, outside = (grid_point(session, c) for c in ("440117103001001", "440117104001001"))
    body = collection(
        feature(point(*inside), name="内", kind="shop"), feature(point(*outside), name="外", kind="shop")
    )
    response = client_as(app, accounts, "supervisor").post("/api/v1/emergency-units/import", json=body)
    assert response.status_code == 422
    assert [e["index"] for e in response.json["errors"]] == [1]
    assert session.execute(text("SELECT count(*) FROM emergency_units")).scalar() == 0


# --- profile ----------------------------------------------------------------------------------


def test_profile_sums_over_the_subtree(client, tree, session, test_settings):
    def post(path, body):  # type: ignore[no-untyped-def]
        response = client.post(f"/api/v1/{path}", json=body)
        assert response.status_code == 201, response.json
        return response.json

    branches = {
        g: post("party-branches", {"grid": g, "member_count": 10})
        for g in ("330100001001001", "330100001002001", "330100002001001")
    }
    post(
        "party-groups",
        {"branch_id": branches["330100001001001"]["id"], "kind": "cooperative", "name": "一社党小组"},
    )
    building = post("buildings", building_body(120.05, 30.05))  # 24 households, 10 rental, 8 safe
    post(
        "party-groups",
        {
            "branch_id": branches["330100001001001"]["id"],
            "kind": "building",
            "name": "楼栋党小组",
            "building_ids": [building["id"]],
        },
    )
    post("buildings", building_body(120.15, 30.05, rental_units=5, safe_rental_units=5, access_control=False))
    post("buildings", building_body(120.25, 30.05, households=100))
    post("emergency-units", unit_body(120.05, 30.05))
    post("emergency-units", unit_body(120.25, 30.15, active=False))
    worker = auth.create_user(
        session,
        test_settings,
        username="hz-worker",
        password="long-enough",
        display_name="网格员",
        role="worker",
    )
    auth.set_user_grids(session, worker.id, ["330100001001001", "330100001001002"])
    session.commit()

    district = client.get("/api/v1/areas/330100/profile").json
    assert district == {
        "area": {"code": "330100", "level": "district", "name": "测试区"},
        "grids": 8,
        "party_branches": 3,
        "party_members": 30,
        "party_groups": 2,
        "building_groups": 1,
        "cooperative_groups": 1,
        "buildings": 3,
        "households": 148,
        "rental_units": 25,
        "safe_rental_units": 21,
        "buildings_with_access_control": 2,
        "emergency_units": 2,
        "active_emergency_units": 1,
        "workers": 1,
    }
    town = client.get("/api/v1/areas/330100001/profile").json
    assert (town["grids"], town["party_branches"], town["buildings"], town["rental_units"]) == (4, 2, 2, 15)
    assert (town["emergency_units"], town["workers"]) == (1, 1)
    other = client.get("/api/v1/areas/330100002/profile").json
    assert (other["safe_rental_units"], other["active_emergency_units"], other["workers"]) == (8, 0, 0)
    grid = client.get("/api/v1/areas/330100001001001/profile").json
    assert (grid["grids"], grid["party_groups"], grid["buildings"]) == (1, 2, 1)
    assert client.get("/api/v1/areas/330100009/profile").status_code == 404
    assert client.get("/api/v1/areas/nonsense/profile").status_code == 404


def test_profile_is_scoped(app, accounts, session):
    assert client_as(app, accounts, "supervisor").get("/api/v1/areas/440117103001/profile").status_code == 200
    assert client_as(app, accounts, "supervisor").get("/api/v1/areas/440117/profile").status_code == 404
    worker = client_as(app, accounts, "worker")
    grid = accounts.worker_grids[0]
    # The test worker, and any worker a live-server test committed to the same grid before.
    assigned = session.scalar(
        text(
            "SELECT count(DISTINCT u.id) FROM users u JOIN user_grids g ON g.user_id = u.id"
            " WHERE u.role = 'worker' AND NOT u.disabled AND g.grid_code = :grid"
        ),
        {"grid": grid},
    )
    assert assigned >= 1
    assert worker.get(f"/api/v1/areas/{grid}/profile").json["workers"] == assigned
    assert worker.get("/api/v1/areas/440117103001/profile").status_code == 404
