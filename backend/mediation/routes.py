"""HTTP routes for mediation cases (调解案件)."""

from __future__ import annotations

from typing import Any

from flask import Response, url_for
from flask.views import MethodView

from backend.auth.context import current_actor
from backend.common.blueprint import Blueprint
from backend.common.pagination import decode_cursor, encode_cursor
from backend.config import settings
from backend.db import get_session
from backend.mediation import schemas, service
from backend.mediation.models import MediationCase

blp = Blueprint(
    "mediation",
    __name__,
    url_prefix="/api/v1/mediation",
    description="Dispute mediation (矛盾纠纷调解): cases, sessions and outcomes",
)


@blp.route("/cases")
class Cases(MethodView):
    @blp.arguments(schemas.CaseQueryArgsSchema, location="query")
    @blp.response(200, schemas.CaseListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List the mediation cases I may see, newest first"""
        after = decode_cursor(args.get("cursor"), (int,))
        limit = args["limit"]
        items = service.list_cases(
            get_session(),
            actor=current_actor(),
            area=args.get("area"),
            outcome=args.get("outcome"),
            open_only=args["open"],
            before=after[0] if after else None,
            limit=limit,
        )
        return {"items": items, "next_cursor": encode_cursor([items[-1].id]) if len(items) == limit else None}

    @blp.arguments(schemas.CaseCreateSchema)
    @blp.response(201, schemas.CaseSchema, headers={"Location": {"schema": {"type": "string"}}})
    @blp.problem(409, "Not a dispute, the event is closed or unassigned, or it has a case already")
    def post(self, data: dict[str, Any]) -> tuple[MediationCase, int, dict[str, str]]:
        """Open the mediation case of a dispute event (admins: of any event), at the centre holding it"""
        session = get_session()
        case = service.open_case(
            session,
            data["event_id"],
            actor=current_actor(),
            dispute_type=data["dispute_type"],
            mediators=data["mediators"],
            parties=data["parties"],
        )
        session.commit()
        return case, 201, {"Location": url_for("mediation.CaseById", case_id=case.id)}


@blp.route("/cases/<int:case_id>")
class CaseById(MethodView):
    @blp.response(200, schemas.CaseSchema)
    def get(self, case_id: int) -> MediationCase:
        """One mediation case I may see"""
        return service.get_case(get_session(), case_id, current_actor())


@blp.route("/cases/<int:case_id>/sessions")
class CaseSessions(MethodView):
    @blp.response(200, schemas.SessionSchema(many=True))
    def get(self, case_id: int) -> list[Any]:
        """The case's sessions, oldest first (notes only for admins and supervisors in scope)"""
        return service.list_sessions(get_session(), case_id, current_actor())[1]

    @blp.arguments(schemas.SessionCreateSchema)
    @blp.response(201, schemas.SessionSchema)
    @blp.problem(409, "The case has an outcome already")
    def post(self, data: dict[str, Any], case_id: int) -> Any:
        """Record a session of an open case"""
        session = get_session()
        sitting = service.add_session(session, case_id, actor=current_actor(), **data)
        session.commit()
        return sitting


DOCUMENT_RESPONSE = {
    "description": "The signed agreement",
    "content": {
        t: {"schema": {"type": "string", "format": "binary"}}
        for t in ("application/pdf", "image/jpeg", "image/png", "image/webp")
    },
}


@blp.route("/cases/<int:case_id>/agreement")
class CaseAgreement(MethodView):
    @blp.doc(responses={"200": DOCUMENT_RESPONSE})
    @blp.problem(404, "No case I may see, no document yet, or not mine to see (admins, supervisors in scope)")
    def get(self, case_id: int) -> Response:
        """The signed agreement document (personal data)"""
        data, media_type = service.open_agreement(
            get_session(), case_id, current_actor(), settings().media_dir
        )
        response = Response(data, mimetype=media_type)
        response.headers["Cache-Control"] = "private, no-store"
        return response

    @blp.arguments(schemas.DocumentUploadSchema, location="multipart")
    @blp.response(200, schemas.CaseSchema)
    @blp.problem(415, "Neither a PDF nor a JPEG, PNG or WebP image")
    @blp.problem(409, "The case has an outcome already")
    def put(self, form: dict[str, Any], case_id: int) -> MediationCase:
        """Upload the signed agreement (调解协议书) of an open case: PDF or image"""
        config = settings()
        data = form["file"].read(config.max_photo_bytes + 1)
        session = get_session()
        case = service.attach_agreement(
            session,
            case_id,
            data,
            actor=current_actor(),
            media_dir=config.media_dir,
            max_bytes=config.max_photo_bytes,
        )
        session.commit()
        return case


@blp.route("/cases/<int:case_id>/outcome")
class CaseOutcome(MethodView):
    @blp.arguments(schemas.OutcomeSchema)
    @blp.response(200, schemas.CaseSchema)
    @blp.problem(409, "The case ended already, or an agreement has no document yet")
    @blp.problem(412, "The version sent is not the case's")
    def post(self, data: dict[str, Any], case_id: int) -> MediationCase:
        """End a case: agreement (with its document and 司法确认), failed_referred (court,
        petition office or police, with their reference) or withdrawn; then its event may close"""
        session = get_session()
        case = service.set_outcome(session, case_id, service.Outcome(**data), actor=current_actor())
        session.commit()
        return case
