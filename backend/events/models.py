"""Categories, events and the append-only action trail."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from geoalchemy2 import Geometry
from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    ColumnElement,
    DateTime,
    Double,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    and_,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID
from sqlalchemy.orm import Mapped, column_property, mapped_column

from backend.areas.models import InArea
from backend.db import Base

STATUSES = ("reported", "accepted", "dispatched", "in_progress", "resolved", "closed", "rejected")
CATEGORY_CODE = r"^[a-z][a-z0-9_]{0,39}\Z"
ASSIGNMENTS = ("contains", "nearest", "manual", "unassigned")
# Where a matter came from (渠道): a grid worker's phone, a walk-in at a centre's desk (综治中心窗口),
# a handoff from the 12345 hotline, a resident online (Open311), a camera alert (雪亮工程), other.
CHANNELS = ("grid_worker", "centre_desk", "hotline", "citizen", "video", "other")
CHANNEL_NAMES = {
    "grid_worker": "网格员上报",
    "centre_desk": "综治中心窗口",
    "hotline": "12345热线",
    "citizen": "群众网上反映",
    "video": "视频监控",
    "other": "其他",
}
# The longest external reference kept (a hotline ticket, a camera id).
REFERENCE_LENGTH = 64
# The longest client file name an attachment keeps.
FILENAME_LENGTH = 200

# Closure statistics read the due events of a district or town over a window and group them by
# any of these columns, so those two indexes cover them (index-only scans); a village's or grid's
# few events are found by the *_received indexes. The statistics indexes skip events without a
# due time: a new report is not accepted yet and adds nothing to them. (Indexes on (grid_code,
# due_at) or (village_code, due_at) would tempt the planner into reading a district's events in
# grid order through the heap, several times slower than hashing them.) The id is there for the
# figures as of a past moment, which look up the trail of a few events.
_STATS_COLUMNS = (
    "village_code",
    "grid_code",
    "category_code",
    "status",
    "accepted_at",
    "closed_at",
    "rework_count",
    "assignee_id",
    "reporter_id",
    "id",
)
_HAS_DUE = text("due_at IS NOT NULL")


class Category(Base):
    """An event category (事项分类) with its service-level hours."""

    __tablename__ = "categories"

    code: Mapped[str] = mapped_column(String(40), primary_key=True)
    name_zh: Mapped[str] = mapped_column(String(100))
    name_en: Mapped[str] = mapped_column(String(100))
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("categories.code"))
    sla_hours: Mapped[int] = mapped_column(Integer)
    sensitive: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Open reports of this category this close and this recent are offered as possible duplicates.
    duplicate_radius_m: Mapped[int] = mapped_column(Integer, server_default="100")
    duplicate_window_h: Mapped[int] = mapped_column(Integer, server_default="168")

    __table_args__ = (CheckConstraint("sla_hours > 0", name="sla_positive"),)


class EventIdClaim(Base):
    """A report's id, claimed before its event is stored: the one place the phone's UUID is
    unique, since the events' own key must include the month they are partitioned by. A trigger
    on events takes the claim (migration 0110), and the tables that name an event point here."""

    __tablename__ = "event_ids"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    # The event's received_at: its partition, for lookups by id alone.
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class HotlineTicket(Base):
    """The 12345 hotline's ticket an event was handed off with: one event per ticket, so a
    repeated handoff finds the stored event. (Its own table, so events stay free of unique keys
    beyond their id.)"""

    __tablename__ = "hotline_tickets"

    ticket_id: Mapped[str] = mapped_column(String(REFERENCE_LENGTH), primary_key=True)
    # Written just before its event, in the same transaction: checked at commit.
    event_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("event_ids.id", deferrable=True, initially="DEFERRED"), unique=True
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Event(InArea, Base):
    """One report from the field and where it stands in the closed loop."""

    __tablename__ = "events"
    # An unassigned report sits in no grid; a worker reaches the events they reported or were
    # dispatched, wherever those lie.
    CODES_NULLABLE = True
    REACHED_THROUGH = ("reporter_id", "assignee_id")

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    category_code: Mapped[str] = mapped_column(ForeignKey("categories.code"))
    description: Mapped[str] = mapped_column(Text)
    # Its category is sensitive (矛盾纠纷, 出租屋与流动人口): the text is withheld from GIS keys.
    sensitive: Mapped[bool] = column_property(
        select(Category.sensitive).where(Category.code == category_code).scalar_subquery()
    )
    location: Mapped[object] = mapped_column(
        Geometry("POINT", srid=4326, spatial_index=False), nullable=False
    )
    crs: Mapped[str] = mapped_column(String(10))
    # The coordinates as the phone sent them, before conversion to WGS84.
    source_lon: Mapped[float] = mapped_column(Double)
    source_lat: Mapped[float] = mapped_column(Double)
    accuracy_m: Mapped[float | None] = mapped_column(Double)
    occurred_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    reported_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The partition key (monthly, backend.events.partitions), so part of the table's primary key,
    # and never changed (a trigger refuses it); the id alone identifies an event (EventIdClaim)
    # and is the mapper's key.
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.now()
    )
    reporter_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # The reporter said the place is outside their own grids (e.g. seen on the way home).
    outside: Mapped[bool] = mapped_column(Boolean, server_default="false")
    assignment: Mapped[str] = mapped_column(String(10))
    boundary_id: Mapped[int | None] = mapped_column(ForeignKey("areas.id"))
    assignment_distance_m: Mapped[float | None] = mapped_column(Double)
    responsible_code: Mapped[str | None] = mapped_column(String(15))
    assignee_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # Dispatched to a department (职能部门) rather than a worker.
    department: Mapped[str | None] = mapped_column(String(100))
    status: Mapped[str] = mapped_column(String(12), server_default="reported")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    accepted_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    resolved_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    # The last closing; cleared when the event is reopened.
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    closed_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    rework_count: Mapped[int] = mapped_column(Integer, server_default="0")
    version: Mapped[int] = mapped_column(Integer, server_default="1")
    contacts: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONB)
    photos_expected: Mapped[int] = mapped_column(Integer, server_default="0")
    content_hash: Mapped[str] = mapped_column(String(64))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    channel: Mapped[str] = mapped_column(String(12), server_default="grid_worker")
    # The camera that raised a video alert.
    camera_id: Mapped[str | None] = mapped_column(String(REFERENCE_LENGTH))
    external_ticket_id: Mapped[str | None] = column_property(
        select(HotlineTicket.ticket_id).where(HotlineTicket.event_id == id).scalar_subquery()
    )

    __table_args__ = (
        CheckConstraint("channel IN (" + ", ".join(f"'{c}'" for c in CHANNELS) + ")", name="channel"),
        CheckConstraint(
            "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'resolved', "
            "'closed', 'rejected')",
            name="status",
        ),
        CheckConstraint("assignment IN ('contains', 'nearest', 'manual', 'unassigned')", name="assignment"),
        CheckConstraint("crs IN ('wgs84', 'gcj02', 'bd09', 'cgcs2000')", name="crs"),
        Index("ix_events_received", "received_at", "id"),
        Index("ix_events_grid_received", "grid_code", "received_at", "id"),
        Index("ix_events_village_received", "village_code", "received_at", "id"),
        Index("ix_events_town_received", "town_code", "received_at", "id"),
        Index("ix_events_district_received", "district_code", "received_at", "id"),
        Index("ix_events_location", "location", postgresql_using="gist"),
        Index(
            "ix_events_district_due",
            "district_code",
            "due_at",
            postgresql_where=_HAS_DUE,
            postgresql_include=("town_code", *_STATS_COLUMNS),
        ),
        Index(
            "ix_events_town_due",
            "town_code",
            "due_at",
            postgresql_where=_HAS_DUE,
            postgresql_include=("district_code", *_STATS_COLUMNS),
        ),
        # The reports a worker made during a patrol (backend.patrols links them by time).
        Index("ix_events_reporter_received", "reporter_id", "received_at"),
        # The overdue list: open events by due time.
        Index(
            "ix_events_open_due",
            "due_at",
            "id",
            postgresql_where=text("due_at IS NOT NULL AND status NOT IN ('closed', 'rejected')"),
        ),
        {"postgresql_partition_by": "RANGE (received_at)"},
    )
    __mapper_args__ = {"primary_key": [id]}


def event_named(event_id: uuid.UUID) -> ColumnElement[bool]:
    """The event of this id, looked for in the one partition its claim names: a condition on the
    id alone probes every month's index (PostgreSQL prunes the others when the query runs)."""
    claimed = select(EventIdClaim.received_at).where(EventIdClaim.id == event_id).scalar_subquery()
    return and_(Event.id == event_id, Event.received_at == claimed)


