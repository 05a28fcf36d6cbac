"""What statistics requests and answers look like."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import flask
import marshmallow as ma
from webargs.fields import DelimitedList

from backend.auth.context import PERSONAL, ScopedSchema
from backend.common.fields import Geometry, area_code
from backend.common.pagination import CursorArgsSchema
from backend.events.schemas import EventSchema
from backend.stats import days, mediation, queries, rollups
from backend.stats.models import INDEX_PARTS
from backend.stats.validation import MAX_GROUP_BY, Limits
from geo.crs import SUPPORTED_CRS, from_wgs84


def group_by_field(limits: Limits, description: str) -> DelimitedList:
    """The `group_by` query parameter of a kind of statistics (checked in full by
    backend.stats.validation; the schema lists the keys for the documentation)."""
    return DelimitedList(
        ma.fields.String(validate=ma.validate.OneOf(limits.keys)),
        load_default=list,
        validate=ma.validate.Length(max=MAX_GROUP_BY),
        metadata={
            "description": f"Up to {MAX_GROUP_BY} of {', '.join(limits.keys)}, comma separated; {description}"
        },
    )


def benchmark_field(description: str) -> ma.fields.Float:
    return ma.fields.Float(
        load_default=queries.DEFAULT_BENCHMARK,
        validate=ma.validate.Range(0, 1, min_inclusive=False),
        metadata={"description": f"{description}, in (0, 1]"},
    )


def window_defaults(data: dict[str, Any], window: timedelta) -> dict[str, Any]:
    """`from` defaults to `to` less the window; the groupings become a tuple."""
    if "from_" not in data:
        try:
            data["from_"] = data["to"] - window
        except OverflowError as error:
            raise ma.ValidationError("Give `from`: `to` is too early for the default.", "from") from error
    data["group_by"] = tuple(data["group_by"])
    return data


class ClosureArgsSchema(ma.Schema):
    area = area_code(required=True, metadata={"description": "Scope: this area and its subtree"})
    from_ = ma.fields.AwareDateTime(
        data_key="from",
        metadata={"description": "Window start: events due at or after it (default: `to` less 365 days)"},
    )
    to = ma.fields.AwareDateTime(
        metadata={"description": "Window end: events due before it (default: `as_of`)"}
    )
    as_of = ma.fields.AwareDateTime(
        metadata={"description": "Count what was closed by this time (default: now)"}
    )
    group_by = group_by_field(
        queries.LIMITS, "day, week (from Monday) and month are of due_at in Beijing time"
    )
    benchmark = benchmark_field("The closure rate to meet")
    exact = ma.fields.Boolean(
        load_default=None,
        metadata={
            "description": "`true`: read the events themselves. `false`: read the rollups when "
            "they can answer. Not given (the default): the rollups for a district or a window "
            f"longer than {queries.LONG_WINDOW.days} days, the events otherwise. The rollups answer "
            "figures as of now (no action taken after `as_of`) grouped by area levels and month "
            "from their tiers (per grid and local month or year, Beijing time) when the window "
            "holds at least one whole local month that ended by `as_of`, the days around it read "
            "from the events; asked with `false`, the daily rollups (per grid, category and local "
            "day) also answer windows of whole local days, grouped by area, category, day, week or "
            "month. Every count is the same either way; from the rollups the median and 90th "
            "percentile of hours to close come from a histogram of eight log-spaced buckets per "
            f"doubling, each within {rollups.RELATIVE_ERROR:.1%} of the exact figure plus 30 "
            "seconds. The answer's `exact` says which it is."
        },
    )
    crs = ma.fields.String(
        load_default="wgs84",
        validate=ma.validate.OneOf(SUPPORTED_CRS),
        metadata={"description": "GeoJSON only: coordinate system of the polygons"},
    )
    sort = ma.fields.String(
        validate=ma.validate.Regexp(r"^-?[a-z_]{1,40}$", error="A column's name, with - for descending."),
        metadata={
            "description": "Order the groups by this column (a key or a figure, as the CSV header's "
            "first word names it), `-` first for descending; empty values last either way, ties as "
            "they were. Text compares by code point"
        },
    )
    index = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "Add the composite index (综合指数) and its parts, each 0-100, to every "
            "group and the totals, with the weights of /stats/index-weights; needs `group_by` = one "
            "area level, and then lists every current area of that level, those with nothing due too"
        },
    )

    @ma.post_load
    def _defaults(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data.setdefault("as_of", datetime.now(UTC))
        data.setdefault("to", data["as_of"])
        return window_defaults(data, queries.DEFAULT_WINDOW)


class OverdueArgsSchema(CursorArgsSchema):
    area = area_code(required=True, metadata={"description": "Scope: this area and its subtree"})
    crs = ma.fields.String(
        load_default="wgs84",
        validate=ma.validate.OneOf(SUPPORTED_CRS),
        metadata={
            "description": "Coordinate system of the locations (a map over a GCJ-02 basemap asks gcj02)"
        },
    )


# Where a route puts the coordinate system its response's locations are written in.
OUTPUT_CRS = "output_crs"


class OverdueEventSchema(EventSchema):
    """An overdue event, its location in the coordinate system the request asked for."""

    @ma.post_dump
    def _in_frame(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        crs = flask.g.get(OUTPUT_CRS, "wgs84")
        location = data.get("location")
        if crs != "wgs84" and location is not None:
            lon, lat = location["coordinates"][:2]
            location["coordinates"] = [round(c, 7) for c in from_wgs84(lon, lat, crs)]
        return data


class OverdueListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(OverdueEventSchema))
    next_cursor = ma.fields.String(allow_none=True)


class FiguresSchema(ma.Schema):
    due = ma.fields.Integer(metadata={"description": "应结案数: not rejected, due in the window"})
    closed = ma.fields.Integer(metadata={"description": "结案数: of the due, closed by as_of"})
    closed_on_time = ma.fields.Integer(
        metadata={"description": "按期结案数: of the closed, closed by their due time"}
    )
    reworked = ma.fields.Integer(
        metadata={"description": "Of the closed, returned or reopened at least once"}
    )
    overdue_open = ma.fields.Integer(
        metadata={"description": "Of the due, not closed by as_of and due before it"}
    )
    closure_rate = ma.fields.Float(allow_none=True, metadata={"description": "结案率 = closed / due"})
    on_time_rate = ma.fields.Float(
        allow_none=True, metadata={"description": "按期结案率 = closed_on_time / due"}
    )
    rework_rate = ma.fields.Float(allow_none=True, metadata={"description": "返工率 = reworked / closed"})
    median_hours_to_close = ma.fields.Float(
        allow_none=True, metadata={"description": "Median of closed_at - accepted_at (hours)"}
    )
    p90_hours_to_close = ma.fields.Float(
        allow_none=True, metadata={"description": "90th percentile of the same (hours)"}
    )
    meets_benchmark = ma.fields.Boolean(metadata={"description": "closure_rate >= benchmark"})
    wilson_low = ma.fields.Float(
        allow_none=True, metadata={"description": "Wilson 95% interval of the closure rate: low"}
    )
    wilson_high = ma.fields.Float(allow_none=True, metadata={"description": "... and high"})
    below_benchmark = ma.fields.Boolean(
        metadata={"description": "wilson_high < benchmark: below it beyond chance"}
    )
    # With index=true only (backend.stats.composite says how each is scaled).
    check_in_rate = ma.fields.Float(
        allow_none=True, metadata={"description": "index=true: the emergency units' check-in rate 报岗率"}
    )
    alerts_in_progress = ma.fields.Integer(
        metadata={"description": "index=true: alerts under a day old with a called unit not yet arrived"}
    )
    closure_rate_score = ma.fields.Float(allow_none=True, metadata={"description": "index=true: 0-100"})
    on_time_rate_score = ma.fields.Float(allow_none=True, metadata={"description": "index=true: 0-100"})
    overdue_open_score = ma.fields.Float(
        allow_none=True, metadata={"description": "index=true: 100 × (1 − overdue_open / due)"}
    )
    check_in_rate_score = ma.fields.Float(allow_none=True, metadata={"description": "index=true: 0-100"})
    alerts_in_progress_score = ma.fields.Float(
        allow_none=True, metadata={"description": "index=true: 100 / (1 + alerts_in_progress)"}
    )
    composite_index = ma.fields.Float(
        allow_none=True,
        metadata={"description": "index=true: 综合指数, the weighted mean of the scores present (0-100)"},
    )


# The composite index's weights by part, each 0-100 (the index weighs the parts in proportion).
IndexWeightsSchema = ma.Schema.from_dict(
    {part: ma.fields.Float(required=True, validate=ma.validate.Range(0, 100)) for part in INDEX_PARTS},
    name="IndexWeightsSchema",
)


def _key_fields() -> dict[str, ma.fields.Field]:
    fields: dict[str, ma.fields.Field] = {}
    for level, zh in (("district", "区"), ("town", "镇街"), ("village", "村居"), ("grid", "网格")):
        fields[level] = ma.fields.String(allow_none=True, metadata={"description": f"{zh} code"})
        fields[f"{level}_name"] = ma.fields.String(allow_none=True)
    fields["category"] = ma.fields.String(allow_none=True)
    fields["category_name_zh"] = ma.fields.String(allow_none=True)
    fields["category_name_en"] = ma.fields.String(allow_none=True)
    fields["channel"] = ma.fields.String(
        allow_none=True, metadata={"description": "渠道: where events came from"}
    )
    fields["channel_name"] = ma.fields.String(allow_none=True)
    fields["worker"] = ma.fields.Integer(
        allow_none=True, metadata={"description": "User id: the assignee, else the reporter"}
    )
    for unit in ("day", "week", "month"):
        fields[unit] = ma.fields.String(
            allow_none=True, metadata={"format": "date", "description": f"First day of the {unit}"}
        )
    return fields


GroupKeySchema = ma.Schema.from_dict(_key_fields(), name="GroupKeySchema")


class ClosureGroupSchema(FiguresSchema):
    key = ma.fields.Nested(
        GroupKeySchema, metadata={"description": "The group: only the fields of the requested groupings"}
    )


class ClosureStatsSchema(ma.Schema):
    area = ma.fields.String()
    from_ = ma.fields.AwareDateTime(data_key="from", attribute="window_from")
    to = ma.fields.AwareDateTime(attribute="window_to")
    as_of = ma.fields.AwareDateTime()
    benchmark = ma.fields.Float()
    group_by = ma.fields.List(ma.fields.String())
    exact = ma.fields.Boolean(
        metadata={"description": "False when the percentiles come from the rollups' histograms"}
    )
    totals = ma.fields.Nested(FiguresSchema, metadata={"description": "The whole scope"})
    groups = ma.fields.List(
        ma.fields.Nested(ClosureGroupSchema),
        metadata={"description": "Groups with at least one due event, ordered by key"},
    )


class ClosurePropertiesSchema(GroupKeySchema, FiguresSchema):  # type: ignore[valid-type,misc]
    """A feature's properties: its group's key fields and figures side by side."""


class ClosureFeatureSchema(ma.Schema):
    type = ma.fields.Constant("Feature")
    id = ma.fields.String()
    geometry = Geometry(allow_none=True)
    properties = ma.fields.Nested(ClosurePropertiesSchema)


class ClosureFeatureCollectionSchema(ma.Schema):
    """The choropleth: each area of the first grouping's level with its figures."""

    type = ma.fields.Constant("FeatureCollection")
    features = ma.fields.List(ma.fields.Nested(ClosureFeatureSchema))
    area = ma.fields.String()
    from_ = ma.fields.AwareDateTime(data_key="from", attribute="window_from")
    to = ma.fields.AwareDateTime(attribute="window_to")
    as_of = ma.fields.AwareDateTime()
    benchmark = ma.fields.Float()
    group_by = ma.fields.List(ma.fields.String())
    exact = ma.fields.Boolean(
        metadata={"description": "False when the percentiles come from the rollups' histograms"}
    )
    totals = ma.fields.Nested(FiguresSchema)


