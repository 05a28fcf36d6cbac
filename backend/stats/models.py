"""Assessments (考核): a month's closure figures frozen as they stood at its end.

Rows are written once, when the month is frozen, and the database refuses to change or delete
them (as it does the events' trail): later changes to the events never alter an assessment.
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
