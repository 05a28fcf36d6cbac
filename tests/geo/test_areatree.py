"""Tests for geo.areatree: the seeded district > town > village > grid generator (no database)."""

from __future__ import annotations

import json
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
import shapely
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import MultiPolygon, Point, Polygon, box

from geo.areatree import (
    CONGHUA_TOWNS,
    GUANGZHOU_DISTRICTS,
    LEVELS,
    AreaSpec,
    build_district,
    conghua,
    guangzhou,
    partition,
    random_points,
    read_outline_geojson,
    read_towns_csv,
    synthetic_outline,
)

DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
CONGHUA_GEOJSON = DATA / "conghua-district-gcj02.geojson"
GUANGZHOU_GEOJSON = DATA / "guangzhou-districts-gcj02.geojson"
GUANGZHOU_TOWNS_CSV = DATA / "guangzhou-towns.csv"

CODE_LENGTH = {"district": 6, "town": 9, "village": 12, "grid": 15}
REL = 1e-6


# --- helpers ------------------------------------------------------------------------------------


def children_by_parent(specs: Sequence[AreaSpec]) -> dict[str, list[AreaSpec]]:
    children: dict[str, list[AreaSpec]] = defaultdict(list)
    for spec in specs:
        if spec.parent_code is not None:
            children[spec.parent_code].append(spec)
    return children


def assert_well_formed(specs: Sequence[AreaSpec]) -> None:
    """Codes unique and nested, parents listed first, geometries valid non-empty MultiPolygons."""
    position = {spec.code: i for i, spec in enumerate(specs)}
    assert len(position) == len(specs), "duplicate codes"
    by_code = {spec.code: spec for spec in specs}
    for i, spec in enumerate(specs):
        assert spec.level in LEVELS
        assert spec.code.isdigit() and len(spec.code) == CODE_LENGTH[spec.level], spec.code
        assert isinstance(spec.geometry, MultiPolygon)
        assert not spec.geometry.is_empty and spec.geometry.is_valid, spec.code
        assert spec.name
        if spec.level == "district":
            assert spec.parent_code is None
        else:
            assert spec.parent_code is not None
            parent = by_code[spec.parent_code]
            assert LEVELS.index(parent.level) == LEVELS.index(spec.level) - 1
            assert spec.code.startswith(parent.code)
            assert position[parent.code] < i, "parents come before children"
        if spec.level == "grid":
            assert spec.kind in ("comprehensive", "dedicated")
        else:
            assert spec.kind is None


def assert_children_tile_parents(specs: Sequence[AreaSpec]) -> None:
    """Each level covers its parent: no gaps (union area) and no overlaps (sum of areas)."""
    by_code = {spec.code: spec for spec in specs}
    for parent_code, children in children_by_parent(specs).items():
        parent_area = by_code[parent_code].geometry.area
        geoms = np.array([c.geometry for c in children], dtype=object)
        union_area = shapely.union_all(geoms).area
        total_area = float(shapely.area(geoms).sum())
        assert union_area == pytest.approx(parent_area, rel=REL), f"gap under {parent_code}"
        assert total_area == pytest.approx(union_area, rel=REL), f"overlap under {parent_code}"


def assert_cells_tile(outline: Polygon | MultiPolygon, cells: Sequence[MultiPolygon]) -> None:
    geoms = np.array(cells, dtype=object)
    union_area = shapely.union_all(geoms).area
    assert union_area == pytest.approx(outline.area, rel=REL)
    assert float(shapely.area(geoms).sum()) == pytest.approx(union_area, rel=REL)


def fingerprint(specs: Sequence[AreaSpec]) -> list[tuple[str, str, str | None, str | None, bytes]]:
    return [(s.code, s.name, s.parent_code, s.kind, shapely.to_wkb(s.geometry)) for s in specs]


def conghua_outline() -> Polygon | MultiPolygon:
    """The real Conghua outline when the data file is present, else a synthetic stand-in."""
    if CONGHUA_GEOJSON.exists():
        [(code, name, outline)] = read_outline_geojson(CONGHUA_GEOJSON)
        assert (code, name) == ("440117", "从化区")
        return outline
    return synthetic_outline([xy for _, _, xy in CONGHUA_TOWNS], random.Random(7), margin_deg=0.1)


@pytest.fixture(scope="module")
def conghua_synthetic() -> list[AreaSpec]:
    return conghua()


@pytest.fixture(scope="module")
def conghua_from_outline() -> list[AreaSpec]:
    return conghua(conghua_outline())


@pytest.fixture(scope="module", params=["synthetic", "outline"])
def conghua_tree(
    request: pytest.FixtureRequest,
    conghua_synthetic: list[AreaSpec],
    conghua_from_outline: list[AreaSpec],
) -> list[AreaSpec]:
    return conghua_synthetic if request.param == "synthetic" else conghua_from_outline