# --- assessments (考核): a month's closure figures, frozen ---------------------------------------

ASSESSED_LEVELS = queries.AREA_LEVELS[1:]


MONTH = re.compile(r"(19[7-9][0-9]|2[0-9]{3})-(0[1-9]|1[0-2])")


class MonthField(ma.fields.String):
    """A local month (Asia/Shanghai) as YYYY-MM, loaded as its first day."""

    default_error_messages = {"month": "Must be a month YYYY-MM, 1970 or later."}

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Any:
        text = super()._deserialize(value, attr, data, **kwargs)
        if not MONTH.fullmatch(text):
            raise self.make_error("month")
        return date(int(text[:4]), int(text[5:7]), 1)


def month_field(**kwargs: Any) -> MonthField:
    metadata = {"example": "2026-10", "pattern": f"^{MONTH.pattern}$", **kwargs.pop("metadata", {})}
    return MonthField(metadata=metadata, **kwargs)


class AssessmentCreateSchema(ma.Schema):
    area = area_code(required=True, metadata={"description": "The area whose subtree's figures are frozen"})
    month = month_field(
        required=True,
        metadata={
            "description": "The local month (Beijing time) whose due events are counted; it must have ended"
        },
    )
    benchmark = benchmark_field("The closure rate to meet")


class AssessmentListArgsSchema(CursorArgsSchema):
    area = area_code(metadata={"description": "Assessments of this area and of the areas below it"})
    month = month_field(metadata={"description": "Assessments of this local month"})


