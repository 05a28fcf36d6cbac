"""Reading query parameters strictly: bbox, bbox-crs, crs, datetime, limit, paging, filters.

The parsers raise ValueError with a message for the caller; the OGC routes turn it into 400, the
/api/v1 routes into 422 like any other bad argument.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from backend.gis import cql2
from backend.gis.registry import Collection, Interval
from backend.stats import LOCAL_TZ

CRS84 = "http://www.opengis.net/def/crs/OGC/1.3/CRS84"
EPSG_4490 = "http://www.opengis.net/def/crs/EPSG/0/4490"
EPSG_4326 = "http://www.opengis.net/def/crs/EPSG/0/4326"
# CGCS2000 agrees with WGS84 to centimetres (DESIGN.md): only the axis order differs, since the
# EPSG definitions of 4490 and 4326 put latitude first.
SUPPORTED_CRS = (CRS84, EPSG_4490, EPSG_4326)
LAT_LON = frozenset({EPSG_4490, EPSG_4326})

DEFAULT_LIMIT = 1_000
MAX_LIMIT = 10_000

BBox = tuple[float, float, float, float]


@dataclass(frozen=True)
class Selection:
    """Which features: a WGS84 lon/lat box, a time interval and property filters."""

    bbox: BBox | None = None
    interval: Interval | None = None
    filters: Mapping[str, str] = field(default_factory=dict)
    # A CQL2 filter (`filter`), already checked against the collection's queryables.
    cql: cql2.Filter | None = None

    def key(self) -> str:
        """A canonical text of the selection, for cache validators."""
        interval = (
            [
                self.interval.start and self.interval.start.isoformat(),
                self.interval.end and self.interval.end.isoformat(),
            ]
            if self.interval
            else None
        )
        cql = (self.cql.text, self.cql.lat_lon) if self.cql else None
        return repr((self.bbox, interval, sorted(self.filters.items()), cql))


def parse_crs(value: str) -> str:
    if value not in SUPPORTED_CRS:
        raise ValueError(f"Unsupported CRS {value!r}; use one of {', '.join(SUPPORTED_CRS)}.")
    return value


def parse_bbox(value: str, crs: str = CRS84) -> BBox:
    """Read 4 (or 6, the heights ignored) numbers in the axis order of `crs`; return lon/lat."""
    try:
        numbers = [float(part) for part in value.split(",")]
    except ValueError as error:
        raise ValueError("bbox must be 4 or 6 comma-separated numbers.") from error
    if len(numbers) not in (4, 6) or not all(math.isfinite(n) for n in numbers):
        raise ValueError("bbox must be 4 or 6 comma-separated finite numbers.")
    if len(numbers) == 6:
        numbers = [numbers[0], numbers[1], numbers[3], numbers[4]]
    if crs in LAT_LON:
        min_lat, min_lon, max_lat, max_lon = numbers
    else:
        min_lon, min_lat, max_lon, max_lat = numbers
    if not (-180 <= min_lon <= 180 and -180 <= max_lon <= 180):
        raise ValueError("bbox longitudes must lie within -180..180.")
    if not (-90 <= min_lat <= max_lat <= 90):
        raise ValueError("bbox latitudes must lie within -90..90, the lower one first.")
    # min_lon > max_lon is allowed: the box crosses the antimeridian.
    return min_lon, min_lat, max_lon, max_lat


def _day(text: str) -> date | None:
    """A date without a time (RFC 3339 full-date), or None when `text` is something else."""
    if not re.fullmatch(r"\d{4}-\d\d-\d\d", text):
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date.") from error


def _day_start(day: date) -> datetime:
    # A date is a local day, as the grid offices count them (backend.stats.LOCAL_TZ).
    return datetime.combine(day, time(), ZoneInfo(LOCAL_TZ))


def _day_end(day: date) -> datetime:
    return _day_start(day) + timedelta(days=1) - timedelta(microseconds=1)


def _moment(text: str, end: bool = False) -> datetime | None:
    """A date-time; a date alone stands for its first (or, as an end, its last) microsecond."""
    if text in ("", ".."):
        return None
    day = _day(text)
    if day is not None:
        try:
            return _day_end(day) if end else _day_start(day)
        except OverflowError as error:
            raise ValueError(f"{text!r} is out of range.") from error
    if not re.fullmatch(r"\d{4}-\d\d-\d\d[Tt ]\d\d:\d\d:\d\d(\.\d+)?([Zz]|[+-]\d\d:\d\d)", text):
        raise ValueError(f"{text!r} is not an RFC 3339 date-time with a time zone.")
    try:
        return datetime.fromisoformat(text.upper().replace(" ", "T"))
    except ValueError as error:
        raise ValueError(f"{text!r} is not a valid date-time.") from error


def parse_datetime(value: str) -> Interval:
    """An instant, a date (the whole local day), or an interval `start/end` of either where
    either end may be `..` or empty."""
    if "/" not in value:
        moment = _moment(value)
        if moment is None:
            raise ValueError("datetime must be a date-time, a date or an interval.")
        return Interval(moment, _moment(value, end=True))
    start_text, _, end_text = value.partition("/")
    start, end = _moment(start_text), _moment(end_text, end=True)
    if start is None and end is None:
        raise ValueError("datetime interval needs at least one end.")
    if start is not None and end is not None and start > end:
        raise ValueError("datetime interval ends before it starts.")
    return Interval(start, end)


def parse_limit(value: str) -> int:
    """1 or more; above the maximum the maximum is used (OGC API - Features, Part 1)."""
    if not re.fullmatch(r"\d{1,12}", value) or int(value) < 1:
        raise ValueError(f"limit must be a whole number from 1 to {MAX_LIMIT}.")
    return min(int(value), MAX_LIMIT)


def parse_feature_id(collection: Collection, value: str) -> str | uuid.UUID | None:
    """The id as the database compares it, or None when it cannot name a feature."""
    if not re.fullmatch(collection.id_pattern, value):
        return None
    return uuid.UUID(value) if collection.id_type == "uuid" else value


class ParameterError(ValueError):
    def __init__(self, name: str, message: str, position: int | None = None):
        super().__init__(message)
        self.name = name
        # Where in the value the problem lies (1-based), for filters.
        self.position = position


def single_values(args: Mapping[str, Iterable[str]], allowed: Iterable[str]) -> dict[str, str]:
    """One value per parameter; unknown parameters and conflicting repeats are errors."""
    known = set(allowed)
    out: dict[str, str] = {}
    for name, values in args.items():
        if name not in known:
            raise ParameterError(
                name, f"Unknown parameter {name!r}; this resource takes {', '.join(sorted(known))}."
            )
        distinct = set(values)
        if len(distinct) != 1:
            raise ParameterError(name, f"Parameter {name!r} is given more than once.")
        out[name] = distinct.pop()
    return out


@dataclass(frozen=True)
class ItemsQuery:
    selection: Selection
    limit: int
    crs: str
    after: str | uuid.UUID | None
    before: str | uuid.UUID | None
    offset: int = 0


ITEMS_PARAMETERS = (
    "limit",
    "bbox",
    "bbox-crs",
    "datetime",
    "crs",
    "after",
    "before",
    "offset",
    "filter",
    "filter-lang",
    "filter-crs",
    "f",
    "api_key",
)
# GDAL 3.6 asks for `cql-text`, CQL2's draft name, and writes what CQL2 text reads.
FILTER_LANGUAGES = ("cql2-text", "cql-text")
MAX_OFFSET = 1_000_000


def parse_offset(value: str) -> int:
    if not re.fullmatch(r"\d{1,7}", value) or int(value) > MAX_OFFSET:
        raise ValueError(f"offset must be a whole number from 0 to {MAX_OFFSET}.")
    return int(value)


FORMATS = ("json", "geojson")


def items_query(collection: Collection, args: Mapping[str, Iterable[str]]) -> ItemsQuery:
    """Read /collections/{id}/items parameters; raise ParameterError naming the bad one."""
    allowed = [*ITEMS_PARAMETERS, *(f.name for f in collection.filters)]
    values = single_values(args, allowed)

    def read(name: str, parse, *more):  # type: ignore[no-untyped-def]
        try:
            return parse(values[name], *more)
        except ValueError as error:
            raise ParameterError(name, str(error)) from error

    if "f" in values and values["f"] not in FORMATS:
        raise ParameterError("f", f"f must be one of {', '.join(FORMATS)}.")
    crs = read("crs", parse_crs) if "crs" in values else CRS84
    bbox_crs = read("bbox-crs", parse_crs) if "bbox-crs" in values else CRS84
    if "bbox-crs" in values and "bbox" not in values:
        raise ParameterError("bbox-crs", "bbox-crs needs a bbox.")
    bbox = read("bbox", parse_bbox, bbox_crs) if "bbox" in values else None
    interval = read("datetime", parse_datetime) if "datetime" in values else None
    limit = read("limit", parse_limit) if "limit" in values else DEFAULT_LIMIT
    keys = {}
    for name in ("after", "before"):
        if name in values:
            key = parse_feature_id(collection, values[name])
            if key is None:
                raise ParameterError(name, f"{name} must be a feature id of {collection.id}.")
            keys[name] = key
    if len(keys) == 2:
        raise ParameterError("before", "Give after or before, not both.")
    offset = read("offset", parse_offset) if "offset" in values else 0
    if offset and keys:
        raise ParameterError("offset", "Give offset or a cursor (after, before), not both.")
    filters = {}
    for definition in collection.filters:
        if definition.name in values:
            problem = definition.check(values[definition.name])
            if problem:
                raise ParameterError(definition.name, problem)
            filters[definition.name] = values[definition.name]
    return ItemsQuery(
        selection=Selection(bbox=bbox, interval=interval, filters=filters, cql=_filter(collection, values)),
        limit=limit,
        crs=crs,
        after=keys.get("after"),
        before=keys.get("before"),
        offset=offset,
    )


def _filter(collection: Collection, values: Mapping[str, str]) -> cql2.Filter | None:
    """The `filter` parameter, read and checked against the collection's queryables."""
    for name in ("filter-lang", "filter-crs"):
        if name in values and "filter" not in values:
            raise ParameterError(name, f"{name} needs a filter.")
    if "filter" not in values:
        return None
    language = values.get("filter-lang", "cql2-text")
    if language not in FILTER_LANGUAGES:
        raise ParameterError("filter-lang", f"filter-lang must be one of {', '.join(FILTER_LANGUAGES)}.")
    try:
        crs = parse_crs(values.get("filter-crs", CRS84))
    except ValueError as error:
        raise ParameterError("filter-crs", str(error)) from error
    try:
        parsed = cql2.parse(values["filter"], lat_lon=crs in LAT_LON)
        cql2.check(parsed, collection)
    except cql2.FilterError as error:
        raise ParameterError("filter", f"Bad filter: {error}", error.position) from error
    return parsed
