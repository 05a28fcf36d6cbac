"""What organisation, check-in and alert requests and answers look like."""

from __future__ import annotations

from typing import Any, cast

import marshmallow as ma
from shapely.geometry import Point

from backend.auth.context import PERSONAL, ScopedSchema
from backend.common.fields import Geometry, Text, area_code
from backend.common.pagination import CursorArgsSchema
from backend.org import buildings, imports, units
from backend.org.models import ALERT_KINDS, GROUP_KINDS, UNIT_KINDS
from geo.crs import SUPPORTED_CRS, transform_geometry
from geo.geojson import GeometryError, parse_geometry

BIGINT = 2**63 - 1
# The contacts of the people a row involves (building heads, unit leaders): ScopedSchema keeps
# them for those the caller's actor lets see them on that row.
CONTACTS = {
    PERSONAL: "contacts",
    "description": "Personal data: only for supervisors in scope and admins; absent otherwise",
}


def people(description: str) -> dict[str, str]:
    """The metadata of a field naming people (office holders, who did what) or holding free text:
    GIS keys, which read without personal data, do not get it."""
    return {PERSONAL: "people", "description": f"{description}. Personal data: absent for GIS keys"}


def row_id(**kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(validate=ma.validate.Range(1, BIGINT), **kwargs)


def count_field(maximum: int = 1_000_000, **kwargs: Any) -> ma.fields.Integer:
    return ma.fields.Integer(validate=ma.validate.Range(0, maximum), **kwargs)


def crs_field() -> ma.fields.String:
    return ma.fields.String(
        load_default="wgs84",
        validate=ma.validate.OneOf(SUPPORTED_CRS),
        metadata={"description": "CRS of the coordinates sent"},
    )


def grid_code(**kwargs: Any) -> ma.fields.String:
    return ma.fields.String(
        validate=ma.validate.Regexp(r"^\d{15}\Z", error="Must be a 15-digit grid code."),
        metadata={"example": "440117103001001"},
        **kwargs,
    )


class AtLeastOne(ma.Schema):
    """An update: at least one field."""

    @ma.validates_schema
    def _something(self, data: dict[str, Any], **kwargs: Any) -> None:
        if not data.keys() - {"crs"}:
            raise ma.ValidationError("Give at least one field to change.", "_schema")


class PersonSchema(ma.Schema):
    name = Text(max_length=50, allow_none=True)
    phone = Text(max_length=40, allow_none=True)


class InGridSchema(ScopedSchema):
    grid = ma.fields.String(attribute="grid_code")
    village = ma.fields.String(attribute="village_code")
    town = ma.fields.String(attribute="town_code")
    district = ma.fields.String(attribute="district_code")


class AreaArgsSchema(CursorArgsSchema):
    area = area_code(metadata={"description": "Area code: rows in its subtree"})


# --- party branches ---------------------------------------------------------------------------


class BranchSchema(InGridSchema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    secretary = ma.fields.String(allow_none=True, metadata=people("The branch secretary (书记)"))
    member_count = ma.fields.Integer()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class BranchCreateSchema(ma.Schema):
    grid = grid_code(required=True)
    name = Text(min_length=1, max_length=100, metadata={"description": "Default: the grid's name + 党支部"})
    secretary = Text(max_length=50, allow_none=True)
    member_count = count_field(100_000, load_default=0)


class BranchUpdateSchema(AtLeastOne):
    name = Text(min_length=1, max_length=100)
    secretary = Text(max_length=50, allow_none=True)
    member_count = count_field(100_000)


class BranchListSchema(ScopedSchema):
    items = ma.fields.List(ma.fields.Nested(BranchSchema))
    next_cursor = ma.fields.String(allow_none=True)


# --- party groups -----------------------------------------------------------------------------


class GroupSchema(InGridSchema):
    id = ma.fields.Integer()
    branch_id = ma.fields.Integer()
    kind = ma.fields.String(metadata={"description": "building (楼栋党小组) or cooperative (经济社党小组)"})
    name = ma.fields.String()
    leader = ma.fields.String(allow_none=True, metadata=people("The group leader (组长)"))
    member_count = ma.fields.Integer()
    cooperative = ma.fields.String(
        allow_none=True, metadata={"description": "The economic cooperative (经济社)"}
    )
    building_ids = ma.fields.List(ma.fields.Integer(), metadata={"description": "Buildings it looks after"})
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class GroupCreateSchema(ma.Schema):
    branch_id = row_id(required=True)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(GROUP_KINDS))
    name = Text(required=True, min_length=1, max_length=100)
    leader = Text(max_length=50, allow_none=True)
    member_count = count_field(10_000, load_default=0)
    cooperative = Text(max_length=100, allow_none=True)
    building_ids = ma.fields.List(row_id(), validate=ma.validate.Length(max=1000))


class GroupUpdateSchema(AtLeastOne):
    name = Text(min_length=1, max_length=100)
    leader = Text(max_length=50, allow_none=True)
    member_count = count_field(10_000)
    cooperative = Text(max_length=100, allow_none=True)
    building_ids = ma.fields.List(
        row_id(),
        validate=ma.validate.Length(max=1000),
        metadata={"description": "Replaces the set of buildings"},
    )


class GroupQueryArgsSchema(AreaArgsSchema):
    branch_id = row_id()
    kind = ma.fields.String(validate=ma.validate.OneOf(GROUP_KINDS))


class GroupListSchema(ScopedSchema):
    items = ma.fields.List(ma.fields.Nested(GroupSchema))
    next_cursor = ma.fields.String(allow_none=True)


# --- buildings --------------------------------------------------------------------------------

BUILDING_GEOMETRY = ("Point", "Polygon", "MultiPolygon")


class BuildingPropertiesSchema(ma.Schema):
    """A building's attributes, as sent on create and as GeoJSON feature properties on import."""

    name = Text(required=True, min_length=1, max_length=100, metadata={"description": "e.g. 3栋"})
    address = Text(max_length=200, allow_none=True)
    floors = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(1, 300))
    households = count_field(100_000, load_default=0)
    rental_units = count_field(100_000, load_default=0, metadata={"description": "出租屋"})
    safe_rental_units = count_field(
        100_000, load_default=0, metadata={"description": "Certified safe (平安出租屋)"}
    )
    access_control = ma.fields.Boolean(load_default=False, metadata={"description": "门禁"})
    head = ma.fields.Nested(
        PersonSchema, allow_none=True, metadata={"description": "Building head (楼长): personal data"}
    )
    party_group_id = row_id(allow_none=True)


