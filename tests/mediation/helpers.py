"""Disputes and cases made through the API, as the centres make them."""

from __future__ import annotations

from typing import Any

from sqlalchemy import text

from tests.conftest import client_as
from tests.factories import report

POINT_IN = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE code = :code AND valid_to IS NULL) s"
)
PDF = b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n"
TEAM = [
    {"role": "village_cadre", "name": "李村委"},
    {"role": "legal_adviser", "name": "王律师"},
    {"role": "respected_resident", "name": "陈乡贤"},
]
PARTIES = [
    {"name": "张三", "phone": "13900000001", "side": "applicant"},
    {"name": "李四", "phone": "13900000002", "side": "respondent"},
]


def grid_point(session: Any, grid: str) -> tuple[float, float]:
    row = session.execute(POINT_IN, {"code": grid}).one()
    return float(row.x), float(row.y)


def dispute(
    app: Any, accounts: Any, session: Any, *, category: str = "dispute", grid: str | None = None
) -> dict[str, Any]:
    """A dispute reported by the worker in their grid."""
    point = grid_point(session, grid or accounts.worker_grids[0])
    worker = client_as(app, accounts, "worker")
    response = worker.post(
        "/api/v1/events", json=report(*point, category=category, description="宅基地边界纠纷")
    )
    assert response.status_code == 201, response.json
    return response.json  # type: ignore[no-any-return]


def open_case(client: Any, event_id: str, **extra: Any) -> Any:
    body = {"event_id": event_id, "dispute_type": "land", "mediators": TEAM, "parties": PARTIES, **extra}
    return client.post("/api/v1/mediation/cases", json=body)


def upload_agreement(client: Any, case_id: int, data: bytes = PDF, name: str = "agreement.pdf") -> Any:
    import io

    return client.put(
        f"/api/v1/mediation/cases/{case_id}/agreement",
        data={"file": (io.BytesIO(data), name)},
        content_type="multipart/form-data",
    )


def end_case(client: Any, case: dict[str, Any], outcome: str, **extra: Any) -> Any:
    return client.post(
        f"/api/v1/mediation/cases/{case['id']}/outcome",
        json={"outcome": outcome, "version": case["version"], **extra},
    )
