"""HTTP routes for categories and event reports."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from flask import request, url_for
from flask.views import MethodView

from backend import settings
from backend.api import Blueprint
from backend.auth.context import current_actor
from backend.auth.service import Actor, require
from backend.common.pagination import decode_cursor, encode_cursor
from backend.db import get_session
from backend.errors import DomainError, PreconditionFailed
from backend.events import lifecycle, schemas, service
from backend.events.models import Event

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Event reports (网格事项)")


class PreconditionRequired(DomainError):
    status = 428
    title = "Precondition Required"
    slug = "precondition-required"


def _etag(event: Event) -> dict[str, str]:
    return {"ETag": f'"{event.version}"'}


def shown(actor: Actor, events: Iterable[Event]) -> list[Event]:
    """Mark which events' personal fields this actor may see (the schema drops the rest)."""
    out = list(events)
    for event in out:
        event.show_personal = service.sees_personal_data(actor, event)  # type: ignore[attr-defined]
    return out


@blp.route("/categories")
class Categories(MethodView):
    @blp.response(200, schemas.CategorySchema(many=True))
    def get(self) -> list[Any]:
        """List event categories with their SLA hours"""
        return service.list_categories(get_session())

    @blp.arguments(schemas.CategoryCreateSchema)
    @blp.response(201, schemas.CategorySchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Add a category (admins)"""
        require(current_actor(), "admin")
        session = get_session()
        category = service.create_category(session, **data)
        session.commit()
        return category


@blp.route("/categories/<string:code>")
class CategoryByCode(MethodView):
    @blp.arguments(schemas.CategoryUpdateSchema)
    @blp.response(200, schemas.CategorySchema)
    def patch(self, data: dict[str, Any], code: str) -> Any:
        """Rename a category or change its SLA hours (admins)"""
        require(current_actor(), "admin")
        session = get_session()
        category = service.update_category(session, code, **data)
        session.commit()
        return category


@blp.route("/events")
class Events(MethodView):
    @blp.arguments(schemas.EventQueryArgsSchema, location="query")
    @blp.response(200, schemas.EventListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List events I may see, newest first, by area subtree, status, category and time"""
        key = decode_cursor(args.get("cursor"), (str, str))
        after = None
        if key:
            try:
                after = (datetime.fromisoformat(key[0]), uuid.UUID(key[1]))
            except ValueError:
                decode_cursor("!", (str, str))  # raises the cursor error
        limit = args["limit"]
        actor = current_actor()
        events = service.list_events(
            get_session(),
            actor=actor,
            area=args.get("area"),
            status=args.get("status"),
            category=args.get("category"),
            received_from=args.get("from_"),
            received_to=args.get("to"),
            after=after,
            limit=limit,
        )
        last = events[-1] if len(events) == limit else None
        return {
            "items": shown(actor, events),
            "next_cursor": encode_cursor([last.received_at.isoformat(), str(last.id)]) if last else None,
        }

    @blp.arguments(schemas.EventCreateSchema)
    @blp.response(201, schemas.EventSchema, description="The report was stored")
    @blp.alt_response(200, schema=schemas.EventSchema,
                      description="The same report (same id and content) was already stored")
    def post(self, data: dict[str, Any]) -> tuple[Event, int, dict[str, str]]:
        """Report an event; it is assigned to the grid covering its location"""
        session = get_session()
        actor = current_actor()
        location = data["location"]
        report = service.Report(
            id=data.get("id"),
            category=data["category"],
            description=data["description"],
            lon=location.x,
            lat=location.y,
            crs=data["crs"],
            accuracy_m=data.get("accuracy_m"),
            occurred_at=data.get("occurred_at"),
            reported_at=data.get("reported_at"),
            contacts=data.get("contacts"),
            outside=data["outside"],
            handled_on_spot=data["handled_on_spot"],
            resolution_note=data.get("resolution_note"),
        )
        event, created = service.report_event(
            session, report, actor=actor, nearest_min_m=settings().nearest_min_m
        )
        session.commit()
        headers = {**_etag(event), "Location": url_for("events.EventById", event_id=event.id)}
        return shown(actor, [event])[0], 201 if created else 200, headers


@blp.route("/events/<uuid:event_id>")
class EventById(MethodView):
    @blp.response(200, schemas.EventSchema)
    def get(self, event_id: uuid.UUID) -> tuple[Event, int, dict[str, str]]:
        """Get one event I may see"""
        actor = current_actor()
        event = service.get_event(get_session(), event_id, actor)
        return shown(actor, [event])[0], 200, _etag(event)


def _version(data: dict[str, Any]) -> int:
    """The version the client saw: the `version` field, else If-Match (the event's ETag)."""
    if "version" in data:
        return int(data["version"])
    header = request.headers.get("If-Match", "").strip()
    value = header.removeprefix("W/").strip('"')
    if not header:
        raise PreconditionRequired("Send the version you saw: If-Match with the event's ETag, "
                                   "or a version field.")
    if not value.isdigit() or len(value) > 9:
        raise PreconditionFailed(f"If-Match {header!r} is not a version of this event.")
    return int(value)


@blp.route("/events/<uuid:event_id>/actions")
class EventActions(MethodView):
    @blp.response(200, schemas.ActionSchema(many=True))
    def get(self, event_id: uuid.UUID) -> list[Any]:
        """The event's trail: every action, oldest first (append-only)"""
        return lifecycle.trail(get_session(), event_id, current_actor())

    @blp.arguments(schemas.ActionCreateSchema)
    @blp.response(200, schemas.EventSchema)
    def post(self, data: dict[str, Any], event_id: uuid.UUID) -> tuple[Event, int, dict[str, str]]:
        """Act on an event: accept, reject, dispatch, start, resolve, close, return, escalate, reopen"""
        session = get_session()
        actor = current_actor()
        event = lifecycle.act(
            session, event_id,
            lifecycle.ActionInput(
                action=data["action"], version=_version(data), reason=data.get("reason"),
                note=data.get("note"), assignee_id=data.get("assignee_id"),
                department=data.get("department"), duplicate_of=data.get("duplicate_of"),
            ),
            actor=actor,
        )
        session.commit()
        return shown(actor, [event])[0], 200, _etag(event)
