"""`flask demo org`: Conghua's published figures, seeded and reproducible, loaded once."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

from sqlalchemy import text

from backend.org import demo as org_demo


def _digest(session) -> str:  # type: ignore[no-untyped-def]
    rows = session.execute(
        text("SELECT name, kind, ST_AsText(location), grid_code FROM emergency_units ORDER BY id")
    ).all()
    rows += session.execute(
        text("SELECT name, ST_AsText(location), safe_rental_units FROM buildings ORDER BY id")
    ).all()
    rows += session.execute(
        text("SELECT count(*), sum(extract(epoch FROM checked_in_at)) FROM check_ins")
    ).all()
    return hashlib.sha256(repr(rows).encode()).hexdigest()


def test_demo_org_has_conghuas_figures_and_loads_once(app, client, session):
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "org"])
    assert result.exit_code == 0, result.output
    assert "865 party branches, 2897 party groups" in result.output
    figures = session.execute(
        text(
            "SELECT (SELECT count(*) FROM party_branches) AS branches,"
            " (SELECT count(*) FROM areas WHERE level = 'grid' AND valid_to IS NULL) AS grids,"
            " (SELECT count(*) FROM party_groups) AS groups,"
            " (SELECT sum(safe_rental_units) FROM buildings) AS safe,"
            " (SELECT count(*) FROM buildings) AS buildings,"
            " (SELECT count(*) FROM emergency_units WHERE active) AS units,"
            " (SELECT count(DISTINCT local_day) FROM check_ins) AS days"
        )
    ).one()
    assert (figures.branches, figures.grids, figures.groups, figures.safe, figures.units) == (
        865,
        865,
        2897,
        21240,
        1129,
    )
    assert 15_000 <= figures.buildings <= 25_000
    # Every row sits in the grid the polygon lookup gives its point.
    misplaced = session.execute(
        text(
            "SELECT count(*) FROM (SELECT grid_code, location::geometry AS p FROM emergency_units"
            " UNION ALL SELECT grid_code, location FROM (SELECT * FROM buildings LIMIT 2000) b) r"
            " WHERE grid_code <> (SELECT code FROM areas a WHERE a.level = 'grid' AND a.valid_to IS NULL"
            " AND ST_Covers(a.geom, r.p) ORDER BY code LIMIT 1)"
        )
    ).scalar()
    assert misplaced == 0
    # 90 local days up to today; today holds only the check-ins made by now.
    first, last = session.execute(text("SELECT min(local_day), max(local_day) FROM check_ins")).one()
    days = (last - first).days + 1
    assert days in (89, 90) and figures.days == days
    body = client.get(
        f"/api/v1/stats/check-ins?from={first}&to={first + timedelta(days=89)}&group_by=town"
    ).json
    assert body["total"]["active_unit_days"] == 1129 * 89
    assert 0.975 <= body["total"]["check_in_rate"] <= 0.99
    assert len(body["groups"]) == 8
    again = runner.invoke(args=["demo", "org"])
    assert again.exit_code == 0 and "already loaded" in again.output
    assert session.execute(text("SELECT count(*) FROM party_branches")).scalar() == 865


def test_demo_org_is_reproducible(session):
    now = datetime(2026, 11, 25, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
    first = session.begin_nested()
    org_demo.load_org(session, org_demo.CONGHUA, now=now)
    digest = _digest(session)
    latest = session.execute(text("SELECT max(checked_in_at) FROM check_ins")).scalar()
    first.rollback()
    org_demo.load_org(session, org_demo.CONGHUA, now=now)
    assert _digest(session) == digest and latest <= now
