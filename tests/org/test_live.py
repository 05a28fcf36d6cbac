"""Through a real gunicorn on loopback: concurrent check-ins of one unit make one row."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests
from sqlalchemy import text
from sqlalchemy.orm import Session

from tests.org.factories import grid_point, make_unit


def test_concurrent_check_ins_of_one_unit_make_one_row(live_server, engine, accounts):
    with Session(engine) as session:
        unit = make_unit(session, *grid_point(session, accounts.worker_grids[0]), name="并发单元")
        session.commit()
        unit_id = unit.id
    try:
        url = f"{live_server}/api/v1/emergency-units/{unit_id}/check-ins"

        def send(i: int) -> tuple[int, int]:
            who = ("worker", "supervisor", "admin")[i % 3]
            response = requests.post(url, json={}, timeout=30, headers=accounts.headers(who))
            return response.status_code, response.json()["id"]

        with ThreadPoolExecutor(max_workers=16) as pool:
            results = list(pool.map(send, range(48)))
        statuses = sorted(status for status, _ in results)
        assert statuses.count(201) == 1 and statuses.count(200) == 47
        assert len({check_in for _, check_in in results}) == 1
        with engine.connect() as conn:
            rows = conn.execute(
                text("SELECT count(*) FROM check_ins WHERE unit_id = :u"), {"u": unit_id}
            ).scalar()
        assert rows == 1
    finally:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM emergency_units WHERE id = :u"), {"u": unit_id})
