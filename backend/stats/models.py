"""Assessments (考核): a month's closure figures frozen as they stood at its end; and the
closure rollups, the figures' counts per grid, category and local day as they stand now.

Assessment rows are written once, when the month is frozen, and the database refuses to change
or delete them (as it does the events' trail): later changes to the events never alter an
assessment.

The rollups are kept by a trigger on events (migration 0090): every insert, update or delete of
an event takes its old contribution out and puts its new one in, in the same transaction, so
they never lag. An area code an event lacks (an unassigned report has no grid) is '' here, so
that the key can be the primary key.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    UniqueConstraint,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.areas.models import CODE_LENGTH
from backend.db import Base

_LEVELS = "('district', 'town', 'village', 'grid')"


class Assessment(Base):
    """One area's month, frozen: the closure figures of its subtree for the events due in the
    local month, as of the month's end."""

    __tablename__ = "assessments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    area_code: Mapped[str] = mapped_column(String(CODE_LENGTH["grid"]))
    # Its name when frozen (null for an area that no longer exists).
    area_name: Mapped[str | None] = mapped_column(String(100))
    # The local month's first day (Asia/Shanghai); window_from and window_to are its bounds.
    month: Mapped[date] = mapped_column(Date)
    window_from: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    window_to: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    as_of: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    benchmark: Mapped[float] = mapped_column(Double)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    __table_args__ = (
        # One assessment per area and month: a second one is a conflict, not a new version.
        UniqueConstraint("area_code", "month"),
        CheckConstraint("extract(day FROM month) = 1", name="month_first_day"),
        CheckConstraint("window_from < window_to AND as_of >= window_to", name="period"),
        CheckConstraint("benchmark > 0 AND benchmark <= 1", name="benchmark"),
    )


class AssessmentFigures(Base):
    """The frozen figures of one group: the assessed area itself (its totals), or an area of
    one of the levels below it, or the events of the subtree in no area of that level (code
    null)."""

    __tablename__ = "assessment_figures"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    assessment_id: Mapped[int] = mapped_column(ForeignKey("assessments.id", ondelete="RESTRICT"))
    level: Mapped[str] = mapped_column(String(8))
    code: Mapped[str | None] = mapped_column(String(CODE_LENGTH["grid"]))
    name: Mapped[str | None] = mapped_column(String(100))
    due: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    closed_on_time: Mapped[int] = mapped_column(Integer)
    reworked: Mapped[int] = mapped_column(Integer)
    overdue_open: Mapped[int] = mapped_column(Integer)
    closure_rate: Mapped[float | None] = mapped_column(Double)
    on_time_rate: Mapped[float | None] = mapped_column(Double)
    rework_rate: Mapped[float | None] = mapped_column(Double)
    median_hours_to_close: Mapped[float | None] = mapped_column(Double)
    p90_hours_to_close: Mapped[float | None] = mapped_column(Double)
    meets_benchmark: Mapped[bool] = mapped_column(Boolean)
    wilson_low: Mapped[float | None] = mapped_column(Double)
    wilson_high: Mapped[float | None] = mapped_column(Double)
    below_benchmark: Mapped[bool] = mapped_column(Boolean)

    __table_args__ = (
        UniqueConstraint("assessment_id", "level", "code"),
        CheckConstraint(f"level IN {_LEVELS}", name="level"),
    )


# The parts of the composite index (综合指数), in the order the page and the CSV list them.
INDEX_PARTS = ("closure_rate", "on_time_rate", "overdue_open", "check_in_rate", "alerts_in_progress")
_PARTS_SQL = "(" + ", ".join(f"'{p}'" for p in INDEX_PARTS) + ")"


class IndexWeight(Base):
    """The weight of one part of the composite index; admins set them, everyone reads them."""

    __tablename__ = "index_weights"

    part: Mapped[str] = mapped_column(String(20), primary_key=True)
    weight: Mapped[float] = mapped_column(Double)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint(f"part IN {_PARTS_SQL}", name="part"),
        CheckConstraint("weight >= 0 AND weight <= 100", name="weight"),
    )


class RollupKey:
    """The key of both rollups: the due events' area codes, category and local due day."""

    district_code: Mapped[str] = mapped_column(String(CODE_LENGTH["district"]), primary_key=True)
    town_code: Mapped[str] = mapped_column(String(CODE_LENGTH["town"]), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(CODE_LENGTH["village"]), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(CODE_LENGTH["grid"]), primary_key=True)
    category_code: Mapped[str] = mapped_column(String(40), primary_key=True)
    due_day: Mapped[date] = mapped_column(Date, primary_key=True)


class ClosureRollup(RollupKey, Base):
    """The counts closure figures need, of the due events (not rejected, with a due time) of
    one grid and category whose due time falls on one local day (Asia/Shanghai), as the events'
    columns stand now: due, closed, closed by the due time, closed after rework."""

    __tablename__ = "closure_rollups"

    due: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    closed_on_time: Mapped[int] = mapped_column(Integer)
    reworked: Mapped[int] = mapped_column(Integer)


class ClosureRollupHours(RollupKey, Base):
    """A histogram of the hours from acceptance to closing of the same events once closed: how
    many fell in each of fixed log-spaced buckets (backend.stats.rollups), so that the
    histograms of any days and grids add up to the histogram of their union."""

    __tablename__ = "closure_rollup_hours"

    bucket: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    closed: Mapped[int] = mapped_column(Integer)


class _TierFigures:
    """The rollups' counts summed over a period, with the histogram of hours to close in one
    bytea: its non-empty buckets, five bytes each (the bucket, then its count as a big-endian
    int4; backend.stats.rollups reads them)."""

    due: Mapped[int] = mapped_column(Integer)
    closed: Mapped[int] = mapped_column(Integer)
    closed_on_time: Mapped[int] = mapped_column(Integer)
    reworked: Mapped[int] = mapped_column(Integer)
    hours: Mapped[bytes] = mapped_column(LargeBinary)


class ClosureRollupMonth(_TierFigures, Base):
    """The closure rollups of one grid (all categories) and local month of the due time, the
    month its first day (migration 0100); keyed district first, then month, so that a scope's
    months are one index range."""

    __tablename__ = "closure_rollup_months"
    __table_args__ = {"postgresql_with": {"fillfactor": 80}}

    district_code: Mapped[str] = mapped_column(String(CODE_LENGTH["district"]), primary_key=True)
    month: Mapped[date] = mapped_column(Date, primary_key=True)
    town_code: Mapped[str] = mapped_column(String(CODE_LENGTH["town"]), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(CODE_LENGTH["village"]), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(CODE_LENGTH["grid"]), primary_key=True)


class ClosureRollupYear(_TierFigures, Base):
    """The closure rollups of one grid (all categories) and local year of the due time, the
    year its first day (migration 0100)."""

    __tablename__ = "closure_rollup_years"
    __table_args__ = {"postgresql_with": {"fillfactor": 80}}

    district_code: Mapped[str] = mapped_column(String(CODE_LENGTH["district"]), primary_key=True)
    year: Mapped[date] = mapped_column(Date, primary_key=True)
    town_code: Mapped[str] = mapped_column(String(CODE_LENGTH["town"]), primary_key=True)
    village_code: Mapped[str] = mapped_column(String(CODE_LENGTH["village"]), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(CODE_LENGTH["grid"]), primary_key=True)
