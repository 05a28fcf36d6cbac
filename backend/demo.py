"""Demo and benchmark data: the generated area trees of Conghua and Guangzhou, demo logins and
the workers and supervisors the demo history names."""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

from sqlalchemy import CursorResult, func, insert, select, text
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth import service as auth
from backend.auth.models import ApiKey, User, UserGrid
from backend.config import Settings
from backend.events import partitions
from geo import areatree
from geo.crs import transform_geometry

CONGHUA_OUTLINE = "conghua-district-gcj02.geojson"
GUANGZHOU_OUTLINES = "guangzhou-districts-gcj02.geojson"
GUANGZHOU_TOWNS = "guangzhou-towns.csv"


def conghua_specs(data_dir: Path, outline_file: Path | None = None) -> list[areatree.AreaSpec]:
    """Conghua from the real outline when one is at hand, else a synthetic one (GCJ-02)."""
    path = outline_file or data_dir / CONGHUA_OUTLINE
    outline = None
    if path.exists():
        outline = areatree.read_outline_geojson(path)[0][2]
    return areatree.conghua(outline)


def guangzhou_specs(data_dir: Path) -> list[areatree.AreaSpec]:
    """Guangzhou at full scale from the public files when present, else synthetic (GCJ-02)."""
    outlines = data_dir / GUANGZHOU_OUTLINES
    towns = data_dir / GUANGZHOU_TOWNS
    return areatree.guangzhou(
        areatree.read_outline_geojson(outlines) if outlines.exists() else None,
        areatree.read_towns_csv(towns) if towns.exists() else None,
    )


def load_areas(session: Session, specs: list[areatree.AreaSpec], crs: str = "gcj02") -> int:
    """Insert generated areas, converted to WGS84; returns how many."""
    return areas.insert_trusted(
        session,
        [
            {
                "code": spec.code,
                "level": spec.level,
                "name": spec.name,
                "parent_code": spec.parent_code,
                "kind": spec.kind,
                "geometry": transform_geometry(spec.geometry, crs),
            }
            for spec in specs
        ],
    )


@dataclass(frozen=True)
class DemoAccount:
    username: str
    password: str
    role: str
    display_name: str
    area_code: str | None = None
    grids: int = 0  # how many grids of the area a worker walks


DEMO_PASSWORD = "wangge-demo"
DEMO_ACCOUNTS = (
    DemoAccount("admin", "wangge-admin", "admin", "系统管理员 Administrator"),
    DemoAccount("wenquan", DEMO_PASSWORD, "supervisor", "温泉镇综治中心 Wenquan centre", "440117103"),
    DemoAccount("worker", DEMO_PASSWORD, "worker", "网格员 Grid worker", "440117103", grids=2),
)
# Demo only: a fixed, published key so the docs can show a GIS client working.
DEMO_API_KEY = ("demogis1", "conghua-demo-gis-key-not-secret")


def load_accounts(session: Session, settings: Settings) -> list[str]:
    """Create the demo logins and GIS key if missing; return lines describing them."""
    lines = []
    for account in DEMO_ACCOUNTS:
        existing = session.scalars(select(User).where(User.username == account.username)).first()
        if existing is None:
            user = auth.create_user(
                session,
                settings,
                username=account.username,
                password=account.password,
                display_name=account.display_name,
                role=account.role,
                area_code=account.area_code if account.role == "supervisor" else None,
                worker_kind="full_time" if account.role == "worker" else None,
            )
            if account.grids:
                grids = areas.list_areas(
                    session, level="grid", limit=account.grids, after_code=account.area_code
                )
                auth.set_user_grids(session, user.id, [g.code for g in grids])
        scope = f" scope {account.area_code}" if account.area_code else ""
        lines.append(f"{account.role:<10} {account.username} / {account.password}{scope}")
    prefix, secret = DEMO_API_KEY
    if session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first() is None:
        auth.create_api_key(session, name="demo GIS key", area_code="440117", prefix=prefix, secret=secret)
    lines.append(f"{'gis key':<10} X-API-Key: {auth.API_KEY_PREFIX}_{prefix}_{secret} scope 440117")
    workers, supervisors = session.execute(_STAFF_COUNTS).one()
    if workers or supervisors:
        lines.append(
            f"{'staff':<10} {workers:,} worker-<grid code>-<n> and {supervisors:,} centre-<area code>"
            f" / {DEMO_PASSWORD}"
        )
    return lines


