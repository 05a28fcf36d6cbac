"""Taking reports in (idempotently), assigning them to grids, and reading them back."""

from __future__ import annotations

import hashlib
import json
import re
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import event, func, select, text, tuple_
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth.service import Actor, Forbidden
from backend.common.fields import to_shape
from backend.db import driver_rows
from backend.errors import Conflict, NotFound, ValidationFailed, field_error
from backend.events.models import CATEGORY_CODE, Category, Event, event_named
from backend.ops import metrics
from geo.crs import to_wgs84


@dataclass(frozen=True)
class Report:
    """A report as the phone sent it; `lon`/`lat` are in `crs`."""

    category: str
    description: str
    lon: float
    lat: float
    crs: str = "wgs84"
    id: uuid.UUID | None = None
    accuracy_m: float | None = None
    occurred_at: datetime | None = None
    reported_at: datetime | None = None
    contacts: list[dict[str, Any]] | None = None
    outside: bool = False
    # 就地化解: handled on the spot, so it starts at resolved and only awaits verification.
    handled_on_spot: bool = False
    resolution_note: str | None = None
    photos_expected: int = 0
    channel: str = "grid_worker"
    # The 12345 hotline's ticket (channel hotline) and the camera (channel video).
    external_ticket_id: str | None = None
    camera_id: str | None = None

    def content_hash(self) -> str:
        """Fingerprint of what was reported, so a retry can be told from a different report."""

        def moment(value: datetime | None) -> str | None:
            return value.astimezone(UTC).isoformat() if value else None

        canonical = {
            "category": self.category,
            "description": self.description,
            "location": [round(self.lon, 9), round(self.lat, 9)],
            "crs": self.crs,
            "accuracy_m": self.accuracy_m,
            "occurred_at": moment(self.occurred_at),
            "reported_at": moment(self.reported_at),
            "contacts": self.contacts,
            "outside": self.outside,
            "handled_on_spot": self.handled_on_spot,
            "resolution_note": self.resolution_note,
            "photos_expected": self.photos_expected,
        }
        if self.channel != "grid_worker":  # reports stored before channels keep their hash
            canonical |= {
                "channel": self.channel,
                "camera_id": self.camera_id,
                "external_ticket_id": self.external_ticket_id,
            }
        raw = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.code)))


def _may_report_here(actor: Actor, report: Report, assignment: areas.Assignment) -> None:
    if actor.read_only:
        raise Forbidden("API keys are read-only.")
    if not actor.may_report_via(report.channel):
        raise Forbidden(f"A {actor.role} may not register a report of the {report.channel} channel.")
    if actor.takes_citizen_reports:
        return
    if not (report.outside or actor.places(assignment.codes)):
        where = "not in (or near) your grids" if actor.role == "worker" else "outside your area"
        raise Forbidden(f"This place is {where}; send outside=true to report it anyway.")


# A change here is seen at once by this process and within the TTL by the others.
_CATEGORY_TTL_S = 30.0
_categories: dict[str, tuple[float, int]] = {}


def category_sla_hours(session: Session, code: str) -> int | None:
    """SLA hours of a category, or None if there is none: cached briefly, it is on every report.

    Only known codes are cached: unknown ones, sent by anyone, would fill the cache without
    bound, and a category created a moment later must be found at once."""
    now = time.monotonic()
    cached = _categories.get(code)
    if cached is not None and now - cached[0] <= _CATEGORY_TTL_S:
        return cached[1]
    sla = session.scalar(select(Category.sla_hours).where(Category.code == code))
    if sla is None:
        _categories.pop(code, None)
        return None
    _categories[code] = (now, sla)
    return sla


def _forget_categories(session: Session) -> None:
    """Drop the cached SLAs now and when this transaction ends: a value read meanwhile may be
    this transaction's own, uncommitted one."""
    _categories.clear()
    for moment in ("after_commit", "after_rollback"):
        if not event.contains(session, moment, _clear_categories):
            event.listen(session, moment, _clear_categories)


def _clear_categories(_session: Session) -> None:
    _categories.clear()