# --- partition, random_points, synthetic_outline -------------------------------------------------


def test_partition_square_in_seed_order() -> None:
    square = box(0, 0, 10, 10)
    seeds = [Point(2, 2), Point(8, 2), Point(5, 8), Point(1, 9)]
    cells = partition(square, seeds)
    assert len(cells) == len(seeds)
    assert all(isinstance(c, MultiPolygon) and c.is_valid and not c.is_empty for c in cells)
    for seed, cell in zip(seeds, cells, strict=True):
        assert cell.contains(seed)
    assert_cells_tile(square, cells)


def test_partition_multipolygon_with_islands_and_hole() -> None:
    mainland = Polygon(box(0, 0, 10, 10).exterior, [box(4, 4, 6, 6).exterior])
    outline = MultiPolygon([mainland, box(12, 0, 13, 1), box(0, 12, 1, 13)])
    seeds = [Point(1, 1), Point(9, 9), Point(12.5, 0.5), Point(3, 7), Point(8, 2)]
    cells = partition(outline, seeds)
    assert_cells_tile(outline, cells)
    for seed, cell in zip(seeds, cells, strict=True):
        assert cell.contains(seed)
    # The far island is split off by the diagonal neighbour: a separate piece of some cell is fine.
    assert sum(len(c.geoms) for c in cells) >= len(cells) + 1


def test_partition_edge_cases() -> None:
    outline = box(0, 0, 1, 1)
    assert partition(outline, []) == []
    [only] = partition(outline, [Point(0.5, 0.5)])
    assert only.area == pytest.approx(1.0)
    with pytest.raises(ValueError, match="distinct"):
        partition(outline, [Point(0.2, 0.2), Point(0.2, 0.2)])


L_SHAPE = Polygon([(0, 0), (4, 0), (4, 1), (1, 1), (1, 4), (0, 4)])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 40))
def test_partition_property_tiles_concave_outline(seed: int, n: int) -> None:
    seeds = random_points(L_SHAPE, n, np.random.default_rng(seed))
    cells = partition(L_SHAPE, seeds)
    assert len(cells) == n
    assert_cells_tile(L_SHAPE, cells)
    for point, cell in zip(seeds, cells, strict=True):
        assert not cell.is_empty and cell.is_valid
        assert cell.intersects(point)


def test_random_points_are_inside_distinct_and_seeded() -> None:
    # A thin frame: most of the bounding box is rejected.
    ring = Polygon(box(0, 0, 10, 10).exterior, [box(1, 1, 9, 9).exterior])
    for make_rng in (lambda: random.Random(5), lambda: np.random.default_rng(5)):
        points = random_points(ring, 500, make_rng())
        assert len(points) == 500
        assert all(ring.contains(p) for p in points)
        assert len({(p.x, p.y) for p in points}) == 500
        again = random_points(ring, 500, make_rng())
        assert [(p.x, p.y) for p in points] == [(p.x, p.y) for p in again]
    assert random_points(ring, 0, random.Random(1)) == []
    five = random_points(ring, 5, random.Random(5))
    other_five = random_points(ring, 5, random.Random(6))
    assert [(p.x, p.y) for p in five] != [(p.x, p.y) for p in other_five]


def test_synthetic_outline_contains_seeds_with_margin() -> None:
    seeds = [xy for _, _, xy in CONGHUA_TOWNS]
    outline = synthetic_outline(seeds, random.Random(1), margin_deg=0.08)
    assert isinstance(outline, Polygon) and outline.is_valid
    for xy in seeds:
        assert outline.contains(Point(xy))
        assert outline.exterior.distance(Point(xy)) >= 0.08
    assert len(outline.exterior.coords) > 40  # irregular, not a plain buffer
    same = synthetic_outline(seeds, random.Random(1), margin_deg=0.08)
    assert shapely.to_wkb(same) == shapely.to_wkb(outline)
    other = synthetic_outline(seeds, np.random.default_rng(2), margin_deg=0.08)
    assert not other.equals(outline)
    # One or two seeds give a disc or a stadium, still valid.
    assert synthetic_outline([(0.0, 0.0)], random.Random(3), 0.5).contains(Point(0, 0).buffer(0.5))
    assert synthetic_outline([(0.0, 0.0), (1.0, 0.0)], random.Random(3), 0.1).is_valid


# --- Conghua ------------------------------------------------------------------------------------


def test_conghua_counts_and_real_towns(conghua_tree: list[AreaSpec]) -> None:
    levels = Counter(spec.level for spec in conghua_tree)
    assert levels == {"district": 1, "town": 8, "village": 277, "grid": 865}
    [district] = [s for s in conghua_tree if s.level == "district"]
    assert (district.code, district.name) == ("440117", "从化区")
    towns = [(s.code, s.name) for s in conghua_tree if s.level == "town"]
    assert towns == [(code, name) for code, name, _ in CONGHUA_TOWNS]


