"""Sign-in, token rotation and revocation, self-service limits, login rate limits."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests
from sqlalchemy import text

from backend.auth import service as auth
from backend.auth.ratelimit import RedisCounter
from tests.conftest import client_as, gunicorn


def login(client, username, password):  # type: ignore[no-untyped-def]
    return client.post("/api/v1/auth/token", json={"username": username, "password": password})


@pytest.fixture
def member(session, test_settings):  # type: ignore[no-untyped-def]
    user = auth.create_user(
        session,
        test_settings,
        username=f"m{uuid.uuid4().hex[:8]}",
        password="first-password",
        display_name="成员",
        role="supervisor",
        area_code="440117103",
        phone="13700000000",
    )
    session.commit()
    return user


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_login_gives_working_tokens_and_never_the_password(anon_client, member):
    response = login(anon_client, member.username.upper(), "first-password")  # usernames ignore case
    assert response.status_code == 200
    body = response.json
    assert body["token_type"] == "Bearer" and body["expires_in"] > 0
    me = anon_client.get("/api/v1/me", headers=bearer(body["access_token"]))
    assert me.json["role"] == "supervisor" and me.json["area_code"] == "440117103"
    assert "password" not in me.get_data(as_text=True) and "first-password" not in me.get_data(as_text=True)


@pytest.mark.parametrize("password", ["wrong-password", ""])
def test_bad_credentials_are_401_or_422(anon_client, member, password):
    response = login(anon_client, member.username, password)
    assert response.status_code in (401, 422)
    assert response.content_type == "application/problem+json"
    assert login(anon_client, "nobody-here", "whatever-pass").status_code == 401


def test_refresh_rotates_and_reuse_revokes_the_family(anon_client, member):
    first = login(anon_client, member.username, "first-password").json
    second = anon_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200
    third = anon_client.post("/api/v1/auth/refresh", json={"refresh_token": second.json["refresh_token"]})
    assert third.status_code == 200
    # The first token comes back: a thief or a replay. The whole login dies.
    replay = anon_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    latest = anon_client.post("/api/v1/auth/refresh", json={"refresh_token": third.json["refresh_token"]})
    assert latest.status_code == 401
    # Another login of the same user is untouched.
    other = login(anon_client, member.username, "first-password").json
    assert (
        anon_client.post("/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}).status_code
        == 200
    )


@pytest.mark.parametrize("token", ["nonsense", "not-a-uuid.secret", f"{uuid.uuid4()}.secret"])
def test_unknown_refresh_tokens_are_401(anon_client, token):
    assert anon_client.post("/api/v1/auth/refresh", json={"refresh_token": token}).status_code == 401


def test_logout_revokes_the_refresh_token(anon_client, member):
    pair = login(anon_client, member.username, "first-password").json
    assert (
        anon_client.post("/api/v1/auth/logout", json={"refresh_token": pair["refresh_token"]}).status_code
        == 204
    )
    assert (
        anon_client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
        == 401
    )


def test_disabling_a_user_revokes_their_tokens_at_once(anon_client, client, member):
    pair = login(anon_client, member.username, "first-password").json
    assert anon_client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 200
    assert client.patch(f"/api/v1/users/{member.id}", json={"disabled": True}).status_code == 200
    assert anon_client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    assert (
        anon_client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code
        == 401
    )
    assert login(anon_client, member.username, "first-password").status_code == 401


def test_changing_the_password_revokes_tokens(anon_client, member):
    pair = login(anon_client, member.username, "first-password").json
    changed = anon_client.patch(
        "/api/v1/me",
        headers=bearer(pair["access_token"]),
        json={"current_password": "first-password", "password": "second-password"},
    )
    assert changed.status_code == 200
    assert anon_client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    assert login(anon_client, member.username, "first-password").status_code == 401
    assert login(anon_client, member.username, "second-password").status_code == 200


def test_wrong_current_password_is_403(anon_client, member):
    pair = login(anon_client, member.username, "first-password").json
    response = anon_client.patch(
        "/api/v1/me",
        headers=bearer(pair["access_token"]),
        json={"current_password": "guess-guess", "password": "second-password"},
    )
    assert response.status_code == 403


@pytest.mark.parametrize(
    "field",
    [
        {"role": "admin"},
        {"area_code": "440117"},
        {"disabled": False},
        {"grids": ["440117104001001"]},
        {"id": 1},
    ],
)
def test_users_cannot_raise_their_own_role_or_scope(app, accounts, field):
    client = client_as(app, accounts, "worker")
    response = client.patch("/api/v1/me", json={"display_name": "我", **field})
    assert response.status_code == 422
    me = client.get("/api/v1/me").json
    assert me["role"] == "worker" and me["area_code"] is None
    assert me["grids"] == accounts.worker_grids


def test_admin_rescoping_takes_effect_on_the_next_request(client, anon_client, member):
    pair = login(anon_client, member.username, "first-password").json
    assert client.patch(f"/api/v1/users/{member.id}", json={"area_code": "440117104"}).status_code == 200
    # Old tokens carried the old scope's epoch: they are revoked.
    assert anon_client.get("/api/v1/me", headers=bearer(pair["access_token"])).status_code == 401
    fresh = login(anon_client, member.username, "first-password").json
    assert (
        anon_client.get("/api/v1/me", headers=bearer(fresh["access_token"])).json["area_code"] == "440117104"
    )


def test_worker_grid_assignment(client, accounts):
    user = client.post(
        "/api/v1/users",
        json={
            "username": "newbie",
            "password": "long-enough",
            "display_name": "新网格员",
            "role": "worker",
            "worker_kind": "part_time",
        },
    ).json
    assert client.put(f"/api/v1/users/{user['id']}/grids", json={"grids": ["440117104001001"]}).json[
        "grids"
    ] == ["440117104001001"]
    bad = client.put(f"/api/v1/users/{user['id']}/grids", json={"grids": ["440117999999999"]})
    assert bad.status_code == 422 and "440117999999999" in bad.get_data(as_text=True)
    supervisor = client.get("/api/v1/users?limit=1000").json["items"]
    assert all("password" not in u and "password_hash" not in u for u in supervisor)


def test_api_keys_read_only_and_disable(client, anon_client):
    created = client.post("/api/v1/api-keys", json={"name": "QGIS 工作站", "area_code": "440117103"})
    assert created.status_code == 201
    key = created.json["key"]
    assert all("key" not in k for k in client.get("/api/v1/api-keys").json)  # shown once only
    headers = {"X-API-Key": key}
    assert anon_client.get("/api/v1/me", headers=headers).json == {
        "role": "gis",
        "area_code": "440117103",
        "grids": [],
    }
    assert anon_client.get("/api/v1/me", headers={"Authorization": f"ApiKey {key}"}).status_code == 200
    assert anon_client.post("/api/v1/events", headers=headers, json={}).status_code in (403, 422)
    client.patch(f"/api/v1/api-keys/{created.json['id']}", json={"disabled": True})
    assert anon_client.get("/api/v1/me", headers=headers).status_code == 401
    assert anon_client.get("/api/v1/me", headers={"X-API-Key": key[:-1] + "x"}).status_code == 401


def test_login_is_limited_per_username(app, anon_client, member, test_settings):
    limit = test_settings.login_limit_per_user
    statuses = [login(anon_client, member.username, "wrong-password").status_code for _ in range(limit + 2)]
    assert statuses[:limit] == [401] * limit and statuses[limit:] == [429, 429]
    blocked = login(anon_client, member.username, "first-password")  # even the right password waits
    assert blocked.status_code == 429
    assert 0 < int(blocked.headers["Retry-After"]) <= test_settings.login_window_s
    assert blocked.content_type == "application/problem+json"


def test_login_is_limited_per_client_address(anon_client, test_settings):
    limit = test_settings.login_limit_per_address
    statuses = [login(anon_client, f"someone{i}", "wrong-password").status_code for i in range(limit + 1)]
    assert statuses[-1] == 429 and statuses.count(401) == limit


def test_rate_limit_is_shared_by_two_app_processes(database_url):
    username = f"shared{uuid.uuid4().hex[:8]}"
    env = {"WANGGE_LOGIN_LIMIT_PER_USER": "6", "WANGGE_LOGIN_LIMIT_PER_ADDRESS": "1000"}
    with gunicorn(database_url, workers=2, **env) as a, gunicorn(database_url, workers=2, **env) as b:

        def attempt(i: int) -> int:
            base = a if i % 2 else b
            return requests.post(
                f"{base}/api/v1/auth/token",
                timeout=30,
                json={"username": username, "password": "wrong-password"},
            ).status_code

        with ThreadPoolExecutor(max_workers=4) as pool:
            statuses = list(pool.map(attempt, range(12)))
    # Six attempts in all, not six per process (or per worker), get through to the password check.
    assert statuses.count(401) == 6 and statuses.count(429) == 6


@pytest.fixture(scope="module")
def redis_url():  # type: ignore[no-untyped-def]
    """A private Redis server for this module, from Debian's redis-server."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is installed by scripts/bootstrap.sh"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    workdir = tempfile.mkdtemp()
    process = subprocess.Popen(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            workdir,
        ],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)
    shutil.rmtree(workdir, ignore_errors=True)