class AssessmentArgsSchema(ma.Schema):
    group_by = ma.fields.String(
        validate=ma.validate.OneOf(ASSESSED_LEVELS),
        metadata={
            "description": "The level below the area to list the frozen groups of (default: grid; "
            "none for a grid's assessment, which holds its totals only)"
        },
    )


class AssessmentSummarySchema(ScopedSchema):
    id = ma.fields.Integer()
    area = ma.fields.String()
    area_name = ma.fields.String(allow_none=True, metadata={"description": "Its name when frozen"})
    month = ma.fields.String(metadata={"description": "YYYY-MM, Beijing time"})
    from_ = ma.fields.AwareDateTime(
        data_key="from", attribute="window_from", metadata={"description": "The month's start"}
    )
    to = ma.fields.AwareDateTime(attribute="window_to", metadata={"description": "The month's end"})
    as_of = ma.fields.AwareDateTime(
        metadata={"description": "The figures stood as at this time: the month's end"}
    )
    benchmark = ma.fields.Float()
    levels = ma.fields.List(
        ma.fields.String(), metadata={"description": "The levels frozen below the area (group_by)"}
    )
    created_at = ma.fields.AwareDateTime(metadata={"description": "When it was frozen"})
    created_by = ma.fields.Integer(
        allow_none=True,
        metadata={PERSONAL: "people", "description": "Who froze it (user id); absent for GIS keys"},
    )
    totals = ma.fields.Nested(FiguresSchema, metadata={"description": "The whole area"})


