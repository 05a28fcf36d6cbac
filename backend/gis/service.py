"""Features, counts, extents, fingerprints and vector tiles, all built in SQL from the registry.

Each feature is written as GeoJSON text by PostgreSQL (`ST_AsGeoJSON` with counter-clockwise
exterior rings, properties by `json_build_object`), so Python only joins strings, and a whole
layer streams through a server-side cursor in constant memory.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import shapely
from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Select,
    SQLColumnExpression,
    Text,
    cast,
    exists,
    func,
    literal,
    or_,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import BIT
from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.gis import cql2
from backend.gis.params import Selection
from backend.gis.registry import Collection
from geo.crs import transform_geometry
from geo.geojson import geometry_to_geojson

# Coordinates to 7 decimals: about a centimetre, well below any boundary's accuracy.
PRECISION = 7
BATCH = 500
TILE_EXTENT = 4096
TILE_BUFFER = 64
WEB_MERCATOR_HALF = 20037508.342789244


def _text(value: str) -> ColumnElement[str]:
    return cast(literal(value), Text)


def conditions(
    collection: Collection, selection: Selection, actor: Actor | None
) -> list[ColumnElement[bool]]:
    """Everything that selects rows: the layer, the caller's scope, time, bbox, filters."""
    out = [*collection.where, collection.scope(actor), collection.temporal(selection.interval)]
    if selection.bbox is not None:
        out.append(_intersects_bbox(collection.geometry, selection.bbox))
    for name, value in selection.filters.items():
        definition = collection.filter(name)
        if definition is None:
            raise KeyError(name)
        out.append(definition.condition(value))
    if selection.cql is not None:
        out.append(cql2.to_sql(selection.cql, collection))
    return out


def _envelope(min_lon: float, min_lat: float, max_lon: float, max_lat: float) -> Any:
    return func.ST_MakeEnvelope(min_lon, min_lat, max_lon, max_lat, 4326)


def _intersects_bbox(geometry: SQLColumnExpression[Any], bbox: tuple[float, ...]) -> ColumnElement[bool]:
    min_lon, min_lat, max_lon, max_lat = bbox
    if min_lon <= max_lon:
        return func.ST_Intersects(geometry, _envelope(min_lon, min_lat, max_lon, max_lat))
    # Across the antimeridian: the two halves.
    return or_(
        func.ST_Intersects(geometry, _envelope(min_lon, min_lat, 180, max_lat)),
        func.ST_Intersects(geometry, _envelope(-180, min_lat, max_lon, max_lat)),
    )


def _geometry(collection: Collection, lat_lon: bool) -> SQLColumnExpression[Any]:
    geometry = collection.geometry
    if collection.geometry_type != "Point":
        geometry = func.ST_ForcePolygonCCW(geometry)
    if lat_lon:
        geometry = func.ST_FlipCoordinates(geometry)
    return geometry


def _properties(collection: Collection) -> ColumnElement[Any]:
    pairs: list[Any] = []
    for prop in collection.properties:
        pairs += [_text(prop.name), prop.expr]
    return cast(func.json_build_object(*pairs), Text)


def _id_json(collection: Collection) -> ColumnElement[str]:
    return cast(func.to_json(collection.id_column), Text)


def feature_text(collection: Collection, lat_lon: bool = False) -> ColumnElement[str]:
    """One feature as GeoJSON text, built by the database."""
    geometry = func.coalesce(func.ST_AsGeoJSON(_geometry(collection, lat_lon), PRECISION, 0), _text("null"))
    return func.concat(
        _text('{"type":"Feature","id":'),
        _id_json(collection),
        _text(',"geometry":'),
        geometry,
        _text(',"properties":'),
        _properties(collection),
        _text("}"),
    )


def _query(collection: Collection, selection: Selection, actor: Actor | None, *columns: Any) -> Select[Any]:
    return select(*columns).select_from(collection.source).where(*conditions(collection, selection, actor))


def count(session: Session, collection: Collection, selection: Selection, actor: Actor | None) -> int:
    collection = collection.at(selection.interval)
    return session.scalar(_query(collection, selection, actor, func.count())) or 0


@dataclass(frozen=True)
class Page:
    features: list[str]
    first_id: str | None
    last_id: str | None
    has_previous: bool
    has_next: bool


