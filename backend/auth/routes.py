"""HTTP routes for tokens, the caller's own account, users and API keys."""

from __future__ import annotations

from typing import Any

from flask.views import MethodView

from backend.auth import schemas, service
from backend.auth.context import client_address, current_actor, public
from backend.auth.ratelimit import Counter, counter
from backend.common.blueprint import Blueprint
from backend.common.pagination import decode_cursor, encode_cursor
from backend.config import settings
from backend.db import get_session
from backend.errors import DomainError
from backend.ops import metrics

blp = Blueprint("auth", __name__, url_prefix="/api/v1", description="Sign-in, accounts and API keys")

NO_AUTH: list[dict[str, list[str]]] = []


class TooManyAttempts(DomainError):
    status = 429
    title = "Too Many Requests"
    slug = "too-many-requests"


def _counter() -> Counter:
    return counter(settings().ratelimit_redis_url, get_session())


def _limit_login(username: str) -> None:
    config = settings()
    counter = _counter()
    waits = [
        counter.hit(f"user:{username.lower()}", config.login_limit_per_user, config.login_window_s),
        counter.hit(f"addr:{client_address()}", config.login_limit_per_address, config.login_window_s),
    ]
    get_session().commit()  # the count stands whether or not the password is right
    wait = max((w for w in waits if w is not None), default=None)
    if wait is not None:
        error = TooManyAttempts(f"Too many sign-in attempts; try again in {wait} s.")
        error.headers = {"Retry-After": str(wait)}
        raise error


@public
@blp.route("/auth/token")
class Token(MethodView):
    @blp.doc(security=NO_AUTH)
    @blp.arguments(schemas.LoginSchema)
    @blp.response(200, schemas.TokenSchema)
    def post(self, data: dict[str, Any]) -> service.TokenPair:
        """Sign in with a username and password"""
        session = get_session()
        try:
            _limit_login(data["username"])
            pair = service.login(session, settings(), data["username"], data["password"])
        except TooManyAttempts:
            metrics.count_sign_in_failure("rate_limited")
            raise
        except service.Unauthorized:
            metrics.count_sign_in_failure("credentials")
            raise
        session.commit()
        return pair


@public
@blp.route("/auth/refresh")
class Refresh(MethodView):
    @blp.doc(security=NO_AUTH)
    @blp.arguments(schemas.RefreshSchema)
    @blp.response(200, schemas.TokenSchema)
    def post(self, data: dict[str, Any]) -> service.TokenPair:
        """Swap a refresh token for a new pair (each refresh token works once)"""
        session = get_session()
        try:
            pair = service.refresh(session, settings(), data["refresh_token"])
        except service.TokenReused:
            session.commit()  # keep the family's revocation
            raise
        session.commit()
        return pair


@public
@blp.route("/auth/logout")
class Logout(MethodView):
    @blp.doc(security=NO_AUTH)
    @blp.arguments(schemas.RefreshSchema)
    @blp.response(204)
    def post(self, data: dict[str, Any]) -> None:
        """Sign out: revoke this login's refresh tokens"""
        session = get_session()
        service.logout(session, data["refresh_token"])
        session.commit()


def _me() -> dict[str, Any]:
    actor = current_actor()
    if actor.user_id is None:
        return {"role": actor.role, "area_code": actor.area_code, "grids": []}
    user = service.get_user(get_session(), actor.user_id)
    return {**_user_dict(user), "grids": list(actor.grid_codes)}


@blp.route("/me")
class Me(MethodView):
    @blp.response(200, schemas.MeSchema)
    def get(self) -> dict[str, Any]:
        """Who I am: role, scope and grids"""
        return _me()

    @blp.arguments(schemas.MeUpdateSchema)
    @blp.response(200, schemas.MeSchema)
    def patch(self, data: dict[str, Any]) -> dict[str, Any]:
        """Change my name, phone or password (never my role or scope)"""
        actor = current_actor()
        if actor.user_id is None:
            raise service.Forbidden("API keys have no account to change.")
        session = get_session()
        if "password" in data:
            service.change_own_password(
                session, settings(), actor.user_id, data["current_password"], data["password"]
            )
        changes = service.UserChanges(
            display_name=data.get("display_name"),
            phone=data.get("phone"),
            given={k for k in ("phone",) if k in data},
        )
        service.update_user(session, settings(), actor.user_id, changes)
        session.commit()
        return _me()


