"""Daily patrol figures on hand-made geometry: coverage, time inside, distance, the plausibility
flags, compliance with the norm and the retention of raw batches."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from shapely.geometry import box
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from backend.areas import service as areas
from backend.auth.scope import Actor
from backend.patrols import figures, queries, service
from tests.conftest import client_as
from tests.factories import _row
from tests.org.factories import make_building

# A 0.002 x 0.002 degree grid (193 m x 222 m) near Hangzhou, alone in its own small tree.
WEST, SOUTH = 120.5, 30.1
SIZE = 0.002
GRID = "330200001001001"
DAY = date(2026, 11, 30)  # a Monday
ZONE = ZoneInfo("Asia/Shanghai")
# Metres per degree of latitude at 30.1 N (WGS84).
M_PER_DEG_LAT = (
    111132.954 - 559.822 * math.cos(math.radians(2 * SOUTH)) + 1.175 * math.cos(math.radians(4 * SOUTH))
)


@pytest.fixture
def walker(session) -> Actor:  # type: ignore[no-untyped-def]
    grid = box(WEST, SOUTH, WEST + SIZE, SOUTH + SIZE)
    areas.insert_trusted(
        session,
        [
            _row("330200", "小区", None, grid),
            _row("330200001", "小镇", "330200", grid),
            _row("330200001001", "小村", "330200001", grid),
            _row(GRID, "小网格", "330200001001", grid, kind="comprehensive"),
        ],
    )
    return _new_walker(session, "walker")


def _new_walker(session, username: str) -> Actor:  # type: ignore[no-untyped-def]
    """A worker of the small grid, as an actor."""
    user_id = session.execute(
        text(
            "INSERT INTO users (username, password_hash, display_name, role, worker_kind)"
            " VALUES (:name, 'x', '巡查员', 'worker', 'full_time') RETURNING id"
        ),
        {"name": f"walker-{uuid.uuid4().hex[:8]}"},
    ).scalar_one()
    session.execute(
        text("INSERT INTO user_grids (user_id, grid_code) VALUES (:u, :g)"), {"u": user_id, "g": GRID}
    )
    session.flush()
    return Actor(role="worker", user_id=user_id, username=username, grid_codes=(GRID,))


def _at(hour: int, minute: int = 0) -> float:
    return datetime.combine(DAY, time(hour, minute), ZONE).timestamp()


def _walk(session, actor: Actor, points: list[dict[str, Any]], batch: str = "1") -> uuid.UUID:  # type: ignore[no-untyped-def]
    patrol_id = uuid.uuid4()
    started = datetime.fromtimestamp(points[0]["t"], ZONE)
    service.start_patrol(session, actor, patrol_id=patrol_id, started_at=started)
    service.add_batch(session, actor, patrol_id, batch=batch, crs="wgs84", points=points, max_points=5000)
    return patrol_id


def _along_the_south_edge(t0: float, inset_deg: float = 0.0001) -> list[dict[str, Any]]:
    """From 0.0005 degrees west of the grid to 0.0005 east of it, `inset_deg` inside its south
    edge: 21 points 10 s apart (about 14.5 m a step, a walk)."""
    span = SIZE + 0.001
    return [
        {"lon": WEST - 0.0005 + span * i / 20, "lat": SOUTH + inset_deg, "t": t0 + 10 * i, "accuracy_m": 5}
        for i in range(21)
    ]


def _day(session, worker: int) -> Any:  # type: ignore[no-untyped-def]
    return session.execute(
        text("SELECT * FROM patrol_days WHERE day = :d AND worker_id = :w"), {"d": DAY, "w": worker}
    ).one()


def _grid_day(session, worker: int) -> Any:  # type: ignore[no-untyped-def]
    return session.execute(
        text("SELECT * FROM patrol_grid_days WHERE day = :d AND worker_id = :w"), {"d": DAY, "w": worker}
    ).one()


def test_a_walk_along_one_edge_covers_a_known_share(session, walker):
    _walk(session, walker, _along_the_south_edge(_at(9)))
    make_building(session, WEST + 0.001, SOUTH + 0.0001 + 20 / M_PER_DEG_LAT, rental_units=6)  # 20 m off
    make_building(session, WEST + 0.001, SOUTH + 0.0001 + 60 / M_PER_DEG_LAT, rental_units=6)  # 60 m off
    make_building(
        session, WEST + 0.0015, SOUTH + 0.0001 + 5 / M_PER_DEG_LAT, rental_units=0, safe_rental_units=0
    )  # no rentals
    assert figures.compute_day(session, DAY) >= 1
    grid_day = _grid_day(session, walker.user_id)
    # The strip from the edge to 30 m beyond the track, over the grid's whole width.
    expected = (0.0001 * M_PER_DEG_LAT + 30) / (SIZE * M_PER_DEG_LAT)
    assert grid_day.coverage == pytest.approx(expected, rel=0.01)
    # Inside for the middle two thirds of the walk: 13 points, each 10 s to the next.
    assert grid_day.inside_seconds == pytest.approx(130)
    assert grid_day.rental_buildings_visited == 1
    assert (grid_day.village_code, grid_day.town_code, grid_day.district_code) == (
        "330200001001",
        "330200001",
        "330200",
    )
    day = _day(session, walker.user_id)
    width_m = (SIZE + 0.001) * M_PER_DEG_LAT * math.cos(math.radians(SOUTH))
    assert day.distance_m == pytest.approx(width_m, rel=0.01)
    assert day.patrol_seconds == pytest.approx(200)
    assert (day.points, day.flagged_speed, day.flagged_accuracy, day.flagged_mock) == (21, 0, 0, 0)
    assert not day.long_stay_outside
    # Computing the day again gives the same rows, not more.
    figures.compute_day(session, DAY)
    assert _grid_day(session, walker.user_id).coverage == grid_day.coverage


def test_implausible_points_are_flagged_and_not_counted(session, walker):
    points = _along_the_south_edge(_at(10))
    points[5]["mock"] = True
    points[8]["accuracy_m"] = 5000
    points[12]["lat"] += 0.01  # a kilometre off and back within 10 s
    _walk(session, walker, points)
    figures.compute_day(session, DAY)
    day = _day(session, walker.user_id)
    # The jump is flagged, and so is the way back from it.
    assert (day.points, day.flagged_mock, day.flagged_accuracy, day.flagged_speed) == (21, 1, 1, 2)
    width_m = (SIZE + 0.001) * M_PER_DEG_LAT * math.cos(math.radians(SOUTH))
    # The distance is the clean walk's: the jump adds nothing.
    assert day.distance_m == pytest.approx(width_m, rel=0.01)


def test_a_long_stay_outside_the_grid_is_flagged(session, walker):
    # An hour, a point a minute, 300 m east of the grid: counted as patrolling, not inside.
    t0 = _at(14)
    points = [
        {"lon": WEST + SIZE + 0.003 + 0.00001 * (i % 2), "lat": SOUTH + 0.001, "t": t0 + 60 * i}
        for i in range(61)
    ]
    _walk(session, walker, points)
    figures.compute_day(session, DAY)
    day = _day(session, walker.user_id)
    assert day.long_stay_outside and day.longest_outside_seconds == pytest.approx(3600)
    assert day.inside_seconds == 0 and day.patrol_seconds == pytest.approx(3600)


def test_gaps_longer_than_five_minutes_are_not_patrol_time(session, walker):
    points = _along_the_south_edge(_at(9))
    for point in points[10:]:
        point["t"] += 3600  # the phone slept an hour halfway
    _walk(session, walker, points)
    figures.compute_day(session, DAY)
    assert _day(session, walker.user_id).patrol_seconds == pytest.approx(190)


def test_a_day_computed_in_parts_equals_the_day_in_one_run(session, walker):
    points = _along_the_south_edge(_at(9))
    for point in points[10:]:
        point["t"] += 3600
    _walk(session, walker, points)
    figures.compute_day(session, DAY)
    whole, whole_grid = _day(session, walker.user_id), _grid_day(session, walker.user_id)
    mine = walker.user_id % 2
    # The other part clears and writes only its own workers: this one's rows stay.
    figures.compute_day(session, DAY, part=1 - mine, parts=2)
    assert _day(session, walker.user_id) == whole
    session.execute(text("DELETE FROM patrol_grid_days WHERE day = :d"), {"d": DAY})
    session.execute(text("DELETE FROM patrol_days WHERE day = :d"), {"d": DAY})
    assert figures.compute_day(session, DAY, part=mine, parts=2) >= 1
    assert (_day(session, walker.user_id), _grid_day(session, walker.user_id)) == (whole, whole_grid)


def test_flask_patrols_figures_computes_the_day(app, session, walker):
    _walk(session, walker, _along_the_south_edge(_at(9)))
    # One connection: the test's own, where the walk is (not committed).
    result = app.test_cli_runner().invoke(
        args=["patrols", "figures", "--day", DAY.isoformat(), "--connections", "1"]
    )
    assert result.exit_code == 0, result.output
    assert f"patrol figures of {DAY}:" in result.output
    assert _grid_day(session, walker.user_id).inside_seconds == pytest.approx(130)


def test_parts_on_their_own_connections_write_every_worker_once(engine):
    far = date(2001, 1, 1)
    workers = text(
        "SELECT count(DISTINCT ug.user_id) FROM user_grids ug"
        " JOIN users u ON u.id = ug.user_id AND u.role = 'worker' AND NOT u.disabled"
        " JOIN areas a ON a.code = ug.grid_code AND a.level = 'grid' AND a.valid_to IS NULL"
    )
    try:
        written = figures.compute_day_in_parts(sessionmaker(engine), far, connections=2)
        with engine.connect() as conn:
            expected = conn.execute(workers).scalar_one()
            rows = conn.execute(
                text("SELECT count(*), count(DISTINCT worker_id) FROM patrol_days WHERE day = :d"),
                {"d": far},
            ).one()
        assert expected > 0 and written == expected and tuple(rows) == (expected, expected)
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM patrol_grid_days WHERE day = :d"), {"d": far})
            conn.execute(text("DELETE FROM patrol_days WHERE day = :d"), {"d": far})


def test_compliance_against_the_norm(app, accounts, session, walker):
    # Monday: four and a half hours inside, nearly all of it covered; Tuesday: half an hour.
    def hours_inside(day: date, minutes: int) -> None:
        t0 = datetime.combine(day, time(8), ZONE).timestamp()
        rows = 8
        points = []
        for i in range(minutes * 6 + 1):
            # Sweep the grid in rows 25 m apart, back and forth, a point every 10 s.
            row = (i // 20) % rows
            step = i % 20 if row % 2 == 0 else 19 - i % 20
            points.append(
                {
                    "lon": WEST + 0.00005 + step * (SIZE - 0.0001) / 19,
                    "lat": SOUTH + 0.0001 + row * (SIZE - 0.0002) / (rows - 1),
                    "t": t0 + 10 * i,
                }
            )
        patrol_id = uuid.uuid4()
        service.start_patrol(
            session, walker, patrol_id=patrol_id, started_at=datetime.fromtimestamp(t0, ZONE)
        )
        for start in range(0, len(points), 500):
            service.add_batch(
                session,
                walker,
                patrol_id,
                batch=str(start),
                crs="wgs84",
                points=points[start : start + 500],
                max_points=500,
            )
        figures.compute_day(session, day)

    hours_inside(DAY, 270)
    hours_inside(DAY + timedelta(days=1), 30)
    figures.compute_day(session, DAY + timedelta(days=2))  # Wednesday: no patrol at all
    saturday = DAY + timedelta(days=5)
    figures.compute_day(session, saturday)  # not a working day: not counted
    monday = _grid_day(session, walker.user_id)
    assert monday.inside_seconds == pytest.approx(270 * 60, rel=0.01) and monday.coverage > 0.95
    admin = Actor(role="admin", user_id=None)
    queries.set_norm(session, admin, grid_kind="comprehensive", min_hours=4, min_coverage=0.6)
    result = queries.compliance(
        session, actor=admin, area="330200", start=DAY, end=DAY + timedelta(days=7), group_by=["grid"]
    )
    assert (result["total"]["worker_days"], result["total"]["compliant_days"]) == (3, 1)
    assert result["total"]["compliance_rate"] == pytest.approx(1 / 3)
    low, high = result["total"]["wilson_low"], result["total"]["wilson_high"]
    assert low < 1 / 3 < high and result["total"]["below_benchmark"] is (high < 0.9)
    assert result["groups"][0]["grid"] == GRID and result["groups"][0]["area_name"] == "小网格"
    # The work calendar: a holiday on Tuesday is not counted, a Saturday worked in its place is.
    week = {"actor": admin, "area": "330200", "start": DAY, "end": DAY + timedelta(days=7)}
    queries.set_calendar_day(session, admin, day=DAY + timedelta(days=1), working=False, name="节假日")
    off = queries.compliance(session, **week)["total"]
    assert (off["worker_days"], off["compliant_days"]) == (2, 1)
    queries.set_calendar_day(session, admin, day=saturday, working=True, name="调休上班")
    made_up = queries.compliance(session, **week)["total"]
    assert (made_up["worker_days"], made_up["compliant_days"]) == (3, 1)
    for day in (DAY + timedelta(days=1), saturday):
        queries.clear_calendar_day(session, admin, day=day)
    assert queries.compliance(session, **week)["total"]["worker_days"] == 3
    # A stricter norm: nobody meets it.
    queries.set_norm(session, admin, grid_kind="comprehensive", min_hours=5, min_coverage=0.6)
    stricter = queries.compliance(session, actor=admin, area="330200", start=DAY, end=DAY + timedelta(days=7))
    assert stricter["total"]["compliant_days"] == 0
    # Over HTTP: JSON, CSV (bilingual headers) and a map; per-person figures not for GIS keys.
    supervisor = client_as(app, accounts, "admin")
    query = f"area=330200&from={DAY}&to={DAY + timedelta(days=7)}&group_by=grid"
    body = supervisor.get(f"/api/v1/stats/patrols?{query}").json
    assert body["total"]["worker_days"] == 3
    csv_text = supervisor.get(f"/api/v1/stats/patrols.csv?{query}").data.decode("utf-8-sig")
    assert csv_text.splitlines()[0].startswith("grid 网格,area_name 名称,worker_days 应巡查人日")
    assert GRID in csv_text
    geojson = supervisor.get(f"/api/v1/stats/patrols.geojson?{query}").json
    assert [f["id"] for f in geojson["features"]] == [GRID]
    assert client_as(app, accounts, "gis").get("/api/v1/stats/patrols?group_by=worker").status_code == 403
    # The map layer: per-grid figures of the period, as the statistics give them.
    layer = supervisor.get(
        f"/ogc/collections/grid_patrols/items?area=330200&datetime={DAY}/{DAY + timedelta(days=6)}"
    ).json
    (feature,) = layer["features"]
    assert feature["id"] == GRID
    assert (feature["properties"]["worker_days"], feature["properties"]["compliant_days"]) == (3, 0)
    assert feature["properties"]["mean_coverage"] == pytest.approx(body["groups"][0]["mean_coverage"])


def test_raw_batches_go_after_the_retention_once_their_day_has_figures(session, walker):
    patrol_id = _walk(session, walker, _along_the_south_edge(_at(9)))
    session.execute(
        text("UPDATE patrol_batches SET received_at = now() - interval '40 days' WHERE patrol_id = :p"),
        {"p": patrol_id},
    )
    old = DAY < (datetime.now(ZONE) - timedelta(days=2)).date()
    assert old
    # No figures yet: kept, however old.
    assert service.delete_old_batches(session, days=1) == 0
    figures.compute_day(session, DAY)
    # Figures exist, but the batches are younger than the retention: kept.
    assert service.delete_old_batches(session, days=3650) == 0
    assert service.delete_old_batches(session, days=1) == 1
    left = session.execute(text("SELECT count(*) FROM patrol_batches WHERE patrol_id = :p"), {"p": patrol_id})
    assert left.scalar_one() == 0
    # The figures stay.
    assert _grid_day(session, walker.user_id).coverage > 0


def test_batches_sent_out_of_order_give_the_figures_of_the_walk(session, walker):
    points = _along_the_south_edge(_at(9))
    points[5]["mock"] = True
    del points[3]["accuracy_m"]  # none sent: not flagged
    patrol_id = uuid.uuid4()
    service.start_patrol(
        session, walker, patrol_id=patrol_id, started_at=datetime.fromtimestamp(points[0]["t"], ZONE)
    )
    # The later half arrives first.
    for batch, part in (("2", points[10:]), ("1", points[:10])):
        service.add_batch(session, walker, patrol_id, batch=batch, crs="wgs84", points=part, max_points=50)
    figures.compute_day(session, DAY)
    day = _day(session, walker.user_id)
    assert (day.points, day.flagged_mock, day.flagged_accuracy, day.flagged_speed) == (21, 1, 0, 0)
    # The mock point's neighbours are 20 s apart: the same time and way as the clean walk.
    width_m = (SIZE + 0.001) * M_PER_DEG_LAT * math.cos(math.radians(SOUTH))
    assert day.patrol_seconds == pytest.approx(200) and day.distance_m == pytest.approx(width_m, rel=0.01)
    assert _grid_day(session, walker.user_id).inside_seconds == pytest.approx(130)


def test_workers_handled_a_few_at_a_time_get_the_same_figures(session, walker, monkeypatch):
    second = _new_walker(session, "second")
    _walk(session, walker, _along_the_south_edge(_at(9)))
    _walk(session, second, _along_the_south_edge(_at(10), inset_deg=0.0005))
    figures.compute_day(session, DAY)
    together = [(_day(session, w), _grid_day(session, w)) for w in (walker.user_id, second.user_id)]
    assert together[0][1].coverage < together[1][1].coverage  # the second walked further in
    monkeypatch.setattr(figures, "CHUNK_POINTS", 1)  # a worker at a time
    figures.compute_day(session, DAY)
    assert [(_day(session, w), _grid_day(session, w)) for w in (walker.user_id, second.user_id)] == together


def test_time_inside_counts_for_the_grid_without_a_line_to_cover(session, walker):
    # Two points 10 s apart on either side of 09:30: a step inside, but each half-hour piece
    # of the run holds one point, so there is no line to buffer.
    t0 = _at(9, 30) - 5
    points = [
        {"lon": WEST + 0.001, "lat": SOUTH + 0.001, "t": t0},
        {"lon": WEST + 0.0011, "lat": SOUTH + 0.001, "t": t0 + 10},
    ]
    _walk(session, walker, points)
    figures.compute_day(session, DAY)
    grid_day = _grid_day(session, walker.user_id)
    assert _day(session, walker.user_id).inside_seconds == pytest.approx(10)
    assert grid_day.inside_seconds == pytest.approx(10) and grid_day.coverage == 0


@pytest.mark.parametrize(("points", "covers"), [(3, False), (2, True)])
def test_a_stay_on_one_spot_covers_as_postgis_simplifies_it(session, walker, points, covers):
    # A piece of three or more equal points collapses when simplified and covers nothing (as
    # ST_Simplify drops it); two equal points stay a line, buffered to a disc of 30 m.
    t0 = _at(9)
    spot = {"lon": WEST + 0.001, "lat": SOUTH + 0.001, "accuracy_m": 5}
    _walk(session, walker, [{**spot, "t": t0 + 10 * i} for i in range(points)])
    figures.compute_day(session, DAY)
    grid_day = _grid_day(session, walker.user_id)
    assert grid_day.inside_seconds == pytest.approx(10 * (points - 1))
    grid_area = (SIZE * M_PER_DEG_LAT) * (SIZE * M_PER_DEG_LAT * math.cos(math.radians(SOUTH + 0.001)))
    # The disc as buffered with quad_segs=4: a 16-gon of radius 30 m.
    disc = 16 / 2 * 30**2 * math.sin(2 * math.pi / 16)
    assert grid_day.coverage == (pytest.approx(disc / grid_area, rel=0.01) if covers else 0)


def test_the_days_due_are_past_days_without_figures_or_with_late_batches(session, walker):
    patrol_id = _walk(session, walker, _along_the_south_edge(_at(9)))
    arrived = (
        "UPDATE patrol_batches SET received_at = now() + make_interval(hours => :h) WHERE patrol_id = :p"
    )
    session.execute(text(arrived), {"h": -1, "p": patrol_id})
    # A day with a batch is due once it is over, not before.
    assert service.days_due(session, today=DAY, recent=0) == []
    assert service.days_due(session, today=DAY + timedelta(days=3), recent=0) == [DAY]
    figures.compute_day(session, DAY)
    assert service.days_due(session, today=DAY + timedelta(days=3), recent=0) == []
    # A batch arriving after the figures (a phone that was offline) makes its day due again.
    session.execute(text(arrived), {"h": 1, "p": patrol_id})
    assert service.days_due(session, today=DAY + timedelta(days=3), recent=0) == [DAY]
    # ... but not once it is older than the retention, whose raw batches may be gone.
    assert service.days_due(session, today=DAY + timedelta(days=40), recent=0, days=30) == []
    # The recent days are due until they have figures (patrol or not), newest first.
    later = date(2031, 1, 10)
    assert service.days_due(session, today=later, recent=2) == [
        later - timedelta(days=1),
        later - timedelta(days=2),
    ]
    figures.compute_day(session, later - timedelta(days=1))
    assert service.days_due(session, today=later, recent=2) == [later - timedelta(days=2)]


def test_the_work_calendar_over_http(app, accounts, session):
    admin = client_as(app, accounts, "admin")
    put = admin.put("/api/v1/work-calendar/2026-10-01", json={"working": False, "name": "国庆节"})
    assert put.status_code == 200 and put.json["day"] == "2026-10-01" and put.json["working"] is False
    admin.put("/api/v1/work-calendar/2026-09-20", json={"working": True, "name": "国庆节调休"})
    listed = admin.get("/api/v1/work-calendar?from=2026-09-01&to=2026-10-31").json
    assert [(d["day"], d["working"], d["name"]) for d in listed] == [
        ("2026-09-20", True, "国庆节调休"),
        ("2026-10-01", False, "国庆节"),
    ]
    assert admin.delete("/api/v1/work-calendar/2026-09-20").status_code == 204
    assert admin.delete("/api/v1/work-calendar/2026-09-20").status_code == 204  # already the rule
    assert [d["day"] for d in admin.get("/api/v1/work-calendar?from=2026-09-01&to=2026-10-31").json] == [
        "2026-10-01"
    ]
    for url, body, field in [
        ("/api/v1/work-calendar/2026-02-30", {"working": True}, "day"),
        ("/api/v1/work-calendar/tomorrow", {"working": True}, "day"),
        ("/api/v1/work-calendar/2026-10-02", {}, "working"),
        ("/api/v1/work-calendar/2026-10-02", {"working": "perhaps"}, "working"),
        ("/api/v1/work-calendar/2026-10-02", {"working": False, "name": "节" * 101}, "name"),
    ]:
        bad = admin.put(url, json=body)
        assert bad.status_code == 422 and field in [e["field"] for e in bad.json["errors"]], bad.json
    for query, field in [
        ("from=2026-10-31&to=2026-10-01", "to"),
        ("from=2026-01-01&to=2030-01-01", "to"),
        ("from=2026-13-01", "from"),
    ]:
        bad = admin.get(f"/api/v1/work-calendar?{query}")
        assert bad.status_code == 422 and field in [e["field"] for e in bad.json["errors"]], bad.json
    supervisor = client_as(app, accounts, "supervisor")
    assert supervisor.put("/api/v1/work-calendar/2026-10-02", json={"working": False}).status_code == 403
    assert admin.get("/api/v1/work-calendar?from=2026-10-02&to=2026-10-02").json == []
    # Without a range: this year's.
    this_year = admin.get("/api/v1/work-calendar").json
    assert all(d["day"].startswith(str(datetime.now(ZONE).year)) for d in this_year)
