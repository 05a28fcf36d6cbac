"""The app's JSON writer: UTF-8 names, ISO dates, valid JSON where the standard library is not."""

from __future__ import annotations

import decimal
import json
import math
from datetime import UTC, date, datetime

import flask
import pytest

from backend.common.json_provider import OrjsonProvider, json_bytes


@pytest.fixture()
def app() -> flask.Flask:
    app = flask.Flask(__name__)
    app.json = OrjsonProvider(app)
    app.json.sort_keys = False  # type: ignore[attr-defined]
    return app


def test_chinese_names_are_written_as_utf8_not_escapes(app: flask.Flask) -> None:
    with app.app_context():
        text = flask.json.dumps({"name": "温泉镇"})
    assert text == '{"name":"温泉镇"}'
    assert json_bytes({"name": "温泉镇"}) == '{"name":"温泉镇"}'.encode()


def test_dates_times_decimals_and_sets(app: flask.Flask) -> None:
    value = {
        "at": datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC),
        "day": date(2026, 1, 2),
        "amount": decimal.Decimal("1.50"),
        "codes": {"440117"},
        "ids": (1, 2),
    }
    with app.app_context():
        loaded = json.loads(flask.json.dumps(value))
    assert loaded == {
        "at": "2026-01-02T03:04:05.000678+00:00",
        "day": "2026-01-02",
        "amount": "1.50",
        "codes": ["440117"],
        "ids": [1, 2],
    }


def test_not_a_number_is_null_so_the_body_stays_valid_json(app: flask.Flask) -> None:
    body = json_bytes({"rate": math.nan, "high": math.inf})
    assert json.loads(body, parse_constant=lambda c: pytest.fail(f"invalid JSON constant {c}")) == {
        "rate": None,
        "high": None,
    }


def test_keys_keep_their_order_unless_sorting_is_asked(app: flask.Flask) -> None:
    with app.app_context():
        assert flask.json.dumps({"b": 1, "a": 2}) == '{"b":1,"a":2}'
        assert flask.json.dumps({"b": 1, "a": 2}, sort_keys=True) == '{"a":2,"b":1}'
        assert flask.json.dumps({"a": [1]}, indent=2) == '{\n  "a": [\n    1\n  ]\n}'


def test_what_cannot_be_written_is_a_type_error(app: flask.Flask) -> None:
    with app.app_context(), pytest.raises(TypeError):
        flask.json.dumps({"x": object()})
