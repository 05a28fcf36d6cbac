"""Patrols (巡查): start, track batches, end, the idle close, reading tracks and the retention.

A batch is checked whole before anything is written: every bad point is named by its index and
nothing of the batch is stored. Its points are converted to WGS84 at once (vectorised), sorted
by time and written as one LineStringM (measure = epoch seconds) with arrays of accuracy and
mock flags beside it. A batch is keyed by (patrol, batch key): the same batch again changes
nothing, another batch under a used key is a conflict (compared by a SHA-256 of the content).
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.auth.models import UserGrid
from backend.auth.scope import Actor
from backend.auth.service import Forbidden
from backend.db import driver_rows
from backend.errors import Conflict, NotFound, ValidationFailed, field_error
from backend.patrols.models import Patrol
from backend.stats import LOCAL_TZ
from geo.crs import SUPPORTED_CRS, transform_arrays

# A point's time may run ahead of the server's clock by this much (phone clocks drift).
FUTURE_SLACK = timedelta(minutes=5)
# Earliest time a point may carry: older ones are a phone's clock that was never set.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
# ISO WKB type of a LineString with measures.
_WKB_LINESTRING_M = 2002


@dataclass(frozen=True)
class BatchResult:
    patrol_id: uuid.UUID
    batch: str
    points: int
    first_at: datetime
    last_at: datetime
    created: bool


def walker_id(actor: Actor) -> int:
    """Only a signed-in person walks: a GIS key is refused."""
    if actor.read_only or actor.user_id is None:
        raise Forbidden("A patrol is walked by a signed-in user.")
    return actor.user_id


def start_patrol(
    session: Session, actor: Actor, *, patrol_id: uuid.UUID, started_at: datetime | None
) -> tuple[Patrol, bool]:
    """Start a patrol under the phone's id; the same start again answers the stored patrol."""
    worker = walker_id(actor)
    now = session.execute(select(func.now())).scalar_one()
    started = started_at or now
    if started > now + FUTURE_SLACK:
        raise ValidationFailed(
            "The start lies in the future.", errors=[field_error("started_at", "Later than now.")]
        )
    rows = driver_rows(
        session,
        "INSERT INTO patrols (id, worker_id, started_at) VALUES (:id, :worker, :started)"
        " ON CONFLICT (id) DO NOTHING RETURNING id",
        {"id": patrol_id, "worker": worker, "started": started},
    )
    patrol = session.get(Patrol, patrol_id, populate_existing=True)
    assert patrol is not None
    if not rows and (patrol.worker_id != worker or (started_at and patrol.started_at != started_at)):
        raise Conflict(
            f"Patrol {patrol_id} was already started with other content.",
            errors=[field_error("id", "This id is taken by another patrol.")],
        )
    return patrol, bool(rows)


def _own_patrol(session: Session, actor: Actor, patrol_id: uuid.UUID, *, lock: bool = False) -> Patrol:
    worker = walker_id(actor)
    statement = select(Patrol).where(Patrol.id == patrol_id)
    if lock:
        statement = statement.with_for_update()
    patrol = session.execute(statement).scalar_one_or_none()
    if patrol is None or patrol.worker_id != worker:
        raise NotFound(f"No patrol {patrol_id} of yours.")
    return patrol


def end_patrol(session: Session, actor: Actor, patrol_id: uuid.UUID, *, ended_at: datetime | None) -> Patrol:
    """End a patrol (the phone's word beats the server's idle close); ending again changes
    nothing."""
    patrol = _own_patrol(session, actor, patrol_id, lock=True)
    if patrol.closed_by == "phone":
        return patrol
    now = session.execute(select(func.now())).scalar_one()
    end = ended_at or max(filter(None, (patrol.last_point_at, patrol.started_at)))
    if end > now + FUTURE_SLACK or end < patrol.started_at:
        raise ValidationFailed(
            "The end must lie between the start and now.",
            errors=[field_error("ended_at", "Before the start or in the future.")],
        )
    patrol.ended_at, patrol.closed_by = end, "phone"
    session.flush()
    return patrol


