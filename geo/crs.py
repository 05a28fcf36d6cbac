"""Convert coordinates between WGS84, CGCS2000, GCJ-02 and BD-09."""

# GCJ-02 (AMap, Tencent) is WGS84 plus an obfuscating offset and BD-09 (Baidu) adds a second
# one on top; CGCS2000 agrees with WGS84 to centimetres, so it is treated as equal. The offsets
# only apply inside a rough China rectangle, so points outside it pass through unchanged. Each
# formula is written once on numpy arrays; the scalar functions are thin wrappers over them.

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, Literal, TypeAlias, TypeVar, cast

import numpy as np
import numpy.typing as npt
import shapely
from shapely.geometry.base import BaseGeometry

__all__ = [
    "SUPPORTED_CRS",
    "CrsName",
    "bd09_to_gcj02",
    "bd09_to_wgs84",
    "from_wgs84",
    "gcj02_to_bd09",
    "gcj02_to_wgs84",
    "out_of_china",
    "out_of_china_array",
    "parse_crs",
    "to_wgs84",
    "transform_arrays",
    "transform_geometry",
    "wgs84_to_bd09",
    "wgs84_to_gcj02",
]

CrsName: TypeAlias = Literal["wgs84", "gcj02", "bd09", "cgcs2000"]
SUPPORTED_CRS: tuple[str, ...] = ("wgs84", "gcj02", "bd09", "cgcs2000")

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
_Step: TypeAlias = Callable[[FloatArray, FloatArray], tuple[FloatArray, FloatArray]]
GeometryT = TypeVar("GeometryT", bound=BaseGeometry)

# Krasovsky 1940 ellipsoid, as used by the published GCJ-02 algorithm.
_A: Final = 6378245.0
_EE: Final = 0.00669342162296594323
_X_PI: Final = math.pi * 3000.0 / 180.0

_CHINA_LON_MIN: Final = 72.004
_CHINA_LON_MAX: Final = 137.8347
_CHINA_LAT_MIN: Final = 0.8293
_CHINA_LAT_MAX: Final = 55.8271

# 1e-9 degrees is about 0.1 mm, far below what any phone or survey delivers.
_INVERSE_TOLERANCE_DEG: Final = 1e-9
# Both offsets change by well under 1 % per unit of input, so a fixed-point iteration gains
# about two digits per step; the cap only guards against pathological input.
_MAX_ITERATIONS: Final = 30

# Datum order: each step towards higher index adds one offset.
_LEVEL: Final[dict[str, int]] = {"wgs84": 0, "cgcs2000": 0, "gcj02": 1, "bd09": 2}


def parse_crs(name: str) -> CrsName:
    """Return the name as a CrsName or raise ValueError for an unknown coordinate system."""
    if name not in SUPPORTED_CRS:
        expected = ", ".join(SUPPORTED_CRS)
        raise ValueError(f"unknown coordinate system {name!r}; expected one of: {expected}")
    return cast(CrsName, name)


def out_of_china_array(lon: npt.ArrayLike, lat: npt.ArrayLike) -> BoolArray:
    """Return a mask of the points outside the rectangle where Chinese offsets apply."""
    lon_a = np.asarray(lon, dtype=np.float64)
    lat_a = np.asarray(lat, dtype=np.float64)
    # Written as a negated "inside" so NaN counts as outside and is left untouched.
    inside = (
        (lon_a >= _CHINA_LON_MIN)
        & (lon_a <= _CHINA_LON_MAX)
        & (lat_a >= _CHINA_LAT_MIN)
        & (lat_a <= _CHINA_LAT_MAX)
    )
    return np.logical_not(inside)


def out_of_china(lon: float, lat: float) -> bool:
    """Return True when the point lies outside the rectangle where Chinese offsets apply."""
    return bool(out_of_china_array(lon, lat))


