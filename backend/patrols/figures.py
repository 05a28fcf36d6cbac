"""Daily patrol figures: one SQL statement turns a whole day's track batches into a row per
worker (patrol_days) and a row per worker and own grid (patrol_grid_days).

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
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from backend.stats import LOCAL_TZ

MAX_SPEED_M_S = 12.0  # 43 km/h: beyond walking and e-bike riding
MAX_ACCURACY_M = 200.0
MAX_GAP_S = 300.0
COVER_M = 30.0
VISIT_M = 30.0
LONG_OUTSIDE_S = 1800.0


@dataclass(frozen=True)
class Parameters:
    max_speed_m_s: float = MAX_SPEED_M_S
    max_accuracy_m: float = MAX_ACCURACY_M
    max_gap_s: float = MAX_GAP_S
    cover_m: float = COVER_M
    visit_m: float = VISIT_M
    long_outside_s: float = LONG_OUTSIDE_S


DEFAULTS = Parameters()

_CLEAR = (
    text("DELETE FROM patrol_grid_days WHERE day = :day AND worker_id % :parts = :part"),
    text("DELETE FROM patrol_days WHERE day = :day AND worker_id % :parts = :part"),
)

_DAY = text("""
WITH raw AS (
    -- The points zipped with their accuracies and flags (ROWS FROM reads each array once: a
    -- subscript per point would read the whole array for each).
    SELECT p.worker_id, b.patrol_id, ST_X(d.geom) AS x, ST_Y(d.geom) AS y, ST_M(d.geom) AS t,
           d.acc, d.mock
    FROM patrol_batches b
    JOIN patrols p ON p.id = b.patrol_id
    CROSS JOIN LATERAL ROWS FROM (ST_DumpPoints(b.track), unnest(b.accuracy_m), unnest(b.mock))
        AS d(path, geom, acc, mock)
    WHERE b.first_at < :day_end AND b.last_at >= :day_start AND d.path[1] <= b.n_points
      AND p.worker_id % :parts = :part
), ordered AS (
    SELECT raw.*, lag(x) OVER w AS px, lag(y) OVER w AS py, lag(t) OVER w AS pt
    FROM raw
    WHERE t >= :start_s AND t < :end_s
    WINDOW w AS (PARTITION BY patrol_id ORDER BY t)
), judged AS (
    SELECT worker_id, patrol_id, x, y, t,
           COALESCE(mock, false) AS is_mock,
           COALESCE(acc <= 0 OR acc > :max_accuracy, false) AS bad_accuracy,
           COALESCE(6371008.8 * sqrt(power(radians(y - py), 2)
                    + power(cos(radians((y + py) / 2)) * radians(x - px), 2))
                    > :max_speed * GREATEST(t - pt, 0.5), false) AS too_fast
    FROM ordered
), counted AS (
    SELECT worker_id, patrol_id, x, y, t,
           CASE WHEN t - lag(t) OVER w <= :max_gap THEN 0 ELSE 1 END AS starts_run
    FROM judged
    WHERE NOT (is_mock OR bad_accuracy OR too_fast)
    WINDOW w AS (PARTITION BY patrol_id ORDER BY t)
), runs AS (
    SELECT worker_id, patrol_id, x, y, t,
           sum(starts_run) OVER (PARTITION BY patrol_id ORDER BY t) AS run
    FROM counted
), steps AS (
    -- Each counted point with the seconds and metres to the next point of its run (runs follow
    -- each other in time, so the order of `runs` serves without sorting again).
    SELECT worker_id, patrol_id, run, x, y, t,
           CASE WHEN lead(run) OVER w = run THEN lead(t) OVER w - t ELSE 0 END AS dt,
           CASE WHEN lead(run) OVER w = run
                THEN 6371008.8 * sqrt(power(radians(lead(y) OVER w - y), 2)
                     + power(cos(radians(y)) * radians(lead(x) OVER w - x), 2))
                ELSE 0 END AS dm
    FROM runs
    WINDOW w AS (PARTITION BY patrol_id ORDER BY t)
), walked AS (
    SELECT worker_id, sum(dt) AS seconds, sum(dm) AS distance_m FROM steps GROUP BY worker_id
), lines AS (
    -- Half-hour pieces of each run: buffered one by one and then united, which costs a few
    -- times less than buffering a day's self-crossing walk at once.
    SELECT worker_id, ST_SetSRID(ST_MakeLine(ST_MakePoint(x, y) ORDER BY t), 4326) AS line
    FROM steps
    GROUP BY worker_id, patrol_id, run, floor(t / 1800)
    HAVING count(*) >= 2
), flags AS (
    SELECT worker_id, count(*) AS points,
           count(*) FILTER (WHERE too_fast) AS flagged_speed,
           count(*) FILTER (WHERE bad_accuracy) AS flagged_accuracy,
           count(*) FILTER (WHERE is_mock) AS flagged_mock
    FROM judged
    GROUP BY worker_id
), own AS MATERIALIZED (
    SELECT ug.user_id AS worker_id, a.code, a.kind, a.geom,
           32600 + floor((ST_X(ST_Centroid(a.geom)) + 180) / 6)::int + 1 AS utm
    FROM user_grids ug
    JOIN users u ON u.id = ug.user_id AND u.role = 'worker' AND NOT u.disabled
    JOIN areas a ON a.code = ug.grid_code AND a.level = 'grid' AND a.valid_to IS NULL
    WHERE ug.user_id % :parts = :part
), zones AS (
    -- The day's counted track and the area within the coverage distance of it, in the UTM zone
    -- of the worker's first grid.
    SELECT l.worker_id, w.utm, ST_Collect(ST_Transform(l.line, w.utm)) AS line,
           ST_Union(ST_Buffer(ST_Simplify(ST_Transform(l.line, w.utm), 2), :cover_m, 'quad_segs=4'))
               AS zone
    FROM lines l
    JOIN (SELECT DISTINCT ON (worker_id) worker_id, utm FROM own ORDER BY worker_id, code) AS w
      ON w.worker_id = l.worker_id
    GROUP BY l.worker_id, w.utm
), placed AS (
    -- Each step (a point and the seconds to the next of its run) in the worker's grid holding
    -- the point, if any.
    SELECT s.worker_id, s.patrol_id, s.run, s.t, s.dt, own.code AS grid
    FROM steps s
    LEFT JOIN own ON own.worker_id = s.worker_id
                 AND ST_Intersects(own.geom, ST_SetSRID(ST_MakePoint(s.x, s.y), 4326))
), inside AS (
    SELECT worker_id, grid, sum(dt) AS seconds FROM placed WHERE grid IS NOT NULL GROUP BY 1, 2
), outside AS (
    SELECT worker_id, max(seconds) AS longest
    FROM (SELECT worker_id, sum(dt) AS seconds
          FROM (SELECT placed.*, count(grid) OVER (PARTITION BY patrol_id, run ORDER BY t) AS island
                FROM placed) AS p
          WHERE grid IS NULL
          GROUP BY worker_id, patrol_id, run, island) AS stretches
    GROUP BY worker_id
), grid_figures AS (
    -- Grids of the workers who walked today; the others' grids get zeros below.
    SELECT own.worker_id, own.code, COALESCE(ins.seconds, 0) AS inside_seconds,
           ST_Area(ST_Intersection(g.geom, z.zone)) / NULLIF(ST_Area(g.geom), 0) AS coverage,
           (SELECT count(*) FROM buildings bd
            WHERE bd.grid_code = own.code AND bd.rental_units > 0
              AND ST_DWithin(ST_Transform(bd.location, z.utm), z.line, :visit_m)) AS rental_visits,
           (SELECT count(*) FROM emergency_units eu
            WHERE eu.grid_code = own.code AND eu.active
              AND ST_DWithin(ST_Transform(geometry(eu.location), z.utm), z.line, :visit_m))
               AS unit_visits
    FROM own
    JOIN zones z ON z.worker_id = own.worker_id
    LEFT JOIN inside ins ON ins.worker_id = own.worker_id AND ins.grid = own.code
    CROSS JOIN LATERAL (SELECT ST_Transform(own.geom, z.utm) AS geom) AS g
), days AS (
    INSERT INTO patrol_days (day, worker_id, points, flagged_speed, flagged_accuracy, flagged_mock,
                             patrol_seconds, inside_seconds, longest_outside_seconds,
                             long_stay_outside, distance_m)
    SELECT CAST(:day AS date), w.worker_id, COALESCE(f.points, 0), COALESCE(f.flagged_speed, 0),
           COALESCE(f.flagged_accuracy, 0), COALESCE(f.flagged_mock, 0),
           COALESCE(wk.seconds, 0),
           COALESCE((SELECT sum(ins.seconds) FROM inside ins WHERE ins.worker_id = w.worker_id), 0),
           COALESCE(o.longest, 0), COALESCE(o.longest > :long_outside, false),
           COALESCE(wk.distance_m, 0)
    FROM (SELECT worker_id FROM own UNION SELECT worker_id FROM flags) AS w
    LEFT JOIN flags f ON f.worker_id = w.worker_id
    LEFT JOIN walked wk ON wk.worker_id = w.worker_id
    LEFT JOIN outside o ON o.worker_id = w.worker_id
    RETURNING worker_id
)
INSERT INTO patrol_grid_days (day, worker_id, grid_code, grid_kind, village_code, town_code,
                              district_code, inside_seconds, coverage, rental_buildings_visited,
                              emergency_units_visited)
