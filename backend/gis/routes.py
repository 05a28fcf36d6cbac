"""Whole-layer GeoJSON downloads (/api/v1/exports) and vector tiles (/tiles)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import flask
import flask_smorest
from flask.views import MethodView
from werkzeug.http import http_date

from backend.auth import context
from backend.auth.context import current_actor
from backend.common.blueprint import Blueprint
from backend.db import detach_session, get_session
from backend.errors import NotFound, ValidationFailed, field_error
from backend.gis import registry, schemas, service
from backend.gis.ogc import InvalidParameter, route_on
from backend.gis.params import Selection
from backend.gis.registry import Collection
from backend.load import expensive

GEOJSON = "application/geo+json"
MVT = "application/vnd.mapbox-vector-tile"
MAX_ZOOM = 22
# Part of every download's ETag: bump it when the way features are written changes.
FORMAT_VERSION = "1"
VARY = "Authorization, X-API-Key"


def _layer(layer: str) -> Collection:
    collection = registry.get(layer)
    if collection is None:
        raise NotFound(f"No layer {layer}.")
    return collection


def _selection(collection: Collection, args: dict[str, Any]) -> Selection:
    filters = {}
    errors = []
    for name, value in args.items():
        if name in ("bbox", "datetime", "crs"):
            continue
        definition = collection.filter(name)
        problem = (
            f"The {collection.id} layer has no filter {name}."
            if definition is None
            else definition.check(value)
        )
        if problem:
            errors.append(field_error(name, problem, location="query"))
        else:
            filters[name] = value
    if errors:
        raise ValidationFailed("; ".join(e["message"] for e in errors), errors=errors)
    return Selection(bbox=args.get("bbox"), interval=args.get("datetime"), filters=filters)


def _feature_collection(name: str, batches: Iterator[list[str]]) -> Iterator[str]:
    """The FeatureCollection around the features, a batch per chunk."""
    head = '{"type":"FeatureCollection","name":' + flask.json.dumps(name) + ',"features":[\n'
    separator = ""
    for batch in batches:
        if batch:
            head += separator + ",\n".join(batch)
            separator = ",\n"
        yield head
        head = ""
    yield head + "\n]}\n"


def export_blueprint() -> Blueprint:
    """/api/v1/exports, documented with the layers and filters registered by the time it is built."""
    blp = Blueprint(
        "exports",
        __name__,
        url_prefix="/api/v1",
        description="Whole layers as GeoJSON files, for GIS clients and web maps",
    )

    @blp.route(
        "/exports/<string:layer>.geojson",
        parameters=[
            {
                "in": "path",
                "name": "layer",
                "required": True,
                "schema": {"type": "string", "enum": [c.id for c in registry.collections()]},
            }
        ],
    )
    @expensive
    class Export(MethodView):
        @blp.arguments(schemas.export_args_schema(), location="query")
        @blp.response(
            200,
            schemas.ExportSchema,
            content_type=GEOJSON,
            headers={
                "ETag": {
                    "description": "Changes whenever the layer's selected rows change",
                    "schema": {"type": "string"},
                },
                "Last-Modified": {
                    "description": "The latest change of a selected row's time columns",
                    "schema": {"type": "string"},
                },
            },
        )
        @blp.alt_response(
            304,
            description="Unchanged since the ETag sent in If-None-Match (or, without one, If-Modified-Since)",
        )
        def get(self, args: dict[str, Any], layer: str) -> flask.Response:
            """Download a whole layer as one RFC 7946 GeoJSON file, streamed"""
            return _export(args, layer)

    return blp


def _export(args: dict[str, Any], layer: str) -> flask.Response:
    collection = _layer(layer)
    selection = _selection(collection, args)
    actor = current_actor()
    crs = args["crs"]
    session = get_session()
    version = service.version(
        session, collection, selection, actor, salt=[crs, FORMAT_VERSION, *actor.cache_key()]
    )
    headers = {"ETag": version.etag, "Cache-Control": "private, no-cache", "Vary": VARY}
    if version.last_modified is not None:
        headers["Last-Modified"] = http_date(version.last_modified)
    if _unchanged(version):
        return flask.current_app.response_class(status=304, headers=headers)
    if crs == "gcj02":
        batches = service.stream_transformed(session, collection, selection, actor, crs)
    else:
        batches = service.stream(session, collection, selection, actor)
    # Run the query before answering, so a failure is an error response, not a cut file.
    first = next(batches, [])
    # The stream outlives the request's teardown: it takes the session, and the server
    # closes it with the response (also after a HEAD or a client that went away).
    detach_session()
    headers["Content-Disposition"] = f'attachment; filename="{collection.id}.geojson"'
    response = flask.current_app.response_class(
        flask.stream_with_context(_feature_collection(collection.id, _prepend(first, batches))),
        mimetype=GEOJSON,
        headers=headers,
    )
    response.call_on_close(session.close)
    return response


def _unchanged(version: service.Version) -> bool:
    """If-None-Match decides when sent (RFC 9110 13.2.2); otherwise If-Modified-Since."""
    request = flask.request
    if request.if_none_match:
        return request.if_none_match.contains_weak(version.etag.strip('"'))
    since = request.if_modified_since
    if since is None or version.last_modified is None:
        return False
    # HTTP dates have whole seconds.
    return version.last_modified.replace(microsecond=0) <= since


def _prepend(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


tiles_bp = flask.Blueprint("tiles", __name__, url_prefix="/tiles")


@route_on(tiles_bp, "/<string:layer>/<int:z>/<int:x>/<int:y>.mvt")
class Tile(MethodView):
    def get(self, layer: str, z: int, x: int, y: int) -> flask.Response:
        """A Mapbox vector tile built by PostGIS; 204 when the tile holds nothing."""
        collection = registry.get(layer)
        if collection is None or not collection.tiles:
            raise NotFound(f"No tile layer {layer}.")
        actor = context.caller(anonymous_ok=collection.anonymous)
        unknown = set(flask.request.args) - {context.QUERY_KEY}
        if unknown:
            name = sorted(unknown)[0]
            raise InvalidParameter(name, f"Unknown parameter {name!r}.")
        if not (z <= MAX_ZOOM and x < (1 << z) and y < (1 << z)):
            raise NotFound(f"No tile {z}/{x}/{y}: zoom goes to {MAX_ZOOM}, x and y below 2^z.")
        data = service.tile(get_session(), collection, z, x, y, actor)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        headers = {
            "Cache-Control": ("public" if actor is None else "private") + ", max-age=60",
            "ETag": f'"{etag}"',
            "Vary": VARY,
        }
        if not data:
            empty = flask.current_app.response_class(status=204, headers=headers)
            del empty.headers["Content-Type"]
            return empty
        if flask.request.if_none_match.contains_weak(etag):
            return flask.current_app.response_class(status=304, headers=headers)
        return flask.current_app.response_class(data, mimetype=MVT, headers=headers)


def register(api: flask_smorest.Api) -> None:
    """The downloads in the main OpenAPI document; /ogc and /tiles outside it."""
    from backend.gis.ogc import bp as ogc_bp

    api.register_blueprint(export_blueprint())
    app = api._app
    app.register_blueprint(ogc_bp)
    app.register_blueprint(tiles_bp)
