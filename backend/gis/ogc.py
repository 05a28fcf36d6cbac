"""OGC API - Features at /ogc: Part 1 (Core, GeoJSON, OpenAPI 3.0) and Part 2 (CRS by reference).

Links are absolute (GDAL before 3.9 and QGIS resolve relative ones wrongly); an `api_key` the
caller put in the query string is carried into every link so clients that cannot set headers
can follow them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

import flask
from flask.views import MethodView

from backend.auth import context
from backend.errors import DomainError, NotFound
from backend.gis import openapi, params, registry, service
from backend.gis.registry import Collection
from backend.replica import get_read_session

GEOJSON = "application/geo+json"
JSON = "application/json"
OPENAPI_JSON = "application/vnd.oai.openapi+json;version=3.0"
SCHEMA_JSON = "application/schema+json"
HTML = "text/html"

CONFORMANCE = [
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/core",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/geojson",
    "http://www.opengis.net/spec/ogcapi-features-1/1.0/conf/oas30",
    "http://www.opengis.net/spec/ogcapi-features-2/1.0/conf/crs",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/queryables",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/filter",
    "http://www.opengis.net/spec/ogcapi-features-3/1.0/conf/features-filter",
    "http://www.opengis.net/spec/cql2/1.0/conf/cql2-text",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-cql2",
    "http://www.opengis.net/spec/cql2/1.0/conf/advanced-comparison-operators",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions",
    "http://www.opengis.net/spec/cql2/1.0/conf/basic-spatial-functions-plus",
]
GREGORIAN = "http://www.opengis.net/def/uom/ISO-8601/0/Gregorian"
PLAIN_PARAMETERS = ("f", "api_key")

bp = flask.Blueprint("ogc", __name__, url_prefix="/ogc")


def route_on(blueprint: flask.Blueprint, *rules: str):  # type: ignore[no-untyped-def]
    """Register a MethodView on a plain Flask blueprint (which takes functions)."""

    def register(view: type[MethodView]) -> type[MethodView]:
        view_func = view.as_view(view.__name__.lower())
        for rule in rules:
            blueprint.add_url_rule(rule, view_func=view_func)
        return view

    return register


def route(*rules: str):  # type: ignore[no-untyped-def]
    return route_on(bp, *rules)


class InvalidParameter(DomainError):
    """A bad query parameter: 400, as OGC API - Features Part 1 requires."""

    status = 400
    title = "Invalid parameter"
    slug = "invalid-parameter"

    def __init__(self, name: str, detail: str, position: int | None = None):
        where: dict[str, Any] = {} if position is None else {"position": position}
        super().__init__(detail, code="InvalidParameterValue", description=detail, parameter=name, **where)


def _connection_parameters() -> set[str]:
    """What a client may have put in its connection URL for the items (GDAL repeats the
    query of `OAPIF:url?...` on every request): accepted and ignored on the other resources."""
    return {*params.ITEMS_PARAMETERS, *(f.name for c in registry.collections() for f in c.filters)}


def _check(allowed: Iterable[str]) -> dict[str, str]:
    allowed = set(allowed)
    args = {
        name: values
        for name, values in flask.request.args.to_dict(flat=False).items()
        if name in allowed or name not in _connection_parameters()
    }
    try:
        values = params.single_values(args, allowed)
    except params.ParameterError as error:
        raise InvalidParameter(error.name, str(error)) from error
    if values.get("f", "json") not in params.FORMATS:
        raise InvalidParameter("f", f"f must be one of {', '.join(params.FORMATS)}.")
    return values


def root() -> str:
    return flask.request.url_root.rstrip("/") + "/ogc"


def href(path: str, query: list[tuple[str, str]] | None = None) -> str:
    """An absolute link, carrying the caller's api_key query parameter along."""
    pairs = list(query or [])
    key = flask.request.args.get(context.QUERY_KEY)
    if key and not any(name == context.QUERY_KEY for name, _ in pairs):
        pairs.append((context.QUERY_KEY, key))
    return root() + path + ("?" + urlencode(pairs) if pairs else "")


def link(
    rel: str, path: str, media_type: str, title: str, query: list[tuple[str, str]] | None = None
) -> dict[str, str]:
    return {"href": href(path, query), "rel": rel, "type": media_type, "title": title}


def _json(
    body: Any, media_type: str = JSON, status: int = 200, headers: dict[str, str] | None = None
) -> flask.Response:
    response = flask.current_app.response_class(flask.json.dumps(body), status=status, mimetype=media_type)
    response.headers.update(headers or {})
    return response


def _collection(collection_id: str) -> Collection:
    collection = registry.get(collection_id)
    if collection is None:
        raise NotFound(f"No collection {collection_id}.")
    return collection


