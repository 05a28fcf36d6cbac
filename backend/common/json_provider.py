"""Flask's JSON output through orjson: a statistics answer of a few thousand groups is megabytes of
JSON, and the standard library takes several times longer than orjson to write it."""

from __future__ import annotations

import decimal
from typing import Any

import orjson
from flask.json.provider import DefaultJSONProvider


def _default(value: Any) -> Any:
    """What orjson does not write by itself."""
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, set | frozenset):
        return list(value)
    if hasattr(value, "__html__"):
        return str(value.__html__())
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def json_bytes(value: Any) -> bytes:
    """UTF-8 JSON for a response body, without a round trip through str."""
    return orjson.dumps(value, default=_default, option=orjson.OPT_NON_STR_KEYS)


class OrjsonProvider(DefaultJSONProvider):
    """Writes with orjson: UTF-8 never ASCII-escaped, dates and times in ISO 8601 (RFC 3339),
    NaN and infinities as null (the standard library would write invalid JSON). Reads as Flask
    does."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        option = orjson.OPT_NON_STR_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        if kwargs.get("sort_keys", self.sort_keys):
            option |= orjson.OPT_SORT_KEYS
        return orjson.dumps(obj, default=_default, option=option).decode()
