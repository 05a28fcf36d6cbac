"""Open311 GeoReport v2 at /open311/v2: its own standard, outside the OpenAPI document.

Every resource answers as JSON or XML by its extension (`services.json`, `services.xml`); errors
are a list of `{code, description}` (`<errors><error>...`) with the HTTP status the spec gives:
400 for a bad or missing parameter, 403 for a missing or invalid `api_key`, 404 for an unknown
service, request or token, 429 past a rate limit.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any
from xml.etree import ElementTree

import flask
from werkzeug.exceptions import HTTPException

from backend.auth.context import client_address
from backend.auth.ratelimit import counter
from backend.config import settings
from backend.db import get_session
from backend.errors import DomainError
from backend.open311 import service
from backend.open311.service import Open311Error

blp = flask.Blueprint("open311", __name__, url_prefix="/open311/v2")

FORMAT = "<any(json, xml):fmt>"
MEDIA_TYPES = {"json": "application/json", "xml": "text/xml"}
SPECIFICATION = "http://wiki.open311.org/GeoReport_v2"
CHANGESET = "2026-12-07T00:00:00Z"
# The element a list's items take in XML, by the list's name.
XML_ITEMS = {
    "endpoints": "endpoint",
    "formats": "format",
    "attributes": "attribute",
    "possible_duplicates": "service_request_id",
}
# Longest free text a resident may send.
TEXT_LIMITS = {"description": 5000, "address_string": 500, "media_url": 2000}
CONTACT_LIMITS = {"first_name": 50, "last_name": 50, "email": 200, "phone": 40}


def _value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _xml_element(tag: str, value: Any) -> ElementTree.Element:
    element = ElementTree.Element(tag)
    if isinstance(value, dict):
        for key, item in value.items():
            element.append(_xml_element(key, item))
    elif isinstance(value, list):
        for item in value:
            element.append(_xml_element(XML_ITEMS.get(tag, "item"), item))
    elif isinstance(value, bool):
        element.text = "true" if value else "false"
    elif value is not None:
        element.text = str(_value(value))
    return element


def _answer(fmt: str, body: Any, root: str, item: str | None = None, status: int = 200) -> flask.Response:
    """`body` (a dict, or a list of dicts under `root`/`item` in XML) in the asked format."""
    if fmt == "xml":
        element = ElementTree.Element(root)
        if isinstance(body, list):
            for entry in body:
                element.append(_xml_element(item or "item", entry))
        else:
            element = _xml_element(root, body)
        data = ElementTree.tostring(element, encoding="utf-8", xml_declaration=True)
    else:
        data = flask.json.dumps(_jsonable(body)).encode()
    response = flask.Response(data, status=status, content_type=f"{MEDIA_TYPES[fmt]}; charset=utf-8")
    return response


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return _value(value)


def _format() -> str:
    view_args = flask.request.view_args or {}
    fmt = view_args.get("fmt") or flask.request.path.rpartition(".")[2]
    return fmt if fmt in MEDIA_TYPES else "json"


def _error(status: int, description: str, headers: dict[str, str] | None = None) -> flask.Response:
    response = _answer(_format(), [{"code": status, "description": description}], "errors", "error", status)
    response.headers.update(headers or {})
    return response


@blp.errorhandler(DomainError)
def _domain_error(error: DomainError) -> flask.Response:
    return _error(error.status, error.detail, error.headers)


@blp.errorhandler(HTTPException)
def _http_error(error: HTTPException) -> flask.Response:
    return _error(error.code or 400, error.description or error.name)


@blp.route(f"/discovery.{FORMAT}")
def discovery(fmt: str) -> flask.Response:
    """Where the GeoReport v2 endpoint is and what it speaks."""
    body = {
        "changeset": CHANGESET,
        "contact": "Wangge governance centre (综治中心)",
        "key_service": "Registered apps get an api_key from the district's administrators.",
        "endpoints": [
            {
                "specification": SPECIFICATION,
                "url": flask.url_for("open311.discovery", fmt=fmt, _external=True).rsplit("/", 1)[0],
                "changeset": CHANGESET,
                "type": "production",
                "formats": list(MEDIA_TYPES.values())[::-1],
            }
        ],
    }
    return _answer(fmt, body, "discovery")


def _service(category: Any) -> dict[str, Any]:
    return {
        "service_code": category.code,
        "service_name": category.name_zh,
        "description": f"{category.name_zh} ({category.name_en})",
        "metadata": False,
        "type": "realtime",
        "keywords": category.name_en,
        "group": category.parent_code or "",
    }


@blp.route(f"/services.{FORMAT}")
def services(fmt: str) -> flask.Response:
    """The categories as services (service_code = category code)."""
    return _answer(fmt, [_service(c) for c in service.services(get_session())], "services", "service")


@blp.route(f"/services/<string:code>.{FORMAT}")
def service_definition(code: str, fmt: str) -> flask.Response:
    """A service's definition: no extra attributes are asked for."""
    category = service.service(get_session(), code)
    return _answer(fmt, {"service_code": category.code, "attributes": []}, "service_definition")


def _text(name: str, limit: int) -> str | None:
    value = flask.request.form.get(name, "").strip()
    if len(value) > limit:
        raise Open311Error(400, f"{name} is longer than {limit} characters.")
    if any((ord(c) < 32 and c not in "\t\r\n") or "\ud800" <= c <= "\udfff" for c in value):
        raise Open311Error(400, f"{name} holds characters that are not text.")
    return value or None


