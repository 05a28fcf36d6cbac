"""HTTP routes for categories and event reports."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import marshmallow as ma
from flask import Response, request, url_for
from flask.views import MethodView
from sqlalchemy import select

from backend.auth.context import current_actor
from backend.auth.service import require
from backend.common.blueprint import Blueprint
from backend.common.pagination import decode_parsed_cursor, encode_cursor
from backend.config import settings
from backend.db import get_session
from backend.errors import (
    DomainError,
    PreconditionFailed,
    ValidationFailed,
    flatten_messages,
    from_domain_error,
)
from backend.events import lifecycle, photos, schemas, service, sync
from backend.events.models import Event

blp = Blueprint("events", __name__, url_prefix="/api/v1", description="Event reports (网格事项)")


class PreconditionRequired(DomainError):
    status = 428
    title = "Precondition Required"
    slug = "precondition-required"


def _report(data: dict[str, Any]) -> service.Report:
    """A Report from a request body loaded by EventCreateSchema."""
    location = data["location"]
    return service.Report(
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
        photos_expected=data["photos_expected"],
        channel=data.get("channel", "grid_worker"),
        external_ticket_id=data.get("external_ticket_id"),
        camera_id=data.get("camera_id"),
    )


def _etag(event: Event) -> dict[str, str]:
    return {"ETag": f'"{event.version}"'}


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
        after = decode_parsed_cursor(args.get("cursor"), (datetime.fromisoformat, uuid.UUID))
        limit = args["limit"]
        actor = current_actor()
        events = service.list_events(
            get_session(),
            actor=actor,
            area=args.get("area"),
            status=args.get("status"),
            category=args.get("category"),
            channel=args.get("channel"),
            received_from=args.get("from_"),
            received_to=args.get("to"),
            after=after,
            limit=limit,
        )
        last = events[-1] if len(events) == limit else None
        return {
            "items": events,
            "next_cursor": encode_cursor([last.received_at.isoformat(), str(last.id)]) if last else None,
        }

    @blp.arguments(schemas.EventCreateSchema)
    @blp.response(201, schemas.EventSchema, description="The report was stored")
    @blp.alt_response(
        200,
        schema=schemas.EventSchema,
        description="The same report (same id and content) was already stored",
    )
    def post(self, data: dict[str, Any]) -> tuple[Event, int, dict[str, str]]:
        """Report an event; it is assigned to the grid covering its location"""
        session = get_session()
        actor = current_actor()
        report = _report(data)
        event, created = service.report_event(
            session, report, actor=actor, nearest_min_m=settings().nearest_min_m
        )
        hints = service.possible_duplicates(session, event, actor) if created else None
        session.commit()
        headers = {**_etag(event), "Location": url_for("events.EventById", event_id=event.id)}
        if hints is not None:
            event.possible_duplicates = hints  # type: ignore[attr-defined]
        return event, 201 if created else 200, headers


@blp.route("/events/<uuid:event_id>")
class EventById(MethodView):
    @blp.response(200, schemas.EventSchema)
    def get(self, event_id: uuid.UUID) -> tuple[Event, int, dict[str, str]]:
        """Get one event I may see"""
        actor = current_actor()
        event = service.get_event(get_session(), event_id, actor)
        return event, 200, _etag(event)


def _version(data: dict[str, Any]) -> int:
    """The version the client saw: the `version` field, else If-Match (the event's ETag)."""
    if "version" in data:
        return int(data["version"])
    header = request.headers.get("If-Match", "").strip()
    value = header.removeprefix("W/").strip('"')
    if not header:
        raise PreconditionRequired(
            "Send the version you saw: If-Match with the event's ETag, or a version field."
        )
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
    @blp.problem(403, "My role may not take this action, or not on this event")
    @blp.problem(404, "No event I may see has this id")
    @blp.problem(409, "The action does not apply to the event's status (status_now says it)")
    @blp.problem(412, "The version sent is not the event's (current_version says which is)")
    @blp.problem(428, "Neither a version field nor If-Match was sent")
    def post(self, data: dict[str, Any], event_id: uuid.UUID) -> tuple[Event, int, dict[str, str]]:
        """Act on an event: accept, reject, dispatch, start, resolve, close, return, escalate, reopen"""
        session = get_session()
        actor = current_actor()
        event = lifecycle.act(
            session,
            event_id,
            lifecycle.ActionInput(
                action=data["action"],
                version=_version(data),
                reason=data.get("reason"),
                note=data.get("note"),
                assignee_id=data.get("assignee_id"),
                department=data.get("department"),
                duplicate_of=data.get("duplicate_of"),
            ),
            actor=actor,
        )
        session.commit()
        return event, 200, _etag(event)


@blp.route("/events/batch")
class EventBatch(MethodView):
    @blp.arguments(schemas.BatchSchema)
    @blp.response(200, schemas.BatchResultSchema, description="Every item was stored or already there")
    @blp.alt_response(
        207,
        schema=schemas.BatchResultSchema,
        description="Some items are conflicts or invalid; each says why",
    )
    def post(self, data: dict[str, Any]) -> tuple[dict[str, Any], int]:
        """Send up to 200 queued reports; each item gets its own outcome, in request order"""
        session = get_session()
        actor = current_actor()
        loader = schemas.EventCreateSchema()
        items: list[service.Report | DomainError] = []
        for item in data["items"]:
            try:
                items.append(_report(loader.load(item)))
            except ma.ValidationError as error:
                errors = flatten_messages({"json": error.messages})
                items.append(
                    ValidationFailed(
                        "; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors
                    )
                )
        results = sync.report_batch(session, items, actor=actor, nearest_min_m=settings().nearest_min_m)
        session.commit()
        counts = {k: 0 for k in ("created", "duplicate", "conflict", "invalid")}
        out = []
        for result in results:
            counts[result.outcome] += 1
            item = data["items"][result.index]
            out.append(
                {
                    "index": result.index,
                    "id": result.event.id if result.event else _item_id(item),
                    "outcome": result.outcome,
                    "event": result.event if result.event else None,
                    "problem": from_domain_error(result.problem) if result.problem else None,
                }
            )
        status = 200 if counts["conflict"] + counts["invalid"] == 0 else 207
        return {"items": out, "counts": counts}, status


def _item_id(item: dict[str, Any]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(item.get("id")))
    except ValueError:
        return None


@blp.route("/events/<uuid:event_id>/attachments")
class EventAttachments(MethodView):
    @blp.response(200, schemas.AttachmentListSchema)
    def get(self, event_id: uuid.UUID) -> dict[str, Any]:
        """The event's photos: how many were expected and which are present"""
        event, rows = photos.list_photos(get_session(), event_id, current_actor())
        return {"expected": event.photos_expected, "present": len(rows), "items": rows}

    @blp.arguments(schemas.UploadSchema, location="multipart")
    @blp.response(201, schemas.AttachmentSchema, description="The photo was stored")
    @blp.alt_response(200, schema=schemas.AttachmentSchema, description="The same photo was already there")
    @blp.problem(413, "The file is larger than the photo limit")
    @blp.problem(415, "The file is not a JPEG, PNG or WebP image")
    @blp.problem(507, "The photo store is full; nothing was stored")
    @blp.problem(503, "The photo store cannot be written now; nothing was stored (see Retry-After)")
    def post(self, form: dict[str, Any], event_id: uuid.UUID) -> tuple[Any, int]:
        """Upload a photo (JPEG, PNG or WebP; checked by decoding) at report or resolution"""
        config = settings()
        upload = form["file"]
        data = upload.read(config.max_photo_bytes + 1)
        session = get_session()
        row, created = photos.add_photo(
            session,
            event_id,
            data,
            actor=current_actor(),
            media_dir=config.media_dir,
            filename=upload.filename,
            stage=form["stage"],
            max_bytes=config.max_photo_bytes,
            max_photos=config.max_photos_per_event,
        )
        session.commit()
        return row, 201 if created else 200


IMAGE_RESPONSE = {
    "description": "The image",
    "content": {t: {"schema": {"type": "string", "format": "binary"}} for t in photos.FORMATS.values()},
}


@blp.route("/attachments/<string:sha256>")
class AttachmentContent(MethodView):
    @blp.doc(responses={"200": IMAGE_RESPONSE, "304": {"description": "Not modified"}})
    @blp.problem(404, "No photo of an event I may see has this SHA-256")
    @blp.problem(410, "The photo's file is missing from the store; its phone can upload it again")
    @blp.problem(503, "The photo store cannot be read now")
    def get(self, sha256: str) -> Response:
        """A photo, for those who may see an event holding it (location removed for outsiders)"""
        data, media_type, stripped = photos.open_photo(
            get_session(), sha256, current_actor(), settings().media_dir
        )
        etag = f"{sha256}-{'public' if stripped else 'full'}"
        response = Response(data, mimetype=media_type)
        response.set_etag(etag)
        response.headers["Cache-Control"] = "private, max-age=31536000, immutable"
        response.headers["Vary"] = "Authorization, X-API-Key"
        response.make_conditional(request)
        return response


@blp.route("/me/tasks")
class MyTasks(MethodView):
    @blp.arguments(schemas.InboxArgsSchema, location="query")
    @blp.response(200, schemas.InboxSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My inbox: tasks changed since the cursor, and ones that left my scope"""
        session = get_session()
        actor = current_actor()

        def load(ids: list[uuid.UUID]) -> list[Event]:
            return list(session.scalars(select(Event).where(Event.id.in_(ids))))

        page = sync.inbox(session, actor, args["cursor"], args["limit"], load)
        session.commit()
        return {"changed": page.changed, "removed": page.removed, "cursor": page.cursor, "more": page.more}
