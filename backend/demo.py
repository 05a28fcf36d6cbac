"""Demo and benchmark data: the generated area trees of Conghua and Guangzhou."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.orm import Session

from backend.areas import service as areas
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
