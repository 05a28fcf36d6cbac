"""Tests for reading and writing RFC 7946 GeoJSON."""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from shapely.geometry import (
    GeometryCollection,
    LinearRing,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)

from geo.geojson import (
    GeometryError,
    feature,
    feature_collection,
    geometry_to_geojson,
    parse_geometry,
)

# Counter-clockwise square near Guangzhou with a clockwise hole, as RFC 7946 wants them.
SHELL_CCW = [[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1], [113.0, 23.0]]
HOLE_CW = [[113.02, 23.02], [113.02, 23.05], [113.05, 23.05], [113.05, 23.02], [113.02, 23.02]]
SQUARE = {"type": "Polygon", "coordinates": [SHELL_CCW]}


def polygon(*rings: list[Any]) -> dict[str, Any]:
    """Return a GeoJSON Polygon with the given rings."""
    return {"type": "Polygon", "coordinates": list(rings)}


def point(coordinates: object) -> dict[str, object]:
    """Return a GeoJSON Point with the given coordinates member."""
    return {"type": "Point", "coordinates": coordinates}


REJECTIONS: list[tuple[str, object, str, str]] = [
    # (case id, input, expected pointer, fragment of the message)
    ("not a dict: list", [113.0, 23.0], "", "must be an object"),
    ("not a dict: string", "POINT (113 23)", "", "must be an object"),
    ("not a dict: None", None, "", "got null"),
    ("missing type", {"coordinates": [113.0, 23.0]}, "/type", "'type'"),
    ("unknown type", {"type": "Circle", "coordinates": [113.0, 23.0]}, "/type", "one of"),
    ("type not a string", {"type": 7, "coordinates": [113.0, 23.0]}, "/type", "number"),
    ("lower-case type", {"type": "point", "coordinates": [113.0, 23.0]}, "/type", "Point"),
    (
        "collection not allowed by default",
        {"type": "GeometryCollection", "geometries": []},
        "/type",
        "one of",
    ),
    ("missing coordinates", {"type": "Point"}, "/coordinates", "'coordinates'"),
    ("coordinates not an array", point("113,23"), "/coordinates", "array"),
    ("empty point", point([]), "/coordinates", "empty"),
    ("empty multipoint", {"type": "MultiPoint", "coordinates": []}, "/coordinates", "empty"),
    ("empty linestring", {"type": "LineString", "coordinates": []}, "/coordinates", "empty"),
    ("empty polygon", {"type": "Polygon", "coordinates": []}, "/coordinates", "empty"),
    ("empty ring", polygon([]), "/coordinates/0", "empty"),
    ("empty multipolygon", {"type": "MultiPolygon", "coordinates": []}, "/coordinates", "empty"),
    (
        "empty polygon in multipolygon",
        {"type": "MultiPolygon", "coordinates": [[SHELL_CCW], []]},
        "/coordinates/1",
        "empty",
    ),
    ("NaN longitude", point([math.nan, 23.0]), "/coordinates/0", "finite"),
    ("NaN latitude", point([113.0, math.nan]), "/coordinates/1", "finite"),
    ("infinite longitude", point([math.inf, 23.0]), "/coordinates/0", "finite"),
    ("a longitude of 401 digits", point([10**400, 23.0]), "/coordinates/0", "finite"),
    (
        "negative infinity in a ring",
        polygon([[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, -math.inf], [113.0, 23.0]]),
        "/coordinates/0/3/1",
        "finite",
    ),
    ("NaN altitude", point([113.0, 23.0, math.nan]), "/coordinates/2", "finite"),
    ("longitude too large", point([180.5, 23.0]), "/coordinates/0", "longitude"),
    ("longitude too small", point([-181, 23.0]), "/coordinates/0", "longitude"),
    ("latitude too large", point([113.0, 90.01]), "/coordinates/1", "latitude"),
    (
        "latitude in a ring",
        polygon([[113.0, 23.0], [113.1, 23.0], [113.1, -91.0], [113.0, 23.1], [113.0, 23.0]]),
        "/coordinates/0/2/1",
        "latitude",
    ),
    (
        "swapped lat/lon in a line",
        {"type": "LineString", "coordinates": [[23.1, 113.2], [23.2, 113.3]]},
        "/coordinates/0/1",
        "latitude",
    ),
    ("string as number", point(["113.0", 23.0]), "/coordinates/0", "string"),
    (
        "string inside a multipoint",
        {"type": "MultiPoint", "coordinates": [[113.0, 23.0], [113.1, "23.1"]]},
        "/coordinates/1/1",
        "string",
    ),
    ("boolean as number", point([True, 23.0]), "/coordinates/0", "boolean"),
    ("null as number", point([113.0, None]), "/coordinates/1", "null"),
    ("one number", point([113.0]), "/coordinates", "2 or 3"),
    ("four numbers", point([113.0, 23.0, 5.0, 1.0]), "/coordinates", "2 or 3"),
    (
        "position not an array",
        {"type": "LineString", "coordinates": [[113.0, 23.0], 113.1]},
        "/coordinates/1",
        "position must be an array",
    ),
    (
        "object as position",
        {"type": "MultiPoint", "coordinates": [{"lon": 113.0, "lat": 23.0}]},
        "/coordinates/0",
        "object",
    ),
    (
        "linestring with one position",
        {"type": "LineString", "coordinates": [[113.0, 23.0]]},
        "/coordinates",
        "at least 2",
    ),
    (
        "short line in a multilinestring",
        {
            "type": "MultiLineString",
            "coordinates": [[[113.0, 23.0], [113.1, 23.1]], [[113.2, 23.2]]],
        },
        "/coordinates/1",
        "at least 2",
    ),
    (
        "unclosed exterior ring",
        polygon([[113.0, 23.0], [113.1, 23.0], [113.1, 23.1], [113.0, 23.1]]),
        "/coordinates/0/3",
        "closed",
    ),
    (
        "unclosed hole",
        polygon(SHELL_CCW, HOLE_CW[:-1] + [[113.021, 23.02]]),
        "/coordinates/1/4",
        "closed",
    ),
    (
        "ring with three positions",
        polygon([[113.0, 23.0], [113.1, 23.0], [113.0, 23.0]]),
        "/coordinates/0",
        "at least 4",
    ),
    (
        "ring too short inside a multipolygon",
        {"type": "MultiPolygon", "coordinates": [[SHELL_CCW], [SHELL_CCW, SHELL_CCW[:3]]]},
        "/coordinates/1/1",
        "at least 4",
    ),
    (
        "ring as flat numbers",
        polygon([113.0, 23.0, 113.1, 23.0]),
        "/coordinates/0/0",
        "position must be an array",
    ),
]


