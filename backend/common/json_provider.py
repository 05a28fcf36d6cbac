"""Flask's JSON output through orjson: a statistics answer of a few thousand groups is megabytes of
JSON, and the standard library takes several times longer than orjson to write it. Request bodies are
read by the standard library, which keeps lone surrogates and huge numbers for the fields to refuse
one by one, behind a nesting limit."""

from __future__ import annotations

import decimal
import json
import math
import re
import sys
from itertools import accumulate
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
    return _dumps(value, orjson.OPT_NON_STR_KEYS)


def _dumps(value: Any, option: int) -> bytes:
    try:
        return orjson.dumps(value, default=_default, option=option)
    except TypeError as error:
        if "surrogates" not in str(error):
            raise
        # An error message may quote what was sent, and that may hold a lone surrogate, which
        # UTF-8 cannot write: write it as the escape it came in as.
        return orjson.dumps(_escape_surrogates(value), default=_default, option=option)


def _escape_surrogates(value: Any) -> Any:
    if isinstance(value, str):
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, dict):
        return {_escape_surrogates(k): _escape_surrogates(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_escape_surrogates(item) for item in value]
    return value


# Deeper than any body the API takes (a MultiPolygon is 4 levels, inside a feature collection 7).
MAX_DEPTH = 64

_ESCAPE = re.compile(r"\\.", re.DOTALL)
_STRING = re.compile(r'"[^"]*"')
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
# Each bracket as a signed byte: +1 opens a level, -1 closes one.
_STEPS = bytes.maketrans(b"[{]}", b"\x01\x01\xff\xff")


class BadJson(json.JSONDecodeError):
    """A body that is not JSON, or not JSON this API reads (too deep, NaN)."""


def too_deep(text: str, limit: int = MAX_DEPTH) -> bool:
    """Whether arrays and objects nest more than `limit` deep, decided before parsing: the
    standard library's parser recurses, and a body 100,000 deep would exhaust the stack.

    Linear in the body's length, in C but for the running sum (about 40 ns a bracket)."""
    if text.count("[") + text.count("{") <= limit:
        return False  # most bodies: too few brackets to nest that deep
    # Without escapes no quote is left inside a string, so strings are "..." runs to drop.
    unescaped = _ESCAPE.sub("", text) if "\\" in text else text
    brackets = _NOT_BRACKET.sub("", _STRING.sub("", unescaped))
    if "[" * (limit + 1) in brackets or "{" * (limit + 1) in brackets:
        return True  # the usual attack, found without the running sum
    steps = memoryview(brackets.encode("ascii").translate(_STEPS)).cast("b")
    return max(accumulate(steps), default=0) > limit


def _integer(literal: str) -> int | float:
    # Past Python's conversion limit a number is no count or id of ours: make it infinite, and
    # the field that gets it answers "too large" instead of the parser failing the whole body.
    if len(literal) > sys.get_int_max_str_digits():
        return -math.inf if literal.startswith("-") else math.inf
    return int(literal)


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


_DECODER = json.JSONDecoder(parse_int=_integer, parse_constant=_constant)


def loads_body(data: bytes | str) -> Any:
    """Parse a request body: strict JSON (no NaN or Infinity), at most MAX_DEPTH deep.

    Raises BadJson. Lone surrogates and numbers beyond any column's range come through, for the
    schema's fields to refuse with the field's name.
    """
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as error:
            raise BadJson(f"Not UTF-8: {error.reason}", "", error.start) from error
    else:
        text = data
    if too_deep(text):
        raise BadJson(f"Nested more than {MAX_DEPTH} levels deep", text[:100], 0)
    try:
        return _DECODER.decode(text)
    except json.JSONDecodeError as error:
        raise BadJson(error.msg, error.doc, error.pos) from error
    except (ValueError, RecursionError) as error:
        raise BadJson(str(error), text[:100], 0) from error


class OrjsonProvider(DefaultJSONProvider):
    """Writes with orjson: UTF-8 never ASCII-escaped, dates and times in ISO 8601 (RFC 3339),
    NaN and infinities as null (the standard library would write invalid JSON). Reads with
    loads_body."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        option = orjson.OPT_NON_STR_KEYS
        if kwargs.get("indent"):
            option |= orjson.OPT_INDENT_2
        if kwargs.get("sort_keys", self.sort_keys):
            option |= orjson.OPT_SORT_KEYS
        return _dumps(obj, option).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return loads_body(s)
