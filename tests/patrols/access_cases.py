"""Who may call each patrol endpoint, in scope (the worker's patrol, grid and town) and out of
scope (the other worker's, in another town); see tests/test_access.py."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

Request = Callable[[Any, str], tuple[str, str, Any]]
Expect = dict[str, tuple[int, int]]

V1 = "/api/v1"


def _get(url: Callable[[Any, str], str]) -> Request:
    return lambda w, s: ("GET", url(w, s), None)


def _points(w: Any, s: str) -> tuple[str, str, Any]:
    lon, lat = w.point[s]
    points = [{"lon": lon, "lat": lat, "t": time.time() - 60 + i} for i in range(3)]
    return "POST", f"{V1}/patrols/{w.patrol[s]}/points", {"batch": "access", "points": points}


# A track is its worker's and their supervisors' (admins, supervisors whose area holds one of the
# worker's grids); a GIS key never sees one. Only the walker sends points or ends a patrol.
TRACK: Expect = {"admin": (200, 200), "supervisor": (200, 404), "worker": (200, 404), "gis": (404, 404)}
WALKER = {"admin": (404, 404), "supervisor": (404, 404), "gis": (403, 403)}
# Per-grid figures of a town: as closure statistics.
STATS: Expect = {"admin": (200, 200), "supervisor": (200, 404), "worker": (404, 404), "gis": (200, 404)}


def admin_only(status: int) -> Expect:
    return {"admin": (status, status), **{role: (403, 403) for role in ("supervisor", "worker", "gis")}}


PATROL_CASES: dict[tuple[str, str], tuple[Request, Expect]] = {
    ("GET", "/api/v1/patrols"): (
        _get(lambda w, s: f"{V1}/patrols?area={w.area[s][:9]}"),
        {role: (200, 200) for role in ("admin", "supervisor", "worker", "gis")},
    ),
    ("POST", "/api/v1/patrols"): (
        lambda w, s: ("POST", f"{V1}/patrols", {"id": str(uuid.uuid4())}),
        {"admin": (201, 201), "supervisor": (201, 201), "worker": (201, 201), "gis": (403, 403)},
    ),
    ("GET", "/api/v1/me/patrols"): (
        _get(lambda w, s: f"{V1}/me/patrols"),
        {"admin": (200, 200), "supervisor": (200, 200), "worker": (200, 200), "gis": (403, 403)},
    ),
    ("GET", "/api/v1/patrols/{patrol_id}"): (_get(lambda w, s: f"{V1}/patrols/{w.patrol[s]}"), TRACK),
    ("POST", "/api/v1/patrols/{patrol_id}/points"): (_points, {**WALKER, "worker": (201, 404)}),
    ("POST", "/api/v1/patrols/{patrol_id}/end"): (
        lambda w, s: ("POST", f"{V1}/patrols/{w.patrol[s]}/end", {}),
        {**WALKER, "worker": (200, 404)},
    ),
    ("GET", "/api/v1/patrol-norms"): (
        _get(lambda w, s: f"{V1}/patrol-norms"),
        {role: (200, 200) for role in ("admin", "supervisor", "worker", "gis")},
    ),
    ("PUT", "/api/v1/patrol-norms/{grid_kind}"): (
        lambda w, s: ("PUT", f"{V1}/patrol-norms/comprehensive", {"min_hours": 4, "min_coverage": 0.6}),
        admin_only(200),
    ),
    ("GET", "/api/v1/work-calendar"): (
        _get(lambda w, s: f"{V1}/work-calendar?from=2026-01-01&to=2026-12-31"),
        {role: (200, 200) for role in ("admin", "supervisor", "worker", "gis")},
    ),
    ("PUT", "/api/v1/work-calendar/{day}"): (
        lambda w, s: ("PUT", f"{V1}/work-calendar/2026-10-01", {"working": False, "name": "国庆节"}),
        admin_only(200),
    ),
    ("DELETE", "/api/v1/work-calendar/{day}"): (
        lambda w, s: ("DELETE", f"{V1}/work-calendar/2026-10-01", None),
        admin_only(204),
    ),
    ("GET", "/api/v1/stats/patrols"): (
        _get(lambda w, s: f"{V1}/stats/patrols?area={w.area[s][:9]}&group_by=grid"),
        STATS,
    ),
    ("GET", "/api/v1/stats/patrols.csv"): (
        _get(lambda w, s: f"{V1}/stats/patrols.csv?area={w.area[s][:9]}&group_by=village"),
        STATS,
    ),
    ("GET", "/api/v1/stats/patrols.geojson"): (
        _get(lambda w, s: f"{V1}/stats/patrols.geojson?area={w.area[s][:9]}&group_by=village"),
        STATS,
    ),
}
