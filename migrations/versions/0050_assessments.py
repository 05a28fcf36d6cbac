"""Assessments (考核): a month's closure figures, frozen

Revision ID: 0050
Revises: 0040
Create Date: 2026-11-28 09:00:00

Two tables the database lets rows be added to but never changed or deleted (as the events'
trail): the assessment of an area's month, and its figures, one row per group.
"""

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0040"
branch_labels = None
depends_on = None

FROZEN = """
CREATE FUNCTION assessments_frozen() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% holds frozen figures: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""
TABLES = ("assessments", "assessment_figures")


def upgrade() -> None:
    op.create_table(
        "assessments",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("area_code", sa.String(length=15), nullable=False),
        sa.Column("area_name", sa.String(length=100), nullable=True),
        sa.Column("month", sa.Date(), nullable=False),
        sa.Column("window_from", sa.DateTime(timezone=True), nullable=False),
        sa.Column("window_to", sa.DateTime(timezone=True), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
        sa.Column("benchmark", sa.Double(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("benchmark > 0 AND benchmark <= 1", name=op.f("ck_assessments_benchmark")),
        sa.CheckConstraint("extract(day FROM month) = 1", name=op.f("ck_assessments_month_first_day")),
        sa.CheckConstraint(
            "window_from < window_to AND as_of >= window_to", name=op.f("ck_assessments_period")
        ),
        sa.ForeignKeyConstraint(
            ["created_by"], ["users.id"], name=op.f("fk_assessments_created_by_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessments")),
        sa.UniqueConstraint("area_code", "month", name=op.f("uq_assessments_area_code_month")),
    )
    op.create_table(
        "assessment_figures",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("assessment_id", sa.BigInteger(), nullable=False),
        sa.Column("level", sa.String(length=8), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=True),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("closed_on_time", sa.Integer(), nullable=False),
        sa.Column("reworked", sa.Integer(), nullable=False),
        sa.Column("overdue_open", sa.Integer(), nullable=False),
        sa.Column("closure_rate", sa.Double(), nullable=True),
        sa.Column("on_time_rate", sa.Double(), nullable=True),
        sa.Column("rework_rate", sa.Double(), nullable=True),
        sa.Column("median_hours_to_close", sa.Double(), nullable=True),
        sa.Column("p90_hours_to_close", sa.Double(), nullable=True),
        sa.Column("meets_benchmark", sa.Boolean(), nullable=False),
        sa.Column("wilson_low", sa.Double(), nullable=True),
        sa.Column("wilson_high", sa.Double(), nullable=True),
        sa.Column("below_benchmark", sa.Boolean(), nullable=False),
        sa.CheckConstraint(
            "level IN ('district', 'town', 'village', 'grid')", name=op.f("ck_assessment_figures_level")
        ),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_assessment_figures_assessment_id_assessments"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_assessment_figures")),
        sa.UniqueConstraint(
            "assessment_id", "level", "code", name=op.f("uq_assessment_figures_assessment_id_level_code")
        ),
    )
    op.execute(FROZEN)
    for table in TABLES:
        op.execute(
            f"CREATE TRIGGER {table}_frozen BEFORE UPDATE OR DELETE ON {table}"
            " FOR EACH ROW EXECUTE FUNCTION assessments_frozen()"
        )
        op.execute(
            f"CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}"
            " FOR EACH STATEMENT EXECUTE FUNCTION assessments_frozen()"
        )


def downgrade() -> None:
    op.drop_table("assessment_figures")
    op.drop_table("assessments")
    op.execute("DROP FUNCTION assessments_frozen()")