def test_conghua_tree_is_well_formed_and_tiles(conghua_tree: list[AreaSpec]) -> None:
    assert_well_formed(conghua_tree)
    assert_children_tile_parents(conghua_tree)


def test_conghua_towns_contain_their_seed_points(conghua_tree: list[AreaSpec]) -> None:
    towns = {s.code: s for s in conghua_tree if s.level == "town"}
    for code, _, xy in CONGHUA_TOWNS:
        assert towns[code].geometry.contains(Point(xy)), code
        others = [t for c, t in towns.items() if c != code]
        assert not any(t.geometry.contains(Point(xy)) for t in others)


def test_conghua_outline_is_the_district(conghua_from_outline: list[AreaSpec]) -> None:
    district = conghua_from_outline[0]
    assert district.level == "district"
    assert district.geometry.symmetric_difference(conghua_outline()).area < 1e-9


def test_conghua_is_deterministic(conghua_synthetic: list[AreaSpec]) -> None:
    assert fingerprint(conghua()) == fingerprint(conghua_synthetic)
    assert fingerprint(conghua(seed=1)) != fingerprint(conghua_synthetic)


def test_conghua_names_kinds_and_shares(conghua_tree: list[AreaSpec]) -> None:
    children = children_by_parent(conghua_tree)
    by_code = {s.code: s for s in conghua_tree}
    for town in (s for s in conghua_tree if s.level == "town"):
        villages = children[town.code]
        assert len(villages) >= 3
        names = [v.name for v in villages]
        assert len(set(names)) == len(names), f"village names repeat in {town.name}"
        suffix = "社区" if town.name.endswith("街道") else "(村|社区)"
        assert all(re.fullmatch(rf"\w\w{suffix}", name) for name in names), names
    grid_counts = []
    for village in (s for s in conghua_tree if s.level == "village"):
        grids = children[village.code]
        grid_counts.append(len(grids))
        codes = [f"{village.code}{i:03d}" for i in range(1, len(grids) + 1)]
        assert [g.code for g in grids] == codes
        assert grids[0].kind == "comprehensive"
        assert len({g.name for g in grids}) == len(grids)
        for grid in grids:
            assert grid.name.startswith(village.name)
            tail = grid.name[len(village.name) :]
            if grid.kind == "comprehensive":
                assert re.fullmatch(r"第\d+网格", tail), grid.name
            else:
                assert tail in ("市场专属网格", "学校专属网格", "公园专属网格", "工业园专属网格")
        assert by_code[village.parent_code or ""].level == "town"
    assert min(grid_counts) >= 1
    assert 2 <= float(np.median(grid_counts)) <= 5
    dedicated = sum(1 for s in conghua_tree if s.kind == "dedicated")
    assert dedicated == round(865 / 10)


# --- build_district ------------------------------------------------------------------------------


def test_build_district_with_random_town_seeds() -> None:
    outline = MultiPolygon([box(0, 0, 1, 1), box(1.5, 0, 2, 0.5)])
    towns = [
        ("123456001", "甲街道", (0.2, 0.2)),
        ("123456002", "乙镇", None),
        ("123456101", "丙镇", Point(1.7, 0.2)),
    ]
    specs = build_district("123456", "测试区", outline, towns, villages=12, grids=40, seed=3)
    levels = Counter(s.level for s in specs)
    assert levels == {"district": 1, "town": 3, "village": 12, "grid": 40}
    assert_well_formed(specs)
    assert_children_tile_parents(specs)
    children = children_by_parent(specs)
    assert all(len(children[code]) >= 3 for code, _, _ in towns)
    street_villages = children["123456001"]
    assert all(v.name.endswith("社区") for v in street_villages)
    assert fingerprint(specs) == fingerprint(
        build_district("123456", "测试区", outline, towns, villages=12, grids=40, seed=3)
    )


def test_build_district_rejects_bad_input() -> None:
    outline = box(0, 0, 1, 1)
    towns = [("123456001", "甲镇", None), ("123456002", "乙镇", None)]
    with pytest.raises(ValueError):
        build_district("123456", "区", outline, towns, villages=5, grids=10, seed=1)
    with pytest.raises(ValueError):
        build_district("123456", "区", outline, towns, villages=6, grids=5, seed=1)
    with pytest.raises(ValueError):
        build_district("123456", "区", outline, [("654321001", "甲镇", None)], 3, 3, seed=1)
    with pytest.raises(ValueError, match="outside"):
        build_district("123456", "区", outline, [("123456001", "甲镇", (2.0, 2.0))], 3, 3, 1)


# --- loaders -------------------------------------------------------------------------------------


