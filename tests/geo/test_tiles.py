import pytest

from geo.tiles import tile_bounds, tile_of


def test_a_point_lies_in_the_bounds_of_its_tile():
    for zoom in (0, 5, 12, 18):
        x, y = tile_of(113.26, 23.13, zoom)
        west, south, east, north = tile_bounds(x, y, zoom)
        assert west <= 113.26 < east and south < 23.13 <= north


def test_known_tiles():
    assert tile_of(0.0, 0.0, 1) == (1, 1)
    assert tile_of(-180.0, 85.0511, 3) == (0, 0)
    assert tile_of(180.0, -90.0, 3) == (7, 7)


def test_missing_tiles_are_refused():
    with pytest.raises(ValueError):
        tile_bounds(4, 0, 2)
    with pytest.raises(ValueError):
        tile_of(0, 0, -1)
