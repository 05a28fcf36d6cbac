"""Seeded, reproducible organisation data for demos and benchmarks, written with COPY.

Conghua's published figures: 865 grid party branches, 2,897 party groups, 21,240 rental units
certified safe (平安出租屋), 1,129 minimum emergency units checking in at 98%+; Guangzhou's 23,000
emergency units. Below the published figures everything is synthetic.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.common.fields import to_shape
from backend.org.models import EmergencyUnit, PartyBranch
from backend.stats import LOCAL_TZ
from geo.areatree import random_points

SEED = 20240812


@dataclass(frozen=True)
class OrgScale:
    """How much to generate; groups and buildings only where published figures exist."""

    party_groups: int
    buildings_per_grid: tuple[int, int]  # inclusive range; (0, 0) for none
    safe_rental_units: int
    units: int
    check_in_days: int


CONGHUA = OrgScale(
    party_groups=2897, buildings_per_grid=(15, 31), safe_rental_units=21240, units=1129, check_in_days=90
)
GUANGZHOU = OrgScale(
    party_groups=0, buildings_per_grid=(0, 0), safe_rental_units=0, units=23000, check_in_days=90
)
SCALES = {"conghua": CONGHUA, "guangzhou": GUANGZHOU}

UNIT_KINDS = (("shop", 0.55), ("hotel", 0.15), ("market", 0.15), ("school", 0.15))
# Most units check in every day, some miss a few, a few often: about 98% overall.
CHECK_IN_RATES = ((0.995, 0.80), (0.96, 0.15), (0.86, 0.05))
SURNAMES = "李王张刘陈杨黄赵吴周徐孙马朱胡郭何林罗高梁谢邓冯曾彭邱温钟黎"
GIVEN = "伟芳娜敏静丽强磊军洋勇艳杰娟涛明超秀霞平刚桂英华建国志红玉兰文斌辉"


@dataclass
class _Grid:
    code: str
    village_name: str
    polygon: Any


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def _phone(rng: random.Random) -> str:
    return "1" + rng.choice("3589") + "".join(rng.choice("0123456789") for _ in range(9))


def _place_name(kind: str, rng: random.Random) -> str:
    """What a unit is named after: 陈记商铺, 明华酒店, 农贸市场, 第二小学."""
    if kind == "shop":
        return f"{rng.choice(SURNAMES)}记{rng.choice(('商铺', '便利店', '五金店', '药店'))}"
    if kind == "hotel":
        return f"{rng.choice(GIVEN)}{rng.choice(GIVEN)}{rng.choice(('酒店', '宾馆'))}"
    if kind == "market":
        return rng.choice(("农贸市场", "综合市场", "肉菜市场"))
    return f"第{rng.choice('一二三四五')}{rng.choice(('小学', '中学', '幼儿园'))}"


def _ewkt(x: float, y: float) -> str:
    return f"SRID=4326;POINT({x:.7f} {y:.7f})"


def _codes(code: str) -> tuple[str, str, str, str]:
    village, town, district = (areas.code_at(code, level) for level in ("village", "town", "district"))
    return code, village, town, district


def current_grids(session: Session) -> list[_Grid]:
    """Every current grid with its WGS84 polygon, by code."""
    rows = areas.list_areas(session, level="grid", limit=10_000_000)
    return [_Grid(a.code, re.sub(r"第\d+网格$", "", a.name), to_shape(a.geom)) for a in rows]


def _next_ids(session: Session, table: str) -> int:
    return int(session.execute(text(f"SELECT coalesce(max(id), 0) + 1 FROM {table}")).scalar_one())


def _copy(session: Session, table: str, columns: Sequence[str], rows: Iterator[Sequence[Any]]) -> int:
    """COPY rows into a table on the session's own connection (inside its transaction)."""
    cursor = session.connection().connection.driver_connection.cursor()  # type: ignore[union-attr]
    count = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            count += 1
    return count


def _resync_identity(session: Session, table: str) -> None:
    session.execute(
        text(
            f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
            f"(SELECT coalesce(max(id), 0) + 1 FROM {table}), false)"
        )
    )


def already_loaded(session: Session) -> bool:
    return bool(
        session.scalar(select(func.count()).select_from(EmergencyUnit))
        or session.scalar(select(func.count()).select_from(PartyBranch))
    )


def _split(total: int, parts: int, rng: random.Random) -> list[int]:
    """`total` spread over `parts` as evenly as possible, the remainder to random parts."""
    base, extra = divmod(total, parts)
    lucky = set(rng.sample(range(parts), extra))
    return [base + (i in lucky) for i in range(parts)]


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(LOCAL_TZ)).astimezone(UTC)


