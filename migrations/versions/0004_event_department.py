"""Events dispatched to a department

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 03:05:28.977490
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("events", sa.Column("department", sa.String(length=100), nullable=True))


def downgrade() -> None:
    op.drop_column("events", "department")
