"""One JSON line per request, its request id, and its latency for the metrics.

The line goes to stderr, which gunicorn makes its error log. It holds the request id, method,
route (the URL rule: never the path or the query string, which carry ids, API keys and tokens),
status, duration in milliseconds and who asked (`user:ID` or `key:ID`); no names, phones,
addresses or bodies. A caller's `X-Request-ID` is kept when it is short and made of safe
characters, else a new id is made; either way the response carries it back.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
import uuid
from datetime import UTC, datetime

import flask

from backend.ops import metrics

REQUEST_ID_HEADER = "X-Request-ID"
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
UNMATCHED = "(unmatched)"
# Anything else is "OTHER": a label per made-up method would grow the metrics without bound.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))

log = logging.getLogger("wangge.request")


class _Stderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (gunicorn's error log, a test's capture)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    def emit(self, record: logging.LogRecord) -> None:
        self.stream = sys.stderr
        super().emit(record)


def init_app(app: flask.Flask) -> None:
    """Time and log every request; register before any other request hook, to time them too."""
    if not any(isinstance(handler, _Stderr) for handler in log.handlers):
        handler = _Stderr()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False
    app.before_request(_start)
    app.after_request(_finish)


def request_id(presented: str | None) -> str:
    """The caller's request id when it is sane, else a new one."""
    if presented and _SANE_REQUEST_ID.fullmatch(presented):
        return presented
    return uuid.uuid4().hex


def _start() -> None:
    flask.g.request_started = time.perf_counter()
    flask.g.request_id = request_id(flask.request.headers.get(REQUEST_ID_HEADER))


def caller_ref() -> str | None:
    """Who asked, by id only: `user:ID`, `key:ID`, or None for an anonymous caller."""
    actor = flask.g.get("actor")
    if actor is None:
        return None
    if actor.user_id is not None:
        return f"user:{actor.user_id}"
    if actor.api_key_id is not None:
        return f"key:{actor.api_key_id}"
    return None


def _finish(response: flask.Response) -> flask.Response:
    started = flask.g.get("request_started", time.perf_counter())
    seconds = time.perf_counter() - started
    rid = flask.g.get("request_id") or request_id(None)
    response.headers[REQUEST_ID_HEADER] = rid
    # The app's own time, which browsers show beside the network's (the page's benchmark reads it).
    response.headers["Server-Timing"] = f"app;dur={seconds * 1000:.1f}"
    rule = flask.request.url_rule
    route = rule.rule if rule is not None else UNMATCHED
    method = flask.request.method if flask.request.method in METHODS else "OTHER"
    metrics.observe_request(route, method, response.status_code, seconds)
    line = {
        "ts": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "msg": "request",
        "request_id": rid,
        "method": method,
        "route": route,
        "status": response.status_code,
        "duration_ms": round(seconds * 1000, 1),
        "caller": caller_ref(),
    }
    log.info(json.dumps(line, ensure_ascii=False, separators=(",", ":")))
    return response
