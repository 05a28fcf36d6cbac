"""The Api class, error handling and blueprint registration."""

from __future__ import annotations

import http
import logging
from typing import Any

import flask
import flask_smorest
from apispec.ext.marshmallow import MarshmallowPlugin
from flask_smorest.utils import prepare_response
from sqlalchemy.exc import DBAPIError, IntegrityError, InterfaceError, OperationalError
from werkzeug.exceptions import HTTPException

from backend.errors import (
    PROBLEM_JSON,
    DomainError,
    ProblemSchema,
    ServiceUnavailable,
    from_domain_error,
    from_http_exception,
    problem,
)

log = logging.getLogger(__name__)


class Api(flask_smorest.Api):
    """flask-smorest's Api, documenting and sending RFC 9457 problem+json for every error."""

    ERROR_SCHEMA = ProblemSchema

    def _register_responses(self) -> None:
        for status in http.HTTPStatus:
            response: dict[str, Any] = {"description": status.phrase}
            if status >= 400:
                response["schema"] = self.ERROR_SCHEMA
            prepare_response(response, self.spec, PROBLEM_JSON)
            self.spec.components.response(status.name, response, lazy=True)
        response = {"description": "Default error response", "schema": self.ERROR_SCHEMA}
        prepare_response(response, self.spec, PROBLEM_JSON)
        self.spec.components.response("DEFAULT_ERROR", response, lazy=True)

    def _register_error_handlers(self) -> None:
        self._app.register_error_handler(HTTPException, self.handle_http_exception)
        self._app.register_error_handler(DomainError, handle_domain_error)
        self._app.register_error_handler(IntegrityError, handle_integrity_error)
        self._app.register_error_handler(DBAPIError, handle_database_error)
        self._app.register_error_handler(Exception, handle_unexpected)

    def handle_http_exception(self, error: HTTPException) -> flask.Response:  # type: ignore[override]
        body, headers = from_http_exception(error)
        if (error.code or 500) >= 500:
            log.error("unhandled error: %s", error)
        return problem_response(body, headers)


def problem_response(body: dict[str, Any], headers: dict[str, str] | None = None) -> flask.Response:
    response = flask.current_app.response_class(
        flask.json.dumps(body), status=body["status"], mimetype=PROBLEM_JSON
    )
    for key, value in (headers or {}).items():
        response.headers[key] = value
    return response


def handle_domain_error(error: DomainError) -> flask.Response:
    return problem_response(from_domain_error(error), error.headers)


def handle_integrity_error(error: IntegrityError) -> flask.Response:
    # The driver's text names tables and values: keep it in the log, not in the answer.
    log.warning("integrity error: %s", error.orig)
    return problem_response(
        problem(409, "Conflict", "The request conflicts with stored data.", slug="conflict")
    )


def handle_database_error(error: DBAPIError) -> flask.Response:
    """A database that is down, restarting, locked or slow is a 503 to retry; anything else the
    driver raises is a 500, as problem+json all the same."""
    if isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated:
        return handle_domain_error(ServiceUnavailable("The database is not reachable or too busy just now."))
    return handle_unexpected(error)


def handle_unexpected(error: Exception) -> flask.Response:
    log.exception("unhandled error", exc_info=error)
    return problem_response(
        problem(
            500, "Internal Server Error", "Something went wrong on our side.", slug="internal-server-error"
        )
    )


def make_api(app: flask.Flask) -> Api:
    """Create the Api with the project's spec settings."""
    app.config.setdefault("API_TITLE", "Wangge")
    app.config.setdefault("API_VERSION", "1.0.0")
    app.config.setdefault("OPENAPI_VERSION", "3.0.3")
    app.config.setdefault("OPENAPI_URL_PREFIX", "/")
    app.config.setdefault("OPENAPI_JSON_PATH", "openapi.json")
    app.config.setdefault("OPENAPI_SWAGGER_UI_PATH", "/docs")
    # Swagger UI from npm (backend/dashboard/web), served by the app: the docs work offline.
    app.config.setdefault("OPENAPI_SWAGGER_UI_URL", "/dashboard/vendor/swagger-ui/")
    app.config.setdefault("OPENAPI_REDOC_PATH", "/redoc")
    app.config.setdefault(
        "API_SPEC_OPTIONS",
        {
            "info": {
                "description": "Wangge (网格): grid-based community governance. Areas, event "
                "reports assigned by polygon lookup, and the closed loop around them. "
                "Sign in at /api/v1/auth/token and send `Authorization: Bearer <token>`; GIS "
                "clients send `X-API-Key`.",
            },
            "components": {
                "securitySchemes": {
                    "bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                },
            },
            "security": [{"bearerAuth": []}, {"apiKey": []}],
        },
    )
    return Api(app, spec_kwargs={"marshmallow_plugin": MarshmallowPlugin()})


def register_blueprints(api: Api) -> None:
    """Register every routes module's blueprint, in the order the OpenAPI document lists them."""
    from backend import health
    from backend.areas import routes as areas
    from backend.auth import routes as auth
    from backend.events import routes as events
    from backend.gis import routes as gis
    from backend.mediation import routes as mediation
    from backend.org import routes as org
    from backend.patrols import routes as patrols
    from backend.stats import routes as stats

    for module in (health, auth, areas, events, org, mediation, stats, patrols):
        api.register_blueprint(module.blp)
    # The downloads are documented from the layer registry, so their blueprint is built now.
    gis.register(api)


def register_operator_routes(app: flask.Flask) -> None:
    """Routes outside the API and its document: /metrics for operators, the supervisors' page
    (/dashboard) with its files, and Open311 GeoReport v2 (a standard of its own)."""
    from backend.dashboard import routes as dashboard
    from backend.open311 import routes as open311
    from backend.ops import routes as ops

    app.register_blueprint(ops.blp)
    app.register_blueprint(dashboard.blp)
    app.register_blueprint(open311.blp)
