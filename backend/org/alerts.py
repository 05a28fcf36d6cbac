"""One-point calls (一点呼叫): an incident at a point calls the nearest active units, which
acknowledge (一线响应) and arrive (一片集结)."""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, DateTime, func, literal, or_, select, text, update
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.areas.models import InArea
from backend.auth.service import Actor, Forbidden
from backend.errors import NotFound, ValidationFailed, field_error
from backend.org.models import Alert, AlertDispatch, EmergencyUnit, contact
from backend.org.service import in_area, point_wkb, require_write
from geo.crs import to_wgs84

UNIT_SUMMARY = (
    "id",
    "name",
    "kind",
    "members",
    "leader_name",
    "leader_phone",
    "grid_code",
    "village_code",
    "town_code",
    "district_code",
)

# The KNN order (`<->` on the partial GiST index over active units' geography) finds candidates
# nearest first on the sphere; the exact spheroid distance then decides the order and the radius.
# A few spare candidates cover the sphere/spheroid difference (under 0.5%).
NEAREST_ACTIVE_UNITS = text(
    f"SELECT {', '.join(UNIT_SUMMARY)}, distance FROM ("
    f"  SELECT {', '.join('u.' + c for c in UNIT_SUMMARY)},"
    "          ST_Distance(u.location, p.pt) AS distance"
    "  FROM emergency_units u,"
    "       (SELECT ST_SetSRID(ST_MakePoint(:lon, :lat), 4326)::geography AS pt) p"
    "  WHERE u.active AND ST_DWithin(u.location, p.pt, :radius)"
    "  ORDER BY u.location <-> p.pt"
    "  LIMIT :candidates"
    ") c WHERE distance <= :radius ORDER BY distance, id LIMIT :count"
)
SPARE_CANDIDATES = 16

# The alert and all its dispatches in one statement (one round trip).
RECORD_ALERT = text(
    "WITH alert AS ("
    "  INSERT INTO alerts (kind, description, location, crs, source_lon, source_lat, grid_code,"
    "    village_code, town_code, district_code, requested_radius_m, radius_m, requested, found,"
    "    widened, created_by)"
    "  VALUES (:kind, :description, ST_SetSRID(ST_MakePoint(:lon, :lat), 4326), :crs,"
    "    :source_lon, :source_lat, :grid_code, :village_code, :town_code, :district_code,"
    "    :requested_radius_m, :radius_m, :requested, :found, :widened, :created_by)"
    "  RETURNING id, created_at"
    "), dispatched AS ("
    "  INSERT INTO alert_dispatches (alert_id, unit_id, rank, distance_m, dispatched_at)"
    "  SELECT alert.id, called.unit_id, called.rank, called.distance_m, alert.created_at"
    "  FROM alert, unnest(CAST(:unit_ids AS bigint[]), CAST(:distances AS double precision[]))"
    "       WITH ORDINALITY AS called(unit_id, distance_m, rank)"
    ") SELECT id, created_at FROM alert"
)


@dataclass(frozen=True)
class UnitSummary:
    """What an alert shows of a unit it called."""

    id: int
    name: str
    kind: str
    members: int
    leader_name: str | None
    leader_phone: str | None
    grid_code: str
    village_code: str
    town_code: str
    district_code: str

    @property
    def leader(self) -> dict[str, str | None] | None:
        return contact(self.leader_name, self.leader_phone)


def nearest_active_units(
    session: Session, lon: float, lat: float, *, radius_m: float, count: int
) -> list[tuple[UnitSummary, float]]:
    """Up to `count` active units within `radius_m` with their distances, nearest first."""
    rows = session.execute(
        NEAREST_ACTIVE_UNITS,
        {"lon": lon, "lat": lat, "radius": radius_m, "count": count, "candidates": count + SPARE_CANDIDATES},
    )
    return [(UnitSummary(*row[:-1]), float(row.distance)) for row in rows]


@dataclass
class DispatchView(InArea):
    """A unit an alert called, and how it answered; placed where the unit is, so that the
    unit's contacts go to those who may see them on the unit itself."""

    alert_id: int
    unit_id: int
    rank: int
    distance_m: float
    dispatched_at: datetime
    acknowledged_at: datetime | None
    arrived_at: datetime | None
    unit: UnitSummary

    def code_at(self, level: str) -> str | None:
        code: str | None = getattr(self.unit, f"{level}_code")
        return code

    @property
    def seconds_to_acknowledge(self) -> float | None:
        if self.acknowledged_at is None:
            return None
        return (self.acknowledged_at - self.dispatched_at).total_seconds()

    @property
    def seconds_to_arrive(self) -> float | None:
        if self.arrived_at is None:
            return None
        return (self.arrived_at - self.dispatched_at).total_seconds()


