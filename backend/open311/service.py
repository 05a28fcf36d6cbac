"""Open311 GeoReport v2 over events: registered apps hand in residents' reports (channel
`citizen`), assigned by the same polygon lookup as any report, and read them back.

What a request shows is public: never the resident's contacts, the reporter, the trail's notes or
the text of a sensitive category.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth.scope import Actor
from backend.common.fields import to_shape
from backend.errors import DomainError
from backend.events import service as events
from backend.events.models import CATEGORY_CODE, Category, Event, event_named
from backend.open311.models import Open311App, ServiceRequest

KEY_PREFIX = "o311"
# Without dates, GET requests answers the last 90 days; a window is at most that long.
DEFAULT_WINDOW = timedelta(days=90)
MAX_PAGE_SIZE = 1000
# Statuses of the closed loop that are "closed" to a resident: done, or not taken up.
CLOSED = ("closed", "rejected")
# Anyone reading requests back: the residents' requests, without personal data.
READER = Actor(role="app")


class Open311Error(DomainError):
    """An error as GeoReport v2 gives it: a status and a description (under `code`, the status)."""

    status = 400
    title = "Bad Request"
    slug = "bad-request"

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.headers = headers or {}


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def create_app_key(session: Session, *, name: str) -> tuple[Open311App, str]:
    """Register an app; its key is returned once and only its hash is stored."""
    prefix, secret = secrets.token_hex(4), secrets.token_urlsafe(24)
    app = Open311App(name=name, prefix=prefix, secret_hash=_hash(secret))
    session.add(app)
    session.flush()
    return app, f"{KEY_PREFIX}_{prefix}_{secret}"


def app_for_key(session: Session, presented: str | None) -> Open311App:
    """The registered, enabled app holding this key; 403 otherwise (GeoReport v2)."""
    if not presented:
        raise Open311Error(403, "api_key is required to submit a request.")
    parts = presented.split("_", 2)
    app = None
    if len(parts) == 3 and parts[0] == KEY_PREFIX and re.fullmatch(r"[0-9a-f]{8}", parts[1]):
        app = session.scalars(select(Open311App).where(Open311App.prefix == parts[1])).first()
    if app is None or app.disabled or not hmac.compare_digest(app.secret_hash, _hash(parts[-1])):
        raise Open311Error(403, "api_key is not valid or is disabled.")
    return app


def services(session: Session) -> list[Category]:
    return events.list_categories(session)


def service(session: Session, code: str) -> Category:
    category = next((c for c in services(session) if c.code == code), None)
    if category is None:
        raise Open311Error(404, f"service_code {code} not found.")
    return category


@dataclass(frozen=True)
class Submission:
    service_code: str
    description: str | None
    lat: float | None
    long: float | None
    address_string: str | None
    media_url: str | None
    contact: dict[str, Any] | None


@dataclass(frozen=True)
class Submitted:
    request: ServiceRequest
    event: Event
    possible_duplicates: list[dict[str, Any]]


def submit(session: Session, app: Open311App, data: Submission, *, nearest_min_m: float) -> Submitted:
    """Store a resident's report as a citizen-channel event, assigned like any report."""
    if not data.service_code:
        raise Open311Error(400, "service_code is required.")
    # A parameter of the POST that names no service: a bad request (400), not a missing resource.
    category = next((c for c in services(session) if c.code == data.service_code), None)
    if category is None:
        raise Open311Error(400, f"service_code {data.service_code[:40]} not found; see services.json.")
    if data.lat is not None and data.long is not None:
        lon, lat, accuracy = data.long, data.lat, None
    elif data.lat is not None or data.long is not None:
        raise Open311Error(400, "lat and long go together.")
    elif data.address_string:
        place = areas.place_named(session, data.address_string)
        if place is None:
            raise Open311Error(400, "address_string names no known place; send lat and long.")
        _, lon, lat = place
        accuracy = 500.0  # an area's inner point, not the place itself
    else:
        raise Open311Error(400, "A location is required: lat and long, or address_string.")
    report = events.Report(
        category=category.code,
        description=data.description or category.name_zh,
        lon=lon,
        lat=lat,
        accuracy_m=accuracy,
        contacts=[data.contact] if data.contact else None,
        channel="citizen",
    )
    actor = Actor(role="app")
    event, _ = events.report_event(session, report, actor=actor, nearest_min_m=nearest_min_m)
    if event.grid_code is None:
        # Nobody's grid: the caller rolls the event back.
        raise Open311Error(400, "lat and long lie outside this jurisdiction's grids.")
    request = ServiceRequest(
        event_id=event.id,
        token=secrets.token_urlsafe(16),
        app_id=app.id,
        address_string=data.address_string,
        media_url=data.media_url,
    )
    session.add(request)
    session.flush()
    return Submitted(request, event, events.possible_duplicates(session, event, actor))


