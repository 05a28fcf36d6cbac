"""Buildings and emergency units from a GeoJSON FeatureCollection: every bad row reported, all or
nothing."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from backend.auth.service import Actor
from backend.errors import DomainError
from backend.org.buildings import BuildingInput, create_building
from backend.org.service import require_write
from backend.org.units import UnitInput, create_unit


@dataclass(frozen=True)
class Rejection:
    index: int
    reason: str
    field: str = ""


def import_rows(
    session: Session,
    rows: Sequence[BuildingInput | UnitInput | Rejection],
    *,
    actor: Actor,
    nearest_min_m: float = 50.0,
) -> tuple[int, list[Rejection]]:
    """Create buildings or units one savepoint each, so every bad row is reported; the caller
    commits only when nothing was rejected. Rows the edge already refused come as Rejections."""
    require_write(actor)
    created = 0
    rejected: list[Rejection] = []
    for index, row in enumerate(rows):
        if isinstance(row, Rejection):
            rejected.append(row)
            continue
        try:
            with session.begin_nested():
                if isinstance(row, BuildingInput):
                    create_building(session, row, actor=actor, nearest_min_m=nearest_min_m)
                else:
                    create_unit(session, row, actor=actor, nearest_min_m=nearest_min_m)
            created += 1
        except DomainError as error:
            fields = [e.get("field", "") for e in error.errors or []]
            rejected.append(Rejection(index, error.detail, fields[0] if fields else ""))
    return created, rejected
