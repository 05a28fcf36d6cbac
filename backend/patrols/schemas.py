"""What patrol requests and answers look like."""

from __future__ import annotations

import marshmallow as ma

from backend.areas.models import GRID_KINDS
from backend.auth.context import PERSONAL, ScopedSchema
from backend.common.fields import Instant, Text, area_code
from backend.common.pagination import CursorArgsSchema
from backend.patrols.queries import DEFAULT_BENCHMARK, LIMITS
from backend.stats.schemas import GroupKeysSchema, group_by_field
from geo.crs import SUPPORTED_CRS

TRACK = "A patrol's track: personal data, only for its worker and supervisors in scope"


class PatrolStartSchema(ma.Schema):
    id = ma.fields.UUID(
        required=True, metadata={"description": "Made by the phone so retries are idempotent"}
    )
    started_at = Instant(allow_none=True, metadata={"description": "Phone clock; default now"})


class PatrolEndSchema(ma.Schema):
    ended_at = Instant(
        allow_none=True, metadata={"description": "Phone clock; default the last point's time"}
    )


class PointsSchema(ma.Schema):
    batch = ma.fields.String(
        required=True,
        validate=ma.validate.Regexp(r"^[A-Za-z0-9._:-]{1,64}$", error="1-64 letters, digits or ._:-"),
        metadata={"description": "The phone's key of this batch: sending it again changes nothing"},
    )
    crs = ma.fields.String(load_default="wgs84", validate=ma.validate.OneOf(SUPPORTED_CRS))
    # Each point is checked by the service, which names every bad one by its index.
    points = ma.fields.List(
        ma.fields.Dict(),
        required=True,
        metadata={
            "description": "Points: {lon, lat, t (epoch seconds or RFC 3339), accuracy_m, mock}; "
            "at most WANGGE_PATROL_MAX_POINTS (1000)"
        },
    )


class PatrolBatchSchema(ma.Schema):
    patrol_id = ma.fields.UUID()
    batch = ma.fields.String()
    points = ma.fields.Integer()
    first_at = ma.fields.AwareDateTime()
    last_at = ma.fields.AwareDateTime()


class PatrolSchema(ScopedSchema):
    id = ma.fields.UUID()
    worker_id = ma.fields.Integer(metadata={PERSONAL: "people"})
    started_at = ma.fields.AwareDateTime()
    ended_at = ma.fields.AwareDateTime(allow_none=True)
    closed_by = ma.fields.String(
        allow_none=True, metadata={"description": "phone, or idle (closed by the server)"}
    )
    last_point_at = ma.fields.AwareDateTime(allow_none=True)
    points = ma.fields.Integer()


class PatrolDetailSchema(PatrolSchema):
    track = ma.fields.Dict(allow_none=True, metadata={PERSONAL: "people", "description": TRACK})
    event_ids = ma.fields.List(
        ma.fields.UUID(), metadata={"description": "Reports the worker made during the patrol"}
    )


class PatrolListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(PatrolSchema))
    next_cursor = ma.fields.String(allow_none=True)


class PatrolQueryArgsSchema(CursorArgsSchema):
    worker = ma.fields.Integer(metadata={"description": "A worker's user id"})
    area = area_code(metadata={"description": "Workers with a grid in this area's subtree"})
    from_ = Instant(data_key="from", metadata={"description": "Started at or after"})
    to = Instant(metadata={"description": "Started before"})


class NormSchema(ma.Schema):
    grid_kind = ma.fields.String(dump_only=True)
    min_hours = ma.fields.Float(
        required=True, validate=ma.validate.Range(0, 24), metadata={"description": "Hours inside the grid"}
    )
    min_coverage = ma.fields.Float(
        required=True,
        validate=ma.validate.Range(0, 1),
        metadata={"description": "Share of the grid's area within 30 m of the track"},
    )


class NormKindSchema(ma.Schema):
    grid_kind = ma.fields.String(validate=ma.validate.OneOf(GRID_KINDS))


class ComplianceArgsSchema(ma.Schema):
    area = area_code(metadata={"description": "Area code (default: everything you may see)"})
    from_ = ma.fields.Date(
        data_key="from",
        metadata={"description": "First local day (Asia/Shanghai); default 30 days before to"},
    )
    to = ma.fields.Date(metadata={"description": "Day after the last (exclusive); default today"})
    group_by = group_by_field(LIMITS, "worker is per person (not for GIS keys)")
    benchmark = ma.fields.Float(
        load_default=DEFAULT_BENCHMARK,
        validate=ma.validate.Range(0, 1, min_inclusive=False),
        metadata={"description": "The compliance rate to meet, in (0, 1]"},
    )
    crs = ma.fields.String(load_default="wgs84", validate=ma.validate.OneOf(SUPPORTED_CRS))


class ComplianceFiguresSchema(ma.Schema):
    worker_days = ma.fields.Integer(metadata={"description": "Working worker-days in grids with a norm"})
    compliant_days = ma.fields.Integer(metadata={"description": "Those meeting the norm"})
    compliance_rate = ma.fields.Float(allow_none=True, metadata={"description": "巡查达标率"})
    mean_coverage = ma.fields.Float(allow_none=True)
    mean_hours = ma.fields.Float(allow_none=True)
    meets_benchmark = ma.fields.Boolean()
    wilson_low = ma.fields.Float(allow_none=True)
    wilson_high = ma.fields.Float(allow_none=True)
    below_benchmark = ma.fields.Boolean(metadata={"description": "Wilson 95% upper bound < benchmark"})


class ComplianceGroupSchema(GroupKeysSchema, ComplianceFiguresSchema):
    worker = ma.fields.Integer(metadata={PERSONAL: "people"})


class ComplianceSchema(ScopedSchema):
    area = ma.fields.String(allow_none=True)
    from_ = ma.fields.Date(data_key="from", attribute="from")
    to = ma.fields.Date()
    group_by = ma.fields.List(ma.fields.String())
    benchmark = ma.fields.Float()
    total = ma.fields.Nested(ComplianceFiguresSchema)
    groups = ma.fields.List(ma.fields.Nested(ComplianceGroupSchema))


class CalendarDaySchema(ma.Schema):
    day = ma.fields.Date(dump_only=True)
    working = ma.fields.Boolean(
        required=True, metadata={"description": "true: a working day (调休上班); false: a day off (节假日)"}
    )
    name = Text(
        allow_none=True,
        max_length=100,
        metadata={"description": "What the day is, e.g. 国庆节 or 国庆节调休"},
    )
    updated_at = ma.fields.AwareDateTime(dump_only=True)


class CalendarArgsSchema(ma.Schema):
    from_ = ma.fields.Date(
        data_key="from", metadata={"description": "First day (default: 1 January this year)"}
    )
    to = ma.fields.Date(
        metadata={"description": "Last day, at most three years on (default: 31 December of from's year)"}
    )
