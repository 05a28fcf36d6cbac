"""The area tree over HTTP: reading, creating, versioning and every validation case."""

from __future__ import annotations

import pytest

from tests.factories import add_square_tree, polygon

PROBLEM = "application/problem+json"


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


def new_district(client, code="330200", west=121.0):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/areas",
        json={"code": code, "name": "新区", "geometry": polygon(west, 30.0, west + 0.4, 30.2)},
    )
    assert response.status_code == 201, response.json
    return response.json


def test_get_area_is_a_feature_with_its_parent_chain(client, tree):
    response = client.get("/api/v1/areas/330100002001002")
    assert response.status_code == 200
    feature = response.json
    assert feature["type"] == "Feature" and feature["id"] == "330100002001002"
    assert feature["geometry"]["type"] == "MultiPolygon"
    props = feature["properties"]
    assert props["level"] == "grid" and props["parent"] == "330100002001"
    assert [p["code"] for p in props["parents"]] == ["330100", "330100002", "330100002001"]
    assert props["valid_to"] is None and props["valid_from"].endswith("+00:00")


def test_an_area_without_its_boundary_keeps_its_parent_chain(client, tree):
    feature = client.get("/api/v1/areas/330100002001002?geometry=false").json
    assert feature["geometry"] is None
    assert [p["code"] for p in feature["properties"]["parents"]] == ["330100", "330100002", "330100002001"]
    assert client.get("/api/v1/areas/330100002?geometry=maybe").status_code == 422


def test_unknown_area_is_problem_404(client, tree):
    for code in ("330100009", "nonsense", "3301000010019999"):
        response = client.get(f"/api/v1/areas/{code}")
        assert response.status_code == 404
        assert response.content_type == PROBLEM
        assert response.json["status"] == 404


def test_list_filters_by_level_parent_and_bbox(client, tree):
    towns = client.get("/api/v1/areas?level=town&parent=330100").json
    assert [f["id"] for f in towns["features"]] == ["330100001", "330100002"]
    inside = client.get("/api/v1/areas?level=grid&bbox=120.01,30.01,120.02,30.02&geometry=false").json
    assert [f["id"] for f in inside["features"]] == ["330100001001001"]
    assert inside["features"][0]["geometry"] is None


