"""/metrics: the Prometheus text, for operators (admins) and for scrapers on this machine.

A caller on the loopback interface needs no credential, unless a proxy forwarded the request
(a proxy on this machine would otherwise make every caller look local). Everyone else gets 404,
as for anything that is not theirs. The route is not part of the API, so not in its document.
"""

from __future__ import annotations

import ipaddress
import logging

import flask
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.auth import context
from backend.db import get_session
from backend.errors import DomainError, NotFound
from backend.events import service as events
from backend.ops import metrics
from backend.replica import replica

log = logging.getLogger(__name__)

blp = flask.Blueprint("ops", __name__)

PROXY_HEADERS = ("Forwarded", "X-Forwarded-For", "X-Real-IP")
# A scrape must answer even when the database is slow: its figures are left out instead.
SCRAPE_QUERY_TIMEOUT_MS = 2000


def from_this_machine(request: flask.Request) -> bool:
    """The caller is on the loopback interface and no proxy passed the request on."""
    if any(header in request.headers for header in PROXY_HEADERS):
        return False
    try:
        address = ipaddress.ip_address(request.remote_addr or "")
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback


def _operator() -> bool:
    try:
        actor = context.caller()
    except DomainError:  # no credential, or not a valid one
        return False
    return actor is not None and actor.is_operator


def _taken_now() -> list[Metric]:
    """Figures read from the database at scrape time."""
    up = GaugeMetricFamily("wangge_database_up", "Whether the database answered this scrape (1) or not (0).")
    session = get_session()
    try:
        session.execute(text(f"SET LOCAL statement_timeout = {SCRAPE_QUERY_TIMEOUT_MS}"))
        overdue = events.count_open_overdue(session)
    except DBAPIError as error:
        log.warning("metrics scrape: the database did not answer: %s", error.orig)
        session.rollback()
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [
        *_replica_now(),
        up,
        GaugeMetricFamily(
            "wangge_events_overdue_open",
            "Open events (neither closed nor rejected) past their due time, counted at scrape time.",
            value=overdue,
        ),
    ]


def _replica_now() -> list[Metric]:
    """The standby's state at scrape time (nothing when there is none)."""
    standby = replica()
    if standby is None:
        return []
    state = standby.state(fresh=True)
    return [
        GaugeMetricFamily(
            "wangge_replica_up",
            "Whether the hot standby answered this scrape (1) or not (0).",
            value=int(state.up),
        ),
        GaugeMetricFamily(
            "wangge_replica_lag_seconds",
            "How far the hot standby is behind the primary (NaN when down).",
            value=state.lag_s if state.lag_s is not None else float("nan"),
        ),
        GaugeMetricFamily(
            "wangge_replica_in_use",
            "Whether reads go to the hot standby (1) or, while it is down or lags more than "
            "the limit, to the primary (0).",
            value=int(state.usable),
        ),
    ]


@blp.get("/metrics")
def scrape() -> flask.Response:
    """Prometheus metrics of every worker"""
    if not (from_this_machine(flask.request) or _operator()):
        raise NotFound("No such resource.")
    body = metrics.exposition(_taken_now())
    return flask.Response(body, content_type=metrics.CONTENT_TYPE, headers={"Cache-Control": "no-store"})