def test_redis_counter_limits_and_tells_when_to_retry(redis_url):
    counter, other = RedisCounter(redis_url), RedisCounter(redis_url)  # two processes' views
    key = f"user:{uuid.uuid4().hex}"
    waits = [(counter if i % 2 else other).hit(key, 3, 60) for i in range(5)]
    assert waits[:3] == [None, None, None]
    assert all(w is not None and 0 < w <= 60 for w in waits[3:])


def test_login_limit_uses_redis_when_configured(database_url, redis_url, engine):
    username = f"redis{uuid.uuid4().hex[:8]}"
    env = {"RATELIMIT_REDIS_URL": redis_url, "WANGGE_LOGIN_LIMIT_PER_USER": "3"}
    with gunicorn(database_url, workers=2, **env) as base:
        statuses = [
            requests.post(
                f"{base}/api/v1/auth/token",
                timeout=30,
                json={"username": username, "password": "wrong-password"},
            ).status_code
            for _ in range(5)
        ]
    assert statuses == [401, 401, 401, 429, 429]
    # Counted in Redis, not in PostgreSQL's table.
    assert redis.Redis.from_url(redis_url).keys(f"*user:{username}*")
    with engine.connect() as conn:
        assert (
            conn.scalar(text("SELECT count(*) FROM login_attempts WHERE key = :k"), {"k": f"user:{username}"})
            == 0
        )
