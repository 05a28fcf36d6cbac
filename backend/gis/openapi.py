"""The OpenAPI 3.0 definition of /ogc, generated from the collection registry.

Each collection gets its own paths, so clients (GDAL reads the document for the parameters of
`/collections/{id}/items`) see its filters and feature properties.
"""

from __future__ import annotations

from html import escape
from typing import Any

from backend.gis import params, registry
from backend.gis.registry import Collection, Property

PROBLEM = {"$ref": "#/components/responses/Problem"}
JSON_TYPE = {
    "string": {"type": "string"},
    "integer": {"type": "integer"},
    "number": {"type": "number"},
    "boolean": {"type": "boolean"},
    "date-time": {"type": "string", "format": "date-time"},
}


# The items' own parameters, each described in PARAMETERS (the key is a security scheme).
ITEMS_PARAMETERS = tuple(p for p in params.ITEMS_PARAMETERS if p != "api_key")


def _json(
    schema: dict[str, Any], media_type: str = "application/json", description: str = "OK"
) -> dict[str, Any]:
    return {"description": description, "content": {media_type: {"schema": schema}}}


def _property(prop: Property) -> dict[str, Any]:
    schema = {**JSON_TYPE[prop.type], "nullable": True}
    if prop.description:
        schema["description"] = prop.description
    return schema


def _feature_schema(collection: Collection) -> dict[str, Any]:
    id_schema: dict[str, Any] = {"type": "string", "pattern": f"^({collection.id_pattern})$"}
    if collection.id_type == "uuid":
        id_schema = {"type": "string", "format": "uuid"}
    return {
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": id_schema,
            "geometry": {"$ref": "#/components/schemas/Geometry"},
            "properties": {
                "type": "object",
                "properties": {p.name: _property(p) for p in collection.properties},
            },
            "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
        },
    }


JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def _json_schema_property(prop: Property) -> dict[str, Any]:
    # One `type`, not ["string", "null"]: GDAL (3.6) only reads a single type; every property
    # may be null, which is why none is listed as required.
    schema: dict[str, Any] = {"title": prop.name, **JSON_TYPE[prop.type]}
    if prop.description:
        schema["description"] = prop.description
    return schema


def _id_property(collection: Collection) -> dict[str, Any]:
    schema: dict[str, Any] = {"title": "id", "type": "string", "x-ogc-role": "id"}
    if collection.id_type == "uuid":
        schema["format"] = "uuid"
    else:
        schema["pattern"] = f"^({collection.id_pattern})$"
    return schema


def _geometry_property(collection: Collection) -> dict[str, Any]:
    return {
        "title": "geometry",
        "format": f"geometry-{collection.geometry_type.lower()}",
        "x-ogc-role": "primary-geometry",
    }


def queryables(collection: Collection, url: str) -> dict[str, Any]:
    """The collection's queryables (OGC API - Features Part 3) as a JSON Schema, at `url`."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": url,
        "type": "object",
        "title": collection.title,
        "properties": {
            "id": _id_property(collection),
            "geometry": _geometry_property(collection),
            **{p.name: _json_schema_property(p) for p in collection.properties},
        },
        "additionalProperties": False,
    }


def feature_schema(collection: Collection, url: str) -> dict[str, Any]:
    """A JSON Schema of the collection's GeoJSON features (its `describedBy` link), at `url`."""
    return {
        "$schema": JSON_SCHEMA_DIALECT,
        "$id": url,
        "title": collection.title,
        "type": "object",
        "required": ["type", "geometry", "properties"],
        "properties": {
            "type": {"type": "string", "enum": ["Feature"]},
            "id": _id_property(collection),
            "geometry": {**_geometry_property(collection), "type": "object"},
            "properties": {
                "type": "object",
                "properties": {p.name: _json_schema_property(p) for p in collection.properties},
                "additionalProperties": False,
            },
        },
    }


