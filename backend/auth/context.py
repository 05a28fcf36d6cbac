"""Who is asking: the request's credential, parsed in one place, and the actor it yields.

Users send `Authorization: Bearer <access token>`. Read-only GIS keys come in
`Authorization: ApiKey <key>`, `X-API-Key: <key>` or, for desktop GIS clients that cannot set
headers, the `api_key` query parameter. The supervisors' page (backend/dashboard) sends its
login's access token in an HttpOnly cookie, and with its writes a CSRF token. Every /api/
request is authenticated before its view runs; /ogc and /tiles (which may serve area layers
anonymously) ask `caller` themselves.
"""

from __future__ import annotations

import hmac
from typing import Any, TypeVar

import flask
import marshmallow as ma

from backend.auth import service
from backend.auth.ratelimit import Counter, counter
from backend.auth.scope import Actor
from backend.auth.service import Unauthorized
from backend.config import settings
from backend.db import get_session
from backend.errors import DomainError
from backend.ops import metrics

T = TypeVar("T")
QUERY_KEY = "api_key"
# A signed link's token (auth.service.sign_link), in the query of the one URL it signs.
LINK_TOKEN = "token"
# The supervisors' page signs in through cookies its scripts cannot read (backend/dashboard):
# the access token, and the refresh token on the page's session path only. Writes made with
# them carry the login's CSRF token in this header.
SESSION_COOKIE = "wangge_session"
REFRESH_COOKIE = "wangge_refresh"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
SIGN_IN = (
    "Sign in: send `Authorization: Bearer <access token>`, or an API key (X-API-Key header, "
    "Authorization: ApiKey ..., or the api_key query parameter)."
)


def public(view_class: T) -> T:
    """Mark a MethodView as open to anonymous callers."""
    view_class.public = True  # type: ignore[attr-defined]
    return view_class


def _credential(request: flask.Request) -> tuple[str, str] | None:
    """("bearer", token), ("key", key), ("link", signed link token) or ("page", the page's
    access token from its cookie), or None when the request carries none."""
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    value = value.strip()
    if scheme.lower() == "bearer" and value:
        return "bearer", value
    link = request.args.get(LINK_TOKEN, "").strip()
    if link:
        return "link", link
    key = (
        (value if scheme.lower() == "apikey" else "")
        or request.headers.get("X-API-Key", "").strip()
        or request.args.get(QUERY_KEY, "").strip()
    )
    if key:
        return "key", key
    page = request.cookies.get(SESSION_COOKIE, "").strip()
    return ("page", page) if page else None


def caller(*, anonymous_ok: bool = False) -> Actor | None:
    """The actor behind this request; None for an anonymous caller where the deployment allows
    anonymous area reads and the resource does; else 401."""
    credential = _credential(flask.request)
    if credential is None:
        if anonymous_ok and settings().ogc_anonymous_areas:
            return None
        raise Unauthorized(SIGN_IN)
    kind, value = credential
    if kind == "bearer":
        actor = service.actor_from_access_token(get_session(), settings(), value)
    elif kind == "link":
        request = flask.request
        query = [(n, v) for n, v in request.args.items(multi=True) if n != LINK_TOKEN]
        actor = service.actor_from_signed_link(
            get_session(), settings(), value, request.method, request.path, query
        )
    elif kind == "page":
        actor = service.actor_from_page_login(get_session(), settings(), value)
        if flask.request.method not in SAFE_METHODS:
            check_csrf(value)
    else:
        actor = service.actor_from_api_key(get_session(), value)
    # The request's actor, whichever route asked: the request log names it by id.
    flask.g.actor = actor
    return actor


def check_csrf(access_token: str) -> None:
    """A write with the page's cookie must carry its login's CSRF token, which only the page
    itself learns (from its own origin); else 403."""
    sent = flask.request.headers.get(CSRF_HEADER, "")
    if not hmac.compare_digest(sent.encode(), service.csrf_token(settings(), access_token).encode()):
        raise service.Forbidden(f"A write from the page needs its {CSRF_HEADER} header.")


def authenticate_request() -> None:
    """Resolve the caller of any non-public /api/ endpoint, or answer 401."""
    view: Any = flask.current_app.view_functions.get(flask.request.endpoint or "")
    if view is None or not flask.request.path.startswith("/api/"):
        return
    if getattr(getattr(view, "view_class", None), "public", False):
        return
    flask.g.actor = caller()


def current_actor() -> Actor:
    actor: Actor = flask.g.actor
    return actor


def client_address() -> str:
    return flask.request.remote_addr or "unknown"


# --- signing in -------------------------------------------------------------------------------


class TooManyAttempts(DomainError):
    status = 429
    title = "Too Many Requests"
    slug = "too-many-requests"


def _counter() -> Counter:
    return counter(settings().ratelimit_redis_url, get_session())


def _limit_login(username: str) -> None:
    config = settings()
    hits = _counter()
    waits = [
        hits.hit(f"user:{username.lower()}", config.login_limit_per_user, config.login_window_s),
        hits.hit(f"addr:{client_address()}", config.login_limit_per_address, config.login_window_s),
    ]
    get_session().commit()  # the count stands whether or not the password is right
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        error = TooManyAttempts(f"Too many sign-in attempts; try again in {wait} s.")
        error.headers = {"Retry-After": str(wait)}
        raise error


def sign_in(username: str, password: str) -> service.TokenPair:
    """Check a username and password within the sign-in limits and open a login; the caller
    commits. The API's token route and the page's sign-in both come here."""
    try:
        _limit_login(username)
        return service.login(get_session(), settings(), username, password)
    except TooManyAttempts:
        metrics.count_sign_in_failure("rate_limited")
        raise
    except service.Unauthorized:
        metrics.count_sign_in_failure("credentials")
        raise


# --- answers within the rule ----------------------------------------------------------------

# A field's `metadata={"personal": ...}` says what it carries: "contacts" (names and phones of the
# people a row involves), "people" (person ids, names of office holders, notes) or
# "sensitive_text" (free text, withheld for sensitive categories).
PERSONAL = "personal"


class ScopedSchema(ma.Schema):
    """A response schema that drops what the request's caller may not see.

    Every field that carries personal data says so in its metadata, and the caller's actor
    decides per row; so a new route that dumps through these schemas cannot forget the rule.
    """

    @ma.post_dump(pass_original=True)
    def _within_scope(self, data: dict[str, Any], original: Any, **kwargs: Any) -> dict[str, Any]:
        actor: Actor | None = flask.g.get("actor") if flask.has_request_context() else None
        for name, field in self.dump_fields.items():
            kind = field.metadata.get(PERSONAL)
            if kind is None or name not in data:
                continue
            if kind == "sensitive_text":
                if not (actor is not None and actor.sees_sensitive_text) and getattr(
                    original, "sensitive", True
                ):
                    data[name] = None
            elif actor is None or not (
                actor.sees_personal(original) if kind == "contacts" else actor.sees_people
            ):
                del data[name]
        return data