def test_loaders_read_files(tmp_path: Path) -> None:
    geojson = tmp_path / "d.geojson"
    feature = {
        "type": "Feature",
        "properties": {"adcode": 440117, "name": "从化区"},
        "geometry": {"type": "Polygon", "coordinates": [[[0, 0], [1, 0], [1, 1], [0, 1], [0, 0]]]},
    }
    geojson.write_text(json.dumps({"type": "FeatureCollection", "features": [feature]}), "utf-8")
    [(code, name, outline)] = read_outline_geojson(geojson)
    assert (code, name, outline.geom_type, outline.area) == ("440117", "从化区", "MultiPolygon", 1.0)
    towns_csv = tmp_path / "t.csv"
    towns_csv.write_text('code,name,district_code\n440117001,"街口街道",440117\n', "utf-8")
    assert read_towns_csv(towns_csv) == [("440117001", "街口街道", "440117")]


def test_loaders_read_the_shared_data() -> None:
    if GUANGZHOU_GEOJSON.exists():
        districts = read_outline_geojson(GUANGZHOU_GEOJSON)
        assert [(c, n) for c, n, _ in districts] == [(c, n) for c, n, _ in GUANGZHOU_DISTRICTS]
        assert all(g.is_valid and not g.is_empty for _, _, g in districts)
    if GUANGZHOU_TOWNS_CSV.exists():
        rows = read_towns_csv(GUANGZHOU_TOWNS_CSV)
        assert len(rows) == 178
        assert ("440117404", "黄龙带水库", "440117") in rows
    if CONGHUA_GEOJSON.exists():
        [(_, _, outline)] = read_outline_geojson(CONGHUA_GEOJSON)
        assert all(outline.contains(Point(xy)) for _, _, xy in CONGHUA_TOWNS)


# --- Guangzhou -----------------------------------------------------------------------------------


def test_guangzhou_full_scale() -> None:
    districts = read_outline_geojson(GUANGZHOU_GEOJSON) if GUANGZHOU_GEOJSON.exists() else None
    rows = read_towns_csv(GUANGZHOU_TOWNS_CSV) if GUANGZHOU_TOWNS_CSV.exists() else None
    started = time.perf_counter()
    specs = guangzhou(districts, rows)
    elapsed = time.perf_counter() - started
    assert elapsed < 60
    levels = Counter(s.level for s in specs)
    assert levels["district"] == 11
    assert levels["grid"] == 19660
    assert levels["village"] == 2800
    assert [(s.code, s.name) for s in specs if s.level == "district"] == [
        (c, n) for c, n, _ in GUANGZHOU_DISTRICTS
    ]
    towns = [(s.code, s.name, s.parent_code) for s in specs if s.level == "town"]
    if rows is not None:
        expected = sorted(r for r in rows if r[0][6] != "4")
        assert len(expected) == 176
        assert sorted(towns) == expected
        assert not any(code.startswith("440117404") for code, _, _ in towns)
    else:
        assert 170 <= len(towns) <= 180
    assert_well_formed(specs)
    assert_children_tile_parents(specs)
    assert 0.08 <= sum(1 for s in specs if s.kind == "dedicated") / 19660 <= 0.12
    if districts is not None:  # Conghua's real towns keep their seed points
        by_code = {s.code: s for s in specs}
        for code, _, xy in CONGHUA_TOWNS:
            assert by_code[code].geometry.contains(Point(xy))


def test_guangzhou_synthetic_districts_and_towns() -> None:
    specs = guangzhou(None, None, seed=7, villages=700, grids=2000)
    levels = Counter(s.level for s in specs)
    assert levels["district"] == 11 and levels["village"] == 700 and levels["grid"] == 2000
    assert 170 <= levels["town"] <= 180
    districts = [s for s in specs if s.level == "district"]
    assert [(s.code, s.name) for s in districts] == [(c, n) for c, n, _ in GUANGZHOU_DISTRICTS]
    # The synthetic districts are adjacent pieces of one outline: no overlaps between them.
    geoms = np.array([d.geometry for d in districts], dtype=object)
    assert float(shapely.area(geoms).sum()) == pytest.approx(shapely.union_all(geoms).area, rel=REL)
    minx, miny, maxx, maxy = shapely.union_all(geoms).bounds
    assert 112.85 <= minx and maxx <= 114.15 and 22.45 <= miny and maxy <= 24.05
    for district in districts:
        towns = [s for s in specs if s.parent_code == district.code]
        expected = [f"{district.code}{i:03d}" for i in range(1, len(towns) + 1)]
        assert [t.code for t in towns] == expected
        assert all(t.name.endswith(("街道", "镇")) for t in towns)
    assert len({s.name for s in specs if s.level == "town"}) == levels["town"]
    assert_well_formed(specs)
    assert_children_tile_parents(specs)
    again = guangzhou(None, None, seed=7, villages=700, grids=2000)
    assert fingerprint(specs) == fingerprint(again)
