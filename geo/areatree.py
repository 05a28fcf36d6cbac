"""Generate the area tree (district > town > village > grid) by seeded Voronoi splitting.

Town, village and grid polygons are not public, so they are made up: each parent is split into
the Voronoi cells of seeded points clipped to the parent, which gives real codes and names where
the data is real (districts, towns) and plausible synthetic ones below. The same seed gives the
same tree.

Pure (Shapely, numpy and the standard library). No CRS conversion happens here: the module works
in the coordinates it is given (the demo files are GCJ-02); the caller converts the output with
geo.crs.
"""

from __future__ import annotations

import csv
import json
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TypeAlias

import numpy as np
import shapely
from numpy.typing import NDArray
from shapely.geometry import (
    GeometryCollection,
    MultiPoint,
    MultiPolygon,
    Point,
    Polygon,
    box,
    shape,
)
from shapely.geometry.base import BaseGeometry

__all__ = [
    "CONGHUA_TOWNS",
    "DEDICATED_KINDS",
    "GUANGZHOU_DISTRICTS",
    "LEVELS",
    "AreaSpec",
    "build_district",
    "conghua",
    "guangzhou",
    "partition",
    "random_points",
    "read_outline_geojson",
    "read_towns_csv",
    "synthetic_outline",
]

Rng: TypeAlias = random.Random | np.random.Generator
Outline: TypeAlias = Polygon | MultiPolygon
SeedPoint: TypeAlias = Point | tuple[float, float]
Coords: TypeAlias = NDArray[np.float64]

LEVELS: Final = ("district", "town", "village", "grid")
CODE_LENGTHS: Final = {"district": 6, "town": 9, "village": 12, "grid": 15}

# (code, name, seed point inside the town, GCJ-02 lon/lat) from data/conghua-town-seeds.csv.
CONGHUA_TOWNS: Final[tuple[tuple[str, str, tuple[float, float]], ...]] = (
    ("440117001", "街口街道", (113.585, 23.548)),
    ("440117002", "江埔街道", (113.600, 23.500)),
    ("440117003", "城郊街道", (113.550, 23.575)),
    ("440117103", "温泉镇", (113.640, 23.650)),
    ("440117104", "良口镇", (113.730, 23.730)),
    ("440117107", "吕田镇", (113.920, 23.820)),
    ("440117111", "太平镇", (113.500, 23.450)),
    ("440117113", "鳌头镇", (113.380, 23.620)),
)
CONGHUA_CODE: Final = "440117"
CONGHUA_NAME: Final = "从化区"
CONGHUA_VILLAGES: Final = 277
CONGHUA_GRIDS: Final = 865

# Guangzhou's districts with approximate GCJ-02 points inside each (one or more per district), used
# only when no real outlines are given: the synthetic districts are unions of the Voronoi cells of
# these points, so their sizes and positions are roughly right.
GUANGZHOU_DISTRICTS: Final[tuple[tuple[str, str, tuple[tuple[float, float], ...]], ...]] = (
    ("440103", "荔湾区", ((113.228, 23.088),)),
    ("440104", "越秀区", ((113.281, 23.133),)),
    ("440105", "海珠区", ((113.327, 23.082),)),
    ("440106", "天河区", ((113.376, 23.160),)),
    ("440111", "白云区", ((113.300, 23.250), (113.380, 23.360), (113.285, 23.200))),
    ("440112", "黄埔区", ((113.490, 23.150), (113.520, 23.320))),
    ("440113", "番禺区", ((113.400, 22.970),)),
    ("440114", "花都区", ((113.100, 23.400), (113.300, 23.480))),
    ("440115", "南沙区", ((113.560, 22.760), (113.600, 22.610))),
    ("440117", "从化区", ((113.550, 23.560), (113.800, 23.780), (113.400, 23.650))),
    ("440118", "增城区", ((113.740, 23.250), (113.850, 23.470))),
)
# A coarse trace of Guangzhou's outline (GCJ-02), warped by seeded noise for the synthetic city.
_GUANGZHOU_SKETCH: Final = (
    (112.96, 23.43),
    (113.19, 23.52),
    (113.38, 23.73),
    (113.60, 23.67),
    (113.62, 23.79),
    (113.71, 23.86),
    (114.03, 23.92),
    (114.06, 23.78),
    (113.82, 23.64),
    (113.98, 23.47),
    (114.00, 23.30),
    (113.90, 23.35),
    (113.90, 23.17),
    (113.84, 23.12),
    (113.72, 23.14),
    (113.52, 23.04),
    (113.74, 22.53),
    (113.65, 22.52),
    (113.31, 22.83),
    (113.25, 23.04),
    (113.18, 23.07),
    (113.18, 23.27),
    (113.13, 23.31),
    (113.05, 23.25),
)
GUANGZHOU_VILLAGES: Final = 2800
GUANGZHOU_GRIDS: Final = 19660
GUANGZHOU_SYNTHETIC_TOWNS: Final = 176