class AssessmentSchema(AssessmentSummarySchema):
    """An assessment's frozen figures, as closure statistics give them for its window and as_of."""

    group_by = ma.fields.List(ma.fields.String())
    groups = ma.fields.List(
        ma.fields.Nested(ClosureGroupSchema),
        metadata={"description": "The areas of the group_by level with due events, ordered by code"},
    )


class AssessmentListSchema(ma.Schema):
    items = ma.fields.List(
        ma.fields.Nested(AssessmentSummarySchema), metadata={"description": "Newest first"}
    )
    next_cursor = ma.fields.String(allow_none=True)


# --- check-in rates and alert responses: local days ------------------------------------------


class DaysArgsSchema(ma.Schema):
    area = area_code(metadata={"description": "Area code (default: everything you may see)"})
    from_ = ma.fields.Date(
        data_key="from",
        metadata={"description": "First local day (Asia/Shanghai); default 30 days before to"},
    )
    to = ma.fields.Date(
        metadata={
            "description": "Day after the last (exclusive); default today for check-ins (complete "
            "days only), tomorrow for alert responses"
        }
    )
    group_by = group_by_field(days.LIMITS, "week is the local week from Monday")


class CheckInStatsArgsSchema(DaysArgsSchema):
    benchmark = benchmark_field("The check-in rate to meet")


