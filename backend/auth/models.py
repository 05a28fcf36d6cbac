"""Users, their grids, refresh tokens, API keys and login attempt counters."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    String,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.db import Base

ROLES = ("worker", "supervisor", "admin")
WORKER_KINDS = ("full_time", "part_time")


class User(Base):
    """A grid worker (网格员), a centre's supervisor or an administrator."""

    __tablename__ = "users"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    username: Mapped[str] = mapped_column(String(64))
    password_hash: Mapped[str] = mapped_column(String(200))
    display_name: Mapped[str] = mapped_column(String(100))
    phone: Mapped[str | None] = mapped_column(String(40))
    role: Mapped[str] = mapped_column(String(12))
    # The root of a supervisor's scope: every area below it is theirs.
    area_code: Mapped[str | None] = mapped_column(String(15))
    worker_kind: Mapped[str | None] = mapped_column(String(10))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    # Raised on disable or password change: tokens carrying an older epoch stop working.
    token_epoch: Mapped[int] = mapped_column(Integer, server_default="0")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())

    __table_args__ = (
        CheckConstraint("role IN ('worker', 'supervisor', 'admin')", name="role"),
        CheckConstraint("role <> 'supervisor' OR area_code IS NOT NULL", name="supervisor_area"),
        CheckConstraint(
            "worker_kind IS NULL OR worker_kind IN ('full_time', 'part_time')", name="worker_kind"
        ),
        Index("uq_users_username", text("lower(username)"), unique=True),
    )


class UserGrid(Base):
    """A worker's assignment to a grid."""

    __tablename__ = "user_grids"

    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    grid_code: Mapped[str] = mapped_column(String(15), primary_key=True, index=True)


class RefreshToken(Base):
    """One refresh token of a login's family; only a hash of its secret is kept."""

    __tablename__ = "refresh_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    family_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    """A read-only key for GIS clients, scoped to an area subtree."""

    __tablename__ = "api_keys"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(12), unique=True)
    secret_hash: Mapped[str] = mapped_column(String(64))
    area_code: Mapped[str] = mapped_column(String(15))
    disabled: Mapped[bool] = mapped_column(Boolean, server_default="false")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LoginAttempt(Base):
    """A fixed-window counter of login attempts, shared by every process through the database."""

    __tablename__ = "login_attempts"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    count: Mapped[int] = mapped_column(Integer)
