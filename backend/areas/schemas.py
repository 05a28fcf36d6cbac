"""What area requests and answers look like."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from backend.areas.models import GRID_KINDS, LEVELS
from backend.common.fields import Geometry, Text, area_code
from backend.common.pagination import CursorArgsSchema
from geo.crs import SUPPORTED_CRS


def parse_bbox(value: str) -> tuple[float, float, float, float]:
    """Read 'min_lon,min_lat,max_lon,max_lat' in WGS84."""
    try:
        parts = tuple(float(p) for p in value.split(","))
    except ValueError as error:
        raise ma.ValidationError("bbox must be four numbers: min_lon,min_lat,max_lon,max_lat.") from error
    if len(parts) != 4 or not all(abs(p) != float("inf") and p == p for p in parts):
        raise ma.ValidationError("bbox must be four finite numbers: min_lon,min_lat,max_lon,max_lat.")
    min_lon, min_lat, max_lon, max_lat = parts
    if not (-180 <= min_lon <= max_lon <= 180 and -90 <= min_lat <= max_lat <= 90):
        raise ma.ValidationError("bbox corners are out of range or in the wrong order.")
    return min_lon, min_lat, max_lon, max_lat


class BBox(ma.fields.String):
    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        return parse_bbox(super()._deserialize(value, attr, data, **kwargs))


class AreaQueryArgsSchema(CursorArgsSchema):
    level = ma.fields.String(validate=ma.validate.OneOf(LEVELS))
    parent = area_code(metadata={"description": "Only the children of this area"})
    bbox = BBox(
        metadata={
            "description": "min_lon,min_lat,max_lon,max_lat (WGS84)",
            "example": "113.5,23.5,113.7,23.7",
        }
    )
    geometry = ma.fields.Boolean(
        load_default=True, metadata={"description": "Include boundaries (false: lighter)"}
    )


class AreaArgsSchema(ma.Schema):
    geometry = ma.fields.Boolean(
        load_default=True, metadata={"description": "Include the boundary (false: names and codes only)"}
    )


class ChildrenArgsSchema(CursorArgsSchema, AreaArgsSchema):
    pass


class AreaCreateSchema(ma.Schema):
    code = area_code(required=True)
    level = ma.fields.String(
        validate=ma.validate.OneOf(LEVELS), metadata={"description": "Optional: the code's length decides it"}
    )
    name = Text(required=True, min_length=1, max_length=100)
    kind = ma.fields.String(validate=ma.validate.OneOf(GRID_KINDS), allow_none=True)
    geometry = Geometry(required=True)
    crs = ma.fields.String(load_default="wgs84", validate=ma.validate.OneOf(SUPPORTED_CRS))


class AreaUpdateSchema(ma.Schema):
    name = Text(min_length=1, max_length=100)
    kind = ma.fields.String(validate=ma.validate.OneOf(GRID_KINDS))
    geometry = Geometry()
    crs = ma.fields.String(load_default="wgs84", validate=ma.validate.OneOf(SUPPORTED_CRS))

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not {"name", "kind", "geometry"} & data.keys():
            raise ma.ValidationError("Give at least one of name, kind, geometry.", "_schema")


class AreaRefSchema(ma.Schema):
    code = ma.fields.String()
    level = ma.fields.String()
    name = ma.fields.String()


class AreaPropertiesSchema(ma.Schema):
    code = ma.fields.String()
    level = ma.fields.String()
    name = ma.fields.String()
    parent = ma.fields.String(attribute="parent_code", allow_none=True)
    kind = ma.fields.String(allow_none=True)
    boundary_version = ma.fields.Integer(
        attribute="id", metadata={"description": "Id of this boundary version"}
    )
    valid_from = ma.fields.AwareDateTime()
    valid_to = ma.fields.AwareDateTime(allow_none=True)
    parents = ma.fields.List(
        ma.fields.Nested(AreaRefSchema), metadata={"description": "District, town, village above (top first)"}
    )


class AreaFeatureSchema(ma.Schema):
    """An area as a GeoJSON Feature."""

    type = ma.fields.Constant("Feature")
    id = ma.fields.String()
    geometry = Geometry(allow_none=True)
    properties = ma.fields.Nested(AreaPropertiesSchema)


class AreaCollectionSchema(ma.Schema):
    type = ma.fields.Constant("FeatureCollection")
    features = ma.fields.List(ma.fields.Nested(AreaFeatureSchema))
    next_cursor = ma.fields.String(allow_none=True)


class LookupArgsSchema(ma.Schema):
    lon = ma.fields.Float(required=True, validate=ma.validate.Range(-180, 180))
    lat = ma.fields.Float(required=True, validate=ma.validate.Range(-90, 90))
    crs = ma.fields.String(load_default="wgs84", validate=ma.validate.OneOf(SUPPORTED_CRS))
    accuracy_m = ma.fields.Float(validate=ma.validate.Range(0, 100_000))


class PointSchema(ma.Schema):
    type = ma.fields.Constant("Point")
    coordinates = ma.fields.List(ma.fields.Float())


class LookupSchema(ma.Schema):
    location = ma.fields.Nested(PointSchema, metadata={"description": "The point in WGS84"})
    method = ma.fields.String(metadata={"description": "contains, nearest or unassigned"})
    distance_m = ma.fields.Float(allow_none=True)
    boundary_version = ma.fields.Integer(allow_none=True)
    grid = ma.fields.Nested(AreaRefSchema, allow_none=True)
    village = ma.fields.Nested(AreaRefSchema, allow_none=True)
    town = ma.fields.Nested(AreaRefSchema, allow_none=True)
    district = ma.fields.Nested(AreaRefSchema, allow_none=True)
