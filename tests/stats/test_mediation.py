"""Mediation statistics against a reference that reads the cases in Python, and who gets them."""

from __future__ import annotations

import csv
import io
import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text

from backend.auth import service as auth
from backend.events import service as events
from backend.mediation import service as mediation
from backend.mediation.models import DISPUTE_TYPES
from tests.conftest import client_as
from tests.mediation.helpers import grid_point
from tests.stats.reference import percentile_cont, wilson

SHANGHAI = ZoneInfo("Asia/Shanghai")
TOWNS = ("440117103", "440117104")
START = datetime(2026, 1, 1, tzinfo=UTC)
END = datetime(2026, 12, 1, tzinfo=UTC)
MEDIATORS = ["李村委", "王律师", "陈乡贤", "赵民警"]
OUTCOME_SQL = text(
    "UPDATE mediation_cases SET outcome = :outcome, opened_at = :opened_at, outcome_at = :outcome_at,"
    " judicially_confirmed = :confirmed, agreement_sha256 = :sha, referred_to = :body,"
    " referral_reference = :reference WHERE id = :id"
)


@pytest.fixture
def cases(session, accounts) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    """Sixty cases over two towns' grids, most ended with an agreement, some referred or
    withdrawn, a few still open; then the rows as the database holds them."""
    rng = random.Random(16)
    admin = auth.actor_for(session, auth.get_user(session, accounts.ids["admin"]))
    grids = (
        session.execute(
            text(
                "SELECT code FROM areas WHERE level = 'grid' AND valid_to IS NULL"
                " AND left(code, 9) = ANY(:towns) ORDER BY code LIMIT 400"
            ),
            {"towns": list(TOWNS)},
        )
        .scalars()
        .all()
    )
    grids = [g for i, g in enumerate(grids) if i % 13 == 0][:12]
    for index in range(60):
        lon, lat = grid_point(session, grids[index % len(grids)])
        event, _ = events.report_event(
            session, events.Report(category="dispute", description="纠纷", lon=lon, lat=lat), actor=admin
        )
        team = [{"role": "other", "name": name} for name in rng.sample(MEDIATORS, rng.randint(1, 3))]
        case = mediation.open_case(
            session, event.id, actor=admin, dispute_type=rng.choice(DISPUTE_TYPES), mediators=team, parties=[]
        )
        if index % 12 == 11:
            continue  # still open
        opened = START + timedelta(hours=rng.randint(0, 24 * 330))
        outcome = rng.choices(("agreement", "failed_referred", "withdrawn"), (90, 6, 4))[0]
        body = rng.choice(("court", "petition_office", "police")) if outcome == "failed_referred" else None
        session.execute(
            OUTCOME_SQL,
            {
                "id": case.id,
                "outcome": outcome,
                "opened_at": opened,
                "outcome_at": opened + timedelta(hours=rng.randint(2, 24 * 40)),
                "confirmed": rng.random() < 0.3 if outcome == "agreement" else None,
                "sha": "0" * 64 if outcome == "agreement" else None,
                "body": body,
                "reference": "REF-1" if body else None,
            },
        )
    session.commit()
    rows = session.execute(
        text("SELECT * FROM mediation_cases WHERE town_code = ANY(:towns)"), {"towns": list(TOWNS)}
    ).mappings()
    return [dict(row) for row in rows]


def reference(
    rows: list[dict[str, Any]],
    area: str,
    start: datetime,
    end: datetime,
    key: str | None,
    benchmark: float = 0.98,
) -> dict[Any, dict[str, Any]]:
    """The figures per group, read from the rows alone (None: the totals)."""
    groups: dict[Any, list[dict[str, Any]]] = defaultdict(list)
    level = {6: "district", 9: "town", 12: "village", 15: "grid"}[len(area)]
    for row in rows:
        if row[f"{level}_code"] != area or row["outcome_at"] is None or not start <= row["outcome_at"] < end:
            continue
        if key is None:
            groups[None].append(row)
        elif key == "mediator":
            for mediator in row["mediators"]:
                groups[mediator["name"]].append(row)
        elif key == "month":
            local = row["outcome_at"].astimezone(SHANGHAI)
            groups[local.date().replace(day=1).isoformat()].append(row)
        elif key == "dispute_type":
            groups[row["dispute_type"]].append(row)
        else:
            groups[row[f"{key}_code"]].append(row)
    out = {}
    for group, members in groups.items():
        n = len(members)
        agreements = sum(r["outcome"] == "agreement" for r in members)
        days = [(r["outcome_at"] - r["opened_at"]).total_seconds() / 86400 for r in members]
        low, high = wilson(agreements, n)
        out[group] = {
            "cases": n,
            "agreements": agreements,
            "failed_referred": sum(r["outcome"] == "failed_referred" for r in members),
            "withdrawn": sum(r["outcome"] == "withdrawn" for r in members),
            "judicially_confirmed": sum(bool(r["judicially_confirmed"]) for r in members),
            **{
                f"referred_{b}": sum(r["referred_to"] == b for r in members)
                for b in ("court", "petition_office", "police")
            },
            "success_rate": agreements / n,
            "meets_benchmark": agreements / n >= benchmark,
            "wilson_low": low,
            "wilson_high": high,
            "below_benchmark": high < benchmark,
            "median_days_to_outcome": percentile_cont(days, 0.5),
            "p90_days_to_outcome": percentile_cont(days, 0.9),
        }
    return out


