"""The supervisors' page (一幅图一张表): its files, and the sign-in that keeps its login in cookies.

The page is plain ES modules (web/src) and MapLibre GL JS from npm (web/node_modules, pinned by
web/package-lock.json); the API docs' Swagger UI comes from npm the same way. Everything is
served from here, nothing from another origin. The page's login lives in HttpOnly, SameSite=Strict
cookies that its scripts cannot read (backend.auth.context); a strict Content-Security-Policy
allows no inline script. These routes are pages, not the JSON API: they are left out of the
OpenAPI document and their access is tested on its own (tests/dashboard).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import flask
import marshmallow as ma

from backend.auth import context, service
from backend.config import settings
from backend.db import get_session
from backend.errors import NotFound, ValidationFailed, field_error

blp = flask.Blueprint("dashboard", __name__)

WEB = Path(__file__).resolve().parent / "web"
SOURCES = WEB / "src"
VENDOR = {
    "maplibre-gl": WEB / "node_modules" / "maplibre-gl" / "dist",
    "swagger-ui": WEB / "node_modules" / "swagger-ui-dist",
}
VENDOR_FILES = (".js", ".mjs", ".css", ".png")
TYPES = {".js": "text/javascript", ".mjs": "text/javascript", ".css": "text/css", ".json": "application/json"}


def _csp(basemap: str) -> str:
    """The page's Content-Security-Policy: this origin only, and the basemap's when one is set
    (MapLibre fetches its tiles and draws them as images)."""
    outside = f" {basemap}" if basemap else ""
    return "; ".join(
        (
            "default-src 'none'",
            "script-src 'self'",
            # MapLibre runs its tile work in a module worker loaded from this origin.
            "worker-src 'self'",
            "style-src 'self'",
            f"img-src 'self' data: blob:{outside}",
            f"connect-src 'self'{outside}",
            "base-uri 'none'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        )
    )


def _basemap_origin() -> str:
    parts = urlsplit(settings().basemap_url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else ""


# Sign-in and refresh come with this header, which a form or page of another origin cannot send
# without a preflight that the API refuses; sign-out needs the login's own CSRF token.
PAGE_HEADER = "X-Wangge-Page"
SESSION_PATH = "/dashboard/session"


def _secure(response: flask.Response) -> flask.Response:
    response.headers["Content-Security-Policy"] = _csp(_basemap_origin())
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def _file(folder: Path, name: str, *, max_age: int) -> flask.Response:
    path = (folder / name).resolve()
    if not path.is_relative_to(folder.resolve()) or not path.is_file():
        raise NotFound(f"No file {name}.")
    response = flask.send_file(path, mimetype=TYPES.get(path.suffix), max_age=max_age, conditional=True)
    return _secure(response)


@blp.get("/dashboard")
@blp.get("/dashboard/")
def page() -> flask.Response:
    """The page itself; it holds no data, so anyone may load it and then sign in."""
    return _file(SOURCES, "index.html", max_age=0)


@blp.get("/dashboard/src/<path:name>")
def source(name: str) -> flask.Response:
    return _file(SOURCES, name, max_age=0)


@blp.get("/dashboard/vendor/<package>/<path:name>")
def vendor(package: str, name: str) -> flask.Response:
    folder = VENDOR.get(package)
    if folder is None or not name.endswith(VENDOR_FILES):
        raise NotFound(f"No file {package}/{name}.")
    # Versions change only with the lock file; an hour's cache keeps reloads quick.
    return _file(folder, name, max_age=3600)


@blp.get("/dashboard/config")
def config() -> flask.Response:
    """What the page needs before it draws: the basemap, if the operator set one (no login needed:
    it is the same for everyone)."""
    current = settings()
    basemap = (
        {"url": current.basemap_url, "crs": current.basemap_crs, "attribution": current.basemap_attribution}
        if current.basemap_url
        else None
    )
    return _no_store(flask.jsonify({"basemap": basemap}))


class SignInSchema(ma.Schema):
    username = ma.fields.String(required=True, validate=ma.validate.Length(1, 150))
    password = ma.fields.String(required=True, validate=ma.validate.Length(1, 1024))


def _page_request() -> None:
    if flask.request.headers.get(PAGE_HEADER) != "1":
        raise service.Forbidden(f"Sign-in from the page only (the {PAGE_HEADER} header is missing).")


def _cookie_options(path: str) -> dict[str, Any]:
    return {"httponly": True, "samesite": "Strict", "secure": flask.request.is_secure, "path": path}


def _signed_in(pair: service.TokenPair) -> flask.Response:
    """The answer to a sign-in or refresh: the login in cookies, the page's facts in the body."""
    actor = service.actor_from_page_login(get_session(), settings(), pair.access_token)
    response = flask.jsonify(_session_body(actor, pair.access_token))
    response.set_cookie(context.SESSION_COOKIE, pair.access_token, **_cookie_options("/"))
    response.set_cookie(context.REFRESH_COOKIE, pair.refresh_token, **_cookie_options(SESSION_PATH))
    return _no_store(response)


