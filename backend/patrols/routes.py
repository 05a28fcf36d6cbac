"""HTTP routes for patrols (巡查): the phone's start, track batches and end; tracks for their
worker and supervisors; patrol norms and compliance rates."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

import flask
from flask.views import MethodView

from backend.auth.context import current_actor
from backend.common.blueprint import Blueprint
from backend.common.json_provider import json_bytes
from backend.common.pagination import decode_parsed_cursor, encode_cursor
from backend.config import settings
from backend.db import get_session
from backend.errors import ValidationFailed, field_error
from backend.load import expensive
from backend.patrols import queries, schemas, service
from backend.patrols.models import Patrol
from backend.replica import get_read_session
from backend.stats.schemas import CSV_SCHEMA

blp = Blueprint(
    "patrols",
    __name__,
    url_prefix="/api/v1",
    description="Patrols (巡查): workers walk the grid (人在网中走); tracks, coverage and patrol norms",
)

CSV = "text/csv"
GEOJSON = "application/geo+json"


def _page(patrols: list[Patrol], limit: int) -> dict[str, Any]:
    last = patrols[-1] if len(patrols) == limit else None
    cursor = encode_cursor([last.started_at.isoformat(), str(last.id)]) if last else None
    return {"items": patrols, "next_cursor": cursor}


def _list(args: dict[str, Any], **fixed: Any) -> dict[str, Any]:
    before = decode_parsed_cursor(args.get("cursor"), (datetime.fromisoformat, uuid.UUID))
    patrols = service.list_patrols(
        get_session(),
        current_actor(),
        worker=fixed.get("worker", args.get("worker")),
        area=args.get("area"),
        start=args.get("from_"),
        end=args.get("to"),
        before=tuple(before) if before else None,  # type: ignore[arg-type]
        limit=args["limit"],
    )
    return _page(patrols, args["limit"])


@blp.route("/patrols")
class Patrols(MethodView):
    @blp.arguments(schemas.PatrolQueryArgsSchema, location="query")
    @blp.response(200, schemas.PatrolListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the patrols whose tracks I may see (supervisors: their workers'), newest first"""
        return _list(args)

    @blp.arguments(schemas.PatrolStartSchema)
    @blp.response(201, schemas.PatrolSchema, description="The patrol was started")
    @blp.alt_response(200, schema=schemas.PatrolSchema, description="The same start was already stored")
    def post(self, data: dict[str, Any]) -> tuple[Patrol, int]:
        """Start a patrol under the phone's id"""
        session = get_session()
        patrol, created = service.start_patrol(
            session, current_actor(), patrol_id=data["id"], started_at=data.get("started_at")
        )
        session.commit()
        return patrol, 201 if created else 200