def test_list_pages_with_an_opaque_cursor(client, tree):
    seen, cursor = [], None
    while True:
        url = "/api/v1/areas?parent=330100001001&limit=1" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url).json
        seen += [f["id"] for f in page["features"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == ["330100001001001", "330100001001002"]


@pytest.mark.parametrize(
    "query",
    [
        "cursor=@@@",
        "cursor=WzFd",
        "bbox=1,2,3",
        "bbox=5,5,1,1",
        "bbox=a,b,c,d",
        "limit=0",
        "limit=100000",
        "level=city",
    ],
)
def test_bad_list_arguments_are_422(client, tree, query):
    response = client.get(f"/api/v1/areas?{query}")
    assert response.status_code == 422, response.json
    assert response.content_type == PROBLEM
    assert response.json["errors"]


def test_children(client, tree):
    response = client.get("/api/v1/areas/330100002/children?geometry=false")
    assert [f["id"] for f in response.json["features"]] == ["330100002001", "330100002002"]
    assert client.get("/api/v1/areas/330100003/children").status_code == 404


def test_create_district_town_village_grid(client, tree):
    new_district(client)
    town = client.post(
        "/api/v1/areas",
        json={"code": "330200001", "name": "新镇", "geometry": polygon(121.0, 30.0, 121.2, 30.2)},
    )
    assert town.status_code == 201
    assert town.json["properties"]["parents"][0]["code"] == "330200"
    grid = client.post(
        "/api/v1/areas",
        json={
            "code": "330200001001",
            "level": "village",
            "name": "新村",
            "geometry": polygon(121.0, 30.0, 121.1, 30.1),
        },
    )
    assert grid.status_code == 201


def test_create_converts_gcj02_input(client, tree):
    # A district drawn in GCJ-02 lands about 500 m south-west once converted to WGS84.
    response = client.post(
        "/api/v1/areas",
        json={
            "code": "330300",
            "name": "火星区",
            "crs": "gcj02",
            "geometry": polygon(122.0, 30.0, 122.4, 30.2),
        },
    )
    assert response.status_code == 201
    west = min(x for x, _ in response.json["geometry"]["coordinates"][0][0])
    assert 121.99 < west < 122.0


def field_errors(response):  # type: ignore[no-untyped-def]
    assert response.status_code == 422, response.json
    assert response.content_type == PROBLEM
    body = response.json
    assert body["status"] == 422 and body["title"] and body["detail"]
    return body["errors"]


def test_self_intersecting_polygon_is_422_with_the_location(client, tree):
    bowtie = {
        "type": "Polygon",
        "coordinates": [[[121, 30], [121.4, 30.2], [121.4, 30], [121, 30.2], [121, 30]]],
    }
    errors = field_errors(
        client.post("/api/v1/areas", json={"code": "330200", "name": "x", "geometry": bowtie})
    )
    assert errors[0]["field"] == "geometry"
    assert errors[0]["at"] == pytest.approx([121.2, 30.1])
    assert "Self-intersection" in errors[0]["message"]


def test_child_outside_its_parent_is_422_naming_the_parent(client, tree):
    response = client.post(
        "/api/v1/areas",
        json={"code": "330100001003", "name": "越界村", "geometry": polygon(120.15, 30.0, 120.25, 30.1)},
    )
    errors = field_errors(response)
    assert errors[0]["parent"] == "330100001"
    assert "330100001" in response.json["detail"]
    assert errors[0]["at"] is not None


def test_child_a_hair_outside_is_within_tolerance(client, tree):
    new_district(client)
    hair = 0.000005  # about half a metre
    response = client.post(
        "/api/v1/areas",
        json={"code": "330200001", "name": "贴边镇", "geometry": polygon(121.0 - hair, 30.0, 121.2, 30.2)},
    )
    assert response.status_code == 201, response.json


def test_overlapping_siblings_are_422_naming_both(client, tree):
    response = client.post(
        "/api/v1/areas",
        json={"code": "330100001003", "name": "重叠村", "geometry": polygon(120.05, 30.0, 120.15, 30.1)},
    )
    errors = field_errors(response)
    assert errors[0]["conflicts_with"] in {"330100001001", "330100001002"}
    assert "330100001003" in response.json["detail"]


def test_missing_parent_is_422(client, tree):
    errors = field_errors(
        client.post(
            "/api/v1/areas",
            json={"code": "330900001", "name": "孤儿镇", "geometry": polygon(125, 30, 125.1, 30.1)},
        )
    )
    assert errors[0]["parent"] == "330900"


@pytest.mark.parametrize(
    ("geometry", "pointer_part"),
    [
        ({"type": "Polygon", "coordinates": [[[200, 30], [201, 30], [201, 31], [200, 30]]]}, "longitude"),
        ({"type": "Polygon", "coordinates": [[[120, 95], [121, 30], [121, 31], [120, 95]]]}, "latitude"),
        ({"type": "Polygon", "coordinates": [[[120, 30], [121, 30], [121, 31]]]}, ""),
        ({"type": "Polygon", "coordinates": []}, ""),
        ({"type": "Point", "coordinates": [120, 30]}, "Polygon"),
        ({"type": "Polygon"}, "coordinates"),
        ({"type": "Polygon", "coordinates": [[["120", 30], [121, 30], [121, 31], ["120", 30]]]}, ""),
        ("POLYGON((0 0, 1 0, 1 1, 0 0))", ""),
    ],
)
def test_malformed_geometry_is_422(client, tree, geometry, pointer_part):
    errors = field_errors(
        client.post("/api/v1/areas", json={"code": "330200", "name": "x", "geometry": geometry})
    )
    assert errors[0]["field"] == "geometry"
    assert pointer_part in errors[0]["message"]


def test_nan_coordinates_are_422(client, tree):
    body = (
        '{"code": "330200", "name": "x", "geometry": {"type": "Polygon", "coordinates": '
        "[[[NaN, 30], [121, 30], [121, 31], [NaN, 30]]]}}"
    )
    response = client.post("/api/v1/areas", data=body, content_type="application/json")
    assert response.status_code in (400, 422)
    assert response.content_type == PROBLEM


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"code": "33020", "name": "x"}, "code"),
        ({"code": "330200001", "level": "district", "name": "x"}, "level"),
        ({"code": "330200", "name": ""}, "name"),
        ({"code": "330200", "name": "a\u0000b"}, "name"),
        ({"code": "330200", "name": "x", "kind": "dedicated"}, "kind"),
    ],
)
def test_bad_fields_are_422_naming_the_field(client, tree, body, field):
    body = {"geometry": polygon(121.0, 30.0, 121.4, 30.2), **body}
    errors = field_errors(client.post("/api/v1/areas", json=body))
    assert field in {e["field"] for e in errors}


def test_existing_code_is_409(client, tree):
    response = client.post(
        "/api/v1/areas", json={"code": "330100", "name": "x", "geometry": polygon(121.0, 30.0, 121.4, 30.2)}
    )
    assert response.status_code == 409
    assert response.content_type == PROBLEM


def test_patch_name_keeps_the_version(client, tree):
    before = client.get("/api/v1/areas/330100001").json["properties"]["boundary_version"]
    response = client.patch("/api/v1/areas/330100001", json={"name": "改名镇"})
    assert response.status_code == 200
    assert response.json["properties"]["name"] == "改名镇"
    assert response.json["properties"]["boundary_version"] == before


def test_patch_geometry_opens_a_new_boundary_version(client, tree, session):
    from sqlalchemy import text

    # Grow the east grid of the first village? Keep it within its parent: shrink the village's
    # grid 001 is impossible without a gap, so change the district outline instead (still covering).
    before = client.get("/api/v1/areas/330100").json["properties"]["boundary_version"]
    response = client.patch("/api/v1/areas/330100", json={"geometry": polygon(119.9, 29.9, 120.5, 30.3)})
    assert response.status_code == 200, response.json
    after = response.json["properties"]
    assert after["boundary_version"] != before and after["valid_to"] is None
    versions = session.execute(
        text("SELECT id, valid_to IS NULL AS current FROM areas WHERE code = '330100' ORDER BY id")
    ).all()
    assert [(v.id, v.current) for v in versions] == [(before, False), (after["boundary_version"], True)]


def test_patch_geometry_that_drops_a_child_is_422(client, tree):
    errors = field_errors(
        client.patch("/api/v1/areas/330100", json={"geometry": polygon(120.0, 30.0, 120.2, 30.2)})
    )
    assert errors[0]["child"] == "330100002"


def test_patch_needs_a_field(client, tree):
    assert client.patch("/api/v1/areas/330100", json={}).status_code == 422
    assert client.patch("/api/v1/areas/330199", json={"name": "x"}).status_code == 404
