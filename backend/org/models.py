"""Party branches and groups, buildings, emergency units, their check-ins, alerts and dispatches."""

from __future__ import annotations

from datetime import date, datetime

from geoalchemy2 import Geography, Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.areas.models import LEVELS, InArea
from backend.db import Base

GROUP_KINDS = ("building", "cooperative")
UNIT_KINDS = ("shop", "hotel", "market", "school", "other")
ALERT_KINDS = ("fire", "violence", "medical", "traffic", "disaster", "public_security", "other")


def contact(name: str | None, phone: str | None) -> dict[str, str | None] | None:
    return {"name": name, "phone": phone} if name or phone else None


def _code_indexes(table: str) -> tuple[Index, ...]:
    return tuple(Index(f"ix_{table}_{level}_code", f"{level}_code") for level in LEVELS)


class PartyBranch(InArea, Base):
    """A grid party branch (网格党支部): one per grid ("支部建在网格上")."""

    __tablename__ = "party_branches"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    secretary: Mapped[str | None] = mapped_column(String(50))
    member_count: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("grid_code"),
        CheckConstraint("member_count >= 0", name="member_count"),
        Index("ix_party_branches_village_code", "village_code"),
        Index("ix_party_branches_town_code", "town_code"),
        Index("ix_party_branches_district_code", "district_code"),
    )


class PartyGroup(InArea, Base):
    """A party group (党小组) under a branch: for buildings (楼栋) or a village economic
    cooperative (经济社)."""

    __tablename__ = "party_groups"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    branch_id: Mapped[int] = mapped_column(ForeignKey("party_branches.id"), index=True)
    kind: Mapped[str] = mapped_column(String(12))
    name: Mapped[str] = mapped_column(String(100))
    leader: Mapped[str | None] = mapped_column(String(50))
    member_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # The economic cooperative (经济社) a cooperative group looks after.
    cooperative: Mapped[str | None] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('building', 'cooperative')", name="kind"),
        CheckConstraint("member_count >= 0", name="member_count"),
        *_code_indexes("party_groups"),
    )


class Building(InArea, Base):
    """A building (楼栋): a point or a footprint, with its households and rental housing."""

    __tablename__ = "buildings"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    address: Mapped[str | None] = mapped_column(String(200))
    # As given: a point or a footprint (Polygon / MultiPolygon).
    geom: Mapped[object] = mapped_column(Geometry("GEOMETRY", srid=4326, spatial_index=False), nullable=False)
    # The point itself, or a point on the footprint: what the grid lookup used.
    location: Mapped[object] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=False
    )
    assignment: Mapped[str] = mapped_column(String(10))
    floors: Mapped[int | None] = mapped_column(SmallInteger)
    households: Mapped[int] = mapped_column(Integer, server_default="0")
    rental_units: Mapped[int] = mapped_column(Integer, server_default="0")
    # Rental units certified as safe (平安出租屋).
    safe_rental_units: Mapped[int] = mapped_column(Integer, server_default="0")
    access_control: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # The building head (楼长) and their contact: personal data.
    head_name: Mapped[str | None] = mapped_column(String(50))
    head_phone: Mapped[str | None] = mapped_column(String(40))
    party_group_id: Mapped[int | None] = mapped_column(
        ForeignKey("party_groups.id", ondelete="SET NULL"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("assignment IN ('contains', 'nearest')", name="assignment"),
        CheckConstraint(
            "households >= 0 AND rental_units >= 0 AND safe_rental_units >= 0 "
            "AND safe_rental_units <= rental_units AND (floors IS NULL OR floors > 0)",
            name="counts",
        ),
        CheckConstraint("GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')", name="geom_type"),
        *_code_indexes("buildings"),
        Index("ix_buildings_location", "location", postgresql_using="gist"),
    )

    @property
    def head(self) -> dict[str, str | None] | None:
        """The building head (楼长) as a contact, or None."""
        return contact(self.head_name, self.head_phone)


class EmergencyUnit(InArea, Base):
    """A minimum emergency unit (最小应急单元): a 2-3 person team at a shop, hotel, market or
    school."""

    __tablename__ = "emergency_units"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(10))
    members: Mapped[int] = mapped_column(SmallInteger, server_default="3")
    # Geography so that distances and the KNN order are in metres on the spheroid.
    location: Mapped[object] = mapped_column(
        Geography("POINT", srid=4326, spatial_index=False), nullable=False
    )
    assignment: Mapped[str] = mapped_column(String(10))
    # The unit's leader and their contact: personal data.
    leader_name: Mapped[str | None] = mapped_column(String(50))
    leader_phone: Mapped[str | None] = mapped_column(String(40))
    active: Mapped[bool] = mapped_column(Boolean, server_default="true")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("kind IN ('shop', 'hotel', 'market', 'school', 'other')", name="kind"),
        CheckConstraint("assignment IN ('contains', 'nearest')", name="assignment"),
        CheckConstraint("members BETWEEN 1 AND 50", name="members"),
        *_code_indexes("emergency_units"),
        # Only active units are ever called: the KNN index holds nothing else.
        Index(
            "ix_emergency_units_active_location",
            "location",
            postgresql_using="gist",
            postgresql_where=text("active"),
        ),
    )

    @property
    def leader(self) -> dict[str, str | None] | None:
        """The unit's leader as a contact, or None."""
        return contact(self.leader_name, self.leader_phone)