_EVENT_COLUMNS = [column.name for column in Event.__table__.columns]
_RETURNED = ", ".join(_EVENT_COLUMNS)
# The event and its first trail entry in one statement: one round trip, one transaction. It goes
# straight to the driver: reporting is the hottest write, and the ORM's statement handling costs
# more than the statement. A trigger claims the id in event_ids first and stores nothing when it
# was already claimed (ON CONFLICT DO NOTHING across all partitions, migration 0110).
_INSERT_EVENT = (
    "WITH ins AS ("
    " INSERT INTO events (id, category_code, description, location, crs, source_lon, source_lat,"
    "  accuracy_m, occurred_at, reported_at, reporter_id, outside, grid_code, village_code,"
    "  town_code, district_code, assignment, boundary_id, assignment_distance_m, responsible_code,"
    "  contacts, photos_expected, content_hash, status, accepted_at, resolved_at, resolved_by, due_at,"
    "  channel, camera_id)"
    " VALUES (:id, :category, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326),"
    "  :crs, :source_lon, :source_lat, :accuracy_m, :occurred_at, :reported_at,"
    "  :reporter_id, :outside, :grid, :village, :town, :district, :assignment,"
    "  :boundary_id, :distance_m, :responsible, :contacts::jsonb, :photos_expected,"
    "  :content_hash, :status, :accepted_at, :accepted_at, :resolved_by, :due_at, :channel, :camera_id)"
    f" RETURNING {_RETURNED}),"
    " trail AS (INSERT INTO event_actions (event_id, action, to_status, actor_id, note)"
    "  SELECT id, 'report', status, reporter_id, :note FROM ins)"
    f" SELECT {_RETURNED} FROM ins"
)


def report_event(
    session: Session, report: Report, *, actor: Actor, nearest_min_m: float = 50.0
) -> tuple[Event, bool]:
    """Store a report once; a retry with the same id and content returns the stored event.

    Returns the event and whether it was created now. The same id with other content, or from
    another reporter, is a Conflict. Races between retries are settled by the id's claim (the
    key of event_ids), not by a prior check.
    """
    reporter_id = actor.user_id
    sla_hours = category_sla_hours(session, report.category)
    if sla_hours is None:
        raise ValidationFailed(
            f"Unknown category {report.category!r}.",
            errors=[field_error("category", "Unknown category; see /api/v1/categories.")],
        )
    lon, lat = to_wgs84(report.lon, report.lat, report.crs)
    assignment = areas.assign_point(
        session, lon, lat, accuracy_m=report.accuracy_m, nearest_min_m=nearest_min_m
    )
    _may_report_here(actor, report, assignment)
    _check_channel(report)
    codes = assignment.codes
    event_id = report.id or uuid.uuid4()
    digest = report.content_hash()
    if report.external_ticket_id is not None:
        handed_off = _claim_ticket(session, report.external_ticket_id, event_id)
        if handed_off is not None:
            return _stored(session, handed_off, digest, reporter_id, "external_ticket_id"), False
    status, accepted_at, due_at = "reported", None, None
    if report.handled_on_spot:
        if not report.resolution_note:
            raise ValidationFailed(
                "Say how it was handled on the spot.",
                errors=[field_error("resolution_note", "Required with handled_on_spot.")],
            )
        status, accepted_at = "resolved", session.execute(select(func.now())).scalar_one()
        due_at = accepted_at + timedelta(hours=sla_hours)
    params = {
        "id": event_id,
        "category": report.category,
        "description": report.description,
        "lon": lon,
        "lat": lat,
        "crs": report.crs,
        "source_lon": report.lon,
        "source_lat": report.lat,
        "accuracy_m": report.accuracy_m,
        "occurred_at": report.occurred_at,
        "reported_at": report.reported_at,
        "reporter_id": reporter_id,
        "outside": report.outside,
        "grid": codes["grid"],
        "village": codes["village"],
        "town": codes["town"],
        "district": codes["district"],
        "assignment": assignment.method,
        "boundary_id": assignment.boundary_id,
        "distance_m": assignment.distance_m,
        "responsible": _desk(actor, report) or codes["village"] or codes["district"],
        "contacts": json.dumps(report.contacts, ensure_ascii=False) if report.contacts is not None else None,
        "photos_expected": report.photos_expected,
        "content_hash": digest,
        "status": status,
        "accepted_at": accepted_at,
        "resolved_by": reporter_id if accepted_at else None,
        "due_at": due_at,
        "note": report.resolution_note,
        "channel": report.channel,
        "camera_id": report.camera_id,
    }
    row = next(iter(driver_rows(session, _INSERT_EVENT, params)), None)
    if row is not None:
        metrics.count_report(session, assignment.method)
        # A detached Event for the answer; the row itself is already written.
        created = Event(**dict(zip(_EVENT_COLUMNS, row, strict=True)))
        created.external_ticket_id = report.external_ticket_id
        return created, True
    return _stored(session, event_id, digest, reporter_id, "id"), False


