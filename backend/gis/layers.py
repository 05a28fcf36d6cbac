"""The registered collections: the area levels and events.

To add a layer, describe it here with `registry.Collection` and register it in `register_all`;
the OGC API, downloads, tiles and the /ogc OpenAPI document pick it up, and the tests walk every
registered collection. Planned entries, once their domains land:
- `buildings` and `emergency_units` (org domain): `source` their table, `id_column` their key,
  `geometry` the point or footprint, `scope` by the grid code they lie in (as `_event_scope` does
  through the domain's service), building heads' and unit members' contact columns in `personal`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    SQLColumnExpression,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal_column,
    or_,
    true,
)

from backend.areas import service as areas_service
from backend.areas.models import CODE_PATTERN, GRID_KINDS, Area, code_pattern
from backend.auth.service import Actor
from backend.events.models import ASSIGNMENTS, CATEGORY_CODE, STATUSES, Category, Event
from backend.gis.registry import Collection, Filter, Interval, Property, is_empty, register
from backend.org.models import UNIT_KINDS, Building, EmergencyUnit
from backend.patrols import queries as patrols
from backend.stats import LOCAL_TZ
from backend.stats import queries as stats
from backend.stats.days import DEFAULT_WINDOW_DAYS, local_today

UUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"

LEVEL_TITLES = {
    "district": ("Districts (区)", "districts"),
    "town": ("Towns and streets (镇/街道)", "towns"),
    "village": ("Villages and communities (村/社区)", "villages"),
    "grid": ("Grids (网格)", "grids"),
}


# A city's grids (Guangzhou: 19,660) fit a light tile from zoom 10, its villages from 8.
AREA_TILE_MINZOOM = {"district": 0, "town": 0, "village": 8, "grid": 10}


def _xmin_sum(table: str) -> ColumnElement[Any]:
    # A row's xmin changes whenever the row is written, so the sum moves with any update.
    return func.sum(cast(cast(literal_column(f"{table}.xmin"), Text), BigInteger))


def _subtree(column: SQLColumnExpression[str]) -> Any:
    return lambda code: column.startswith(code, autoescape=True)


def boundary_versions(interval: Interval | None) -> ColumnElement[bool]:
    """Current boundaries; with a datetime, those in force at that instant (or interval's end)."""
    at = interval.end if interval is not None else None
    if at is None:
        return Area.valid_to.is_(None)
    return and_(Area.valid_from <= at, or_(Area.valid_to.is_(None), Area.valid_to > at))


def _everyone(actor: Actor | None) -> ColumnElement[bool]:
    # Every signed-in role reads the whole area tree (as /api/v1/areas does).
    return true()


def area_collection(level: str) -> Collection:
    title, collection_id = LEVEL_TITLES[level]
    properties = [
        Property("code", Area.code, description="Hierarchical area code", in_tiles=True),
        Property("name", Area.name, in_tiles=True),
        Property("level", Area.level, in_tiles=True),
        Property("parent", Area.parent_code, description="Code of the parent area"),
    ]
    filters = [
        Filter(
            "area", _subtree(Area.code), "Only areas inside this area (a code prefix)", pattern=CODE_PATTERN
        ),
        Filter("name", lambda value: Area.name == value, "Exact name"),
    ]
    if level != "district":
        filters.append(
            Filter(
                "parent",
                lambda value: Area.parent_code == value,
                "Only the children of this area",
                pattern=CODE_PATTERN,
            )
        )
    if level == "grid":
        properties.append(
            Property("kind", Area.kind, description="comprehensive or dedicated", in_tiles=True)
        )
        filters.append(Filter("kind", lambda value: Area.kind == value, "Grid kind", enum=GRID_KINDS))
    properties += [
        Property("boundary_version", Area.id, "integer", "Id of this boundary version"),
        Property("valid_from", Area.valid_from, "date-time"),
        Property("valid_to", Area.valid_to, "date-time", "Null while the boundary is current"),
    ]
    return Collection(
        id=collection_id,
        title=title,
        description=f"Current {collection_id} of the area tree; `datetime` selects the "
        "boundary versions in force at that instant (for an interval, at its end).",
        source=Area.__table__,
        id_column=Area.code,
        id_type="string",
        id_pattern=code_pattern(level),
        geometry=Area.geom,
        geometry_type="MultiPolygon",
        properties=tuple(properties),
        where=(Area.level == level,),
        filters=tuple(filters),
        temporal=boundary_versions,
        temporal_description="Boundary versions in force at this instant, or at the end of this interval",
        time_extent=(func.min(Area.valid_from), None),
        fingerprint=(func.count(), func.max(Area.valid_from), func.max(Area.valid_to), _xmin_sum("areas")),
        last_modified=func.greatest(func.max(Area.valid_from), func.max(Area.valid_to)),
        scope=_everyone,
        anonymous=True,
        tile_minzoom=AREA_TILE_MINZOOM[level],
    )


def received_within(interval: Interval | None) -> ColumnElement[bool]:
    if interval is None:
        return true()
    conditions = []
    if interval.start is not None:
        conditions.append(Event.received_at >= interval.start)
    if interval.end is not None:
        conditions.append(Event.received_at <= interval.end)
    return and_(true(), *conditions)


def _read_by(model: Any) -> Any:
    """The rows of a layer over `model` that the caller may read, by the one access rule."""
    return lambda actor: actor.reads(model) if actor is not None else false()


def events_collection() -> Collection:
    return Collection(
        id="events",
        title="Events (网格事项)",
        description="Event reports the caller may see. No personal data: contacts and the "
        "people involved are never included, and the description is left out for sensitive "
        "categories.",
        source=Event.__table__.join(Category.__table__, Event.category_code == Category.code),
        id_column=Event.id,
        id_type="uuid",
        id_pattern=UUID,
        geometry=Event.location,
        geometry_type="Point",
        properties=(
            Property("category", Event.category_code, in_tiles=True),
            Property("category_name", Category.name_zh),
            Property(
                "description",
                case((Category.sensitive, None), else_=Event.description),
                description="Null for sensitive categories",
            ),
            Property("status", Event.status, in_tiles=True),
            Property("occurred_at", Event.occurred_at, "date-time"),
            Property("received_at", Event.received_at, "date-time"),
            Property("accuracy_m", Event.accuracy_m, "number"),
            Property("grid", Event.grid_code, in_tiles=True),
            Property("village", Event.village_code),
            Property("town", Event.town_code),
            Property("district", Event.district_code),
            Property("assignment", Event.assignment),
            Property("responsible_area", Event.responsible_code),
            Property("due_at", Event.due_at, "date-time"),
            Property("accepted_at", Event.accepted_at, "date-time"),
            Property("resolved_at", Event.resolved_at, "date-time"),
            Property("closed_at", Event.closed_at, "date-time"),
            Property("rework_count", Event.rework_count, "integer"),
            Property("version", Event.version, "integer"),
            Property("updated_at", Event.updated_at, "date-time"),
        ),
        filters=(
            Filter(
                "category",
                lambda value: Event.category_code == value,
                "Category code",
                pattern=CATEGORY_CODE.removeprefix("^").removesuffix(r"\Z"),
            ),
            Filter("status", lambda value: Event.status == value, "Lifecycle status", enum=STATUSES),
            Filter(
                "area",
                _in_grid_tree(Event),
                "Events in this area's subtree (district, town, village or grid code)",
                pattern=CODE_PATTERN,
            ),
            Filter(
                "assignment",
                lambda value: Event.assignment == value,
                "How the event was assigned to its grid",
                enum=ASSIGNMENTS,
            ),
        ),
        temporal=received_within,
        temporal_description="Events received at this instant or within this interval",
        time_extent=(func.min(Event.received_at), func.max(Event.received_at)),
        fingerprint=(
            func.count(),
            func.max(Event.updated_at),
            func.max(Event.received_at),
            func.sum(Event.version),
            _xmin_sum("events"),
            _xmin_sum("categories"),
        ),
        last_modified=func.greatest(func.max(Event.updated_at), func.max(Event.received_at)),
        scope=_read_by(Event),
        personal=frozenset({"contacts", "reporter_id", "assignee_id", "resolved_by", "closed_by"}),
    )


def _created_within(column: Any) -> Any:
    def condition(interval: Interval | None) -> ColumnElement[bool]:
        if interval is None:
            return true()
        conditions = []
        if interval.start is not None:
            conditions.append(column >= interval.start)
        if interval.end is not None:
            conditions.append(column <= interval.end)
        return and_(true(), *conditions)

    return condition


def _in_grid_tree(model: Any) -> Any:
    def condition(code: str) -> ColumnElement[bool]:
        return model.code_column(areas_service.level_of(code)) == code  # type: ignore[no-any-return]

    return condition


def org_collection(
    model: Any,
    collection_id: str,
    title: str,
    description: str,
    geometry: SQLColumnExpression[Any],
    properties: list[Property],
    filters: list[Filter],
    personal: set[str],
) -> Collection:
    """Buildings and emergency units: points in grids, read within the caller's scope."""
    table = model.__tablename__
    return Collection(
        id=collection_id,
        title=title,
        description=description + " Personal contacts are never included.",
        source=model.__table__,
        id_column=cast(model.id, Text),
        id_type="string",
        id_pattern=r"\d{1,18}",
        geometry=geometry,
        geometry_type="Point",
        properties=(
            *properties,
            Property("grid", model.grid_code, in_tiles=True),
            Property("village", model.village_code),
            Property("town", model.town_code),
            Property("district", model.district_code),
            Property("updated_at", model.updated_at, "date-time"),
        ),
        filters=(
            Filter("area", _in_grid_tree(model), "In this area's subtree", pattern=CODE_PATTERN),
            *filters,
        ),
        temporal=_created_within(model.created_at),
        temporal_description="Created at this instant or within this interval",
        time_extent=(func.min(model.created_at), func.max(model.created_at)),
        fingerprint=(func.count(), func.max(model.updated_at), _xmin_sum(table)),
        last_modified=func.max(model.updated_at),
        scope=_read_by(model),
        personal=frozenset(personal),
    )


def buildings_collection() -> Collection:
    return org_collection(
        Building,
        "buildings",
        "Buildings (楼栋)",
        "Buildings with their households and rental housing (出租屋), at the point used to find their grid.",
        Building.location,
        [
            Property("name", Building.name, in_tiles=True),
            Property("address", Building.address),
            Property("floors", Building.floors, "integer"),
            Property("households", Building.households, "integer", in_tiles=True),
            Property("rental_units", Building.rental_units, "integer", in_tiles=True),
            Property("safe_rental_units", Building.safe_rental_units, "integer"),
            Property("access_control", Building.access_control, "boolean"),
        ],
        [],
        {"head_name", "head_phone"},
    )


def emergency_units_collection() -> Collection:
    return org_collection(
        EmergencyUnit,
        "emergency_units",
        "Emergency units (最小应急单元)",
        "Minimum emergency units at shops, hotels, markets and schools.",
        func.geometry(EmergencyUnit.location),
        [
            Property("name", EmergencyUnit.name, in_tiles=True),
            Property("kind", EmergencyUnit.kind, in_tiles=True),
            Property("members", EmergencyUnit.members, "integer"),
            Property("active", EmergencyUnit.active, "boolean", in_tiles=True),
        ],
        [
            Filter("kind", lambda value: EmergencyUnit.kind == value, "Unit kind", enum=UNIT_KINDS),
            Filter(
                "active",
                lambda value: EmergencyUnit.active == (value == "true"),
                "Only active (true) or inactive (false) units",
                enum=("true", "false"),
            ),
        ],
        {"leader_name", "leader_phone"},
    )


def _closure_period(interval: Interval | None) -> tuple[datetime, datetime, datetime]:
    """The window asked for and the as-of time, as /api/v1/stats/closure takes them: without a
    start, the 365 days before the end; without an end, now; closed as of now."""
    now = datetime.now(UTC)
    end = interval.end if interval is not None and interval.end is not None else now
    if interval is not None and interval.start is not None:
        return interval.start, end, now
    try:
        return end - stats.DEFAULT_WINDOW, end, now
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC), end, now