class CheckIn(Base):
    """A unit reporting on duty (报岗): at most one per unit per local day (Asia/Shanghai)."""

    __tablename__ = "check_ins"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("emergency_units.id", ondelete="CASCADE"))
    local_day: Mapped[date] = mapped_column(Date)
    checked_in_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    members_on_duty: Mapped[int | None] = mapped_column(SmallInteger)

    __table_args__ = (
        UniqueConstraint("unit_id", "local_day"),
        Index("ix_check_ins_local_day", "local_day"),
    )


class Alert(InArea, Base):
    """A one-point call (一点呼叫): an incident at a point that calls the nearest active units."""

    __tablename__ = "alerts"
    # Where the point lies; all None when it is outside every grid.
    CODES_NULLABLE = True

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    description: Mapped[str | None] = mapped_column(Text)
    location: Mapped[object] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=False
    )
    crs: Mapped[str] = mapped_column(String(10))
    source_lon: Mapped[float] = mapped_column(Double)
    source_lat: Mapped[float] = mapped_column(Double)
    requested_radius_m: Mapped[float] = mapped_column(Double)
    # The ring finally searched: the requested radius, or a wider one when widening was asked.
    radius_m: Mapped[float] = mapped_column(Double)
    requested: Mapped[int] = mapped_column(SmallInteger)
    found: Mapped[int] = mapped_column(SmallInteger)
    widened: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.statement_timestamp()
    )

    __table_args__ = (
        CheckConstraint(
            "kind IN ('fire', 'violence', 'medical', 'traffic', 'disaster', 'public_security', 'other')",
            name="kind",
        ),
        CheckConstraint("found <= requested AND radius_m >= requested_radius_m", name="found"),
        Index("ix_alerts_created_at", "created_at"),
        *_code_indexes("alerts"),
    )


class AlertDispatch(Base):
    """An alert calling one unit; the unit acknowledges (一线响应) and arrives (一片集结)."""

    __tablename__ = "alert_dispatches"

    alert_id: Mapped[int] = mapped_column(ForeignKey("alerts.id", ondelete="CASCADE"), primary_key=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("emergency_units.id"), primary_key=True)
    rank: Mapped[int] = mapped_column(SmallInteger)
    distance_m: Mapped[float] = mapped_column(Double)
    dispatched_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    acknowledged_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    arrived_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    arrived_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))

    __table_args__ = (
        UniqueConstraint("alert_id", "rank"),
        Index("ix_alert_dispatches_unit_id", "unit_id"),
        CheckConstraint(
            "(acknowledged_at IS NULL OR acknowledged_at >= dispatched_at) "
            "AND (arrived_at IS NULL "
            "OR (acknowledged_at IS NOT NULL AND arrived_at >= acknowledged_at))",
            name="times",
        ),
    )
