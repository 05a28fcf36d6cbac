"""Tests for polygon checks and repair."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiPolygon,
    Point,
    Polygon,
    box,
)

from geo.validate import (
    METRES_PER_DEGREE,
    Problem,
    coverage_gap,
    invalidity,
    outside_parent,
    overlap,
    repair,
    to_multipolygon,
)

# A reference corner in Guangzhou; boxes below are laid out in metres east and north of it.
LON0, LAT0 = 113.3, 23.1


def box_m(west: float, south: float, east: float, north: float) -> Polygon:
    """Return a lon/lat box given in metres east and north of the reference corner."""
    per_lon = METRES_PER_DEGREE * math.cos(math.radians(LAT0))
    return box(
        LON0 + west / per_lon,
        LAT0 + south / METRES_PER_DEGREE,
        LON0 + east / per_lon,
        LAT0 + north / METRES_PER_DEGREE,
    )


PARENT = box_m(0, 0, 1000, 1000)
# Two triangles touching at (113.005, 23.005): the classic self-intersecting ring.
BOW_TIE = [(113.0, 23.0), (113.01, 23.01), (113.01, 23.0), (113.0, 23.01), (113.0, 23.0)]


def test_problem_is_frozen() -> None:
    problem = Problem("overlap", "The areas overlap", (113.0, 23.0))
    with pytest.raises(AttributeError):
        problem.kind = "other"  # type: ignore[misc]


def test_bow_tie_reports_self_intersection_with_location() -> None:
    bow_tie = Polygon(BOW_TIE)
    problem = invalidity(bow_tie)
    assert problem is not None
    assert problem.kind == "invalid_geometry"
    assert problem.message == "Self-intersection at (113.005, 23.005)"
    assert problem.location == pytest.approx((113.005, 23.005))


def test_hole_outside_shell_is_reported() -> None:
    geom = Polygon(
        [(113.0, 23.0), (113.1, 23.0), (113.1, 23.1), (113.0, 23.1)],
        [[(113.2, 23.2), (113.3, 23.2), (113.3, 23.3), (113.2, 23.2)]],
    )
    problem = invalidity(geom)
    assert problem is not None
    assert problem.message.startswith("Hole lies outside shell at (")
    assert problem.location is not None


def test_valid_polygon_has_no_problem() -> None:
    assert invalidity(PARENT) is None
    assert invalidity(MultiPolygon([PARENT, box_m(2000, 0, 3000, 1000)])) is None


def test_empty_geometry_is_reported() -> None:
    problem = invalidity(Polygon())
    assert problem is not None
    assert problem.kind == "invalid_geometry"
    assert "empty" in problem.message
    assert problem.location is None


def test_nested_child_is_inside_parent() -> None:
    assert outside_parent(box_m(100, 100, 400, 400), PARENT) is None
    assert outside_parent(PARENT, PARENT) is None
    diagonal = MultiPolygon([box_m(0, 0, 500, 500), box_m(500, 500, 1000, 1000)])
    assert outside_parent(diagonal, PARENT) is None


def test_child_within_tolerance_is_accepted() -> None:
    # Digitised neighbours rarely agree exactly; half a metre over the line is noise.
    assert outside_parent(box_m(500, 0, 1000.5, 1000), PARENT) is None
    assert outside_parent(box_m(500, 0, 1003, 1000), PARENT, tolerance_m=5.0) is None


def test_child_reaching_outside_is_reported() -> None:
    child = box_m(900, 100, 1050, 200)  # 50 m x 100 m beyond the eastern edge
    problem = outside_parent(child, PARENT)
    assert problem is not None
    assert problem.kind == "outside_parent"
    assert problem.area_m2 == pytest.approx(5000, rel=0.02)
    assert "5,0" in problem.message or "4,9" in problem.message
    assert problem.location is not None
    location = Point(problem.location)
    assert child.contains(location)
    assert not PARENT.buffer(1.0 / METRES_PER_DEGREE).contains(location)


def test_child_entirely_outside_is_reported() -> None:
    child = box_m(2000, 2000, 2100, 2100)
    problem = outside_parent(child, PARENT)
    assert problem is not None
    assert problem.area_m2 == pytest.approx(10_000, rel=0.02)
    assert problem.location is not None
    assert child.contains(Point(problem.location))


def test_empty_child_is_never_outside() -> None:
    assert outside_parent(Polygon(), PARENT) is None


def test_overlapping_siblings_are_reported() -> None:
    west = box_m(0, 0, 520, 1000)
    east = box_m(500, 0, 1000, 1000)  # shares a 20 m x 1000 m strip with west
    problem = overlap(west, east)
    assert problem is not None
    assert problem.kind == "overlap"
    assert problem.area_m2 == pytest.approx(20_000, rel=0.02)
    assert problem.location is not None
    location = Point(problem.location)
    assert west.contains(location)
    assert east.contains(location)


def test_siblings_sharing_an_edge_do_not_overlap() -> None:
    assert overlap(box_m(0, 0, 500, 1000), box_m(500, 0, 1000, 1000)) is None


def test_disjoint_siblings_do_not_overlap() -> None:
    assert overlap(box_m(0, 0, 400, 400), box_m(600, 600, 1000, 1000)) is None
    assert overlap(Polygon(), PARENT) is None


def test_overlap_below_tolerance_is_ignored() -> None:
    west = box_m(0, 0, 500.1, 1000)  # 0.1 m x 1000 m = 100 m2
    east = box_m(500, 0, 1000, 1000)
    assert overlap(west, east, tolerance_m2=200.0) is None
    problem = overlap(west, east, tolerance_m2=50.0)
    assert problem is not None
    assert problem.area_m2 == pytest.approx(100, rel=0.05)


def test_children_covering_the_parent_leave_no_gap() -> None:
    halves = [box_m(0, 0, 500, 1000), box_m(500, 0, 1000, 1000)]
    assert coverage_gap(PARENT, halves) is None


def test_missing_quarter_is_a_gap() -> None:
    children = [box_m(0, 0, 500, 1000), box_m(500, 0, 1000, 500)]
    problem = coverage_gap(PARENT, children)
    assert problem is not None
    assert problem.kind == "coverage_gap"
    assert problem.area_m2 == pytest.approx(250_000, rel=0.02)
    assert problem.location is not None
    assert box_m(500, 500, 1000, 1000).contains(Point(problem.location))


def test_location_points_at_the_largest_gap() -> None:
    # A thin sliver and a big hole: the location should send people to the big one.
    children = [box_m(0, 0, 499, 400), box_m(0, 400, 500, 1000), box_m(500, 0, 1000, 600)]
    problem = coverage_gap(PARENT, children)
    assert problem is not None
    assert problem.location is not None
    assert box_m(500, 600, 1000, 1000).contains(Point(problem.location))


def test_small_gap_below_tolerance_is_ignored() -> None:
    children = [box_m(0, 0, 499.9, 1000), box_m(500, 0, 1000, 1000)]  # 100 m2 sliver
    assert coverage_gap(PARENT, children, tolerance_m2=150.0) is None
    assert coverage_gap(PARENT, children, tolerance_m2=50.0) is not None


def test_parent_without_children_is_all_gap() -> None:
    problem = coverage_gap(PARENT, [])
    assert problem is not None
    assert problem.area_m2 == pytest.approx(1_000_000, rel=0.02)


def test_repair_splits_bow_tie() -> None:
    bow_tie = Polygon(BOW_TIE)
    fixed = repair(bow_tie)
    assert isinstance(fixed, MultiPolygon)
    assert fixed.is_valid
    assert len(fixed.geoms) == 2
    assert fixed.area == pytest.approx(0.01 * 0.01 / 2)


def test_repair_keeps_valid_polygon() -> None:
    fixed = repair(PARENT)
    assert isinstance(fixed, MultiPolygon)
    assert fixed.equals(PARENT)


def test_repair_drops_collapsed_parts() -> None:
    spike = Polygon([(113.0, 23.0), (113.1, 23.0), (113.1, 23.1), (113.0, 23.1), (113.0, 23.0)])
    with_line = GeometryCollection([spike, LineString([(114, 24), (115, 25)])])
    fixed = repair(with_line)
    assert fixed.equals(MultiPolygon([spike]))


def test_repair_of_nothing_polygonal_fails() -> None:
    with pytest.raises(ValueError, match="no polygonal part"):
        repair(Polygon([(113.0, 23.0), (113.1, 23.0), (113.2, 23.0), (113.0, 23.0)]))


def test_to_multipolygon_wraps_polygon() -> None:
    result = to_multipolygon(PARENT)
    assert isinstance(result, MultiPolygon)
    assert list(result.geoms) == [PARENT]


def test_to_multipolygon_keeps_multipolygon() -> None:
    multi = MultiPolygon([PARENT])
    assert to_multipolygon(multi) is multi


def test_to_multipolygon_extracts_polygons_from_collection() -> None:
    other = box_m(2000, 0, 3000, 1000)
    collection = GeometryCollection([PARENT, Point(113.0, 23.0), GeometryCollection([MultiPolygon([other])])])
    result = to_multipolygon(collection)
    assert len(result.geoms) == 2
    assert result.equals(MultiPolygon([PARENT, other]))


def test_to_multipolygon_merges_parts_sharing_an_edge() -> None:
    collection = GeometryCollection([box_m(0, 0, 500, 1000), box_m(500, 0, 1000, 1000)])
    result = to_multipolygon(collection)
    assert result.is_valid
    assert result.area == pytest.approx(PARENT.area)


@pytest.mark.parametrize(
    "geom",
    [
        Point(113.0, 23.0),
        LineString([(113, 23), (114, 24)]),
        Polygon(),
        MultiPolygon(),
        GeometryCollection(),
    ],
    ids=["point", "line", "empty polygon", "empty multipolygon", "empty collection"],
)
def test_to_multipolygon_rejects_non_polygonal(geom: Point | LineString | Polygon) -> None:
    with pytest.raises(ValueError, match="no polygonal part"):
        to_multipolygon(geom)
