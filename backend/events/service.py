"""Taking reports in (idempotently), assigning them to grids, and reading them back."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, tuple_
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.common.fields import to_wkb
from backend.errors import Conflict, NotFound, ValidationFailed, field_error
from backend.events.models import Category, Event, EventAction
from geo.crs import to_wgs84
from shapely.geometry import Point

AREA_COLUMN = {
    "district": Event.district_code,
    "town": Event.town_code,
    "village": Event.village_code,
    "grid": Event.grid_code,
}


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
        }
        raw = json.dumps(canonical, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(raw.encode()).hexdigest()


def list_categories(session: Session) -> list[Category]:
    return list(session.scalars(select(Category).order_by(Category.code)))


def report_event(
    session: Session, report: Report, *, reporter_id: int | None = None, nearest_min_m: float = 50.0
) -> tuple[Event, bool]:
    """Store a report once; a retry with the same id and content returns the stored event.

    Returns the event and whether it was created now. The same id with other content is a
    Conflict. Races between retries are settled by the primary key, not by a prior check.
    """
    if session.get(Category, report.category) is None:
        raise ValidationFailed(
            f"Unknown category {report.category!r}.",
            errors=[field_error("category", "Unknown category; see /api/v1/categories.")],
        )
    lon, lat = to_wgs84(report.lon, report.lat, report.crs)
    assignment = areas.assign_point(
        session, lon, lat, accuracy_m=report.accuracy_m, nearest_min_m=nearest_min_m
    )
    codes = assignment.codes
    event_id = report.id or uuid.uuid4()
    digest = report.content_hash()
    statement = (
        insert(Event)
        .values(
            id=event_id,
            category_code=report.category,
            description=report.description,
            location=to_wkb(Point(lon, lat)),
            crs=report.crs,
            source_lon=report.lon,
            source_lat=report.lat,
            accuracy_m=report.accuracy_m,
            occurred_at=report.occurred_at,
            reported_at=report.reported_at,
            reporter_id=reporter_id,
            grid_code=codes["grid"],
            village_code=codes["village"],
            town_code=codes["town"],
            district_code=codes["district"],
            assignment=assignment.method,
            boundary_id=assignment.boundary_id,
            assignment_distance_m=assignment.distance_m,
            responsible_code=codes["village"] or codes["district"],
            contacts=report.contacts,
            content_hash=digest,
        )
        .on_conflict_do_nothing(index_elements=[Event.id])
        .returning(Event)
    )
    event = session.scalars(statement, execution_options={"populate_existing": True}).first()
    if event is None:
        stored = session.get(Event, event_id, populate_existing=True)
        if stored is None:  # pragma: no cover - the conflicting row cannot vanish: no deletes
            raise Conflict(f"Event {event_id} could not be stored; retry.")
        if stored.content_hash != digest:
            raise Conflict(
                f"Event {event_id} was already reported with different content.",
                errors=[field_error("id", "This id is taken by a different report.")],
            )
        return stored, False
    session.add(
        EventAction(
            event_id=event.id, action="report", from_status=None, to_status=event.status,
            actor_id=reporter_id,
        )
    )
    session.flush()
    return event, True


def get_event(session: Session, event_id: uuid.UUID) -> Event:
    event = session.get(Event, event_id)
    if event is None:
        raise NotFound(f"No event {event_id}.")
    return event


def list_events(
    session: Session,
    *,
    area: str | None = None,
    status: str | None = None,
    category: str | None = None,
    received_from: datetime | None = None,
    received_to: datetime | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int = 100,
) -> list[Event]:
    """Events newest first, filtered in SQL; `after` is the last (received_at, id) seen."""
    query = select(Event).order_by(Event.received_at.desc(), Event.id.desc()).limit(limit)
    if area:
        level = areas.level_of(area)
        if level is None:
            raise ValidationFailed("Not an area code.", errors=[field_error("area", "Not an area code.")])
        query = query.where(AREA_COLUMN[level] == area)
    if status:
        query = query.where(Event.status == status)
    if category:
        query = query.where(Event.category_code == category)
    if received_from:
        query = query.where(Event.received_at >= received_from)
    if received_to:
        query = query.where(Event.received_at < received_to)
    if after:
        query = query.where(tuple_(Event.received_at, Event.id) < tuple_(*after))
    return list(session.scalars(query))
