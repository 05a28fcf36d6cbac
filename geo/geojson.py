"""Read and write RFC 7946 GeoJSON geometries, features and feature collections."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, TypeAlias

import shapely
from shapely.geometry import (
    GeometryCollection,
    LineString,
    MultiLineString,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
)
from shapely.geometry.base import BaseGeometry

__all__ = [
    "ALL_GEOMETRY_TYPES",
    "DEFAULT_GEOMETRY_TYPES",
    "GeometryError",
    "feature",
    "feature_collection",
    "geometry_to_geojson",
    "parse_geometry",
]

GeoJSON: TypeAlias = dict[str, Any]
_Position: TypeAlias = tuple[float, float]
_Ring: TypeAlias = list[_Position]

DEFAULT_GEOMETRY_TYPES: Final[tuple[str, ...]] = (
    "Point",
    "MultiPoint",
    "LineString",
    "MultiLineString",
    "Polygon",
    "MultiPolygon",
)
ALL_GEOMETRY_TYPES: Final[tuple[str, ...]] = (*DEFAULT_GEOMETRY_TYPES, "GeometryCollection")


class GeometryError(ValueError):
    """Signal a GeoJSON geometry that breaks RFC 7946 or the stricter rules applied here."""

    def __init__(self, message: str, pointer: str = "") -> None:
        """Keep the message and the JSON pointer of the offending element."""
        super().__init__(message, pointer)
        self.message = message
        self.pointer = pointer

    def __str__(self) -> str:
        """Return the message followed by where the problem is."""
        return f"{self.message} (at {self.pointer or 'the geometry root'})"


def _describe(value: object) -> str:
    """Return a short JSON-flavoured name for the type of a value."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, Mapping):
        return "object"
    if isinstance(value, list | tuple):
        return "array"
    return type(value).__name__


def _array(value: object, pointer: str, what: str) -> Sequence[object]:
    """Return the value as a non-empty sequence or raise GeometryError."""
    if not isinstance(value, list | tuple):
        raise GeometryError(f"{what} must be an array, got {_describe(value)}", pointer)
    if not value:
        raise GeometryError(f"{what} must not be empty", pointer)
    return value


def _number(value: object, pointer: str) -> float:
    """Return the value as a finite float or raise GeometryError."""
    # bool is an int subclass, but true/false in a position is always a client bug.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise GeometryError(f"coordinate must be a number, got {_describe(value)}", pointer)
    try:
        number = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise GeometryError("coordinate must be a finite number, got one too large", pointer) from None
    if not math.isfinite(number):
        raise GeometryError(f"coordinate must be a finite number, got {value!r}", pointer)
    return number


def _position(value: object, pointer: str) -> _Position:
    """Return a validated (lon, lat) pair, dropping any altitude."""
    if not isinstance(value, list | tuple):
        raise GeometryError(f"position must be an array, got {_describe(value)}", pointer)
    if not 2 <= len(value) <= 3:
        raise GeometryError(f"position must have 2 or 3 numbers (lon, lat[, alt]), got {len(value)}", pointer)
    numbers = [_number(item, f"{pointer}/{index}") for index, item in enumerate(value)]
    lon, lat = numbers[0], numbers[1]
    if not -180.0 <= lon <= 180.0:
        raise GeometryError(f"longitude must be between -180 and 180, got {lon}", f"{pointer}/0")
    if not -90.0 <= lat <= 90.0:
        raise GeometryError(f"latitude must be between -90 and 90, got {lat}", f"{pointer}/1")
    # Storage is 2-D, so an altitude is checked for sanity and then dropped.
    return lon, lat


def _positions(value: object, pointer: str, what: str, minimum: int = 1) -> list[_Position]:
    """Return a validated list of positions with at least the given count."""
    items = _array(value, pointer, what)
    positions = [_position(item, f"{pointer}/{index}") for index, item in enumerate(items)]
    if len(positions) < minimum:
        raise GeometryError(f"{what} must have at least {minimum} positions, got {len(positions)}", pointer)
    return positions


def _ring(value: object, pointer: str) -> _Ring:
    """Return a validated closed linear ring."""
    positions = _positions(value, pointer, "linear ring", minimum=4)
    if positions[0] != positions[-1]:
        raise GeometryError(
            "linear ring must be closed: the first and last positions must be equal",
            f"{pointer}/{len(positions) - 1}",
        )
    return positions


def _polygon(value: object, pointer: str) -> Polygon:
    """Return a polygon from validated rings: the exterior first, then holes."""
    items = _array(value, pointer, "polygon")
    rings = [_ring(item, f"{pointer}/{index}") for index, item in enumerate(items)]
    return Polygon(rings[0], rings[1:])