# --- batches ------------------------------------------------------------------------------------


def _time(value: Any) -> float | None:
    """Epoch seconds from a number or an RFC 3339 string with an offset; None when neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        return parsed.timestamp() if parsed.tzinfo is not None else None
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


@dataclass(frozen=True)
class Track:
    """A batch's points, checked, in WGS84 and in time order."""

    lon: np.ndarray
    lat: np.ndarray
    t: np.ndarray
    accuracy: list[float | None]
    mock: list[bool]


def check_points(points: Any, *, crs: str, max_points: int, now: float) -> Track:
    """Check every point of a batch; a ValidationFailed names each bad one by its index."""
    if not isinstance(points, list) or not points:
        raise ValidationFailed(
            "Send the batch's points.", errors=[field_error("points", "A non-empty list of points.")]
        )
    if len(points) > max_points:
        raise ValidationFailed(
            f"A batch holds at most {max_points} points; this one has {len(points)}.",
            errors=[field_error("points", f"At most {max_points} points.", count=len(points))],
        )
    latest = now + FUTURE_SLACK.total_seconds()
    plain = _plain_track(points, crs=crs, latest=latest)
    if plain is not None:
        return plain
    errors: list[dict[str, Any]] = []
    lon, lat, t, accuracy, mock = [], [], [], [], []
    for index, point in enumerate(points):
        where = f"points.{index}"
        if not isinstance(point, dict):
            errors.append(field_error(where, "A point is an object with lon, lat and t."))
            continue
        x, y, when = _number(point.get("lon")), _number(point.get("lat")), _time(point.get("t"))
        if x is None or not math.isfinite(x) or not -180 <= x <= 180:
            errors.append(field_error(f"{where}.lon", "A longitude between -180 and 180."))
        if y is None or not math.isfinite(y) or not -90 <= y <= 90:
            errors.append(field_error(f"{where}.lat", "A latitude between -90 and 90."))
        if when is None or not math.isfinite(when):
            errors.append(field_error(f"{where}.t", "A time: epoch seconds or RFC 3339 with an offset."))
        elif when > latest:
            errors.append(field_error(f"{where}.t", "Later than now."))
        elif when < EARLIEST.timestamp():
            errors.append(field_error(f"{where}.t", "Before 2000: the phone's clock is not set."))
        acc = point.get("accuracy_m")
        acc_value = _number(acc)
        if acc is not None and (acc_value is None or not math.isfinite(acc_value)):
            errors.append(field_error(f"{where}.accuracy_m", "A number of metres, or null."))
        flag = point.get("mock", False)
        if not isinstance(flag, bool):
            errors.append(field_error(f"{where}.mock", "true or false."))
        lon.append(x or 0.0)
        lat.append(y or 0.0)
        t.append(when or 0.0)
        accuracy.append(acc_value)
        mock.append(flag is True)
    if errors:
        raise ValidationFailed(
            f"{len({e['field'].split('.')[1] for e in errors if '.' in e['field']})} bad point(s); "
            "nothing of the batch was stored.",
            errors=errors,
        )
    order = np.argsort(np.asarray(t), kind="stable")
    wgs_lon, wgs_lat = transform_arrays(np.asarray(lon)[order], np.asarray(lat)[order], crs, "wgs84")
    return Track(
        lon=wgs_lon,
        lat=wgs_lat,
        t=np.asarray(t)[order],
        accuracy=[accuracy[i] for i in order],
        mock=[mock[i] for i in order],
    )


def _is_number(value: object) -> bool:
    return type(value) is float or type(value) is int


