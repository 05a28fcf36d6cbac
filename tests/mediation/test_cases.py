"""Mediation cases: who opens them, what they record, how they end, and that the dispute's event
closes only once its case has an outcome."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.conftest import client_as
from tests.mediation.helpers import PARTIES, PDF, TEAM, dispute, end_case, open_case, upload_agreement


@pytest.fixture
def supervisor(app, accounts):  # type: ignore[no-untyped-def]
    return client_as(app, accounts, "supervisor")


def test_a_dispute_opens_a_case_at_the_centre_holding_it(app, accounts, session, supervisor):
    event = dispute(app, accounts, session)
    response = open_case(supervisor, event["id"])
    assert response.status_code == 201, response.json
    case = response.json
    assert case["event_id"] == event["id"] and case["outcome"] is None
    assert case["responsible_area"] == event["responsible_area"] == event["village"]
    assert (case["grid"], case["town"]) == (event["grid"], "440117103")
    assert case["mediator_roles"] == ["village_cadre", "legal_adviser", "respected_resident"]
    assert case["mediators"] == TEAM and case["parties"] == PARTIES
    assert response.headers["Location"] == f"/api/v1/mediation/cases/{case['id']}"
    again = open_case(supervisor, event["id"])
    assert again.status_code == 409


def test_who_opens_a_case(app, accounts, session, supervisor):
    event = dispute(app, accounts, session)
    assert open_case(client_as(app, accounts, "worker"), event["id"]).status_code == 403
    assert open_case(client_as(app, accounts, "gis"), event["id"]).status_code == 403
    assert open_case(client_as(app, accounts, "other_supervisor"), event["id"]).status_code == 404
    # Not a dispute: a supervisor may not, an admin may (marking it one).
    other = dispute(app, accounts, session, category="environment")
    refused = open_case(supervisor, other["id"])
    assert refused.status_code == 409 and refused.json["errors"][0]["field"] == "event_id"
    assert open_case(client_as(app, accounts, "admin"), other["id"]).status_code == 201


def test_a_team_is_one_to_three(app, accounts, session, supervisor):
    event = dispute(app, accounts, session)
    for team in ([], [*TEAM, {"role": "lawyer", "name": "赵律师"}]):
        response = open_case(supervisor, event["id"], mediators=team)
        assert response.status_code == 422 and response.json["errors"][0]["field"].startswith("mediators")
    bad_role = open_case(supervisor, event["id"], mediators=[{"role": "mayor", "name": "x"}])
    assert bad_role.status_code == 422


def test_sessions_are_recorded_while_the_case_is_open(app, accounts, session, supervisor):
    case = open_case(supervisor, dispute(app, accounts, session)["id"]).json
    url = f"/api/v1/mediation/cases/{case['id']}/sessions"
    made = supervisor.post(
        url, json={"held_at": "2026-12-01T10:00:00+08:00", "place": "村委会", "notes": "双方陈述"}
    )
    assert made.status_code == 201 and made.json["notes"] == "双方陈述"
    assert (
        client_as(app, accounts, "worker")
        .post(url, json={"held_at": "2026-12-01T10:00:00+08:00"})
        .status_code
        == 403
    )
    listed = supervisor.get(url).json
    assert [s["place"] for s in listed] == ["村委会"] and listed[0]["notes"] == "双方陈述"
    # Notes, names and phones are the supervisors' in scope: the grid's worker reads the case
    # without them.
    for who in ("worker", "gis"):
        client = client_as(app, accounts, who)
        assert "notes" not in client.get(url).json[0]
        seen = client.get(f"/api/v1/mediation/cases/{case['id']}").json
        assert "parties" not in seen and "mediators" not in seen and seen["mediator_roles"]
    assert client_as(app, accounts, "other_supervisor").get(url).status_code == 404
    case = supervisor.get(f"/api/v1/mediation/cases/{case['id']}").json
    assert end_case(supervisor, case, "withdrawn").status_code == 200
    late = supervisor.post(url, json={"held_at": "2026-12-02T10:00:00+08:00"})
    assert late.status_code == 409


def test_an_agreement_needs_its_document_and_whether_a_court_confirmed_it(app, accounts, session, supervisor):
    case = open_case(supervisor, dispute(app, accounts, session)["id"]).json
    no_document = end_case(supervisor, case, "agreement", judicially_confirmed=True)
    assert no_document.status_code == 409
    png = io.BytesIO()
    Image.new("RGB", (3, 3)).save(png, format="PNG")
    assert upload_agreement(supervisor, case["id"], b"plain text", "a.txt").status_code == 415
    assert upload_agreement(supervisor, case["id"], PDF[:-7], "cut.pdf").status_code == 422
    uploaded = upload_agreement(supervisor, case["id"], png.getvalue(), "scan.png")
    assert uploaded.status_code == 200 and uploaded.json["has_agreement"]
    uploaded = upload_agreement(supervisor, case["id"])
    assert uploaded.status_code == 200
    case = uploaded.json
    unconfirmed = end_case(supervisor, case, "agreement")
    assert unconfirmed.status_code == 422 and unconfirmed.json["errors"][0]["field"] == "judicially_confirmed"
    stale = end_case(
        supervisor, {**case, "version": case["version"] - 1}, "agreement", judicially_confirmed=True
    )
    assert stale.status_code == 412
    done = end_case(supervisor, case, "agreement", judicially_confirmed=True)
    assert done.status_code == 200, done.json
    assert done.json["outcome"] == "agreement" and done.json["judicially_confirmed"] is True
    assert end_case(supervisor, done.json, "withdrawn").status_code == 409
    document = supervisor.get(f"/api/v1/mediation/cases/{case['id']}/agreement")
    assert document.status_code == 200 and document.mimetype == "application/pdf" and document.data == PDF
    for who in ("worker", "gis", "other_supervisor"):
        assert (
            client_as(app, accounts, who).get(f"/api/v1/mediation/cases/{case['id']}/agreement").status_code
            == 404
        )


def test_a_failed_mediation_is_referred_with_the_receiving_bodys_reference(
    app, accounts, session, supervisor
):
    case = open_case(supervisor, dispute(app, accounts, session)["id"]).json
    for extra, field in (({}, "referred_to"), ({"referred_to": "court"}, "referral_reference")):
        response = end_case(supervisor, case, "failed_referred", **extra)
        assert response.status_code == 422 and response.json["errors"][0]["field"] == field
    mixed = end_case(supervisor, case, "withdrawn", referred_to="police")
    assert mixed.status_code == 422
    done = end_case(
        supervisor, case, "failed_referred", referred_to="court", referral_reference="(2026)粤0117民初123号"
    )
    assert done.status_code == 200
    assert (done.json["referred_to"], done.json["referral_reference"]) == ("court", "(2026)粤0117民初123号")


def _act(client, event, action, **extra):  # type: ignore[no-untyped-def]
    response = client.post(
        f"/api/v1/events/{event['id']}/actions", json={"action": action, "version": event["version"], **extra}
    )
    return response


def test_the_event_closes_only_once_its_case_has_an_outcome(app, accounts, session, supervisor):
    worker = client_as(app, accounts, "worker")
    event = dispute(app, accounts, session)
    case = open_case(supervisor, event["id"]).json
    event = _act(supervisor, event, "accept").json
    event = _act(supervisor, event, "dispatch", assignee_id=accounts.ids["worker"]).json
    event = _act(worker, event, "start").json
    event = _act(worker, event, "resolve", note="调解中").json
    blocked = _act(supervisor, event, "close")
    assert blocked.status_code == 409 and "mediation" in blocked.json["detail"]
    assert end_case(supervisor, case, "withdrawn").status_code == 200
    closed = _act(supervisor, event, "close")
    assert closed.status_code == 200 and closed.json["status"] == "closed"
    # A closed event takes no new case.
    assert open_case(client_as(app, accounts, "admin"), event["id"]).status_code == 409


def test_cases_are_listed_within_scope(app, accounts, session, supervisor):
    made = open_case(supervisor, dispute(app, accounts, session)["id"]).json
    for who, sees in (
        ("admin", True),
        ("supervisor", True),
        ("worker", True),
        ("gis", True),
        ("other_supervisor", False),
    ):
        items = client_as(app, accounts, who).get("/api/v1/mediation/cases?limit=1000").json["items"]
        assert (made["id"] in {c["id"] for c in items}) == sees, who
    open_only = supervisor.get("/api/v1/mediation/cases?open=true&area=440117103").json["items"]
    assert made["id"] in {c["id"] for c in open_only}
    assert supervisor.get("/api/v1/mediation/cases?outcome=agreement").json["items"] == [] or all(
        c["outcome"] == "agreement"
        for c in supervisor.get("/api/v1/mediation/cases?outcome=agreement").json["items"]
    )
