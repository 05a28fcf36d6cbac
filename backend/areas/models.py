"""The area tree: one row per boundary version."""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

from geoalchemy2 import Geometry
from geoalchemy2.elements import WKBElement
from sqlalchemy import BigInteger, CheckConstraint, DateTime, Identity, Index, String, func, text
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

from backend.db import Base

LEVELS = ("district", "town", "village", "grid")
CODE_LENGTH = {"district": 6, "town": 9, "village": 12, "grid": 15}
# A code of any level, as a regular expression (without anchors); one level's: code_pattern(level).
CODE_PATTERN = "|".join(rf"\d{{{length}}}" for length in CODE_LENGTH.values())


def code_pattern(level: str) -> str:
    return rf"\d{{{CODE_LENGTH[level]}}}"


GRID_KINDS = ("comprehensive", "dedicated")


class InArea:
    """A row placed in the area tree: its grid and that grid's village, town and district, so
    that reads scoped to an area need no spatial join (events, org rows, alerts).

    `CODES_NULLABLE` says whether a row may sit outside every grid (an unassigned report);
    `REACHED_THROUGH` names the person columns through which a worker reaches a row outside
    their grids (the reporter and the assignee of an event).
    """

    CODES_NULLABLE: ClassVar[bool] = False
    REACHED_THROUGH: ClassVar[tuple[str, ...]] = ()

    @declared_attr
    def grid_code(cls) -> Mapped[str]:
        return mapped_column(String(CODE_LENGTH["grid"]), nullable=cls.CODES_NULLABLE)

    @declared_attr
    def village_code(cls) -> Mapped[str]:
        return mapped_column(String(CODE_LENGTH["village"]), nullable=cls.CODES_NULLABLE)

    @declared_attr
    def town_code(cls) -> Mapped[str]:
        return mapped_column(String(CODE_LENGTH["town"]), nullable=cls.CODES_NULLABLE)

    @declared_attr
    def district_code(cls) -> Mapped[str]:
        return mapped_column(String(CODE_LENGTH["district"]), nullable=cls.CODES_NULLABLE)

    @classmethod
    def code_column(cls, level: str) -> Any:
        """The column holding the code of the row's area at `level`."""
        return getattr(cls, f"{level}_code")

    def code_at(self, level: str) -> str | None:
        code: str | None = getattr(self, f"{level}_code")
        return code

    def area_codes(self) -> dict[str, str | None]:
        return {level: self.code_at(level) for level in LEVELS}


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
