"""Small, exact area trees and reports for tests (flush, never commit)."""

from __future__ import annotations

from typing import Any

from shapely.geometry import box, mapping
from sqlalchemy.orm import Session

from backend.areas import service as areas
from geo.validate import to_multipolygon

# A 0.4 x 0.2 degree district near Hangzhou, far from the Conghua demo tree, split in halves down
# to 8 grids: towns 0.2 wide, villages 0.1 wide, grids 0.1 x 0.1.
DISTRICT = "330100"
WEST, SOUTH, EAST, NORTH = 120.0, 30.0, 120.4, 30.2


def square_tree() -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = [_row(DISTRICT, "测试区", None, box(WEST, SOUTH, EAST, NORTH))]
    for t in range(2):
        town = f"{DISTRICT}{t + 1:03d}"
        x0 = WEST + 0.2 * t
        rows.append(_row(town, f"测试镇{t + 1}", DISTRICT, box(x0, SOUTH, x0 + 0.2, NORTH)))
        for v in range(2):
            village = f"{town}{v + 1:03d}"
            vx = x0 + 0.1 * v
            rows.append(_row(village, f"测试村{t + 1}{v + 1}", town, box(vx, SOUTH, vx + 0.1, NORTH)))
            for g in range(2):
                grid = f"{village}{g + 1:03d}"
                gy = SOUTH + 0.1 * g
                rows.append(
                    _row(
                        grid,
                        f"测试村{t + 1}{v + 1}第{g + 1}网格",
                        village,
                        box(vx, gy, vx + 0.1, gy + 0.1),
                        kind="comprehensive",
                    )
                )
    return rows


def _row(code: str, name: str, parent: str | None, geometry: Any, kind: str | None = None) -> dict[str, Any]:
    return {
        "code": code,
        "level": areas.level_of(code),
        "name": name,
        "parent_code": parent,
        "kind": kind,
        "geometry": to_multipolygon(geometry),
    }


def add_square_tree(session: Session) -> None:
    areas.insert_trusted(session, square_tree())
    session.flush()


def polygon(west: float, south: float, east: float, north: float) -> dict[str, Any]:
    return dict(mapping(box(west, south, east, north)))


def report(lon: float, lat: float, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "category": "environment",
        "description": "路边垃圾堆积",
        "location": {"type": "Point", "coordinates": [lon, lat]},
        "crs": "wgs84",
    }
    body.update(extra)
    return body
