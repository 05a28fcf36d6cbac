"""The area tree: one row per boundary version."""

from __future__ import annotations

from datetime import datetime

from geoalchemy2 import Geometry
from geoalchemy2.elements import WKBElement
from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base

LEVELS = ("district", "town", "village", "grid")
CODE_LENGTH = {"district": 6, "town": 9, "village": 12, "grid": 15}
GRID_KINDS = ("comprehensive", "dedicated")


class Area(Base):
    """A district, town, village or grid; a boundary change closes this row and opens a new one."""

    __tablename__ = "areas"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(15))
    level: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(String(15))
    kind: Mapped[str | None] = mapped_column(String(20))
    geom: Mapped[WKBElement] = mapped_column(
        Geometry("MULTIPOLYGON", srid=4326, spatial_index=False), nullable=False
    )
    valid_from: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    valid_to: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (
        CheckConstraint("level IN ('district', 'town', 'village', 'grid')", name="level"),
        CheckConstraint(
            "code ~ '^[0-9]+$' AND length(code) = CASE level WHEN 'district' THEN 6 "
            "WHEN 'town' THEN 9 WHEN 'village' THEN 12 ELSE 15 END",
            name="code_matches_level",
        ),
        CheckConstraint("(level = 'district') = (parent_code IS NULL)", name="parent_unless_district"),
        CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name="valid_range"),
        Index("uq_areas_current_code", "code", unique=True, postgresql_where=text("valid_to IS NULL")),
        Index("ix_areas_parent_code", "parent_code", postgresql_where=text("valid_to IS NULL")),
        Index("ix_areas_geom", "geom", postgresql_using="gist"),
        Index(
            "ix_areas_current_grid_geom",
            "geom",
            postgresql_using="gist",
            postgresql_where=text("level = 'grid' AND valid_to IS NULL"),
        ),
    )
