"""Probes, migrations and the committed OpenAPI document."""

from __future__ import annotations

from alembic import command
from sqlalchemy import text

from backend import openapi_doc
from backend.db import alembic_config


def test_healthz(client):
    assert client.get("/healthz").json == {"status": "ok"}


def test_readyz_reports_the_migration_head(client):
    body = client.get("/readyz").json
    assert body == {"status": "ready", "migration": openapi_doc_head()}


def openapi_doc_head() -> str:
    from backend.health import head_revision

    head = head_revision()
    assert head
    return head


def test_readyz_is_503_when_the_schema_is_behind(client, session):
    session.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    session.commit()
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"


def test_migrations_leave_nothing_for_autogenerate(database_url, engine):
    # Raises if the models and the migrated schema differ.
    command.check(alembic_config(database_url))


def test_append_only_trail_refuses_update_and_delete(client, session):
    import pytest
    from sqlalchemy.exc import DBAPIError

    from tests.factories import report

    assert client.post("/api/v1/events", json=report(113.6, 23.6)).status_code == 201
    for statement in (
        "UPDATE event_actions SET note = 'x'",
        "DELETE FROM event_actions",
        "TRUNCATE event_actions",
    ):
        with pytest.raises(DBAPIError, match="append-only"), session.begin_nested():
            session.execute(text(statement))


def test_committed_openapi_document_is_current():
    committed = openapi_doc.PATH.read_text(encoding="utf-8")
    assert committed == openapi_doc.render(), "openapi/openapi.json is stale: run `make openapi`"


def test_openapi_is_served_and_documents_problem_errors(client):
    spec = client.get("/openapi.json").json
    assert "/api/v1/events" in spec["paths"]
    default = spec["components"]["responses"]["DEFAULT_ERROR"]["content"]
    assert list(default) == ["application/problem+json"]
    assert client.get("/docs").status_code == 200


def test_unknown_route_and_method_are_problems(client):
    for response in (client.get("/api/v1/nowhere"), client.delete("/api/v1/categories")):
        assert response.status_code in (404, 405)
        assert response.content_type == "application/problem+json"


def test_the_wsgi_entry_point_freezes_the_start_up_heap(database_url, monkeypatch):
    import gc
    import importlib
    import sys

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.delitem(sys.modules, "backend.wsgi", raising=False)
    gc.unfreeze()
    try:
        module = importlib.import_module("backend.wsgi")
        # Modules, mappers, schemas and the app: well over ten thousand objects the garbage
        # collector's full passes no longer walk.
        assert gc.get_freeze_count() > 10_000
        assert module.app.name == "backend"
    finally:
        gc.unfreeze()
