"""Assessments (考核): a month frozen as it stood at its end, which later changes never alter."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from tests import factories
from tests.conftest import client_as
from tests.stats.reference import insert_events, lived

BEIJING = ZoneInfo("Asia/Shanghai")
GRID_A, GRID_B = "330100001001001", "330100002002002"
DISTRICT = "330100"
# October 2025 in Beijing: [30 September 16:00 UTC, 31 October 16:00 UTC).
MONTH = "2025-10"
START = datetime(2025, 10, 1, tzinfo=BEIJING)
END = datetime(2025, 11, 1, tzinfo=BEIJING)
SLA = timedelta(hours=48)


def utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat()


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2025, 10, day, hour, tzinfo=BEIJING)


HANDLED = ("dispatch", "start", "resolve")


def steps(accepted: datetime, *more: tuple[str, datetime]) -> list[tuple[str, datetime]]:
    """Reported an hour before acceptance, dispatched, started and resolved an hour after it
    (unless `more` says otherwise), then `more`."""
    early = [("report", accepted - timedelta(hours=1)), ("accept", accepted)]
    if more and more[0][0] in HANDLED:
        return early + list(more)
    handled = [(action, accepted + timedelta(hours=1)) for action in HANDLED]
    return early + handled + list(more)


@pytest.fixture
def october(session):  # type: ignore[no-untyped-def]
    """Events of the square district around October 2025, as they stood then.

    Due in October: one closed on time (to be reopened later), two resolved and still open at
    the month's end (to be closed late), one closed, reopened and closed again late, one
    rejected. Due in September and in November: one each.
    """
    factories.add_square_tree(session)
    events = {
        "on_time": lived(GRID_A, steps(at(2), ("close", at(3))), sla=SLA),
        "open": lived(
            GRID_A, steps(at(10), ("dispatch", at(11)), ("start", at(12)), ("resolve", at(20))), sla=SLA
        ),
        "open_b": lived(GRID_B, steps(at(25)), sla=SLA),
        "reopened": lived(
            GRID_A,
            steps(
                at(5),
                ("close", at(6)),
                ("reopen", at(8)),
                ("start", at(8, 10)),
                ("resolve", at(14)),
                ("close", at(15)),
            ),
            sla=SLA,
        ),
        "rejected": lived(GRID_A, [("report", at(1)), ("accept", at(1, 10)), ("reject", at(2))], sla=SLA),
        "september": lived(GRID_B, steps(datetime(2025, 9, 20, tzinfo=BEIJING), ("close", at(1))), sla=SLA),
        "november": lived(GRID_B, steps(at(28)), sla=timedelta(hours=120)),
    }
    insert_events(session, list(events.values()))
    session.flush()
    return events


def _act(client, event_id, action: str, **body):  # type: ignore[no-untyped-def]
    current = client.get(f"/api/v1/events/{event_id}").json
    response = client.post(
        f"/api/v1/events/{event_id}/actions", json={"action": action, "version": current["version"], **body}
    )
    assert response.status_code == 200, response.json
    return response.json


def _closure(client, **query):  # type: ignore[no-untyped-def]
    # Assessments freeze the exact figures (a district's month reads the rollups by default).
    window = {"area": DISTRICT, "from": utc(START), "to": utc(END), "group_by": "grid", "exact": "true"}
    response = client.get("/api/v1/stats/closure", query_string={**window, **query})
    assert response.status_code == 200, response.json
    return response.json


FIGURES_OF_CLOSURE = ("area", "from", "to", "as_of", "benchmark", "group_by", "totals", "groups")


def test_a_frozen_month_stays_as_it_stood_at_its_end(client, session, october):  # type: ignore[no-untyped-def]
    created = client.post("/api/v1/stats/assessments", json={"area": DISTRICT, "month": MONTH})
    assert created.status_code == 201, created.json
    frozen = created.json
    assert created.headers["Location"].endswith(f"/api/v1/stats/assessments/{frozen['id']}")
    assert (frozen["area"], frozen["month"], frozen["benchmark"]) == (DISTRICT, MONTH, 0.98)
    assert frozen["levels"] == ["town", "village", "grid"] and frozen["group_by"] == ["grid"]
    assert datetime.fromisoformat(frozen["from"]) == START and datetime.fromisoformat(frozen["to"]) == END
    assert datetime.fromisoformat(frozen["as_of"]) == END
    totals = frozen["totals"]
    # on_time, open, open_b and reopened are due; on_time and reopened were closed at the end.
    assert (totals["due"], totals["closed"], totals["closed_on_time"]) == (4, 2, 1)
    assert (totals["reworked"], totals["overdue_open"]) == (1, 2)
    assert [g["key"]["grid"] for g in frozen["groups"]] == [GRID_A, GRID_B]
    # The closure statistics of the window as of its end are the assessment's figures.
    as_of_end = _closure(client, as_of=utc(END))
    assert {k: as_of_end[k] for k in FIGURES_OF_CLOSURE} == {k: frozen[k] for k in FIGURES_OF_CLOSURE}

    # Then the month is reworked: a closed event reopened, the open ones closed late, more
    # events reported and accepted, a grid renamed.
    _act(client, october["on_time"].id, "reopen", reason="群众反映未解决")
    _act(client, october["open"].id, "close")
    _act(client, october["open_b"].id, "close")
    now = datetime.now(UTC)
    insert_events(session, [lived(GRID_B, steps(now - timedelta(hours=2), ("close", now)), sla=SLA)])
    insert_events(session, [lived(GRID_A, [("report", now)], sla=SLA)])
    session.execute(text("UPDATE areas SET name = '改名网格' WHERE code = :code"), {"code": GRID_A})
    session.commit()

    again = client.get(f"/api/v1/stats/assessments/{frozen['id']}")
    assert again.status_code == 200
    assert again.json == frozen
    assert again.json["groups"][0]["key"]["grid_name"] == "测试村11第1网格"  # as named then
    # As of the month's end the trail still says the same (only the name is today's) ...
    still = _closure(client, as_of=utc(END))
    assert still["totals"] == frozen["totals"]
    assert [{**g, "key": g["key"]["grid"]} for g in still["groups"]] == [
        {**g, "key": g["key"]["grid"]} for g in frozen["groups"]
    ]
    # ... and as of now it does not: on_time is open again, open and open_b were closed late.
    today = _closure(client)
    assert (today["totals"]["due"], today["totals"]["closed"], today["totals"]["closed_on_time"]) == (4, 3, 0)
    assert today["totals"] != frozen["totals"]


def test_a_month_is_frozen_once_and_only_after_it_ends(client, october):  # type: ignore[no-untyped-def]
    first = client.post(
        "/api/v1/stats/assessments", json={"area": DISTRICT, "month": MONTH, "benchmark": 0.9}
    )
    assert first.status_code == 201
    again = client.post("/api/v1/stats/assessments", json={"area": DISTRICT, "month": MONTH})
    assert again.status_code == 409
    assert again.content_type == "application/problem+json"
    assert again.json["assessment_id"] == first.json["id"]
    # Another area or another month is another assessment.
    town = client.post("/api/v1/stats/assessments", json={"area": GRID_A[:9], "month": MONTH})
    assert town.status_code == 201 and town.json["levels"] == ["village", "grid"]
    now = datetime.now(BEIJING)
    this_month = client.post("/api/v1/stats/assessments", json={"area": DISTRICT, "month": f"{now:%Y-%m}"})
    assert this_month.status_code == 422
    assert [e["field"] for e in this_month.json["errors"]] == ["month"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"area": DISTRICT, "month": "2025-13"}, "month"),
        ({"area": DISTRICT, "month": "2025-1"}, "month"),
        ({"area": DISTRICT, "month": "1969-12"}, "month"),
        ({"area": DISTRICT, "month": "9999-12"}, "month"),
        ({"area": DISTRICT, "month": "2025-10-01"}, "month"),
        ({"area": DISTRICT, "month": 202510}, "month"),
        ({"area": DISTRICT}, "month"),
        ({"area": "99999", "month": MONTH}, "area"),
        ({"area": "999999", "month": MONTH}, "area"),
        ({"month": MONTH}, "area"),
        ({"area": DISTRICT, "month": MONTH, "benchmark": 0}, "benchmark"),
        ({"area": DISTRICT, "month": MONTH, "benchmark": 1.5}, "benchmark"),
        ({"area": DISTRICT, "month": MONTH, "group_by": "worker"}, "group_by"),
    ],
)
def test_freezing_refuses_bad_input_naming_the_field(client, session, body, field):  # type: ignore[no-untyped-def]
    factories.add_square_tree(session)
    response = client.post("/api/v1/stats/assessments", json=body)
    assert response.status_code == 422, response.json
    assert response.content_type == "application/problem+json"
    assert field in [e["field"] for e in response.json["errors"]], response.json


def test_frozen_figures_by_each_level_and_as_csv(client, october):  # type: ignore[no-untyped-def]
    frozen = client.post("/api/v1/stats/assessments", json={"area": DISTRICT, "month": MONTH}).json
    url = f"/api/v1/stats/assessments/{frozen['id']}"
    for level in ("town", "village"):
        body = client.get(url, query_string={"group_by": level}).json
        closure = _closure(client, as_of=utc(END), group_by=level)
        assert body["group_by"] == [level] and body["groups"] == closure["groups"]
        assert body["totals"] == frozen["totals"]
    response = client.get(f"{url}.csv", query_string={"group_by": "village"})
    assert response.status_code == 200 and response.mimetype == "text/csv"
    assert response.headers["Content-Disposition"] == (
        f'attachment; filename="assessment_{DISTRICT}_{MONTH}_village.csv"'
    )
    closure_csv = client.get(
        "/api/v1/stats/closure.csv",
        query_string={
            "area": DISTRICT,
            "from": utc(START),
            "to": utc(END),
            "as_of": utc(END),
            "group_by": "village",
            "exact": "true",
        },
    )
    assert response.data == closure_csv.data
    rows = list(csv.reader(io.StringIO(response.data[3:].decode("utf-8"))))
    assert rows[0][:3] == ["village 村居", "village_name 村居名称", "due 应结案数"]
    # A grid's assessment holds its totals only.
    grid = client.post("/api/v1/stats/assessments", json={"area": GRID_A, "month": MONTH}).json
    assert grid["levels"] == [] and grid["group_by"] == [] and grid["groups"] == []
    assert grid["totals"]["due"] == 3
    refused = client.get(f"/api/v1/stats/assessments/{grid['id']}", query_string={"group_by": "grid"})
    assert refused.status_code == 422 and refused.json["errors"][0]["field"] == "group_by"
    assert client.get("/api/v1/stats/assessments/999999").status_code == 404


def test_the_database_refuses_to_change_a_frozen_figure(client, session, october):  # type: ignore[no-untyped-def]
    frozen = client.post("/api/v1/stats/assessments", json={"area": DISTRICT, "month": MONTH}).json
    for statement in (
        "UPDATE assessment_figures SET closed = closed + 1 WHERE assessment_id = :id",
        "DELETE FROM assessment_figures WHERE assessment_id = :id",
        "UPDATE assessments SET benchmark = 0.5 WHERE id = :id",
        "DELETE FROM assessments WHERE id = :id",
    ):
        nested = session.begin_nested()
        with pytest.raises(DBAPIError, match="frozen figures"):
            session.execute(text(statement), {"id": frozen["id"]})
        nested.rollback()


def test_assessments_are_listed_and_read_within_scope(app, accounts, session):  # type: ignore[no-untyped-def]
    admin = client_as(app, accounts, "admin")
    town, other_town = "440117103", "440117104"
    made = {}
    for area, month in (
        (town, "2025-09"),
        (town, "2025-10"),
        (f"{town}001", "2025-10"),
        (other_town, "2025-10"),
    ):
        response = admin.post("/api/v1/stats/assessments", json={"area": area, "month": month})
        assert response.status_code == 201, response.json
        made[(area, month)] = response.json["id"]

    def listed(who: str, **query: str) -> list[int]:
        response = client_as(app, accounts, who).get("/api/v1/stats/assessments", query_string=query)
        assert response.status_code == 200, response.json
        return [item["id"] for item in response.json["items"]]

    mine = [made[(f"{town}001", "2025-10")], made[(town, "2025-10")], made[(town, "2025-09")]]
    assert listed("supervisor") == mine and listed("gis") == mine
    assert listed("supervisor", month="2025-10") == mine[:2]
    assert listed("supervisor", area=f"{town}001") == mine[:1]
    assert listed("village_supervisor") == mine[:1]
    assert listed("other_supervisor") == [made[(other_town, "2025-10")]]
    assert set(listed("admin")) >= set(made.values())
    assert listed("worker") == []
    first = client_as(app, accounts, "admin").get("/api/v1/stats/assessments", query_string={"limit": 2}).json
    rest = admin.get(
        "/api/v1/stats/assessments", query_string={"limit": 2, "cursor": first["next_cursor"]}
    ).json
    assert [i["id"] for i in first["items"] + rest["items"]][:4] == sorted(made.values(), reverse=True)
    gis = client_as(app, accounts, "gis")
    assert "created_by" not in gis.get("/api/v1/stats/assessments").json["items"][0]
    assert "created_by" not in gis.get(f"/api/v1/stats/assessments/{mine[1]}").json
    supervisor = client_as(app, accounts, "supervisor")
    assert supervisor.get(f"/api/v1/stats/assessments/{mine[1]}").json["created_by"] == accounts.ids["admin"]
    outside = made[(other_town, "2025-10")]
    for who in ("supervisor", "gis", "worker"):
        client = client_as(app, accounts, who)
        assert client.get(f"/api/v1/stats/assessments/{outside}").status_code == 404
        assert client.get(f"/api/v1/stats/assessments/{outside}.csv").status_code == 404
    assert supervisor.get("/api/v1/stats/assessments", query_string={"area": other_town}).status_code == 404
    # Who may freeze: admins anywhere, supervisors in scope; never a worker or a GIS key.
    assert (
        supervisor.post("/api/v1/stats/assessments", json={"area": town, "month": "2025-08"}).status_code
        == 201
    )
    assert (
        supervisor.post(
            "/api/v1/stats/assessments", json={"area": other_town, "month": "2025-08"}
        ).status_code
        == 404
    )
    for who in ("worker", "gis"):
        refused = client_as(app, accounts, who).post(
            "/api/v1/stats/assessments", json={"area": town, "month": "2025-07"}
        )
        assert refused.status_code == 403, refused.json