def copy_units(
    session: Session,
    grids: Sequence[_Grid],
    count: int,
    rng: random.Random,
    created_at: datetime,
) -> list[int]:
    """Place `count` active units at seeded points inside the grids; return their ids."""
    gen = np.random.default_rng(rng.getrandbits(64))
    per_grid = np.bincount(gen.integers(0, len(grids), size=count), minlength=len(grids))
    first = _next_ids(session, "emergency_units")
    kinds = [k for k, _ in UNIT_KINDS]
    weights = [w for _, w in UNIT_KINDS]

    def rows() -> Iterator[Sequence[Any]]:
        unit_id = first
        for grid, n in zip(grids, per_grid.tolist(), strict=True):
            if not n:
                continue
            for p in random_points(grid.polygon, n, gen):
                kind = rng.choices(kinds, weights)[0]
                name = f"{grid.village_name}{_place_name(kind, rng)}最小应急单元"
                yield (
                    unit_id,
                    name[:100],
                    kind,
                    rng.choice((2, 3, 3)),
                    _ewkt(p.x, p.y),
                    "contains",
                    _name(rng),
                    _phone(rng),
                    True,
                    created_at,
                    created_at,
                    *_codes(grid.code),
                )
                unit_id += 1

    columns = (
        "id",
        "name",
        "kind",
        "members",
        "location",
        "assignment",
        "leader_name",
        "leader_phone",
        "active",
        "created_at",
        "updated_at",
        "grid_code",
        "village_code",
        "town_code",
        "district_code",
    )
    made = _copy(session, "emergency_units", columns, rows())
    _resync_identity(session, "emergency_units")
    return list(range(first, first + made))


def _copy_check_ins(
    session: Session, unit_ids: Sequence[int], days: int, now: datetime, rng: random.Random
) -> int:
    """Check-ins over the last `days` local days up to today, none later than `now`."""
    rates = [r for r, _ in CHECK_IN_RATES]
    shares = [s for _, s in CHECK_IN_RATES]
    today = now.astimezone(ZoneInfo(LOCAL_TZ)).date()
    window = [today - timedelta(days=d) for d in range(days - 1, -1, -1)]
    midnights = [_local_midnight(day) for day in window]

    def rows() -> Iterator[Sequence[Any]]:
        for unit_id in unit_ids:
            rate = rng.choices(rates, shares)[0]
            for day, midnight in zip(window, midnights, strict=True):
                if rng.random() < rate:
                    moment = midnight + timedelta(minutes=rng.randrange(7 * 60, 10 * 60))
                    members = rng.choice((2, 3))
                    if moment <= now:
                        yield unit_id, day, moment, members

    return _copy(session, "check_ins", ("unit_id", "local_day", "checked_in_at", "members_on_duty"), rows())