@route("", "/")
class Landing(MethodView):
    def get(self) -> flask.Response:
        """The landing page: links to the API definition, conformance and the collections."""
        _check(PLAIN_PARAMETERS)
        return _json(
            {
                "title": "Wangge (网格) OGC API - Features",
                "description": "Areas (districts, towns, villages, grids) and events of grid-based "
                "community governance, for GIS clients.",
                "links": [
                    link("self", "", JSON, "This document"),
                    link("service-desc", "/api", OPENAPI_JSON, "The API definition (OpenAPI 3.0)"),
                    link("service-doc", "/docs", HTML, "The layers, their fields and filters"),
                    link("conformance", "/conformance", JSON, "Conformance classes"),
                    link(
                        "http://www.opengis.net/def/rel/ogc/1.0/conformance",
                        "/conformance",
                        JSON,
                        "Conformance classes",
                    ),
                    link("data", "/collections", JSON, "The collections"),
                    link(
                        "http://www.opengis.net/def/rel/ogc/1.0/data", "/collections", JSON, "The collections"
                    ),
                ],
            }
        )


@route("/docs")
class ServiceDoc(MethodView):
    def get(self) -> flask.Response:
        """A page for people: each layer with its fields, their types and its filters."""
        _check(PLAIN_PARAMETERS)
        return flask.current_app.response_class(openapi.service_doc(root()), mimetype=HTML)


@route("/conformance")
class Conformance(MethodView):
    def get(self) -> flask.Response:
        """The conformance classes implemented."""
        _check(PLAIN_PARAMETERS)
        return _json({"conformsTo": CONFORMANCE})


@route("/api")
class ApiDefinition(MethodView):
    def get(self) -> flask.Response:
        """This API's OpenAPI 3.0 definition, generated from the collection registry."""
        _check(PLAIN_PARAMETERS)
        return _json(openapi.document(root()), OPENAPI_JSON)


def _iso(moment: datetime | None) -> str | None:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z") if moment else None


def _carried() -> list[tuple[str, str]]:
    """The connection URL's `datetime`, carried into the items links (it chooses the period of
    layers such as grid_closure, also for clients that do not repeat the URL's query)."""
    value = flask.request.args.get("datetime")
    return [("datetime", value)] if value else []


def collection_document(collection: Collection, actor: Any) -> dict[str, Any]:
    extent = service.extent(get_read_session(), collection, actor)
    path = f"/collections/{collection.id}"
    body: dict[str, Any] = {
        "id": collection.id,
        "title": collection.title,
        "description": collection.description,
        "itemType": "feature",
        "links": [
            link("self", path, JSON, "This collection"),
            link("items", path + "/items", GEOJSON, "The features", _carried()),
            # GDAL reads `describedBy` with this media type to type the layer's fields.
            link("describedBy", path + "/schema", SCHEMA_JSON, "The features' JSON Schema"),
            link("http://www.opengis.net/def/rel/ogc/1.0/schema", path + "/schema", SCHEMA_JSON, "Schema"),
            link(
                "http://www.opengis.net/def/rel/ogc/1.0/queryables",
                path + "/queryables",
                SCHEMA_JSON,
                "Queryables",
            ),
            # The draft's name and media type, which GDAL 3.6 looks for before filtering on
            # the server.
            link("queryables", path + "/queryables", JSON, "Queryables"),
        ],
        "extent": {
            "temporal": {"interval": [[_iso(extent.start), _iso(extent.end)]], "trs": GREGORIAN},
        },
        "crs": list(params.SUPPORTED_CRS),
        "storageCrs": params.CRS84,
    }
    if extent.bbox is not None:
        body["extent"]["spatial"] = {"bbox": [list(extent.bbox)], "crs": params.CRS84}
    return body


@route("/collections")
class Collections(MethodView):
    def get(self) -> flask.Response:
        """The collections this caller may read."""
        _check(PLAIN_PARAMETERS)
        actor = context.caller(anonymous_ok=True)
        shown = [c for c in registry.collections() if actor is not None or c.anonymous]
        return _json(
            {
                "links": [link("self", "/collections", JSON, "The collections")],
                "collections": [collection_document(c, actor) for c in shown],
            }
        )


@route("/collections/<string:collection_id>")
class CollectionView(MethodView):
    def get(self, collection_id: str) -> flask.Response:
        """One collection: its extent, CRSs and links."""
        collection = _collection(collection_id)
        actor = context.caller(anonymous_ok=collection.anonymous)
        _check(PLAIN_PARAMETERS)
        return _json(collection_document(collection, actor))


@route("/collections/<string:collection_id>/queryables")
class Queryables(MethodView):
    def get(self, collection_id: str) -> flask.Response:
        """The collection's queryables as a JSON Schema (OGC API - Features Part 3)."""
        collection = _collection(collection_id)
        context.caller(anonymous_ok=collection.anonymous)
        _check(PLAIN_PARAMETERS)
        url = root() + f"/collections/{collection.id}/queryables"
        body = openapi.queryables(collection, url)
        # Clients of the draft (GDAL 3.6) ask for application/json and read a `queryables` list.
        media_type = flask.request.accept_mimetypes.best_match([SCHEMA_JSON, JSON], default=SCHEMA_JSON)
        if media_type == JSON:
            body["queryables"] = [{"id": name} for name in body["properties"]]
        response = _json(body, media_type)
        response.vary.add("Accept")
        return response