DEDICATED_KINDS: Final = ("市场", "学校", "公园", "工业园")
DEDICATED_SHARE: Final = 0.1
MIN_VILLAGES_PER_TOWN: Final = 3
MIN_GRIDS_PER_VILLAGE: Final = 1
_MIN_SYNTHETIC_TOWNS_PER_DISTRICT: Final = 4

# Name parts: a prefix and a suffix make names like 石岗村, 新和社区, 龙田镇.
_NAME_PREFIXES: Final = "东西南北新大小上下石龙凤黄白青高长横联安平兴金银松竹桂梅莲荷马鹤太光明福"
_NAME_SUFFIXES: Final = "岗塘田坑围坪头岭湖洲溪桥江山水林和安丰兴华星阳庄埔岭冈背湾口沙"
_STREET_SUFFIX: Final = "街道"

_MAX_SPLIT_ATTEMPTS: Final = 25
_SPREAD_CANDIDATES: Final = 4


@dataclass(frozen=True)
class AreaSpec:
    """One generated area: a node of the district > town > village > grid tree."""

    code: str
    level: str  # "district" | "town" | "village" | "grid"
    name: str
    parent_code: str | None
    geometry: MultiPolygon
    kind: str | None = None  # grids only: "comprehensive" (综合网格) or "dedicated" (专属网格)


# --- geometry helpers -------------------------------------------------------------------------


def _polygon_parts(geom: BaseGeometry) -> list[Polygon]:
    """Return the non-empty polygons inside geom, recursing into collections."""
    if isinstance(geom, Polygon):
        return [geom] if not geom.is_empty and geom.area > 0 else []
    if isinstance(geom, (MultiPolygon, GeometryCollection)):
        return [part for sub in geom.geoms for part in _polygon_parts(sub)]
    return []


def _as_multipolygon(geom: BaseGeometry) -> MultiPolygon:
    """Return the valid polygonal parts of geom as one MultiPolygon (empty when there are none)."""
    if not geom.is_valid:
        geom = shapely.make_valid(geom)
    if isinstance(geom, MultiPolygon) and all(p.area > 0 for p in geom.geoms):
        return geom
    return MultiPolygon(_polygon_parts(geom))


def _numpy_rng(rng: Rng) -> np.random.Generator:
    """Return a numpy Generator drawing from rng (a random.Random is consumed for a seed)."""
    if isinstance(rng, np.random.Generator):
        return rng
    return np.random.default_rng(rng.getrandbits(128))


def _xy(point: SeedPoint) -> tuple[float, float]:
    if isinstance(point, Point):
        return (float(point.x), float(point.y))
    return (float(point[0]), float(point[1]))