# The actions that set what closure statistics read of an event: accepted_at and due_at (an
# acceptance, or a report handled on the spot, accepted and resolved at once), status rejected,
# closed_at and rework_count. Statistics as of a past moment read an event's columns unless one of
# these was taken since (backend.stats.queries).
STATISTICS_ACTIONS = (
    "action IN ('accept', 'reject', 'close', 'reopen', 'return')"
    " OR (action = 'report' AND to_status <> 'reported')"
)
# The actions an event's closure as of a past moment is read from.
CLOSING_ACTIONS = ("reject", "close", "reopen", "return")


class EventAction(Base):
    """One step of an event's trail; the database refuses to change or delete it."""

    __tablename__ = "event_actions"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_ids.id"), index=True)
    action: Mapped[str] = mapped_column(String(20))
    from_status: Mapped[str | None] = mapped_column(String(12))
    to_status: Mapped[str] = mapped_column(String(12))
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    note: Mapped[str | None] = mapped_column(Text)
    data: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    # The partition key (monthly), so part of the table's primary key.
    created_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), primary_key=True, server_default=func.now()
    )

    __table_args__ = (
        # An event's closings, reopenings, returns and rejection up to a moment: closure
        # statistics as of then (covering, and a row for about one action in six).
        Index(
            "ix_event_actions_event_closing",
            "event_id",
            "created_at",
            postgresql_include=("action",),
            postgresql_where=text(
                "action IN (" + ", ".join(f"'{action}'" for action in CLOSING_ACTIONS) + ")"
            ),
        ),
        # Whether any statistics action was taken since a moment: if not, the events' columns
        # answer for it. Plain reports, the most frequent action, are not in it.
        Index("ix_event_actions_statistics_since", "created_at", postgresql_where=text(STATISTICS_ACTIONS)),
        {"postgresql_partition_by": "RANGE (created_at)"},
    )
    __mapper_args__ = {"primary_key": [id]}


class Attachment(Base):
    """A photo of an event, stored once under MEDIA_DIR by its SHA-256."""

    __tablename__ = "attachments"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_ids.id"))
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    media_type: Mapped[str] = mapped_column(String(20))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int] = mapped_column(Integer)
    height: Mapped[int] = mapped_column(Integer)
    stage: Mapped[str] = mapped_column(String(12))
    filename: Mapped[str | None] = mapped_column(String(FILENAME_LENGTH))
    uploaded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        UniqueConstraint("event_id", "sha256"),
        CheckConstraint("stage IN ('report', 'resolution')", name="stage"),
    )


class SyncState(Base):
    """What a worker's phone holds after a sync: event ids and the versions it has seen."""

    __tablename__ = "sync_states"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    event_ids: Mapped[list[uuid.UUID]] = mapped_column(ARRAY(UUID(as_uuid=True)))
    versions: Mapped[list[int]] = mapped_column(ARRAY(Integer))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
