"""Closure statistics as of a past moment: indexes on the trail

Revision ID: 0040
Revises: 0030
Create Date: 2026-11-27 10:00:00

An event's closing actions up to a moment (ix_event_actions_event_closing), and whether any
action that statistics read was taken since a moment (ix_event_actions_statistics_since). Both
are partial: plain reports, dispatches, starts, resolutions and escalations are not in them.
"""

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0030"
branch_labels = None
depends_on = None

CLOSING = sa.text("action IN ('reject', 'close', 'reopen', 'return')")
STATISTICS = sa.text(
    "action IN ('accept', 'reject', 'close', 'reopen', 'return')"
    " OR (action = 'report' AND to_status <> 'reported')"
)


def upgrade() -> None:
    op.create_index(
        "ix_event_actions_event_closing",
        "event_actions",
        ["event_id", "created_at"],
        unique=False,
        postgresql_include=["action"],
        postgresql_where=CLOSING,
    )
    op.create_index(
        "ix_event_actions_statistics_since",
        "event_actions",
        ["created_at"],
        unique=False,
        postgresql_where=STATISTICS,
    )


def downgrade() -> None:
    op.drop_index("ix_event_actions_statistics_since", table_name="event_actions")
    op.drop_index("ix_event_actions_event_closing", table_name="event_actions")
