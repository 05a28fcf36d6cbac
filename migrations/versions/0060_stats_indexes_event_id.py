"""Closure statistics: the statistics indexes include the event id

Revision ID: 0060
Revises: 0050
Create Date: 2026-11-28 15:00:00

Figures as of a past moment look up the trail of the few events whose columns do not say what
stood then, by their id; with the id in the covering indexes, the district and town scans stay
index-only. The two indexes are rebuilt (writes to events wait while they are).
"""

import sqlalchemy as sa
from alembic import op

revision = "0060"
down_revision = "0050"
branch_labels = None
depends_on = None

COLUMNS = (
    "village_code",
    "grid_code",
    "category_code",
    "status",
    "accepted_at",
    "closed_at",
    "rework_count",
    "assignee_id",
    "reporter_id",
)
INDEXES = {
    "ix_events_district_due": ("district_code", "town_code"),
    "ix_events_town_due": ("town_code", "district_code"),
}


def _rebuild(include_id: bool) -> None:
    for name, (scope, other) in INDEXES.items():
        op.drop_index(name, table_name="events")
        op.create_index(
            name,
            "events",
            [scope, "due_at"],
            unique=False,
            postgresql_where=sa.text("due_at IS NOT NULL"),
            postgresql_include=[other, *COLUMNS, *(["id"] if include_id else [])],
        )


def upgrade() -> None:
    _rebuild(include_id=True)


def downgrade() -> None:
    _rebuild(include_id=False)