# The people the demo history names: a full-time and a part-time worker in every grid, and a
# supervisor for every governance centre (district, town and village: Conghua's 286 centres).
WORKERS_PER_GRID = 2
STAFF_SEED = 20240601
_STAFF_COUNTS = text(
    "SELECT count(*) FILTER (WHERE role = 'worker' AND username LIKE 'worker-%'),"
    " count(*) FILTER (WHERE role = 'supervisor' AND username LIKE 'centre-%') FROM users"
)
_CENTRES_WITHOUT_SUPERVISOR = text(
    "SELECT a.code, a.name FROM areas a"
    " WHERE a.valid_to IS NULL AND a.level IN ('district', 'town', 'village') AND NOT EXISTS"
    "  (SELECT 1 FROM users u WHERE u.role = 'supervisor' AND NOT u.disabled AND u.area_code = a.code)"
    " ORDER BY a.code"
)
_GRIDS_AND_WORKERS = text(
    "SELECT a.code, a.name, count(u.id) AS workers FROM areas a"
    " LEFT JOIN user_grids g ON g.grid_code = a.code"
    " LEFT JOIN users u ON u.id = g.user_id AND u.role = 'worker' AND NOT u.disabled"
    " WHERE a.valid_to IS NULL AND a.level = 'grid' GROUP BY a.code, a.name ORDER BY a.code"
)


def _free_username(candidates: Iterable[str], taken: set[str]) -> str:
    username = next(c for c in candidates if c not in taken)
    taken.add(username)
    return username


def _person_name(username: str) -> str:
    """A seeded Chinese name, the same for the same username whatever else exists."""
    from backend.org.demo import GIVEN, SURNAMES

    rng = random.Random(f"{STAFF_SEED}:{username}")
    return rng.choice(SURNAMES) + "".join(rng.choice(GIVEN) for _ in range(rng.choice((1, 2))))


def load_staff(
    session: Session, settings: Settings, *, workers_per_grid: int = WORKERS_PER_GRID
) -> tuple[int, int]:
    """Create the demo's people where missing: the demo logins, a supervisor for every centre
    without one, and workers until every current grid has `workers_per_grid`; returns how many
    supervisors and workers were made. A second run makes none.

    They sign in with the demo password, hashed once: thousands of accounts take a moment.
    """
    load_accounts(session, settings)
    taken = set(session.scalars(select(func.lower(User.username))))
    rows: list[dict[str, object]] = []
    grid_of: list[str | None] = []
    for code, name in session.execute(_CENTRES_WITHOUT_SUPERVISOR):
        username = _free_username(
            itertools.chain([f"centre-{code}"], (f"centre-{code}-{n}" for n in itertools.count(2))), taken
        )
        rows.append(
            {
                "username": username,
                "display_name": f"{name}综治中心 {_person_name(username)}"[:100],
                "role": "supervisor",
                "area_code": code,
                "worker_kind": None,
            }
        )
        grid_of.append(None)
    supervisors = len(rows)
    for code, name, present in session.execute(_GRIDS_AND_WORKERS):
        for k in range(present, workers_per_grid):
            username = _free_username((f"worker-{code}-{n}" for n in itertools.count(k + 1)), taken)
            rows.append(
                {
                    "username": username,
                    "display_name": f"{name}网格员 {_person_name(username)}"[:100],
                    "role": "worker",
                    "area_code": None,
                    "worker_kind": "full_time" if k == 0 else "part_time",
                }
            )
            grid_of.append(code)
    if rows:
        password_hash = auth.hash_password(settings, DEMO_PASSWORD)
        for row in rows:
            row["password_hash"] = password_hash
        ids = session.scalars(insert(User).returning(User.id, sort_by_parameter_order=True), rows).all()
        assignments = [
            {"user_id": user_id, "grid_code": code}
            for user_id, code in zip(ids, grid_of, strict=True)
            if code is not None
        ]
        if assignments:
            session.execute(insert(UserGrid), assignments)
    return supervisors, len(rows) - supervisors