def _gcj02_offset(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return the GCJ-02 offset in degrees for WGS84 positions."""
    x = lon - 105.0
    y = lat - 35.0
    shared = (20.0 * np.sin(6.0 * x * np.pi) + 20.0 * np.sin(2.0 * x * np.pi)) * 2.0 / 3.0
    dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * np.sqrt(np.abs(x))
    dlat = dlat + shared
    dlat = dlat + (20.0 * np.sin(y * np.pi) + 40.0 * np.sin(y / 3.0 * np.pi)) * 2.0 / 3.0
    dlat = dlat + (160.0 * np.sin(y / 12.0 * np.pi) + 320.0 * np.sin(y * np.pi / 30.0)) * 2.0 / 3.0
    dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * np.sqrt(np.abs(x))
    dlon = dlon + shared
    dlon = dlon + (20.0 * np.sin(x * np.pi) + 40.0 * np.sin(x / 3.0 * np.pi)) * 2.0 / 3.0
    dlon = dlon + (150.0 * np.sin(x / 12.0 * np.pi) + 300.0 * np.sin(x / 30.0 * np.pi)) * 2.0 / 3.0
    rad_lat = lat / 180.0 * np.pi
    magic = 1.0 - _EE * np.sin(rad_lat) ** 2
    sqrt_magic = np.sqrt(magic)
    dlat = (dlat * 180.0) / ((_A * (1.0 - _EE)) / (magic * sqrt_magic) * np.pi)
    dlon = (dlon * 180.0) / (_A / sqrt_magic * np.cos(rad_lat) * np.pi)
    return dlon, dlat


def _gcj02_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return GCJ-02 positions for WGS84 positions, without the China mask."""
    dlon, dlat = _gcj02_offset(lon, lat)
    return lon + dlon, lat + dlat


def _bd09_forward(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return BD-09 positions for GCJ-02 positions, without the China mask."""
    z = np.hypot(lon, lat) + 0.00002 * np.sin(lat * _X_PI)
    theta = np.arctan2(lat, lon) + 0.000003 * np.cos(lon * _X_PI)
    return z * np.cos(theta) + 0.0065, z * np.sin(theta) + 0.006


def _invert(
    forward: _Step, lon: FloatArray, lat: FloatArray, guess: tuple[FloatArray, FloatArray]
) -> tuple[FloatArray, FloatArray]:
    """Return the positions whose forward image is (lon, lat), refining the guess by iteration."""
    est_lon, est_lat = guess
    for _ in range(_MAX_ITERATIONS):
        fwd_lon, fwd_lat = forward(est_lon, est_lat)
        err_lon = fwd_lon - lon
        err_lat = fwd_lat - lat
        # The last correction is kept even once converged: it costs nothing and gains digits.
        est_lon = est_lon - err_lon
        est_lat = est_lat - err_lat
        if max(float(np.max(np.abs(err_lon))), float(np.max(np.abs(err_lat)))) < (_INVERSE_TOLERANCE_DEG):
            break
    return est_lon, est_lat


def _gcj02_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return WGS84 positions for GCJ-02 positions, without the China mask."""
    # The offset varies slowly, so subtracting it at the GCJ-02 point is already within metres.
    dlon, dlat = _gcj02_offset(lon, lat)
    return _invert(_gcj02_forward, lon, lat, (lon - dlon, lat - dlat))


def _bd09_inverse(lon: FloatArray, lat: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Return GCJ-02 positions for BD-09 positions, without the China mask."""
    # The usual closed form only flips the signs of the perturbations, which is off by centimetres.
    x = lon - 0.0065
    y = lat - 0.006
    z = np.hypot(x, y) - 0.00002 * np.sin(y * _X_PI)
    theta = np.arctan2(y, x) - 0.000003 * np.cos(x * _X_PI)
    return _invert(_bd09_forward, lon, lat, (z * np.cos(theta), z * np.sin(theta)))


_FORWARD: Final[tuple[_Step, ...]] = (_gcj02_forward, _bd09_forward)
_INVERSE: Final[tuple[_Step, ...]] = (_gcj02_inverse, _bd09_inverse)


def _steps(source: str, target: str) -> Sequence[_Step]:
    """Return the offset steps leading from one coordinate system to another."""
    low = _LEVEL[parse_crs(source)]
    high = _LEVEL[parse_crs(target)]
    if low <= high:
        return _FORWARD[low:high]
    return _INVERSE[high:low][::-1]


def transform_arrays(
    lon: npt.ArrayLike, lat: npt.ArrayLike, source: str, target: str = "wgs84"
) -> tuple[FloatArray, FloatArray]:
    """Convert arrays of longitudes and latitudes from one coordinate system to another."""
    steps = _steps(source, target)
    lon_a, lat_a = np.broadcast_arrays(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64))
    shape = lon_a.shape
    out_lon = lon_a.astype(np.float64, copy=True).reshape(-1)
    out_lat = lat_a.astype(np.float64, copy=True).reshape(-1)
    # The mask is decided once on the source position so a multi-step conversion never leaves a
    # point half converted when an intermediate position crosses the rectangle's edge.
    inside = np.logical_not(out_of_china_array(out_lon, out_lat))
    if steps and bool(inside.any()):
        new_lon, new_lat = out_lon[inside], out_lat[inside]
        for step in steps:
            new_lon, new_lat = step(new_lon, new_lat)
        out_lon[inside] = new_lon
        out_lat[inside] = new_lat
    return out_lon.reshape(shape), out_lat.reshape(shape)


def _convert_point(lon: float, lat: float, source: str, target: str) -> tuple[float, float]:
    """Convert one position with the array implementation."""
    out_lon, out_lat = transform_arrays(lon, lat, source, target)
    return float(out_lon), float(out_lat)


def wgs84_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert a WGS84 position to GCJ-02."""
    return _convert_point(lon, lat, "wgs84", "gcj02")


def gcj02_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert a GCJ-02 position to WGS84 by iterating the forward offset to 1e-9 degrees."""
    return _convert_point(lon, lat, "gcj02", "wgs84")


def gcj02_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert a GCJ-02 position to BD-09."""
    return _convert_point(lon, lat, "gcj02", "bd09")


def bd09_to_gcj02(lon: float, lat: float) -> tuple[float, float]:
    """Convert a BD-09 position to GCJ-02 by iterating the forward offset to 1e-9 degrees."""
    return _convert_point(lon, lat, "bd09", "gcj02")


def wgs84_to_bd09(lon: float, lat: float) -> tuple[float, float]:
    """Convert a WGS84 position to BD-09."""
    return _convert_point(lon, lat, "wgs84", "bd09")


def bd09_to_wgs84(lon: float, lat: float) -> tuple[float, float]:
    """Convert a BD-09 position to WGS84."""
    return _convert_point(lon, lat, "bd09", "wgs84")


def to_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a position given in the named coordinate system to WGS84."""
    return _convert_point(lon, lat, crs, "wgs84")


def from_wgs84(lon: float, lat: float, crs: str) -> tuple[float, float]:
    """Convert a WGS84 position to the named coordinate system."""
    return _convert_point(lon, lat, "wgs84", crs)


def transform_geometry(geom: GeometryT, source: str, target: str = "wgs84") -> GeometryT:
    """Convert every coordinate of a shapely geometry, keeping any Z values."""
    if not _steps(source, target):
        return geom

    def convert(coords: FloatArray) -> FloatArray:
        out = coords.copy()
        out[:, 0], out[:, 1] = transform_arrays(coords[:, 0], coords[:, 1], source, target)
        return out

    # Asking for Z only when present keeps 2-D geometries 2-D and 3-D ones' altitudes intact.
    return shapely.transform(geom, convert, include_z=bool(geom.has_z))
