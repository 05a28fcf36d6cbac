"""Import every model so the metadata is complete (Alembic and tests use this)."""

from backend.areas.models import Area
from backend.db import Base
from backend.auth.models import ApiKey, LoginAttempt, RefreshToken, User, UserGrid
from backend.events.models import Category, Event, EventAction
from backend.org.models import (
    Alert, AlertDispatch, Building, CheckIn, EmergencyUnit, PartyBranch, PartyGroup,
)

__all__ = [
    "ApiKey", "Area", "Base", "Category", "Event", "EventAction", "LoginAttempt", "RefreshToken",
    "User", "UserGrid",
    "Alert", "AlertDispatch", "Building", "CheckIn", "EmergencyUnit", "PartyBranch", "PartyGroup",
]
