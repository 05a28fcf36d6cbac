"""HTTP routes for closure statistics (JSON, CSV, GeoJSON), assessments (frozen months), the
overdue list, check-in rates, alert responses and mediation success rates (JSON, CSV, GeoJSON)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any, cast

import flask
from flask import url_for
from flask.views import MethodView

from backend.auth.context import current_actor
from backend.common.blueprint import Blueprint
from backend.common.json_provider import json_bytes
from backend.common.pagination import decode_cursor, decode_parsed_cursor, encode_cursor
from backend.db import get_session
from backend.load import expensive
from backend.replica import get_read_session
from backend.stats import assessments, check_ins, composite, export, mediation, queries, responses, schemas

blp = Blueprint(
    "stats",
    __name__,
    url_prefix="/api/v1/stats",
    description="Statistics: closure rates against the 98% benchmark (结案率), months frozen as "
    "assessments (考核), overdue events, check-in rates of emergency units (报岗率) and how fast "
    "they answer calls, and mediation success rates (调解成功率)",
)

JSON = "application/json"
CSV = "text/csv"
GEOJSON = "application/geo+json"
CSV_HEADERS = {
    "Content-Disposition": {
        "description": "attachment; filename=closure_<area>_<grouping>_<from>_<to>.csv",
        "schema": {"type": "string"},
    }
}


def _stats(args: dict[str, Any]) -> queries.ClosureStats:
    queries.check_reader(current_actor(), args["area"], args["group_by"])
    stats = queries.closure_stats(
        get_read_session(),
        area=args["area"],
        window_from=args["from_"],
        window_to=args["to"],
        as_of=args["as_of"],
        group_by=args["group_by"],
        benchmark=args["benchmark"],
        exact=args["exact"],
    )
    if args["index"]:
        stats = composite.with_index(get_session(), current_actor(), stats)
    return export.sorted_groups(stats, args["sort"]) if "sort" in args else stats


def _document(stats: queries.ClosureStats) -> dict[str, Any]:
    """The JSON body, as ClosureStatsSchema would dump it (a test holds them equal)."""
    return {
        "area": stats.area,
        "from": stats.window_from.isoformat(),
        "to": stats.window_to.isoformat(),
        "as_of": stats.as_of.isoformat(),
        "benchmark": stats.benchmark,
        "group_by": list(stats.group_by),
        "exact": stats.exact,
        "totals": {**vars(stats.totals), **stats.totals_extra},
        "groups": [{"key": g.key, **vars(g.figures), **g.extra} for g in stats.groups],
    }


def _json_response(body: dict[str, Any], mimetype: str) -> flask.Response:
    # Built here rather than dumped through the response schema: marshmallow takes longer to
    # dump a few thousand groups than the database takes to count them.
    return flask.current_app.response_class(json_bytes(body), mimetype=mimetype)


def _csv_response(args: dict[str, Any]) -> flask.Response:
    stats = _stats(args)
    response = flask.Response(export.closure_csv(stats), mimetype=CSV)
    response.headers["Content-Type"] = f"{CSV}; charset=utf-8; header=present"
    response.headers["Content-Disposition"] = f'attachment; filename="{export.csv_filename(stats)}"'
    return response


def _geojson_response(args: dict[str, Any]) -> flask.Response:
    level = queries.require_area_level_first(args["group_by"])
    stats = _stats(args)
    shapes = queries.area_shapes(
        get_read_session(), level=level, area=stats.area, geojson=args["crs"] == "wgs84"
    )
    document = {
        "type": "FeatureCollection",
        "features": export.closure_features(stats, shapes, args["crs"]),
        **_document(stats),
    }
    del document["groups"]
    return _json_response(document, GEOJSON)


@blp.route("/closure")
@expensive
class Closure(MethodView):
    @blp.arguments(schemas.ClosureArgsSchema, location="query")
    @blp.response(
        200,
        schemas.ClosureStatsSchema,
        description="The figures as JSON, CSV or GeoJSON, as the Accept header asks",
    )
    @blp.alt_response(200, schema=schemas.CSV_SCHEMA, content_type=CSV, headers=CSV_HEADERS, success=True)
    @blp.alt_response(200, schema=schemas.ClosureFeatureCollectionSchema, content_type=GEOJSON, success=True)
    def get(self, args: dict[str, Any]) -> Any:
        """Closure statistics of an area's subtree over a window, in total and by group

        `Accept: text/csv` gives the CSV of `/stats/closure.csv`, `Accept:
        application/geo+json` the GeoJSON of `/stats/closure.geojson`.
        """
        wanted = flask.request.accept_mimetypes.best_match([JSON, CSV, GEOJSON], default=JSON)
        if wanted == CSV:
            return _csv_response(args)
        if wanted == GEOJSON:
            return _geojson_response(args)
        return _json_response(_document(_stats(args)), JSON)


@blp.route("/closure.csv")
@expensive
class ClosureCsv(MethodView):
    @blp.arguments(schemas.ClosureArgsSchema, location="query")
    @blp.response(
        200,
        schemas.CSV_SCHEMA,
        content_type=CSV,
        headers=CSV_HEADERS,
        description="One row per group, for Excel",
    )
    def get(self, args: dict[str, Any]) -> flask.Response:
        """Closure statistics as CSV (UTF-8 with a BOM, bilingual header)"""
        return _csv_response(args)


@blp.route("/closure.geojson")
@expensive
class ClosureGeoJson(MethodView):
    @blp.arguments(schemas.ClosureArgsSchema, location="query")
    @blp.response(
        200,
        schemas.ClosureFeatureCollectionSchema,
        content_type=GEOJSON,
        description="The areas of the first grouping's level with their figures",
    )
    def get(self, args: dict[str, Any]) -> flask.Response:
        """Closure statistics as a choropleth: area polygons with their figures

        The first `group_by` must be an area level (district, town, village or grid). Every
        current area of that level in scope is a feature, those without due events too.
        """
        return _geojson_response(args)


ASSESSMENT_CSV_HEADERS = {
    "Content-Disposition": {
        "description": "attachment; filename=assessment_<area>_<month>_<grouping>.csv",
        "schema": {"type": "string"},
    }
}


def _assessment_document(summary: assessments.Summary, stats: queries.ClosureStats) -> dict[str, Any]:
    """The JSON body: the assessment (through its scoped schema: who froze it is personal) and
    its frozen figures as the closure statistics' JSON gives them."""
    return {**schemas.AssessmentSummarySchema().dump(summary), **_document(stats)}