def _closure_scope(actor: Actor | None) -> ColumnElement[bool]:
    # The grids whose figures the caller may read, as /api/v1/stats decides.
    return actor.reads_areas(Area.code) if actor is not None else false()


def grid_closure_collection(interval: Interval | None = None) -> Collection:
    """Grids with their closure figures for a period: the choropleth layer.

    The figures are closure_stats' (backend.stats.queries): the same due events, counts,
    benchmark verdict and Wilson interval as /api/v1/stats/closure?group_by=grid.
    """
    window_from, window_to, as_of = _closure_period(interval)
    figures = stats.closure_by_grid(window_from=window_from, window_to=window_to, as_of=as_of)
    due = func.coalesce(figures.c.due, 0)
    closed = func.coalesce(figures.c.closed, 0)
    closed_on_time = func.coalesce(figures.c.closed_on_time, 0)
    verdict = stats.benchmark_sql(closed, due, stats.DEFAULT_BENCHMARK)
    benchmark = f"{stats.DEFAULT_BENCHMARK:.0%}"
    return _grid_figures_layer(
        id="grid_closure",
        title="Grids with closure statistics (网格结案率)",
        description="Current grids with the closure figures of events due in the period "
        "(`datetime`; default the last 365 days), closed as of now: due, closed, closed on "
        f"time and the closure rate (结案率) against the {benchmark} benchmark with its Wilson 95% "
        "interval, as /api/v1/stats/closure?group_by=grid gives them. Read within the "
        "caller's scope.",
        figures=figures,
        properties=(
            Property("due", due, "integer", "应结案数", in_tiles=True),
            Property("closed", closed, "integer", "结案数"),
            Property("closed_on_time", closed_on_time, "integer", "按期结案数"),
            Property("closure_rate", verdict["rate"], "number", "结案率: closed / due", in_tiles=True),
            Property(
                "meets_benchmark", verdict["meets_benchmark"], "boolean", f"At least {benchmark} closed"
            ),
        ),
        verdict=verdict,
        rate="the closure rate",
        period="The period whose due events are counted (default: the last 365 days)",
        fingerprint=(figures.c.due, figures.c.closed, figures.c.closed_on_time),
        for_period=grid_closure_collection,
    )


