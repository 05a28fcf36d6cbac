"""JSON schemas of GeoReport v2's answers, written from the published specification
(http://wiki.open311.org/GeoReport_v2 and its Service Discovery page): field names, which are
required, their types and enumerations. Extensions (fields the spec does not name) are allowed,
as the spec allows servers to add them."""

from __future__ import annotations

from typing import Any

DATETIME = {"type": "string", "format": "date-time"}
NULLABLE_TEXT = {"type": ["string", "null"]}

DISCOVERY: dict[str, Any] = {
    "type": "object",
    "required": ["changeset", "contact", "key_service", "endpoints"],
    "properties": {
        "changeset": DATETIME,
        "contact": {"type": "string"},
        "key_service": {"type": "string"},
        "endpoints": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["specification", "url", "changeset", "type", "formats"],
                "properties": {
                    "specification": {"type": "string", "format": "uri"},
                    "url": {"type": "string", "format": "uri"},
                    "changeset": DATETIME,
                    "type": {"enum": ["production", "test"]},
                    "formats": {
                        "type": "array",
                        "items": {"enum": ["text/xml", "application/json"]},
                        "contains": {"const": "text/xml"},
                    },
                },
            },
        },
    },
}

SERVICES: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["service_code", "service_name", "metadata", "type"],
        "properties": {
            "service_code": {"type": "string", "minLength": 1},
            "service_name": {"type": "string"},
            "description": NULLABLE_TEXT,
            "metadata": {"type": "boolean"},
            "type": {"enum": ["realtime", "batch", "blackbox"]},
            "keywords": NULLABLE_TEXT,
            "group": NULLABLE_TEXT,
        },
    },
}

SERVICE_DEFINITION: dict[str, Any] = {
    "type": "object",
    "required": ["service_code", "attributes"],
    "properties": {
        "service_code": {"type": "string"},
        "attributes": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["variable", "code", "datatype", "required", "order", "description"],
                "properties": {
                    "variable": {"type": "boolean"},
                    "code": {"type": "string"},
                    "datatype": {
                        "enum": ["string", "number", "datetime", "text", "singlevaluelist", "multivaluelist"]
                    },
                    "required": {"type": "boolean"},
                    "datatype_description": NULLABLE_TEXT,
                    "order": {"type": "integer"},
                    "description": {"type": "string"},
                    "values": {
                        "type": "array",
                        "items": {"type": "object", "required": ["key", "name"]},
                    },
                },
            },
        },
    },
}

POSTED: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "maxItems": 1,
    "items": {
        "type": "object",
        "anyOf": [{"required": ["service_request_id"]}, {"required": ["token"]}],
        "properties": {
            "service_request_id": {"type": "string", "minLength": 1},
            "token": {"type": "string", "minLength": 1},
            "service_notice": NULLABLE_TEXT,
            "account_id": NULLABLE_TEXT,
        },
    },
}

REQUESTS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["service_request_id", "status", "service_code", "requested_datetime", "lat", "long"],
        "properties": {
            "service_request_id": {"type": "string", "minLength": 1},
            "status": {"enum": ["open", "closed"]},
            "status_notes": NULLABLE_TEXT,
            "service_name": {"type": "string"},
            "service_code": {"type": "string"},
            "description": NULLABLE_TEXT,
            "agency_responsible": NULLABLE_TEXT,
            "service_notice": NULLABLE_TEXT,
            "requested_datetime": DATETIME,
            "updated_datetime": {"type": ["string", "null"], "format": "date-time"},
            "expected_datetime": {"type": ["string", "null"], "format": "date-time"},
            "address": NULLABLE_TEXT,
            "address_id": NULLABLE_TEXT,
            "zipcode": NULLABLE_TEXT,
            "lat": {"type": "number", "minimum": -90, "maximum": 90},
            "long": {"type": "number", "minimum": -180, "maximum": 180},
            "media_url": {"type": ["string", "null"]},
        },
    },
}

TOKENS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["token"],
        "properties": {"token": {"type": "string"}, "service_request_id": NULLABLE_TEXT},
    },
}

ERRORS: dict[str, Any] = {
    "type": "array",
    "minItems": 1,
    "items": {
        "type": "object",
        "required": ["code", "description"],
        "properties": {"code": {"type": "integer"}, "description": {"type": "string", "minLength": 1}},
    },
}