@dataclass
class AlertView:
    """An alert with the units it called, nearest first."""

    alert: Alert
    dispatches: list[DispatchView] = field(default_factory=list)

    @property
    def shortfall(self) -> str | None:
        """Why fewer units than asked were called, or None."""
        alert = self.alert
        if alert.found >= alert.requested:
            return None
        if alert.widened or alert.radius_m > alert.requested_radius_m:
            return (
                f"Only {alert.found} of {alert.requested} active units within "
                f"{alert.radius_m:g} m, the widest ring allowed."
            )
        return (
            f"Only {alert.found} of {alert.requested} active units within {alert.radius_m:g} m;"
            f" send widen=true to call units in wider rings."
        )

    @property
    def summary(self) -> dict[str, Any]:
        acknowledged = [
            d.seconds_to_acknowledge for d in self.dispatches if d.seconds_to_acknowledge is not None
        ]
        arrived = [d.seconds_to_arrive for d in self.dispatches if d.seconds_to_arrive is not None]
        return {
            "dispatched": len(self.dispatches),
            "acknowledged": len(acknowledged),
            "arrived": len(arrived),
            "first_acknowledged_s": min(acknowledged) if acknowledged else None,
            "median_acknowledge_s": statistics.median(acknowledged) if acknowledged else None,
            "first_arrived_s": min(arrived) if arrived else None,
            "median_arrive_s": statistics.median(arrived) if arrived else None,
        }


def _next_ring(radius_m: float, needed_m: float, max_radius_m: float) -> float:
    """The first ring (radius doubled each time) reaching `needed_m`, capped at the maximum."""
    ring = radius_m
    while ring < needed_m and ring < max_radius_m:
        ring = min(ring * 2, max_radius_m)
    return ring


def create_alert(
    session: Session,
    *,
    actor: Actor,
    kind: str,
    lon: float,
    lat: float,
    crs: str = "wgs84",
    description: str | None = None,
    radius_m: float = 1000.0,
    count: int = 5,
    widen: bool = False,
    max_radius_m: float = 8000.0,
    nearest_min_m: float = 50.0,
) -> AlertView:
    """Call the `count` nearest active units within `radius_m` of a point (一点呼叫).

    With `widen`, a short ring doubles until enough units are found or `max_radius_m` is
    reached; without it, fewer units than asked are called and the alert says so. One query
    finds the units (at the widest radius allowed; the ring is then the smallest that holds
    them) and one statement records the alert with all its dispatches.
    """
    require_write(actor, doing="raise alerts")
    wgs_lon, wgs_lat = to_wgs84(lon, lat, crs)
    assignment = areas.assign_point(session, wgs_lon, wgs_lat, accuracy_m=None, nearest_min_m=nearest_min_m)
    codes = assignment.codes
    require_write(actor, codes, doing="raise alerts")
    max_radius_m = max(max_radius_m, radius_m)
    found = nearest_active_units(
        session, wgs_lon, wgs_lat, radius_m=max_radius_m if widen else radius_m, count=count
    )
    ring = radius_m
    if widen:
        needed = found[count - 1][1] if len(found) >= count else max_radius_m
        ring = _next_ring(radius_m, needed, max_radius_m)
        found = [(unit, distance) for unit, distance in found if distance <= ring]
    alert = Alert(
        kind=kind,
        description=description,
        location=point_wkb(wgs_lon, wgs_lat),
        crs=crs,
        source_lon=lon,
        source_lat=lat,
        requested_radius_m=radius_m,
        radius_m=ring,
        requested=count,
        found=len(found),
        widened=ring > radius_m,
        created_by=actor.user_id,
        grid_code=codes["grid"],
        village_code=codes["village"],
        town_code=codes["town"],
        district_code=codes["district"],
    )
    columns = (
        "kind",
        "description",
        "crs",
        "source_lon",
        "source_lat",
        "grid_code",
        "village_code",
        "town_code",
        "district_code",
        "requested_radius_m",
        "radius_m",
        "requested",
        "found",
        "widened",
        "created_by",
    )
    row = session.execute(
        RECORD_ALERT,
        {
            **{name: getattr(alert, name) for name in columns},
            "lon": wgs_lon,
            "lat": wgs_lat,
            "unit_ids": [unit.id for unit, _ in found],
            "distances": [d for _, d in found],
        },
    ).one()
    alert.id, alert.created_at = row.id, row.created_at
    dispatches = [
        DispatchView(
            alert_id=alert.id,
            unit_id=unit.id,
            rank=rank,
            distance_m=distance,
            dispatched_at=alert.created_at,
            acknowledged_at=None,
            arrived_at=None,
            unit=unit,
        )
        for rank, (unit, distance) in enumerate(found, start=1)
    ]
    return AlertView(alert, dispatches)