@pytest.mark.parametrize(
    ("obj", "pointer", "fragment"),
    [case[1:] for case in REJECTIONS],
    ids=[case[0] for case in REJECTIONS],
)
def test_rejects_with_pointer(obj: object, pointer: str, fragment: str) -> None:
    with pytest.raises(GeometryError) as caught:
        parse_geometry(obj)
    assert caught.value.pointer == pointer
    assert fragment in caught.value.message


def test_nan_from_json_text_is_rejected() -> None:
    # Python's json module accepts the non-standard NaN and Infinity literals.
    obj = json.loads('{"type": "Point", "coordinates": [NaN, 23.0]}')
    with pytest.raises(GeometryError) as caught:
        parse_geometry(obj)
    assert caught.value.pointer == "/coordinates/0"
    obj = json.loads('{"type": "Point", "coordinates": [113.0, -Infinity]}')
    with pytest.raises(GeometryError) as caught:
        parse_geometry(obj)
    assert caught.value.pointer == "/coordinates/1"


def test_type_outside_allowed_names_the_allowed_types() -> None:
    with pytest.raises(GeometryError) as caught:
        parse_geometry(point([113.0, 23.0]), allowed=("Polygon", "MultiPolygon"))
    assert caught.value.pointer == "/type"
    assert "Polygon, MultiPolygon" in caught.value.message
    assert "Point" in caught.value.message


def test_unknown_allowed_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="Circle"):
        parse_geometry(SQUARE, allowed=("Polygon", "Circle"))


def test_geometry_error_is_readable() -> None:
    error = GeometryError("latitude must be between -90 and 90, got 91.0", "/coordinates/0/3/1")
    assert isinstance(error, ValueError)
    assert error.message == "latitude must be between -90 and 90, got 91.0"
    assert error.pointer == "/coordinates/0/3/1"
    assert str(error) == "latitude must be between -90 and 90, got 91.0 (at /coordinates/0/3/1)"
    assert "root" in str(GeometryError("geometry must be an object", ""))


def test_parses_every_default_type() -> None:
    assert parse_geometry({"type": "Point", "coordinates": [113.0, 23.0]}).equals(Point(113, 23))
    assert parse_geometry({"type": "MultiPoint", "coordinates": [[113, 23], [114, 24]]}).equals(
        MultiPoint([(113, 23), (114, 24)])
    )
    line = [[113.0, 23.0], [113.1, 23.1]]
    assert parse_geometry({"type": "LineString", "coordinates": line}).equals(LineString(line))
    assert parse_geometry({"type": "MultiLineString", "coordinates": [line]}).equals(MultiLineString([line]))
    with_hole = parse_geometry(polygon(SHELL_CCW, HOLE_CW))
    assert isinstance(with_hole, Polygon)
    assert len(with_hole.interiors) == 1
    multi = parse_geometry({"type": "MultiPolygon", "coordinates": [[SHELL_CCW, HOLE_CW]]})
    assert isinstance(multi, MultiPolygon)
    assert multi.geoms[0].equals(with_hole)


def test_accepts_integers_tuples_and_extremes() -> None:
    geom = parse_geometry({"type": "LineString", "coordinates": ((-180, -90), (180, 90))})
    assert list(geom.coords) == [(-180.0, -90.0), (180.0, 90.0)]