def _partition_xy(outline: BaseGeometry, coords: Coords) -> list[MultiPolygon]:
    """Split outline into the Voronoi cells of coords (n x 2), one per row, in row order."""
    n = len(coords)
    if n == 0:
        return []
    if len(np.unique(coords, axis=0)) != n:
        raise ValueError("partition seeds must be distinct")
    if n == 1:
        return [_as_multipolygon(outline)]
    ominx, ominy, omaxx, omaxy = outline.bounds
    minx = min(ominx, float(coords[:, 0].min()))
    miny = min(ominy, float(coords[:, 1].min()))
    maxx = max(omaxx, float(coords[:, 0].max()))
    maxy = max(omaxy, float(coords[:, 1].max()))
    pad = max(maxx - minx, maxy - miny, 1e-9)
    extent = box(minx - pad, miny - pad, maxx + pad, maxy + pad)
    diagram = shapely.voronoi_polygons(MultiPoint(coords), extend_to=extent, ordered=True)
    cells = shapely.get_parts(diagram)
    if len(cells) != n:  # pragma: no cover - GEOS returns one cell per distinct site
        raise RuntimeError(f"Voronoi diagram has {len(cells)} cells for {n} seeds")
    clipped = shapely.intersection(cells, outline)
    return [_as_multipolygon(g) for g in clipped]


def partition(outline: Outline, seeds: Sequence[Point]) -> list[MultiPolygon]:
    """Split outline into the Voronoi cells of seeds clipped to it: one MultiPolygon per seed.

    Cells come in seed order and cover the outline without gaps or overlaps (up to floating
    error); a seed inside the outline lies in its own cell. Seeds must be distinct. A cell may
    have several parts where the outline is concave or has islands; only polygonal parts are
    kept (a seed outside the outline may get an empty cell).
    """
    coords = np.array([_xy(p) for p in seeds], dtype=np.float64).reshape(-1, 2)
    return _partition_xy(outline, coords)


def _random_xy(polygon: BaseGeometry, n: int, gen: np.random.Generator) -> Coords:
    """Draw n distinct points strictly inside polygon (rejection sampling on its bounding box)."""
    if n <= 0:
        return np.empty((0, 2), dtype=np.float64)
    if polygon.is_empty or polygon.area <= 0:
        raise ValueError("cannot draw points inside an empty or zero-area geometry")
    minx, miny, maxx, maxy = polygon.bounds
    fill = polygon.area / max((maxx - minx) * (maxy - miny), 1e-300)
    shapely.prepare(polygon)
    found = np.empty((0, 2), dtype=np.float64)
    for _ in range(1000):
        missing = n - len(found)
        batch = min(int(missing / fill * 1.3) + 16, 1_000_000)
        xs = gen.uniform(minx, maxx, batch)
        ys = gen.uniform(miny, maxy, batch)
        inside = shapely.contains_xy(polygon, xs, ys)
        found = np.concatenate([found, np.column_stack([xs[inside], ys[inside]])])
        if len(found) >= n:
            _, first = np.unique(found, axis=0, return_index=True)
            found = found[np.sort(first)]  # drop repeats, keep draw order
            if len(found) >= n:
                return found[:n]
    raise RuntimeError("rejection sampling did not find enough points")  # pragma: no cover


def random_points(polygon: Outline, n: int, rng: Rng) -> list[Point]:
    """Return n distinct seeded random points strictly inside polygon."""
    coords = _random_xy(polygon, n, _numpy_rng(rng))
    return [Point(x, y) for x, y in coords.tolist()]


def _spread_xy(
    polygon: BaseGeometry, n: int, gen: np.random.Generator, fixed: Coords | None = None
) -> Coords:
    """Draw n points inside polygon, each the best of a few candidates (Mitchell's sampling).

    Taking the candidate farthest from the points already placed (including fixed ones) spreads the
    points out, so Voronoi cells vary in size less wildly than for plain uniform points.
    """
    if n <= 0:
        return np.empty((0, 2), dtype=np.float64)
    k = _SPREAD_CANDIDATES
    candidates = _random_xy(polygon, n * k, gen).reshape(n, k, 2)
    chosen = np.empty((n, 2), dtype=np.float64)
    flat = candidates.reshape(-1, 2)
    nearest = np.full(n * k, np.inf)
    if fixed is not None and len(fixed):
        for p in fixed:
            nearest = np.minimum(nearest, np.hypot(flat[:, 0] - p[0], flat[:, 1] - p[1]))
    for i in range(n):
        group = nearest[i * k : (i + 1) * k]
        j = 0 if not np.isfinite(group).any() else int(np.argmax(group))
        chosen[i] = candidates[i, j]
        distance = np.hypot(flat[:, 0] - chosen[i, 0], flat[:, 1] - chosen[i, 1])
        nearest = np.minimum(nearest, distance)
    return chosen


