"""Closure statistics: partial indexes on due events (covering for district and town scopes)

Revision ID: 0010
Revises: 0020
Create Date: 2026-11-25 03:21:37.239693
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_district_due",
        "events",
        ["district_code", "due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
        postgresql_include=(
            "town_code",
            "village_code",
            "grid_code",
            "category_code",
            "status",
            "accepted_at",
            "closed_at",
            "rework_count",
            "assignee_id",
            "reporter_id",
        ),
    )
    op.create_index(
        "ix_events_open_due",
        "events",
        ["due_at", "id"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL AND status NOT IN ('closed', 'rejected')"),
    )
    op.create_index(
        "ix_events_town_due",
        "events",
        ["town_code", "due_at"],
        unique=False,
        postgresql_where=sa.text("due_at IS NOT NULL"),
        postgresql_include=(
            "district_code",
            "village_code",
            "grid_code",
            "category_code",
            "status",
            "accepted_at",
            "closed_at",
            "rework_count",
            "assignee_id",
            "reporter_id",
        ),
    )


def downgrade() -> None:
    op.drop_index(
        "ix_events_town_due",
        table_name="events",
        postgresql_where=sa.text("due_at IS NOT NULL"),
        postgresql_include=(
            "district_code",
            "village_code",
            "grid_code",
            "category_code",
            "status",
            "accepted_at",
            "closed_at",
            "rework_count",
            "assignee_id",
            "reporter_id",
        ),
    )
    op.drop_index(
        "ix_events_open_due",
        table_name="events",
        postgresql_where=sa.text("due_at IS NOT NULL AND status NOT IN ('closed', 'rejected')"),
    )
    op.drop_index(
        "ix_events_district_due",
        table_name="events",
        postgresql_where=sa.text("due_at IS NOT NULL"),
        postgresql_include=(
            "town_code",
            "village_code",
            "grid_code",
            "category_code",
            "status",
            "accepted_at",
            "closed_at",
            "rework_count",
            "assignee_id",
            "reporter_id",
        ),
    )
