"""A batch's points checked as arrays (the usual, all-good batch) against the point-by-point
check that names bad points: the same track, and every doubtful batch left to the latter."""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import pytest

from backend.patrols import service


def test_a_good_batch_checked_as_arrays_gives_the_track_of_the_point_by_point_check():
    now = float(int(time.time()))
    points = [
        # On the limits: 180 degrees east, the south pole, five minutes ahead of the clock.
        {"lon": 180, "lat": -90.0, "t": now + 300, "accuracy_m": None, "mock": True},
        {"lon": 113.25, "lat": 23.125, "t": int(now) - 100, "accuracy_m": 5},
        {"lon": 113.2501, "lat": 23.1251, "t": now - 90.5, "accuracy_m": 12.5, "mock": False, "extra": 1},
    ]
    fast = service._plain_track(points, crs="wgs84", latest=now + 300)
    assert fast is not None
    # A time as RFC 3339 text takes the point-by-point way.
    as_text = [{**p, "t": datetime.fromtimestamp(p["t"], UTC).isoformat()} for p in points]
    assert service._plain_track(as_text, crs="wgs84", latest=now + 300) is None
    slow = service.check_points(as_text, crs="wgs84", max_points=10, now=now)
    assert fast.t.tolist() == slow.t.tolist() == [now - 100, now - 90.5, now + 300]
    assert fast.lon.tolist() == slow.lon.tolist() and fast.lat.tolist() == slow.lat.tolist()
    assert fast.accuracy == slow.accuracy == [5.0, 12.5, None]
    assert fast.mock == slow.mock == [False, False, True]


@pytest.mark.parametrize(
    "change",
    [
        {"lon": 180.5},
        {"lat": -90.01},
        {"lon": True},
        {"t": "soon"},
        {"t": math.inf},
        {"t": 946684799.0},  # 1999
        {"t": 1e12},  # the future
        {"accuracy_m": math.nan},
        {"accuracy_m": "5"},
        {"mock": "yes"},
        {"mock": None},
    ],
)
def test_a_doubtful_point_leaves_the_batch_to_the_point_by_point_check(change):
    now = time.time()
    points = [{"lon": 113.25, "lat": 23.125, "t": now - 60, "accuracy_m": 5} for _ in range(3)]
    points[1] = {**points[1], **change}
    assert service._plain_track(points, crs="wgs84", latest=now + 300) is None
    with pytest.raises(service.ValidationFailed):
        service.check_points(points, crs="wgs84", max_points=10, now=now)


def test_a_point_missing_a_field_or_not_an_object_is_named():
    now = time.time()
    for bad in ({"lon": 113.25, "t": now - 60}, [113.25, 23.125, now - 60]):
        points = [{"lon": 113.25, "lat": 23.125, "t": now - 60}, bad]
        assert service._plain_track(points, crs="wgs84", latest=now + 300) is None
        with pytest.raises(service.ValidationFailed):
            service.check_points(points, crs="wgs84", max_points=10, now=now)
