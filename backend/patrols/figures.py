"""Daily patrol figures: a day's track batches become a row per worker (patrol_days) and a row
per worker and own grid (patrol_grid_days).

For each point, in time order within its patrol (batches may have come in any order):
- flagged, and not counted: a mock location, an impossible accuracy (not above 0, or over
  MAX_ACCURACY_M), or a jump from the previous point faster than MAX_SPEED_M_S (walking or
  riding an e-bike stays well under it);
- the counted points make runs, cut where two are more than MAX_GAP_S apart (a phone that
  slept is not patrolling); each point of a run stands for the seconds to the next one, spent
  in the worker's grid that holds the point (or outside them all);
- distance walked: the sum of the steps of the runs (each under a few dozen metres, so the
  equirectangular formula is exact to well under a centimetre a step); coverage of a grid: the
  share of its area within COVER_M of the day's runs, in the UTM zone of the worker's first
  grid; visits: buildings with rental units and active emergency units of the grid within
  VISIT_M of the runs;
- the longest stretch outside every one of the worker's grids is kept, and flagged when over
  LONG_OUTSIDE_S.

Every worker with grids gets a row for the day, patrolled or not, so a day without a patrol
counts against the norm.

The database only hands over the batches (whole and in binary: a row per point in SQL cost
more than all the rest) and the grids and places, and takes the rows by COPY. The work per
point (order, flags, runs, steps, time in each grid, stretches outside) is numpy over the
batches' coordinate arrays; the geometry (coverage, visits) is Shapely and pyproj over the
runs' half-hour pieces, a few hundred workers at a time, in the parts' threads (both release
the GIL while they compute).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import pyproj
import shapely
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from backend.stats import LOCAL_TZ

MAX_SPEED_M_S = 12.0  # 43 km/h: beyond walking and e-bike riding
MAX_ACCURACY_M = 200.0
MAX_GAP_S = 300.0
COVER_M = 30.0
VISIT_M = 30.0
LONG_OUTSIDE_S = 1800.0
# Runs are cut into half-hour pieces, buffered one by one: a few times cheaper than buffering a
# day's self-crossing walk at once.
PIECE_S = 1800.0
EARTH_RADIUS_M = 6371008.8
# The points handled at once: a few hundred workers' days, some 100 MB of arrays.
CHUNK_POINTS = 1_000_000


@dataclass(frozen=True)
class Parameters:
    max_speed_m_s: float = MAX_SPEED_M_S
    max_accuracy_m: float = MAX_ACCURACY_M
    max_gap_s: float = MAX_GAP_S
    cover_m: float = COVER_M
    visit_m: float = VISIT_M
    long_outside_s: float = LONG_OUTSIDE_S


DEFAULTS = Parameters()


# --- the work per point, in numpy ------------------------------------------------------------


@dataclass
class Points:
    """A day's points of some workers, sorted by worker, patrol and time; `worker` indexes the
    workers' list, `patrol` numbers the patrols."""

    worker: np.ndarray
    patrol: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    accuracy: np.ndarray  # NaN where the phone sent none
    mock: np.ndarray

    @classmethod
    def sorted(
        cls,
        worker: np.ndarray,
        patrol: np.ndarray,
        x: np.ndarray,
        y: np.ndarray,
        t: np.ndarray,
        accuracy: np.ndarray,
        mock: np.ndarray,
    ) -> Points:
        order = np.lexsort((t, patrol, worker))  # stable: equal times keep the batches' order
        return cls(worker[order], patrol[order], x[order], y[order], t[order], accuracy[order], mock[order])


@dataclass
class Worked:
    """What the points give per worker (arrays over the workers' list) and the counted steps."""

    points: np.ndarray
    flagged_speed: np.ndarray
    flagged_accuracy: np.ndarray
    flagged_mock: np.ndarray
    seconds: np.ndarray
    distance_m: np.ndarray
    # The counted points (a subset of Points, same order), each with its run and the seconds
    # to the next point of its run (0 for a run's last point).
    worker: np.ndarray
    x: np.ndarray
    y: np.ndarray
    t: np.ndarray
    run: np.ndarray
    dt: np.ndarray
    pieces: list[tuple[int, int]] = field(default_factory=list)  # [start, end) of counted points