def page(
    session: Session,
    collection: Collection,
    selection: Selection,
    actor: Actor | None,
    *,
    limit: int,
    after: Any = None,
    before: Any = None,
    offset: int = 0,
    lat_lon: bool = False,
) -> Page:
    """One page in id order, by keyset: rows after `after` (or just before `before`), or by
    skipping `offset` rows."""
    collection = collection.at(selection.interval)
    key = collection.id_column
    query = _query(
        collection,
        selection,
        actor,
        cast(key, Text).label("id"),
        feature_text(collection, lat_lon).label("feature"),
    )
    if before is not None:
        query = query.where(key < before).order_by(key.desc())
    else:
        if after is not None:
            query = query.where(key > after)
        query = query.order_by(key).offset(offset or None)
    rows = list(session.execute(query.limit(limit + 1)))
    more = len(rows) > limit
    rows = rows[:limit]
    if before is not None:
        rows.reverse()
    if not rows:
        return Page([], None, None, False, False)
    first, last = rows[0].id, rows[-1].id

    def any_beyond(condition: ColumnElement[bool]) -> bool:
        return bool(
            session.scalar(select(exists(_query(collection, selection, actor, key).where(condition))))
        )

    if before is not None:
        has_previous, has_next = more, any_beyond(key > _typed(collection, last))
    else:
        has_next = more
        has_previous = offset > 0 or (after is not None and any_beyond(key < _typed(collection, first)))
    return Page([row.feature for row in rows], first, last, has_previous, has_next)


def _typed(collection: Collection, value: str) -> Any:
    return uuid.UUID(value) if collection.id_type == "uuid" else value


def feature(
    session: Session, collection: Collection, feature_id: Any, actor: Actor | None, *, lat_lon: bool = False
) -> str | None:
    """One feature by id (current version for areas), or None when absent or not visible."""
    collection = collection.at(None)
    query = _query(collection, Selection(), actor, feature_text(collection, lat_lon))
    return session.scalar(query.where(collection.id_column == feature_id))


def stream(
    session: Session, collection: Collection, selection: Selection, actor: Actor | None, *, batch: int = BATCH
) -> Iterator[list[str]]:
    """Every selected feature as GeoJSON text, in id order, a batch at a time."""
    collection = collection.at(selection.interval)
    query = _query(collection, selection, actor, feature_text(collection))
    query = query.order_by(collection.id_column).execution_options(yield_per=batch)
    result = session.connection().execute(query)
    for part in result.scalars().partitions():
        yield list(part)


def stream_transformed(
    session: Session,
    collection: Collection,
    selection: Selection,
    actor: Actor | None,
    target_crs: str,
    *,
    batch: int = BATCH,
) -> Iterator[list[str]]:
    """Like stream, with geometries converted from WGS84 to `target_crs` (e.g. gcj02)."""
    collection = collection.at(selection.interval)
    query = _query(
        collection,
        selection,
        actor,
        _id_json(collection).label("id"),
        func.ST_AsBinary(collection.geometry).label("wkb"),
        _properties(collection).label("properties"),
    )
    query = query.order_by(collection.id_column).execution_options(yield_per=batch)
    result = session.connection().execute(query)
    for part in result.partitions():
        shapes = shapely.from_wkb([bytes(row.wkb) for row in part])
        out = []
        for row, shape in zip(part, shapes, strict=True):
            geometry = geometry_to_geojson(
                transform_geometry(shape, "wgs84", target_crs), precision=PRECISION
            )
            out.append(
                '{"type":"Feature","id":'
                + row.id
                + ',"geometry":'
                + json.dumps(geometry, separators=(",", ":"))
                + ',"properties":'
                + row.properties
                + "}"
            )
        yield out


@dataclass(frozen=True)
class Version:
    """A cheap validator of a selection: its ETag and latest change time."""

    etag: str
    last_modified: datetime | None


def version(
    session: Session,
    collection: Collection,
    selection: Selection,
    actor: Actor | None,
    *,
    salt: Sequence[object] = (),
) -> Version:
    """Aggregates that move whenever a selected row (or what it shows) changes."""
    collection = collection.at(selection.interval)
    row = session.execute(
        _query(collection, selection, actor, *collection.fingerprint, collection.last_modified)
    ).one()
    material = json.dumps([collection.id, selection.key(), [str(v) for v in row], *map(str, salt)])
    digest = hashlib.sha256(material.encode()).hexdigest()[:32]
    return Version(etag=f'"{digest}"', last_modified=row[-1])


@dataclass(frozen=True)
class Extent:
    bbox: tuple[float, float, float, float] | None
    start: datetime | None
    end: datetime | None


def extent(session: Session, collection: Collection, actor: Actor | None) -> Extent:
    collection = collection.at(None)
    box = func.ST_Extent(collection.geometry)
    earliest, latest = collection.time_extent
    row = session.execute(
        _query(
            collection,
            Selection(),
            actor,
            func.ST_XMin(box),
            func.ST_YMin(box),
            func.ST_XMax(box),
            func.ST_YMax(box),
            earliest,
            latest if latest is not None else literal(None),
        )
    ).one()
    bbox = None if row[0] is None else (row[0], row[1], row[2], row[3])
    return Extent(bbox, row[4], row[5])


# Tiles stay under this size (the promise is 500 kB): a point layer's tile that would exceed it
# comes aggregated, a polygon layer's is drawn on a coarser grid.
MAX_TILE_BYTES = 400_000
# Below this zoom a point layer's tiles hold cells with counts, not single points.
POINTS_FROM_ZOOM = 12
# Cells per tile side when points are aggregated: 64 tile units each.
CELLS_PER_SIDE = 64
MAX_ID = (1 << 63) - 1


