"""HTTP routes for party branches and groups, buildings, emergency units, check-ins, alerts
and area profiles (the check-in and response statistics are in backend.stats)."""

from __future__ import annotations

from datetime import date
from typing import Any

from flask import url_for
from flask.views import MethodView

from backend.auth.context import current_actor
from backend.common.blueprint import Blueprint
from backend.common.pagination import (
    CursorArgsSchema,
    decode_cursor,
    decode_parsed_cursor,
    encode_cursor,
)
from backend.config import settings
from backend.db import get_session
from backend.errors import ValidationFailed, field_error
from backend.org import alerts, branches, buildings, check_ins, groups, imports, queries, schemas, units
from geo.crs import to_wgs84, transform_geometry

blp = Blueprint(
    "org",
    __name__,
    url_prefix="/api/v1",
    description="Party branches and groups (支部建在网格上), buildings, minimum emergency units "
    "(最小应急单元), check-ins (报岗) and one-point calls (一点呼叫)",
)


def _after(args: dict[str, Any]) -> int | None:
    key = decode_cursor(args.get("cursor"), (int,))
    return key[0] if key else None


def _page(items: list[Any], limit: int, key: Any = None) -> dict[str, Any]:
    last = items[-1] if len(items) == limit else None
    return {"items": items, "next_cursor": encode_cursor([key(last) if key else last.id]) if last else None}


# --- party branches ---------------------------------------------------------------------------


