"""Event lifecycle times: accepted, resolved, closed (and by whom)

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 02:49:55.604548
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("accepted_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("resolved_by", sa.BigInteger(), nullable=True))
    op.add_column("events", sa.Column("closed_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("events", sa.Column("closed_by", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "closed_by")
    op.drop_column("events", "closed_at")
    op.drop_column("events", "resolved_by")
    op.drop_column("events", "resolved_at")
    op.drop_column("events", "accepted_at")