def _plain_track(points: list[Any], *, crs: str, latest: float) -> Track | None:
    """The track of a batch whose points are all good, checked as arrays; None for any other,
    which the point-by-point check then names (most batches are good: this is the fast way)."""
    if not all(type(point) is dict for point in points):
        return None
    try:
        columns = [[point[key] for point in points] for key in ("lon", "lat", "t")]
    except KeyError:
        return None
    accuracy = [point.get("accuracy_m") for point in points]
    mock = [point.get("mock", False) for point in points]
    if not (
        all(_is_number(value) for column in columns for value in column)
        and all(value is None or _is_number(value) for value in accuracy)
        and all(type(flag) is bool for flag in mock)
    ):
        return None
    try:
        x, y, when = (np.asarray(column, dtype=np.float64) for column in columns)
        given = np.array([math.nan if value is None else value for value in accuracy], dtype=np.float64)
    except OverflowError:
        return None
    good = (
        np.isfinite(x).all()
        and np.isfinite(y).all()
        and np.isfinite(when).all()
        and (np.abs(x) <= 180).all()
        and (np.abs(y) <= 90).all()
        and (when <= latest).all()
        and (when >= EARLIEST.timestamp()).all()
        and np.isfinite(given[[value is not None for value in accuracy]]).all()
    )
    if not good:
        return None
    order = np.argsort(when, kind="stable")
    wgs_lon, wgs_lat = transform_arrays(x[order], y[order], crs, "wgs84")
    return Track(
        lon=wgs_lon,
        lat=wgs_lat,
        t=when[order],
        accuracy=[None if accuracy[i] is None else float(accuracy[i]) for i in order],
        mock=[mock[i] for i in order],
    )


def linestring_m_wkb(track: Track) -> bytes:
    """ISO WKB of the track as a LineStringM (a one-point track repeats its point)."""
    coords = np.column_stack((track.lon, track.lat, track.t)).astype("<f8")
    if len(coords) == 1:
        coords = np.vstack((coords, coords))
    return struct.pack("<BII", 1, _WKB_LINESTRING_M, len(coords)) + coords.tobytes()


def _content_hash(crs: str, points: list[Any]) -> bytes:
    canonical = json.dumps([crs, points], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).digest()


_INSERT_BATCH = (
    "WITH ins AS ("
    " INSERT INTO patrol_batches (patrol_id, batch_key, content_hash, crs, first_at, last_at,"
    "  n_points, track, accuracy_m, mock)"
    " VALUES (:patrol, :key, :hash, :crs, to_timestamp(:first), to_timestamp(:last), :n,"
    "  ST_GeomFromWKB(:wkb, 4326), :accuracy, :mock)"
    " ON CONFLICT (patrol_id, batch_key) DO NOTHING RETURNING n_points, first_at, last_at),"
    " upd AS (UPDATE patrols SET points = points + ins.n_points,"
    "  last_point_at = GREATEST(last_point_at, ins.last_at), last_seen_at = now()"
    "  FROM ins WHERE patrols.id = :patrol)"
    " SELECT n_points, first_at, last_at FROM ins"
)
_STORED_BATCH = (
    "SELECT content_hash, n_points, first_at, last_at FROM patrol_batches"
    " WHERE patrol_id = :patrol AND batch_key = :key"
)


def add_batch(
    session: Session,
    actor: Actor,
    patrol_id: uuid.UUID,
    *,
    batch: str,
    crs: str,
    points: Any,
    max_points: int,
) -> BatchResult:
    """Store a batch of the track once; the same batch again changes nothing."""
    if crs not in SUPPORTED_CRS:
        raise ValidationFailed(
            "Unknown crs.", errors=[field_error("crs", f"One of {', '.join(SUPPORTED_CRS)}.")]
        )
    worker = walker_id(actor)
    now = datetime.now(UTC).timestamp()
    track = check_points(points, crs=crs, max_points=max_points, now=now)
    digest = _content_hash(crs, points)
    # The patrol's owner is checked in the same round trip as the stored batch.
    owner = driver_rows(
        session,
        "SELECT p.worker_id, b.content_hash, b.n_points, b.first_at, b.last_at FROM patrols p"
        " LEFT JOIN patrol_batches b ON b.patrol_id = p.id AND b.batch_key = :key WHERE p.id = :patrol",
        {"patrol": patrol_id, "key": batch},
    )
    if not owner or owner[0].worker_id != worker:
        raise NotFound(f"No patrol {patrol_id} of yours.")
    stored = owner[0] if owner[0].content_hash is not None else None
    if stored is None:
        rows = driver_rows(
            session,
            _INSERT_BATCH,
            {
                "patrol": patrol_id,
                "key": batch,
                "hash": digest,
                "crs": crs,
                "first": float(track.t[0]),
                "last": float(track.t[-1]),
                "n": len(track.t),
                "wkb": linestring_m_wkb(track),
                "accuracy": track.accuracy,
                "mock": track.mock,
            },
        )
        if rows:
            row = rows[0]
            return BatchResult(patrol_id, batch, row.n_points, row.first_at, row.last_at, True)
        # Another request stored the same key just now.
        stored = driver_rows(session, _STORED_BATCH, {"patrol": patrol_id, "key": batch})[0]
    if bytes(stored.content_hash) != digest:
        raise Conflict(
            f"Batch {batch!r} of patrol {patrol_id} was already sent with other points.",
            errors=[field_error("batch", "This key is taken by a different batch.")],
        )
    return BatchResult(patrol_id, batch, stored.n_points, stored.first_at, stored.last_at, False)