def _user_dict(user: Any) -> dict[str, Any]:
    return {
        c: getattr(user, c)
        for c in (
            "id",
            "username",
            "display_name",
            "phone",
            "role",
            "area_code",
            "worker_kind",
            "disabled",
            "created_at",
        )
    }


def _user_out(user: Any) -> dict[str, Any]:
    return {**_user_dict(user), "grids": service.user_grids(get_session(), user.id)}


@blp.route("/users")
class Users(MethodView):
    @blp.arguments(schemas.UserQueryArgsSchema, location="query")
    @blp.response(200, schemas.UserListSchema)
    def get(self, args: dict[str, Any]) -> dict[str, Any]:
        """List users (admins)"""
        service.require(current_actor(), "admin")
        after = decode_cursor(args.get("cursor"), (int,))
        users = service.list_users(get_session(), after_id=after[0] if after else None, limit=args["limit"])
        last = users[-1] if len(users) == args["limit"] else None
        return {
            "items": [_user_out(u) for u in users],
            "next_cursor": encode_cursor([last.id]) if last else None,
        }

    @blp.arguments(schemas.UserCreateSchema)
    @blp.response(201, schemas.UserSchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a user (admins)"""
        service.require(current_actor(), "admin")
        session = get_session()
        user = service.create_user(session, settings(), **data)
        session.commit()
        return _user_out(user)


@blp.route("/users/<int:user_id>")
class UserById(MethodView):
    @blp.response(200, schemas.UserSchema)
    def get(self, user_id: int) -> dict[str, Any]:
        """Get a user (admins)"""
        service.require(current_actor(), "admin")
        return _user_out(service.get_user(get_session(), user_id))

    @blp.arguments(schemas.UserUpdateSchema)
    @blp.response(200, schemas.UserSchema)
    def patch(self, data: dict[str, Any], user_id: int) -> dict[str, Any]:
        """Change, re-scope or disable a user (admins); disabling ends their logins at once"""
        service.require(current_actor(), "admin")
        session = get_session()
        user = service.update_user(session, settings(), user_id, service.UserChanges(**data, given=set(data)))
        session.commit()
        return _user_out(user)


@blp.route("/users/<int:user_id>/grids")
class UserGrids(MethodView):
    @blp.arguments(schemas.GridsSchema)
    @blp.response(200, schemas.UserSchema)
    def put(self, data: dict[str, Any], user_id: int) -> dict[str, Any]:
        """Assign a worker to grids, replacing the old assignment (admins)"""
        service.require(current_actor(), "admin")
        session = get_session()
        user = service.set_user_grids(session, user_id, data["grids"])
        session.commit()
        return _user_out(user)


@blp.route("/api-keys")
class ApiKeys(MethodView):
    @blp.response(200, schemas.ApiKeySchema(many=True))
    def get(self) -> list[Any]:
        """List GIS API keys (admins)"""
        service.require(current_actor(), "admin")
        return service.list_api_keys(get_session())

    @blp.arguments(schemas.ApiKeyCreateSchema)
    @blp.response(201, schemas.ApiKeySchema)
    def post(self, data: dict[str, Any]) -> dict[str, Any]:
        """Create a read-only GIS API key scoped to an area; the key is shown only now"""
        service.require(current_actor(), "admin")
        session = get_session()
        service.check_area(session, data["area_code"])
        key, secret = service.create_api_key(session, **data)
        session.commit()
        return {
            **{c: getattr(key, c) for c in ("id", "name", "prefix", "area_code", "disabled", "created_at")},
            "key": secret,
        }


@blp.route("/api-keys/<int:key_id>")
class ApiKeyById(MethodView):
    @blp.arguments(schemas.ApiKeyUpdateSchema)
    @blp.response(200, schemas.ApiKeySchema)
    def patch(self, data: dict[str, Any], key_id: int) -> Any:
        """Disable or re-scope an API key (admins)"""
        service.require(current_actor(), "admin")
        session = get_session()
        if "area_code" in data:
            service.check_area(session, data["area_code"])
        key = service.update_api_key(session, key_id, **data)
        session.commit()
        return key