class BuildingCreateSchema(BuildingPropertiesSchema):
    geometry = Geometry(BUILDING_GEOMETRY, required=True)
    crs = crs_field()


class BuildingUpdateSchema(AtLeastOne):
    name = Text(min_length=1, max_length=100)
    address = Text(max_length=200, allow_none=True)
    floors = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(1, 300))
    households = count_field(100_000)
    rental_units = count_field(100_000)
    safe_rental_units = count_field(100_000)
    access_control = ma.fields.Boolean()
    head = ma.fields.Nested(PersonSchema, allow_none=True)
    party_group_id = row_id(allow_none=True)
    geometry = Geometry(BUILDING_GEOMETRY)
    crs = crs_field()


class BuildingSchema(InGridSchema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    address = ma.fields.String(allow_none=True)
    geometry = Geometry(
        BUILDING_GEOMETRY, attribute="geom", metadata={"description": "Point or footprint (WGS84)"}
    )
    location = Geometry(("Point",), metadata={"description": "The point, or a point on the footprint"})
    assignment = ma.fields.String(metadata={"description": "contains or nearest"})
    floors = ma.fields.Integer(allow_none=True)
    households = ma.fields.Integer()
    rental_units = ma.fields.Integer()
    safe_rental_units = ma.fields.Integer()
    access_control = ma.fields.Boolean()
    head = ma.fields.Nested(PersonSchema, allow_none=True, metadata=CONTACTS)
    party_group_id = ma.fields.Integer(allow_none=True)
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class BuildingQueryArgsSchema(AreaArgsSchema):
    party_group_id = row_id()


class BuildingListSchema(ScopedSchema):
    items = ma.fields.List(ma.fields.Nested(BuildingSchema))
    next_cursor = ma.fields.String(allow_none=True)


class FeatureCollectionImportSchema(ma.Schema):
    type = ma.fields.String(required=True, validate=ma.validate.Equal("FeatureCollection"))
    features = ma.fields.List(ma.fields.Dict(), required=True, validate=ma.validate.Length(min=1, max=5000))
    crs = crs_field()


class ImportReportSchema(ScopedSchema):
    created = ma.fields.Integer()


# --- emergency units --------------------------------------------------------------------------


class UnitPropertiesSchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=100)
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(UNIT_KINDS))
    members = ma.fields.Integer(load_default=3, validate=ma.validate.Range(1, 50))
    leader = ma.fields.Nested(PersonSchema, allow_none=True, metadata={"description": "Personal data"})
    active = ma.fields.Boolean(load_default=True)