def _grid_figures_layer(
    *,
    id: str,
    title: str,
    description: str,
    figures: Any,
    properties: tuple[Property, ...],
    verdict: dict[str, ColumnElement[Any]],
    rate: str,
    period: str,
    fingerprint: tuple[Any, ...],
    for_period: Any,
) -> Collection:
    """Current grids joined to per-grid figures of a period (`figures`, keyed by grid_code),
    with a rate's Wilson interval and benchmark verdict: the choropleth layers."""
    grids = area_collection("grid")
    return replace(
        grids,
        id=id,
        title=title,
        description=description,
        source=Area.__table__.outerjoin(figures, figures.c.grid_code == Area.code),
        properties=(
            Property("code", Area.code, in_tiles=True),
            Property("name", Area.name, in_tiles=True),
            *properties,
            Property("wilson_low", verdict["wilson_low"], "number", f"Wilson 95% interval of {rate}: low"),
            Property("wilson_high", verdict["wilson_high"], "number", "... and high"),
            Property(
                "below_benchmark",
                verdict["below_benchmark"],
                "boolean",
                "wilson_high < benchmark: below it beyond chance",
                in_tiles=True,
            ),
        ),
        where=(Area.level == "grid", Area.valid_to.is_(None)),
        filters=tuple(f for f in grids.filters if f.name in ("area", "parent")),
        temporal=lambda interval: true(),
        temporal_description=period,
        fingerprint=(*grids.fingerprint, *(func.sum(column) for column in fingerprint)),
        scope=_closure_scope,
        anonymous=False,
        for_period=for_period,
    )