def _split(
    parent: MultiPolygon,
    n: int,
    gen: np.random.Generator,
    fixed: Mapping[int, tuple[float, float]] | None = None,
) -> tuple[Coords, list[MultiPolygon]]:
    """Split parent into n non-empty cells around seeded points; fixed[i] pins seed i."""
    fixed = dict(fixed or {})
    free = [i for i in range(n) if i not in fixed]
    fixed_xy = np.array([fixed[i] for i in sorted(fixed)], dtype=np.float64).reshape(-1, 2)
    for _ in range(_MAX_SPLIT_ATTEMPTS):
        seeds = np.empty((n, 2), dtype=np.float64)
        for i, xy in fixed.items():
            seeds[i] = xy
        seeds[free] = _spread_xy(parent, len(free), gen, fixed_xy)
        if len(np.unique(seeds, axis=0)) != n:
            continue
        cells = _partition_xy(parent, seeds)
        if all(not c.is_empty for c in cells) and bool(
            np.all(shapely.intersects_xy(np.array(cells, dtype=object), seeds[:, 0], seeds[:, 1]))
        ):
            return seeds, cells
    raise RuntimeError(f"could not split an area into {n} non-empty cells")


def synthetic_outline(seeds: Sequence[tuple[float, float]], rng: Rng, margin_deg: float = 0.08) -> Polygon:
    """Return an irregular, valid outline containing every seed at least margin_deg from its edge.

    The convex hull of the seeds is buffered, then each boundary vertex is pushed along the ray from
    the centre by smooth seeded noise (a random Fourier series), which keeps the ring simple.
    """
    if margin_deg <= 0:
        raise ValueError("margin_deg must be positive")
    pts = np.asarray(seeds, dtype=np.float64).reshape(-1, 2)
    if len(pts) == 0:
        raise ValueError("synthetic_outline needs at least one seed")
    gen = _numpy_rng(rng)
    hull = MultiPoint(pts).convex_hull
    core = hull.buffer(margin_deg, quad_segs=16)  # what the outline must contain
    base = hull.buffer(margin_deg * 1.6, quad_segs=16)
    assert isinstance(base, Polygon)
    cx, cy = base.centroid.x, base.centroid.y
    vertices = 192
    fractions = np.arange(vertices) / vertices
    ring = shapely.get_coordinates(shapely.line_interpolate_point(base.exterior, fractions, normalized=True))
    dx, dy = ring[:, 0] - cx, ring[:, 1] - cy
    norm = np.hypot(dx, dy)
    ux, uy = dx / norm, dy / norm
    t = 2 * math.pi * fractions
    for _ in range(10):
        harmonics = np.arange(1, 25)
        amplitudes = gen.normal(0.0, 1.0, len(harmonics)) / harmonics**1.1
        phases = gen.uniform(0, 2 * math.pi, len(harmonics))
        noise = (amplitudes[:, None] * np.cos(harmonics[:, None] * t + phases[:, None])).sum(axis=0)
        noise /= max(float(np.abs(noise).max()), 1e-12)
        jitter = gen.uniform(-1.0, 1.0, vertices)
        shift = margin_deg * (0.45 * noise + 0.08 * jitter)  # |shift| <= 0.53 margin
        shift = np.maximum(shift, -0.9 * (norm - 1e-9))  # never past the centre
        coords = np.column_stack([ring[:, 0] + shift * ux, ring[:, 1] + shift * uy])
        outline = shapely.simplify(Polygon(coords), margin_deg * 0.02, preserve_topology=True)
        if isinstance(outline, Polygon) and outline.is_valid and outline.contains(core):
            return outline
    return base  # pragma: no cover - the noise is bounded well inside the buffer