# --- reading ------------------------------------------------------------------------------------


def get_patrol(session: Session, actor: Actor, patrol_id: uuid.UUID) -> Patrol:
    """A patrol whose track the caller may read; any other is NotFound."""
    patrol = session.execute(
        select(Patrol).where(Patrol.id == patrol_id, actor.reads_tracks_of(Patrol.worker_id))
    ).scalar_one_or_none()
    if patrol is None:
        raise NotFound(f"No patrol {patrol_id}.")
    return patrol


_TRACK = text(
    "SELECT ST_AsGeoJSON(ST_MakeLine(d.geom ORDER BY ST_M(d.geom)), 7) AS track"
    " FROM patrol_batches b CROSS JOIN LATERAL ST_DumpPoints(b.track) d"
    " WHERE b.patrol_id = :patrol AND (d.path[1] <= b.n_points)"
)
# By the phone's clock when it gave one: a report queued offline arrives after the patrol ended,
# but never before it started.
_EVENTS_DURING = text(
    "SELECT id FROM events WHERE reporter_id = :worker AND received_at >= :start"
    " AND COALESCE(reported_at, received_at) BETWEEN :start AND COALESCE(CAST(:end AS timestamptz), now())"
    " ORDER BY received_at LIMIT 1000"
)


def track_of(session: Session, patrol: Patrol) -> dict[str, Any] | None:
    """The patrol's track as one GeoJSON LineString (points in time order, measures dropped,
    as the batches came: the flags of the daily figures are not applied)."""
    value = session.execute(_TRACK, {"patrol": patrol.id}).scalar_one()
    if value is None:
        return None
    geometry: dict[str, Any] = json.loads(value)
    geometry["coordinates"] = [c[:2] for c in geometry["coordinates"]]
    return geometry


def events_during(session: Session, patrol: Patrol) -> list[uuid.UUID]:
    """The reports the worker made while the patrol ran (linked by time: the report path
    writes nothing for it)."""
    rows = session.execute(
        _EVENTS_DURING, {"worker": patrol.worker_id, "start": patrol.started_at, "end": patrol.ended_at}
    )
    return [row.id for row in rows]