class GroupKeysSchema(ma.Schema):
    district = ma.fields.String()
    town = ma.fields.String()
    village = ma.fields.String()
    grid = ma.fields.String()
    area_name = ma.fields.String(allow_none=True)
    day = ma.fields.String(metadata={"description": "YYYY-MM-DD"})
    week = ma.fields.String(metadata={"description": "The week's Monday, YYYY-MM-DD"})
    month = ma.fields.String(metadata={"description": "YYYY-MM"})


class CheckInFiguresSchema(ma.Schema):
    active_units = ma.fields.Integer()
    units_checked_in = ma.fields.Integer(metadata={"description": "Units with at least one check-in"})
    active_unit_days = ma.fields.Integer()
    checked_in_unit_days = ma.fields.Integer()
    check_in_rate = ma.fields.Float(allow_none=True, metadata={"description": "报岗率"})
    meets_benchmark = ma.fields.Boolean()
    wilson_low = ma.fields.Float(allow_none=True)
    wilson_high = ma.fields.Float(allow_none=True)
    below_benchmark = ma.fields.Boolean(metadata={"description": "Wilson 95% upper bound < benchmark"})


class CheckInGroupSchema(GroupKeysSchema, CheckInFiguresSchema):
    pass


class CheckInStatsSchema(ma.Schema):
    area = ma.fields.String(allow_none=True)
    from_ = ma.fields.Date(data_key="from", attribute="from")
    to = ma.fields.Date()
    group_by = ma.fields.List(ma.fields.String())
    benchmark = ma.fields.Float()
    total = ma.fields.Nested(CheckInFiguresSchema)
    groups = ma.fields.List(ma.fields.Nested(CheckInGroupSchema))


class ResponseFiguresSchema(ma.Schema):
    alerts = ma.fields.Integer()
    dispatches = ma.fields.Integer()
    acknowledged = ma.fields.Integer()
    arrived = ma.fields.Integer()
    acknowledge_rate = ma.fields.Float(allow_none=True)
    arrive_rate = ma.fields.Float(allow_none=True)
    acknowledge_median_s = ma.fields.Float(allow_none=True)
    acknowledge_p90_s = ma.fields.Float(allow_none=True)
    arrive_median_s = ma.fields.Float(allow_none=True)
    arrive_p90_s = ma.fields.Float(allow_none=True)


class ResponseGroupSchema(GroupKeysSchema, ResponseFiguresSchema):
    pass


class ResponseStatsSchema(ma.Schema):
    area = ma.fields.String(allow_none=True)
    from_ = ma.fields.Date(data_key="from", attribute="from")
    to = ma.fields.Date()
    group_by = ma.fields.List(ma.fields.String())
    total = ma.fields.Nested(ResponseFiguresSchema)
    groups = ma.fields.List(ma.fields.Nested(ResponseGroupSchema))


CSV_SCHEMA = {
    "type": "string",
    "description": "UTF-8 with a byte-order mark, a bilingual header row, one row per group",
}


# --- mediation (调解成功率) ----------------------------------------------------------------------


