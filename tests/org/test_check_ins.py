"""Check-ins (报岗): once per unit per local day in Asia/Shanghai, and their rates."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import text

from backend.org import check_ins
from backend.org.units import update_unit
from backend.stats import check_ins as check_in_stats
from backend.stats.days import local_today
from backend.stats.queries import wilson_interval
from tests.conftest import client_as
from tests.factories import add_square_tree
from tests.org.factories import ADMIN, grid_point, make_unit


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


def at(text_: str) -> datetime:
    return datetime.fromisoformat(text_).astimezone(UTC)


def test_one_check_in_per_local_day_across_shanghai_midnight(session, tree):
    unit = make_unit(session, 120.05, 30.05)
    # 15:59:59Z is 23:59:59 on the 24th in Shanghai; 16:00:00Z is midnight of the 25th.
    before, made = check_ins.check_in(session, unit.id, actor=ADMIN, at=at("2026-11-24T15:59:59+00:00"))
    assert made and before.local_day == date(2026, 11, 24)
    after, made = check_ins.check_in(session, unit.id, actor=ADMIN, at=at("2026-11-24T16:00:00+00:00"))
    assert made and after.local_day == date(2026, 11, 25) and after.id != before.id
    # Later the same local days: the first check-in of each day comes back, nothing new is made.
    again, made = check_ins.check_in(session, unit.id, actor=ADMIN, at=at("2026-11-25T15:59:59+00:00"))
    assert not made and again.id == after.id
    early, made = check_ins.check_in(session, unit.id, actor=ADMIN, at=at("2026-11-24T00:00:00+08:00"))
    assert not made and early.id == before.id
    rows = session.execute(
        text("SELECT local_day, checked_in_at FROM check_ins WHERE unit_id = :u ORDER BY local_day"),
        {"u": unit.id},
    ).all()
    assert [r.local_day for r in rows] == [date(2026, 11, 24), date(2026, 11, 25)]
    assert rows[1].checked_in_at == at("2026-11-24T16:00:00+00:00")


def test_repeat_the_same_day_over_http_returns_the_first(app, accounts, session):
    lon, lat = grid_point(session, accounts.worker_grids[0])
    unit = make_unit(session, lon, lat)
    session.commit()
    worker = client_as(app, accounts, "worker")
    url = f"/api/v1/emergency-units/{unit.id}/check-ins"
    first = worker.post(url, json={"members_on_duty": 3})
    assert first.status_code == 201 and first.json["members_on_duty"] == 3
    assert first.json["user_id"] == accounts.ids["worker"]
    again = client_as(app, accounts, "supervisor").post(url)
    assert again.status_code == 200 and again.json == first.json
    assert first.headers["Location"] == url
    listed = worker.get(url).json
    assert [c["id"] for c in listed["items"]] == [first.json["id"]] and listed["next_cursor"] is None


def test_local_day_is_computed_in_shanghai_by_the_database(session, tree):
    unit = make_unit(session, 120.05, 30.05)
    made, _ = check_ins.check_in(session, unit.id, actor=ADMIN)
    expected = session.execute(text("SELECT (now() AT TIME ZONE 'Asia/Shanghai')::date")).scalar()
    assert made.local_day == expected


def test_inactive_units_do_not_check_in(client, session, tree):
    unit = make_unit(session, 120.05, 30.05, active=False)
    session.commit()
    response = client.post(f"/api/v1/emergency-units/{unit.id}/check-ins")
    assert response.status_code == 409 and response.content_type == "application/problem+json"


def test_check_in_list_pages_by_day(session, tree, client):
    unit = make_unit(session, 120.05, 30.05)
    for day in range(1, 6):
        check_ins.check_in(session, unit.id, actor=ADMIN, at=at(f"2026-11-0{day}T01:00:00+00:00"))
    session.commit()
    seen, cursor = [], None
    while True:
        page = client.get(
            f"/api/v1/emergency-units/{unit.id}/check-ins?limit=2" + (f"&cursor={cursor}" if cursor else "")
        ).json
        seen += [c["local_day"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == [f"2026-11-0{d}" for d in range(5, 0, -1)]


# --- statistics -------------------------------------------------------------------------------

GRIDS = ["330100001001001", "330100001001002", "330100001002001", "330100002001001", "330100002002002"]
CENTRES = {
    "330100001001001": (120.05, 30.05),
    "330100001001002": (120.05, 30.15),
    "330100001002001": (120.15, 30.05),
    "330100002001001": (120.25, 30.05),
    "330100002002002": (120.35, 30.15),
}
START, END = date(2026, 10, 1), date(2026, 10, 29)


def _local_midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) - timedelta(hours=8)


@pytest.fixture
def history(session, tree):  # type: ignore[no-untyped-def]
    """Units in five grids, some created mid-window, one inactive; seeded random check-ins."""
    rng = random.Random(20261001)
    units = []
    for i in range(24):
        grid = GRIDS[i % len(GRIDS)]
        lon, lat = CENTRES[grid]
        unit = make_unit(session, lon + 0.001 * i, lat)
        created = START + timedelta(days=rng.choice([-30, -30, -30, 3, 10, 40]))
        # Created at 23:30 local time: the created day counts, the day before does not.
        created_at = _local_midnight(created) + timedelta(hours=23, minutes=30)
        session.execute(
            text("UPDATE emergency_units SET created_at = :t WHERE id = :id"),
            {"t": created_at, "id": unit.id},
        )
        rate = rng.choice([0.5, 0.9, 0.99, 1.0])
        days = [
            START + timedelta(days=offset)
            for offset in range(-3, (END - START).days + 3)
            if rng.random() < rate
        ]
        moments = [_local_midnight(day) + timedelta(hours=rng.choice([0, 8, 23.99])) for day in days]
        # The local day is the database's reading of each moment, as in check_ins.check_in.
        session.execute(
            text(
                "INSERT INTO check_ins (unit_id, local_day, checked_in_at) "
                "SELECT :u, (t AT TIME ZONE 'Asia/Shanghai')::date, t "
                "FROM unnest(CAST(:ts AS timestamptz[])) t"
            ),
            {"u": unit.id, "ts": moments},
        )
        if i == 7:  # deactivated later: its history no longer counts
            update_unit(session, unit.id, actor=ADMIN, active=False)
        units.append({"id": unit.id, "grid": grid, "created": created, "active": i != 7, "days": set(days)})
    session.commit()
    return units


def reference(units, keys):  # type: ignore[no-untyped-def]
    """The figures computed directly from the definitions."""
    groups = defaultdict(
        lambda: {
            "active_unit_days": 0,
            "checked_in_unit_days": 0,
            "active_units": set(),
            "units_checked_in": set(),
        }
    )

    def key_of(unit, day):  # type: ignore[no-untyped-def]
        out = []
        for key in keys:
            if key in ("district", "town", "village", "grid"):
                out.append(unit["grid"][: {"district": 6, "town": 9, "village": 12, "grid": 15}[key]])
            elif key == "day":
                out.append(day.isoformat())
            elif key == "week":
                out.append((day - timedelta(days=day.weekday())).isoformat())
            else:
                out.append(day.strftime("%Y-%m"))
        return tuple(out)

    day = START
    while day < END:
        for unit in units:
            if not unit["active"] or unit["created"] > day:
                continue
            for k in (key_of(unit, day), ("total",)) if keys else (("total",),):
                group = groups[k]
                group["active_unit_days"] += 1
                group["active_units"].add(unit["id"])
                if day in unit["days"]:
                    group["checked_in_unit_days"] += 1
                    group["units_checked_in"].add(unit["id"])
        day += timedelta(days=1)
    return {
        k: {**v, "active_units": len(v["active_units"]), "units_checked_in": len(v["units_checked_in"])}
        for k, v in groups.items()
    }


@pytest.mark.parametrize(
    "group_by", [[], ["town"], ["grid", "day"], ["week"], ["village", "month"], ["month", "day"]]
)
def test_check_in_statistics_match_a_reference(client, history, group_by):
    url = f"/api/v1/stats/check-ins?area=330100&from={START}&to={END}"
    if group_by:
        url += "&group_by=" + ",".join(group_by)
    body = client.get(url).json
    expected = reference(history, group_by)
    total = expected.pop(("total",))
    got = {tuple(g[k] for k in group_by): g for g in body["groups"]}
    assert set(got) == set(expected)
    for key, figures in [*expected.items(), (None, total)]:
        answer = got[key] if key is not None else body["total"]
        for name in ("active_unit_days", "checked_in_unit_days", "active_units", "units_checked_in"):
            assert answer[name] == figures[name], (key, name)
        n, x = figures["active_unit_days"], figures["checked_in_unit_days"]
        assert answer["check_in_rate"] == pytest.approx(x / n)
        low, high = wilson_interval(x, n)
        assert (answer["wilson_low"], answer["wilson_high"]) == (pytest.approx(low), pytest.approx(high))
        assert answer["below_benchmark"] == (high < 0.98)
        assert answer["meets_benchmark"] == (x / n >= 0.98)
    assert body["from"] == str(START) and body["to"] == str(END) and body["benchmark"] == 0.98
    if "grid" in group_by:
        assert all(g["area_name"].startswith("测试村") for g in body["groups"])


def test_check_in_statistics_are_scoped(app, accounts, session, history):
    lon, lat = grid_point(session, accounts.worker_grids[0])
    mine = make_unit(session, lon, lat)
    check_ins.check_in(session, mine.id, actor=ADMIN)
    lon, lat = grid_point(session, "440117104001001")
    make_unit(session, lon, lat)
    session.commit()
    # Today included (the default window holds only complete days, and these units are new).
    url = f"/api/v1/stats/check-ins?to={local_today() + timedelta(days=1)}"
    for who in ("worker", "supervisor", "gis", "other_supervisor"):
        total = client_as(app, accounts, who).get(url).json["total"]
        assert total["active_units"] == 1, who
    assert (
        client_as(app, accounts, "supervisor").get("/api/v1/stats/check-ins?area=440117104").status_code
        == 404
    )
    admin = client_as(app, accounts, "admin").get(url).json["total"]
    assert admin["active_units"] >= 2
    assert client_as(app, accounts, "admin").get("/api/v1/stats/check-ins").json["to"] == str(local_today())


def test_the_benchmark_and_wilson_interval():
    # 3 of 3 is 100% but too few to say it is below 98%; 2,973 of 3,000 (99.1%) is firmly above.
    assert wilson_interval(3, 3)[1] == 1.0
    low, high = wilson_interval(90, 100)
    assert (round(low, 4), round(high, 4)) == (0.8256, 0.9448)
    small = check_in_stats.rate_figures(3, 3, 0.98, "rate")
    big = check_in_stats.rate_figures(2973, 3000, 0.98, "rate")
    assert small["meets_benchmark"] and not small["below_benchmark"]
    assert big["wilson_low"] > 0.98 - 0.01 and not big["below_benchmark"]
    assert check_in_stats.rate_figures(90, 100, 0.98, "rate")["below_benchmark"]
    assert check_in_stats.rate_figures(0, 0, 0.98, "rate") == {
        "rate": None,
        "meets_benchmark": False,
        "wilson_low": None,
        "wilson_high": None,
        "below_benchmark": False,
    }


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2026-10-10&to=2026-10-10", "from"),
        ("from=2025-01-01&to=2026-10-10", "from"),
        ("group_by=town,grid,day", "group_by"),
        ("group_by=town,town", "group_by"),
        ("group_by=street", "group_by"),
        ("benchmark=1.5", "benchmark"),
        ("from=2026-13-01", "from"),
        ("area=12345", "area"),
    ],
)
def test_bad_statistics_queries_are_422_naming_the_field(client, query, field):
    for path in ("check-ins", "alert-responses"):
        if field == "benchmark" and path == "alert-responses":
            continue
        response = client.get(f"/api/v1/stats/{path}?{query}")
        assert response.status_code == 422, (path, response.json)
        assert response.content_type == "application/problem+json"
        assert field in {e["field"].split(".")[0] for e in response.json["errors"]}


def test_an_empty_window_has_a_null_rate(client, tree):
    body = client.get("/api/v1/stats/check-ins?area=330100&group_by=day").json
    assert body["groups"] == []
    assert body["total"]["active_unit_days"] == 0 and body["total"]["check_in_rate"] is None
