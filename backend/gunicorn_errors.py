"""gunicorn's own refusals as problem+json.

gunicorn answers some requests before any WSGI code runs: a request line longer than
limit_request_line (414), more or larger headers than limit_request_fields and
limit_request_field_size allow (431), a request it cannot parse (400). It writes those answers
with gunicorn.util.write_error, in HTML, and has no setting or hook for them; this replaces that
one function, so they are RFC 9457 problems like every other answer of the API.
"""

from __future__ import annotations

import json
import socket

from backend.errors import PROBLEM_JSON, problem


def install() -> None:
    """Have gunicorn write its refusals with write_problem (a no-op without gunicorn)."""
    try:
        from gunicorn import util
    except ImportError:  # pragma: no cover - served by something else
        return
    util.write_error = write_problem


def write_problem(sock: socket.socket, status_int: int, reason: str, mesg: str) -> None:
    """Write gunicorn's answer `status_int reason` with `mesg` as its detail, then close."""
    from gunicorn import util

    slug = reason.lower().replace(" ", "-")
    body = json.dumps(problem(status_int, reason, mesg or None, slug=slug)).encode()
    head = (
        f"HTTP/1.1 {status_int} {reason}\r\n"
        "Connection: close\r\n"
        f"Content-Type: {PROBLEM_JSON}\r\n"
        f"Content-Length: {len(body)}\r\n"
        "\r\n"
    )
    util.write_nonblock(sock, head.encode("latin-1") + body)
