"""Domain errors and their RFC 9457 problem+json rendering."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import marshmallow as ma
from werkzeug.exceptions import HTTPException

PROBLEM_JSON = "application/problem+json"


class DomainError(Exception):
    """An error a service raises; it knows its HTTP status but nothing else of HTTP."""

    status = 400
    title = "Bad request"
    slug = "bad-request"
    headers: dict[str, str] = {}

    def __init__(self, detail: str, *, errors: list[dict[str, Any]] | None = None, **extra: Any):
        super().__init__(detail)
        self.detail = detail
        self.errors = errors
        self.extra = extra


class NotFound(DomainError):
    status = 404
    title = "Not found"
    slug = "not-found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"
    slug = "conflict"


class PreconditionFailed(DomainError):
    status = 412
    title = "Precondition failed"
    slug = "precondition-failed"


class ValidationFailed(DomainError):
    """Input that is well-formed but wrong: each bad field is listed in `errors`."""

    status = 422
    title = "Validation failed"
    slug = "validation-failed"


class ServiceUnavailable(DomainError):
    """The database is down, restarting, locked or too slow for now: try again shortly."""

    status = 503
    title = "Service Unavailable"
    slug = "service-unavailable"
    headers = {"Retry-After": "5"}


def field_error(field: str, message: str, **extra: Any) -> dict[str, Any]:
    """Describe one bad field: its dotted name, a JSON pointer and what is wrong."""
    pointer = "/" + field.replace(".", "/") if field else ""
    return {"field": field, "pointer": pointer, "message": message, **extra}


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details."""

    type = ma.fields.String()
    title = ma.fields.String()
    status = ma.fields.Integer()
    detail = ma.fields.String()
    instance = ma.fields.String()
    errors = ma.fields.List(ma.fields.Dict(), metadata={"description": "One entry per bad field"})
    current_version = ma.fields.Integer(
        metadata={"description": "On 412 Precondition Failed: the version the resource is at now"}
    )
    status_now = ma.fields.String(
        metadata={"description": "On 409 Conflict of an event action: the event's status now"}
    )


def problem(
    status: int, title: str, detail: str | None = None, *, slug: str | None = None, **members: Any
) -> dict[str, Any]:
    """Build a problem document."""
    body: dict[str, Any] = {
        "type": f"https://wangge.example/problems/{slug}" if slug else "about:blank",
        "title": title,
        "status": status,
    }
    if detail:
        body["detail"] = detail
    body.update({k: v for k, v in members.items() if v is not None})
    return body


def from_domain_error(error: DomainError) -> dict[str, Any]:
    return problem(
        error.status, error.title, error.detail, slug=error.slug, errors=error.errors, **error.extra
    )


def from_http_exception(error: HTTPException) -> tuple[dict[str, Any], dict[str, str]]:
    """Turn a werkzeug/webargs exception into a problem document and headers."""
    status = error.code or 500
    data = getattr(error, "data", None) or {}
    # The exception's own headers (405's Allow, 401's WWW-Authenticate), less its HTML's type.
    headers = {k: v for k, v in error.get_headers() if k.lower() != "content-type"}
    headers.update(data.get("headers") or {})
    errors = None
    detail = data.get("message") or error.description
    if "messages" in data or "errors" in data:
        errors = flatten_messages(data.get("errors") or data.get("messages") or {})
        detail = "; ".join(f"{e['field'] or e['location']}: {e['message']}" for e in errors[:5])
    slug = error.name.lower().replace(" ", "-")
    return problem(status, error.name, detail, slug=slug, errors=errors), headers


def flatten_messages(messages: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Flatten webargs' nested {location: {field: [msgs]}} into a list of field errors."""
    out: list[dict[str, Any]] = []

    def walk(node: Any, path: list[str], location: str) -> None:
        if isinstance(node, Mapping):
            for key, value in node.items():
                walk(value, [*path, str(key)], location)
        elif isinstance(node, list | tuple) and node and all(isinstance(m, str) for m in node):
            for message in node:
                out.append(field_error(".".join(path), message, location=location))
        elif isinstance(node, list | tuple):
            for item in node:
                walk(item, path, location)
        else:
            out.append(field_error(".".join(path), str(node), location=location))

    for location, node in messages.items():
        walk(node, [], str(location))
    return out
