"""Whole-layer GeoJSON downloads (/api/v1/exports) and vector tiles (/tiles)."""

from __future__ import annotations

import gzip
import hashlib
import os
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import flask
import flask_smorest
import marshmallow as ma
from flask.views import MethodView
from werkzeug.http import http_date

from backend.auth import context
from backend.auth import service as auth
from backend.auth.context import current_actor
from backend.common.blueprint import Blueprint
from backend.config import settings
from backend.db import get_session
from backend.errors import NotFound, ValidationFailed, field_error
from backend.gis import registry, schemas, service
from backend.gis.ogc import InvalidParameter, route_on
from backend.gis.params import Selection
from backend.gis.registry import Collection
from backend.load import expensive
from backend.replica import get_read_session

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
        if name in ("bbox", "datetime", "crs", "api_key", "token"):
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
        @blp.alt_response(206, description="The byte range asked for in Range")
        @blp.alt_response(
            304,
            description="Unchanged since the ETag sent in If-None-Match (or, without one, If-Modified-Since)",
        )
        def get(self, args: dict[str, Any], layer: str) -> flask.Response:
            """Download a whole layer as one RFC 7946 GeoJSON file, by ranges too"""
            return _export(args, layer)

    @blp.route("/exports/links")
    class Links(MethodView):
        @blp.arguments(schemas.link_create_schema())
        @blp.response(201, schemas.LinkSchema)
        def post(self, args: dict[str, Any]) -> dict[str, Any]:
            """Mint a signed download URL that acts as you, for one layer, until it expires"""
            return _mint(args)

    return blp


def _mint(args: dict[str, Any]) -> dict[str, Any]:
    collection = _layer(args["layer"])
    filters: dict[str, str] = args["filters"]
    credentials = {"api_key", "token"} & set(filters)
    if credentials:
        name = sorted(credentials)[0]
        raise ValidationFailed(
            f"{name} is not a filter.", errors=[field_error(f"filters.{name}", "Not a filter.")]
        )
    try:
        loaded = schemas.export_args_schema()().load(filters)
    except ma.ValidationError as error:
        messages = error.normalized_messages()
        raise ValidationFailed(
            "Bad filters.",
            errors=[field_error(f"filters.{name}", "; ".join(map(str, m))) for name, m in messages.items()],
        ) from error
    _selection(collection, loaded)
    path = flask.url_for("exports.Export", layer=collection.id)
    query = sorted(filters.items())
    token, expires = auth.sign_link(
        get_session(), settings(), current_actor(), path, query, timedelta(seconds=args["lifetime_s"])
    )
    url = flask.request.url_root.rstrip("/") + path + "?" + urlencode([*query, (context.LINK_TOKEN, token)])
    return {"url": url, "layer": collection.id, "expires_at": expires}


def _export(args: dict[str, Any], layer: str) -> flask.Response:
    collection = _layer(layer)
    selection = _selection(collection, args)
    actor = current_actor()
    crs = args["crs"]
    session = get_read_session()
    version = service.version(
        session, collection, selection, actor, salt=[crs, FORMAT_VERSION, *actor.cache_key()]
    )
    headers = {"ETag": version.etag, "Cache-Control": "private, no-cache", "Vary": VARY}
    if version.last_modified is not None:
        headers["Last-Modified"] = http_date(version.last_modified)
    if _unchanged(version):
        return flask.current_app.response_class(status=304, headers=headers)
    path = _file(version, lambda: _batches(session, collection, selection, actor, crs), collection.id)
    # A whole file, so the answer has a Content-Length and serves byte ranges (206): GDAL's
    # /vsicurl/ and QGIS read a remote file by ranges.
    response = flask.send_file(
        path,
        mimetype=GEOJSON,
        as_attachment=True,
        download_name=f"{collection.id}.geojson",
        conditional=True,
        etag=version.etag.strip('"'),
        last_modified=version.last_modified,
    )
    response.headers.update(headers)
    response.headers["Content-Disposition"] = f'attachment; filename="{collection.id}.geojson"'
    return response


def _batches(
    session: Any, collection: Collection, selection: Selection, actor: Any, crs: str
) -> Iterator[list[str]]:
    if crs == "gcj02":
        return service.stream_transformed(session, collection, selection, actor, crs)
    return service.stream(session, collection, selection, actor)


# Built files are kept a while for the range requests that follow (and repeated downloads).
KEEP_FILES_S = 600


def _cache_dir() -> Path:
    # Per database: the ETag names a selection's content within one database.
    digest = hashlib.sha256(settings().database_url.encode()).hexdigest()[:16]
    directory = Path(tempfile.gettempdir()) / f"wangge-exports-{digest}"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _file(version: service.Version, batches: Callable[[], Iterator[list[str]]], name: str) -> Path:
    """The selection's GeoJSON file, named by its ETag (which covers the caller's scope, the
    CRS and the rows); written batch by batch in constant memory when not already there."""
    directory = _cache_dir()
    path = directory / (version.etag.strip('"') + ".geojson")
    now = time.time()
    if path.exists():
        os.utime(path)
        return path
    with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=directory, delete=False) as out:
        try:
            for chunk in _feature_collection(name, batches()):
                out.write(chunk)
        except BaseException:
            os.unlink(out.name)
            raise
    os.replace(out.name, path)
    for old in directory.iterdir():
        try:
            if old != path and now - old.stat().st_mtime > KEEP_FILES_S:
                old.unlink()
        except FileNotFoundError:
            pass
    return path


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