SELECT CAST(:day AS date), own.worker_id, own.code, own.kind, left(own.code, 12), left(own.code, 9),
       left(own.code, 6), COALESCE(g.inside_seconds, 0), COALESCE(g.coverage, 0),
       COALESCE(g.rental_visits, 0), COALESCE(g.unit_visits, 0)
FROM own
LEFT JOIN grid_figures g ON g.worker_id = own.worker_id AND g.code = own.code
WHERE own.worker_id IN (SELECT worker_id FROM days)
""")


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """A local day (Asia/Shanghai) as [start, end) instants."""
    zone = ZoneInfo(LOCAL_TZ)
    start = datetime.combine(day, time(), zone)
    return start, datetime.combine(day + timedelta(days=1), time(), zone)


def compute_day(
    session: Session, day: date, parameters: Parameters = DEFAULTS, part: int = 0, parts: int = 1
) -> int:
    """Compute (again) the figures of a local day for every worker, or for the workers whose id
    is `part` modulo `parts`; the worker-days written."""
    start, end = day_bounds(day)
    share = {"day": day, "part": part, "parts": parts}
    # The day's points are sorted several times over; in memory rather than on disk.
    session.execute(text("SET LOCAL work_mem = '256MB'"))
    for statement in _CLEAR:
        session.execute(statement, share)
    session.execute(
        _DAY,
        {
            **share,
            "day_start": start,
            "day_end": end,
            "start_s": start.timestamp(),
            "end_s": end.timestamp(),
            "max_accuracy": parameters.max_accuracy_m,
            "max_speed": parameters.max_speed_m_s,
            "max_gap": parameters.max_gap_s,
            "cover_m": parameters.cover_m,
            "visit_m": parameters.visit_m,
            "long_outside": parameters.long_outside_s,
        },
    )
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
