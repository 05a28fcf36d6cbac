"""What event requests and answers look like."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import marshmallow as ma
from flask_smorest.fields import Upload

from backend.auth.context import PERSONAL, ScopedSchema
from backend.common.fields import Geometry, Instant, Text, area_code
from backend.common.pagination import CursorArgsSchema
from backend.events.lifecycle import ACTIONS
from backend.events.models import CATEGORY_CODE, CHANNELS, REFERENCE_LENGTH, STATUSES
from geo.crs import SUPPORTED_CRS


class CategorySchema(ma.Schema):
    code = ma.fields.String()
    name_zh = ma.fields.String(metadata={"description": "Chinese name, e.g. 矛盾纠纷"})
    name_en = ma.fields.String()
    parent = ma.fields.String(attribute="parent_code", allow_none=True)
    sla_hours = ma.fields.Integer(metadata={"description": "Hours from acceptance to due"})
    sensitive = ma.fields.Boolean()


class ContactSchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=100)
    phone = Text(max_length=40)
    role = Text(max_length=100, metadata={"description": "Their part in the matter"})
    email = Text(max_length=200)


class EventCreateSchema(ma.Schema):
    id = ma.fields.UUID(metadata={"description": "Made by the phone so retries are idempotent"})
    category = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(
            CATEGORY_CODE, error="A category code such as environment; see /api/v1/categories."
        ),
    )
    description = Text(required=True, min_length=1, max_length=5000)
    location = Geometry(("Point",), required=True)
    crs = ma.fields.String(load_default="wgs84", validate=ma.validate.OneOf(SUPPORTED_CRS))
    accuracy_m = ma.fields.Float(allow_none=True, validate=ma.validate.Range(0, 100_000))
    occurred_at = Instant(allow_none=True)
    reported_at = Instant(allow_none=True, metadata={"description": "Phone clock"})
    contacts = ma.fields.List(
        ma.fields.Nested(ContactSchema),
        validate=ma.validate.Length(max=20),
        allow_none=True,
        metadata={"description": "People involved (personal data)"},
    )
    outside = ma.fields.Boolean(
        load_default=False,
        metadata={"description": "The place is outside the reporter's own grids (reported on the way)"},
    )
    handled_on_spot = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Already handled on the spot (就地化解): starts resolved, awaits verification"
        },
    )
    resolution_note = Text(max_length=5000, allow_none=True)
    photos_expected = ma.fields.Integer(
        load_default=0,
        validate=ma.validate.Range(0, 9),
        metadata={"description": "How many photos the phone will upload for this report"},
    )
    channel = ma.fields.String(
        load_default="grid_worker",
        validate=ma.validate.OneOf([c for c in CHANNELS if c != "citizen"]),
        metadata={
            "description": "Where the matter came from: grid_worker (the app; workers only), "
            "centre_desk (a walk-in at a centre, registered by its staff: it sits with their "
            "tier), hotline (a 12345 handoff: external_ticket_id required, idempotent on it), "
            "video (a camera alert: camera_id required) or other. Residents report through "
            "Open311 (/open311/v2)."
        },
    )
    external_ticket_id = Text(
        min_length=1,
        max_length=REFERENCE_LENGTH,
        metadata={"description": "The hotline's ticket: the same ticket again answers the stored event"},
    )
    camera_id = Text(min_length=1, max_length=REFERENCE_LENGTH, metadata={"description": "The camera"})


CLOCK_AHEAD = timedelta(minutes=10)
CLOCK_BEHIND = timedelta(days=30)


class DuplicateHintSchema(ma.Schema):
    id = ma.fields.UUID()
    status = ma.fields.String()
    received_at = ma.fields.AwareDateTime()
    distance_m = ma.fields.Float()


class EventSchema(ScopedSchema):
    id = ma.fields.UUID()
    category = ma.fields.String(attribute="category_code")
    description = ma.fields.String(
        allow_none=True,
        metadata={PERSONAL: "sensitive_text", "description": "Null for GIS keys in sensitive categories"},
    )
    location = Geometry(("Point",), metadata={"description": "WGS84 point"})
    crs = ma.fields.String(metadata={"description": "The CRS the phone sent"})
    accuracy_m = ma.fields.Float(allow_none=True)
    occurred_at = ma.fields.AwareDateTime(allow_none=True)
    reported_at = ma.fields.AwareDateTime(allow_none=True)
    received_at = ma.fields.AwareDateTime(metadata={"description": "Server clock"})
    grid = ma.fields.String(attribute="grid_code", allow_none=True)
    village = ma.fields.String(attribute="village_code", allow_none=True)
    town = ma.fields.String(attribute="town_code", allow_none=True)
    district = ma.fields.String(attribute="district_code", allow_none=True)
    assignment = ma.fields.String(metadata={"description": "contains, nearest, manual or unassigned"})
    assignment_distance_m = ma.fields.Float(allow_none=True)
    boundary_version = ma.fields.Integer(attribute="boundary_id", allow_none=True)
    responsible_area = ma.fields.String(attribute="responsible_code", allow_none=True)
    status = ma.fields.String()
    due_at = ma.fields.AwareDateTime(allow_none=True)
    overdue = ma.fields.Function(
        lambda e: e.due_at is not None
        and e.status not in ("closed", "rejected")
        and e.due_at < datetime.now(UTC),
        metadata={"type": "boolean", "description": "Open and past due"},
    )
    accepted_at = ma.fields.AwareDateTime(allow_none=True)
    resolved_at = ma.fields.AwareDateTime(allow_none=True)
    closed_at = ma.fields.AwareDateTime(allow_none=True)
    assignee_id = ma.fields.Integer(allow_none=True, metadata={PERSONAL: "people"})
    department = ma.fields.String(allow_none=True)
    rework_count = ma.fields.Integer()
    version = ma.fields.Integer()
    reporter_id = ma.fields.Integer(allow_none=True, metadata={PERSONAL: "people"})
    channel = ma.fields.String(metadata={"description": f"Where it came from: {', '.join(CHANNELS)}"})
    external_ticket_id = ma.fields.String(allow_none=True, metadata={"description": "The hotline's ticket"})
    camera_id = ma.fields.String(allow_none=True)
    outside = ma.fields.Boolean()
    photos_expected = ma.fields.Integer()
    clock_suspect = ma.fields.Function(
        lambda e: e.reported_at is not None
        and (e.reported_at - e.received_at > CLOCK_AHEAD or e.received_at - e.reported_at > CLOCK_BEHIND),
        metadata={
            "type": "boolean",
            "description": "The phone's reported_at is far from the "
            "server's receipt time (more than 10 minutes ahead or 30 days behind)",
        },
    )
    possible_duplicates = ma.fields.List(
        ma.fields.Nested(DuplicateHintSchema),
        metadata={"description": "On a new report: open events of the same category nearby"},
    )
    contacts = ma.fields.List(
        ma.fields.Nested(ContactSchema),
        allow_none=True,
        metadata={
            PERSONAL: "contacts",
            "description": "Personal data: only for the reporter, the assignee, admins and "
            "supervisors in scope; absent otherwise",
        },
    )


class CategoryCreateSchema(ma.Schema):
    code = ma.fields.String(required=True, validate=ma.validate.Regexp(CATEGORY_CODE))
    name_zh = Text(required=True, min_length=1, max_length=100)
    name_en = Text(required=True, min_length=1, max_length=100)
    parent = ma.fields.String(allow_none=True, validate=ma.validate.Regexp(CATEGORY_CODE))
    sla_hours = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 24 * 365))
    sensitive = ma.fields.Boolean(load_default=False)


class CategoryUpdateSchema(ma.Schema):
    name_zh = Text(min_length=1, max_length=100)
    name_en = Text(min_length=1, max_length=100)
    sla_hours = ma.fields.Integer(validate=ma.validate.Range(1, 24 * 365))
    sensitive = ma.fields.Boolean()


class ActionCreateSchema(ma.Schema):
    action = ma.fields.String(required=True, validate=ma.validate.OneOf(ACTIONS))
    version = ma.fields.Integer(
        validate=ma.validate.Range(1, 2**31 - 1),
        metadata={"description": "The version last seen (or send it as If-Match: the event's ETag)"},
    )
    reason = Text(max_length=2000)
    note = Text(max_length=5000)
    assignee_id = ma.fields.Integer(validate=ma.validate.Range(1, 2**63 - 1))
    department = Text(min_length=1, max_length=100)
    duplicate_of = ma.fields.UUID()


class ActionSchema(ScopedSchema):
    id = ma.fields.Integer()
    action = ma.fields.String()
    from_status = ma.fields.String(allow_none=True)
    to_status = ma.fields.String()
    actor_id = ma.fields.Integer(allow_none=True, metadata={PERSONAL: "people"})
    note = ma.fields.String(allow_none=True, metadata={PERSONAL: "people"})
    data = ma.fields.Dict(
        allow_none=True,
        metadata={PERSONAL: "people", "description": "What the action set (assignee, department, ...)"},
    )
    created_at = ma.fields.AwareDateTime()


class BatchSchema(ma.Schema):
    items = ma.fields.List(
        ma.fields.Dict(),
        required=True,
        validate=ma.validate.Length(1, 200),
        metadata={"description": "Up to 200 reports, each shaped like POST /events"},
    )


class BatchItemSchema(ma.Schema):
    index = ma.fields.Integer()
    id = ma.fields.UUID(allow_none=True)
    outcome = ma.fields.String(metadata={"description": "created, duplicate, conflict or invalid"})
    event = ma.fields.Nested(EventSchema, allow_none=True)
    problem = ma.fields.Dict(allow_none=True, metadata={"description": "RFC 9457 problem details"})


class BatchResultSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(BatchItemSchema))
    counts = ma.fields.Dict(keys=ma.fields.String(), values=ma.fields.Integer())


class AttachmentSchema(ma.Schema):
    sha256 = ma.fields.String()
    media_type = ma.fields.String()
    size = ma.fields.Integer()
    width = ma.fields.Integer()
    height = ma.fields.Integer()
    stage = ma.fields.String()
    filename = ma.fields.String(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    url = ma.fields.Function(lambda a: f"/api/v1/attachments/{a.sha256}")


class AttachmentListSchema(ma.Schema):
    expected = ma.fields.Integer(metadata={"description": "Photos the report said would follow"})
    present = ma.fields.Integer()
    items = ma.fields.List(ma.fields.Nested(AttachmentSchema))


class UploadSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "The photo: JPEG, PNG or WebP"})
    stage = ma.fields.String(
        load_default="report",
        validate=ma.validate.OneOf(("report", "resolution")),
        metadata={"description": "Taken at the report or at the resolution"},
    )


class InboxArgsSchema(ma.Schema):
    cursor = ma.fields.UUID(load_default=None)
    limit = ma.fields.Integer(load_default=200, validate=ma.validate.Range(1, 1000))


class InboxSchema(ma.Schema):
    changed = ma.fields.List(ma.fields.Nested(EventSchema))
    removed = ma.fields.List(ma.fields.UUID(), metadata={"description": "Left my scope: drop them"})
    cursor = ma.fields.UUID(metadata={"description": "Send it next time"})
    more = ma.fields.Boolean(metadata={"description": "More changes are waiting: call again now"})


class EventListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(EventSchema))
    next_cursor = ma.fields.String(allow_none=True)


class EventQueryArgsSchema(CursorArgsSchema):
    area = area_code(metadata={"description": "Area code: events in its subtree"})
    status = ma.fields.String(validate=ma.validate.OneOf(STATUSES))
    category = ma.fields.String(validate=ma.validate.Regexp(CATEGORY_CODE))
    channel = ma.fields.String(validate=ma.validate.OneOf(CHANNELS))
    from_ = Instant(data_key="from", metadata={"description": "Received at or after"})
    to = Instant(metadata={"description": "Received before"})