tiles_bp = flask.Blueprint("tiles", __name__, url_prefix="/tiles")


def _tile_layer(layer: str) -> tuple[Collection, auth.Actor | None]:
    """The tile layer and its caller (tiles take no parameters but the key)."""
    collection = registry.get(layer)
    if collection is None or not collection.tiles:
        raise NotFound(f"No tile layer {layer}.")
    actor = context.caller(anonymous_ok=collection.anonymous)
    unknown = set(flask.request.args) - {context.QUERY_KEY}
    if unknown:
        name = sorted(unknown)[0]
        raise InvalidParameter(name, f"Unknown parameter {name!r}.")
    return collection, actor


def _tile_cache(actor: auth.Actor | None) -> str:
    return ("public" if actor is None else "private") + ", max-age=60"


TILE_FIELD_TYPES = {"integer": "Number", "number": "Number", "boolean": "Boolean"}


@route_on(tiles_bp, "/<string:layer>.json")
class TileJson(MethodView):
    def get(self, layer: str) -> flask.Response:
        """TileJSON 3.0 of a tile layer: its URL template, zooms, bounds and fields."""
        collection, actor = _tile_layer(layer)
        extent = service.extent(get_session(), collection, actor)
        base = flask.request.url_root.rstrip("/")
        key = flask.request.args.get(context.QUERY_KEY)
        template = f"{base}/tiles/{collection.id}/{{z}}/{{x}}/{{y}}.mvt" + (
            "?" + urlencode([(context.QUERY_KEY, key)]) if key else ""
        )
        fields = {"id": "String: the feature's id (as in /ogc)"}
        for prop in collection.properties:
            if prop.in_tiles:
                kind = TILE_FIELD_TYPES.get(prop.type, "String")
                fields[prop.name] = f"{kind}: {prop.description}" if prop.description else kind
        points = collection.geometry_type == "Point"
        if points:
            fields["count"] = (
                f"Number: features in the cell; cells replace single features below zoom "
                f"{service.POINTS_FROM_ZOOM} and in tiles too full for them"
            )
        bounds = list(extent.bbox) if extent.bbox is not None else [-180.0, -85.0511, 180.0, 85.0511]
        centre_zoom = max(collection.tile_minzoom, service.POINTS_FROM_ZOOM if points else 10)
        body = {
            "tilejson": "3.0.0",
            "name": collection.id,
            "description": collection.title,
            "version": "1.0.0",
            "scheme": "xyz",
            "tiles": [template],
            "minzoom": collection.tile_minzoom,
            "maxzoom": MAX_ZOOM,
            "bounds": bounds,
            "center": [(bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2, centre_zoom],
            "vector_layers": [
                {
                    "id": collection.id,
                    "description": collection.description,
                    "minzoom": collection.tile_minzoom,
                    "maxzoom": MAX_ZOOM,
                    "fields": fields,
                }
            ],
        }
        return flask.current_app.response_class(
            flask.json.dumps(body),
            mimetype="application/json",
            headers={"Cache-Control": _tile_cache(actor), "Vary": VARY},
        )


@route_on(tiles_bp, "/<string:layer>/<int:z>/<int:x>/<int:y>.mvt")
class Tile(MethodView):
    def get(self, layer: str, z: int, x: int, y: int) -> flask.Response:
        """A Mapbox vector tile built by PostGIS; 204 when the tile holds nothing."""
        collection, actor = _tile_layer(layer)
        if not (z <= MAX_ZOOM and x < (1 << z) and y < (1 << z)):
            raise NotFound(f"No tile {z}/{x}/{y}: zoom goes to {MAX_ZOOM}, x and y below 2^z.")
        data = service.tile(get_read_session(), collection, z, x, y, actor)
        etag = hashlib.md5(data, usedforsecurity=False).hexdigest()
        headers = {
            "Cache-Control": _tile_cache(actor),
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


COMPRESSED_TYPES = frozenset(
    {"application/json", GEOJSON, "application/schema+json", "application/vnd.oai.openapi+json", MVT}
)
# Smaller bodies gain less than the header costs.
COMPRESS_ABOVE = 1024


def _compress(response: flask.Response) -> flask.Response:
    """gzip /ogc and /tiles answers held in memory, when the client takes gzip (downloads are
    files served by ranges, left plain)."""
    request = flask.request
    if not request.path.startswith(("/ogc", "/tiles")) or response.status_code != 200:
        return response
    if response.direct_passthrough or response.is_streamed or "Content-Encoding" in response.headers:
        return response
    response.vary.add("Accept-Encoding")
    if response.mimetype not in COMPRESSED_TYPES or not request.accept_encodings["gzip"]:
        return response
    data = response.get_data()
    if len(data) <= COMPRESS_ABOVE:
        return response
    response.set_data(gzip.compress(data, compresslevel=4))
    response.headers["Content-Encoding"] = "gzip"
    # The same content in another encoding: the validator becomes weak (RFC 9110 8.8.1).
    etag, weak = response.get_etag()
    if etag and not weak:
        response.set_etag(etag, weak=True)
    return response


def register(api: flask_smorest.Api) -> None:
    """The downloads in the main OpenAPI document; /ogc and /tiles outside it."""
    from backend.gis.ogc import bp as ogc_bp

    api.register_blueprint(export_blueprint())
    app = api._app
    app.register_blueprint(ogc_bp)
    app.register_blueprint(tiles_bp)
    app.after_request(_compress)