@blp.route("/assessments")
class Assessments(MethodView):
    @blp.arguments(schemas.AssessmentListArgsSchema, location="query")
    @blp.response(200, schemas.AssessmentListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the assessments you may read, newest first"""
        after = decode_cursor(args.get("cursor"), (int,))
        limit = args["limit"]
        items = assessments.list_assessments(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            month=args.get("month"),
            before=after[0] if after else None,
            limit=limit,
        )
        next_cursor = encode_cursor([items[-1].id]) if len(items) == limit else None
        return {"items": items, "next_cursor": next_cursor}

    @blp.arguments(schemas.AssessmentCreateSchema)
    @blp.response(201, schemas.AssessmentSchema, headers={"Location": {"schema": {"type": "string"}}})
    def post(self, data: dict[str, Any]) -> Any:
        """Freeze an area's month as an assessment (考核): its closure figures as they stood at
        the month's end

        Counts the events due in the local month (Beijing time) in the area's subtree, as of the
        month's end, in total and by every level below the area down to the grids, and keeps
        them: later changes to the events never alter them. Admins, and supervisors for areas in
        their scope; a month once, after it has ended (409 for a second time).
        """
        session = get_session()
        assessment = assessments.freeze(
            session,
            actor=current_actor(),
            area=data["area"],
            month=data["month"],
            benchmark=data["benchmark"],
        )
        body = _assessment_body(assessment, {})
        session.commit()
        location = url_for("stats.AssessmentById", assessment_id=assessment.id)
        return _json_response(body, JSON), 201, {"Location": location}


def _assessment_body(assessment: assessments.Assessment, args: dict[str, Any]) -> dict[str, Any]:
    return _assessment_document(*_frozen_figures(assessment, args))


def _frozen_figures(
    assessment: assessments.Assessment, args: dict[str, Any]
) -> tuple[assessments.Summary, queries.ClosureStats]:
    session = get_session()
    level = args.get("group_by") or ("grid" if assessments.levels_below(assessment.area_code) else None)
    return assessments.summary(session, assessment), assessments.frozen_stats(session, assessment, level)


def _readable(assessment_id: int) -> assessments.Assessment:
    return assessments.get_assessment(get_session(), assessment_id, current_actor())


@blp.route("/assessments/<int:assessment_id>")
class AssessmentById(MethodView):
    @blp.arguments(schemas.AssessmentArgsSchema, location="query")
    @blp.response(200, schemas.AssessmentSchema)
    def get(self, args: dict[str, Any], assessment_id: int) -> flask.Response:
        """An assessment's frozen figures, in total and by one level below its area

        The shape of the closure statistics' JSON for the assessment's window and as_of, which
        give the same figures as long as the trail says what it said then.
        """
        return _json_response(_assessment_body(_readable(assessment_id), args), JSON)


@blp.route("/assessments/<int:assessment_id>.csv")
class AssessmentCsv(MethodView):
    @blp.arguments(schemas.AssessmentArgsSchema, location="query")
    @blp.response(
        200,
        schemas.CSV_SCHEMA,
        content_type=CSV,
        headers=ASSESSMENT_CSV_HEADERS,
        description="One row per area of the level, for Excel",
    )
    def get(self, args: dict[str, Any], assessment_id: int) -> flask.Response:
        """An assessment's frozen figures as CSV (UTF-8 with a BOM, bilingual header), as
        /stats/closure.csv gives figures"""
        summary, stats = _frozen_figures(_readable(assessment_id), args)
        response = flask.Response(export.closure_csv(stats), mimetype=CSV)
        response.headers["Content-Type"] = f"{CSV}; charset=utf-8; header=present"
        grouping = "-".join(stats.group_by) or "total"
        filename = f"assessment_{summary.area}_{summary.month}_{grouping}.csv"
        response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
        return response


@blp.route("/index-weights")
class IndexWeights(MethodView):
    @blp.response(200, schemas.IndexWeightsSchema)
    def get(self) -> dict[str, float]:
        """The composite index's (综合指数) weights by part"""
        return composite.weights(get_session())

    @blp.arguments(schemas.IndexWeightsSchema)
    @blp.response(200, schemas.IndexWeightsSchema)
    def put(self, data: dict[str, float]) -> dict[str, float]:
        """Set the composite index's weights (admins); the index weighs the parts in proportion"""
        session = get_session()
        weights = composite.set_weights(session, current_actor(), data)
        session.commit()
        return weights


@blp.route("/overdue")
class Overdue(MethodView):
    @blp.arguments(schemas.OverdueArgsSchema, location="query")
    @blp.response(200, schemas.OverdueListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List open events past their due time in an area's subtree, oldest due first"""
        setattr(flask.g, schemas.OUTPUT_CRS, args["crs"])
        session = get_read_session()
        queries.check_reader(current_actor(), args["area"])
        queries.check_area(session, args["area"])
        after = decode_parsed_cursor(args.get("cursor"), (datetime.fromisoformat, uuid.UUID))
        limit = args["limit"]
        events = queries.overdue_events(
            session, area=args["area"], as_of=datetime.now(UTC), after=after, limit=limit
        )
        next_cursor = None
        if len(events) == limit:
            last = events[-1]
            # Overdue events all have a due time.
            next_cursor = encode_cursor([cast(datetime, last.due_at).isoformat(), str(last.id)])
        return {"items": events, "next_cursor": next_cursor}


@blp.route("/check-ins")
@expensive
class CheckInStats(MethodView):
    @blp.arguments(schemas.CheckInStatsArgsSchema, location="query")
    @blp.response(200, schemas.CheckInStatsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """Check-in rates (报岗率) per local day and area against the 98% benchmark, with the
        Wilson 95% interval"""
        return check_ins.check_in_stats(
            get_read_session(),
            actor=current_actor(),
            area=args.get("area"),
            start=args.get("from_"),
            end=args.get("to"),
            group_by=args["group_by"],
            benchmark=args["benchmark"],
        )


@blp.route("/alert-responses")
@expensive
class ResponseStats(MethodView):
    @blp.arguments(schemas.DaysArgsSchema, location="query")
    @blp.response(200, schemas.ResponseStatsSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """How fast called units acknowledge and arrive, by the unit's area or by day, week or
        month"""
        return responses.response_stats(
            get_read_session(),
            actor=current_actor(),
            area=args.get("area"),
            start=args.get("from_"),
            end=args.get("to"),
            group_by=args["group_by"],
        )


def _mediation(args: dict[str, Any]) -> mediation.MediationStats:
    mediation.check_reader(current_actor(), args["area"], args["group_by"])
    return mediation.mediation_stats(
        get_read_session(),
        area=args["area"],
        window_from=args["from_"],
        window_to=args["to"],
        group_by=args["group_by"],
        benchmark=args["benchmark"],
    )


def _mediation_document(stats: mediation.MediationStats) -> dict[str, Any]:
    return {
        "area": stats.area,
        "from": stats.window_from.isoformat(),
        "to": stats.window_to.isoformat(),
        "benchmark": stats.benchmark,
        "group_by": list(stats.group_by),
        "totals": dict(vars(stats.totals)),
        "groups": [{"key": key, **vars(figures)} for key, figures in stats.groups],
    }


def _mediation_csv(args: dict[str, Any]) -> flask.Response:
    stats = _mediation(args)
    rows = (
        [(key, vars(figures)) for key, figures in stats.groups]
        if stats.group_by
        else [({}, vars(stats.totals))]
    )
    response = flask.Response(
        export.figures_csv(stats.group_by, export.MEDIATION_HEADERS, rows), mimetype=CSV
    )
    response.headers["Content-Type"] = f"{CSV}; charset=utf-8; header=present"
    grouping = "-".join(stats.group_by) or "total"
    filename = f"mediation_{stats.area}_{grouping}_{stats.window_from.date()}_{stats.window_to.date()}.csv"
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _mediation_geojson(args: dict[str, Any]) -> flask.Response:
    level = queries.require_area_level_first(args["group_by"])
    stats = _mediation(args)
    shapes = queries.area_shapes(get_read_session(), level=level, area=stats.area)
    blank = vars(mediation.mediation_figures(mediation.EMPTY_COUNTS, stats.benchmark))
    groups = [(key, vars(figures)) for key, figures in stats.groups]
    document = _mediation_document(stats)
    del document["groups"]
    features = export.area_features(stats.group_by, groups, shapes, blank, args["crs"])
    return _json_response({"type": "FeatureCollection", "features": features, **document}, GEOJSON)


@blp.route("/mediation")
@expensive
class Mediation(MethodView):
    @blp.arguments(schemas.MediationArgsSchema, location="query")
    @blp.response(200, schemas.MediationStatsSchema, description="JSON, CSV or GeoJSON, as Accept asks")
    @blp.alt_response(200, schema=schemas.CSV_SCHEMA, content_type=CSV, success=True)
    @blp.alt_response(
        200, schema=schemas.MediationFeatureCollectionSchema, content_type=GEOJSON, success=True
    )
    def get(self, args: dict[str, Any]) -> Any:
        """Mediation success rate (调解成功率) of an area's subtree against the 98% benchmark, with
        the Wilson interval, time to outcome and referrals by body; in total and by group"""
        wanted = flask.request.accept_mimetypes.best_match([JSON, CSV, GEOJSON], default=JSON)
        if wanted == CSV:
            return _mediation_csv(args)
        if wanted == GEOJSON:
            return _mediation_geojson(args)
        return _json_response(_mediation_document(_mediation(args)), JSON)


@blp.route("/mediation.csv")
@expensive
class MediationCsv(MethodView):
    @blp.arguments(schemas.MediationArgsSchema, location="query")
    @blp.response(200, schemas.CSV_SCHEMA, content_type=CSV, description="One row per group, for Excel")
    def get(self, args: dict[str, Any]) -> flask.Response:
        """Mediation statistics as CSV (UTF-8 with a BOM, bilingual header)"""
        return _mediation_csv(args)


@blp.route("/mediation.geojson")
@expensive
class MediationGeoJson(MethodView):
    @blp.arguments(schemas.MediationArgsSchema, location="query")
    @blp.response(200, schemas.MediationFeatureCollectionSchema, content_type=GEOJSON)
    def get(self, args: dict[str, Any]) -> flask.Response:
        """Mediation statistics as a choropleth: the first `group_by` must be an area level"""
        return _mediation_geojson(args)
