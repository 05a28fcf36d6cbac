"""What the service counts for its operators, and the Prometheus text a scrape reads.

Under gunicorn every process writes its values to its own files in PROMETHEUS_MULTIPROC_DIR
(prometheus_client's multiprocess mode, set up by scripts/gunicorn.conf.py before the app is
loaded) and a scrape, whichever worker answers it, adds up the files of every worker, live or
gone. Elsewhere (tests, flask commands) the values stay in this process's memory.

Counting never fails the work it counts: a metric that cannot be written is logged and skipped.
Reports and actions count once their transaction commits, not when they are written.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import values as prometheus_values
from prometheus_client.metrics_core import Metric
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event
from sqlalchemy.orm import Session, SessionTransaction

log = logging.getLogger(__name__)

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# Requests take milliseconds; exports and statistics may take seconds, the database gives up at 30.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
ASSIGNMENTS = ("contains", "nearest", "unassigned")
SIGN_IN_FAILURE_REASONS = ("credentials", "rate_limited")

REGISTRY = CollectorRegistry(auto_describe=True)

REQUEST_SECONDS = Histogram(
    "wangge_http_request_duration_seconds",
    "Time to answer a request, by route (the URL rule, not the path), method and status.",
    ["route", "method", "status"],
    buckets=LATENCY_BUCKETS,
    registry=REGISTRY,
)
REPORTS = Counter(
    "wangge_reports",
    "Reports stored, by how they were assigned: contains, nearest or unassigned.",
    ["assignment"],
    registry=REGISTRY,
)
ACTIONS = Counter(
    "wangge_event_actions", "Lifecycle actions taken on events, by action.", ["action"], registry=REGISTRY
)
SIGN_IN_FAILURES = Counter(
    "wangge_sign_in_failures",
    "Refused sign-ins, by reason: credentials (wrong or disabled) or rate_limited.",
    ["reason"],
    registry=REGISTRY,
)
POOL_CHECKED_OUT = Gauge(
    "wangge_db_pool_checked_out",
    "Database connections checked out of the SQLAlchemy pools of all live processes.",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)
POOL_LIMIT = Gauge(
    "wangge_db_pool_limit",
    "Connections the SQLAlchemy pools of all live processes may hold (pool size plus overflow).",
    multiprocess_mode="livesum",
    registry=REGISTRY,
)

_warned_at = 0.0


def _safely(record: Callable[[], object]) -> None:
    """Record a value; a metrics store that fails (a removed directory, a full disk) is logged
    at most once a minute and never fails the request."""
    global _warned_at
    try:
        record()
    except Exception:  # whatever broke, the request goes on
        now = time.monotonic()
        if now - _warned_at > 60:
            _warned_at = now
            log.warning("metrics could not be recorded", exc_info=True)


def init_labels(actions: Iterable[str]) -> None:
    """Make every known label value appear at zero before it first happens."""

    def touch() -> None:
        for assignment in ASSIGNMENTS:
            REPORTS.labels(assignment)
        for action in actions:
            ACTIONS.labels(action)
        for reason in SIGN_IN_FAILURE_REASONS:
            SIGN_IN_FAILURES.labels(reason)

    _safely(touch)


def observe_request(route: str, method: str, status: int, seconds: float) -> None:
    _safely(lambda: REQUEST_SECONDS.labels(route, method, str(status)).observe(seconds))


def count_sign_in_failure(reason: str) -> None:
    _safely(lambda: SIGN_IN_FAILURES.labels(reason).inc())


def count_report(session: Session, assignment: str) -> None:
    """Count a stored report when its transaction commits."""
    _on_commit(session, lambda: REPORTS.labels(assignment).inc())


def count_action(session: Session, action: str) -> None:
    """Count a lifecycle action when its transaction commits."""
    _on_commit(session, lambda: ACTIONS.labels(action).inc())


# --- counting on commit ---------------------------------------------------------------------
#
# Counts wait in session.info under the transaction they were made in (a savepoint's or the
# outer one). A savepoint that is released hands its counts to the transaction around it; one
# rolled back drops them; the outer transaction's commit records them.

_PENDING = "wangge.metrics.pending"


def _on_commit(session: Session, record: Callable[[], object]) -> None:
    pending: dict[SessionTransaction, list[Callable[[], object]]] | None = session.info.get(_PENDING)
    if pending is None:
        pending = session.info[_PENDING] = {}
        event.listen(session, "after_commit", _committed)
        event.listen(session, "after_soft_rollback", _rolled_back)
    transaction = session.get_nested_transaction() or session.get_transaction()
    if transaction is None:  # outside any transaction there is nothing to wait for
        _safely(record)
        return
    pending.setdefault(transaction, []).append(record)


def _enclosing(transaction: SessionTransaction) -> SessionTransaction | None:
    """The savepoint or outer transaction around a savepoint (skipping flush markers)."""
    parent = transaction.parent
    while parent is not None and not parent.nested and parent.parent is not None:
        parent = parent.parent
    return parent


def _committed(session: Session) -> None:
    pending: dict[SessionTransaction, list[Callable[[], object]]] = session.info.get(_PENDING, {})
    savepoint = session.get_nested_transaction()
    if savepoint is not None:
        records = pending.pop(savepoint, [])
        outer = _enclosing(savepoint)
        if outer is not None and records:
            pending.setdefault(outer, []).extend(records)
        return
    for records in pending.values():
        for record in records:
            _safely(record)
    pending.clear()


def _rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    pending: dict[SessionTransaction, list[Callable[[], object]]] = session.info.get(_PENDING, {})
    if previous_transaction.parent is None:
        pending.clear()
    else:
        pending.pop(previous_transaction, None)


# --- the database pool ----------------------------------------------------------------------


def watch_pool(engine: Engine, limit: int) -> None:
    """Follow the checked-out connections of an engine's pool."""

    @event.listens_for(engine, "checkout")
    def _checkout(*_args: Any) -> None:
        # Set here, in the process that uses the pool, not in a parent that only built it.
        _safely(lambda: POOL_LIMIT.set(limit))
        _safely(POOL_CHECKED_OUT.inc)

    @event.listens_for(engine, "checkin")
    def _checkin(*_args: Any) -> None:
        _safely(POOL_CHECKED_OUT.dec)


# --- exposition -----------------------------------------------------------------------------


def multiprocess() -> bool:
    """Whether this process's metrics live in PROMETHEUS_MULTIPROC_DIR's files."""
    return bool(getattr(prometheus_values.ValueClass, "_multiprocess", False))


class _Collected:
    """A collector that yields given metric families (another registry's, or computed now)."""

    def __init__(self, source: Callable[[], Iterable[Metric]]):
        self.source = source

    def collect(self) -> Iterator[Metric]:
        yield from self.source()


def exposition(computed: Iterable[Metric] = ()) -> bytes:
    """The Prometheus text of every process's metrics and of `computed` (figures taken now)."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)
    else:
        registry.register(_Collected(REGISTRY.collect))
    fixed = list(computed)
    registry.register(_Collected(lambda: fixed))
    return generate_latest(registry)
