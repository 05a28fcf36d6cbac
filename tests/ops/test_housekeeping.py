"""Housekeeping keeps login_attempts, refresh_tokens, sync_states and patrol batches from growing
without limit, and closes idle patrols."""

from __future__ import annotations

import json
import time
import uuid

from sqlalchemy import text

from backend.config import Settings
from backend.ops import housekeeping
from backend.patrols import service as patrols
from backend.stats.days import local_today
from tests.conftest import gunicorn


def _attempt(session, key: str, age: str) -> None:  # type: ignore[no-untyped-def]
    session.execute(
        text(
            "INSERT INTO login_attempts (key, window_start, count)"
            " VALUES (:k, now() - CAST(:age AS interval), 1)"
        ),
        {"k": key, "age": age},
    )


def _keys(session, prefix: str) -> set[str]:  # type: ignore[no-untyped-def]
    rows = session.execute(text("SELECT key FROM login_attempts WHERE key LIKE :p"), {"p": prefix + "%"})
    return {row.key for row in rows}


def test_login_attempts_go_once_their_window_is_long_past(session):
    prefix = f"hk-{uuid.uuid4().hex[:8]}-"
    for name, age in [("2d", "2 days"), ("23h", "23 hours"), ("now", "0 seconds")]:
        _attempt(session, prefix + name, age)
    deleted = housekeeping.delete_old_login_attempts(session, hours=24, window_s=300)
    assert deleted >= 1
    assert _keys(session, prefix) == {prefix + "23h", prefix + "now"}
    # However short the retention, the counters of the current window stay: the limits hold.
    housekeeping.delete_old_login_attempts(session, hours=0, window_s=300)
    assert _keys(session, prefix) == {prefix + "now"}


def _token(
    session, user_id: int, *, expires: str, revoked: str | None = None, used: bool = False
) -> uuid.UUID:  # type: ignore[no-untyped-def]
    token_id = uuid.uuid4()
    session.execute(
        text(
            "INSERT INTO refresh_tokens"
            " (id, family_id, user_id, secret_hash, expires_at, used_at, revoked_at)"
            " VALUES (:id, :id, :user, 'x', now() + CAST(:expires AS interval),"
            " CASE WHEN :used THEN now() END, now() - CAST(:revoked AS interval))"
        ),
        {"id": token_id, "user": user_id, "expires": expires, "revoked": revoked, "used": used},
    )
    return token_id


def test_refresh_tokens_go_a_while_after_they_expired_or_were_revoked(session, accounts):
    user = accounts.ids["other_worker"]
    tokens = {
        "expired long ago": _token(session, user, expires="-10 days"),
        "expired lately": _token(session, user, expires="-2 days"),
        "revoked long ago": _token(session, user, expires="20 days", revoked="8 days"),
        "revoked lately": _token(session, user, expires="20 days", revoked="1 day"),
        "used, still valid": _token(session, user, expires="20 days", used=True),
        "live": _token(session, user, expires="30 days"),
    }
    housekeeping.delete_old_refresh_tokens(session, days=7)
    left = {
        row.id
        for row in session.execute(text("SELECT id FROM refresh_tokens WHERE user_id = :u"), {"u": user})
    }
    assert {name for name, token in tokens.items() if token in left} == {
        "expired lately",
        "revoked lately",
        "used, still valid",
        "live",
    }


def _state(session, user_id: int, age: str) -> uuid.UUID:  # type: ignore[no-untyped-def]
    state_id = uuid.uuid4()
    session.execute(
        text(
            "INSERT INTO sync_states (id, user_id, event_ids, versions, created_at)"
            " VALUES (:id, :user, '{}', '{}', now() - CAST(:age AS interval))"
        ),
        {"id": state_id, "user": user_id, "age": age},
    )
    return state_id


def _states(session, user_id: int) -> set[uuid.UUID]:  # type: ignore[no-untyped-def]
    rows = session.execute(text("SELECT id FROM sync_states WHERE user_id = :u"), {"u": user_id})
    return {row.id for row in rows}


def test_sync_states_keep_each_users_newest_few_and_nothing_old(session, test_settings):
    from backend.auth import service as auth

    busy, idle, away = (
        auth.create_user(
            session,
            test_settings,
            username=f"hk-{name}",
            password="hk-password",
            display_name=name,
            role="worker",
        ).id
        for name in ("busy", "idle", "away")
    )
    busy_states = [_state(session, busy, f"{minutes} minutes") for minutes in range(12)]
    idle_state = _state(session, idle, "3 days")
    _state(session, away, "40 days")
    housekeeping.delete_old_sync_states(session, days=30, per_user=10)
    assert _states(session, busy) == set(busy_states[:10])  # the ten newest
    assert _states(session, idle) == {idle_state}
    assert _states(session, away) == set()


def test_a_sweep_deletes_in_batches_until_done(session_factory, session):
    prefix = f"hk-{uuid.uuid4().hex[:8]}-"
    for i in range(7):
        _attempt(session, f"{prefix}{i}", "3 days")
    session.commit()
    retention = housekeeping.Retention.of(Settings(database_url="unused"))
    deleted = housekeeping.sweep(session_factory, retention, batch=3)
    assert deleted["login_attempts"] >= 7
    assert set(deleted) == {
        "login_attempts",
        "refresh_tokens",
        "sync_states",
        "patrols_closed",
        "patrol_days",
        "patrol_batches",
    }
    assert _keys(session, prefix) == set()
    # The patrol figures due were computed, committed: nothing is due after the sweep.
    assert patrols.days_due(session, today=local_today()) == []


def test_the_command_sweeps_and_says_what_it_deleted(app, session):
    prefix = f"hk-{uuid.uuid4().hex[:8]}-"
    _attempt(session, prefix + "old", "3 days")
    session.commit()
    result = app.test_cli_runner().invoke(args=["housekeeping"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["msg"] == "housekeeping" and report["done"]["login_attempts"] >= 1
    assert _keys(session, prefix) == set()


def test_the_server_runs_housekeeping_beside_its_workers(database_url, engine, tmp_path):
    key = f"hk-{uuid.uuid4().hex[:8]}-server"
    with engine.begin() as conn:
        _attempt(conn, key, "3 days")
    log_path = tmp_path / "gunicorn.log"
    with gunicorn(database_url, workers=1, log_path=log_path, WANGGE_HOUSEKEEPING_EVERY_S="1"):
        deadline = time.monotonic() + 60
        while True:
            with engine.connect() as conn:
                if not _keys(conn, key):
                    break
            assert time.monotonic() < deadline, log_path.read_text()[-2000:]
            time.sleep(0.3)
    assert '"msg": "housekeeping"' in log_path.read_text()
