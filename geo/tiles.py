"""Web Mercator tile arithmetic (the XYZ scheme of web maps): which tile holds a point."""

from __future__ import annotations

import math

MAX_LATITUDE = 85.0511287798066


def tile_of(lon: float, lat: float, zoom: int) -> tuple[int, int]:
    """The x and y of the tile at `zoom` that holds the WGS84 point (y counts down from north)."""
    if zoom < 0:
        raise ValueError("zoom must not be negative")
    n = 1 << zoom
    lat = max(-MAX_LATITUDE, min(MAX_LATITUDE, lat))
    x = int((lon + 180.0) / 360.0 * n)
    radians = math.radians(lat)
    y = int((1.0 - math.asinh(math.tan(radians)) / math.pi) / 2.0 * n)
    return min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def tile_bounds(x: int, y: int, zoom: int) -> tuple[float, float, float, float]:
    """The WGS84 box (west, south, east, north) of a tile."""
    n = 1 << zoom
    if not (0 <= x < n and 0 <= y < n):
        raise ValueError(f"tile {zoom}/{x}/{y} does not exist")

    def lat(row: int) -> float:
        return math.degrees(math.atan(math.sinh(math.pi * (1 - 2 * row / n))))

    return x / n * 360.0 - 180.0, lat(y + 1), (x + 1) / n * 360.0 - 180.0, lat(y)
