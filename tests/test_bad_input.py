"""Input built to crash a parser, a driver or a clock: always a problem, never a 500, no row kept."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import Connection, text

from backend.common.json_provider import MAX_DEPTH, BadJson, loads_body, too_deep
from tests.factories import add_square_tree, report
from tests.org.factories import point

PROBLEM = "application/problem+json"
DEEP = "[" * 100_000 + "]" * 100_000
BIG = "1" * 401


@pytest.fixture
def tree(session):  # type: ignore[no-untyped-def]
    add_square_tree(session)
    session.commit()


@pytest.fixture
def crash_is_500(app, monkeypatch):  # type: ignore[no-untyped-def]
    """Answer a crash with a 500, as in production, instead of raising it in the test client."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)


def rows(connection: Connection) -> dict[str, int]:
    tables = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
    counts = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)
    return dict(connection.execute(text(f"SELECT {counts}")).one()._mapping)


def fields(response) -> set[str]:  # type: ignore[no-untyped-def]
    return {e["field"] for e in response.json.get("errors") or []}


# --- the JSON reader ---------------------------------------------------------------------------


def test_the_depth_limit_is_decided_before_parsing():
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert too_deep('{"a":' * 100_000 + "1" + "}" * 100_000)
    # Nests without a long run of one bracket are counted too: alternating, and a staircase.
    assert not too_deep("[{" * 32 + "}]" * 32)
    assert too_deep("[{" * 32 + "[]" + "}]" * 32)
    assert too_deep("[[]," * MAX_DEPTH + "]" * MAX_DEPTH)
    assert not too_deep("[[]," * (MAX_DEPTH - 1) + "]" * (MAX_DEPTH - 1))
    # Brackets inside strings, escaped quotes included, are text, not nesting.
    assert not too_deep(json.dumps({"text": "[" * 1000 + '\\"' + "{" * 1000}))
    assert loads_body(json.dumps({"text": '[{"\\'})) == {"text": '[{"\\'}


def test_the_reader_keeps_surrogates_and_big_numbers_for_the_fields_to_refuse():
    assert loads_body('{"a": "\\ud800", "b": ' + BIG + "}") == {"a": "\ud800", "b": int(BIG)}
    # Past Python's 4300-digit conversion limit: infinite, which every number field refuses.
    assert loads_body("[" + "9" * 5000 + ", -" + "9" * 5000 + "]") == [float("inf"), float("-inf")]


@pytest.mark.parametrize("body", [DEEP, "[NaN]", '{"a": Infinity}', b'"\xff"', "[1,"])
def test_what_is_not_json_is_refused(body):  # type: ignore[no-untyped-def]
    with pytest.raises(BadJson):
        loads_body(body)


# --- nested 100,000 deep ----------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/auth/token",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/events",
        "/api/v1/events/batch",
        "/api/v1/alerts",
        "/api/v1/categories",
    ],
)
@pytest.mark.parametrize("body", [DEEP, '{"a":' * 100_000 + "1" + "}" * 100_000], ids=["arrays", "objects"])
def test_json_nested_100000_deep_is_a_400(anon_client, client, connection, crash_is_500, path, body):  # type: ignore[no-untyped-def]
    before = rows(connection)
    # Sign-in, refresh and logout take anyone's body; the rest only a signed-in caller's.
    for who in (anon_client, client) if "/auth/" in path else (client,):
        response = who.post(path, data=body, content_type="application/json")
        assert response.status_code == 400 and response.mimetype == PROBLEM
        assert f"more than {MAX_DEPTH} levels" in response.json["detail"]
    assert rows(connection) == before


# --- lone surrogates --------------------------------------------------------------------------


def test_a_lone_surrogate_at_sign_in_is_a_422(anon_client, connection, crash_is_500):  # type: ignore[no-untyped-def]
    before = rows(connection)
    for body in ('{"username": "\\ud800", "password": "x"}', '{"username": "admin", "password": "\\udfff"}'):
        response = anon_client.post("/api/v1/auth/token", data=body, content_type="application/json")
        assert response.status_code == 422 and response.mimetype == PROBLEM
        assert fields(response) <= {"username", "password"} and fields(response)
    response = anon_client.post(
        "/api/v1/auth/refresh", data='{"refresh_token": "a\\ud800"}', content_type="application/json"
    )
    assert response.status_code == 422 and fields(response) == {"refresh_token"}
    # No attempt was counted: the body never reached the rate limiter.
    assert rows(connection) == before


def test_a_lone_surrogate_in_a_report_names_the_field(client, tree, connection, crash_is_500):  # type: ignore[no-untyped-def]
    before = rows(connection)
    body = json.dumps(report(120.05, 30.15, description="墙\ud800倒了"))
    response = client.post("/api/v1/events", data=body, content_type="application/json")
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert fields(response) == {"description"}
    contact = json.dumps(report(120.05, 30.15, contacts=[{"name": "\udc00"}]))
    response = client.post("/api/v1/events", data=contact, content_type="application/json")
    assert response.status_code == 422 and fields(response) == {"contacts.0.name"}
    assert rows(connection) == before


