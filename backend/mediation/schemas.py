"""What mediation requests and answers look like. Names of parties and mediators, session notes
and the outcome's note are personal: only admins and the supervisors in scope get them."""

from __future__ import annotations

import marshmallow as ma
from flask_smorest.fields import Upload
from werkzeug.datastructures import FileStorage

from backend.auth.context import PERSONAL, ScopedSchema
from backend.common.fields import Instant, Text, area_code
from backend.common.pagination import CursorArgsSchema
from backend.mediation.models import (
    DISPUTE_TYPES,
    MAX_MEDIATORS,
    MEDIATOR_ROLES,
    OUTCOMES,
    REFERRAL_BODIES,
)


class MediatorSchema(ma.Schema):
    role = ma.fields.String(
        required=True,
        validate=ma.validate.OneOf(MEDIATOR_ROLES),
        metadata={
            "description": "e.g. village_cadre (村干部), legal_adviser (法律顾问), respected_resident (乡贤)"
        },
    )
    name = Text(required=True, min_length=1, max_length=100)
    user_id = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(1, 2**63 - 1))


class PartySchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=100)
    phone = Text(max_length=40)
    side = Text(max_length=100, metadata={"description": "e.g. applicant (申请人), respondent (被申请人)"})


class CaseCreateSchema(ma.Schema):
    event_id = ma.fields.UUID(required=True)
    dispute_type = ma.fields.String(required=True, validate=ma.validate.OneOf(DISPUTE_TYPES))
    mediators = ma.fields.List(
        ma.fields.Nested(MediatorSchema),
        required=True,
        validate=ma.validate.Length(1, MAX_MEDIATORS),
        metadata={"description": f"The team (三人调解小组): one to {MAX_MEDIATORS}, by role"},
    )
    parties = ma.fields.List(
        ma.fields.Nested(PartySchema), load_default=list, validate=ma.validate.Length(max=20)
    )


class CaseSchema(ScopedSchema):
    id = ma.fields.Integer()
    event_id = ma.fields.UUID()
    grid = ma.fields.String(attribute="grid_code")
    village = ma.fields.String(attribute="village_code")
    town = ma.fields.String(attribute="town_code")
    district = ma.fields.String(attribute="district_code")
    responsible_area = ma.fields.String(
        attribute="responsible_code", metadata={"description": "The centre mediating"}
    )
    dispute_type = ma.fields.String()
    mediator_roles = ma.fields.Function(
        lambda case: [m.get("role") for m in case.mediators],
        metadata={"type": "array", "items": {"type": "string"}, "description": "The team's roles"},
    )
    mediators = ma.fields.List(
        ma.fields.Nested(MediatorSchema),
        metadata={PERSONAL: "contacts", "description": "Personal data: admins and supervisors in scope"},
    )
    parties = ma.fields.List(
        ma.fields.Nested(PartySchema),
        metadata={PERSONAL: "contacts", "description": "Personal data: admins and supervisors in scope"},
    )
    opened_at = ma.fields.AwareDateTime()
    opened_by = ma.fields.Integer(allow_none=True, metadata={PERSONAL: "people"})
    outcome = ma.fields.String(
        allow_none=True, metadata={"description": f"{', '.join(OUTCOMES)}, or null while open"}
    )
    outcome_at = ma.fields.AwareDateTime(allow_none=True)
    outcome_by = ma.fields.Integer(allow_none=True, metadata={PERSONAL: "people"})
    outcome_note = ma.fields.String(allow_none=True, metadata={PERSONAL: "contacts"})
    judicially_confirmed = ma.fields.Boolean(allow_none=True, metadata={"description": "司法确认"})
    has_agreement = ma.fields.Function(
        lambda case: case.agreement_sha256 is not None,
        metadata={"type": "boolean", "description": "The signed agreement was uploaded"},
    )
    referred_to = ma.fields.String(allow_none=True, metadata={"description": ", ".join(REFERRAL_BODIES)})
    referral_reference = ma.fields.String(allow_none=True)
    version = ma.fields.Integer()


class CaseListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(CaseSchema))
    next_cursor = ma.fields.String(allow_none=True)


class CaseQueryArgsSchema(CursorArgsSchema):
    area = area_code(metadata={"description": "Cases in this area's subtree"})
    outcome = ma.fields.String(validate=ma.validate.OneOf(OUTCOMES))
    open = ma.fields.Boolean(load_default=False, metadata={"description": "Only cases without an outcome"})


class SessionCreateSchema(ma.Schema):
    held_at = Instant(required=True)
    place = Text(max_length=200, allow_none=True)
    notes = Text(max_length=10000, allow_none=True)


class SessionSchema(ScopedSchema):
    id = ma.fields.Integer()
    held_at = ma.fields.AwareDateTime()
    place = ma.fields.String(allow_none=True)
    notes = ma.fields.String(allow_none=True, metadata={PERSONAL: "contacts", "description": "Personal data"})
    recorded_by = ma.fields.Integer(allow_none=True, metadata={PERSONAL: "people"})
    created_at = ma.fields.AwareDateTime()


class OutcomeSchema(ma.Schema):
    outcome = ma.fields.String(required=True, validate=ma.validate.OneOf(OUTCOMES))
    version = ma.fields.Integer(required=True, validate=ma.validate.Range(1, 2**31 - 1))
    note = Text(max_length=5000, allow_none=True)
    judicially_confirmed = ma.fields.Boolean(
        allow_none=True,
        metadata={"description": "With an agreement: whether a court confirmed it (司法确认)"},
    )
    referred_to = ma.fields.String(
        allow_none=True,
        validate=ma.validate.OneOf(REFERRAL_BODIES),
        metadata={"description": "With a referral"},
    )
    referral_reference = Text(
        min_length=1,
        max_length=100,
        allow_none=True,
        metadata={"description": "The receiving body's reference"},
    )


class DocumentUploadSchema(ma.Schema):
    file = Upload(required=True, metadata={"description": "The signed agreement: PDF, JPEG, PNG or WebP"})

    @ma.validates("file")
    def _a_file(self, value: object, **kwargs: object) -> None:
        if not isinstance(value, FileStorage):
            raise ma.ValidationError("Send the document as a file part, not a text field.")
