"""Mediation cases (调解案件), their sessions, and how they ended."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.areas.models import InArea
from backend.db import Base

# 调解成功 (with the signed agreement), 调解不成 and referred on (诉调 / 访调 / 警调对接), 撤回.
OUTCOMES = ("agreement", "failed_referred", "withdrawn")
REFERRAL_BODIES = ("court", "petition_office", "police")
# The three-person team (三人调解小组): e.g. a village cadre, a legal adviser, a respected resident.
MEDIATOR_ROLES = ("village_cadre", "legal_adviser", "respected_resident", "lawyer", "police_officer", "other")
MAX_MEDIATORS = 3
DISPUTE_TYPES = ("neighbour", "family", "land", "labour", "property", "contract", "damages", "other")
DISPUTE_TYPE_NAMES = {
    "neighbour": "邻里纠纷",
    "family": "婚姻家庭纠纷",
    "land": "土地山林纠纷",
    "labour": "劳资纠纷",
    "property": "物业纠纷",
    "contract": "合同纠纷",
    "damages": "损害赔偿纠纷",
    "other": "其他纠纷",
}
BODY_NAMES = {"court": "法院", "petition_office": "信访部门", "police": "公安机关"}


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


class MediationCase(InArea, Base):
    """A dispute taken to mediation at the centre (tier) that holds its event."""

    __tablename__ = "mediation_cases"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    event_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("event_ids.id"), unique=True)
    # The centre that mediates: the tier holding the event when the case was opened.
    responsible_code: Mapped[str] = mapped_column(String(15))
    dispute_type: Mapped[str] = mapped_column(String(20))
    # Up to three: {"role": ..., "name": ..., "user_id": ...}; names are personal data.
    mediators: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    # The parties: {"name": ..., "phone": ..., "side": ...}; personal data.
    parties: Mapped[list[dict[str, Any]]] = mapped_column(JSONB)
    opened_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    opened_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    outcome: Mapped[str | None] = mapped_column(String(16))
    outcome_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    outcome_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    outcome_note: Mapped[str | None] = mapped_column(Text)
    # 司法确认: the agreement was confirmed by a court.
    judicially_confirmed: Mapped[bool | None] = mapped_column(Boolean)
    # The signed agreement (PDF or image), in the content-addressed media store.
    agreement_sha256: Mapped[str | None] = mapped_column(String(64))
    agreement_media_type: Mapped[str | None] = mapped_column(String(20))
    agreement_size: Mapped[int | None] = mapped_column(Integer)
    referred_to: Mapped[str | None] = mapped_column(String(16))
    # The receiving body's reference (案号, 信访件号, 警情号).
    referral_reference: Mapped[str | None] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer, server_default="1")

    __table_args__ = (
        CheckConstraint(_one_of("outcome", OUTCOMES), name="outcome"),
        CheckConstraint(_one_of("referred_to", REFERRAL_BODIES), name="referred_to"),
        CheckConstraint(_one_of("dispute_type", DISPUTE_TYPES), name="dispute_type"),
        CheckConstraint(
            f"jsonb_array_length(mediators) BETWEEN 1 AND {MAX_MEDIATORS}", name="mediator_count"
        ),
        Index("ix_mediation_cases_district_opened", "district_code", "opened_at"),
        Index("ix_mediation_cases_town_opened", "town_code", "opened_at"),
        CheckConstraint("(outcome IS NULL) = (outcome_at IS NULL)", name="outcome_dated"),
        CheckConstraint(
            "outcome IS DISTINCT FROM 'agreement'"
            " OR (agreement_sha256 IS NOT NULL AND judicially_confirmed IS NOT NULL)",
            name="agreement_documented",
        ),
        CheckConstraint(
            "(outcome = 'failed_referred') = (referred_to IS NOT NULL AND referral_reference IS NOT NULL)"
            " OR (outcome IS NULL AND referred_to IS NULL)",
            name="referral_named",
        ),
    )


class MediationSession(Base):
    """One sitting of a case's mediators with the parties; placed where its case is."""

    __tablename__ = "mediation_sessions"
    REACHED_THROUGH: ClassVar[tuple[str, ...]] = ()

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("mediation_cases.id"), index=True)
    held_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    place: Mapped[str | None] = mapped_column(String(200))
    notes: Mapped[str | None] = mapped_column(Text)
    recorded_by: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    case: Mapped[MediationCase] = relationship(lazy="joined")

    def area_codes(self) -> dict[str, str | None]:
        return self.case.area_codes()
