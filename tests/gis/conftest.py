"""Events around the GIS key's town (温泉镇 440117103) and helpers for the GIS tests."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import text

from backend.auth.service import Actor
from backend.events import service as events
from tests.conftest import client_as

IN_TOWN, OUT_TOWN = "440117103", "440117104"


@dataclass
class Reports:
    """One ordinary and one sensitive event in the GIS key's town, one outside it."""

    plain: str
    sensitive: str
    outside: str


_point_in = text(
    "SELECT ST_X(p) AS x, ST_Y(p) AS y FROM (SELECT ST_PointOnSurface(geom) AS p FROM areas "
    "WHERE level = 'grid' AND valid_to IS NULL AND code LIKE :town || '%' ORDER BY code LIMIT 1) s"
)


@pytest.fixture(scope="session", autouse=True)
def registered_layers(base_app) -> None:  # type: ignore[no-untyped-def]
    """The app factory fills the layer registry; tests here walk it, some without the app."""


@pytest.fixture
def reports(session, accounts) -> Reports:  # type: ignore[no-untyped-def]
    admin = Actor(role="admin", user_id=accounts.ids["admin"])
    made = {}
    for name, town, category in (
        ("plain", IN_TOWN, "environment"),
        ("sensitive", IN_TOWN, "dispute"),
        ("outside", OUT_TOWN, "environment"),
    ):
        point = session.execute(_point_in, {"town": town}).one()
        event, _ = events.report_event(
            session,
            events.Report(
                category=category,
                description=f"{name} 描述",
                lon=point.x,
                lat=point.y,
                contacts=[{"name": "李四", "phone": "13912345678"}],
            ),
            actor=admin,
        )
        made[name] = str(event.id)
    session.commit()
    return Reports(**made)


@pytest.fixture
def gis(app, accounts):  # type: ignore[no-untyped-def]
    """A client sending the GIS API key (scope: town 440117103)."""
    return client_as(app, accounts, "gis")


@pytest.fixture
def anonymous_areas(app) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """The deployment serves area layers without credentials."""
    settings = app.config["SETTINGS"]
    app.config["SETTINGS"] = dataclasses.replace(settings, ogc_anonymous_areas=True)
    yield
    app.config["SETTINGS"] = settings
