"""Overload degrades, never hangs: expensive requests get bounded slots.

Statistics and whole-layer downloads can take seconds each; left alone, a few dozen of them take
every request thread, and a phone's report or a health check waits behind them. So a view marked
`expensive`:

- takes one of the process's `expensive_slots` (fewer than its threads, so reports and health
  checks always find a free thread), waiting at most `expensive_wait_s` (by default not at all:
  a waiting request holds a thread too), else answers 503 with Retry-After;
- may run at most `expensive_per_caller` at a time for one caller, across every process and host
  (PostgreSQL advisory locks held by the request's transaction), else 429 with Retry-After;
- runs under its own, longer statement timeout (`expensive_timeout_ms`); every other request has
  the engine's default.
"""

from __future__ import annotations

import threading
import zlib
from typing import Any, TypeVar

import flask
from sqlalchemy import text

from backend.auth.scope import Actor
from backend.config import settings
from backend.db import get_session
from backend.errors import DomainError, ServiceUnavailable

T = TypeVar("T")
# Advisory lock keys of this module: (namespace, key) pairs, so they collide with no other use.
LOCK_NAMESPACE = 0x57_47_01


class TooManyRequests(DomainError):
    status = 429
    title = "Too Many Requests"
    slug = "too-many-requests"
    headers = {"Retry-After": "5"}


def expensive(view_class: T) -> T:
    """Mark a MethodView whose requests may take seconds (statistics, downloads)."""
    view_class.expensive = True  # type: ignore[attr-defined]
    return view_class


_SLOTS: dict[int, threading.BoundedSemaphore] = {}
_SLOTS_LOCK = threading.Lock()


def _slots(count: int) -> threading.BoundedSemaphore:
    with _SLOTS_LOCK:
        if count not in _SLOTS:
            _SLOTS[count] = threading.BoundedSemaphore(count)
        return _SLOTS[count]


# The first free slot of the caller's, and no more: LIMIT stops the scan at the first lock taken.
_CLAIM = text(
    "SELECT slot FROM generate_series(0, CAST(:slots AS int) - 1) AS slot"
    " WHERE pg_try_advisory_xact_lock(CAST(:namespace AS int), CAST(:key AS int) + slot) LIMIT 1"
)


def caller_key(actor: Actor) -> int:
    """The first of a caller's advisory-lock keys (its slots follow it)."""
    who = f"{actor.role}:{actor.user_id}:{actor.api_key_id}"
    # Room for the slots of each caller below the next caller's key, within a PostgreSQL int.
    return (zlib.crc32(who.encode()) % (2**26)) * 16


def limit_expensive() -> None:
    """Before an expensive view: take a process slot and the caller's slot, or refuse now."""
    view: Any = flask.current_app.view_functions.get(flask.request.endpoint or "")
    if not getattr(getattr(view, "view_class", None), "expensive", False):
        return
    config = settings()
    slots = _slots(config.expensive_slots)
    wait = config.expensive_wait_s
    if not slots.acquire(blocking=wait > 0, timeout=wait if wait > 0 else None):
        raise ServiceUnavailable("Too many statistics and downloads are running; retry shortly.")
    flask.g.expensive_slot = slots
    session = get_session()
    actor = flask.g.get("actor")
    if actor is not None:
        params = {
            "namespace": LOCK_NAMESPACE,
            "key": caller_key(actor),
            "slots": min(config.expensive_per_caller, 16),
        }
        if session.execute(_CLAIM, params).first() is None:
            raise TooManyRequests(
                f"You already have {config.expensive_per_caller} statistics or downloads running; "
                "wait for one to finish."
            )
    session.execute(
        text("SELECT set_config('statement_timeout', :ms, true)"), {"ms": str(config.expensive_timeout_ms)}
    )


def release_expensive(_error: BaseException | None) -> None:
    """After the request (a streamed download: after its stream): give the process slot back."""
    slots = flask.g.pop("expensive_slot", None)
    if slots is not None:
        slots.release()


def init_app(app: flask.Flask) -> None:
    app.before_request(limit_expensive)
    app.teardown_request(release_expensive)
