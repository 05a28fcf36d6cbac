"""Who is asking: passwords, access and refresh tokens, API keys, and the actor they yield."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.orm import Session

from backend.areas import service as areas
from backend.auth.models import ROLES, WORKER_KINDS, ApiKey, RefreshToken, User, UserGrid
from backend.auth.scope import Actor
from backend.config import Settings
from backend.db import driver_rows
from backend.errors import Conflict, DomainError, NotFound, ValidationFailed, field_error

ALGORITHM = "HS256"
API_KEY_PREFIX = "wg"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"
    slug = "unauthorized"
    headers = {"WWW-Authenticate": 'Bearer realm="wangge"'}


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
    slug = "forbidden"


class TokenReused(Unauthorized):
    """A refresh token came back after it was used: its whole family is revoked."""


def require(actor: Actor, *roles: str) -> None:
    """Refuse unless the actor has one of the roles."""
    if actor.role not in roles:
        raise Forbidden(f"This needs the role {' or '.join(roles)}; you are {actor.role}.")


# --- passwords ------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _hasher(time_cost: int, memory_kib: int) -> PasswordHasher:
    return PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=1)


def hash_password(settings: Settings, password: str) -> str:
    """Argon2id hash of a password."""
    return _hasher(settings.argon2_time_cost, settings.argon2_memory_kib).hash(password)


def _verify(settings: Settings, stored: str | None, password: str) -> bool:
    hasher = _hasher(settings.argon2_time_cost, settings.argon2_memory_kib)
    try:
        # Hash something even for unknown users so timing does not tell who exists.
        return hasher.verify(stored or _dummy_hash(settings), password) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


@lru_cache(maxsize=4)
def _dummy_hash_for(time_cost: int, memory_kib: int) -> str:
    return _hasher(time_cost, memory_kib).hash(secrets.token_hex(16))


def _dummy_hash(settings: Settings) -> str:
    return _dummy_hash_for(settings.argon2_time_cost, settings.argon2_memory_kib)


def check_password_rules(password: str) -> None:
    if len(password) < 8 or len(password) > 200:
        raise ValidationFailed(
            "Passwords are 8 to 200 characters.",
            errors=[field_error("password", "Must be 8 to 200 characters.")],
        )


# --- tokens ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC)


def _issue(session: Session, settings: Settings, user: User, family_id: uuid.UUID) -> TokenPair:
    now = _now()
    lifetime = timedelta(minutes=settings.access_token_minutes)
    claims = {
        "sub": str(user.id),
        "role": user.role,
        "epoch": user.token_epoch,
        "iat": int(now.timestamp()),
        "exp": int((now + lifetime).timestamp()),
        "jti": uuid.uuid4().hex,
        # The login this token belongs to: signing out of the page ends it (actor_from_page_login).
        "fam": str(family_id),
    }
    access = jwt.encode(claims, settings.secret_key, algorithm=ALGORITHM)
    token_id = uuid.uuid4()
    secret = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            id=token_id,
            family_id=family_id,
            user_id=user.id,
            secret_hash=_sha256(secret),
            expires_at=now + timedelta(days=settings.refresh_token_days),
        )
    )
    session.flush()
    return TokenPair(access, f"{token_id}.{secret}", int(lifetime.total_seconds()))


def login(session: Session, settings: Settings, username: str, password: str) -> TokenPair:
    """Check a username and password and open a new token family."""
    user = session.scalars(select(User).where(User.username.ilike(_exact(username)))).first()
    ok = _verify(settings, user.password_hash if user else None, password)
    if not ok or user is None or user.disabled:
        raise Unauthorized("Wrong username or password, or the account is disabled.")
    return _issue(session, settings, user, uuid.uuid4())


def _exact(username: str) -> str:
    """Escape LIKE wildcards so ilike is a case-insensitive equality."""
    return username.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _parse_refresh(token: str) -> tuple[uuid.UUID, str]:
    token_id, _, secret = token.partition(".")
    try:
        return uuid.UUID(token_id), secret
    except ValueError as error:
        raise Unauthorized("The refresh token is not valid.") from error


def refresh(session: Session, settings: Settings, token: str) -> TokenPair:
    """Swap a refresh token for a new pair; a reused one revokes its whole family.

    On TokenReused the caller must commit, so the revocation sticks.
    """
    token_id, secret = _parse_refresh(token)
    row = session.scalars(select(RefreshToken).where(RefreshToken.id == token_id).with_for_update()).first()
    if row is None or not hmac.compare_digest(row.secret_hash, _sha256(secret)):
        raise Unauthorized("The refresh token is not valid.")
    now = _now()
    if row.used_at is not None:
        _revoke_family(session, row.family_id, now)
        raise TokenReused("This refresh token was already used; every token of this login is revoked.")
    if row.revoked_at is not None or row.expires_at <= now:
        raise Unauthorized("The refresh token has expired or was revoked.")
    user = session.get(User, row.user_id)
    if user is None or user.disabled:
        raise Unauthorized("The account is disabled.")
    row.used_at = now
    return _issue(session, settings, user, row.family_id)


def logout(session: Session, token: str) -> None:
    """Revoke the login (token family) a refresh token belongs to."""
    token_id, secret = _parse_refresh(token)
    row = session.get(RefreshToken, token_id)
    if row is None or not hmac.compare_digest(row.secret_hash, _sha256(secret)):
        raise Unauthorized("The refresh token is not valid.")
    _revoke_family(session, row.family_id, _now())


def _revoke_family(session: Session, family_id: uuid.UUID, now: datetime) -> None:
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.family_id == family_id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=now)
    )


def revoke_user_tokens(session: Session, user: User) -> None:
    """End every login of a user at once: access tokens by epoch, refresh tokens by revocation."""
    user.token_epoch += 1
    session.execute(
        update(RefreshToken)
        .where(RefreshToken.user_id == user.id, RefreshToken.revoked_at.is_(None))
        .values(revoked_at=_now())
    )
    session.flush()


# Once per request, so one round trip straight to the driver: the user and their grids together.
_ACTOR = (
    "SELECT u.role, u.username, u.area_code, u.disabled, u.token_epoch,"
    " array_remove(array_agg(g.grid_code ORDER BY g.grid_code), NULL) AS grids"
    " FROM users u LEFT JOIN user_grids g ON g.user_id = u.id WHERE u.id = :id GROUP BY u.id"
)


def actor_from_access_token(session: Session, settings: Settings, token: str) -> Actor:
    """Verify an access token and load who it speaks for, as of now."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, settings.secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise Unauthorized("The access token is invalid or has expired.") from error
    return _actor_of_user(session, user_id, claims.get("epoch"), "The access token has been revoked.")


