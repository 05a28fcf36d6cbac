"""Seeded event histories with the full lifecycle, for the demo and the benchmarks.

Given the current grids, the categories' SLA hours and a seed, `generate` makes events that went
reported → accepted (due_at = accepted_at + SLA) → dispatched → in_progress → resolved → closed,
with about 2% rejected (a third as duplicates of an earlier report), 3% returned after resolution
(返工), 2% escalated a tier up, 1% reopened after closing, some closed late, and a few left open
for good (积案). One or two towns and a handful of grids are weak: far more of their events stay
open, so their closure rate sits clearly below the 98% benchmark while the whole district's is
near it. Nothing happens after `end`: an event still in progress then is open, and overdue when
its due time has passed.

`copy_history` writes the events and one `event_actions` row per status change with COPY.
The people it names are real users (`read_staff`): a worker of the event's grid reports most
events and handles them, the supervisor of the centre the event sits with accepts, dispatches
and closes it. A grid without workers has its events dispatched to a department, and an area
without a supervisor leaves those actions without an actor.
"""

from __future__ import annotations

import bisect
import hashlib
import itertools
import random
import struct
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from psycopg.types.json import Jsonb
from sqlalchemy import Table, text
from sqlalchemy.orm import Session
from sqlalchemy.schema import AddConstraint, CreateIndex, DropConstraint, DropIndex

from backend.areas import service as areas
from backend.db import driver_connection
from backend.events import partitions
from backend.models import Event, EventAction
from backend.stats import rollups
from geo.crs import transform_arrays

# Times are integer microseconds since 2000-01-01 UTC: integer arithmetic is much cheaper than
# datetime's, and it is exactly how binary COPY sends a timestamptz (so the columns go as int8).
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
SECOND = 1_000_000
HOUR = 3600 * SECOND
DAY = 24 * HOUR
SHANGHAI_OFFSET = 8 * HOUR  # Asia/Shanghai has had no daylight saving since 1991

# How often each category is reported (environment and livelihood dominate grid work).
CATEGORY_WEIGHTS = {
    "environment": 30,
    "livelihood": 18,
    "safety": 12,
    "public_security": 10,
    "dispute": 10,
    "rental": 10,
    "other": 7,
    "emergency": 3,
}
DESCRIPTIONS = {
    "environment": ["路边垃圾堆积", "河涌漂浮物", "绿化带杂物", "占道经营", "污水外溢"],
    "livelihood": ["独居老人需要帮扶", "路灯不亮", "井盖松动", "小区停水", "低保申请咨询"],
    "safety": ["楼道堆放杂物", "电动车楼内充电", "燃气管道老化", "外墙瓷砖脱落", "消防通道堵塞"],
    "public_security": ["可疑人员徘徊", "门禁损坏", "监控摄像头故障", "夜间噪音扰民"],
    "dispute": ["邻里漏水纠纷", "宅基地边界纠纷", "物业费纠纷", "劳资纠纷"],
    "rental": ["出租屋未登记", "流动人口信息变更", "群租隐患"],
    "emergency": ["道路积水", "树木倒伏", "火情报警"],
    "other": ["群众意见建议", "其他事项"],
}
REJECT_NOTES = ("不属于网格事项", "信息不全无法核实", "已由其他部门办理")
# Where an event goes when its grid has no worker to take it.
DEPARTMENT = "镇街综合执法队"
CRS_WEIGHTS = (("gcj02", 60), ("wgs84", 30), ("bd09", 10))

# Column and COPY type of each value in a row. Binary COPY is several times faster than text
# here. The point goes as EWKB declared `bytea` and times as microseconds declared `int8`: the
# client sends them as they are and the server reads them as the column's own binary form.
EVENT_COLUMNS = (
    ("id", "uuid"),
    ("category_code", "text"),
    ("description", "text"),
    ("location", "bytea"),
    ("crs", "text"),
    ("source_lon", "float8"),
    ("source_lat", "float8"),
    ("accuracy_m", "float8"),
    ("occurred_at", "int8"),
    ("reported_at", "int8"),
    ("received_at", "int8"),
    ("reporter_id", "int8"),
    ("grid_code", "text"),
    ("village_code", "text"),
    ("town_code", "text"),
    ("district_code", "text"),
    ("assignment", "text"),
    ("boundary_id", "int8"),
    ("responsible_code", "text"),
    ("assignee_id", "int8"),
    ("department", "text"),
    ("status", "text"),
    ("due_at", "int8"),
    ("accepted_at", "int8"),
    ("resolved_at", "int8"),
    ("resolved_by", "int8"),
    ("closed_at", "int8"),
    ("closed_by", "int8"),
    ("rework_count", "int4"),
    ("version", "int4"),
    ("content_hash", "text"),
    ("updated_at", "int8"),
    ("channel", "text"),
    ("camera_id", "text"),
)
ACTION_COLUMNS = (
    ("event_id", "uuid"),
    ("action", "text"),
    ("from_status", "text"),
    ("to_status", "text"),
    ("actor_id", "int8"),
    ("note", "text"),
    ("data", "jsonb"),
    ("created_at", "int8"),
)
_POINT_EWKB = struct.Struct("<BIIdd")  # little-endian, Point with SRID, 4326, x, y


