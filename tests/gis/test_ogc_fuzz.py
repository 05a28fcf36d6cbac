"""Property-based fuzzing of /ogc from its own OpenAPI document (served at /ogc/api).

Generated requests, valid and invalid, against every documented operation: no 5xx, and every
answer matches the documented status, content type and schema.
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
def ogc_schema(app):  # type: ignore[no-untyped-def]
    return schemathesis.openapi.from_wsgi("/ogc/api", app)


schema = schemathesis.pytest.from_fixture("ogc_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck))
def test_ogc_api_conforms_to_its_openapi_document(case, accounts, reports):  # type: ignore[no-untyped-def]
    # With the GIS key: the client these endpoints are for.
    case.call_and_validate(
        # The WSGI transport does not undo gzip (tests/gis/test_browsers.py checks it).
        headers={**accounts.headers("gis"), "Accept-Encoding": "identity"},
        checks=[
            not_a_server_error,
            status_code_conformance,
            content_type_conformance,
            response_schema_conformance,
        ],
    )