def _smooth_shift(
    xy: Coords, gen: np.random.Generator, amplitude_deg: float, wavelength_deg: float
) -> Coords:
    """Return xy moved by a smooth seeded displacement field (three octaves of plane waves).

    The field's slope is kept below 1, so the map is one-to-one: a simple ring stays simple and a
    point inside it stays inside when moved by the same field (same gen state). No point moves by
    more than 2.5 x amplitude_deg.
    """
    shift = np.zeros_like(xy)
    octaves, waves = 3, 2  # waves per axis and octave
    for octave in range(octaves):
        amplitude = amplitude_deg / 2**octave / waves
        wavelength = wavelength_deg / 2**octave
        for axis in range(2):
            for _ in range(waves):
                angle = gen.uniform(0, 2 * math.pi)
                phase = gen.uniform(0, 2 * math.pi)
                along = xy[:, 0] * math.cos(angle) + xy[:, 1] * math.sin(angle)
                shift[:, axis] += amplitude * np.sin(2 * math.pi * along / wavelength + phase)
    # Bound the Jacobian's norm: an axis's gradient is at most the sum of 2 pi A / L of its waves.
    slope = math.sqrt(2) * octaves * 2 * math.pi * amplitude_deg / wavelength_deg
    return xy + shift * min(1.0, 0.9 / slope)


# --- allocation and names ---------------------------------------------------------------------


def _allocate(total: int, weights: Sequence[float], minimums: Sequence[int]) -> list[int]:
    """Give each item its minimum plus a share of the rest by weight (largest remainder)."""
    floor = np.asarray(minimums, dtype=np.int64)
    extra = total - int(floor.sum())
    if extra < 0:
        raise ValueError(f"{total} is less than the minimum total {int(floor.sum())}")
    w = np.asarray(weights, dtype=np.float64)
    w = w / w.sum() if w.sum() > 0 else np.full(len(w), 1.0 / len(w))
    quotas = extra * w
    shares = np.floor(quotas).astype(np.int64)
    left = extra - int(shares.sum())
    order = np.argsort(-(quotas - shares), kind="stable")
    shares[order[:left]] += 1
    return [int(v) for v in floor + shares]


def _name_stems(n: int, gen: np.random.Generator, taken: Iterable[str] = ()) -> list[str]:
    """Return n distinct two-character name stems (prefix + suffix), none of them in taken."""
    taken_set = set(taken)
    pool = [p + s for p in _NAME_PREFIXES for s in _NAME_SUFFIXES if p != s]
    pool = [stem for stem in dict.fromkeys(pool) if stem not in taken_set]
    if n > len(pool):
        raise ValueError(f"cannot make {n} distinct names (at most {len(pool)})")
    return [pool[int(i)] for i in gen.choice(len(pool), size=n, replace=False)]


def _village_numbers(n: int, communities: int) -> list[int]:
    """Return the 3-digit village numbers: communities (居委会) 001.., villages (村委会) 201.."""
    if n > 999:
        raise ValueError(f"a town can hold at most 999 villages, not {n}")
    rural = n - communities
    if rural > 799:
        return list(range(1, n + 1))
    return list(range(1, communities + 1)) + list(range(201, 201 + rural))


def _is_street(town_name: str) -> bool:
    return town_name.endswith(_STREET_SUFFIX)


def _check_code(code: str, level: str, parent: str | None) -> None:
    if len(code) != CODE_LENGTHS[level] or not code.isdigit():
        raise ValueError(f"{level} code {code!r} must be {CODE_LENGTHS[level]} digits")
    if parent is not None and not code.startswith(parent):
        raise ValueError(f"{level} code {code} does not start with its parent's code {parent}")


def _order_by_distance(seeds: Coords, centre: tuple[float, float]) -> NDArray[np.intp]:
    """Order seeds nearest-first from centre (ties by index), so the seat gets the first code."""
    return np.argsort(np.hypot(seeds[:, 0] - centre[0], seeds[:, 1] - centre[1]), kind="stable")


# --- the tree ---------------------------------------------------------------------------------