def _collection_paths(collection: Collection) -> dict[str, Any]:
    name = collection.id
    feature = f"#/components/schemas/{name}Feature"
    filters = [
        {
            "name": f.name,
            "in": "query",
            "required": False,
            "description": f.description,
            "schema": {
                "type": "string",
                **({"enum": list(f.enum)} if f.enum else {}),
                **({"pattern": f"^({f.pattern})$"} if f.pattern else {}),
            },
        }
        for f in collection.filters
    ]
    feature_id = {
        "name": "featureId",
        "in": "path",
        "required": True,
        "description": "The feature's id",
        "schema": {"type": "string", "pattern": f"^({collection.id_pattern})$"},
    }
    tag = [name]
    errors = {"400": PROBLEM, "401": PROBLEM, "404": PROBLEM}
    return {
        f"/collections/{name}": {
            "get": {
                "summary": f"Describe {collection.title}",
                "operationId": f"describe_{name}",
                "tags": tag,
                "parameters": [{"$ref": "#/components/parameters/f"}],
                "responses": {"200": _json({"$ref": "#/components/schemas/Collection"}), **errors},
            }
        },
        f"/collections/{name}/items": {
            "get": {
                "summary": f"Features of {collection.title}",
                "operationId": f"items_{name}",
                "description": collection.description,
                "tags": tag,
                "parameters": [
                    *({"$ref": f"#/components/parameters/{p}"} for p in ITEMS_PARAMETERS),
                    *filters,
                ],
                "responses": {
                    "200": _json(
                        {
                            "type": "object",
                            "required": ["type", "features"],
                            "properties": {
                                "type": {"type": "string", "enum": ["FeatureCollection"]},
                                "features": {"type": "array", "items": {"$ref": feature}},
                                "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
                                "timeStamp": {"type": "string", "format": "date-time"},
                                "numberMatched": {
                                    "type": "integer",
                                    "minimum": 0,
                                    "description": "On the first page only (without after, before or offset)",
                                },
                                "numberReturned": {"type": "integer", "minimum": 0},
                            },
                        },
                        "application/geo+json",
                        "The features",
                    ),
                    **errors,
                },
            }
        },
        **{
            f"/collections/{name}/{part}": {
                "get": {
                    "summary": f"{summary} of {collection.title}",
                    "operationId": f"{part}_{name}",
                    "tags": tag,
                    "parameters": [{"$ref": "#/components/parameters/f"}],
                    "responses": {
                        "200": {
                            "description": "A JSON Schema; the queryables also as application/json "
                            "with the draft's `queryables` list, to clients asking for that",
                            "content": {
                                media_type: {"schema": {"type": "object"}}
                                for media_type in (
                                    ("application/schema+json", "application/json")
                                    if part == "queryables"
                                    else ("application/schema+json",)
                                )
                            },
                        },
                        **errors,
                    },
                }
            }
            for part, summary in (("queryables", "Queryables"), ("schema", "The feature schema"))
        },
        f"/collections/{name}/items/{{featureId}}": {
            "get": {
                "summary": f"One feature of {collection.title}",
                "operationId": f"item_{name}",
                "tags": tag,
                "parameters": [
                    feature_id,
                    {"$ref": "#/components/parameters/crs"},
                    {"$ref": "#/components/parameters/f"},
                ],
                "responses": {
                    "200": _json({"$ref": feature}, "application/geo+json", "The feature"),
                    **errors,
                },
            }
        },
    }