@dataclass(frozen=True)
class PublicRequest:
    """A service request as GeoReport v2 shows it (public fields only)."""

    service_request_id: str
    status: str
    status_notes: str | None
    service_name: str
    service_code: str
    description: str | None
    agency_responsible: str | None
    service_notice: str | None
    requested_datetime: datetime
    updated_datetime: datetime
    expected_datetime: datetime | None
    address: str | None
    address_id: str | None
    zipcode: str | None
    lat: float
    long: float
    media_url: str | None


_ROWS = (
    select(Event, ServiceRequest)
    .join(ServiceRequest, ServiceRequest.event_id == Event.id)
    .where(READER.reads(Event))
)


def _public(session: Session, rows: Sequence[Any]) -> list[PublicRequest]:
    centres = areas.get_areas(session, {e.responsible_code for e, _ in rows if e.responsible_code})
    categories = {c.code: c for c in events.list_categories(session)}
    out = []
    for event, request in rows:
        category = categories[event.category_code]
        point: Any = to_shape(event.location)
        centre = centres.get(event.responsible_code or "")
        out.append(
            PublicRequest(
                service_request_id=str(event.id),
                status="closed" if event.status in CLOSED else "open",
                status_notes="不予受理 (not taken up)" if event.status == "rejected" else None,
                service_name=category.name_zh,
                service_code=category.code,
                # The rule's own answer: an app sees no sensitive text.
                description=None if event.sensitive and not READER.sees_sensitive_text else event.description,
                agency_responsible=f"{centre.name}综治中心" if centre else None,
                service_notice=None,
                requested_datetime=event.received_at,
                updated_datetime=event.updated_at,
                expected_datetime=event.due_at,
                address=request.address_string,
                address_id=None,
                zipcode=None,
                lat=round(point.y, 7),
                long=round(point.x, 7),
                media_url=request.media_url,
            )
        )
    return out


def get_request(session: Session, request_id: str) -> PublicRequest:
    try:
        event_id = uuid.UUID(request_id)
    except ValueError:
        raise Open311Error(404, f"service_request_id {request_id} not found.") from None
    rows = session.execute(_ROWS.where(event_named(event_id))).all()
    if not rows:
        raise Open311Error(404, f"service_request_id {request_id} not found.")
    return _public(session, rows)[0]


def find_requests(
    session: Session,
    *,
    ids: list[str] | None,
    service_code: str | None,
    start: datetime | None,
    end: datetime | None,
    status: str | None,
    page: int,
    page_size: int,
    now: datetime,
) -> list[PublicRequest]:
    """GET requests: by ids (the other filters then ignored, as the spec says), else by service,
    status and a window of at most 90 days (the last 90 by default), newest first."""
    query = _ROWS
    if ids:
        try:
            wanted = [uuid.UUID(value) for value in ids]
        except ValueError:
            raise Open311Error(400, "service_request_id takes comma-separated request ids.") from None
        query = query.where(Event.id.in_(wanted))
    else:
        end = end or (start + DEFAULT_WINDOW if start else now)
        start = start or end - DEFAULT_WINDOW
        if start >= end:
            raise Open311Error(400, "start_date must be before end_date.")
        if end - start > DEFAULT_WINDOW:
            raise Open311Error(400, "start_date and end_date span at most 90 days.")
        query = query.where(Event.received_at >= start, Event.received_at < end)
        if service_code:
            codes = service_code.split(",")
            if not all(re.fullmatch(CATEGORY_CODE, code) for code in codes):
                raise Open311Error(400, "service_code takes comma-separated service codes.")
            query = query.where(Event.category_code.in_(codes))
        if status == "closed":
            query = query.where(Event.status.in_(CLOSED))
        elif status == "open":
            query = query.where(Event.status.not_in(CLOSED))
    query = (
        query.order_by(Event.received_at.desc(), Event.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    )
    return _public(session, session.execute(query).all())


def token_request(session: Session, token: str) -> tuple[str, str]:
    """(service_request_id, token) for a token POST requests gave."""
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,40}", token):
        raise Open311Error(404, "token not found.")
    row = session.execute(
        select(ServiceRequest.event_id)
        .join(Event, Event.id == ServiceRequest.event_id)
        .where(ServiceRequest.token == token)
    ).first()
    if row is None:
        raise Open311Error(404, f"token {token} not found.")
    return str(row.event_id), token
