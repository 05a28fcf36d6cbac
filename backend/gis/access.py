"""Who is asking, for /ogc and /tiles: outside /api/, so each view authenticates explicitly.

Desktop GIS clients send an API key in `X-API-Key` or `Authorization: ApiKey ...`, or, when they
cannot set headers, in the `api_key` query parameter; signed-in users send their bearer token.
Without credentials only the area layers are served, and only when the deployment allows it.
"""

from __future__ import annotations

import flask

from backend.auth import service as auth
from backend.auth.service import Actor, Unauthorized
from backend.config import settings
from backend.db import get_session

QUERY_KEY = "api_key"


def caller(*, anonymous_ok: bool) -> Actor | None:
    """The authenticated actor; None for an anonymous caller where that is allowed; else 401."""
    request = flask.request
    scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
    credentials = credentials.strip()
    session = get_session()
    if scheme.lower() == "bearer" and credentials:
        return auth.actor_from_access_token(session, settings(), credentials)
    key = (
        (credentials if scheme.lower() == "apikey" else "")
        or request.headers.get("X-API-Key", "").strip()
        or request.args.get(QUERY_KEY, "").strip()
    )
    if key:
        return auth.actor_from_api_key(session, key)
    if anonymous_ok and settings().ogc_anonymous_areas:
        return None
    raise Unauthorized(
        "Send an API key (X-API-Key header, Authorization: ApiKey ..., or the api_key query "
        "parameter) or a bearer token."
    )


def scope_key(actor: Actor | None) -> list[object]:
    """What decides the rows an actor sees, for cache validators."""
    if actor is None:
        return ["anonymous"]
    return [actor.role, actor.user_id, actor.area_code, list(actor.grid_codes)]