def test_a_lone_surrogate_fails_only_its_batch_item(client, tree, connection, crash_is_500):  # type: ignore[no-untyped-def]
    before = rows(connection)
    good, bad = report(120.05, 30.15), report(120.06, 30.15, description="\ud800")
    response = client.post(
        "/api/v1/events/batch", data=json.dumps({"items": [bad, good]}), content_type="application/json"
    )
    assert response.status_code == 207
    first, second = response.json["items"]
    assert first["outcome"] == "invalid" and first["problem"]["status"] == 422
    assert {e["field"] for e in first["problem"]["errors"]} == {"description"}
    assert second["outcome"] == "created"
    after = rows(connection)
    assert after["events"] == before["events"] + 1


def test_a_message_quoting_a_surrogate_is_still_written(client, crash_is_500):  # type: ignore[no-untyped-def]
    body = json.dumps({**report(120.05, 30.15), "location": {"type": "\ud800", "coordinates": [0, 0]}})
    response = client.post("/api/v1/events", data=body, content_type="application/json")
    assert response.status_code == 422 and fields(response) == {"location"}
    assert "\\ud800" in response.json["errors"][0]["message"]


# --- numbers of 401 digits --------------------------------------------------------------------


def _with_big_longitude(body: dict) -> str:  # type: ignore[type-arg]
    text_ = json.dumps({**body, "location": point(-1.5, 30.15)})
    return text_.replace("-1.5", BIG)


def test_a_401_digit_coordinate_is_a_422_naming_the_field(client, tree, connection, crash_is_500):  # type: ignore[no-untyped-def]
    before = rows(connection)
    for path, body in (
        ("/api/v1/events", report(120.05, 30.15)),
        ("/api/v1/alerts", {"kind": "fire", "location": point(120.05, 30.15)}),
    ):
        response = client.post(path, data=_with_big_longitude(body), content_type="application/json")
        assert response.status_code == 422 and response.mimetype == PROBLEM, path
        assert fields(response) == {"location"}, path
        assert "too large" in response.json["errors"][0]["message"]
    assert rows(connection) == before


@pytest.mark.parametrize("number", [BIG, "9" * 5000, "1e400", "-1e400"])
def test_a_huge_number_in_a_number_field_is_a_422(client, tree, crash_is_500, number):  # type: ignore[no-untyped-def]
    body = json.dumps(report(120.05, 30.15, accuracy_m=0.5, photos_expected=1))
    for name in ("accuracy_m", "photos_expected"):
        value = "0.5" if name == "accuracy_m" else "1"
        response = client.post(
            "/api/v1/events",
            data=body.replace(f'"{name}": {value}', f'"{name}": {number}'),
            content_type="application/json",
        )
        assert response.status_code == 422 and fields(response) == {name}


# --- times that overflow in UTC ---------------------------------------------------------------


@pytest.mark.parametrize("moment", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00"])
@pytest.mark.parametrize("name", ["reported_at", "occurred_at"])
def test_a_time_outside_utc_years_1_to_9999_is_a_422(client, tree, connection, crash_is_500, moment, name):  # type: ignore[no-untyped-def]
    before = rows(connection)
    response = client.post("/api/v1/events", json=report(120.05, 30.15, **{name: moment}))
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert fields(response) == {name}
    response = client.get("/api/v1/events", query_string={"from": moment})
    assert response.status_code == 422 and fields(response) == {"from"}
    assert rows(connection) == before


def test_the_edges_of_utc_still_pass(client, tree):  # type: ignore[no-untyped-def]
    response = client.post(
        "/api/v1/events", json=report(120.05, 30.15, occurred_at="0001-01-01T14:00:00+14:00")
    )
    assert response.status_code == 201


# --- forged cursors ---------------------------------------------------------------------------


def cursor(key: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    "path", ["users", "party-branches", "party-groups", "buildings", "emergency-units", "alerts"]
)
@pytest.mark.parametrize("key", ["[true]", "[false]", "[" + "1" + "0" * 30 + "]", "[-" + "1" * 20 + "]"])
def test_a_forged_cursor_is_a_422_naming_it(client, crash_is_500, path, key):  # type: ignore[no-untyped-def]
    forged = base64.urlsafe_b64encode(key.encode()).decode().rstrip("=")
    response = client.get(f"/api/v1/{path}", query_string={"cursor": forged})
    assert response.status_code == 422 and response.mimetype == PROBLEM
    assert fields(response) == {"cursor"}


@pytest.mark.parametrize("key", [["\ud800"], ["a\u0000"], [True]])
def test_a_forged_area_cursor_is_a_422(client, crash_is_500, key):  # type: ignore[no-untyped-def]
    response = client.get("/api/v1/areas", query_string={"cursor": cursor(key), "level": "grid"})
    assert response.status_code == 422 and fields(response) == {"cursor"}


def test_issued_cursors_still_page(client):  # type: ignore[no-untyped-def]
    first = client.get("/api/v1/users", query_string={"limit": 2}).json
    assert first["next_cursor"]
    second = client.get("/api/v1/users", query_string={"limit": 2, "cursor": first["next_cursor"]})
    assert second.status_code == 200
    assert {u["id"] for u in first["items"]}.isdisjoint(u["id"] for u in second.json["items"])
