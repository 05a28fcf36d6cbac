"""Authenticate every API request before its view runs; views ask for the actor."""

from __future__ import annotations

from typing import Any, TypeVar

import flask

from backend.auth import service
from backend.auth.service import Actor, Unauthorized
from backend.db import get_session

T = TypeVar("T")


def public(view_class: T) -> T:
    """Mark a MethodView as open to anonymous callers."""
    view_class.public = True  # type: ignore[attr-defined]
    return view_class


def authenticate_request() -> None:
    """Resolve the caller of any non-public /api/ endpoint, or answer 401."""
    view: Any = flask.current_app.view_functions.get(flask.request.endpoint or "")
    if view is None or not flask.request.path.startswith("/api/"):
        return
    if getattr(getattr(view, "view_class", None), "public", False):
        return
    flask.g.actor = _actor_from_request()


def _actor_from_request() -> Actor:
    settings = flask.current_app.config["SETTINGS"]
    header = flask.request.headers.get("Authorization", "")
    scheme, _, credentials = header.partition(" ")
    key = flask.request.headers.get("X-API-Key")
    if scheme.lower() == "bearer" and credentials.strip():
        return service.actor_from_access_token(get_session(), settings, credentials.strip())
    if scheme.lower() == "apikey" and credentials.strip():
        key = credentials.strip()
    if key:
        return service.actor_from_api_key(get_session(), key)
    raise Unauthorized("Sign in: send `Authorization: Bearer <access token>` or an API key.")


def current_actor() -> Actor:
    actor: Actor = flask.g.actor
    return actor


def client_address() -> str:
    return flask.request.remote_addr or "unknown"