PARAMETERS: dict[str, Any] = {
    "limit": {
        "name": "limit",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": f"Features per page, {params.DEFAULT_LIMIT} unless given; above "
        f"{params.MAX_LIMIT} the maximum is used",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": params.MAX_LIMIT,
            "default": params.DEFAULT_LIMIT,
        },
    },
    "bbox": {
        "name": "bbox",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": "Features intersecting this box: min x, min y, max x, max y in the "
        "axis order of bbox-crs (CRS84: longitude first)",
        "schema": {"type": "array", "minItems": 4, "maxItems": 6, "items": {"type": "number"}},
    },
    "bbox-crs": {
        "name": "bbox-crs",
        "in": "query",
        "required": False,
        "schema": {
            "type": "string",
            "format": "uri",
            "enum": list(params.SUPPORTED_CRS),
            "default": params.CRS84,
        },
    },
    "crs": {
        "name": "crs",
        "in": "query",
        "required": False,
        "description": "The CRS of the returned coordinates; EPSG:4490 (CGCS2000) and "
        "EPSG:4326 put latitude first",
        "schema": {
            "type": "string",
            "format": "uri",
            "enum": list(params.SUPPORTED_CRS),
            "default": params.CRS84,
        },
    },
    "datetime": {
        "name": "datetime",
        "in": "query",
        "required": False,
        "style": "form",
        "explode": False,
        "description": "An RFC 3339 date-time or date (a whole day, Beijing time) or an "
        "interval of them (start/end, `..` for open); see each collection for what it selects",
        "schema": {"type": "string"},
    },
    "offset": {
        "name": "offset",
        "in": "query",
        "required": False,
        "description": "Skip this many features (the next link then pages by id)",
        "schema": {"type": "integer", "minimum": 0, "maximum": params.MAX_OFFSET, "default": 0},
    },
    "after": {
        "name": "after",
        "in": "query",
        "required": False,
        "description": "Features after this id (the next link sets it)",
        "schema": {"type": "string"},
    },
    "before": {
        "name": "before",
        "in": "query",
        "required": False,
        "description": "Features before this id (the prev link sets it)",
        "schema": {"type": "string"},
    },
    "filter": {
        "name": "filter",
        "in": "query",
        "required": False,
        "description": "A CQL2 text filter on the collection's queryables: comparisons, LIKE, "
        "BETWEEN, IN, IS NULL, AND/OR/NOT and S_INTERSECTS(geometry, BBOX(...) or WKT), e.g. "
        "`status = 'closed' AND received_at >= TIMESTAMP('2026-01-01T00:00:00Z')`",
        "schema": {"type": "string", "maxLength": 4000},
    },
    "filter-lang": {
        "name": "filter-lang",
        "in": "query",
        "required": False,
        "description": "cql2-text; cql-text (its draft name, which GDAL 3.6 sends) reads the same",
        "schema": {"type": "string", "enum": list(params.FILTER_LANGUAGES), "default": "cql2-text"},
    },
    "filter-crs": {
        "name": "filter-crs",
        "in": "query",
        "required": False,
        "description": "The CRS of the filter's coordinates; EPSG:4490 and EPSG:4326 put latitude first",
        "schema": {
            "type": "string",
            "format": "uri",
            "enum": list(params.SUPPORTED_CRS),
            "default": params.CRS84,
        },
    },
    "f": {
        "name": "f",
        "in": "query",
        "required": False,
        "schema": {"type": "string", "enum": list(params.FORMATS)},
    },
}

SCHEMAS: dict[str, Any] = {
    "Link": {
        "type": "object",
        "required": ["href", "rel"],
        "properties": {k: {"type": "string"} for k in ("href", "rel", "type", "title")},
    },
    "Geometry": {
        "type": "object",
        "nullable": True,
        "required": ["type", "coordinates"],
        "properties": {
            "type": {
                "type": "string",
                "enum": ["Point", "MultiPoint", "LineString", "MultiLineString", "Polygon", "MultiPolygon"],
            },
            "coordinates": {"type": "array", "items": {}},
        },
    },
    "LandingPage": {
        "type": "object",
        "required": ["links"],
        "properties": {
            "title": {"type": "string"},
            "description": {"type": "string"},
            "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
        },
    },
    "Conformance": {
        "type": "object",
        "required": ["conformsTo"],
        "properties": {"conformsTo": {"type": "array", "items": {"type": "string"}}},
    },
    "Collection": {
        "type": "object",
        "required": ["id", "links"],
        "properties": {
            "id": {"type": "string"},
            "title": {"type": "string"},
            "description": {"type": "string"},
            "itemType": {"type": "string"},
            "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
            "extent": {"type": "object"},
            "crs": {"type": "array", "items": {"type": "string"}},
            "storageCrs": {"type": "string"},
        },
    },
    "Collections": {
        "type": "object",
        "required": ["links", "collections"],
        "properties": {
            "links": {"type": "array", "items": {"$ref": "#/components/schemas/Link"}},
            "collections": {"type": "array", "items": {"$ref": "#/components/schemas/Collection"}},
        },
    },
    "Problem": {
        "type": "object",
        "description": "RFC 9457 problem details; `code` and `description` as OGC exceptions",
        "properties": {
            "type": {"type": "string"},
            "title": {"type": "string"},
            "status": {"type": "integer"},
            "detail": {"type": "string"},
            "code": {"type": "string"},
            "description": {"type": "string"},
        },
    },
}