def metres(x0: np.ndarray, y0: np.ndarray, x1: np.ndarray, y1: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Equirectangular distance, with the cosine taken at `lat` (degrees)."""
    return EARTH_RADIUS_M * np.sqrt(
        np.radians(y1 - y0) ** 2 + (np.cos(np.radians(lat)) * np.radians(x1 - x0)) ** 2
    )


def work(points: Points, workers: int, parameters: Parameters = DEFAULTS) -> Worked:
    """Flag the points, make runs and steps of the counted ones and sum them per worker."""
    p = points
    n = len(p.t)
    # Each point against the previous one of its patrol, flagged or not.
    after = np.zeros(n, dtype=bool)
    after[1:] = p.patrol[1:] == p.patrol[:-1]
    jump = np.zeros(n)
    jump[1:] = metres(p.x[:-1], p.y[:-1], p.x[1:], p.y[1:], (p.y[1:] + p.y[:-1]) / 2)
    elapsed = np.zeros(n)
    elapsed[1:] = p.t[1:] - p.t[:-1]
    too_fast = after & (jump > parameters.max_speed_m_s * np.maximum(elapsed, 0.5))
    # NaN (no accuracy sent) compares false either way: not flagged.
    bad_accuracy = (p.accuracy <= 0) | (p.accuracy > parameters.max_accuracy_m)
    counted = ~(p.mock | bad_accuracy | too_fast)

    def per_worker(mask: np.ndarray) -> np.ndarray:
        return np.bincount(p.worker[mask], minlength=workers)

    keep = np.flatnonzero(counted)
    worker, patrol, x, y, t = p.worker[keep], p.patrol[keep], p.x[keep], p.y[keep], p.t[keep]
    k = len(t)
    goes_on = np.zeros(k, dtype=bool)
    goes_on[1:] = (patrol[1:] == patrol[:-1]) & (t[1:] - t[:-1] <= parameters.max_gap_s)
    run = np.cumsum(~goes_on)
    dt = np.zeros(k)
    dt[:-1] = np.where(goes_on[1:], t[1:] - t[:-1], 0.0)
    dm = np.zeros(k)
    dm[:-1] = np.where(goes_on[1:], metres(x[:-1], y[:-1], x[1:], y[1:], y[:-1]), 0.0)
    half_hour = np.floor(t / PIECE_S)
    starts = np.ones(k, dtype=bool)
    starts[1:] = ~goes_on[1:] | (half_hour[1:] != half_hour[:-1])
    bounds = np.append(np.flatnonzero(starts), k)
    pieces = [(int(s), int(e)) for s, e in zip(bounds[:-1], bounds[1:], strict=True) if e - s >= 2]
    return Worked(
        points=per_worker(np.ones(n, dtype=bool)),
        flagged_speed=per_worker(too_fast),
        flagged_accuracy=per_worker(bad_accuracy),
        flagged_mock=per_worker(p.mock),
        seconds=np.bincount(worker, weights=dt, minlength=workers),
        distance_m=np.bincount(worker, weights=dm, minlength=workers),
        worker=worker,
        x=x,
        y=y,
        t=t,
        run=run,
        dt=dt,
        pieces=pieces,
    )


def placed(
    worked: Worked, grids: Sequence[Sequence[Any]], workers: int
) -> tuple[list[list[float]], np.ndarray]:
    """Seconds inside each of a worker's grids (`grids[w]`: prepared Shapely polygons, in WGS84)
    and each worker's longest stretch outside all of them."""
    w = worked
    hits = np.zeros(len(w.t), dtype=np.int64)
    bounds = np.searchsorted(w.worker, np.arange(workers + 1))
    inside: list[list[float]] = []
    for index in range(workers):
        start, end = bounds[index], bounds[index + 1]
        in_grids = []
        for grid in grids[index]:
            # On the edge counts as inside, as ST_Intersects has it.
            within = shapely.intersects_xy(grid, w.x[start:end], w.y[start:end])
            hits[start:end] += within
            in_grids.append(float(w.dt[start:end][within].sum()))
        inside.append(in_grids)
    # A stretch outside: the points of a run between two points inside a grid (a point in two
    # overlapping grids counts twice, so `island` numbers the stretches all the same).
    outside = np.flatnonzero(hits == 0)
    island = np.cumsum(hits)[outside]
    run = w.run[outside]
    new = np.ones(len(outside), dtype=bool)
    new[1:] = (run[1:] != run[:-1]) | (island[1:] != island[:-1])
    stretch = np.cumsum(new) - 1
    seconds = np.bincount(stretch, weights=w.dt[outside])
    longest = np.zeros(workers)
    np.maximum.at(longest, w.worker[outside][new], seconds)
    return inside, longest


def utm_zone(grid: shapely.Geometry) -> int:
    """The EPSG code of the UTM zone (north) holding a WGS84 grid's centroid."""
    return 32600 + math.floor((shapely.centroid(grid).x + 180) / 6) + 1


def uncovered(grid: shapely.Geometry, zones: Sequence[shapely.Geometry]) -> float:
    """The area of the grid outside all the zones: the grid less one zone after the other, which
    gets cheaper as the rest shrinks, where uniting the zones first keeps every detail of them,
    outside the grid too (the same area to 1e-12 of the grid's)."""
    rest = grid
    for zone in zones:
        rest = shapely.difference(rest, zone)
        if rest.is_empty:
            return 0.0
    return float(max(shapely.area(rest), 0.0))


@functools.cache
def _transformer(epsg: int) -> pyproj.Transformer:
    # Shared by the parts' threads: pyproj's transformers are thread-safe since 3.1.
    return pyproj.Transformer.from_crs(4326, epsg, always_xy=True)


def _to_utm(epsg: int) -> Callable[[np.ndarray], np.ndarray]:
    """WGS84 (lon, lat) rows to the UTM zone's metres, as PostGIS's ST_Transform (same PROJ
    pipeline)."""
    transformer = _transformer(epsg)

    def project(xy: np.ndarray) -> np.ndarray:
        x, y = transformer.transform(xy[:, 0], xy[:, 1])
        return np.column_stack((x, y))

    return project


@dataclass
class Reach:
    """Per worker and own grid: the share covered and the places visited."""

    coverage: list[list[float]]
    rentals: list[list[int]]
    units: list[list[int]]


def covered(
    worked: Worked,
    grids: Sequence[Sequence[Any]],
    codes: Sequence[Sequence[str]],
    places: dict[str, tuple[np.ndarray, np.ndarray]],
    parameters: Parameters = DEFAULTS,
) -> Reach:
    """Coverage and visits of each worker's grids, in the UTM zone of the worker's first grid.
    Covered is the grid's share within reach of the runs' half-hour pieces, each simplified
    (2 m) and buffered; visited are the places (per grid code: rental buildings, active
    emergency units; WGS84 points) within reach of the pieces as walked. The operations are
    PostGIS's (ST_Transform, ST_Simplify, ST_Buffer), done by the GEOS and PROJ that Shapely
    and pyproj bring."""
    workers = len(grids)
    reach = Reach(
        coverage=[[0.0] * len(own) for own in grids],
        rentals=[[0] * len(own) for own in grids],
        units=[[0] * len(own) for own in grids],
    )
    if not worked.pieces:
        return reach
    starts = np.array([start for start, _ in worked.pieces])
    ends = np.array([end for _, end in worked.pieces])
    bounds = np.searchsorted(worked.worker[starts], np.arange(workers + 1))
    empty = (np.zeros(0), np.zeros(0))
    for index in range(workers):
        first, last = bounds[index], bounds[index + 1]
        if first == last or not grids[index]:
            continue
        project = _to_utm(utm_zone(grids[index][0]))
        lengths = ends[first:last] - starts[first:last]
        at = np.repeat(starts[first:last] - np.cumsum(lengths) + lengths, lengths) + np.arange(lengths.sum())
        xy = project(np.column_stack((worked.x[at], worked.y[at])))
        lines = np.asarray(shapely.linestrings(xy, indices=np.repeat(np.arange(len(lengths)), lengths)))
        simple = shapely.simplify(lines, 2, preserve_topology=False)
        # ST_Simplify drops a line of three points or more simplified to two equal ones (a
        # stay, or a loop within the tolerance): it covers nothing. Two equal points as sent
        # stay, and cover a disc.
        same_ends = shapely.equals_exact(shapely.get_point(simple, 0), shapely.get_point(simple, -1), 0)
        collapsed = same_ends & (shapely.get_num_points(simple) == 2) & (lengths > 2)
        zones = shapely.buffer(simple[~collapsed], parameters.cover_m, quad_segs=4)
        walked = shapely.multilinestrings(lines)
        for number, (grid, code) in enumerate(zip(grids[index], codes[index], strict=True)):
            metric = shapely.transform(grid, project)
            if metric.area > 0:
                reach.coverage[index][number] = 1 - uncovered(metric, zones) / metric.area
            for kind, counts in (("rental", reach.rentals), ("unit", reach.units)):
                x, y = places.get(f"{kind}:{code}", empty)
                if len(x):
                    near = shapely.dwithin(
                        walked, shapely.points(project(np.column_stack((x, y)))), parameters.visit_m
                    )
                    counts[index][number] = int(np.count_nonzero(near))
    return reach


# --- reading the batches ---------------------------------------------------------------------


def track_coordinates(wkb: bytes, n: int) -> np.ndarray:
    """The first `n` (x, y, m) of an ISO WKB LineStringM."""
    order = "<" if wkb[0] == 1 else ">"
    return np.frombuffer(wkb, dtype=f"{order}f8", count=3 * n, offset=9).reshape(n, 3)


def _array_items(sent: bytes | None, n: int, item: int) -> np.ndarray | None:
    """The items of a one-dimensional array without NULLs in PostgreSQL's binary form (array_send),
    `item` bytes each, as rows of bytes; None for a NULL or empty array."""
    if sent is None or int.from_bytes(sent[:4], "big") == 0:
        return None
    # Header: dimensions, flags, element type, then size and lower bound; each item is its
    # length (4 bytes) and its value.
    rows = np.frombuffer(sent, dtype=np.uint8, offset=20).reshape(-1, 4 + item)
    return rows[:n, 4:]


def real_array(sent: bytes | None, n: int) -> np.ndarray:
    """A REAL[] (array_send, NULLs replaced by NaN) as n float64, NaN past its end."""
    values = np.full(n, np.nan)
    items = _array_items(sent, n, 4)
    if items is not None:
        values[: len(items)] = np.ascontiguousarray(items).view(">f4").ravel()
    return values


def bool_array(sent: bytes | None, n: int) -> np.ndarray:
    """A BOOLEAN[] (array_send, NULLs replaced by false) as n bools, false past its end."""
    values = np.zeros(n, dtype=bool)
    items = _array_items(sent, n, 1)
    if items is not None:
        values[: len(items)] = items[:, 0] != 0
    return values


_WALKERS = text("""
SELECT p.worker_id, sum(b.n_points) AS points
FROM patrol_batches b
JOIN patrols p ON p.id = b.patrol_id
WHERE b.first_at < :day_end AND b.last_at >= :day_start AND p.worker_id % :parts = :part
GROUP BY p.worker_id
ORDER BY p.worker_id
""")

# Binary results: the tracks as WKB and the arrays as sent, for numpy to read without parsing.
_BATCHES = """
SELECT p.worker_id, b.patrol_id, b.n_points, ST_AsBinary(b.track),
       array_send(array_replace(b.accuracy_m, NULL, 'NaN'::real)),
       array_send(array_replace(b.mock, NULL, false))
FROM patrol_batches b
JOIN patrols p ON p.id = b.patrol_id
WHERE b.first_at < %(day_end)s AND b.last_at >= %(day_start)s AND p.worker_id = ANY(%(workers)s)
ORDER BY b.patrol_id, b.first_at, b.batch_key
"""

_OWN = """
SELECT ug.user_id, a.code, a.kind, ST_AsBinary(a.geom)
FROM user_grids ug
JOIN users u ON u.id = ug.user_id AND u.role = 'worker' AND NOT u.disabled
JOIN areas a ON a.code = ug.grid_code AND a.level = 'grid' AND a.valid_to IS NULL
WHERE ug.user_id = ANY(%(workers)s)
ORDER BY ug.user_id, a.code
"""


# The places that need visits, in the given grids.
_PLACES = """
SELECT 'rental:' || grid_code, ST_X(location), ST_Y(location)
FROM buildings WHERE grid_code = ANY(%(codes)s) AND rental_units > 0
UNION ALL
SELECT 'unit:' || grid_code, ST_X(geometry(location)), ST_Y(geometry(location))
FROM emergency_units WHERE grid_code = ANY(%(codes)s) AND active
ORDER BY 1
"""


def read_places(cursor: Any, codes: list[str]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The grids' rental buildings ('rental:' + code) and active emergency units ('unit:' + code)."""
    found: dict[str, tuple[list[float], list[float]]] = {}
    for key, x, y in cursor.execute(_PLACES, {"codes": codes}):
        xs, ys = found.setdefault(key, ([], []))
        xs.append(x)
        ys.append(y)
    return {key: (np.array(xs), np.array(ys)) for key, (xs, ys) in found.items()}


def read_points(cursor: Any, workers: list[int], day_start: datetime, day_end: datetime) -> Points:
    """The workers' points of the day, from their batches."""
    cursor.execute(_BATCHES, {"workers": workers, "day_start": day_start, "day_end": day_end}, binary=True)
    index = {worker: i for i, worker in enumerate(workers)}
    patrols: dict[Any, int] = {}
    parts: list[tuple[int, int, np.ndarray, np.ndarray, np.ndarray]] = []
    for worker, patrol, n, wkb, accuracy, mock in cursor:
        patrol_number = patrols.setdefault(patrol, len(patrols))
        parts.append(
            (
                index[worker],
                patrol_number,
                track_coordinates(wkb, n),
                real_array(accuracy, n),
                bool_array(mock, n),
            )
        )
    sizes = np.array([len(part[2]) for part in parts], dtype=np.int64)
    coords = np.concatenate([part[2] for part in parts]) if parts else np.zeros((0, 3))
    x, y, t = coords[:, 0], coords[:, 1], coords[:, 2]
    in_day = (t >= day_start.timestamp()) & (t < day_end.timestamp())
    return Points.sorted(
        np.repeat(np.array([part[0] for part in parts], dtype=np.int64), sizes)[in_day],
        np.repeat(np.array([part[1] for part in parts], dtype=np.int64), sizes)[in_day],
        x[in_day],
        y[in_day],
        t[in_day],
        (np.concatenate([part[3] for part in parts]) if parts else np.zeros(0))[in_day],
        (np.concatenate([part[4] for part in parts]) if parts else np.zeros(0, dtype=bool))[in_day],
    )


# --- writing the figures ---------------------------------------------------------------------

_CLEAR = (
    text("DELETE FROM patrol_grid_days WHERE day = :day AND worker_id % :parts = :part"),
    text("DELETE FROM patrol_days WHERE day = :day AND worker_id % :parts = :part"),
)

_DAYS_COPY = (
    "COPY patrol_days (day, worker_id, points, flagged_speed, flagged_accuracy, flagged_mock,"
    " patrol_seconds, inside_seconds, longest_outside_seconds, long_stay_outside, distance_m)"
    " FROM STDIN (FORMAT BINARY)"
)
_DAYS_TYPES = ["date", "int8", "int4", "int4", "int4", "int4", "float8", "float8", "float8", "bool", "float8"]
_GRID_DAYS_COPY = (
    "COPY patrol_grid_days (day, worker_id, grid_code, grid_kind, village_code, town_code,"
    " district_code, inside_seconds, coverage, rental_buildings_visited, emergency_units_visited)"
    " FROM STDIN (FORMAT BINARY)"
)
_GRID_DAYS_TYPES = [
    "date",
    "int8",
    "text",
    "text",
    "text",
    "text",
    "text",
    "float8",
    "float8",
    "int4",
    "int4",
]

# Zeros for the part's workers with grids who did not patrol.
_IDLE = text("""
WITH own AS MATERIALIZED (
    SELECT ug.user_id AS worker_id, a.code, a.kind
    FROM user_grids ug
    JOIN users u ON u.id = ug.user_id AND u.role = 'worker' AND NOT u.disabled
    JOIN areas a ON a.code = ug.grid_code AND a.level = 'grid' AND a.valid_to IS NULL
    WHERE ug.user_id % :parts = :part
      AND NOT EXISTS (SELECT FROM patrol_days d WHERE d.day = :day AND d.worker_id = ug.user_id)
), days AS (
    INSERT INTO patrol_days (day, worker_id, points, flagged_speed, flagged_accuracy, flagged_mock,
                             patrol_seconds, inside_seconds, longest_outside_seconds,
                             long_stay_outside, distance_m)
    SELECT DISTINCT CAST(:day AS date), worker_id, 0, 0, 0, 0, 0.0, 0.0, 0.0, false, 0.0 FROM own
)
INSERT INTO patrol_grid_days (day, worker_id, grid_code, grid_kind, village_code, town_code,
                              district_code, inside_seconds, coverage, rental_buildings_visited,
                              emergency_units_visited)
SELECT CAST(:day AS date), worker_id, code, kind, left(code, 12), left(code, 9), left(code, 6),
       0, 0, 0, 0
FROM own
""")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local day (Asia/Shanghai) as [start, end) instants."""
    zone = ZoneInfo(LOCAL_TZ)
    start = datetime.combine(day, time(), zone)
    return start, datetime.combine(day + timedelta(days=1), time(), zone)


def _chunks(walkers: Sequence[Sequence[int]]) -> Iterator[list[int]]:
    """The walkers (worker id, points) in groups of about CHUNK_POINTS points."""
    chunk: list[int] = []
    points = 0
    for worker, count in walkers:
        if chunk and points + count > CHUNK_POINTS:
            yield chunk
            chunk, points = [], 0
        chunk.append(worker)
        points += count
    if chunk:
        yield chunk


def _compute_walkers(conn: Any, day: date, workers: list[int], parameters: Parameters) -> None:
    """Write the days of some workers who have batches on the day, and their grids' days."""
    start, end = day_bounds(day)
    index = {worker: i for i, worker in enumerate(workers)}
    codes: list[list[str]] = [[] for _ in workers]
    kinds: list[list[str | None]] = [[] for _ in workers]
    grids: list[list[Any]] = [[] for _ in workers]
    with conn.cursor() as cursor:
        points = read_points(cursor, workers, start, end)
        cursor.execute(_OWN, {"workers": workers}, binary=True)
        for worker, code, kind, wkb in cursor:
            codes[index[worker]].append(code)
            kinds[index[worker]].append(kind)
            grids[index[worker]].append(shapely.from_wkb(wkb))
        places = read_places(cursor, sorted({code for own in codes for code in own}))
    shapely.prepare([grid for own in grids for grid in own])
    worked = work(points, len(workers), parameters)
    inside, longest = placed(worked, grids, len(workers))
    reach = covered(worked, grids, codes, places, parameters)
    with conn.cursor() as cursor:
        with cursor.copy(_DAYS_COPY) as copy:
            copy.set_types(_DAYS_TYPES)
            for i, worker in enumerate(workers):
                if not (worked.points[i] or codes[i]):
                    continue  # batches around the day, none of its points in it
                copy.write_row(
                    (
                        day,
                        worker,
                        int(worked.points[i]),
                        int(worked.flagged_speed[i]),
                        int(worked.flagged_accuracy[i]),
                        int(worked.flagged_mock[i]),
                        float(worked.seconds[i]),
                        sum(inside[i]),
                        float(longest[i]),
                        bool(longest[i] > parameters.long_outside_s),
                        float(worked.distance_m[i]),
                    )
                )
        with cursor.copy(_GRID_DAYS_COPY) as copy:
            copy.set_types(_GRID_DAYS_TYPES)
            for i, worker in enumerate(workers):
                for number, code in enumerate(codes[i]):
                    copy.write_row(
                        (
                            day,
                            worker,
                            code,
                            kinds[i][number],
                            code[:12],
                            code[:9],
                            code[:6],
                            inside[i][number],
                            reach.coverage[i][number],
                            reach.rentals[i][number],
                            reach.units[i][number],
                        )
                    )


def compute_day(
    session: Session, day: date, parameters: Parameters = DEFAULTS, part: int = 0, parts: int = 1
) -> int:
    """Compute (again) the figures of a local day for every worker, or for the workers whose id
    is `part` modulo `parts`; the worker-days written."""
    start, end = day_bounds(day)
    share = {"day": day, "part": part, "parts": parts}
    for statement in _CLEAR:
        session.execute(statement, share)
    walkers = session.execute(_WALKERS, {**share, "day_start": start, "day_end": end}).all()
    # The batches are read and the figures written by COPY on the session's own connection.
    conn = session.connection().connection.driver_connection
    for chunk in _chunks([(int(worker), int(count)) for worker, count in walkers]):
        _compute_walkers(conn, day, chunk, parameters)
    session.execute(_IDLE, share)
    count = session.execute(
        text("SELECT count(*) FROM patrol_days WHERE day = :day AND worker_id % :parts = :part"), share
    )
    return int(count.scalar_one())


def compute_day_in_parts(
    factory: sessionmaker[Session], day: date, connections: int = 2, parameters: Parameters = DEFAULTS
) -> int:
    """`compute_day` with the workers split over `connections` database connections, each part
    in its own transaction (a part that fails leaves the others written: run the day again)."""

    def run(part: int) -> int:
        with factory() as session, session.begin():
            return compute_day(session, day, parameters, part=part, parts=connections)

    if connections == 1:
        return run(0)
    with ThreadPoolExecutor(max_workers=connections) as pool:
        return sum(pool.map(run, range(connections)))
