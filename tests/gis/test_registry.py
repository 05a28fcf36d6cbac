"""The registry's guarantees: no personal columns, and layers built per requested period."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime

import pytest
from sqlalchemy import Text, cast, literal

from backend.events.models import Event
from backend.gis import layers, registry, service
from backend.gis.params import Selection
from backend.gis.registry import Interval, Property


def test_registry_refuses_a_property_reading_a_personal_column():
    events = layers.events_collection()
    leaky = dataclasses.replace(
        events, id="leaky", properties=(*events.properties, Property("who", Event.reporter_id, "integer"))
    )
    with pytest.raises(ValueError, match="reporter_id"):
        registry.register(leaky)
    assert registry.get("leaky") is None


def test_no_registered_property_reads_a_personal_column():
    collections = list(registry.collections())
    assert collections
    for collection in collections:
        for prop in collection.properties:
            assert not registry.columns_read_by(prop.expr) & collection.personal


def test_a_period_layer_is_built_for_the_interval_asked(session):
    grids = layers.area_collection("grid")

    def for_period(interval: Interval | None) -> registry.Collection:
        start = interval.start.isoformat() if interval and interval.start else "all time"
        return dataclasses.replace(
            grids,
            for_period=None,
            properties=(*grids.properties, Property("period", cast(literal(start), Text))),
        )

    periodic = dataclasses.replace(grids, id="grids_by_period", for_period=for_period)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    selection = Selection(interval=Interval(start, None), filters={"area": "440117103001"})
    page = service.page(session, periodic, selection, None, limit=5)
    assert page.features and all(
        json.loads(f)["properties"]["period"] == start.isoformat() for f in page.features
    )
    batches = list(service.stream(session, periodic, Selection(filters={"area": "440117103"}), None))
    assert {json.loads(f)["properties"]["period"] for batch in batches for f in batch} == {"all time"}
