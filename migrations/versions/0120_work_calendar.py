"""Work calendar: the days that differ from Monday to Friday (holidays, weekend days worked)

Revision ID: 0120
Revises: 0090
Create Date: 2026-12-07 12:30:00

Patrol compliance counts working days; China's public holidays move every year (the State
Council's notice), with weekend days worked in their place, so admins list them here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0120"
down_revision = "0090"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "work_calendar",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("working", sa.Boolean(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("day", name=op.f("pk_work_calendar")),
    )


def downgrade() -> None:
    op.drop_table("work_calendar")
