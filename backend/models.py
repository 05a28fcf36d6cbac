"""Import every model so the metadata is complete (Alembic and tests use this)."""

from backend.areas.models import Area
from backend.db import Base
from backend.auth.models import ApiKey, LoginAttempt, RefreshToken, User, UserGrid
from backend.events.models import Attachment, Category, Event, EventAction, SyncState

__all__ = [
    "ApiKey", "Area", "Attachment", "SyncState", "Base", "Category", "Event", "EventAction", "LoginAttempt", "RefreshToken",
    "User", "UserGrid",
]