@blp.route("/me/patrols")
class MyPatrols(MethodView):
    @blp.arguments(schemas.PatrolQueryArgsSchema, location="query")
    @blp.response(200, schemas.PatrolListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """My own patrols, newest first"""
        return _list(args, worker=service.walker_id(current_actor()))


@blp.route("/patrols/<uuid:patrol_id>")
class PatrolById(MethodView):
    @blp.response(200, schemas.PatrolDetailSchema)
    def get(self, patrol_id: uuid.UUID) -> dict[str, Any]:
        """A patrol with its track (GeoJSON, personal) and the reports made during it"""
        session = get_session()
        patrol = service.get_patrol(session, current_actor(), patrol_id)
        return {
            **{name: getattr(patrol, name) for name in schemas.PatrolSchema().fields},
            "track": service.track_of(session, patrol),
            "event_ids": service.events_during(session, patrol),
        }


@blp.route("/patrols/<uuid:patrol_id>/points")
class PatrolPoints(MethodView):
    @blp.arguments(schemas.PointsSchema)
    @blp.response(201, schemas.PatrolBatchSchema, description="The batch was stored")
    @blp.alt_response(200, schema=schemas.PatrolBatchSchema, description="The same batch was already stored")
    @blp.problem(409, "Another batch was stored under this key")
    @blp.problem(422, "Bad points, each named by its index; nothing of the batch was stored")
    def post(self, data: dict[str, Any], patrol_id: uuid.UUID) -> tuple[Any, int]:
        """Send a batch of the track (idempotent on the batch key); any order, any crs"""
        session = get_session()
        result = service.add_batch(
            session,
            current_actor(),
            patrol_id,
            batch=data["batch"],
            crs=data["crs"],
            points=data["points"],
            max_points=settings().patrol_max_points,
        )
        session.commit()
        return result, 201 if result.created else 200


@blp.route("/patrols/<uuid:patrol_id>/end")
class PatrolEnd(MethodView):
    @blp.arguments(schemas.PatrolEndSchema)
    @blp.response(200, schemas.PatrolSchema)
    def post(self, data: dict[str, Any], patrol_id: uuid.UUID) -> Patrol:
        """End my patrol; ending it again changes nothing"""
        session = get_session()
        patrol = service.end_patrol(session, current_actor(), patrol_id, ended_at=data.get("ended_at"))
        session.commit()
        return patrol


# --- norms and compliance -------------------------------------------------------------------


@blp.route("/patrol-norms")
class Norms(MethodView):
    @blp.response(200, schemas.NormSchema(many=True))
    def get(self) -> Any:
        """The patrol norms per grid kind"""
        return queries.list_norms(get_session())


@blp.route("/patrol-norms/<string:grid_kind>")
class NormByKind(MethodView):
    @blp.arguments(schemas.NormSchema)
    @blp.response(200, schemas.NormSchema)
    def put(self, data: dict[str, Any], grid_kind: str) -> Any:
        """Set the patrol norm of a grid kind (admins): hours inside and coverage a working day"""
        session = get_session()
        norm = queries.set_norm(session, current_actor(), grid_kind=grid_kind, **data)
        session.commit()
        return norm


@blp.route("/work-calendar")
class WorkCalendar(MethodView):
    @blp.arguments(schemas.CalendarArgsSchema, location="query")
    @blp.response(200, schemas.CalendarDaySchema(many=True))
    def get(self, args: dict[str, Any]) -> Any:
        """The days that differ from Monday to Friday (holidays, weekend days worked) in a range;
        patrol compliance counts working days by it"""
        return queries.calendar(get_session(), start=args.get("from_"), end=args.get("to"))


def _day(day: str) -> date:
    try:
        return date.fromisoformat(day)
    except ValueError:
        raise ValidationFailed(
            "Not a day.", errors=[field_error("day", "A date as YYYY-MM-DD.", location="path")]
        ) from None


@blp.route("/work-calendar/<string:day>")
class WorkCalendarDay(MethodView):
    @blp.arguments(schemas.CalendarDaySchema)
    @blp.response(200, schemas.CalendarDaySchema)
    def put(self, data: dict[str, Any], day: str) -> Any:
        """Mark a day working or not (admins), e.g. from the State Council's holiday notice"""
        session = get_session()
        entry = queries.set_calendar_day(
            session, current_actor(), day=_day(day), working=data["working"], name=data.get("name")
        )
        session.commit()
        return entry

    @blp.response(204)
    def delete(self, day: str) -> None:
        """Give a day back to the week's rule (admins)"""
        session = get_session()
        queries.clear_calendar_day(session, current_actor(), day=_day(day))
        session.commit()


def _compliance(args: dict[str, Any]) -> dict[str, Any]:
    return queries.compliance(
        get_read_session(),
        actor=current_actor(),
        area=args.get("area"),
        start=args.get("from_"),
        end=args.get("to"),
        group_by=args["group_by"],
        benchmark=args["benchmark"],
    )


@blp.route("/stats/patrols")
@expensive
class Compliance(MethodView):
    @blp.arguments(schemas.ComplianceArgsSchema, location="query")
    @blp.response(200, schemas.ComplianceSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Compliance with the patrol norms (巡查达标率) on working days, with the Wilson 95%
        interval, by area, worker or time"""
        return _compliance(args)


@blp.route("/stats/patrols.csv")
@expensive
class ComplianceCsv(MethodView):
    @blp.arguments(schemas.ComplianceArgsSchema, location="query")
    @blp.response(200, CSV_SCHEMA, content_type=CSV, description="One row per group, for Excel")
    def get(self, args: dict[str, Any]) -> flask.Response:
        """Patrol compliance as CSV (UTF-8 with a BOM, bilingual header)"""
        figures = _compliance(args)
        response = flask.Response(queries.compliance_csv(figures), mimetype=CSV)
        response.headers["Content-Type"] = f"{CSV}; charset=utf-8; header=present"
        response.headers["Content-Disposition"] = 'attachment; filename="patrol_compliance.csv"'
        return response


@blp.route("/stats/patrols.geojson")
@expensive
class ComplianceGeoJson(MethodView):
    @blp.arguments(schemas.ComplianceArgsSchema, location="query")
    @blp.response(200, {"type": "object", "description": "A FeatureCollection"}, content_type=GEOJSON)
    def get(self, args: dict[str, Any]) -> flask.Response:
        """Patrol compliance as a choropleth: the areas of the first grouping's level"""
        figures = _compliance(args)
        features = queries.compliance_features(get_read_session(), current_actor(), figures, args["crs"])
        body = {"type": "FeatureCollection", "features": features, "benchmark": figures["benchmark"]}
        return flask.current_app.response_class(json_bytes(body), mimetype=GEOJSON)
