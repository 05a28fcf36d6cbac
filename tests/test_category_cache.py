"""The categories' SLA cache on the report path: no unknown codes in it, cleared on a change."""

from __future__ import annotations

import uuid

from backend.events import service as events


def _code() -> str:
    return "c" + uuid.uuid4().hex[:10]


def test_unknown_codes_are_not_cached(session):
    code = _code()
    assert events.category_sla_hours(session, code) is None
    assert code not in events._categories
    events.create_category(session, code=code, name_zh="新类", name_en="New", sla_hours=5)
    assert events.category_sla_hours(session, code) == 5


def test_a_changed_sla_is_read_at_once(session):
    code = _code()
    events.create_category(session, code=code, name_zh="新类", name_en="New", sla_hours=5)
    session.commit()
    assert events.category_sla_hours(session, code) == 5
    assert code in events._categories
    events.update_category(session, code, sla_hours=9)
    assert events.category_sla_hours(session, code) == 9
    session.commit()
    assert code not in events._categories
    assert events.category_sla_hours(session, code) == 9


def test_a_change_rolled_back_leaves_no_trace_in_the_cache(session):
    code = _code()
    events.create_category(session, code=code, name_zh="新类", name_en="New", sla_hours=5)
    session.commit()
    events.update_category(session, code, sla_hours=9)
    assert events.category_sla_hours(session, code) == 9  # this transaction's own value
    session.rollback()
    assert events.category_sla_hours(session, code) == 5


def test_a_category_changed_over_http_is_used_by_the_next_report(client):
    from tests.factories import report

    code = _code()
    created = client.post(
        "/api/v1/categories", json={"code": code, "name_zh": "新类", "name_en": "New", "sla_hours": 5}
    )
    assert created.status_code == 201, created.json
    body = report(113.64, 23.65, category=code, crs="gcj02", handled_on_spot=True, resolution_note="ok")
    first = client.post("/api/v1/events", json=body).json
    assert client.patch(f"/api/v1/categories/{code}", json={"sla_hours": 50}).status_code == 200
    second = client.post("/api/v1/events", json={**body, "description": "again"}).json
    hours = [(_time(e["due_at"]) - _time(e["accepted_at"])).total_seconds() / 3600 for e in (first, second)]
    assert hours == [5, 50]


def _time(value: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(value)