def alert_visible_to(actor: Actor) -> ColumnElement[bool]:
    """Alerts the actor may read where they lie, or that called a unit they may read."""
    called_here = (
        select(AlertDispatch.alert_id)
        .join(EmergencyUnit, EmergencyUnit.id == AlertDispatch.unit_id)
        .where(AlertDispatch.alert_id == Alert.id, actor.reads(EmergencyUnit))
        .exists()
    )
    return or_(actor.reads(Alert), called_here)


def _dispatches(session: Session, alert_ids: Sequence[int], actor: Actor) -> dict[int, list[DispatchView]]:
    out: dict[int, list[DispatchView]] = {alert_id: [] for alert_id in alert_ids}
    if not alert_ids:
        return out
    rows = session.execute(
        select(AlertDispatch, *(getattr(EmergencyUnit, c) for c in UNIT_SUMMARY))
        .join(EmergencyUnit, EmergencyUnit.id == AlertDispatch.unit_id)
        .where(AlertDispatch.alert_id.in_(alert_ids))
        .order_by(AlertDispatch.alert_id, AlertDispatch.rank)
    )
    for dispatch, *columns in rows:
        unit = UnitSummary(*columns)
        out[dispatch.alert_id].append(
            DispatchView(
                alert_id=dispatch.alert_id,
                unit_id=dispatch.unit_id,
                rank=dispatch.rank,
                distance_m=dispatch.distance_m,
                dispatched_at=dispatch.dispatched_at,
                acknowledged_at=dispatch.acknowledged_at,
                arrived_at=dispatch.arrived_at,
                unit=unit,
            )
        )
    return out


def get_alert(session: Session, alert_id: int, actor: Actor) -> AlertView:
    """An alert the actor may see, with who responded and how fast."""
    alert = session.scalars(select(Alert).where(Alert.id == alert_id, alert_visible_to(actor))).first()
    if alert is None:
        raise NotFound(f"No alert {alert_id}.")
    return AlertView(alert, _dispatches(session, [alert.id], actor)[alert.id])


def list_alerts(
    session: Session,
    *,
    actor: Actor,
    area: str | None = None,
    kind: str | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> list[AlertView]:
    """Alerts newest first."""
    query = (
        select(Alert)
        .where(alert_visible_to(actor), in_area(Alert, area))
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    if kind is not None:
        query = query.where(Alert.kind == kind)
    if before_id is not None:
        query = query.where(Alert.id < before_id)
    alerts = list(session.scalars(query))
    calls = _dispatches(session, [a.id for a in alerts], actor)
    return [AlertView(a, calls[a.id]) for a in alerts]


def respond(
    session: Session,
    alert_id: int,
    unit_id: int,
    *,
    actor: Actor,
    step: str,
    at: datetime | None = None,
) -> DispatchView:
    """Record that a called unit acknowledged (一线响应) or arrived (一片集结); the first time
    counts, a repeat changes nothing. Arriving implies acknowledging."""
    if actor.read_only:
        raise Forbidden("API keys are read-only.")
    view = get_alert(session, alert_id, actor)
    dispatch = next((d for d in view.dispatches if d.unit_id == unit_id), None)
    if dispatch is None:
        raise NotFound(f"Alert {alert_id} did not call unit {unit_id}.")
    # Those who read the unit answer for it, and so does whoever could have raised the alert.
    if not (actor.covers(dispatch) or actor.may_write(view.alert.area_codes())):
        raise Forbidden(f"Unit {unit_id} is not yours to answer for.")
    if at is not None and at < dispatch.dispatched_at:
        raise ValidationFailed(
            "A response cannot precede the call.", errors=[field_error("at", "Before the dispatch time.")]
        )
    moment: Any = literal(at, DateTime(timezone=True)) if at is not None else func.statement_timestamp()
    values: dict[str, Any] = {
        "acknowledged_at": func.coalesce(AlertDispatch.acknowledged_at, moment),
        "acknowledged_by": func.coalesce(AlertDispatch.acknowledged_by, actor.user_id),
    }
    if step == "arrive":
        values["arrived_at"] = func.coalesce(AlertDispatch.arrived_at, moment)
        values["arrived_by"] = func.coalesce(AlertDispatch.arrived_by, actor.user_id)
    session.execute(
        update(AlertDispatch)
        .where(AlertDispatch.alert_id == alert_id, AlertDispatch.unit_id == unit_id)
        .values(**values)
    )
    session.expire_all()
    calls = _dispatches(session, [alert_id], actor)[alert_id]
    return next(d for d in calls if d.unit_id == unit_id)
