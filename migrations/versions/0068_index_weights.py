"""The composite index's weights (综合指数), which admins set

Revision ID: 0068
Revises: 0060
Create Date: 2026-12-07 04:30:00

One row per part of the index, seeded with the weights the page starts with.
"""

import sqlalchemy as sa
from alembic import op

revision = "0068"
down_revision = "0060"
branch_labels = None
depends_on = None

DEFAULTS = {
    "closure_rate": 35.0,
    "on_time_rate": 25.0,
    "overdue_open": 15.0,
    "check_in_rate": 15.0,
    "alerts_in_progress": 10.0,
}


def upgrade() -> None:
    table = op.create_table(
        "index_weights",
        sa.Column("part", sa.String(length=20), nullable=False),
        sa.Column("weight", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "part IN ('closure_rate', 'on_time_rate', 'overdue_open', 'check_in_rate', 'alerts_in_progress')",
            name=op.f("ck_index_weights_part"),
        ),
        sa.CheckConstraint("weight >= 0 AND weight <= 100", name=op.f("ck_index_weights_weight")),
        sa.PrimaryKeyConstraint("part", name=op.f("pk_index_weights")),
    )
    op.bulk_insert(table, [{"part": p, "weight": w} for p, w in DEFAULTS.items()])


def downgrade() -> None:
    op.drop_table("index_weights")
