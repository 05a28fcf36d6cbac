"""Mediation cases: opened on a dispute event, recorded session by session, ended by an outcome.

The rules:
- a case is opened on an event in a dispute category (矛盾纠纷), or on any event by an admin (who
  thereby marks it a dispute), while the event is open; one case per event, placed where the
  event is and held by the centre (tier) that holds the event;
- admins and the supervisors whose scope covers the case run it;
- sessions and the agreement document are added while the case has no outcome;
- the outcome is set once: an agreement needs its document and whether it was judicially
  confirmed (司法确认), a referral names the receiving body (court, petition office, police) and
  its reference; a withdrawal needs neither;
- the event closes only once its case has an outcome (`blocks_closing`, asked by the lifecycle).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from backend.auth.service import Actor, Forbidden
from backend.errors import Conflict, NotFound, PreconditionFailed, ValidationFailed, field_error
from backend.events import photos
from backend.events.models import Event
from backend.events.service import get_event
from backend.mediation.models import MAX_MEDIATORS, MediationCase, MediationSession
from backend.org import service as org

DISPUTE_CATEGORY = "dispute"
CLOSED_EVENT = ("closed", "rejected")
PDF = "application/pdf"


def open_case(
    session: Session,
    event_id: uuid.UUID,
    *,
    actor: Actor,
    dispute_type: str,
    mediators: list[dict[str, Any]],
    parties: list[dict[str, Any]],
) -> MediationCase:
    """Open the mediation case of an event."""
    event = get_event(session, event_id, actor)
    if not actor.runs_mediation(event):
        raise Forbidden("Only admins and the supervisors in scope open mediation cases.")
    if event.category_code != DISPUTE_CATEGORY and not actor.is_admin:
        raise Conflict(
            "Only a dispute (category dispute) goes to mediation; an admin may mark another event.",
            errors=[field_error("event_id", "Not a dispute.")],
        )
    if event.status in CLOSED_EVENT:
        raise Conflict(f"The event is {event.status}; open cases on open events.")
    if event.grid_code is None:
        raise Conflict("The event sits in no grid yet; assign it before mediation.")
    if not 1 <= len(mediators) <= MAX_MEDIATORS:
        raise ValidationFailed(
            f"A case has one to {MAX_MEDIATORS} mediators.",
            errors=[field_error("mediators", f"One to {MAX_MEDIATORS}.")],
        )
    if session.scalar(select(MediationCase.id).where(MediationCase.event_id == event.id)) is not None:
        raise Conflict(
            "This event already has a mediation case.", errors=[field_error("event_id", "Has a case.")]
        )
    codes = event.area_codes()
    case = MediationCase(
        event_id=event.id,
        responsible_code=event.responsible_code or codes["district"],
        dispute_type=dispute_type,
        mediators=mediators,
        parties=parties,
        opened_by=actor.user_id,
        grid_code=codes["grid"],
        village_code=codes["village"],
        town_code=codes["town"],
        district_code=codes["district"],
    )
    session.add(case)
    session.flush()
    return case


def get_case(session: Session, case_id: int, actor: Actor) -> MediationCase:
    """A case the actor may read; any other is NotFound."""
    case = session.get(MediationCase, case_id)
    if case is None or not actor.covers(case):
        raise NotFound(f"No mediation case {case_id}.")
    return case


def _running(session: Session, case_id: int, actor: Actor) -> MediationCase:
    case = get_case(session, case_id, actor)
    if not actor.runs_mediation(case):
        raise Forbidden("Only admins and the supervisors in scope run mediation cases.")
    if case.outcome is not None:
        raise Conflict(f"The case ended ({case.outcome}); it takes no more changes.", outcome=case.outcome)
    return case


def list_cases(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    outcome: str | None = None,
    open_only: bool = False,
    before: int | None = None,
    limit: int = 100,
) -> list[MediationCase]:
    """Cases newest first, within the actor's scope."""
    query = (
        select(MediationCase).where(actor.reads(MediationCase)).order_by(MediationCase.id.desc()).limit(limit)
    )
    query = query.where(org.in_area(MediationCase, area))
    if outcome:
        query = query.where(MediationCase.outcome == outcome)
    if open_only:
        query = query.where(MediationCase.outcome.is_(None))
    if before is not None:
        query = query.where(MediationCase.id < before)
    return list(session.scalars(query))


def add_session(
    session: Session,
    case_id: int,
    *,
    actor: Actor,
    held_at: datetime,
    place: str | None = None,
    notes: str | None = None,
) -> MediationSession:
    case = _running(session, case_id, actor)
    sitting = MediationSession(
        case_id=case.id, held_at=held_at, place=place, notes=notes, recorded_by=actor.user_id
    )
    session.add(sitting)
    session.flush()
    return sitting


