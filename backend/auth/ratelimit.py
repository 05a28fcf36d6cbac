"""Login attempt limits, counted where every process and host sees the same numbers.

PostgreSQL by default (one upserted counter row per key and window), Redis when configured.
"""

from __future__ import annotations

import math
import time
from functools import lru_cache
from typing import Protocol

from limits import RateLimitItemPerSecond
from limits.storage import storage_from_string
from limits.strategies import FixedWindowRateLimiter
from sqlalchemy import text
from sqlalchemy.orm import Session

_HIT = text(
    "INSERT INTO login_attempts (key, window_start, count)"
    " VALUES (:key, to_timestamp(floor(extract(epoch FROM clock_timestamp()) / :w) * :w), 1)"
    " ON CONFLICT (key, window_start) DO UPDATE SET count = login_attempts.count + 1"
    " RETURNING count,"
    " ceil(extract(epoch FROM window_start + make_interval(secs => :w) - clock_timestamp()))"
)
_PRUNE = text("DELETE FROM login_attempts WHERE window_start < now() - interval '1 day'")


class Counter(Protocol):
    def hit(self, key: str, limit: int, window_s: int) -> int | None:
        """Count one attempt; return seconds to wait when over the limit, else None."""


class PostgresCounter:
    """Counts in the request's session; the caller commits before checking the password."""

    def __init__(self, session: Session):
        self.session = session

    def hit(self, key: str, limit: int, window_s: int) -> int | None:
        count, remaining = self.session.execute(_HIT, {"key": key, "w": window_s}).one()
        if count % 500 == 0:
            self.session.execute(_PRUNE)
        return max(1, int(remaining)) if count > limit else None


class RedisCounter:
    def __init__(self, url: str):
        self.limiter = _redis_limiter(url)

    def hit(self, key: str, limit: int, window_s: int) -> int | None:
        item = RateLimitItemPerSecond(limit, window_s)
        if self.limiter.hit(item, "login", key):
            return None
        reset_at, _ = self.limiter.get_window_stats(item, "login", key)
        return max(1, math.ceil(reset_at - time.time()))


def counter(redis_url: str | None, session: Session) -> Counter:
    """Redis's counts when configured, else PostgreSQL's in the request's session."""
    return RedisCounter(redis_url) if redis_url else PostgresCounter(session)


@lru_cache(maxsize=2)
def _redis_limiter(url: str) -> FixedWindowRateLimiter:
    return FixedWindowRateLimiter(storage_from_string(url))