@dataclass(frozen=True)
class GridSite:
    """A grid the history can put events in: its code, boundary version and points inside it."""

    code: str
    boundary_id: int
    points: tuple[tuple[float, float], ...]  # WGS84
    # The same points as a phone would send them, per CRS.
    sources: dict[str, tuple[tuple[float, float], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Staff:
    """The users the history may name: each grid's workers and each centre's supervisor.

    Keyed by area code. Empty (the default) when there are no users: events then name nobody.
    """

    workers: Mapping[str, tuple[int, ...]] = field(default_factory=dict)
    supervisors: Mapping[str, int] = field(default_factory=dict)

    def supervisor(self, code: str) -> int | None:
        """The supervisor of the centre at `code`, else of the nearest centre above it."""
        for length in (12, 9, 6):
            if len(code) >= length and (found := self.supervisors.get(code[:length])) is not None:
                return found
        return None


@dataclass(frozen=True)
class Quality:
    """How a grid's events fare: the share never closed and the share closed late."""

    never_closed: float
    late: float


NORMAL = Quality(never_closed=0.01, late=0.05)
WEAK_TOWN = Quality(never_closed=0.08, late=0.15)
WEAK_GRID = Quality(never_closed=0.10, late=0.20)


@dataclass(frozen=True)
class Plan:
    """What history to make: `events` reports received in [start, end), `end` being "now"."""

    start: datetime
    end: datetime
    events: int
    seed: int = 2024
    weak_town_share: float = 0.125  # 1 of Conghua's 8 towns
    weak_grid_share: float = 0.01  # a handful of Conghua's 865 grids
    rejected: float = 0.02
    returned: float = 0.03
    escalated: float = 0.02
    reopened: float = 0.01


@dataclass(frozen=True)
class Summary:
    events: int
    actions: int
    seconds: float
    weak_towns: tuple[str, ...]
    weak_grids: tuple[str, ...]


def read_grids(session: Session, points_per_grid: int = 12, seed: int = 7) -> list[GridSite]:
    """The current grids with a few seeded random points inside each (PostGIS picks them)."""
    rows = session.execute(
        text(
            "SELECT a.id, a.code, ST_X(p.geom) AS lon, ST_Y(p.geom) AS lat"
            " FROM areas a, ST_Dump(ST_GeneratePoints(a.geom, :n, :seed)) p"
            " WHERE a.level = 'grid' AND a.valid_to IS NULL ORDER BY a.code, p.path"
        ),
        {"n": points_per_grid, "seed": seed},
    ).all()
    by_grid: dict[tuple[str, int], list[tuple[float, float]]] = {}
    for row in rows:
        by_grid.setdefault((row.code, row.id), []).append((row.lon, row.lat))
    lons = [lon for points in by_grid.values() for lon, _ in points]
    lats = [lat for points in by_grid.values() for _, lat in points]
    converted = {
        crs: list(zip(*(a.tolist() for a in transform_arrays(lons, lats, "wgs84", crs)), strict=True))
        for crs in ("gcj02", "bd09")
    }
    sites = []
    offset = 0
    for (code, boundary_id), points in by_grid.items():
        n = len(points)
        sources = {"wgs84": tuple(points)}
        for crs, values in converted.items():
            sources[crs] = tuple(values[offset : offset + n])
        offset += n
        sites.append(GridSite(code, boundary_id, tuple(points), sources))
    return sites


def read_staff(session: Session) -> Staff:
    """The enabled workers of every grid and, per area, its enabled supervisor with the lowest id."""
    workers: dict[str, list[int]] = {}
    rows = session.execute(
        text(
            "SELECT g.grid_code, u.id FROM user_grids g JOIN users u ON u.id = g.user_id"
            " WHERE u.role = 'worker' AND NOT u.disabled ORDER BY g.grid_code, u.id"
        )
    )
    for code, user_id in rows:
        workers.setdefault(code, []).append(user_id)
    rows = session.execute(
        text(
            "SELECT area_code, min(id) FROM users WHERE role = 'supervisor' AND NOT disabled"
            " GROUP BY area_code"
        )
    )
    return Staff({code: tuple(ids) for code, ids in workers.items()}, {code: id_ for code, id_ in rows})


def _pick(people: tuple[int, ...], draw: float) -> int | None:
    """One of `people` by a uniform draw in [0, 1), or None when there is nobody."""
    return people[int(draw * len(people))] if people else None


def read_sla_hours(session: Session) -> dict[str, int]:
    rows = session.execute(text("SELECT code, sla_hours FROM categories"))
    return {code: sla for code, sla in rows}


def pick_weak(grids: Sequence[GridSite], plan: Plan) -> tuple[frozenset[str], frozenset[str]]:
    """Choose the weak towns and, outside them, the weak grids (seeded)."""
    rng = random.Random(plan.seed + 1)
    towns = sorted({areas.code_at(g.code, "town") for g in grids})
    k = max(1, round(len(towns) * plan.weak_town_share)) if towns else 0
    weak_towns = frozenset(rng.sample(towns, min(k, len(towns))))
    others = [g.code for g in grids if areas.code_at(g.code, "town") not in weak_towns]
    k = max(1, round(len(grids) * plan.weak_grid_share)) if others else 0
    return weak_towns, frozenset(rng.sample(others, min(k, len(others))))


def micros(value: datetime) -> int:
    """A time as microseconds since 2000-01-01 UTC."""
    return (value - PG_EPOCH) // timedelta(microseconds=1)


def moment(value: int) -> datetime:
    """The inverse of `micros`."""
    return PG_EPOCH + timedelta(microseconds=value)


def _received_times(rng: random.Random, plan: Plan) -> list[int]:
    """Report times, sorted: more by day than by night (Beijing time)."""
    start, end = micros(plan.start), micros(plan.end)
    local_midnight = (start + SHANGHAI_OFFSET) // DAY * DAY - SHANGHAI_OFFSET
    days = (end - local_midnight) / DAY
    out = []
    for _ in range(plan.events):
        while True:
            day = int(rng.random() * days)
            # 85% in working hours 08:00-20:00, the rest any time.
            hour = 8 + rng.random() * 12 if rng.random() < 0.85 else rng.random() * 24
            at = local_midnight + day * DAY + int(hour * HOUR)
            if start <= at < end:
                out.append(at)
                break
    out.sort()
    return out


# The channels of the matters not reported from the field, and their shares (per cent).
OTHER_CHANNELS = (("hotline", 40), ("centre_desk", 30), ("citizen", 25), ("video", 5))


def _channel(event_id: uuid.UUID) -> str:
    draw = event_id.int % 100
    for channel, share in OTHER_CHANNELS:
        if draw < share:
            return channel
        draw -= share
    return "other"


def generate(
    grids: Sequence[GridSite],
    sla_hours: dict[str, int],
    plan: Plan,
    batch: int = 20_000,
    staff: Staff | None = None,
) -> Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]:
    """Yield batches of (event rows, action rows) in EVENT_COLUMNS / ACTION_COLUMNS order.

    The same plan gives the same times and statuses whoever the staff are: the draw that picks
    a person is made even where there is nobody to pick.
    """
    rng = random.Random(plan.seed)
    staff = staff or Staff()
    grid_workers = [staff.workers.get(g.code, ()) for g in grids]
    grid_centres = [staff.supervisor(g.code) for g in grids]
    weak_towns, weak_grids = pick_weak(grids, plan)
    quality = [
        WEAK_GRID
        if g.code in weak_grids
        else WEAK_TOWN
        if areas.code_at(g.code, "town") in weak_towns
        else NORMAL
        for g in grids
    ]
    # Busy and quiet grids: a log-normal activity weight each.
    grid_cum = list(itertools.accumulate(rng.lognormvariate(0, 0.6) for _ in grids))
    categories = [c for c in CATEGORY_WEIGHTS if c in sla_hours] or sorted(sla_hours)
    category_cum = list(itertools.accumulate(CATEGORY_WEIGHTS.get(c, 5) for c in categories))
    crs_names = [c for c, _ in CRS_WEIGHTS]
    crs_cum = list(itertools.accumulate(w for _, w in CRS_WEIGHTS))
    last_in_grid: dict[int, uuid.UUID] = {}
    end = micros(plan.end)
    events: list[tuple[object, ...]] = []
    actions: list[tuple[object, ...]] = []

    for received in _received_times(rng, plan):
        gi = min(bisect.bisect(grid_cum, rng.random() * grid_cum[-1]), len(grids) - 1)
        grid = grids[gi]
        quality_here = quality[gi]
        category = categories[bisect.bisect(category_cum, rng.random() * category_cum[-1])]
        sla_h = sla_hours[category]
        sla = sla_h * HOUR
        # Emergencies are picked up within minutes, the rest within the hour or so.
        speed = 0.1 if sla_h <= 4 else 1.0
        event_id = uuid.UUID(int=rng.getrandbits(128), version=4)
        point = rng.randrange(len(grid.points))
        lon, lat = grid.points[point]
        crs = crs_names[bisect.bisect(crs_cum, rng.random() * crs_cum[-1])]
        source_lon, source_lat = grid.sources.get(crs, grid.points)[point]
        workers = grid_workers[gi]
        # A fifth come from the hotline, the centre's desk, residents or cameras: no reporting
        # worker. (Which of those is read off the event's id: no draw, so the plan's other
        # figures stay what they were.)
        from_field = rng.random() < 0.8
        reporter = _pick(workers, rng.random()) if from_field else None
        channel = "grid_worker" if from_field else _channel(event_id)
        supervisor = grid_centres[gi]
        village, town, district = (
            areas.code_at(grid.code, level) for level in ("village", "town", "district")
        )

        # The trail, as event_actions rows: (event, action, from, to, actor, note, data, at).
        trail: list[tuple[Any, ...]] = [
            (event_id, "report", None, "reported", reporter, None, None, received)
        ]
        add = trail.append
        if rng.random() < plan.rejected:
            t = received + int(HOUR * rng.expovariate(1 / 1.5))
            duplicate = last_in_grid.get(gi)
            if duplicate is not None and rng.random() < 0.35:
                add(
                    (
                        event_id,
                        "reject",
                        "reported",
                        "rejected",
                        supervisor,
                        "重复上报",
                        Jsonb({"duplicate_of": str(duplicate)}),
                        t,
                    )
                )
            else:
                add(
                    (
                        event_id,
                        "reject",
                        "reported",
                        "rejected",
                        supervisor,
                        rng.choice(REJECT_NOTES),
                        None,
                        t,
                    )
                )
        else:
            assignee = _pick(workers, rng.random())
            department = DEPARTMENT if assignee is None else None
            t = received + int(HOUR * rng.expovariate(1 / (0.8 * speed)))
            add((event_id, "accept", "reported", "accepted", supervisor, None, None, t))
            t += int(HOUR * rng.expovariate(1 / (0.4 * speed)))
            add(
                (
                    event_id,
                    "dispatch",
                    "accepted",
                    "dispatched",
                    supervisor,
                    None,
                    Jsonb({"assignee_id": assignee, "department": department}),
                    t,
                )
            )
            t += int(HOUR * rng.expovariate(1 / (0.6 * speed)))
            add((event_id, "start", "dispatched", "in_progress", assignee, None, None, t))
            work = 1.0
            if rng.random() < plan.escalated:
                t += int(HOUR * rng.expovariate(1 / (0.2 * sla_h + 0.1)))
                to = district if rng.random() < 0.15 else town
                add(
                    (
                        event_id,
                        "escalate",
                        "in_progress",
                        "in_progress",
                        supervisor,
                        "需上级协调",
                        Jsonb({"from": village, "to": to}),
                        t,
                    )
                )
                supervisor = staff.supervisor(to)  # the higher centre verifies from now on
                work = 1.6
            fate = rng.random()
            if fate < quality_here.late:
                work *= 1.5 + rng.random() * 5
            # The share of the SLA spent working has a median of 0.3: most finish in time.
            t += int(sla * work * rng.lognormvariate(-1.2, 0.6))
            add((event_id, "resolve", "in_progress", "resolved", assignee, "已处置", None, t))
            if rng.random() < plan.returned:
                t += int(HOUR * rng.expovariate(1 / 4))
                add((event_id, "return", "resolved", "in_progress", supervisor, "处置不到位", None, t))
                t += int(sla * 0.5 * rng.lognormvariate(-1.2, 0.6))
                add((event_id, "resolve", "in_progress", "resolved", assignee, "已整改", None, t))
            if fate > 1 - quality_here.never_closed:
                # Stuck for good somewhere after acceptance.
                del trail[rng.randint(2, len(trail)) :]
            else:
                t += int(HOUR * rng.expovariate(1 / min(6.0, 0.15 * sla_h)))
                add((event_id, "close", "resolved", "closed", supervisor, "核查通过", None, t))
                if rng.random() < plan.reopened:
                    t += int(DAY * (1 + rng.random() * 14))
                    add(
                        (event_id, "reopen", "closed", "in_progress", supervisor, "群众反映问题复发", None, t)
                    )
                    t += int(sla * 0.5 * rng.lognormvariate(-1.2, 0.6))
                    add((event_id, "resolve", "in_progress", "resolved", assignee, "已处置", None, t))
                    t += int(HOUR * rng.expovariate(1 / 4))
                    add((event_id, "close", "resolved", "closed", supervisor, "核查通过", None, t))

        if trail[-1][7] > end:  # nothing happens after the end of the history
            trail = [row for row in trail if row[7] <= end]
        last_in_grid[gi] = event_id
        status = trail[-1][3]
        accepted_at = due_at = assignee_id = department_name = resolved_at = resolved_by = None
        closed_at = closed_by = None
        responsible = village
        rework = 0
        for _, action, _, _, actor, _, data, at in trail:
            if action == "accept":
                accepted_at, due_at = at, at + sla
            elif action == "dispatch":
                assignee_id, department_name = data.obj["assignee_id"], data.obj["department"]
            elif action == "resolve":
                resolved_at, resolved_by = at, actor
            elif action == "close":
                closed_at, closed_by = at, actor
            elif action == "return" or action == "reopen":
                rework += 1
            elif action == "escalate":
                responsible = data.obj["to"]
        if status != "resolved" and status != "closed":
            resolved_at = resolved_by = None
        if status != "closed":  # a reopened event's closing no longer counts
            closed_at = closed_by = None
        events.append(
            (
                event_id,
                category,
                rng.choice(DESCRIPTIONS.get(category, ["其他事项"])),
                _POINT_EWKB.pack(1, 0x20000001, 4326, lon, lat),
                crs,
                source_lon,
                source_lat,
                float(5 + rng.randrange(45)),
                received - int(rng.random() * 1.5 * HOUR),
                received - int((1 + rng.random() * 20) * SECOND),
                received,
                reporter,
                grid.code,
                village,
                town,
                district,
                "contains",
                grid.boundary_id,
                responsible,
                assignee_id,
                department_name,
                status,
                due_at,
                accepted_at,
                resolved_at,
                resolved_by,
                closed_at,
                closed_by,
                rework,
                len(trail),
                f"{rng.getrandbits(256):064x}",
                trail[-1][7],
                channel,
                f"雪亮-{grid.code[-6:]}-{event_id.int % 8}" if channel == "video" else None,
            )
        )
        actions.extend(trail)
        if len(events) >= batch:
            yield events, actions
            events, actions = [], []
    if events:
        yield events, actions


def copy_history(
    session: Session, batches: Iterator[tuple[list[tuple[object, ...]], list[tuple[object, ...]]]]
) -> tuple[int, int]:
    """Write batches with COPY on the session's connection (its transaction); returns counts."""
    raw = driver_connection(session)
    events = actions = 0
    with raw.cursor() as cursor:
        for event_rows, action_rows in batches:
            _copy(cursor, "events", EVENT_COLUMNS, event_rows)
            _copy(cursor, "event_actions", ACTION_COLUMNS, action_rows)
            events += len(event_rows)
            actions += len(action_rows)
    return events, actions


def _copy(
    cursor: Any, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple[object, ...]]
) -> None:
    names = ", ".join(name for name, _ in columns)
    with cursor.copy(f"COPY {table} ({names}) FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types([kind for _, kind in columns])
        for row in rows:
            copy.write_row(row)


@contextmanager
def bulk_mode(session: Session) -> Iterator[None]:
    """Drop the events' and trail's foreign keys and secondary indexes, then build them again;
    switch the closure rollups' triggers off, then count the rollups afresh.

    The PostgreSQL manual's advice for populating a database: checking each row's foreign keys
    and updating each index row by row costs several times the COPY itself, while building an
    index or validating a key once at the end is a single sort or join. The definitions come
    from the models, so they are the ones the migrations made. Locks both tables until commit.
    """
    tables = (cast(Table, Event.__table__), cast(Table, EventAction.__table__))
    keys = [fk for table in tables for fk in table.foreign_key_constraints]
    indexes = [index for table in tables for index in table.indexes]
    for fk in keys:
        session.execute(DropConstraint(fk))
    for index in indexes:
        session.execute(DropIndex(index))
    # The closure rollups too are counted once at the end rather than row by row.
    rollups.set_triggers(session, enabled=False)
    yield
    rollups.set_triggers(session, enabled=True)
    rollups.rebuild(session)
    for index in indexes:
        session.execute(CreateIndex(index))
    for fk in keys:
        session.execute(AddConstraint(fk))


def load_history(
    session: Session,
    plan: Plan,
    *,
    points_per_grid: int = 12,
    analyze: bool = True,
    bulk: bool | None = None,
    staff: Staff | None = None,
) -> Summary:
    """Generate and write a history over the current grids; the caller commits.

    `staff` defaults to the users in the database (`read_staff`). `bulk` (default: when there
    are no events yet and many to load) uses `bulk_mode`.
    """
    started = time.perf_counter()
    grids = read_grids(session, points_per_grid, seed=plan.seed)
    if not grids:
        return Summary(0, 0, 0.0, (), ())
    weak_towns, weak_grids = pick_weak(grids, plan)
    if bulk is None:
        bulk = plan.events >= 10_000 and not session.scalar(
            text("SELECT EXISTS (SELECT 1 FROM events) OR EXISTS (SELECT 1 FROM event_actions)")
        )
    # The history's months get their partitions, so it does not all land in the default one.
    partitions.create_partitions(session, partitions.month_of(plan.start), partitions.month_of(plan.end))
    with bulk_mode(session) if bulk else nullcontext():
        batches = generate(
            grids, read_sla_hours(session), plan, staff=read_staff(session) if staff is None else staff
        )
        events, actions = copy_history(session, batches)
    add_channel_details(session)
    add_mediation_history(session)
    if analyze:
        session.execute(text("ANALYZE events"))
        session.execute(text("ANALYZE event_actions"))
    return Summary(
        events, actions, time.perf_counter() - started, tuple(sorted(weak_towns)), tuple(sorted(weak_grids))
    )


# The demo's civic app, through which residents' reports came (Open311).
DEMO_APP = "从化区便民服务小程序"
_HOTLINE_TICKETS = text("""
    INSERT INTO hotline_tickets (ticket_id, event_id, created_at)
    SELECT '12345-' || to_char(e.received_at AT TIME ZONE 'Asia/Shanghai', 'YYYYMMDD') || '-'
        || left(replace(e.id::text, '-', ''), 10), e.id, e.received_at
    FROM events e
    WHERE e.channel = 'hotline' AND NOT EXISTS (SELECT 1 FROM hotline_tickets t WHERE t.event_id = e.id)
""")
_DEMO_APP = text("""
    INSERT INTO open311_apps (name, prefix, secret_hash)
    SELECT CAST(:name AS text), left(md5(CAST(:name AS text)), 8), md5(random()::text)
    WHERE NOT EXISTS (SELECT 1 FROM open311_apps WHERE name = CAST(:name AS text))
""")
_CITIZEN_REQUESTS = text("""
    INSERT INTO open311_requests (event_id, token, app_id, created_at)
    SELECT e.id, md5(e.id::text), (SELECT id FROM open311_apps WHERE name = :name), e.received_at
    FROM events e
    WHERE e.channel = 'citizen' AND NOT EXISTS (SELECT 1 FROM open311_requests r WHERE r.event_id = e.id)
""")


def add_channel_details(session: Session) -> None:
    """The hotline's tickets of the history's handoffs, and the Open311 requests of its
    residents' reports (through the demo's app): each once."""
    session.execute(_HOTLINE_TICKETS)
    session.execute(_DEMO_APP, {"name": DEMO_APP})
    session.execute(_CITIZEN_REQUESTS, {"name": DEMO_APP})


# A tiny signed agreement every demo agreement points to (the file is written by `demo load`).
DEMO_AGREEMENT = (
    "%PDF-1.4\n% 人民调解协议书 (demo)\n1 0 obj << /Type /Catalog >> endobj\n"
    "trailer << /Root 1 0 R >>\n%%EOF\n"
).encode()
# Mediation of the history's disputes: each accepted dispute went to its centre's three-person
# team soon after acceptance; those resolved or closed ended in an agreement (98.2%), a referral
# (1.3%: court, petition office or police) or a withdrawal, before the event was resolved. The
# draws are read off each event's id (hashtext), so a history gives the same cases every time.
_MEDIATION_CASES = text("""
    INSERT INTO mediation_cases (event_id, responsible_code, dispute_type, mediators, parties, opened_at,
        outcome, outcome_at, judicially_confirmed, agreement_sha256, agreement_media_type, agreement_size,
        referred_to, referral_reference, grid_code, village_code, town_code, district_code)
    SELECT s.id, s.responsible, s.dispute_type, s.mediators, s.parties, s.opened_at,
        s.outcome, CASE WHEN s.outcome IS NOT NULL THEN s.outcome_at END,
        CASE WHEN s.outcome = 'agreement' THEN s.draw % 10 < 3 END,
        CASE WHEN s.outcome = 'agreement' THEN :sha256 END,
        CASE WHEN s.outcome = 'agreement' THEN 'application/pdf' END,
        CASE WHEN s.outcome = 'agreement' THEN :size END,
        CASE WHEN s.outcome = 'failed_referred'
            THEN (ARRAY['court', 'petition_office', 'police'])[1 + s.draw % 3] END,
        CASE WHEN s.outcome = 'failed_referred' THEN 'DEMO-' || left(s.id::text, 8) END,
        s.grid_code, s.village_code, s.town_code, s.district_code
    FROM (
        SELECT e.id, coalesce(e.responsible_code, e.village_code) AS responsible, e.grid_code, e.village_code,
            e.town_code, e.district_code, d.draw,
            (ARRAY['neighbour', 'family', 'land', 'labour', 'property', 'contract', 'damages', 'other'])
                [1 + d.draw % 8] AS dispute_type,
            jsonb_build_array(
                jsonb_build_object('role', 'village_cadre', 'name', '调委会主任' || right(e.village_code, 3)),
                jsonb_build_object('role', 'legal_adviser', 'name', '法律顾问' || right(e.town_code, 3)),
                jsonb_build_object('role', 'respected_resident', 'name', '乡贤' || right(e.grid_code, 3))
            ) AS mediators,
            '[{"name": "当事人甲", "side": "applicant"}, {"name": "当事人乙", "side": "respondent"}]'::jsonb
                AS parties,
            e.accepted_at + (coalesce(e.resolved_at, e.closed_at, e.accepted_at) - e.accepted_at) * 0.1
                AS opened_at,
            e.accepted_at + (coalesce(e.resolved_at, e.closed_at, e.accepted_at) - e.accepted_at) * 0.9
                + interval '1 second' AS outcome_at,
            CASE WHEN e.resolved_at IS NULL AND e.closed_at IS NULL THEN NULL
                WHEN d.draw % 1000 < 982 THEN 'agreement'
                WHEN d.draw % 1000 < 995 THEN 'failed_referred'
                ELSE 'withdrawn' END AS outcome
        FROM events e
        CROSS JOIN LATERAL (SELECT abs(hashtext(e.id::text)) AS draw) d
        WHERE e.category_code = 'dispute' AND e.accepted_at IS NOT NULL AND e.grid_code IS NOT NULL
            AND e.status <> 'rejected'
            AND NOT EXISTS (SELECT 1 FROM mediation_cases c WHERE c.event_id = e.id)
    ) s
""")


def agreement_sha256() -> str:
    return hashlib.sha256(DEMO_AGREEMENT).hexdigest()


def add_mediation_history(session: Session) -> None:
    """A mediation case for each accepted dispute of the history (once)."""
    session.execute(_MEDIATION_CASES, {"sha256": agreement_sha256(), "size": len(DEMO_AGREEMENT)})


def demo_plan(
    end: datetime | None = None, *, years: float = 2.0, events: int = 200_000, seed: int = 2024
) -> Plan:
    """The demo's history: about two years up to now."""
    end = (end or datetime.now(UTC)).replace(microsecond=0)
    return Plan(start=end - timedelta(days=round(365.25 * years)), end=end, events=events, seed=seed)
