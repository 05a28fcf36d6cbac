"""The layers offered to GIS clients, each a small declarative entry.

An entry says where its rows come from (a table or a join), which column is the stable feature id
and which the geometry, the properties it shows (anything else is never sent), the query
parameters that filter it, who may read which rows, and what `datetime` selects. The OGC API,
the GeoJSON downloads, the vector tiles and their OpenAPI description are all generated from
these entries; `backend/gis/layers.py` holds them and the app factory registers them.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, cast

from sqlalchemy import Column, ColumnElement, FromClause, SQLColumnExpression, false
from sqlalchemy.orm import QueryableAttribute
from sqlalchemy.sql import visitors

from backend.auth.service import Actor

JsonType = Literal["string", "integer", "number", "boolean", "date-time"]


@dataclass(frozen=True)
class Property:
    """One member of a feature's `properties`, computed in SQL."""

    name: str
    # A column expression, or a mapped attribute (`Area.code`) standing for its column.
    expr: SQLColumnExpression[Any]
    type: JsonType = "string"
    description: str = ""
    # Carried in vector tiles too (keep tiles light: codes, names, status).
    in_tiles: bool = False


@dataclass(frozen=True)
class Filter:
    """A query parameter that selects rows by one main field; the value is checked first."""

    name: str
    condition: Callable[[str], ColumnElement[bool]]
    description: str
    pattern: str | None = None
    enum: tuple[str, ...] | None = None

    def check(self, value: str) -> str | None:
        """What is wrong with a value, or None."""
        if len(value) > 200 or "\x00" in value:
            return f"{self.name} must be at most 200 characters, without NUL."
        if self.enum is not None and value not in self.enum:
            return f"{self.name} must be one of {', '.join(self.enum)}."
        if self.pattern is not None and not re.fullmatch(self.pattern, value):
            return f"{self.name} {value!r} is not valid."
        return None


@dataclass(frozen=True)
class Interval:
    """A closed time interval; None at either end means unbounded. An instant has start == end."""

    start: datetime | None
    end: datetime | None

    @property
    def instant(self) -> bool:
        return self.start is not None and self.start == self.end


# How `datetime` selects rows: called with the interval, or None when none was given.
Temporal = Callable[[Interval | None], ColumnElement[bool]]
# The rows an actor may read; None is an anonymous caller (only for `anonymous` collections).
Scope = Callable[[Actor | None], ColumnElement[bool]]


@dataclass(frozen=True)
class Collection:
    id: str
    title: str
    description: str
    source: FromClause
    id_column: SQLColumnExpression[Any]
    # "string" ids sort as text; "uuid" ids sort as PostgreSQL uuids (the same order as text).
    id_type: Literal["string", "uuid"]
    id_pattern: str
    geometry: SQLColumnExpression[Any]
    geometry_type: Literal["Point", "MultiPolygon"]
    properties: tuple[Property, ...]
    temporal: Temporal
    temporal_description: str
    # The time range shown in the collection's extent: (earliest, latest or None for "ongoing").
    time_extent: tuple[ColumnElement[Any], ColumnElement[Any] | None]
    # Aggregates that change whenever a row in the selection changes (the download's ETag).
    fingerprint: tuple[ColumnElement[Any], ...]
    last_modified: ColumnElement[Any]
    where: tuple[ColumnElement[bool], ...] = ()
    filters: tuple[Filter, ...] = ()
    scope: Scope = field(default=lambda actor: false())
    # Served without credentials when the deployment allows anonymous area reads.
    anonymous: bool = False
    # Columns of the source that hold personal data: no property may read them.
    personal: frozenset[str] = frozenset()
    tiles: bool = True
    # Below this zoom the layer's tiles are empty (TileJSON says so): e.g. 19,660 grids would
    # not fit a light tile at zoom 8.
    tile_minzoom: int = 0
    # For layers whose rows depend on the period asked for (closure rates over `datetime`):
    # called with the request's interval, it returns the concrete collection to query.
    for_period: Callable[[Interval | None], Collection] | None = None

    def at(self, interval: Interval | None) -> Collection:
        return self.for_period(interval) if self.for_period is not None else self

    def filter(self, name: str) -> Filter | None:
        return next((f for f in self.filters if f.name == name), None)


_COLLECTIONS: dict[str, Collection] = {}


def columns_read_by(expr: SQLColumnExpression[Any]) -> set[str]:
    """Names of the table columns an expression reads."""
    # A mapped attribute stands for its column; anything else standing for one is a ColumnElement.
    clause = (
        expr.__clause_element__() if isinstance(expr, QueryableAttribute) else cast(ColumnElement[Any], expr)
    )
    return {element.name for element in visitors.iterate(clause) if isinstance(element, Column)}


def register(collection: Collection) -> Collection:
    """Add a collection; refuse one whose properties would read a personal column."""
    if collection.id in _COLLECTIONS:
        raise ValueError(f"collection {collection.id} is registered twice")
    for prop in collection.properties:
        leaked = columns_read_by(prop.expr) & collection.personal
        if leaked:
            raise ValueError(
                f"property {collection.id}.{prop.name} reads personal column(s) {sorted(leaked)}"
            )
    _COLLECTIONS[collection.id] = collection
    return collection


def is_empty() -> bool:
    return not _COLLECTIONS


def collections() -> Iterator[Collection]:
    """Every collection, in the order registered."""
    return iter(list(_COLLECTIONS.values()))


def get(collection_id: str) -> Collection | None:
    return _COLLECTIONS.get(collection_id)