class UnitCreateSchema(UnitPropertiesSchema):
    location = Geometry(("Point",), required=True)
    crs = crs_field()


class UnitUpdateSchema(AtLeastOne):
    name = Text(min_length=1, max_length=100)
    kind = ma.fields.String(validate=ma.validate.OneOf(UNIT_KINDS))
    members = ma.fields.Integer(validate=ma.validate.Range(1, 50))
    leader = ma.fields.Nested(PersonSchema, allow_none=True)
    active = ma.fields.Boolean()
    location = Geometry(("Point",))
    crs = crs_field()


class UnitSchema(InGridSchema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    kind = ma.fields.String(metadata={"description": "shop, hotel, market, school or other"})
    members = ma.fields.Integer()
    location = Geometry(("Point",), metadata={"description": "WGS84 point"})
    assignment = ma.fields.String()
    leader = ma.fields.Nested(PersonSchema, allow_none=True, metadata=CONTACTS)
    active = ma.fields.Boolean()
    created_at = ma.fields.AwareDateTime()
    updated_at = ma.fields.AwareDateTime()


class UnitQueryArgsSchema(AreaArgsSchema):
    kind = ma.fields.String(validate=ma.validate.OneOf(UNIT_KINDS))
    active = ma.fields.Boolean()


class UnitListSchema(ScopedSchema):
    items = ma.fields.List(ma.fields.Nested(UnitSchema))
    next_cursor = ma.fields.String(allow_none=True)


# --- check-ins --------------------------------------------------------------------------------


class CheckInCreateSchema(ma.Schema):
    members_on_duty = ma.fields.Integer(allow_none=True, validate=ma.validate.Range(0, 50))


class CheckInSchema(ScopedSchema):
    id = ma.fields.Integer()
    unit_id = ma.fields.Integer()
    local_day = ma.fields.Date(metadata={"description": "The day in Asia/Shanghai"})
    checked_in_at = ma.fields.AwareDateTime()
    user_id = ma.fields.Integer(allow_none=True, metadata=people("Who checked the unit in"))
    members_on_duty = ma.fields.Integer(allow_none=True)


class CheckInListSchema(ScopedSchema):
    items = ma.fields.List(ma.fields.Nested(CheckInSchema))
    next_cursor = ma.fields.String(allow_none=True)


# --- alerts -----------------------------------------------------------------------------------


class AlertCreateSchema(ma.Schema):
    location = Geometry(("Point",), required=True)
    crs = crs_field()
    kind = ma.fields.String(required=True, validate=ma.validate.OneOf(ALERT_KINDS))
    description = Text(max_length=2000, allow_none=True)
    radius_m = ma.fields.Float(
        load_default=1000.0,
        validate=ma.validate.Range(10, 20_000),
        metadata={"description": "Search radius in metres"},
    )
    count = ma.fields.Integer(
        load_default=5, validate=ma.validate.Range(1, 50), metadata={"description": "How many units to call"}
    )
    widen = ma.fields.Boolean(
        load_default=False,
        metadata={
            "description": "When fewer are in range, double the radius until enough are found or "
            "max_radius_m is reached"
        },
    )
    max_radius_m = ma.fields.Float(load_default=8000.0, validate=ma.validate.Range(10, 50_000))


class DispatchSchema(ScopedSchema):
    unit_id = ma.fields.Integer()
    unit_name = ma.fields.String(attribute="unit.name")
    unit_kind = ma.fields.String(attribute="unit.kind")
    members = ma.fields.Integer(attribute="unit.members")
    grid = ma.fields.String(attribute="unit.grid_code")
    leader = ma.fields.Nested(PersonSchema, attribute="unit.leader", allow_none=True, metadata=CONTACTS)
    rank = ma.fields.Integer(metadata={"description": "1 = nearest"})
    distance_m = ma.fields.Float(metadata={"description": "True distance in metres"})
    dispatched_at = ma.fields.AwareDateTime()
    acknowledged_at = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "一线响应"})
    arrived_at = ma.fields.AwareDateTime(allow_none=True, metadata={"description": "一片集结"})
    seconds_to_acknowledge = ma.fields.Float(allow_none=True)
    seconds_to_arrive = ma.fields.Float(allow_none=True)