def document(server_url: str) -> dict[str, Any]:
    """The whole definition, with `server_url` (absolute, ending in /ogc) as its server."""
    collections = list(registry.collections())
    public: list[dict[str, Any]] = []
    plain = [{"$ref": "#/components/parameters/f"}]
    paths: dict[str, Any] = {
        "/": {
            "get": {
                "summary": "Landing page",
                "operationId": "landing",
                "tags": ["server"],
                "security": public,
                "parameters": plain,
                "responses": {"200": _json({"$ref": "#/components/schemas/LandingPage"}), "400": PROBLEM},
            }
        },
        "/docs": {
            "get": {
                "summary": "The layers, their fields and filters, for people",
                "operationId": "service_doc",
                "tags": ["server"],
                "security": public,
                "parameters": plain,
                "responses": {"200": _json({"type": "string"}, "text/html"), "400": PROBLEM},
            }
        },
        "/conformance": {
            "get": {
                "summary": "Conformance classes",
                "operationId": "conformance",
                "tags": ["server"],
                "security": public,
                "parameters": plain,
                "responses": {"200": _json({"$ref": "#/components/schemas/Conformance"}), "400": PROBLEM},
            }
        },
        "/api": {
            "get": {
                "summary": "This API definition",
                "operationId": "api",
                "tags": ["server"],
                "security": public,
                "parameters": plain,
                "responses": {
                    "200": _json({"type": "object"}, "application/vnd.oai.openapi+json;version=3.0"),
                    "400": PROBLEM,
                },
            }
        },
        "/collections": {
            "get": {
                "summary": "The collections",
                "operationId": "collections",
                "tags": ["server"],
                "parameters": plain,
                "responses": {
                    "200": _json({"$ref": "#/components/schemas/Collections"}),
                    "400": PROBLEM,
                    "401": PROBLEM,
                },
            }
        },
    }
    # The generic items path too: GDAL reads the limit's default and maximum there.
    paths["/collections/{collectionId}/items"] = {
        "get": {
            "summary": "Features of a collection",
            "operationId": "items",
            "tags": ["server"],
            "parameters": [
                {
                    "name": "collectionId",
                    "in": "path",
                    "required": True,
                    "schema": {"type": "string", "enum": [c.id for c in collections]},
                },
                *({"$ref": f"#/components/parameters/{p}"} for p in ITEMS_PARAMETERS),
            ],
            "responses": {
                "200": _json({"type": "object"}, "application/geo+json", "The features"),
                "400": PROBLEM,
                "401": PROBLEM,
                "404": PROBLEM,
            },
        }
    }
    schemas = dict(SCHEMAS)
    for collection in collections:
        paths.update(_collection_paths(collection))
        schemas[f"{collection.id}Feature"] = _feature_schema(collection)
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Wangge (网格) OGC API - Features",
            "version": "1.0.0",
            "description": "Areas and events for GIS clients (QGIS, ArcGIS, GDAL). Send an API "
            "key in X-API-Key, `Authorization: ApiKey <key>` or the api_key query parameter.",
        },
        "servers": [{"url": server_url}],
        "security": [{"apiKeyHeader": []}, {"apiKeyQuery": []}, {"bearerAuth": []}],
        "tags": [{"name": "server"}, *({"name": c.id, "description": c.title} for c in collections)],
        "paths": paths,
        "components": {
            "parameters": PARAMETERS,
            "schemas": schemas,
            "responses": {
                "Problem": _json(
                    {"$ref": "#/components/schemas/Problem"}, "application/problem+json", "An error"
                )
            },
            "securitySchemes": {
                "apiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "apiKeyQuery": {"type": "apiKey", "in": "query", "name": "api_key"},
                "bearerAuth": {"type": "http", "scheme": "bearer"},
            },
        },
    }


def service_doc(server_url: str) -> str:
    """The service-doc page: every layer's fields with their types, and its filters."""
    parts = [
        "<!doctype html><html lang=en><meta charset=utf-8>",
        "<title>Wangge OGC API - Features</title><h1>Wangge (网格) OGC API - Features</h1>",
        f"<p>Open <code>{escape(server_url)}</code> in QGIS or GDAL (<code>OAPIF:{escape(server_url)}"
        "</code>); send an API key in X-API-Key or the api_key query parameter. The "
        f'<a href="{escape(server_url)}/api">OpenAPI definition</a> lists every parameter.</p>',
    ]
    for collection in registry.collections():
        parts.append(
            f"<h2 id={escape(collection.id)}>{escape(collection.id)}: {escape(collection.title)}</h2>"
        )
        parts.append(f"<p>{escape(collection.description)}</p><p><code>datetime</code>: ")
        parts.append(f"{escape(collection.temporal_description)}.</p><table><tr><th>field<th>type<th>")
        for prop in collection.properties:
            parts.append(f"<tr><td>{escape(prop.name)}<td>{prop.type}<td>{escape(prop.description)}")
        parts.append("</table>")
        if collection.filters:
            parts.append("<p>Filters: ")
            parts.append(
                ", ".join(
                    f"<code>{escape(f.name)}</code> ({escape(f.description)})" for f in collection.filters
                )
            )
            parts.append("</p>")
    return "".join(parts) + "\n"