def _coordinate(name: str, bound: float) -> float | None:
    raw = flask.request.form.get(name, "").strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Open311Error(400, f"{name} must be a number (WGS84 degrees), not {raw[:40]!r}.") from None
    if not math.isfinite(value) or not -bound <= value <= bound:
        raise Open311Error(400, f"{name} must lie between -{bound:g} and {bound:g}.")
    return value


def _contact() -> dict[str, Any] | None:
    values = {name: _text(name, limit) for name, limit in CONTACT_LIMITS.items()}
    if values["email"] and "@" not in values["email"]:
        raise Open311Error(400, "email is not an e-mail address.")
    if not any(values.values()):
        return None
    name = " ".join(v for v in (values["last_name"], values["first_name"]) if v) or "居民 (resident)"
    contact: dict[str, Any] = {"name": name, "role": "反映人 (reporter)"}
    contact |= {k: values[k] for k in ("phone", "email") if values[k]}
    return contact


def _limit(app_id: int) -> None:
    config = settings()
    hits = counter(config.ratelimit_redis_url, get_session())
    waits = [
        hits.hit(f"open311:app:{app_id}", config.open311_limit_per_app, config.open311_window_s),
        hits.hit(
            f"open311:addr:{client_address()}", config.open311_limit_per_address, config.open311_window_s
        ),
    ]
    get_session().commit()  # the count stands whatever becomes of the request
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        raise Open311Error(
            429, f"Too many requests; try again in {wait} s.", headers={"Retry-After": str(wait)}
        )


def _public(request: service.PublicRequest) -> dict[str, Any]:
    return dict(vars(request))


@blp.route(f"/requests.{FORMAT}", methods=["POST"])
def submit(fmt: str) -> flask.Response:
    """POST a service request (form-encoded), with the app's api_key."""
    session = get_session()
    app = service.app_for_key(session, flask.request.form.get("api_key", "").strip())
    _limit(app.id)
    latitude, longitude = _coordinate("lat", 90), _coordinate("long", 180)
    submission = service.Submission(
        service_code=flask.request.form.get("service_code", "").strip(),
        description=_text("description", TEXT_LIMITS["description"]),
        lat=latitude,
        long=longitude,
        address_string=_text("address_string", TEXT_LIMITS["address_string"]),
        media_url=_text("media_url", TEXT_LIMITS["media_url"]),
        contact=_contact(),
    )
    if submission.media_url and not submission.media_url.startswith(("http://", "https://")):
        raise Open311Error(400, "media_url must be an http or https URL.")
    done = service.submit(session, app, submission, nearest_min_m=settings().nearest_min_m)
    session.commit()
    duplicates = [str(d["id"]) for d in done.possible_duplicates]
    notice = "可能与已有反映重复 (possibly a duplicate of an open request nearby)" if duplicates else None
    body = [
        {
            "service_request_id": str(done.event.id),
            "token": done.request.token,
            "service_notice": notice,
            "account_id": None,
            "possible_duplicates": duplicates,
        }
    ]
    return _answer(fmt, body, "service_requests", "request", 201)


def _date(name: str) -> datetime | None:
    raw = flask.request.args.get(name, "").strip()
    if not raw:
        return None
    try:
        value = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise Open311Error(400, f"{name} must be a W3C date-time, e.g. 2026-12-01T00:00:00Z.") from None
    if value.tzinfo is None:
        raise Open311Error(400, f"{name} needs a time zone (Z or an offset).")
    return value


def _whole(name: str, default: int, high: int) -> int:
    raw = flask.request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not 1 <= int(raw) <= high:
        raise Open311Error(400, f"{name} must be a whole number from 1 to {high}.")
    return int(raw)


@blp.route(f"/requests.{FORMAT}", methods=["GET"])
def requests(fmt: str) -> flask.Response:
    """GET service requests: by id, or by service, status and dates (the last 90 days by default,
    1,000 a page at most; `page` and `page_size` page on)."""
    args = flask.request.args
    status = args.get("status", "").strip() or None
    if status not in (None, "open", "closed"):
        raise Open311Error(400, "status is open or closed.")
    ids = [v.strip() for v in args.get("service_request_id", "").split(",") if v.strip()]
    found = service.find_requests(
        get_session(),
        ids=ids or None,
        service_code=args.get("service_code", "").strip() or None,
        start=_date("start_date"),
        end=_date("end_date"),
        status=status,
        page=_whole("page", 1, 10**6),
        page_size=_whole("page_size", service.MAX_PAGE_SIZE, service.MAX_PAGE_SIZE),
        now=datetime.now(UTC),
    )
    return _answer(fmt, [_public(r) for r in found], "service_requests", "request")


@blp.route(f"/requests/<string:request_id>.{FORMAT}")
def request_by_id(request_id: str, fmt: str) -> flask.Response:
    """GET one service request (a list of one, as the spec has it)."""
    found = service.get_request(get_session(), request_id)
    return _answer(fmt, [_public(found)], "service_requests", "request")


@blp.route(f"/tokens/<string:token>.{FORMAT}")
def token(token: str, fmt: str) -> flask.Response:
    """The service request a POST's token stands for."""
    request_id, value = service.token_request(get_session(), token)
    return _answer(fmt, [{"service_request_id": request_id, "token": value}], "service_requests", "request")


@blp.route("/<path:anything>", methods=["GET", "POST"])
def unknown(anything: str) -> flask.Response:
    """Anything else under /open311/v2, in the spec's error shape."""
    return _error(404, f"No GeoReport v2 resource {anything[:100]}; see discovery.json.")