class ResponseSummarySchema(ScopedSchema):
    dispatched = ma.fields.Integer()
    acknowledged = ma.fields.Integer()
    arrived = ma.fields.Integer()
    first_acknowledged_s = ma.fields.Float(allow_none=True)
    median_acknowledge_s = ma.fields.Float(allow_none=True)
    first_arrived_s = ma.fields.Float(allow_none=True)
    median_arrive_s = ma.fields.Float(allow_none=True)


class AlertSchema(ScopedSchema):
    id = ma.fields.Integer(attribute="alert.id")
    kind = ma.fields.String(attribute="alert.kind")
    description = ma.fields.String(
        attribute="alert.description", allow_none=True, metadata=people("What happened, as told")
    )
    location = Geometry(("Point",), attribute="alert.location")
    crs = ma.fields.String(attribute="alert.crs")
    grid = ma.fields.String(attribute="alert.grid_code", allow_none=True)
    village = ma.fields.String(attribute="alert.village_code", allow_none=True)
    town = ma.fields.String(attribute="alert.town_code", allow_none=True)
    district = ma.fields.String(attribute="alert.district_code", allow_none=True)
    requested = ma.fields.Integer(attribute="alert.requested", metadata={"description": "Units asked for"})
    found = ma.fields.Integer(attribute="alert.found", metadata={"description": "Units called"})
    requested_radius_m = ma.fields.Float(attribute="alert.requested_radius_m")
    radius_m = ma.fields.Float(attribute="alert.radius_m", metadata={"description": "Ring searched"})
    widened = ma.fields.Boolean(attribute="alert.widened")
    shortfall = ma.fields.String(
        allow_none=True, metadata={"description": "Set when fewer units than asked were in range"}
    )
    created_by = ma.fields.Integer(
        attribute="alert.created_by", allow_none=True, metadata=people("Who raised the alert")
    )
    created_at = ma.fields.AwareDateTime(attribute="alert.created_at")
    summary = ma.fields.Nested(ResponseSummarySchema)
    dispatches = ma.fields.List(ma.fields.Nested(DispatchSchema))


class AlertQueryArgsSchema(AreaArgsSchema):
    kind = ma.fields.String(validate=ma.validate.OneOf(ALERT_KINDS))