def test_altitude_is_checked_then_dropped() -> None:
    geom = parse_geometry(point([113.0, 23.0, 12.5]))
    assert isinstance(geom, Point)
    assert not geom.has_z
    assert (geom.x, geom.y) == (113.0, 23.0)


def test_self_intersection_is_left_to_validate() -> None:
    bow_tie = polygon([[113.0, 23.0], [113.1, 23.1], [113.1, 23.0], [113.0, 23.1], [113.0, 23.0]])
    geom = parse_geometry(bow_tie)
    assert isinstance(geom, Polygon)
    assert not geom.is_valid


def test_geometry_collection_when_allowed() -> None:
    allowed = ("Point", "Polygon", "GeometryCollection")
    obj = {
        "type": "GeometryCollection",
        "geometries": [{"type": "Point", "coordinates": [113.0, 23.0]}, SQUARE],
    }
    geom = parse_geometry(obj, allowed=allowed)
    assert isinstance(geom, GeometryCollection)
    assert len(geom.geoms) == 2
    obj["geometries"] = [SQUARE, {"type": "Point", "coordinates": [113.0, 91.0]}]
    with pytest.raises(GeometryError) as caught:
        parse_geometry(obj, allowed=allowed)
    assert caught.value.pointer == "/geometries/1/coordinates/1"
    nested = {"type": "GeometryCollection", "geometries": [obj]}
    with pytest.raises(GeometryError) as caught:
        parse_geometry(nested, allowed=allowed)
    assert caught.value.pointer == "/geometries/0/type"


def test_round_trip_of_rfc7946_polygon() -> None:
    obj = polygon(SHELL_CCW, HOLE_CW)
    assert geometry_to_geojson(parse_geometry(obj)) == obj


def is_ccw(ring: list[list[float]]) -> bool:
    """Return True when the ring turns counter-clockwise."""
    return bool(LinearRing(ring).is_ccw)


def test_output_exterior_is_ccw_and_holes_cw() -> None:
    clockwise_shell = list(reversed(SHELL_CCW))
    counter_clockwise_hole = list(reversed(HOLE_CW))
    geom = Polygon(clockwise_shell, [counter_clockwise_hole])
    out = geometry_to_geojson(geom)
    assert out["type"] == "Polygon"
    exterior, hole = out["coordinates"]
    assert is_ccw(exterior)
    assert not is_ccw(hole)
    multi = geometry_to_geojson(MultiPolygon([geom, Polygon([(114, 24), (114, 25), (115, 24)])]))
    for rings in multi["coordinates"]:
        assert is_ccw(rings[0])
        assert all(not is_ccw(ring) for ring in rings[1:])


def test_output_is_plain_json() -> None:
    geom = GeometryCollection([Point(113.0, 23.0), LineString([(113, 23), (114, 24)])])
    out = geometry_to_geojson(geom)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert out == {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Point", "coordinates": [113.0, 23.0]},
            {"type": "LineString", "coordinates": [[113.0, 23.0], [114.0, 24.0]]},
        ],
    }


def test_output_of_multi_types() -> None:
    assert geometry_to_geojson(MultiPoint([(113, 23), (114, 24)])) == {
        "type": "MultiPoint",
        "coordinates": [[113.0, 23.0], [114.0, 24.0]],
    }
    assert geometry_to_geojson(MultiLineString([[(113, 23), (114, 24)]])) == {
        "type": "MultiLineString",
        "coordinates": [[[113.0, 23.0], [114.0, 24.0]]],
    }


def test_output_precision_rounds_coordinates() -> None:
    out = geometry_to_geojson(Point(113.123456789, 23.987654321), precision=6)
    assert out["coordinates"] == [113.123457, 23.987654]
    unrounded = geometry_to_geojson(Point(113.123456789, 23.987654321))
    assert unrounded["coordinates"] == [113.123456789, 23.987654321]


def test_output_keeps_altitude() -> None:
    assert geometry_to_geojson(Point(113.0, 23.0, 7.0))["coordinates"] == [113.0, 23.0, 7.0]


def test_feature_and_collection() -> None:
    with_id = feature(Point(113.0, 23.0), {"name": "grid 1"}, id=42)
    assert with_id == {
        "type": "Feature",
        "id": 42,
        "geometry": {"type": "Point", "coordinates": [113.0, 23.0]},
        "properties": {"name": "grid 1"},
    }
    without = feature(None, None)
    assert without == {"type": "Feature", "geometry": None, "properties": None}
    from_dict = feature(SQUARE, {}, id="g-1")
    assert from_dict["geometry"] == SQUARE
    assert from_dict["id"] == "g-1"
    collection = feature_collection([with_id, without])
    assert collection == {"type": "FeatureCollection", "features": [with_id, without]}
    assert feature_collection([]) == {"type": "FeatureCollection", "features": []}