@blp.route("/party-branches")
class Branches(MethodView):
    @blp.arguments(schemas.AreaArgsSchema, location="query")
    @blp.response(200, schemas.BranchListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List grid party branches (网格党支部) I may see, by area"""
        page = branches.list_branches(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            after_id=_after(args),
            limit=args["limit"],
        )
        return _page(page, args["limit"])

    @blp.arguments(schemas.BranchCreateSchema)
    @blp.response(201, schemas.BranchSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Found a grid's party branch (admins; supervisors inside their area)"""
        session = get_session()
        branch = branches.create_branch(session, actor=current_actor(), **data)
        session.commit()
        return branch


@blp.route("/party-branches/<int:branch_id>")
class BranchById(MethodView):
    @blp.response(200, schemas.BranchSchema)
    def get(self, branch_id: int) -> Any:
        """Get a party branch"""
        return branches.get_branch(get_session(), branch_id, current_actor())

    @blp.arguments(schemas.BranchUpdateSchema)
    @blp.response(200, schemas.BranchSchema)
    def patch(self, data: dict[str, Any], branch_id: int) -> Any:
        """Change a party branch's name, secretary or member count"""
        session = get_session()
        branch = branches.update_branch(session, branch_id, actor=current_actor(), **data)
        session.commit()
        return branch

    @blp.response(204)
    def delete(self, branch_id: int) -> None:
        """Delete a party branch that has no party groups"""
        session = get_session()
        branches.delete_branch(session, branch_id, actor=current_actor())
        session.commit()


# --- party groups -----------------------------------------------------------------------------


def _with_buildings(rows: list[Any]) -> list[Any]:
    ids = groups.building_ids_of(get_session(), [g.id for g in rows])
    for group in rows:
        group.building_ids = ids[group.id]
    return rows


@blp.route("/party-groups")
class Groups(MethodView):
    @blp.arguments(schemas.GroupQueryArgsSchema, location="query")
    @blp.response(200, schemas.GroupListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List party groups (党小组) I may see, by area, branch and kind"""
        page = groups.list_groups(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            branch_id=args.get("branch_id"),
            kind=args.get("kind"),
            after_id=_after(args),
            limit=args["limit"],
        )
        return _page(_with_buildings(page), args["limit"])

    @blp.arguments(schemas.GroupCreateSchema)
    @blp.response(201, schemas.GroupSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Set up a party group under a branch, for buildings of its grid or a cooperative"""
        session = get_session()
        group = groups.create_group(session, actor=current_actor(), **data)
        session.commit()
        return _with_buildings([group])[0]


@blp.route("/party-groups/<int:group_id>")
class GroupById(MethodView):
    @blp.response(200, schemas.GroupSchema)
    def get(self, group_id: int) -> Any:
        """Get a party group with the buildings it looks after"""
        return _with_buildings([groups.get_group(get_session(), group_id, current_actor())])[0]

    @blp.arguments(schemas.GroupUpdateSchema)
    @blp.response(200, schemas.GroupSchema)
    def patch(self, data: dict[str, Any], group_id: int) -> Any:
        """Change a party group; building_ids replaces the buildings it looks after"""
        session = get_session()
        group = groups.update_group(session, group_id, actor=current_actor(), **data)
        session.commit()
        return _with_buildings([group])[0]

    @blp.response(204)
    def delete(self, group_id: int) -> None:
        """Dissolve a party group (its buildings stay)"""
        session = get_session()
        groups.delete_group(session, group_id, actor=current_actor())
        session.commit()


# --- buildings --------------------------------------------------------------------------------


@blp.route("/buildings")
class Buildings(MethodView):
    @blp.arguments(schemas.BuildingQueryArgsSchema, location="query")
    @blp.response(200, schemas.BuildingListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List buildings (楼栋) I may see, by area and party group"""
        page = buildings.list_buildings(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            party_group_id=args.get("party_group_id"),
            after_id=_after(args),
            limit=args["limit"],
        )
        return _page(page, args["limit"])

    @blp.arguments(schemas.BuildingCreateSchema)
    @blp.response(201, schemas.BuildingSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Add a building (a point or a footprint); it joins the grid it lies in"""
        session, actor = get_session(), current_actor()
        geometry = transform_geometry(data["geometry"], data["crs"])
        building = buildings.create_building(
            session,
            schemas.building_input(data, geometry),
            actor=actor,
            nearest_min_m=settings().nearest_min_m,
        )
        session.commit()
        return building


def _import_report(created: int, rejected: list[imports.Rejection], total: int) -> dict[str, Any]:
    session = get_session()
    if rejected:
        session.rollback()
        raise ValidationFailed(
            f"{len(rejected)} of {total} features rejected; nothing was imported.",
            errors=[
                field_error(
                    f"features.{r.index}" + (f".{r.field}" if r.field else ""), r.reason, index=r.index
                )
                for r in rejected
            ],
        )
    session.commit()
    return {"created": created}


@blp.route("/buildings/import")
class BuildingImport(MethodView):
    @blp.arguments(schemas.FeatureCollectionImportSchema)
    @blp.response(201, schemas.ImportReportSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Import buildings from a GeoJSON FeatureCollection: all or nothing, each bad feature
        reported"""
        actor = current_actor()
        rows = schemas.read_features(data["features"], data["crs"], "building")
        created, rejected = imports.import_rows(
            get_session(), rows, actor=actor, nearest_min_m=settings().nearest_min_m
        )
        return _import_report(created, rejected, len(rows))


@blp.route("/buildings/<int:building_id>")
class BuildingById(MethodView):
    @blp.response(200, schemas.BuildingSchema)
    def get(self, building_id: int) -> Any:
        """Get a building"""
        return buildings.get_building(get_session(), building_id, current_actor())

    @blp.arguments(schemas.BuildingUpdateSchema)
    @blp.response(200, schemas.BuildingSchema)
    def patch(self, data: dict[str, Any], building_id: int) -> Any:
        """Change a building; a new geometry may move it to another grid"""
        session, actor = get_session(), current_actor()
        crs = data.pop("crs")
        changes = {**data, **schemas.contact_fields(data, "head")}
        changes.pop("head", None)
        if changes.get("geometry") is not None:
            changes["geometry"] = transform_geometry(changes["geometry"], crs)
        building = buildings.update_building(
            session, building_id, actor=actor, nearest_min_m=settings().nearest_min_m, **changes
        )
        session.commit()
        return building

    @blp.response(204)
    def delete(self, building_id: int) -> None:
        """Delete a building"""
        session = get_session()
        buildings.delete_building(session, building_id, actor=current_actor())
        session.commit()


# --- emergency units --------------------------------------------------------------------------


@blp.route("/emergency-units")
class Units(MethodView):
    @blp.arguments(schemas.UnitQueryArgsSchema, location="query")
    @blp.response(200, schemas.UnitListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List emergency units (最小应急单元) I may see, by area, kind and active flag"""
        page = units.list_units(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            kind=args.get("kind"),
            active=args.get("active"),
            after_id=_after(args),
            limit=args["limit"],
        )
        return _page(page, args["limit"])

    @blp.arguments(schemas.UnitCreateSchema)
    @blp.response(201, schemas.UnitSchema)
    def post(self, data: dict[str, Any]) -> Any:
        """Register an emergency unit; it joins the grid its point lies in"""
        session, actor = get_session(), current_actor()
        lon, lat = to_wgs84(data["location"].x, data["location"].y, data["crs"])
        unit = units.create_unit(
            session, schemas.unit_input(data, lon, lat), actor=actor, nearest_min_m=settings().nearest_min_m
        )
        session.commit()
        return unit


@blp.route("/emergency-units/import")
class UnitImport(MethodView):
    @blp.arguments(schemas.FeatureCollectionImportSchema)
    @blp.response(201, schemas.ImportReportSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Import emergency units from a GeoJSON FeatureCollection of points: all or nothing"""
        actor = current_actor()
        rows = schemas.read_features(data["features"], data["crs"], "unit")
        created, rejected = imports.import_rows(
            get_session(), rows, actor=actor, nearest_min_m=settings().nearest_min_m
        )
        return _import_report(created, rejected, len(rows))


@blp.route("/emergency-units/<int:unit_id>")
class UnitById(MethodView):
    @blp.response(200, schemas.UnitSchema)
    def get(self, unit_id: int) -> Any:
        """Get an emergency unit"""
        return units.get_unit(get_session(), unit_id, current_actor())

    @blp.arguments(schemas.UnitUpdateSchema)
    @blp.response(200, schemas.UnitSchema)
    def patch(self, data: dict[str, Any], unit_id: int) -> Any:
        """Change an emergency unit; active=false takes it off check-ins and calls"""
        session, actor = get_session(), current_actor()
        crs = data.pop("crs")
        changes = {**data, **schemas.contact_fields(data, "leader")}
        changes.pop("leader", None)
        if changes.get("location") is not None:
            changes["location"] = to_wgs84(changes["location"].x, changes["location"].y, crs)
        unit = units.update_unit(
            session, unit_id, actor=actor, nearest_min_m=settings().nearest_min_m, **changes
        )
        session.commit()
        return unit

    @blp.response(204)
    def delete(self, unit_id: int) -> None:
        """Delete a unit with no check-ins or calls on record (deactivate the others)"""
        session = get_session()
        units.delete_unit(session, unit_id, actor=current_actor())
        session.commit()


@blp.route("/emergency-units/<int:unit_id>/check-ins")
class CheckIns(MethodView):
    @blp.arguments(CursorArgsSchema, location="query")
    @blp.response(200, schemas.CheckInListSchema)
    def get(self, args: dict[str, Any], unit_id: int) -> dict[str, Any]:
        """List a unit's check-ins, latest day first"""
        key = decode_parsed_cursor(args.get("cursor"), (date.fromisoformat,))
        before = key[0] if key else None
        items = check_ins.list_check_ins(
            get_session(), unit_id, actor=current_actor(), before_day=before, limit=args["limit"]
        )
        return _page(items, args["limit"], key=lambda c: c.local_day.isoformat())

    @blp.arguments(schemas.CheckInCreateSchema, required=False)
    @blp.response(201, schemas.CheckInSchema, description="Checked in for today")
    @blp.alt_response(
        200,
        schema=schemas.CheckInSchema,
        description="Already checked in today (Asia/Shanghai): the first check-in",
    )
    def post(self, data: dict[str, Any], unit_id: int) -> tuple[Any, int, dict[str, str]]:
        """Check a unit in for today (报岗): once per local day; a repeat returns the first"""
        session = get_session()
        check_in, created = check_ins.check_in(
            session, unit_id, actor=current_actor(), members_on_duty=(data or {}).get("members_on_duty")
        )
        session.commit()
        location = url_for("org.CheckIns", unit_id=unit_id)
        return check_in, 201 if created else 200, {"Location": location}


# --- alerts -----------------------------------------------------------------------------------


@blp.route("/alerts")
class Alerts(MethodView):
    @blp.arguments(schemas.AlertQueryArgsSchema, location="query")
    @blp.response(200, schemas.AlertListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List alerts in my area or that called my units, newest first"""
        page = alerts.list_alerts(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            kind=args.get("kind"),
            before_id=_after(args),
            limit=args["limit"],
        )
        return _page(page, args["limit"], key=lambda a: a.alert.id)

    @blp.arguments(schemas.AlertCreateSchema)
    @blp.response(201, schemas.AlertSchema)
    def post(self, data: dict[str, Any]) -> tuple[Any, int, dict[str, str]]:
        """Raise an alert at a point (一点呼叫): the nearest active units within the radius are
        called, nearest first"""
        session = get_session()
        location = data.pop("location")
        view = alerts.create_alert(
            session,
            actor=current_actor(),
            lon=location.x,
            lat=location.y,
            nearest_min_m=settings().nearest_min_m,
            **data,
        )
        session.commit()
        return view, 201, {"Location": url_for("org.AlertById", alert_id=view.alert.id)}


@blp.route("/alerts/<int:alert_id>")
class AlertById(MethodView):
    @blp.response(200, schemas.AlertSchema)
    def get(self, alert_id: int) -> Any:
        """Get an alert: who was called, who responded and how fast"""
        return alerts.get_alert(get_session(), alert_id, current_actor())


def _respond(alert_id: int, unit_id: int, step: str) -> Any:
    session = get_session()
    dispatch = alerts.respond(session, alert_id, unit_id, actor=current_actor(), step=step)
    session.commit()
    return dispatch


@blp.route("/alerts/<int:alert_id>/dispatches/<int:unit_id>/acknowledge")
class Acknowledge(MethodView):
    @blp.response(200, schemas.DispatchSchema)
    def post(self, alert_id: int, unit_id: int) -> Any:
        """A called unit acknowledges (一线响应); the first time counts"""
        return _respond(alert_id, unit_id, "acknowledge")


@blp.route("/alerts/<int:alert_id>/dispatches/<int:unit_id>/arrive")
class Arrive(MethodView):
    @blp.response(200, schemas.DispatchSchema)
    def post(self, alert_id: int, unit_id: int) -> Any:
        """A called unit reports arrival at the scene (一片集结); it implies acknowledging"""
        return _respond(alert_id, unit_id, "arrive")


# --- profile ----------------------------------------------------------------------------------


@blp.route("/areas/<string:code>/profile")
class AreaProfile(MethodView):
    @blp.response(200, schemas.ProfileSchema)
    def get(self, code: str) -> dict[str, Any]:
        """What an area holds, summed over its subtree: grids, branches, groups, buildings,
        rental units, emergency units, workers"""
        return queries.profile(get_session(), code, actor=current_actor())
