"""Property-based fuzzing of the whole API from its own OpenAPI document.

Every documented operation gets generated requests, valid and invalid; no answer may be a 5xx,
and every answer must match the documented status, content type and schema.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture
def api_schema(app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_wsgi("/openapi.json", app)


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=list(HealthCheck),
)
def test_api_conforms_to_its_openapi_document(case, accounts):  # type: ignore[no-untyped-def]
    # As the administrator, so requests get past sign-in and reach every handler.
    case.call_and_validate(
        headers=accounts.headers("admin"),
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