# --- the supervisors' page --------------------------------------------------------------------
# The page keeps its login in HttpOnly cookies, never where its scripts can read it. Its access
# token is honoured only while its login (refresh-token family) is live, so signing out ends it at
# once; writes also carry a CSRF token derived from the login, which a page of another origin
# cannot learn.
_LIVE_LOGIN = text(
    "SELECT 1 FROM refresh_tokens WHERE family_id = :family AND revoked_at IS NULL"
    " AND expires_at > now() LIMIT 1"
)


def _page_claims(settings: Settings, token: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token, settings.secret_key, algorithms=[ALGORITHM], options={"require": ["exp", "sub", "fam"]}
        )
        int(claims["sub"])
        uuid.UUID(str(claims["fam"]))
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise Unauthorized("The page's sign-in is invalid or has expired.") from error
    return claims


def actor_from_page_login(session: Session, settings: Settings, token: str) -> Actor:
    """The actor of the page's access token while its login is live (not signed out)."""
    claims = _page_claims(settings, token)
    if session.execute(_LIVE_LOGIN, {"family": claims["fam"]}).first() is None:
        raise Unauthorized("The page's sign-in has ended; sign in again.")
    return _actor_of_user(
        session, int(claims["sub"]), claims.get("epoch"), "The access token has been revoked."
    )


def csrf_token(settings: Settings, token: str) -> str:
    """The CSRF token of the login an access token belongs to (the same across refreshes)."""
    family = str(_page_claims(settings, token)["fam"])
    key = hmac.new(settings.secret_key.encode(), b"wangge page csrf", hashlib.sha256).digest()
    return hmac.new(key, family.encode(), hashlib.sha256).hexdigest()


def _actor_of_user(session: Session, user_id: int, epoch: object, revoked: str) -> Actor:
    """The actor a token speaks for, as of now: refused when the user is gone or disabled, or
    their logins ended after the token was made (`epoch`)."""
    row = next(iter(driver_rows(session, _ACTOR, {"id": user_id})), None)
    if row is None or row.disabled or epoch != row.token_epoch:
        raise Unauthorized(revoked)
    return Actor(
        role=row.role,
        user_id=user_id,
        username=row.username,
        area_code=row.area_code,
        grid_codes=tuple(row.grids),
    )


# --- signed links ---------------------------------------------------------------------------
# A signed link is one GET URL (path and query) that acts as the user who minted it until it
# expires: for clients that must keep a credential in a URL (QGIS project files). Its key is
# derived from SECRET_KEY, so a link is never an access token, nor an access token a link.
SIGNED_LINK_MAX = timedelta(days=7)


def _link_key(settings: Settings) -> bytes:
    return hmac.new(settings.secret_key.encode(), b"wangge signed links", hashlib.sha256).digest()