def _close(answer: dict[str, Any], expected: dict[str, Any]) -> None:
    for name, value in expected.items():
        if isinstance(value, float):
            assert answer[name] == pytest.approx(value, rel=1e-9, abs=1e-9), name
        else:
            assert answer[name] == value, name


def _url(area: str, group_by: str | None, start: datetime = START, end: datetime = END) -> str:
    query = (
        f"area={area}&from={start.isoformat().replace('+', '%2B')}&to={end.isoformat().replace('+', '%2B')}"
    )
    return f"/api/v1/stats/mediation?{query}" + (f"&group_by={group_by}" if group_by else "")


@pytest.mark.parametrize("area", ["440117", "440117103", "440117104"])
@pytest.mark.parametrize("key", [None, "town", "village", "grid", "mediator", "dispute_type", "month"])
def test_figures_equal_the_reference(app, accounts, cases, area, key):
    answer = client_as(app, accounts, "admin").get(_url(area, key)).json
    expected = reference(cases, area, START, END, key)
    if key is None:
        _close(answer["totals"], expected[None])
        assert answer["groups"] == []
        return
    got = {g["key"][key]: g for g in answer["groups"]}
    assert set(got) == set(expected)
    for group, figures in expected.items():
        _close(got[group], figures)
    totals = reference(cases, area, START, END, None)
    if totals:
        _close(answer["totals"], totals[None])


def test_a_shorter_window_counts_only_its_outcomes(app, accounts, cases):
    start, end = datetime(2026, 5, 1, tzinfo=UTC), datetime(2026, 8, 1, tzinfo=UTC)
    answer = client_as(app, accounts, "admin").get(_url("440117", "town", start, end)).json
    expected = reference(cases, "440117", start, end, "town")
    assert {g["key"]["town"]: g["cases"] for g in answer["groups"]} == {
        k: v["cases"] for k, v in expected.items()
    }


def test_csv_and_geojson(app, accounts, cases):
    admin = client_as(app, accounts, "admin")
    response = admin.get(_url("440117103", "village").replace("/mediation?", "/mediation.csv?"))
    assert response.status_code == 200 and response.mimetype == "text/csv"
    table = list(csv.reader(io.StringIO(response.get_data().decode("utf-8-sig"))))
    assert table[0][:4] == [
        "village 村居",
        "village_name 村居名称",
        "cases 调解结案数",
        "agreements 调解成功数",
    ]
    expected = reference(cases, "440117103", START, END, "village")
    assert {row[0]: int(row[2]) for row in table[1:]} == {k: v["cases"] for k, v in expected.items()}
    geo = admin.get(_url("440117103", "village").replace("/mediation?", "/mediation.geojson?")).json
    assert geo["type"] == "FeatureCollection"
    with_cases = {f["id"]: f["properties"]["cases"] for f in geo["features"] if f["properties"]["cases"]}
    assert with_cases == {k: v["cases"] for k, v in expected.items()}
    assert (
        admin.get(_url("440117103", "month").replace("/mediation?", "/mediation.geojson?")).status_code == 422
    )


def test_names_of_mediators_only_for_supervisors_in_scope(app, accounts, cases):
    url = _url("440117103", "mediator")
    assert client_as(app, accounts, "supervisor").get(url).status_code == 200
    assert client_as(app, accounts, "gis").get(url).status_code == 403
    assert client_as(app, accounts, "gis").get(_url("440117103", "dispute_type")).status_code == 200
    assert client_as(app, accounts, "other_supervisor").get(url).status_code == 404
    assert client_as(app, accounts, "worker").get(url).status_code == 404
    # A village's supervisor reads their village's mediators, not the town's.
    village = client_as(app, accounts, "village_supervisor")
    assert village.get(_url("440117103001", "mediator")).status_code == 200
    assert village.get(url).status_code == 404


def test_bad_queries_are_named(app, accounts):
    admin = client_as(app, accounts, "admin")
    for query, field in (
        ("area=440117&group_by=worker", "group_by"),
        ("area=440117&benchmark=2", "benchmark"),
        ("area=999999", "area"),
        ("area=440117&from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z", "from"),
    ):
        response = admin.get(f"/api/v1/stats/mediation?{query}")
        assert response.status_code == 422, query
        assert response.json["errors"][0]["field"].startswith(field)