class AlertListSchema(ScopedSchema):
    items = ma.fields.List(ma.fields.Nested(AlertSchema))
    next_cursor = ma.fields.String(allow_none=True)


# --- profile and statistics -------------------------------------------------------------------


class ProfileAreaSchema(ScopedSchema):
    code = ma.fields.String()
    level = ma.fields.String()
    name = ma.fields.String()


class ProfileSchema(ScopedSchema):
    area = ma.fields.Nested(ProfileAreaSchema)
    grids = ma.fields.Integer()
    party_branches = ma.fields.Integer()
    party_members = ma.fields.Integer(metadata={"description": "Members of the branches"})
    party_groups = ma.fields.Integer()
    building_groups = ma.fields.Integer()
    cooperative_groups = ma.fields.Integer()
    buildings = ma.fields.Integer()
    households = ma.fields.Integer()
    rental_units = ma.fields.Integer()
    safe_rental_units = ma.fields.Integer()
    buildings_with_access_control = ma.fields.Integer()
    emergency_units = ma.fields.Integer()
    active_emergency_units = ma.fields.Integer()
    workers = ma.fields.Integer(metadata={"description": "Grid workers assigned in the subtree"})


# --- from loaded input to the service's inputs ------------------------------------------------


def contact_fields(data: dict[str, Any], name: str) -> dict[str, Any]:
    """Flatten a nested contact ({name, phone} or null) into the service's two fields."""
    if name not in data:
        return {}
    contact = data.pop(name) or {}
    return {f"{name}_name": contact.get("name"), f"{name}_phone": contact.get("phone")}


def building_input(data: dict[str, Any], geometry: Any) -> buildings.BuildingInput:
    """A loaded building (create body or import properties) with its WGS84 geometry."""
    data = dict(data)
    contact = contact_fields(data, "head")
    data.pop("crs", None)
    data.pop("geometry", None)
    return buildings.BuildingInput(geometry=geometry, **data, **contact)


def unit_input(data: dict[str, Any], lon: float, lat: float) -> units.UnitInput:
    """A loaded unit (create body or import properties) at a WGS84 point."""
    data = dict(data)
    contact = contact_fields(data, "leader")
    data.pop("crs", None)
    data.pop("location", None)
    return units.UnitInput(lon=lon, lat=lat, **data, **contact)


def _rejected(index: int, error: Exception) -> imports.Rejection:
    if isinstance(error, ma.ValidationError):
        messages = error.normalized_messages()  # type: ignore[no-untyped-call]
        name = next(iter(messages), "")
        return imports.Rejection(index, f"{name}: {messages[name]}", f"properties.{name}")
    return imports.Rejection(index, str(error), "geometry")


def read_features(
    features: list[Any], crs: str, kind: str
) -> list[buildings.BuildingInput | units.UnitInput | imports.Rejection]:
    """Check each GeoJSON feature's geometry and properties as a building or a unit; the bad
    ones become rejections, reported with the service's own."""
    out: list[buildings.BuildingInput | units.UnitInput | imports.Rejection] = []
    properties_schema = BuildingPropertiesSchema() if kind == "building" else UnitPropertiesSchema()
    allowed = BUILDING_GEOMETRY if kind == "building" else ("Point",)
    for index, feature in enumerate(features):
        try:
            if not isinstance(feature, dict) or feature.get("type") != "Feature":
                raise GeometryError("Not a GeoJSON Feature.")
            geometry = transform_geometry(parse_geometry(feature.get("geometry"), allowed), crs)
            properties = feature.get("properties")
            loaded = properties_schema.load(properties if isinstance(properties, dict) else {})
        except (ma.ValidationError, GeometryError) as error:
            out.append(_rejected(index, error))
            continue
        if kind == "building":
            out.append(building_input(loaded, geometry))
        else:
            point = cast(Point, geometry)  # units allow only points
            out.append(unit_input(loaded, point.x, point.y))
    return out