def load_org(
    session: Session,
    scale: OrgScale = CONGHUA,
    *,
    seed: int = SEED,
    now: datetime | None = None,
) -> dict[str, int] | None:
    """Generate branches, groups, buildings, units and check-ins over the current grids.

    Does nothing (returns None) when units or branches exist already, or there are no grids.
    """
    if already_loaded(session):
        return None
    grids = current_grids(session)
    if not grids:
        return None
    rng = random.Random(seed)
    now = now or datetime.now(UTC)
    today = now.astimezone(ZoneInfo(LOCAL_TZ)).date()
    created_at = _local_midnight(today - timedelta(days=scale.check_in_days + 30))
    counts: dict[str, int] = {}

    first_branch = _next_ids(session, "party_branches")
    branch_ids = {grid.code: first_branch + i for i, grid in enumerate(grids)}
    counts["party_branches"] = _copy(
        session,
        "party_branches",
        (
            "id",
            "name",
            "secretary",
            "member_count",
            "created_at",
            "updated_at",
            "grid_code",
            "village_code",
            "town_code",
            "district_code",
        ),
        (
            (
                branch_ids[g.code],
                f"{g.village_name}第{int(g.code[-3:])}网格党支部",
                _name(rng),
                rng.randint(8, 45),
                created_at,
                created_at,
                *_codes(g.code),
            )
            for g in grids
        ),
    )
    _resync_identity(session, "party_branches")

    # Party groups: building groups mostly in communities (社区), cooperative groups in villages.
    building_groups: dict[str, list[int]] = {g.code: [] for g in grids}
    group_rows = []
    next_group = _next_ids(session, "party_groups")
    if scale.party_groups:
        for grid, n in zip(grids, _split(scale.party_groups, len(grids), rng), strict=True):
            urban = grid.village_name.endswith("社区")
            for k in range(1, n + 1):
                kind = "building" if rng.random() < (0.8 if urban else 0.3) else "cooperative"
                if kind == "building":
                    name, cooperative = f"第{k}楼栋党小组", None
                    building_groups[grid.code].append(next_group)
                else:
                    name, cooperative = f"第{k}经济社党小组", f"{grid.village_name}第{k}经济合作社"
                group_rows.append(
                    (
                        next_group,
                        branch_ids[grid.code],
                        kind,
                        name,
                        _name(rng),
                        rng.randint(3, 15),
                        cooperative,
                        created_at,
                        created_at,
                        *_codes(grid.code),
                    )
                )
                next_group += 1
    counts["party_groups"] = _copy(
        session,
        "party_groups",
        (
            "id",
            "branch_id",
            "kind",
            "name",
            "leader",
            "member_count",
            "cooperative",
            "created_at",
            "updated_at",
            "grid_code",
            "village_code",
            "town_code",
            "district_code",
        ),
        iter(group_rows),
    )
    _resync_identity(session, "party_groups")

    counts.update(_copy_buildings(session, grids, scale, rng, building_groups, created_at))
    unit_ids = copy_units(session, grids, scale.units, rng, created_at)
    counts["emergency_units"] = len(unit_ids)
    counts["check_ins"] = _copy_check_ins(session, unit_ids, scale.check_in_days, now, rng)
    for table in ("party_branches", "party_groups", "buildings", "emergency_units", "check_ins"):
        session.execute(text(f"ANALYZE {table}"))
    return counts


def _copy_buildings(
    session: Session,
    grids: Sequence[_Grid],
    scale: OrgScale,
    rng: random.Random,
    building_groups: dict[str, list[int]],
    created_at: datetime,
) -> dict[str, int]:
    low, high = scale.buildings_per_grid
    if high <= 0:
        return {"buildings": 0, "safe_rental_units": 0}
    gen = np.random.default_rng(rng.getrandbits(64))
    plan = []  # (grid, point, floors, households, rental units)
    for grid in grids:
        urban = grid.village_name.endswith("社区")
        for p in random_points(grid.polygon, rng.randint(low, high), gen):
            floors = rng.randint(6, 33) if urban and rng.random() < 0.4 else rng.randint(2, 8)
            households = floors * rng.randint(1, 4)
            rentals = min(households, rng.choice((0, 0, 1, 1, 2, 2, 3, 4, 6)))
            plan.append((grid, p, floors, households, rentals))
    # Certify exactly the published number of rental units, spread at random over all of them.
    offsets = np.cumsum([0] + [r for *_, r in plan])
    wanted = min(scale.safe_rental_units, int(offsets[-1]))
    chosen = np.sort(gen.choice(int(offsets[-1]), size=wanted, replace=False))
    safe = np.bincount(np.searchsorted(offsets, chosen, side="right") - 1, minlength=len(plan))

    def rows() -> Iterator[Sequence[Any]]:
        lanes: dict[str, int] = {}
        for planned, certified in zip(plan, safe.tolist(), strict=True):
            grid, p, floors, households, rentals = planned
            lanes[grid.code] = lanes.get(grid.code, 0) + 1
            number = lanes[grid.code]
            groups = building_groups[grid.code]
            group = groups[number % len(groups)] if groups else None
            access = rng.random() < (0.85 if rentals else 0.3)
            point = _ewkt(p.x, p.y)
            address = f"{grid.village_name}{number // 10 + 1}巷{number}号"
            yield (
                f"{number}栋",
                address,
                point,
                point,
                "contains",
                floors,
                households,
                rentals,
                certified,
                access,
                _name(rng),
                _phone(rng),
                group,
                created_at,
                created_at,
                *_codes(grid.code),
            )

    made = _copy(
        session,
        "buildings",
        (
            "name",
            "address",
            "geom",
            "location",
            "assignment",
            "floors",
            "households",
            "rental_units",
            "safe_rental_units",
            "access_control",
            "head_name",
            "head_phone",
            "party_group_id",
            "created_at",
            "updated_at",
            "grid_code",
            "village_code",
            "town_code",
            "district_code",
        ),
        rows(),
    )
    return {"buildings": made, "safe_rental_units": int(safe.sum())}