def tile_id(collection: Collection) -> ColumnElement[int]:
    """A stable, non-negative 64-bit feature id: numeric ids as they are, uuids by their first
    63 bits (collisions among a million events: about one chance in 10^7)."""
    if collection.id_type != "uuid":
        return cast(collection.id_column, BigInteger)
    hex16 = func.left(func.replace(cast(collection.id_column, Text), _text("-"), _text("")), 16)
    return cast(cast(_text("x").concat(hex16), BIT(64)), BigInteger).op("&")(MAX_ID)


def tile(session: Session, collection: Collection, z: int, x: int, y: int, actor: Actor | None) -> bytes:
    """A Mapbox vector tile of the collection's features in tile z/x/y (empty: b"").

    Every feature has an id. Point layers come as cells with counts below POINTS_FROM_ZOOM,
    and above it whenever single points would make the tile too heavy."""
    collection = collection.at(None)
    if z < collection.tile_minzoom:
        return b""
    # One tile is small work: a parallel worker costs more to start than it saves.
    session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))
    if collection.geometry_type == "Point":
        if z >= POINTS_FROM_ZOOM:
            data = _features_tile(session, collection, z, x, y, actor, TILE_EXTENT)
            if len(data) <= MAX_TILE_BYTES:
                return data
        return _cells_tile(session, collection, z, x, y, actor)
    for extent in (TILE_EXTENT, TILE_EXTENT // 4, TILE_EXTENT // 16):
        data = _features_tile(session, collection, z, x, y, actor, extent)
        if len(data) <= MAX_TILE_BYTES:
            break
    return data


def _tile_search(collection: Collection, z: int, x: int, y: int) -> ColumnElement[bool]:
    # Filter in 4326 on the GiST index; the box is widened by the tile's buffer.
    size = 2 * WEB_MERCATOR_HALF / (1 << z)
    margin = size * TILE_BUFFER / TILE_EXTENT
    search = func.ST_Transform(func.ST_Expand(func.ST_TileEnvelope(z, x, y), margin), 4326)
    return collection.geometry.op("&&")(search)  # type: ignore[no-any-return]


def _mvt(session: Session, rows: Any, name: str, extent: int) -> bytes:
    # ST_AsMVT leaves out rows whose clipped geometry is null; `fid` becomes the feature id.
    data = session.scalar(select(func.ST_AsMVT(rows.table_valued(), name, extent, "geom", "fid")))
    return bytes(data or b"")


def _features_tile(
    session: Session, collection: Collection, z: int, x: int, y: int, actor: Actor | None, extent: int
) -> bytes:
    envelope = func.ST_TileEnvelope(z, x, y)
    buffer = TILE_BUFFER * extent // TILE_EXTENT
    columns = [
        func.ST_AsMVTGeom(func.ST_Transform(collection.geometry, 3857), envelope, extent, buffer, True).label(
            "geom"
        ),
        tile_id(collection).label("fid"),
        cast(collection.id_column, Text).label("id"),
    ]
    for prop in collection.properties:
        if prop.in_tiles:
            numeric = prop.type in ("integer", "number", "boolean")
            value = prop.expr if numeric else cast(prop.expr, Text)
            columns.append(value.label(prop.name))
    rows = (
        _query(collection, Selection(), actor, *columns)
        .where(_tile_search(collection, z, x, y))
        .subquery("t")
    )
    return _mvt(session, rows, collection.id, extent)


def _cells_tile(
    session: Session, collection: Collection, z: int, x: int, y: int, actor: Actor | None
) -> bytes:
    """The tile's points counted in square cells, each drawn at its points' mean position; a
    cell's id is its place in the zoom's grid of cells, the same in every tile showing it."""
    cell = 2 * WEB_MERCATOR_HALF / (1 << z) / CELLS_PER_SIDE
    mercator = func.ST_Transform(collection.geometry, 3857)
    points = (
        _query(
            collection,
            Selection(),
            actor,
            func.ST_X(mercator).label("x"),
            func.ST_Y(mercator).label("y"),
        )
        .where(_tile_search(collection, z, x, y))
        .subquery("p")
    )
    column = func.floor((points.c.x + WEB_MERCATOR_HALF) / cell)
    row = func.floor((WEB_MERCATOR_HALF - points.c.y) / cell)
    envelope = func.ST_TileEnvelope(z, x, y)
    centre = func.ST_SetSRID(func.ST_MakePoint(func.avg(points.c.x), func.avg(points.c.y)), 3857)
    cells = (
        select(
            func.ST_AsMVTGeom(centre, envelope, TILE_EXTENT, TILE_BUFFER, True).label("geom"),
            cast(row * float(CELLS_PER_SIDE << z) + column, BigInteger).label("fid"),
            func.count().label("count"),
        )
        .group_by(row, column)
        .subquery("t")
    )
    return _mvt(session, cells, collection.id, TILE_EXTENT)
