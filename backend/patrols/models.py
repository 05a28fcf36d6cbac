"""Patrols, their track batches, the daily figures made of them and the norms they are judged by.

A track is stored one row per batch the phone sent (a LineStringM whose measure is the point's
time in epoch seconds, beside arrays of accuracy and mock flags), not one row per point: at
Guangzhou's 57 million points a day a row per point costs a tuple header and index entry each.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from geoalchemy2 import Geometry
from sqlalchemy import (
    REAL,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.areas.models import GRID_KINDS, InArea
from backend.db import Base

CLOSED_BY = ("phone", "idle")


class Patrol(Base):
    """A worker's walk (巡查), from start to end; the phone makes its id."""

    __tablename__ = "patrols"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Who ended it: the phone, or the server after the idle time.
    closed_by: Mapped[str | None] = mapped_column(String(5))
    # The newest point's time, and when the server last heard of the patrol.
    last_point_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    points: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("closed_by IN ('phone', 'idle')", name="closed_by"),
        CheckConstraint("(ended_at IS NULL) = (closed_by IS NULL)", name="ended"),
        Index("ix_patrols_worker_started", "worker_id", "started_at"),
        Index("ix_patrols_open_seen", "last_seen_at", postgresql_where=text("ended_at IS NULL")),
    )


class PatrolBatch(Base):
    """One batch of a patrol's track as the phone sent it, in WGS84 and in time order."""

    __tablename__ = "patrol_batches"

    patrol_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("patrols.id", ondelete="CASCADE"), primary_key=True
    )
    batch_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    # SHA-256 of the batch as sent: the same key with other content is a conflict.
    content_hash: Mapped[bytes] = mapped_column(LargeBinary(32))
    crs: Mapped[str] = mapped_column(String(10))
    first_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    n_points: Mapped[int] = mapped_column(SmallInteger)
    # Measure = epoch seconds; a one-point batch repeats its point.
    track: Mapped[object] = mapped_column(Geometry("LINESTRINGM", srid=4326, spatial_index=False))
    accuracy_m: Mapped[list[float | None]] = mapped_column(ARRAY(REAL))
    mock: Mapped[list[bool]] = mapped_column(ARRAY(Boolean))
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("n_points > 0", name="n_points"),
        Index("ix_patrol_batches_first_at", "first_at"),
    )


class PatrolDay(Base):
    """A worker's day (Asia/Shanghai) of patrolling, all grids together."""

    __tablename__ = "patrol_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    points: Mapped[int] = mapped_column(Integer)
    # Points not counted: faster than walking or riding, impossible accuracy, mock locations.
    flagged_speed: Mapped[int] = mapped_column(Integer)
    flagged_accuracy: Mapped[int] = mapped_column(Integer)
    flagged_mock: Mapped[int] = mapped_column(Integer)
    patrol_seconds: Mapped[float] = mapped_column(Double)
    inside_seconds: Mapped[float] = mapped_column(Double)
    # The longest stretch outside every grid of the worker; flagged when long.
    longest_outside_seconds: Mapped[float] = mapped_column(Double)
    long_stay_outside: Mapped[bool] = mapped_column(Boolean)
    distance_m: Mapped[float] = mapped_column(Double)
    computed_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class PatrolGridDay(InArea, Base):
    """A worker's day in one of their own grids: time inside, coverage and visits."""

    __tablename__ = "patrol_grid_days"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    worker_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True)
    grid_kind: Mapped[str | None] = mapped_column(String(20))
    inside_seconds: Mapped[float] = mapped_column(Double)
    # Share of the grid's area within the coverage distance of the day's counted track.
    coverage: Mapped[float] = mapped_column(Double)
    rental_buildings_visited: Mapped[int] = mapped_column(Integer)
    emergency_units_visited: Mapped[int] = mapped_column(Integer)

    __table_args__ = (
        Index("ix_patrol_grid_days_grid_day", "grid_code", "day"),
        Index("ix_patrol_grid_days_village_day", "village_code", "day"),
        Index("ix_patrol_grid_days_town_day", "town_code", "day"),
        Index("ix_patrol_grid_days_district_day", "district_code", "day"),
    )


class PatrolNorm(Base):
    """What a worker-day in a grid of a kind must reach on a working day (admin-set)."""

    __tablename__ = "patrol_norms"

    grid_kind: Mapped[str] = mapped_column(String(20), primary_key=True)
    min_hours: Mapped[float] = mapped_column(Double)
    min_coverage: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("min_hours >= 0 AND min_hours <= 24", name="min_hours"),
        CheckConstraint("min_coverage >= 0 AND min_coverage <= 1", name="min_coverage"),
        CheckConstraint(f"grid_kind IN {GRID_KINDS!r}", name="grid_kind"),
    )


class CalendarDay(Base):
    """A day whose working status differs from the week's rule (Monday to Friday): a public
    holiday on a weekday (节假日), or a weekend day worked in its place (调休上班). Set by admins
    each year from the State Council's notice; a day not listed follows the rule."""

    __tablename__ = "work_calendar"

    day: Mapped[date] = mapped_column(Date, primary_key=True)
    working: Mapped[bool] = mapped_column(Boolean)
    name: Mapped[str | None] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
