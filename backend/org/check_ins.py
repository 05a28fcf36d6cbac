"""Emergency units reporting on duty (报岗): at most once per unit and local day."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Date, DateTime, cast, func, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from backend.auth.service import Actor, Forbidden
from backend.errors import Conflict
from backend.org.models import CheckIn
from backend.org.units import get_unit
from backend.stats import LOCAL_TZ


def check_in(
    session: Session,
    unit_id: int,
    *,
    actor: Actor,
    at: datetime | None = None,
    members_on_duty: int | None = None,
) -> tuple[CheckIn, bool]:
    """Record a unit's check-in (报岗) for its local day (Asia/Shanghai), once.

    Returns the check-in and whether it was made now; a repeat the same local day returns the
    first one. `at` (default: the database clock) decides the day. Races are settled by the
    unique (unit, day) constraint, not by a prior read.
    """
    unit = get_unit(session, unit_id, actor)
    if actor.read_only:
        raise Forbidden("API keys are read-only.")
    if not unit.active:
        raise Conflict(f"Emergency unit {unit_id} is inactive and does not check in.")
    moment: Any = literal(at, DateTime(timezone=True)) if at is not None else func.now()
    day = cast(func.timezone(LOCAL_TZ, moment), Date)
    statement = (
        pg_insert(CheckIn)
        .values(
            unit_id=unit.id,
            local_day=day,
            checked_in_at=moment,
            user_id=actor.user_id,
            members_on_duty=members_on_duty,
        )
        .on_conflict_do_nothing(index_elements=[CheckIn.unit_id, CheckIn.local_day])
        .returning(CheckIn)
    )
    made = session.scalars(statement, execution_options={"populate_existing": True}).first()
    if made is not None:
        return made, True
    existing = session.scalars(
        select(CheckIn).where(CheckIn.unit_id == unit.id, CheckIn.local_day == select(day).scalar_subquery())
    ).one()
    return existing, False


def list_check_ins(
    session: Session, unit_id: int, *, actor: Actor, before_day: Any = None, limit: int = 100
) -> list[CheckIn]:
    """A unit's check-ins, latest day first."""
    unit = get_unit(session, unit_id, actor)
    query = select(CheckIn).where(CheckIn.unit_id == unit.id).order_by(CheckIn.local_day.desc()).limit(limit)
    if before_day is not None:
        query = query.where(CheckIn.local_day < before_day)
    return list(session.scalars(query))