def load_org(session: Session, scale: str = "conghua") -> dict[str, int] | None:
    """Branches, groups, buildings, emergency units and 90 days of check-ins over the loaded
    grids (seeded); None when organisation data exists already."""
    from backend.org import demo as org_demo

    return org_demo.load_org(session, org_demo.SCALES[scale])


# Synthetic events for benchmarks and GIS tests: each at a seeded random point inside a current
# grid (grids taken round-robin by a stride, so every grid gets its share), categories and
# statuses in turn, received one a minute back from a fixed moment. Every third one names a
# contact and each is reported by a worker of its grid when it has one, so tests can check that
# personal data never leaks.
_SYNTHETIC_EVENTS = text(
    """
    WITH grids AS (
        SELECT row_number() OVER (ORDER BY code) - 1 AS n, id, code, geom FROM areas
        WHERE level = 'grid' AND valid_to IS NULL AND code LIKE :prefix || '%'
    ), total AS (SELECT count(*) AS c FROM grids),
    cats AS (SELECT array_agg(code ORDER BY code) AS codes FROM categories),
    picked AS (
        SELECT i, g.id AS boundary_id, g.code,
               ST_GeometryN(ST_GeneratePoints(g.geom, 1, :seed + i), 1) AS pt,
               (SELECT min(w.user_id) FROM user_grids w WHERE w.grid_code = g.code) AS reporter_id
        FROM generate_series(0, :count - 1) AS i
        JOIN total ON total.c > 0
        JOIN grids g ON g.n = (i::bigint * 7919) % total.c
    )
    INSERT INTO events (id, category_code, description, location, crs, source_lon, source_lat,
                        received_at, reported_at, reporter_id, grid_code, village_code, town_code,
                        district_code, assignment, boundary_id, responsible_code, status,
                        contacts, content_hash, updated_at)
    SELECT md5(:seed || ':' || i)::uuid,
           cats.codes[1 + i % array_length(cats.codes, 1)],
           '合成事件 ' || i, pt, 'wgs84', ST_X(pt), ST_Y(pt),
           :start - make_interval(mins => i), :start - make_interval(mins => i),
           reporter_id, code, left(code, 12), left(code, 9), left(code, 6),
           'contains', boundary_id, left(code, 12),
           (ARRAY['reported', 'accepted', 'dispatched', 'in_progress', 'resolved', 'closed'])
               [1 + i % 6],
           CASE WHEN i % 3 = 0
                THEN jsonb_build_array(jsonb_build_object('name', '张三', 'phone', '13800000000'))
           END,
           'synthetic:' || :seed || ':' || i, :start - make_interval(mins => i)
    FROM picked, cats
    """
)


def insert_synthetic_events(
    session: Session,
    count: int,
    *,
    seed: int = 1,
    prefix: str = "",
    start: datetime | None = None,
) -> int:
    """Insert `count` synthetic events in the grids under `prefix`; returns how many were new
    (an id stored already is skipped by its claim, so a second run adds nothing)."""
    start = start or datetime(2026, 1, 1, tzinfo=UTC)
    # Their months' partitions first, so they do not all land in the default one.
    partitions.create_partitions(
        session, partitions.month_of(start - timedelta(minutes=count)), partitions.month_of(start)
    )
    # An INSERT's result is a CursorResult, which has the row count.
    result = cast(
        CursorResult[Any],
        session.execute(_SYNTHETIC_EVENTS, {"count": count, "seed": seed, "prefix": prefix, "start": start}),
    )
    return result.rowcount or 0
