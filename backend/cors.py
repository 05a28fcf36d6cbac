"""Cross-origin reads for browser maps: the origins `WANGGE_CORS_ORIGINS` names, nothing else.

Preflights are answered before anyone signs in (a browser sends no credentials with them).
"""

from __future__ import annotations

import flask

from backend.config import settings

ALLOW_HEADERS = "Authorization, X-API-Key, Content-Type, Range, If-None-Match, If-Modified-Since"
EXPOSE_HEADERS = "ETag, Last-Modified, Content-Length, Content-Range, Content-Crs, Content-Disposition"
ALLOW_METHODS = "GET, HEAD, POST, PATCH, PUT, DELETE"


def _allowed_origin() -> str | None:
    origin = flask.request.headers.get("Origin")
    allowed = settings().cors_origins
    if not origin or not allowed:
        return None
    if "*" in allowed:
        return "*"
    return origin if origin in allowed else None


def preflight() -> flask.Response | None:
    request = flask.request
    if request.method != "OPTIONS" or "Access-Control-Request-Method" not in request.headers:
        return None
    response = flask.current_app.response_class(status=204)
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = ALLOW_METHODS
        response.headers["Access-Control-Allow-Headers"] = ALLOW_HEADERS
        response.headers["Access-Control-Max-Age"] = "600"
    response.vary.add("Origin")
    return response


def allow(response: flask.Response) -> flask.Response:
    origin = _allowed_origin()
    if origin is not None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS
    if settings().cors_origins:
        response.vary.add("Origin")
    return response


def init_app(app: flask.Flask) -> None:
    app.before_request(preflight)
    app.after_request(allow)