def _build(obj: object, allowed: tuple[str, ...], pointer: str) -> BaseGeometry:
    """Return the shapely geometry for one validated GeoJSON geometry object."""
    if not isinstance(obj, Mapping):
        raise GeometryError(f"geometry must be an object, got {_describe(obj)}", pointer)
    if "type" not in obj:
        raise GeometryError("geometry must have a 'type' member", f"{pointer}/type")
    kind = obj["type"]
    if not isinstance(kind, str) or kind not in allowed:
        shown = kind if isinstance(kind, str) else _describe(kind)
        message = (
            f"geometry type must be one of {', '.join(allowed)}; got {shown}"
            if allowed
            else f"no geometry type is allowed here; got {shown}"
        )
        raise GeometryError(message, f"{pointer}/type")
    if kind == "GeometryCollection":
        if "geometries" not in obj:
            raise GeometryError("GeometryCollection must have a 'geometries' member", f"{pointer}/geometries")
        at = f"{pointer}/geometries"
        members = _array(obj["geometries"], at, "geometries")
        # RFC 7946 section 3.1.8 discourages nesting, and nothing here needs it.
        inner = tuple(name for name in allowed if name != "GeometryCollection")
        return GeometryCollection(
            [_build(item, inner, f"{at}/{index}") for index, item in enumerate(members)]
        )
    if "coordinates" not in obj:
        raise GeometryError("geometry must have a 'coordinates' member", f"{pointer}/coordinates")
    at = f"{pointer}/coordinates"
    coords = obj["coordinates"]
    if kind == "Point":
        _array(coords, at, "coordinates")
        return Point(_position(coords, at))
    if kind == "MultiPoint":
        return MultiPoint(_positions(coords, at, "coordinates"))
    if kind == "LineString":
        return LineString(_positions(coords, at, "LineString", minimum=2))
    if kind == "MultiLineString":
        lines = _array(coords, at, "coordinates")
        return MultiLineString(
            [_positions(item, f"{at}/{index}", "LineString", minimum=2) for index, item in enumerate(lines)]
        )
    if kind == "Polygon":
        return _polygon(coords, at)
    if kind == "MultiPolygon":
        polygons = _array(coords, at, "coordinates")
        return MultiPolygon([_polygon(item, f"{at}/{index}") for index, item in enumerate(polygons)])
    raise GeometryError(f"geometry type {kind} is not supported", f"{pointer}/type")


def parse_geometry(obj: object, allowed: tuple[str, ...] = DEFAULT_GEOMETRY_TYPES) -> BaseGeometry:
    """Validate a GeoJSON geometry object strictly and return it as a 2-D shapely geometry."""
    unknown = [name for name in allowed if name not in ALL_GEOMETRY_TYPES]
    if unknown:
        raise ValueError(f"unknown GeoJSON geometry types: {', '.join(unknown)}")
    return _build(obj, allowed, "")


def _coords(coords: Iterable[Sequence[float]], precision: int | None) -> list[list[float]]:
    """Return coordinates as JSON lists, rounded when a precision is given."""
    if precision is None:
        return [[float(value) for value in position] for position in coords]
    return [[round(float(value), precision) for value in position] for position in coords]


def _geometry_dict(geom: BaseGeometry, precision: int | None) -> GeoJSON:
    """Return the GeoJSON object for an already oriented geometry."""
    if isinstance(geom, Point):
        coordinates: list[Any] = _coords(geom.coords, precision)
        return {"type": "Point", "coordinates": coordinates[0] if coordinates else []}
    if isinstance(geom, LineString):
        return {"type": "LineString", "coordinates": _coords(geom.coords, precision)}
    if isinstance(geom, Polygon):
        return {"type": "Polygon", "coordinates": _rings(geom, precision)}
    if isinstance(geom, MultiPoint):
        return {
            "type": "MultiPoint",
            "coordinates": [_coords(part.coords, precision)[0] for part in geom.geoms],
        }
    if isinstance(geom, MultiLineString):
        return {
            "type": "MultiLineString",
            "coordinates": [_coords(part.coords, precision) for part in geom.geoms],
        }
    if isinstance(geom, MultiPolygon):
        return {
            "type": "MultiPolygon",
            "coordinates": [_rings(part, precision) for part in geom.geoms],
        }
    if isinstance(geom, GeometryCollection):
        return {
            "type": "GeometryCollection",
            "geometries": [_geometry_dict(part, precision) for part in geom.geoms],
        }
    raise TypeError(f"cannot write {type(geom).__name__} as GeoJSON")


def _rings(polygon: Polygon, precision: int | None) -> list[list[list[float]]]:
    """Return the exterior ring followed by the holes of a polygon."""
    if polygon.is_empty:
        return []
    return [
        _coords(polygon.exterior.coords, precision),
        *(_coords(hole.coords, precision) for hole in polygon.interiors),
    ]


def geometry_to_geojson(geom: BaseGeometry, precision: int | None = None) -> GeoJSON:
    """Return an RFC 7946 geometry object with counter-clockwise exteriors and clockwise holes."""
    return _geometry_dict(shapely.orient_polygons(geom, exterior_cw=False), precision)


def feature(
    geometry: BaseGeometry | Mapping[str, Any] | None,
    properties: Mapping[str, Any] | None,
    id: str | int | None = None,
) -> GeoJSON:
    """Return a GeoJSON Feature; shapely geometries are written with geometry_to_geojson."""
    if isinstance(geometry, BaseGeometry):
        geometry_obj: GeoJSON | None = geometry_to_geojson(geometry)
    elif geometry is None:
        geometry_obj = None
    else:
        geometry_obj = dict(geometry)
    result: GeoJSON = {"type": "Feature"}
    if id is not None:
        result["id"] = id
    result["geometry"] = geometry_obj
    result["properties"] = None if properties is None else dict(properties)
    return result


def feature_collection(features: Iterable[Mapping[str, Any]]) -> GeoJSON:
    """Return a GeoJSON FeatureCollection holding the given features."""
    return {"type": "FeatureCollection", "features": [dict(item) for item in features]}
