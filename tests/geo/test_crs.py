"""Tests for the WGS84 / GCJ-02 / BD-09 / CGCS2000 conversions."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString, MultiPolygon, Point, Polygon

from geo import crs

# Metres per degree of latitude; the figure for the equator is used because it is the largest,
# which makes a tolerance converted with it slightly stricter than the true one.
METRES_PER_DEGREE = 111_320.0
ONE_CM = 0.01

# Published test vectors from googollee/eviltransform (python/test.py, repeated in its JS, PHP,
# Ruby and Swift ports): (wgs_lon, wgs_lat, gcj_lon, gcj_lat).
EVILTRANSFORM_WGS_GCJ = [
    (121.5272106, 31.1774276, 121.531541859215, 31.17530398364597),  # Shanghai
    (113.912316, 22.543847, 113.9171764808363, 22.540796131694766),  # Shenzhen
    (116.377817, 39.911954, 116.38404722455657, 39.91334545536069),  # Beijing
]
# eviltransform's BD-09 vectors are not used: its bd2gcj multiplies by pi instead of x_pi, so
# they disagree with the standard formula by tens of metres.

# Published results from the README of wandergis/coordtransform for the input (116.404, 39.915),
# near Tiananmen. Its inverses are one-step approximations that land a few centimetres from the
# exact inverse, which is still well inside 1e-6 degrees.
TIANANMEN = (116.404, 39.915)
COORDTRANSFORM_RESULTS = {
    "wgs84_to_gcj02": (116.41024449916938, 39.91640428150164),
    "gcj02_to_wgs84": (116.39775550083061, 39.91359571849836),
    "gcj02_to_bd09": (116.41036949371029, 39.92133699351021),
    "bd09_to_gcj02": (116.39762729119315, 39.90865673957631),
}
PUBLISHED_TOLERANCE_DEG = 1e-6

# Guangzhou's bounding box, where the project's data lives.
GZ_LON = (112.95, 114.05)
GZ_LAT = (22.55, 23.95)

FORWARD_PAIRS = [("wgs84", "gcj02"), ("wgs84", "bd09"), ("gcj02", "bd09")]

TOKYO = (139.7, 35.7)
LONDON = (-0.1276, 51.5072)

SCALAR_FUNCTIONS = [
    crs.wgs84_to_gcj02,
    crs.gcj02_to_wgs84,
    crs.gcj02_to_bd09,
    crs.bd09_to_gcj02,
    crs.wgs84_to_bd09,
    crs.bd09_to_wgs84,
]

FloatArray = npt.NDArray[np.float64]


def assert_within_cm(
    lon: FloatArray, lat: FloatArray, expected_lon: FloatArray, expected_lat: FloatArray
) -> None:
    """Assert that two sets of positions agree to under a centimetre on the ground."""
    tolerance_lat = ONE_CM / METRES_PER_DEGREE
    tolerance_lon = ONE_CM / (METRES_PER_DEGREE * np.cos(np.radians(expected_lat)))
    assert np.all(np.abs(lat - expected_lat) < tolerance_lat)
    assert np.all(np.abs(lon - expected_lon) < tolerance_lon)


def guangzhou_grid() -> tuple[FloatArray, FloatArray]:
    """Return a grid of positions covering the Guangzhou bounding box."""
    lon, lat = np.meshgrid(np.linspace(*GZ_LON, 45), np.linspace(*GZ_LAT, 57))
    return lon.ravel(), lat.ravel()


@pytest.mark.parametrize(("wgs_lon", "wgs_lat", "gcj_lon", "gcj_lat"), EVILTRANSFORM_WGS_GCJ)
def test_wgs84_to_gcj02_matches_eviltransform(
    wgs_lon: float, wgs_lat: float, gcj_lon: float, gcj_lat: float
) -> None:
    lon, lat = crs.wgs84_to_gcj02(wgs_lon, wgs_lat)
    assert lon == pytest.approx(gcj_lon, abs=PUBLISHED_TOLERANCE_DEG)
    assert lat == pytest.approx(gcj_lat, abs=PUBLISHED_TOLERANCE_DEG)


@pytest.mark.parametrize(("wgs_lon", "wgs_lat", "gcj_lon", "gcj_lat"), EVILTRANSFORM_WGS_GCJ)
def test_gcj02_to_wgs84_recovers_eviltransform_input(
    wgs_lon: float, wgs_lat: float, gcj_lon: float, gcj_lat: float
) -> None:
    lon, lat = crs.gcj02_to_wgs84(gcj_lon, gcj_lat)
    assert lon == pytest.approx(wgs_lon, abs=PUBLISHED_TOLERANCE_DEG)
    assert lat == pytest.approx(wgs_lat, abs=PUBLISHED_TOLERANCE_DEG)


@pytest.mark.parametrize(("name", "expected"), COORDTRANSFORM_RESULTS.items())
def test_matches_coordtransform_readme(name: str, expected: tuple[float, float]) -> None:
    lon, lat = getattr(crs, name)(*TIANANMEN)
    assert lon == pytest.approx(expected[0], abs=PUBLISHED_TOLERANCE_DEG)
    assert lat == pytest.approx(expected[1], abs=PUBLISHED_TOLERANCE_DEG)


def test_gcj02_offset_in_guangzhou_is_hundreds_of_metres() -> None:
    # Guards the round-trip tests against passing vacuously with a no-op conversion.
    lon, lat = guangzhou_grid()
    gcj_lon, gcj_lat = crs.transform_arrays(lon, lat, "wgs84", "gcj02")
    shift_m = np.hypot(
        (gcj_lon - lon) * METRES_PER_DEGREE * np.cos(np.radians(lat)),
        (gcj_lat - lat) * METRES_PER_DEGREE,
    )
    assert shift_m.min() > 100.0
    assert shift_m.max() < 1000.0


@pytest.mark.parametrize(("source", "target"), FORWARD_PAIRS)
def test_inverse_undoes_forward_across_guangzhou(source: str, target: str) -> None:
    lon, lat = guangzhou_grid()
    fwd_lon, fwd_lat = crs.transform_arrays(lon, lat, source, target)
    back_lon, back_lat = crs.transform_arrays(fwd_lon, fwd_lat, target, source)
    assert_within_cm(back_lon, back_lat, lon, lat)


@pytest.mark.parametrize(("target", "source"), FORWARD_PAIRS)
def test_forward_reproduces_inverse_input_across_guangzhou(source: str, target: str) -> None:
    lon, lat = guangzhou_grid()
    inv_lon, inv_lat = crs.transform_arrays(lon, lat, source, target)
    again_lon, again_lat = crs.transform_arrays(inv_lon, inv_lat, target, source)
    # The iteration stops once the forward image is within 1e-9 degrees of the input.
    assert np.max(np.abs(again_lon - lon)) < 1e-9
    assert np.max(np.abs(again_lat - lat)) < 1e-9


def test_bd09_inverse_is_tighter_than_closed_form() -> None:
    bd_lon, bd_lat = crs.gcj02_to_bd09(113.3245, 23.1064)
    gcj_lon, gcj_lat = crs.bd09_to_gcj02(bd_lon, bd_lat)
    assert gcj_lon == pytest.approx(113.3245, abs=1e-9)
    assert gcj_lat == pytest.approx(23.1064, abs=1e-9)


def test_scalar_round_trips_through_bd09() -> None:
    lon, lat = 113.2644, 23.1291
    assert crs.bd09_to_wgs84(*crs.wgs84_to_bd09(lon, lat)) == pytest.approx((lon, lat), abs=1e-9)
    assert crs.gcj02_to_bd09(*crs.bd09_to_gcj02(lon, lat)) == pytest.approx((lon, lat), abs=1e-9)


@pytest.mark.parametrize("function", SCALAR_FUNCTIONS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("point", [TOKYO, LONDON, (-74.006, 40.7128), (151.2093, -33.8688)])
def test_points_outside_china_pass_through(
    function: Callable[[float, float], tuple[float, float]], point: tuple[float, float]
) -> None:
    assert function(*point) == point


@pytest.mark.parametrize("name", crs.SUPPORTED_CRS)
def test_named_dispatch_leaves_points_outside_china(name: str) -> None:
    assert crs.to_wgs84(*TOKYO, name) == TOKYO
    assert crs.from_wgs84(*LONDON, name) == LONDON


def test_out_of_china() -> None:
    assert not crs.out_of_china(113.2644, 23.1291)
    assert crs.out_of_china(*TOKYO)
    assert crs.out_of_china(*LONDON)
    assert not crs.out_of_china(72.004, 0.8293)
    assert crs.out_of_china(72.0039, 30.0)
    assert crs.out_of_china(100.0, 55.8272)
    assert crs.out_of_china(math.nan, 30.0)


def test_out_of_china_array() -> None:
    mask = crs.out_of_china_array([113.2, 139.7, -0.1], [23.1, 35.7, 51.5])
    assert mask.tolist() == [False, True, True]


def test_dispatch_matches_named_functions() -> None:
    lon, lat = 113.2644, 23.1291
    assert crs.to_wgs84(lon, lat, "gcj02") == crs.gcj02_to_wgs84(lon, lat)
    assert crs.to_wgs84(lon, lat, "bd09") == crs.bd09_to_wgs84(lon, lat)
    assert crs.from_wgs84(lon, lat, "gcj02") == crs.wgs84_to_gcj02(lon, lat)
    assert crs.from_wgs84(lon, lat, "bd09") == crs.wgs84_to_bd09(lon, lat)


@pytest.mark.parametrize("name", ["wgs84", "cgcs2000"])
def test_wgs84_and_cgcs2000_are_identity(name: str) -> None:
    assert crs.to_wgs84(113.2644, 23.1291, name) == (113.2644, 23.1291)
    assert crs.from_wgs84(113.2644, 23.1291, name) == (113.2644, 23.1291)
    assert crs.transform_arrays(113.2644, 23.1291, name, "cgcs2000")[0] == 113.2644


@pytest.mark.parametrize("name", ["WGS84", "epsg:4326", "gcj-02", ""])
def test_unknown_crs_is_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="unknown coordinate system"):
        crs.to_wgs84(113.0, 23.0, name)
    with pytest.raises(ValueError, match="unknown coordinate system"):
        crs.from_wgs84(113.0, 23.0, name)
    with pytest.raises(ValueError, match="unknown coordinate system"):
        crs.transform_geometry(Point(113.0, 23.0), name)
    with pytest.raises(ValueError, match="unknown coordinate system"):
        crs.parse_crs(name)


def test_parse_crs_accepts_supported_names() -> None:
    assert [crs.parse_crs(name) for name in crs.SUPPORTED_CRS] == list(crs.SUPPORTED_CRS)


def test_transform_arrays_keeps_shape() -> None:
    lon = np.array([[113.1, 113.2], [113.3, 139.7]])
    lat = np.array([[23.1, 23.2], [23.3, 35.7]])
    out_lon, out_lat = crs.transform_arrays(lon, lat, "gcj02")
    assert out_lon.shape == out_lat.shape == (2, 2)
    assert (out_lon[1, 1], out_lat[1, 1]) == TOKYO
    assert out_lon[0, 1] == pytest.approx(crs.gcj02_to_wgs84(113.2, 23.2)[0], abs=1e-12)


def test_transform_geometry_matches_scalar_functions() -> None:
    shell = [(113.2, 23.0), (113.5, 23.0), (113.5, 23.3), (113.2, 23.3), (113.2, 23.0)]
    hole = [(113.3, 23.1), (113.3, 23.2), (113.4, 23.2), (113.3, 23.1)]
    polygon = Polygon(shell, [hole])
    converted = crs.transform_geometry(polygon, "gcj02")
    assert isinstance(converted, Polygon)
    for original, result in [
        (polygon.exterior.coords, converted.exterior.coords),
        (polygon.interiors[0].coords, converted.interiors[0].coords),
    ]:
        for (lon, lat), (out_lon, out_lat) in zip(original, result, strict=True):
            expected = crs.gcj02_to_wgs84(lon, lat)
            assert out_lon == pytest.approx(expected[0], abs=1e-12)
            assert out_lat == pytest.approx(expected[1], abs=1e-12)


def test_transform_geometry_to_bd09_and_back() -> None:
    polygon = MultiPolygon([Polygon([(113.2, 23.0), (113.5, 23.0), (113.5, 23.3), (113.2, 23.0)])])
    there = crs.transform_geometry(polygon, "wgs84", "bd09")
    assert isinstance(there, MultiPolygon)
    first = there.geoms[0].exterior.coords[0]
    assert first == pytest.approx(crs.wgs84_to_bd09(113.2, 23.0), abs=1e-12)
    back = crs.transform_geometry(there, "bd09", "wgs84")
    assert back.equals_exact(polygon, tolerance=1e-9)


def test_transform_geometry_keeps_altitude_and_outside_points() -> None:
    line = LineString([(113.2, 23.1, 15.0), (139.7, 35.7, 20.0)])
    converted = crs.transform_geometry(line, "gcj02")
    assert converted.has_z
    coords = list(converted.coords)
    assert coords[0][2] == 15.0
    assert coords[0][:2] == pytest.approx(crs.gcj02_to_wgs84(113.2, 23.1), abs=1e-12)
    assert coords[1] == (139.7, 35.7, 20.0)


def test_transform_geometry_identity_returns_input() -> None:
    point = Point(113.2, 23.1)
    assert crs.transform_geometry(point, "wgs84") is point
    assert crs.transform_geometry(point, "cgcs2000", "wgs84") is point


def test_transform_geometry_handles_empty_geometry() -> None:
    assert crs.transform_geometry(Polygon(), "gcj02").is_empty


inside_china_lon = st.floats(min_value=73.7, max_value=134.7)
inside_china_lat = st.floats(min_value=18.2, max_value=53.4)


@settings(max_examples=200, deadline=None)
@given(lon=inside_china_lon, lat=inside_china_lat, target=st.sampled_from(["gcj02", "bd09"]))
def test_round_trip_inside_china_is_within_a_centimetre(lon: float, lat: float, target: str) -> None:
    fwd = crs.from_wgs84(lon, lat, target)
    back_lon, back_lat = crs.to_wgs84(*fwd, target)
    assert_within_cm(np.array([back_lon]), np.array([back_lat]), np.array([lon]), np.array([lat]))