def list_sessions(
    session: Session, case_id: int, actor: Actor
) -> tuple[MediationCase, list[MediationSession]]:
    case = get_case(session, case_id, actor)
    rows = session.scalars(
        select(MediationSession).where(MediationSession.case_id == case.id).order_by(MediationSession.held_at)
    )
    return case, list(rows)


def check_document(data: bytes) -> tuple[str, str]:
    """A PDF (its header and its end-of-file marker) or a complete JPEG, PNG or WebP image:
    (sha256, media type)."""
    if data.startswith(b"%PDF-"):
        if b"%%EOF" not in data[-1024:]:
            raise ValidationFailed(
                "The PDF is cut short (no %%EOF at its end).",
                errors=[field_error("file", "Incomplete PDF.", location="files")],
            )
        return hashlib.sha256(data).hexdigest(), PDF
    checked = photos.check_image(data)
    return checked.sha256, checked.media_type


def attach_agreement(
    session: Session, case_id: int, data: bytes, *, actor: Actor, media_dir: Path, max_bytes: int
) -> MediationCase:
    """Keep the signed agreement (调解协议书) of a case still open; a new one replaces it."""
    case = _running(session, case_id, actor)
    if len(data) > max_bytes:
        raise ValidationFailed(
            f"Documents are at most {max_bytes} bytes.",
            errors=[field_error("file", "Too large.", location="files")],
        )
    sha256, media_type = check_document(data)
    photos.store_file(session, media_dir, sha256, data)
    case.agreement_sha256, case.agreement_media_type, case.agreement_size = sha256, media_type, len(data)
    case.version += 1
    session.flush()
    return case


def open_agreement(session: Session, case_id: int, actor: Actor, media_dir: Path) -> tuple[bytes, str]:
    """The agreement's bytes, for those who see the case's people."""
    case = get_case(session, case_id, actor)
    if not actor.sees_personal(case) or case.agreement_sha256 is None:
        raise NotFound("No agreement document of this case for you.")
    return photos.read_file(media_dir, case.agreement_sha256), case.agreement_media_type or PDF


@dataclass(frozen=True)
class Outcome:
    outcome: str
    version: int
    note: str | None = None
    judicially_confirmed: bool | None = None
    referred_to: str | None = None
    referral_reference: str | None = None


def _required(name: str, why: str) -> ValidationFailed:
    return ValidationFailed(f"{name} is required {why}.", errors=[field_error(name, f"Required {why}.")])


def set_outcome(session: Session, case_id: int, data: Outcome, *, actor: Actor) -> MediationCase:
    """End a case: agreement, failed and referred, or withdrawn. Once."""
    case = _running(session, case_id, actor)
    if case.version != data.version:
        raise PreconditionFailed(
            f"The case is at version {case.version}, not {data.version}; reload it and retry.",
            current_version=case.version,
        )
    values: dict[str, Any] = {}
    if data.outcome == "agreement":
        if case.agreement_sha256 is None:
            raise Conflict(
                "Upload the signed agreement first (PUT .../agreement).",
                errors=[field_error("outcome", "No agreement document yet.")],
            )
        if data.judicially_confirmed is None:
            raise _required("judicially_confirmed", "with an agreement")
        values["judicially_confirmed"] = data.judicially_confirmed
    elif data.judicially_confirmed is not None:
        raise ValidationFailed(
            "Only an agreement is judicially confirmed.",
            errors=[field_error("judicially_confirmed", "Only with outcome agreement.")],
        )
    if data.outcome == "failed_referred":
        if data.referred_to is None:
            raise _required("referred_to", "with a referral")
        if not data.referral_reference:
            raise _required("referral_reference", "with a referral")
        values |= {"referred_to": data.referred_to, "referral_reference": data.referral_reference}
    elif data.referred_to is not None or data.referral_reference is not None:
        raise ValidationFailed(
            "Only a failed mediation is referred.",
            errors=[field_error("referred_to", "Only with outcome failed_referred.")],
        )
    now = session.execute(select(func.now())).scalar_one()
    done = session.execute(
        update(MediationCase)
        .where(
            MediationCase.id == case.id,
            MediationCase.version == data.version,
            MediationCase.outcome.is_(None),
        )
        .values(
            outcome=data.outcome,
            outcome_at=now,
            outcome_by=actor.user_id,
            outcome_note=data.note,
            version=MediationCase.version + 1,
            **values,
        )
        .returning(MediationCase.id)
    ).first()
    if done is None:
        raise PreconditionFailed("The case changed meanwhile; reload it and retry.")
    session.expire(case)
    return get_case(session, case.id, actor)


def blocks_closing(session: Session, event: Event) -> bool:
    """The event has a mediation case without an outcome: it may not close yet."""
    return (
        session.scalar(
            select(MediationCase.id).where(
                MediationCase.event_id == event.id, MediationCase.outcome.is_(None)
            )
        )
        is not None
    )
