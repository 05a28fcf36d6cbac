"""Input built to crash a parser, a driver or a clock: always a problem, never a 500, no row kept."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import Connection, text

from backend.common.json_provider import MAX_DEPTH, BadJson, loads_body, too_deep

PROBLEM = "application/problem+json"
DEEP = "[" * 100_000 + "]" * 100_000


@pytest.fixture
def crash_is_500(app, monkeypatch):  # type: ignore[no-untyped-def]
    """Answer a crash with a 500, as in production, instead of raising it in the test client."""
    monkeypatch.setitem(app.config, "PROPAGATE_EXCEPTIONS", False)


def rows(connection: Connection) -> dict[str, int]:
    tables = connection.execute(text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars()
    counts = ", ".join(f'(SELECT count(*) FROM "{t}") AS "{t}"' for t in tables)
    return dict(connection.execute(text(f"SELECT {counts}")).one()._mapping)


# --- the JSON reader ---------------------------------------------------------------------------


def test_the_depth_limit_is_decided_before_parsing():
    assert not too_deep("[" * MAX_DEPTH + "]" * MAX_DEPTH)
    assert too_deep("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1))
    assert too_deep('{"a":' * 100_000 + "1" + "}" * 100_000)
    # Brackets inside strings, escaped quotes included, are text, not nesting.
    assert not too_deep(json.dumps({"text": "[" * 1000 + '\\"' + "{" * 1000}))
    assert loads_body(json.dumps({"text": '[{"\\'})) == {"text": '[{"\\'}


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