def _stored(session: Session, event_id: uuid.UUID, digest: str, reporter_id: int | None, key: str) -> Event:
    """The event stored under this id (or hotline ticket), if it is this report again."""
    stored = session.scalars(
        select(Event).where(event_named(event_id)).execution_options(populate_existing=True)
    ).one_or_none()
    if stored is None:  # pragma: no cover - rows are never deleted
        raise Conflict(f"Event {event_id} could not be stored; retry.")
    if stored.content_hash != digest or stored.reporter_id != reporter_id:
        raise Conflict(
            f"Event {event_id} was already reported with different content.",
            errors=[field_error(key, f"This {key} is taken by a different report.")],
        )
    return stored


# What each channel must say about where the matter came from, and may not say otherwise.
_CHANNEL_DETAILS = {"hotline": "external_ticket_id", "video": "camera_id"}


def _check_channel(report: Report) -> None:
    for channel, name in _CHANNEL_DETAILS.items():
        given = getattr(report, name) is not None
        if given != (report.channel == channel):
            message = f"Required with channel {channel}." if not given else f"Only with channel {channel}."
            raise ValidationFailed(f"{name}: {message}", errors=[field_error(name, message)])


def _desk(actor: Actor, report: Report) -> str | None:
    """A walk-in registered at a centre's desk sits with that centre (its staff's tier)."""
    if report.channel == "centre_desk" and actor.role == "supervisor":
        return actor.area_code
    return None


_CLAIM_TICKET = text(
    "INSERT INTO hotline_tickets (ticket_id, event_id) VALUES (:ticket, :id)"
    " ON CONFLICT (ticket_id) DO NOTHING RETURNING event_id"
)
_TICKET_EVENT = text("SELECT event_id FROM hotline_tickets WHERE ticket_id = :ticket")


def _claim_ticket(session: Session, ticket: str, event_id: uuid.UUID) -> uuid.UUID | None:
    """Take a hotline ticket for a new event; a ticket already handed off gives its event.
    Two handoffs at once wait on the ticket's key, so the second finds the first's event."""
    if session.execute(_CLAIM_TICKET, {"ticket": ticket, "id": event_id}).first() is not None:
        return None
    return session.execute(_TICKET_EVENT, {"ticket": ticket}).scalar_one()  # type: ignore[no-any-return]


def get_event(session: Session, event_id: uuid.UUID, actor: Actor) -> Event:
    """An event the actor may see; any other is NotFound, so existence does not leak."""
    event = session.scalars(select(Event).where(event_named(event_id))).one_or_none()
    if event is None or not actor.covers(event):
        raise NotFound(f"No event {event_id}.")
    return event