def _patrol_period(interval: Interval | None) -> tuple[date, date]:
    """Local days [start, end) of the period asked for: by default the last 30 complete days."""
    end = (
        interval.end.astimezone(ZoneInfo(LOCAL_TZ)).date() + timedelta(days=1)
        if interval is not None and interval.end is not None
        else local_today()
    )
    if interval is not None and interval.start is not None:
        return interval.start.astimezone(ZoneInfo(LOCAL_TZ)).date(), end
    return end - timedelta(days=DEFAULT_WINDOW_DAYS), end


def grid_patrol_collection(interval: Interval | None = None) -> Collection:
    """Grids with their patrol compliance and coverage over a period: per-grid aggregates of
    the daily patrol figures, never a worker or a track."""
    start, end = _patrol_period(interval)
    figures = patrols.compliance_by_grid(start=start, end=end)
    worker_days = func.coalesce(figures.c.worker_days, 0)
    compliant = func.coalesce(figures.c.compliant_days, 0)
    verdict = stats.benchmark_sql(compliant, worker_days, patrols.DEFAULT_BENCHMARK)
    benchmark = f"{patrols.DEFAULT_BENCHMARK:.0%}"
    return _grid_figures_layer(
        id="grid_patrols",
        title="Grids with patrol coverage (网格巡查覆盖)",
        description="Current grids with their patrol figures on the working days of the period "
        "(`datetime`; default the last 30 complete days): worker-days in grids whose kind has a "
        "patrol norm, those meeting it, the compliance rate (巡查达标率) against the "
        f"{benchmark} benchmark with its Wilson 95% interval, and the mean coverage (the share of "
        "the grid within 30 m of the day's track). Per grid only; read within the caller's scope.",
        figures=figures,
        properties=(
            Property("worker_days", worker_days, "integer", "应巡查人日", in_tiles=True),
            Property("compliant_days", compliant, "integer", "达标人日"),
            Property("compliance_rate", verdict["rate"], "number", "巡查达标率", in_tiles=True),
            Property(
                "mean_coverage",
                figures.c.mean_coverage,
                "number",
                "平均覆盖率: mean share covered",
                in_tiles=True,
            ),
        ),
        verdict=verdict,
        rate="the compliance rate",
        period="The period whose working days are counted (default: the last 30 complete days)",
        fingerprint=(figures.c.worker_days, figures.c.compliant_days, figures.c.mean_coverage),
        for_period=grid_patrol_collection,
    )


def register_all() -> None:
    """Fill the registry; the app factory calls this, and a second app in the process finds it filled."""
    if not is_empty():
        return
    for level in ("district", "town", "village", "grid"):
        register(area_collection(level))
    register(events_collection())
    register(buildings_collection())
    register(emergency_units_collection())
    register(grid_closure_collection())
    register(grid_patrol_collection())