def build_district(
    code: str,
    name: str,
    outline: Outline,
    towns: Sequence[tuple[str, str, SeedPoint | None]],
    villages: int,
    grids: int,
    seed: int,
) -> list[AreaSpec]:
    """Generate one district's tree: the district, its towns, villages and grids, parents first.

    Town cells grow from the given seed points (seeded random points inside the outline for towns
    without one); villages are shared out by town area (at least 3 each) and grids by village area
    (at least 1 each); about one grid in ten is a dedicated grid (market, school, park, industrial
    park). Every level covers its parent without gaps or overlaps. Deterministic for a given seed.
    """
    _check_code(code, "district", None)
    if not towns:
        raise ValueError(f"district {code} needs at least one town")
    town_codes = [t[0] for t in towns]
    if len(set(town_codes)) != len(town_codes):
        raise ValueError(f"district {code} has duplicate town codes")
    for town_code, _, _ in towns:
        _check_code(town_code, "town", code)
    if villages < MIN_VILLAGES_PER_TOWN * len(towns):
        raise ValueError(f"{villages} villages cannot give {len(towns)} towns 3 each")
    if grids < villages * MIN_GRIDS_PER_VILLAGE:
        raise ValueError(f"{grids} grids cannot give {villages} villages one each")
    district_geom = _as_multipolygon(outline)
    if district_geom.is_empty:
        raise ValueError(f"district {code} outline has no area")
    gen = np.random.default_rng(seed)

    fixed: dict[int, tuple[float, float]] = {}
    for i, (town_code, _, point) in enumerate(towns):
        if point is not None:
            xy = _xy(point)
            if not shapely.contains_xy(district_geom, *xy):
                raise ValueError(f"seed point of town {town_code} {xy} is outside the outline")
            fixed[i] = xy
    town_seeds, town_cells = _split(district_geom, len(towns), gen, fixed)

    out: list[AreaSpec] = [AreaSpec(code, "district", name, None, district_geom)]
    out += [
        AreaSpec(town_code, "town", town_name, code, cell)
        for (town_code, town_name, _), cell in zip(towns, town_cells, strict=True)
    ]

    per_town = _allocate(villages, [c.area for c in town_cells], [MIN_VILLAGES_PER_TOWN] * len(towns))
    village_specs: list[AreaSpec] = []
    village_seeds: list[tuple[float, float]] = []
    for (town_code, town_name, _), town_geom, town_seed, count in zip(
        towns, town_cells, town_seeds, per_town, strict=True
    ):
        seeds, cells = _split(town_geom, count, gen)
        order = _order_by_distance(seeds, (float(town_seed[0]), float(town_seed[1])))
        street = _is_street(town_name)
        communities = count if street else max(1, count // 8)
        stems = _name_stems(count, gen)
        for rank, (idx, number) in enumerate(zip(order, _village_numbers(count, communities), strict=False)):
            suffix = "社区" if rank < communities else "村"
            village_specs.append(
                AreaSpec(
                    f"{town_code}{number:03d}",
                    "village",
                    stems[rank] + suffix,
                    town_code,
                    cells[int(idx)],
                )
            )
            village_seeds.append((float(seeds[idx, 0]), float(seeds[idx, 1])))
    out += village_specs

    per_village = _allocate(
        grids, [v.geometry.area for v in village_specs], [MIN_GRIDS_PER_VILLAGE] * villages
    )
    if max(per_village) > 999:
        raise ValueError("a village can hold at most 999 grids")
    # Dedicated grids: about one in ten, never a village's first grid, each kind once per village.
    candidates = [(v, j) for v, count in enumerate(per_village) for j in range(1, count)]
    n_dedicated = min(round(grids * DEDICATED_SHARE), len(candidates))
    draws = gen.choice(len(candidates), n_dedicated, replace=False)
    picked = sorted(candidates[int(i)] for i in draws)
    dedicated: dict[tuple[int, int], str] = {}
    kinds_left: dict[int, list[str]] = {}
    for v, j in picked:
        if v not in kinds_left:
            kinds_left[v] = [DEDICATED_KINDS[int(k)] for k in gen.permutation(len(DEDICATED_KINDS))]
        if kinds_left[v]:
            dedicated[(v, j)] = kinds_left[v].pop()

    for v, (village, village_seed, count) in enumerate(
        zip(village_specs, village_seeds, per_village, strict=True)
    ):
        seeds, cells = _split(village.geometry, count, gen)
        order = _order_by_distance(seeds, village_seed)
        ordinal = 0
        for j, idx in enumerate(order):
            grid_code = f"{village.code}{j + 1:03d}"
            kind = dedicated.get((v, j))
            if kind is None:
                ordinal += 1
                grid_name, grid_kind = f"{village.name}第{ordinal}网格", "comprehensive"
            else:
                grid_name, grid_kind = f"{village.name}{kind}专属网格", "dedicated"
            out.append(AreaSpec(grid_code, "grid", grid_name, village.code, cells[int(idx)], grid_kind))
    return out


def conghua(
    outline: Outline | None = None,
    seed: int = 440117,
    *,
    villages: int = CONGHUA_VILLAGES,
    grids: int = CONGHUA_GRIDS,
) -> list[AreaSpec]:
    """Generate 从化区 (Conghua): its 8 real towns, 277 villages and 865 grids, parents first.

    Without an outline a synthetic one is drawn around the town seed points.
    """
    if outline is None:
        outline = synthetic_outline([xy for _, _, xy in CONGHUA_TOWNS], np.random.default_rng((seed, 1)))
    towns = [(code, name, Point(xy)) for code, name, xy in CONGHUA_TOWNS]
    return build_district(CONGHUA_CODE, CONGHUA_NAME, outline, towns, villages, grids, seed)


def _is_town_row(code: str) -> bool:
    """Tell town-level units from reservoirs and forest farms (codes ending 4xx, e.g. 440117404)."""
    return len(code) == 9 and code[6] != "4"


def _synthetic_guangzhou_districts(seed: int) -> list[tuple[str, str, MultiPolygon]]:
    """Return the 11 districts as Voronoi-made pieces of a synthetic Guangzhou outline."""
    sites = np.array([xy for _, _, points in GUANGZHOU_DISTRICTS for xy in points])
    sketch = shapely.segmentize(Polygon(_GUANGZHOU_SKETCH), 0.01)
    assert isinstance(sketch, Polygon)
    ring = np.asarray(sketch.exterior.coords)[:-1]
    # The same field moves the outline and the district sites, so the sites stay inside.
    gen = np.random.default_rng((seed, 2))
    moved = _smooth_shift(np.concatenate([ring, sites]), gen, 0.025, wavelength_deg=0.6)
    ring, sites = moved[: len(ring)], moved[len(ring) :]
    outline = shapely.simplify(Polygon(ring), 0.002, preserve_topology=True)
    if not (outline.is_valid and shapely.contains_xy(outline, sites[:, 0], sites[:, 1]).all()):
        raise RuntimeError("synthetic Guangzhou outline is invalid")  # pragma: no cover
    cells = _partition_xy(outline, sites)
    districts: list[tuple[str, str, MultiPolygon]] = []
    start = 0
    for code, name, points in GUANGZHOU_DISTRICTS:
        merged = shapely.union_all(np.array(cells[start : start + len(points)], dtype=object))
        districts.append((code, name, _as_multipolygon(merged)))
        start += len(points)
    return districts


def guangzhou(
    districts: Sequence[tuple[str, str, Outline]] | None = None,
    towns_csv_rows: Sequence[tuple[str, str, str]] | None = None,
    seed: int = 4401,
    *,
    villages: int = GUANGZHOU_VILLAGES,
    grids: int = GUANGZHOU_GRIDS,
) -> list[AreaSpec]:
    """Generate Guangzhou at full scale: 11 districts, their towns, ~2,800 villages, 19,660 grids.

    districts: (code, name, outline); None draws 11 synthetic adjacent districts with the real
    codes and names. towns_csv_rows: (town code, name, district code), e.g. from read_towns_csv;
    rows whose code ends in 4xx (reservoirs, forest farms) are left out; None (or a district
    without rows) gets synthetic towns (codes district + 001..). Villages and grids are shared out
    by district area. Returned level by level (all districts, then all towns, ...).
    """
    if districts is None:
        district_list: list[tuple[str, str, Outline]] = list(_synthetic_guangzhou_districts(seed))
    else:
        district_list = list(districts)
    if not district_list:
        raise ValueError("guangzhou needs at least one district")
    codes = [d[0] for d in district_list]
    if len(set(codes)) != len(codes):
        raise ValueError("duplicate district codes")
    geoms = [_as_multipolygon(outline) for _, _, outline in district_list]

    rows_by_district: dict[str, list[tuple[str, str]]] = {code: [] for code in codes}
    for town_code, town_name, district_code in towns_csv_rows or []:
        if not _is_town_row(town_code):
            continue
        if district_code not in rows_by_district:
            raise ValueError(f"town {town_code} names unknown district {district_code}")
        rows_by_district[district_code].append((town_code, town_name))

    # Districts without rows get synthetic towns: ~176 over the city, shared out by area.
    missing = [i for i, code in enumerate(codes) if not rows_by_district[code]]
    gen = np.random.default_rng((seed, 3))
    if missing:
        target = max(
            GUANGZHOU_SYNTHETIC_TOWNS * len(missing) // 11,
            _MIN_SYNTHETIC_TOWNS_PER_DISTRICT * len(missing),
        )
        counts = _allocate(
            target,
            [geoms[i].area for i in missing],
            [_MIN_SYNTHETIC_TOWNS_PER_DISTRICT] * len(missing),
        )
        taken = {name[:2] for rows in rows_by_district.values() for _, name in rows}
        stems = _name_stems(sum(counts), gen, taken)
        for i, count in zip(missing, counts, strict=True):
            streets = (2 * count + 2) // 3
            rows_by_district[codes[i]] = [
                (f"{codes[i]}{k + 1:03d}", stems.pop() + ("街道" if k < streets else "镇"))
                for k in range(count)
            ]

    town_lists: list[list[tuple[str, str, SeedPoint | None]]] = []
    conghua_seeds = {code: xy for code, _, xy in CONGHUA_TOWNS}
    for code, geom in zip(codes, geoms, strict=True):
        rows = sorted(rows_by_district[code])
        known = [conghua_seeds.get(town_code) for town_code, _ in rows]
        usable = all(xy is None or bool(shapely.contains_xy(geom, *xy)) for xy in known)
        town_lists.append(
            [
                (town_code, town_name, xy if usable else None)
                for (town_code, town_name), xy in zip(rows, known, strict=True)
            ]
        )

    areas = [g.area for g in geoms]
    per_district_villages = _allocate(villages, areas, [MIN_VILLAGES_PER_TOWN * len(t) for t in town_lists])
    per_district_grids = _allocate(grids, areas, per_district_villages)
    specs: list[AreaSpec] = []
    for (code, name, _), geom, towns, n_villages, n_grids in zip(
        district_list, geoms, town_lists, per_district_villages, per_district_grids, strict=True
    ):
        district_seed = int(np.random.SeedSequence((seed, int(code))).generate_state(1)[0])
        specs += build_district(code, name, geom, towns, n_villages, n_grids, district_seed)
    rank = {level: i for i, level in enumerate(LEVELS)}
    return sorted(specs, key=lambda s: rank[s.level])


# --- loaders ----------------------------------------------------------------------------------


def read_outline_geojson(path: str | Path) -> list[tuple[str, str, MultiPolygon]]:
    """Read (adcode, name, outline) from a GeoJSON FeatureCollection, coordinates as-is."""
    with open(path, encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    features = doc["features"] if doc.get("type") == "FeatureCollection" else [doc]
    outlines: list[tuple[str, str, MultiPolygon]] = []
    for feature in features:
        props = feature.get("properties") or {}
        geom = _as_multipolygon(shape(feature["geometry"]))
        if geom.is_empty:
            raise ValueError(f"feature {props.get('adcode')} has no polygon")
        outlines.append((str(props["adcode"]), str(props["name"]), geom))
    return outlines


def read_towns_csv(path: str | Path) -> list[tuple[str, str, str]]:
    """Read (code, name, district_code) rows from a towns CSV such as data/guangzhou-towns.csv."""
    with open(path, encoding="utf-8", newline="") as f:
        return [
            (row["code"].strip(), row["name"].strip(), row["district_code"].strip())
            for row in csv.DictReader(f)
        ]
