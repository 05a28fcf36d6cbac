"""50 phones on flaky connections against a real gunicorn: nothing lost, nothing doubled."""

from __future__ import annotations

import random
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests
from sqlalchemy import text
from sqlalchemy.orm import Session

from backend.auth import service as auth

PHONES = 50
REPORTS_PER_PHONE = 40
DEADLINE_S = 55


def test_fifty_phones_with_timeouts_and_blind_retries(live_server, engine, test_settings):
    with Session(engine) as session:
        grids = list(
            session.execute(
                text(
                    "SELECT code, ST_X(ST_PointOnSurface(geom)) x, ST_Y(ST_PointOnSurface(geom)) y "
                    "FROM areas "
                    "WHERE level = 'grid' AND valid_to IS NULL AND code LIKE '440117103%' ORDER BY code"
                )
            )
        )
        username = f"phones{uuid.uuid4().hex[:8]}"
        user = auth.create_user(
            session,
            test_settings,
            username=username,
            password="phones-password",
            display_name="外勤手机",
            role="worker",
        )
        auth.set_user_grids(session, user.id, [g.code for g in grids])
        token = auth.login(session, test_settings, username, "phones-password").access_token
        session.commit()
        user_id = user.id
    headers = {"Authorization": f"Bearer {token}"}
    sent: set[str] = set()
    lock = threading.Lock()
    stats = {"requests": 0, "timeouts": 0, "retries": 0}

    def phone(seed: int) -> None:
        rng = random.Random(seed)
        queue: list[dict[str, Any]] = []
        for i in range(REPORTS_PER_PHONE):
            grid = rng.choice(grids)
            queue.append(
                {
                    "id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "category": rng.choice(["environment", "safety", "rental", "dispute"]),
                    "description": f"phone {seed} report {i}",
                    "location": {"type": "Point", "coordinates": [grid.x, grid.y]},
                    "accuracy_m": rng.uniform(3, 30),
                    "reported_at": "2026-11-25T08:00:00+08:00",
                }
            )
        http = requests.Session()
        while queue:
            size = 1 if rng.random() < 0.4 else rng.randint(2, 8)
            chunk, queue = queue[:size], queue[size:]
            with lock:
                sent.update(item["id"] for item in chunk)
            while True:  # blind retries until the server answers
                timeout = 0.05 if rng.random() < 0.1 else rng.uniform(1.0, 5.0)
                with lock:
                    stats["requests"] += 1
                try:
                    if size == 1:
                        response = http.post(
                            f"{live_server}/api/v1/events", json=chunk[0], headers=headers, timeout=timeout
                        )
                        assert response.status_code in (200, 201), response.text[:500]
                    else:
                        response = http.post(
                            f"{live_server}/api/v1/events/batch",
                            json={"items": chunk},
                            headers=headers,
                            timeout=timeout,
                        )
                        # 207 would mean a bad item, and every item here is good.
                        assert response.status_code == 200, response.text[:500]
                    done = True
                except requests.RequestException:
                    with lock:
                        stats["timeouts"] += 1
                    done = False
                if done and rng.random() < 0.05:
                    done = False  # the answer got lost on the way: the phone sends again
                if done:
                    break
                with lock:
                    stats["retries"] += 1
                if time.monotonic() > started + DEADLINE_S:
                    raise TimeoutError("the phones did not finish in time")

    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=PHONES) as pool:
        list(pool.map(phone, range(PHONES)))
    elapsed = time.monotonic() - started

    with engine.connect() as conn:
        stored = [
            row.id
            for row in conn.execute(
                text("SELECT id::text AS id FROM events WHERE reporter_id = :u"), {"u": user_id}
            )
        ]
    assert len(sent) == PHONES * REPORTS_PER_PHONE
    assert len(stored) == len(set(stored))  # never doubled
    assert set(stored) == sent  # never lost, nothing else
    assert stats["timeouts"] > 0 and stats["retries"] > 0  # the connection really was flaky
    print(
        f"\n{len(sent)} reports from {PHONES} phones in {elapsed:.1f} s: "
        f"{len(sent) / elapsed:.0f} reports/s stored; {stats['requests']} requests, "
        f"{stats['timeouts']} client timeouts, {stats['retries']} blind retries"
    )