def list_events(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    status: str | None = None,
    category: str | None = None,
    channel: str | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events newest first, filtered in SQL; `after` is the last (received_at, id) seen."""
    query = (
        select(Event)
        .where(actor.reads(Event))
        .order_by(Event.received_at.desc(), Event.id.desc())
        .limit(limit)
    )
    if area:
        level = areas.level_of(area)
        if level is None:
            raise ValidationFailed("Not an area code.", errors=[field_error("area", "Not an area code.")])
        query = query.where(Event.code_column(level) == area)
    if status:
        query = query.where(Event.status == status)
    if category:
        query = query.where(Event.category_code == category)
    if channel:
        query = query.where(Event.channel == channel)
    if received_from:
        query = query.where(Event.received_at >= received_from)
    if received_to:
        query = query.where(Event.received_at < received_to)
    if after:
        query = query.where(tuple_(Event.received_at, Event.id) < tuple_(*after))
    return list(session.scalars(query))


def create_category(
    session: Session,
    *,
    code: str,
    name_zh: str,
    name_en: str,
    sla_hours: int,
    sensitive: bool = False,
    parent: str | None = None,
) -> Category:
    if session.get(Category, code) is not None:
        raise Conflict(f"Category {code} exists.", errors=[field_error("code", "Already exists.")])
    if parent is not None and session.get(Category, parent) is None:
        raise ValidationFailed(
            f"No parent category {parent}.", errors=[field_error("parent", "Unknown category.")]
        )
    category = Category(
        code=code,
        name_zh=name_zh,
        name_en=name_en,
        sla_hours=sla_hours,
        sensitive=sensitive,
        parent_code=parent,
    )
    session.add(category)
    session.flush()
    _forget_categories(session)
    return category


def update_category(session: Session, code: str, **changes: Any) -> Category:
    category = session.get(Category, code) if re.match(CATEGORY_CODE, code) else None
    if category is None:
        raise NotFound(f"No category {code}.")
    for name, value in changes.items():
        setattr(category, name, value)
    session.flush()
    _forget_categories(session)
    return category


_OPEN_OVERDUE = text(
    "SELECT count(*) FROM events WHERE status NOT IN ('closed', 'rejected') AND due_at < now()"
)


def count_open_overdue(session: Session) -> int:
    """Open events (neither closed nor rejected) past their due time, everywhere: one count over
    the index of open events by due time."""
    return int(session.execute(_OPEN_OVERDUE).scalar_one())


# The reported event's own values are bound rather than joined: the planner then reads only the
# months its window covers (events are partitioned by received_at) and, in them, the location's
# GiST index. Joined to the row, both are known only while the query runs, and a city's ten years
# of months were scanned for every report.
_NEARBY_OPEN = (
    "SELECT e.id, e.status, e.received_at,"
    " ST_Distance(e.location::geography, p.location::geography) AS distance_m"
    " FROM (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326) AS location) AS p"
    " JOIN events e ON e.category_code = :category"
    " WHERE e.id <> :id"
    " AND e.status NOT IN ('resolved', 'closed', 'rejected')"
    " AND e.received_at > :since"
    # A degree is at least 60 km anywhere in China: this box prefilter uses the GiST index.
    " AND ST_DWithin(e.location, p.location, :radius / 60000.0)"
    " AND ST_DWithin(e.location::geography, p.location::geography, :radius)"
    " AND {scope}"
    " ORDER BY distance_m, e.id LIMIT 10"
)


def possible_duplicates(session: Session, event: Event, actor: Actor) -> list[dict[str, Any]]:
    """Open events of the same category near this one (that the actor may see), recent enough
    to be the same matter: nearest first."""
    category = session.get(Category, event.category_code)
    if category is None or event.location is None:
        return []
    point: Any = to_shape(event.location)  # type: ignore[arg-type]  # a Point, from WKB
    scope, params = actor.sql_scope("e", Event)
    values = {
        "id": event.id,
        "lon": point.x,
        "lat": point.y,
        "category": event.category_code,
        "since": event.received_at - timedelta(hours=category.duplicate_window_h),
        "radius": float(category.duplicate_radius_m),
        **params,
    }
    rows = driver_rows(session, _NEARBY_OPEN.format(scope=scope), values)
    return [
        {
            "id": row.id,
            "status": row.status,
            "received_at": row.received_at,
            "distance_m": round(float(row.distance_m), 1),
        }
        for row in rows
    ]
