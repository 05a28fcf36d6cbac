"""What the GeoJSON download takes and returns."""

from __future__ import annotations

from typing import Any

import marshmallow as ma

from backend.gis import params, registry


class _Parsed(ma.fields.String):
    """A string read by one of the shared parameter parsers."""

    def __init__(self, parse: Any, **kwargs: Any):
        self.parse = parse
        super().__init__(**kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        try:
            return self.parse(super()._deserialize(value, attr, data, **kwargs))
        except ValueError as error:
            raise ma.ValidationError(str(error)) from error


EXPORT_CRS = ("wgs84", "cgcs2000", "gcj02")


def _filter_fields() -> dict[str, ma.fields.Field]:
    """One optional string per filter name any layer takes; the route checks it fits the layer."""
    described: dict[str, dict[str, list[str]]] = {}
    for collection in registry.collections():
        for definition in collection.filters:
            layers = described.setdefault(definition.name, {})
            layers.setdefault(definition.description, []).append(collection.id)
    return {
        name: ma.fields.String(
            validate=ma.validate.Length(max=200),
            metadata={"description": "; ".join(f"{', '.join(ids)}: {text}" for text, ids in texts.items())},
        )
        for name, texts in described.items()
    }


def export_args_schema() -> type[ma.Schema]:
    """The download's query string, with the filters of the layers registered by now."""
    return ma.Schema.from_dict(
        {
            "bbox": _Parsed(
                params.parse_bbox,
                metadata={
                    "description": "min_lon,min_lat,max_lon,max_lat (WGS84): features intersecting it",
                    "example": "113.5,23.5,113.7,23.7",
                },
            ),
            "datetime": _Parsed(
                params.parse_datetime,
                metadata={
                    "description": "RFC 3339 date-time, date, or interval start/end (`..` for open): "
                    "boundary "
                    "versions in force then (areas), or received then (events)"
                },
            ),
            "crs": ma.fields.String(
                load_default="wgs84",
                validate=ma.validate.OneOf(EXPORT_CRS),
                metadata={
                    "description": "wgs84 (RFC 7946, default), cgcs2000 "
                    "(the same numbers) or gcj02 for Chinese web maps"
                },
            ),
            # Read by the credential parser before the arguments; named here so a URL with
            # the key in it (GDAL's /vsicurl/, QGIS) is not refused as an unknown field.
            "api_key": ma.fields.String(
                load_only=True,
                validate=ma.validate.Length(max=200),
                metadata={"description": "An API key, for clients that cannot send headers"},
            ),
            "token": ma.fields.String(
                load_only=True,
                validate=ma.validate.Length(max=4000),
                metadata={"description": "A signed link's token (POST /api/v1/exports/links)"},
            ),
            **_filter_fields(),
        },
        name="ExportArgs",
    )


class ExportFeatureSchema(ma.Schema):
    type = ma.fields.Constant("Feature")
    id = ma.fields.String()
    geometry = ma.fields.Dict(allow_none=True, metadata={"description": "GeoJSON geometry"})
    properties = ma.fields.Dict()


class ExportSchema(ma.Schema):
    """A whole layer as one RFC 7946 FeatureCollection."""

    type = ma.fields.Constant("FeatureCollection")
    name = ma.fields.String(metadata={"description": "The layer"})
    features = ma.fields.List(ma.fields.Nested(ExportFeatureSchema))


def link_create_schema() -> type[ma.Schema]:
    """What a signed layer link is minted for, with the layers registered by now."""
    return ma.Schema.from_dict(
        {
            "layer": ma.fields.String(
                required=True, validate=ma.validate.OneOf([c.id for c in registry.collections()])
            ),
            "filters": ma.fields.Dict(
                keys=ma.fields.String(validate=ma.validate.Length(max=50)),
                values=ma.fields.String(validate=ma.validate.Length(max=200)),
                load_default=dict,
                metadata={"description": "The download's query parameters (bbox, datetime, crs, filters)"},
            ),
            "lifetime_s": ma.fields.Integer(
                load_default=86_400,
                validate=ma.validate.Range(min=60, max=7 * 86_400),
                metadata={"description": "Seconds the link works: a minute to 7 days"},
            ),
        },
        name="LinkCreate",
    )


class LinkSchema(ma.Schema):
    url = ma.fields.String(metadata={"description": "The download, signed: no key needed"})
    layer = ma.fields.String()
    expires_at = ma.fields.DateTime()
