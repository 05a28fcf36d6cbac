"""Photos, inbox sync states, per-category duplicate hints, expected photo counts

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25 03:15:09.381022
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sync_states",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("event_ids", postgresql.ARRAY(sa.UUID()), nullable=False),
        sa.Column("versions", postgresql.ARRAY(sa.Integer()), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_states")),
    )
    op.create_index(op.f("ix_sync_states_user_id"), "sync_states", ["user_id"], unique=False)
    op.create_table(
        "attachments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("media_type", sa.String(length=20), nullable=False),
        sa.Column("size", sa.Integer(), nullable=False),
        sa.Column("width", sa.Integer(), nullable=False),
        sa.Column("height", sa.Integer(), nullable=False),
        sa.Column("stage", sa.String(length=12), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=True),
        sa.Column("uploaded_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("stage IN ('report', 'resolution')", name=op.f("ck_attachments_stage")),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_attachments_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_attachments")),
        sa.UniqueConstraint("event_id", "sha256", name=op.f("uq_attachments_event_id_sha256")),
    )
    op.create_index(op.f("ix_attachments_sha256"), "attachments", ["sha256"], unique=False)
    op.add_column(
        "categories", sa.Column("duplicate_radius_m", sa.Integer(), server_default="100", nullable=False)
    )
    op.add_column(
        "categories", sa.Column("duplicate_window_h", sa.Integer(), server_default="168", nullable=False)
    )
    op.add_column("events", sa.Column("photos_expected", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    op.drop_column("events", "photos_expected")
    op.drop_column("categories", "duplicate_window_h")
    op.drop_column("categories", "duplicate_radius_m")
    op.drop_index(op.f("ix_attachments_sha256"), table_name="attachments")
    op.drop_table("attachments")
    op.drop_index(op.f("ix_sync_states_user_id"), table_name="sync_states")
    op.drop_table("sync_states")