def _canonical(query: list[tuple[str, str]]) -> list[list[str]]:
    return sorted([name, value] for name, value in query)


def sign_link(
    session: Session,
    settings: Settings,
    actor: Actor,
    path: str,
    query: list[tuple[str, str]],
    lifetime: timedelta,
) -> tuple[str, datetime]:
    """A token for GET `path?query` as `actor` (a user) until now + lifetime (at most 7 days)."""
    if actor.user_id is None:
        raise Forbidden("Only signed-in users mint links; an API key is already a URL credential.")
    if not timedelta(0) < lifetime <= SIGNED_LINK_MAX:
        raise ValidationFailed(
            "A link lives at most 7 days.", errors=[field_error("lifetime_s", "At most 604800.")]
        )
    row = next(iter(driver_rows(session, _ACTOR, {"id": actor.user_id})), None)
    if row is None or row.disabled:
        raise Unauthorized("The user is disabled.")
    expires = (_now() + lifetime).replace(microsecond=0)
    claims = {
        "sub": str(actor.user_id),
        # Signing out everywhere (a new epoch) revokes the user's links too.
        "epoch": row.token_epoch,
        "exp": int(expires.timestamp()),
        "path": path,
        "query": _canonical(query),
    }
    return jwt.encode(claims, _link_key(settings), algorithm=ALGORITHM), expires


def actor_from_signed_link(
    session: Session, settings: Settings, token: str, method: str, path: str, query: list[tuple[str, str]]
) -> Actor:
    """The minting user's actor, as of now, when `token` signs exactly this GET; else 401."""
    try:
        claims: dict[str, Any] = jwt.decode(
            token, _link_key(settings), algorithms=[ALGORITHM], options={"require": ["exp", "sub"]}
        )
        user_id = int(claims["sub"])
    except (jwt.PyJWTError, ValueError, TypeError) as error:
        raise Unauthorized("The link is invalid or has expired.") from error
    if (
        method not in ("GET", "HEAD")
        or claims.get("path") != path
        or claims.get("query") != _canonical(query)
    ):
        raise Unauthorized("The link signs another request.")
    return _actor_of_user(session, user_id, claims.get("epoch"), "The link has been revoked.")


def actor_for(session: Session, user: User) -> Actor:
    grids = tuple(user_grids(session, user.id))
    return Actor(
        role=user.role, user_id=user.id, username=user.username, area_code=user.area_code, grid_codes=grids
    )


# --- API keys -------------------------------------------------------------------------------


def create_api_key(
    session: Session,
    *,
    name: str,
    area_code: str,
    prefix: str | None = None,
    secret: str | None = None,
) -> tuple[ApiKey, str]:
    """Make a key; the secret is returned once and only its hash is stored."""
    prefix = prefix or secrets.token_hex(4)
    secret = secret or secrets.token_urlsafe(24)
    key = ApiKey(name=name, prefix=prefix, secret_hash=_sha256(secret), area_code=area_code)
    session.add(key)
    session.flush()
    return key, f"{API_KEY_PREFIX}_{prefix}_{secret}"


def actor_from_api_key(session: Session, presented: str) -> Actor:
    parts = presented.split("_", 2)
    if len(parts) != 3 or parts[0] != API_KEY_PREFIX:
        raise Unauthorized("The API key is not valid.")
    key = session.scalars(select(ApiKey).where(ApiKey.prefix == parts[1])).first()
    if key is None or key.disabled or not hmac.compare_digest(key.secret_hash, _sha256(parts[2])):
        raise Unauthorized("The API key is not valid or is disabled.")
    return Actor(role="gis", area_code=key.area_code, api_key_id=key.id)


def list_api_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.id)))


def update_api_key(
    session: Session, key_id: int, *, disabled: bool | None = None, area_code: str | None = None
) -> ApiKey:
    key = session.get(ApiKey, key_id)
    if key is None:
        raise NotFound(f"No API key {key_id}.")
    if disabled is not None:
        key.disabled = disabled
    if area_code is not None:
        key.area_code = area_code
    session.flush()
    return key


# --- users ----------------------------------------------------------------------------------


@dataclass
class UserChanges:
    display_name: str | None = None
    phone: str | None = None
    password: str | None = None
    role: str | None = None
    area_code: str | None = None
    worker_kind: str | None = None
    disabled: bool | None = None
    given: set[str] = field(default_factory=set)


def _check_role(role: str, area_code: str | None, worker_kind: str | None) -> None:
    if role not in ROLES:
        raise ValidationFailed(f"Unknown role {role}.", errors=[field_error("role", "Unknown role.")])
    if role == "supervisor" and not area_code:
        raise ValidationFailed(
            "A supervisor needs an area.", errors=[field_error("area_code", "Required for a supervisor.")]
        )
    if worker_kind is not None and (role != "worker" or worker_kind not in WORKER_KINDS):
        raise ValidationFailed(
            "Only workers are full_time or part_time.",
            errors=[field_error("worker_kind", "Only for workers.")],
        )


