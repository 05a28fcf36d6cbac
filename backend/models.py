"""Import every model so the metadata is complete (Alembic and tests use this)."""

from backend.areas.models import Area
from backend.auth.models import ApiKey, LoginAttempt, RefreshToken, User, UserGrid
from backend.db import Base
from backend.events.models import (
    Attachment,
    Category,
    Event,
    EventAction,
    HotlineTicket,
    SyncState,
)
from backend.mediation.models import MediationCase, MediationSession
from backend.open311.models import Open311App, ServiceRequest
from backend.org.models import (
    Alert,
    AlertDispatch,
    Building,
    CheckIn,
    EmergencyUnit,
    PartyBranch,
    PartyGroup,
)
from backend.patrols.models import Patrol, PatrolBatch, PatrolDay, PatrolGridDay, PatrolNorm
from backend.stats.models import Assessment, AssessmentFigures, ClosureRollup, ClosureRollupHours

__all__ = [
    "ApiKey",
    "Area",
    "Assessment",
    "AssessmentFigures",
    "ClosureRollup",
    "ClosureRollupHours",
    "Attachment",
    "Base",
    "Category",
    "Event",
    "EventAction",
    "HotlineTicket",
    "MediationCase",
    "MediationSession",
    "Open311App",
    "ServiceRequest",
    "LoginAttempt",
    "RefreshToken",
    "SyncState",
    "User",
    "UserGrid",
    "Alert",
    "AlertDispatch",
    "Building",
    "CheckIn",
    "EmergencyUnit",
    "PartyBranch",
    "PartyGroup",
    "Patrol",
    "PatrolBatch",
    "PatrolDay",
    "PatrolGridDay",
    "PatrolNorm",
]