def _session_body(actor: Any, access_token: str) -> dict[str, Any]:
    user = service.get_user(get_session(), actor.user_id)
    return {
        "signed_in": True,
        "username": user.username,
        "display_name": user.display_name,
        "role": actor.role,
        "area_code": actor.area_code,
        "csrf_token": service.csrf_token(settings(), access_token),
    }


def _no_store(response: flask.Response) -> flask.Response:
    response.headers["Cache-Control"] = "no-store"
    return _secure(response)


@blp.post(SESSION_PATH)
def sign_in() -> flask.Response:
    """Sign in with a username and password; the login goes into HttpOnly cookies."""
    _page_request()
    try:
        data = SignInSchema().load(flask.request.get_json(silent=True) or {})
    except ma.ValidationError as error:
        messages: dict[str, Any] = error.normalized_messages()  # type: ignore[assignment]
        raise ValidationFailed(
            "The sign-in needs a username and a password.",
            errors=[field_error(name, "; ".join(map(str, text))) for name, text in messages.items()],
        ) from error
    pair = context.sign_in(data["username"], data["password"])
    response = _signed_in(pair)
    get_session().commit()
    return response


@blp.get(SESSION_PATH)
def who() -> flask.Response:
    """Who the page's login is, with its CSRF token; else whether a refresh may renew it."""
    token = flask.request.cookies.get(context.SESSION_COOKIE, "")
    try:
        actor = service.actor_from_page_login(get_session(), settings(), token)
    except service.Unauthorized:
        renewable = bool(flask.request.cookies.get(context.REFRESH_COOKIE))
        return _no_store(flask.jsonify({"signed_in": False, "renewable": renewable}))
    return _no_store(flask.jsonify(_session_body(actor, token)))


@blp.post(SESSION_PATH + "/refresh")
def refresh() -> flask.Response:
    """A new access token for the page's login, from its refresh cookie (each works once)."""
    _page_request()
    token = flask.request.cookies.get(context.REFRESH_COOKIE, "")
    if not token:
        raise service.Unauthorized("Not signed in.")
    session = get_session()
    try:
        pair = service.refresh(session, settings(), token)
    except service.TokenReused:
        session.commit()  # keep the login's revocation
        raise
    response = _signed_in(pair)
    session.commit()
    return response


@blp.delete(SESSION_PATH)
def sign_out() -> flask.Response:
    """End the page's login: its tokens stop working at once and its cookies are cleared."""
    token = flask.request.cookies.get(context.SESSION_COOKIE, "")
    refresh_token = flask.request.cookies.get(context.REFRESH_COOKIE, "")
    try:
        service.actor_from_page_login(get_session(), settings(), token)
        context.check_csrf(token)
    except service.Unauthorized:
        _page_request()  # an expired login is signed out from the page all the same
    if refresh_token:
        try:
            service.logout(get_session(), refresh_token)
            get_session().commit()
        except service.Unauthorized:
            pass  # a refresh cookie that no longer works has no login left to end
    response = flask.Response(status=204)
    response.delete_cookie(context.SESSION_COOKIE, **_cookie_options("/"))
    response.delete_cookie(context.REFRESH_COOKIE, **_cookie_options(SESSION_PATH))
    return _no_store(response)