def check_area(session: Session, code: str | None, name: str = "area_code") -> None:
    if code is not None and not areas.get_areas(session, [code]):
        raise ValidationFailed(f"No area {code}.", errors=[field_error(name, f"No area {code}.")])


def create_user(
    session: Session,
    settings: Settings,
    *,
    username: str,
    password: str,
    display_name: str,
    role: str,
    area_code: str | None = None,
    phone: str | None = None,
    worker_kind: str | None = None,
) -> User:
    _check_role(role, area_code, worker_kind)
    check_area(session, area_code)
    check_password_rules(password)
    exists = session.scalar(select(User.id).where(User.username.ilike(_exact(username))))
    if exists is not None:
        raise Conflict(
            f"The username {username} is taken.", errors=[field_error("username", "Already taken.")]
        )
    user = User(
        username=username,
        password_hash=hash_password(settings, password),
        display_name=display_name,
        role=role,
        area_code=area_code if role != "admin" else None,
        phone=phone,
        worker_kind=worker_kind,
    )
    session.add(user)
    session.flush()
    return user


def find_user(session: Session, user_id: int) -> User | None:
    return session.get(User, user_id)


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"No user {user_id}.")
    return user


def list_users(session: Session, *, after_id: int | None, limit: int) -> list[User]:
    query = select(User).order_by(User.id).limit(limit)
    if after_id is not None:
        query = query.where(User.id > after_id)
    return list(session.scalars(query))


def update_user(session: Session, settings: Settings, user_id: int, changes: UserChanges) -> User:
    """Apply an administrator's changes; disabling or a new password ends the user's logins."""
    user = get_user(session, user_id)
    role = changes.role or user.role
    area = changes.area_code if "area_code" in changes.given else user.area_code
    kind = changes.worker_kind if "worker_kind" in changes.given else user.worker_kind
    _check_role(role, area, kind if role == "worker" else None)
    if "area_code" in changes.given:
        check_area(session, area)
    revoke = False
    if changes.display_name is not None:
        user.display_name = changes.display_name
    if "phone" in changes.given:
        user.phone = changes.phone
    if changes.password is not None:
        check_password_rules(changes.password)
        user.password_hash = hash_password(settings, changes.password)
        revoke = True
    if role != user.role or area != user.area_code:
        revoke = True  # a narrower scope must not live on in old tokens' grids
    user.role, user.area_code = role, area if role != "admin" else None
    user.worker_kind = kind if role == "worker" else None
    if changes.disabled is not None and changes.disabled != user.disabled:
        user.disabled = changes.disabled
        revoke = revoke or changes.disabled
    if revoke:
        revoke_user_tokens(session, user)
    session.flush()
    return user


def change_own_password(session: Session, settings: Settings, user_id: int, current: str, new: str) -> None:
    user = get_user(session, user_id)
    if not _verify(settings, user.password_hash, current):
        raise Forbidden("The current password is wrong.")
    check_password_rules(new)
    user.password_hash = hash_password(settings, new)
    revoke_user_tokens(session, user)


def set_user_grids(session: Session, user_id: int, grid_codes: list[str]) -> User:
    """Replace a worker's grids."""
    user = get_user(session, user_id)
    if user.role != "worker":
        raise ValidationFailed(
            "Only workers are assigned to grids.", errors=[field_error("grids", "The user is not a worker.")]
        )
    codes = sorted(set(grid_codes))
    found = areas.get_areas(session, codes)
    missing = [c for c in codes if c not in found or found[c].level != "grid"]
    if missing:
        raise ValidationFailed(
            f"Not current grids: {', '.join(missing[:10])}.",
            errors=[field_error("grids", "Unknown grid codes.", codes=missing)],
        )
    session.execute(delete(UserGrid).where(UserGrid.user_id == user.id))
    for code in codes:
        session.add(UserGrid(user_id=user.id, grid_code=code))
    session.flush()
    return user


def user_grids(session: Session, user_id: int) -> list[str]:
    return list(
        session.scalars(
            select(UserGrid.grid_code).where(UserGrid.user_id == user_id).order_by(UserGrid.grid_code)
        )
    )


def count_workers(session: Session, area_code: str) -> int:
    """Enabled grid workers assigned to at least one grid in the subtree of `area_code`."""
    return (
        session.scalar(
            select(func.count(func.distinct(User.id)))
            .join(UserGrid, UserGrid.user_id == User.id)
            .where(
                User.role == "worker",
                User.disabled.is_(False),
                UserGrid.grid_code.startswith(area_code, autoescape=True),
            )
        )
        or 0
    )
