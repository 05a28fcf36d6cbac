"""The one GeoJSON geometry field and the one WKB <-> Shapely conversion."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import marshmallow as ma
import shapely
from geoalchemy2.elements import WKBElement
from shapely.geometry.base import BaseGeometry

from backend.areas.models import CODE_LENGTH, CODE_PATTERN, code_pattern
from geo.geojson import GeometryError, geometry_to_geojson, parse_geometry

POLYGONAL = ("Polygon", "MultiPolygon")


def to_shape(value: WKBElement | bytes | BaseGeometry) -> BaseGeometry:
    """Read a geometry from a database value."""
    if isinstance(value, BaseGeometry):
        return value
    data = value.data if isinstance(value, WKBElement) else value
    return shapely.from_wkb(bytes(data) if not isinstance(data, str) else data)


def to_wkb(geometry: BaseGeometry) -> WKBElement:
    """Write a geometry for a 4326 column."""
    return WKBElement(shapely.to_wkb(geometry, include_srid=False), srid=4326, extended=False)


class Geometry(ma.fields.Field):
    """A GeoJSON geometry object, read into Shapely and written back as RFC 7946."""

    def __init__(self, allowed: tuple[str, ...] = POLYGONAL, **kwargs: Any):
        self.allowed = allowed
        metadata = kwargs.pop("metadata", {})
        metadata.setdefault("type", "object")
        metadata.setdefault("description", f"GeoJSON geometry: {' or '.join(allowed)}")
        metadata.setdefault(
            "properties",
            {
                "type": {"type": "string", "enum": list(allowed)},
                "coordinates": {"type": "array", "items": {}},
            },
        )
        metadata.setdefault("required", ["type", "coordinates"])
        super().__init__(metadata=metadata, **kwargs)

    def _serialize(self, value: Any, attr: str | None, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        return geometry_to_geojson(to_shape(value), precision=7)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> BaseGeometry:
        try:
            return parse_geometry(value, allowed=self.allowed)
        except GeometryError as error:
            raise ma.ValidationError(str(error)) from error


class RawText(ma.fields.String):
    """A string kept as sent (passwords, tokens) that UTF-8 and PostgreSQL can hold: no NUL
    characters and no lone surrogates (JSON's "\\ud800" parses to one, and neither the driver
    nor the JSON writer can encode it)."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        text: str = super()._deserialize(value, attr, data, **kwargs)
        if "\x00" in text:
            raise ma.ValidationError("NUL characters are not allowed.")
        if not text.isascii():
            try:
                text.encode("utf-8")
            except UnicodeEncodeError:
                raise ma.ValidationError("Lone surrogates are not allowed (not valid Unicode).") from None
        return text


class Text(RawText):
    """A string PostgreSQL can store: no NUL characters or lone surrogates, trimmed, within a
    length."""

    def __init__(self, *, min_length: int = 0, max_length: int = 10_000, **kwargs: Any):
        validators = list(kwargs.pop("validate", None) or [])
        validators.append(ma.validate.Length(min=min_length, max=max_length))
        super().__init__(validate=validators, **kwargs)

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> str:
        return super()._deserialize(value, attr, data, **kwargs).strip()


class Instant(ma.fields.AwareDateTime):
    """A date and time with its UTC offset, that is also a date and time in UTC: 0001-01-01
    at +14:00 is a year 0 in UTC, which Python's datetime cannot hold."""

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> datetime:
        moment: datetime = super()._deserialize(value, attr, data, **kwargs)
        try:
            moment.astimezone(UTC)
        except OverflowError:
            raise ma.ValidationError("Out of range: in UTC this is before year 1 or after 9999.") from None
        return moment


def area_code(level: str | None = None, **kwargs: Any) -> ma.fields.String:
    """A field holding an area code (of any level, or of `level`): ASCII digits."""
    metadata = {
        "example": "440117103001001" if level == "grid" else "440117103",
        **kwargs.pop("metadata", {}),
    }
    pattern, what = (code_pattern(level), f"a {level} code") if level else (CODE_PATTERN, "an area code")
    lengths = ", ".join(str(n) for n in (CODE_LENGTH.values() if level is None else [CODE_LENGTH[level]]))
    return ma.fields.String(
        validate=ma.validate.Regexp(rf"^({pattern})\Z", error=f"Must be {what}: {lengths} digits."),
        metadata=metadata,
        **kwargs,
    )