class MediationArgsSchema(ma.Schema):
    area = area_code(required=True, metadata={"description": "Scope: this area and its subtree"})
    from_ = ma.fields.AwareDateTime(
        data_key="from",
        metadata={"description": "Cases whose outcome was set at or after it (default: `to` less 365 days)"},
    )
    to = ma.fields.AwareDateTime(metadata={"description": "... and before it (default: now)"})
    group_by = group_by_field(
        mediation.LIMITS,
        "mediator (admins and supervisors in scope only); day, week and month of the outcome",
    )
    benchmark = benchmark_field("The success rate to meet")
    crs = ma.fields.String(
        load_default="wgs84",
        validate=ma.validate.OneOf(SUPPORTED_CRS),
        metadata={"description": "GeoJSON only: coordinate system of the polygons"},
    )

    @ma.post_load
    def _defaults(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        data.setdefault("to", datetime.now(UTC))
        return window_defaults(data, mediation.DEFAULT_WINDOW)


class MediationFiguresSchema(ma.Schema):
    cases = ma.fields.Integer(metadata={"description": "Cases whose outcome was set in the window"})
    agreements = ma.fields.Integer(metadata={"description": "调解成功"})
    failed_referred = ma.fields.Integer(metadata={"description": "调解不成, referred on"})
    withdrawn = ma.fields.Integer(metadata={"description": "撤回"})
    judicially_confirmed = ma.fields.Integer(
        metadata={"description": "Agreements confirmed by a court (司法确认)"}
    )
    referred_court = ma.fields.Integer()
    referred_petition_office = ma.fields.Integer()
    referred_police = ma.fields.Integer()
    success_rate = ma.fields.Float(
        allow_none=True, metadata={"description": "调解成功率 = agreements / cases"}
    )
    meets_benchmark = ma.fields.Boolean()
    wilson_low = ma.fields.Float(allow_none=True, metadata={"description": "Wilson 95% interval: low"})
    wilson_high = ma.fields.Float(allow_none=True, metadata={"description": "... and high"})
    below_benchmark = ma.fields.Boolean(metadata={"description": "wilson_high < benchmark"})
    median_days_to_outcome = ma.fields.Float(allow_none=True)
    p90_days_to_outcome = ma.fields.Float(allow_none=True)


def _mediation_key_fields() -> dict[str, ma.fields.Field]:
    fields: dict[str, ma.fields.Field] = {}
    for level in queries.AREA_LEVELS:
        fields[level] = ma.fields.String(allow_none=True)
        fields[f"{level}_name"] = ma.fields.String(allow_none=True)
    fields["mediator"] = ma.fields.String(
        allow_none=True, metadata={"description": "The mediator's name (personal)"}
    )
    fields["dispute_type"] = ma.fields.String(allow_none=True)
    fields["dispute_type_name"] = ma.fields.String(allow_none=True)
    for unit in ("day", "week", "month"):
        fields[unit] = ma.fields.String(allow_none=True, metadata={"format": "date"})
    return fields


MediationKeySchema = ma.Schema.from_dict(_mediation_key_fields(), name="MediationKeySchema")


class MediationGroupSchema(MediationFiguresSchema):
    key = ma.fields.Nested(MediationKeySchema)


class MediationStatsSchema(ma.Schema):
    area = ma.fields.String()
    from_ = ma.fields.AwareDateTime(data_key="from")
    to = ma.fields.AwareDateTime()
    benchmark = ma.fields.Float()
    group_by = ma.fields.List(ma.fields.String())
    totals = ma.fields.Nested(MediationFiguresSchema)
    groups = ma.fields.List(ma.fields.Nested(MediationGroupSchema))


class MediationPropertiesSchema(MediationKeySchema, MediationFiguresSchema):  # type: ignore[valid-type,misc]
    """A feature's properties: its group's key fields and figures side by side."""


class MediationFeatureSchema(ma.Schema):
    type = ma.fields.Constant("Feature")
    id = ma.fields.String()
    geometry = Geometry(allow_none=True)
    properties = ma.fields.Nested(MediationPropertiesSchema)


class MediationFeatureCollectionSchema(ma.Schema):
    type = ma.fields.Constant("FeatureCollection")
    features = ma.fields.List(ma.fields.Nested(MediationFeatureSchema))
    totals = ma.fields.Nested(MediationFiguresSchema)
