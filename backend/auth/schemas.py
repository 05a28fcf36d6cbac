"""What account, token and key requests and answers look like."""

from __future__ import annotations

import marshmallow as ma

from backend.auth.models import ROLES, WORKER_KINDS
from backend.common.fields import RawText, Text, area_code
from backend.common.pagination import CursorArgsSchema


class LoginSchema(ma.Schema):
    username = Text(required=True, min_length=1, max_length=64)
    password = RawText(required=True, validate=ma.validate.Length(min=1, max=200), load_only=True)


class RefreshSchema(ma.Schema):
    refresh_token = RawText(required=True, validate=ma.validate.Length(min=1, max=200))


class TokenSchema(ma.Schema):
    access_token = ma.fields.String()
    refresh_token = ma.fields.String()
    token_type = ma.fields.String()
    expires_in = ma.fields.Integer(metadata={"description": "Seconds the access token lives"})


class MeSchema(ma.Schema):
    id = ma.fields.Integer(allow_none=True)
    username = ma.fields.String(allow_none=True)
    display_name = ma.fields.String(allow_none=True)
    role = ma.fields.String(metadata={"description": "worker, supervisor, admin or gis (API key)"})
    area_code = ma.fields.String(allow_none=True, metadata={"description": "Root of the scope"})
    worker_kind = ma.fields.String(allow_none=True)
    grids = ma.fields.List(ma.fields.String())


class MeUpdateSchema(ma.Schema):
    """What users may change about themselves: never their role or scope."""

    display_name = Text(min_length=1, max_length=100)
    phone = Text(max_length=40, allow_none=True)
    current_password = RawText(validate=ma.validate.Length(max=200), load_only=True)
    password = RawText(validate=ma.validate.Length(min=8, max=200), load_only=True)

    @ma.validates_schema
    def _password_pair(self, data, **kwargs):  # type: ignore[no-untyped-def]
        if "password" in data and "current_password" not in data:
            raise ma.ValidationError("Give current_password to set a new password.", "current_password")


class UserSchema(ma.Schema):
    id = ma.fields.Integer()
    username = ma.fields.String()
    display_name = ma.fields.String()
    phone = ma.fields.String(allow_none=True)
    role = ma.fields.String()
    area_code = ma.fields.String(allow_none=True)
    worker_kind = ma.fields.String(allow_none=True)
    disabled = ma.fields.Boolean()
    grids = ma.fields.List(ma.fields.String())
    created_at = ma.fields.AwareDateTime()


class UserListSchema(ma.Schema):
    items = ma.fields.List(ma.fields.Nested(UserSchema))
    next_cursor = ma.fields.String(allow_none=True)


class UserCreateSchema(ma.Schema):
    username = Text(
        required=True,
        min_length=1,
        max_length=64,
        validate=[ma.validate.Regexp(r"^[A-Za-z0-9_.@-]+\Z", error="Letters, digits, _.@- only.")],
    )
    password = RawText(required=True, validate=ma.validate.Length(min=8, max=200), load_only=True)
    display_name = Text(required=True, min_length=1, max_length=100)
    phone = Text(max_length=40, allow_none=True)
    role = ma.fields.String(required=True, validate=ma.validate.OneOf(ROLES))
    area_code = area_code(allow_none=True)
    worker_kind = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(WORKER_KINDS))


class UserUpdateSchema(ma.Schema):
    display_name = Text(min_length=1, max_length=100)
    phone = Text(max_length=40, allow_none=True)
    password = RawText(validate=ma.validate.Length(min=8, max=200), load_only=True)
    role = ma.fields.String(validate=ma.validate.OneOf(ROLES))
    area_code = area_code(allow_none=True)
    worker_kind = ma.fields.String(allow_none=True, validate=ma.validate.OneOf(WORKER_KINDS))
    disabled = ma.fields.Boolean()


class GridsSchema(ma.Schema):
    grids = ma.fields.List(
        area_code("grid"),
        required=True,
        validate=ma.validate.Length(max=200),
    )


class ApiKeySchema(ma.Schema):
    id = ma.fields.Integer()
    name = ma.fields.String()
    prefix = ma.fields.String()
    area_code = ma.fields.String()
    disabled = ma.fields.Boolean()
    created_at = ma.fields.AwareDateTime()
    key = ma.fields.String(metadata={"description": "The key itself: shown once, at creation"})


class ApiKeyCreateSchema(ma.Schema):
    name = Text(required=True, min_length=1, max_length=100)
    area_code = area_code(required=True)


class ApiKeyUpdateSchema(ma.Schema):
    disabled = ma.fields.Boolean()
    area_code = area_code()


class UserQueryArgsSchema(CursorArgsSchema):
    pass