def list_patrols(
    session: Session,
    actor: Actor,
    *,
    worker: int | None = None,
    area: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    before: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[Patrol]:
    """Patrols whose tracks the caller may read, newest first."""
    statement = select(Patrol).where(actor.reads_tracks_of(Patrol.worker_id))
    if worker is not None:
        statement = statement.where(Patrol.worker_id == worker)
    if area:
        statement = statement.where(
            select(UserGrid.user_id)
            .where(UserGrid.user_id == Patrol.worker_id, UserGrid.grid_code.startswith(area, autoescape=True))
            .exists()
        )
    if start is not None:
        statement = statement.where(Patrol.started_at >= start)
    if end is not None:
        statement = statement.where(Patrol.started_at < end)
    if before is not None:
        statement = statement.where((Patrol.started_at, Patrol.id) < before)  # type: ignore[operator]
    statement = statement.order_by(Patrol.started_at.desc(), Patrol.id.desc()).limit(limit)
    return list(session.execute(statement).scalars())


# --- housekeeping -------------------------------------------------------------------------------

_CLOSE_IDLE = text(
    "UPDATE patrols SET ended_at = GREATEST(started_at, COALESCE(last_point_at, started_at)),"
    " closed_by = 'idle' WHERE id = ANY(ARRAY(SELECT id FROM patrols WHERE ended_at IS NULL"
    " AND last_seen_at < now() - make_interval(mins => :minutes) LIMIT :batch))"
)
# Raw batches older than the retention whose days (Beijing time) all have figures computed
# after the batch arrived.
_OLD_BATCHES = text(
    "DELETE FROM patrol_batches WHERE (patrol_id, batch_key) IN ("
    " SELECT b.patrol_id, b.batch_key FROM patrol_batches b JOIN patrols p ON p.id = b.patrol_id"
    " WHERE b.first_at < now() - make_interval(days => :days)"
    " AND NOT EXISTS (SELECT 1 FROM generate_series(CAST(timezone(:tz, b.first_at) AS date),"
    "  CAST(timezone(:tz, b.last_at) AS date), interval '1 day') AS d(day)"
    "  WHERE NOT EXISTS (SELECT 1 FROM patrol_days pd WHERE pd.worker_id = p.worker_id"
    "   AND pd.day = CAST(d.day AS date) AND pd.computed_at > b.received_at))"
    " LIMIT :batch)"
)


# The local days before today whose figures are due: a day of the last `recent` without any
# figures (every worker with grids has a row for each computed day, patrol or not), and any day
# of the last `days` holding a batch that arrived after its worker's figures were computed (a
# phone that was offline). The newest first: yesterday's figures are the ones asked for.
_DAYS_DUE = text("""
    SELECT day FROM (
        SELECT CAST(g AS date) AS day
        FROM generate_series(CAST(:today AS date) - :recent, CAST(:today AS date) - 1, interval '1 day') AS g
        WHERE NOT EXISTS (SELECT 1 FROM patrol_days pd WHERE pd.day = CAST(g AS date))
        UNION
        SELECT CAST(d.day AS date)
        FROM patrol_batches b
        JOIN patrols p ON p.id = b.patrol_id
        CROSS JOIN generate_series(CAST(timezone(:tz, b.first_at) AS date),
                                   CAST(timezone(:tz, b.last_at) AS date), interval '1 day') AS d(day)
        WHERE b.last_at >= CAST(:today AS date) - :days
          AND CAST(d.day AS date) BETWEEN CAST(:today AS date) - :days AND CAST(:today AS date) - 1
          AND NOT EXISTS (SELECT 1 FROM patrol_days pd WHERE pd.worker_id = p.worker_id
                          AND pd.day = CAST(d.day AS date) AND pd.computed_at > b.received_at)
    ) AS due
    ORDER BY day DESC
""")


def days_due(session: Session, *, today: date, recent: int = 2, days: int = 30) -> list[date]:
    """The local days before `today` whose patrol figures are missing or older than a batch."""
    params = {"today": today, "recent": recent, "days": days, "tz": LOCAL_TZ}
    return list(session.execute(_DAYS_DUE, params).scalars())


def close_idle_patrols(session: Session, *, minutes: int, batch: int = 5000) -> int:
    """Close the open patrols the server has not heard of for `minutes`, at their last point."""
    return int(session.execute(_CLOSE_IDLE, {"minutes": minutes, "batch": batch}).rowcount)  # type: ignore[attr-defined]


def delete_old_batches(session: Session, *, days: int, batch: int = 5000) -> int:
    """Raw track batches older than `days` whose daily figures exist; what is left of a patrol
    is its row and the figures."""
    result = session.execute(_OLD_BATCHES, {"days": days, "batch": batch, "tz": LOCAL_TZ})
    return int(result.rowcount)  # type: ignore[attr-defined]
