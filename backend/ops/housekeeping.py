"""Housekeeping: the tables that grow with use lose the rows nothing reads any more.

- `login_attempts`: a counter matters only in its own window; kept a while after it ends.
- `refresh_tokens`: an expired or revoked token never works again; kept a while after.
- `sync_states`: a phone resumes from its newest cursor (or the one before, when an answer was
  lost); the newest few per user are kept, and none older than the retention.
- `patrols`: an open patrol the server has not heard of for the idle time is closed at its
  last point (not a deletion: the step counts the patrols it closed).
- `patrol_days`: not a deletion: the daily patrol figures of the days due are computed (each
  past local day once, and again when a batch of it arrives late, backend.patrols.service),
  each day in its own transaction, before the raw batches they are made of may go.
- `patrol_batches`: raw track batches older than the retention, once their days' figures were
  computed after they arrived (backend.patrols).

Each sweep deletes in batches, one transaction each, so no lock is held for long and a sweep
that is stopped keeps what it did. Two sweeps at once (two servers) only share the work.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy import TextClause, text
from sqlalchemy.orm import Session, sessionmaker

from backend.config import Settings
from backend.db import session_scope
from backend.patrols import figures
from backend.patrols import service as patrols
from backend.stats.days import local_today

BATCH = 5000


@dataclass(frozen=True)
class Retention:
    login_attempts_hours: int
    login_window_s: int
    refresh_tokens_days: int
    sync_states_days: int
    sync_states_per_user: int
    patrol_idle_minutes: int = 60
    patrol_keep_days: int = 30

    @classmethod
    def of(cls, settings: Settings) -> Retention:
        return cls(
            login_attempts_hours=settings.keep_login_attempts_hours,
            login_window_s=settings.login_window_s,
            refresh_tokens_days=settings.keep_refresh_tokens_days,
            sync_states_days=settings.keep_sync_states_days,
            sync_states_per_user=settings.keep_sync_states_per_user,
            patrol_idle_minutes=settings.patrol_idle_minutes,
            patrol_keep_days=settings.patrol_keep_days,
        )


_OLD_LOGIN_ATTEMPTS = text(
    "DELETE FROM login_attempts WHERE ctid = ANY(ARRAY("
    " SELECT ctid FROM login_attempts"
    " WHERE window_start < now() - make_interval(secs => :seconds) LIMIT :batch))"
)
_OLD_REFRESH_TOKENS = text(
    "DELETE FROM refresh_tokens WHERE id = ANY(ARRAY("
    " SELECT id FROM refresh_tokens"
    " WHERE LEAST(expires_at, revoked_at) < now() - make_interval(days => :days) LIMIT :batch))"
)
_OLD_SYNC_STATES = text(
    "DELETE FROM sync_states WHERE id = ANY(ARRAY("
    " SELECT id FROM sync_states"
    " WHERE created_at < now() - make_interval(days => :days) LIMIT :batch))"
)
_SURPLUS_SYNC_STATES = text(
    "DELETE FROM sync_states WHERE id = ANY(ARRAY("
    " SELECT id FROM (SELECT id, row_number() OVER"
    "  (PARTITION BY user_id ORDER BY created_at DESC, id DESC) AS newest FROM sync_states) ranked"
    " WHERE newest > :keep LIMIT :batch))"
)


def delete_old_login_attempts(session: Session, *, hours: int, window_s: int, batch: int = BATCH) -> int:
    """Counters whose window started more than `hours` ago; never one of the current window,
    whatever the retention says, or deleting would lift the sign-in limits."""
    seconds = max(hours * 3600, window_s)
    return _delete(session, _OLD_LOGIN_ATTEMPTS, seconds=seconds, batch=batch)


def delete_old_refresh_tokens(session: Session, *, days: int, batch: int = BATCH) -> int:
    """Tokens that expired, or were revoked, more than `days` ago."""
    return _delete(session, _OLD_REFRESH_TOKENS, days=days, batch=batch)


def delete_old_sync_states(session: Session, *, days: int, per_user: int, batch: int = BATCH) -> int:
    """Sync cursors older than `days`, then all but each user's newest `per_user`."""
    deleted = _delete(session, _OLD_SYNC_STATES, days=days, batch=batch)
    if deleted < batch:
        deleted += _delete(session, _SURPLUS_SYNC_STATES, keep=per_user, batch=batch - deleted)
    return deleted


def _delete(session: Session, statement: TextClause, **params: int) -> int:
    result = session.execute(statement, params)
    return int(result.rowcount)  # type: ignore[attr-defined]


def compute_patrol_figures(factory: sessionmaker[Session], *, keep_days: int) -> int:
    """Compute the patrol figures of the days due, newest first; the days computed."""
    with session_scope(factory) as session:
        due = patrols.days_due(session, today=local_today(), days=keep_days)
    for day in due:
        with session_scope(factory) as session:
            figures.compute_day(session, day)
    return len(due)


def _in_batches(factory: sessionmaker[Session], step: Callable[[Session], int], batch: int) -> int:
    """Run a step, one transaction a batch, until it finds less than a batch to do."""
    total = 0
    while True:
        with session_scope(factory) as session:
            count = step(session)
        total += count
        if count < batch:
            return total


def sweep(factory: sessionmaker[Session], retention: Retention, batch: int = BATCH) -> dict[str, int]:
    """Delete what the retention no longer keeps, batch by batch, and compute the patrol figures
    due; the rows each step deleted or closed (for patrol_days: the days computed)."""
    steps: dict[str, Callable[[Session], int]] = {
        "login_attempts": lambda s: delete_old_login_attempts(
            s, hours=retention.login_attempts_hours, window_s=retention.login_window_s, batch=batch
        ),
        "refresh_tokens": lambda s: delete_old_refresh_tokens(
            s, days=retention.refresh_tokens_days, batch=batch
        ),
        "sync_states": lambda s: delete_old_sync_states(
            s, days=retention.sync_states_days, per_user=retention.sync_states_per_user, batch=batch
        ),
        "patrols_closed": lambda s: patrols.close_idle_patrols(
            s, minutes=retention.patrol_idle_minutes, batch=batch
        ),
    }
    done = {table: _in_batches(factory, step, batch) for table, step in steps.items()}
    done["patrol_days"] = compute_patrol_figures(factory, keep_days=retention.patrol_keep_days)
    done["patrol_batches"] = _in_batches(
        factory, lambda s: patrols.delete_old_batches(s, days=retention.patrol_keep_days, batch=batch), batch
    )
    return done