@route("/collections/<string:collection_id>/schema")
class FeatureSchema(MethodView):
    def get(self, collection_id: str) -> flask.Response:
        """The JSON Schema of the collection's features, with each property's type."""
        collection = _collection(collection_id)
        context.caller(anonymous_ok=collection.anonymous)
        _check(PLAIN_PARAMETERS)
        url = root() + f"/collections/{collection.id}/schema"
        return _json(openapi.feature_schema(collection, url), SCHEMA_JSON)


def _items_query(collection: Collection) -> params.ItemsQuery:
    try:
        return params.items_query(collection, flask.request.args.to_dict(flat=False))
    except params.ParameterError as error:
        raise InvalidParameter(error.name, str(error), error.position) from error


# Each `next` link asks for a page this many times larger (up to the maximum): a client that
# starts small walks a whole layer in few requests. GDAL 3.6 always asks for 10 a page and
# reads no limit from the API definition, but it follows `next` links as they are.
PAGE_GROWTH = 10


def _page_link(
    rel: str, title: str, collection: Collection, key: str, value: str, limit: int | None = None
) -> dict[str, str]:
    dropped = {"after", "before", "offset", context.QUERY_KEY, *(["limit"] if limit else [])}
    query = [(name, v) for name, v in flask.request.args.items(multi=True) if name not in dropped]
    if limit:
        query.append(("limit", str(limit)))
    return link(rel, f"/collections/{collection.id}/items", GEOJSON, title, [*query, (key, value)])


@route("/collections/<string:collection_id>/items")
class Items(MethodView):
    def get(self, collection_id: str) -> flask.Response:
        """Features of a collection, a page at a time in id order."""
        collection = _collection(collection_id)
        actor = context.caller(anonymous_ok=collection.anonymous)
        query = _items_query(collection)
        session = get_read_session()
        lat_lon = query.crs in params.LAT_LON
        page = service.page(
            session,
            collection,
            query.selection,
            actor,
            limit=query.limit,
            after=query.after,
            before=query.before,
            offset=query.offset,
            lat_lon=lat_lon,
        )
        self_query = [(n, v) for n, v in flask.request.args.items(multi=True) if n != context.QUERY_KEY]
        links = [
            link("self", f"/collections/{collection.id}/items", GEOJSON, "This page", self_query),
            link("collection", f"/collections/{collection.id}", JSON, "The collection"),
        ]
        if page.has_next and page.last_id is not None:
            larger = min(params.MAX_LIMIT, query.limit * PAGE_GROWTH)
            links.append(_page_link("next", "Next page", collection, "after", page.last_id, larger))
        if page.has_previous and page.first_id is not None:
            links.append(_page_link("prev", "Previous page", collection, "before", page.first_id))
        head: dict[str, Any] = {"type": "FeatureCollection"}
        # Counting costs more than a page: only the first page says how many match (GDAL
        # reads it there), later ones leave numberMatched out, as Part 1 allows.
        if query.after is None and query.before is None and not query.offset:
            head["numberMatched"] = service.count(session, collection, query.selection, actor)
        head.update(numberReturned=len(page.features), timeStamp=_iso(datetime.now(UTC)), links=links)
        # The features are already JSON text from the database: splice them in.
        text = flask.json.dumps(head)[:-1] + ',"features":[' + ",\n".join(page.features) + "]}"
        return flask.current_app.response_class(
            text, mimetype=GEOJSON, headers={"Content-Crs": f"<{query.crs}>"}
        )


@route("/collections/<string:collection_id>/items/<string:feature_id>")
class Item(MethodView):
    def get(self, collection_id: str, feature_id: str) -> flask.Response:
        """One feature by id."""
        collection = _collection(collection_id)
        actor = context.caller(anonymous_ok=collection.anonymous)
        values = _check(("crs", *PLAIN_PARAMETERS))
        try:
            crs = params.parse_crs(values.get("crs", params.CRS84))
        except ValueError as error:
            raise InvalidParameter("crs", str(error)) from error
        key = params.parse_feature_id(collection, feature_id)
        text = None
        if key is not None:
            text = service.feature(get_read_session(), collection, key, actor, lat_lon=crs in params.LAT_LON)
        if text is None:
            raise NotFound(f"No feature {feature_id} in {collection.id}.")
        links = [
            link("self", f"/collections/{collection.id}/items/{feature_id}", GEOJSON, "This feature"),
            link("collection", f"/collections/{collection.id}", JSON, "The collection"),
        ]
        text = text[:-1] + ',"links":' + flask.json.dumps(links) + "}"
        return flask.current_app.response_class(text, mimetype=GEOJSON, headers={"Content-Crs": f"<{crs}>"})
