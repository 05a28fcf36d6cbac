"""Demo and benchmark data: the generated area trees of Conghua and Guangzhou, demo logins."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth import service as auth
from backend.auth.models import ApiKey, User
from backend.config import Settings
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


DEMO_ACCOUNTS = (
    DemoAccount("admin", "wangge-admin", "admin", "系统管理员 Administrator"),
    DemoAccount("wenquan", "wangge-demo", "supervisor", "温泉镇综治中心 Wenquan centre", "440117103"),
    DemoAccount("worker", "wangge-demo", "worker", "网格员 Grid worker", "440117103", grids=2),
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
                session, settings, username=account.username, password=account.password,
                display_name=account.display_name, role=account.role,
                area_code=account.area_code if account.role == "supervisor" else None,
                worker_kind="full_time" if account.role == "worker" else None,
            )
            if account.grids:
                grids = areas.list_areas(session, level="grid", limit=account.grids,
                                         after_code=account.area_code)
                auth.set_user_grids(session, user.id, [g.code for g in grids])
        scope = f" scope {account.area_code}" if account.area_code else ""
        lines.append(f"{account.role:<10} {account.username} / {account.password}{scope}")
    prefix, secret = DEMO_API_KEY
    if session.scalars(select(ApiKey).where(ApiKey.prefix == prefix)).first() is None:
        auth.create_api_key(session, name="demo GIS key", area_code="440117", prefix=prefix, secret=secret)
    lines.append(f"{'gis key':<10} X-API-Key: {auth.API_KEY_PREFIX}_{prefix}_{secret} scope 440117")
    return lines


def load_org(session: Session, scale: str = "conghua") -> dict[str, int] | None:
    """Branches, groups, buildings, emergency units and 90 days of check-ins over the loaded
    grids (seeded); None when organisation data exists already."""
    from backend.org import demo as org_demo

    return org_demo.load_org(session, org_demo.SCALES[scale])
