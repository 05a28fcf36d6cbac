"""Opaque keyset cursors and the list query arguments every list endpoint shares."""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable
from typing import Any

import marshmallow as ma

from backend.errors import ValidationFailed, field_error

MAX_LIMIT = 1000


def encode_cursor(key: list[Any]) -> str:
    """Encode the sort key of the last row returned."""
    raw = json.dumps(key, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, types: tuple[type, ...]) -> list[Any] | None:
    """Decode a cursor made by encode_cursor, checking its shape."""
    if not cursor:
        return None
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        key = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (binascii.Error, UnicodeError, ValueError):
        key = None
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(_is(v, t) for v, t in zip(key, types, strict=True))
    ):
        raise _invalid_cursor()
    return key


def _is(value: Any, kind: type) -> bool:
    """Whether a cursor's part is of its type, and one the database takes: JSON's true is no id
    (though Python's bool is an int), nor is a number past a bigint, nor a string with a NUL or a
    lone surrogate."""
    if kind is int:
        return type(value) is int and -(2**63) <= value < 2**63
    if kind is str:
        return isinstance(value, str) and "\x00" not in value and _encodable(value)
    return isinstance(value, kind) and not isinstance(value, bool)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode_parsed_cursor(
    cursor: str | None, parsers: tuple[Callable[[str], Any], ...]
) -> tuple[Any, ...] | None:
    """Decode a cursor of strings and parse each (e.g. datetime.fromisoformat, uuid.UUID)."""
    key = decode_cursor(cursor, (str,) * len(parsers))
    if key is None:
        return None
    try:
        return tuple(parse(value) for parse, value in zip(parsers, key, strict=True))
    except ValueError:
        raise _invalid_cursor() from None


def _invalid_cursor() -> ValidationFailed:
    return ValidationFailed(
        "The cursor is not one this API issued.",
        errors=[field_error("cursor", "Invalid cursor.", location="query")],
    )


class CursorArgsSchema(ma.Schema):
    limit = ma.fields.Integer(
        load_default=100,
        validate=ma.validate.Range(min=1, max=MAX_LIMIT),
        metadata={"description": f"Page size, 1-{MAX_LIMIT}"},
    )
    cursor = ma.fields.String(
        load_default=None,
        validate=ma.validate.Length(max=512),
        metadata={"description": "Opaque cursor from the previous page's next_cursor"},
    )
