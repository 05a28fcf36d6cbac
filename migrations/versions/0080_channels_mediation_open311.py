"""Channels of events, hotline tickets, Open311 apps and requests, mediation cases

Revision ID: 0080
Revises: 0060
Create Date: 2026-12-07 04:30:00

Events gain where they came from (`channel`, every existing row a grid worker's report) and a
video alert's camera; the hotline's tickets, Open311's requests and mediation cases each get a
table of their own beside events, so events themselves only gain columns.
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0080"
down_revision = "0070"
branch_labels = None
depends_on = None

CHANNELS = ("grid_worker", "centre_desk", "hotline", "citizen", "video", "other")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{value}'" for value in values) + ")"


def upgrade() -> None:
    # A constant default: PostgreSQL fills the existing rows without rewriting the table.
    op.add_column(
        "events",
        sa.Column("channel", sa.String(length=12), server_default="grid_worker", nullable=False),
    )
    op.add_column("events", sa.Column("camera_id", sa.String(length=64), nullable=True))
    op.create_check_constraint(op.f("ck_events_channel"), "events", _one_of("channel", CHANNELS))
    op.create_table(
        "hotline_tickets",
        sa.Column("ticket_id", sa.String(length=64), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["event_id"],
            ["events.id"],
            name=op.f("fk_hotline_tickets_event_id_events"),
            deferrable=True,
            initially="DEFERRED",
        ),
        sa.PrimaryKeyConstraint("ticket_id", name=op.f("pk_hotline_tickets")),
        sa.UniqueConstraint("event_id", name=op.f("uq_hotline_tickets_event_id")),
    )
    op.create_table(
        "open311_apps",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("secret_hash", sa.String(length=64), nullable=False),
        sa.Column("disabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_open311_apps")),
        sa.UniqueConstraint("prefix", name=op.f("uq_open311_apps_prefix")),
    )
    op.create_table(
        "open311_requests",
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("token", sa.String(length=40), nullable=False),
        sa.Column("app_id", sa.BigInteger(), nullable=False),
        sa.Column("address_string", sa.Text(), nullable=True),
        sa.Column("media_url", sa.Text(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["app_id"], ["open311_apps.id"], name=op.f("fk_open311_requests_app_id_open311_apps")
        ),
        sa.ForeignKeyConstraint(
            ["event_id"], ["events.id"], name=op.f("fk_open311_requests_event_id_events")
        ),
        sa.PrimaryKeyConstraint("event_id", name=op.f("pk_open311_requests")),
        sa.UniqueConstraint("token", name=op.f("uq_open311_requests_token")),
    )
    op.create_index(op.f("ix_open311_requests_app_id"), "open311_requests", ["app_id"], unique=False)
    op.create_table(
        "mediation_cases",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("responsible_code", sa.String(length=15), nullable=False),
        sa.Column("dispute_type", sa.String(length=20), nullable=False),
        sa.Column("mediators", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("parties", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("opened_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("opened_by", sa.BigInteger(), nullable=True),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_by", sa.BigInteger(), nullable=True),
        sa.Column("outcome_note", sa.Text(), nullable=True),
        sa.Column("judicially_confirmed", sa.Boolean(), nullable=True),
        sa.Column("agreement_sha256", sa.String(length=64), nullable=True),
        sa.Column("agreement_media_type", sa.String(length=20), nullable=True),
        sa.Column("agreement_size", sa.Integer(), nullable=True),
        sa.Column("referred_to", sa.String(length=16), nullable=True),
        sa.Column("referral_reference", sa.String(length=100), nullable=True),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.CheckConstraint(
            "(outcome = 'failed_referred') = (referred_to IS NOT NULL AND referral_reference IS NOT NULL)"
            " OR (outcome IS NULL AND referred_to IS NULL)",
            name=op.f("ck_mediation_cases_referral_named"),
        ),
        sa.CheckConstraint(
            "(outcome IS NULL) = (outcome_at IS NULL)", name=op.f("ck_mediation_cases_outcome_dated")
        ),
        sa.CheckConstraint(
            "outcome IS DISTINCT FROM 'agreement'"
            " OR (agreement_sha256 IS NOT NULL AND judicially_confirmed IS NOT NULL)",
            name=op.f("ck_mediation_cases_agreement_documented"),
        ),
        sa.CheckConstraint(
            _one_of(
                "dispute_type",
                ("neighbour", "family", "land", "labour", "property", "contract", "damages", "other"),
            ),
            name=op.f("ck_mediation_cases_dispute_type"),
        ),
        sa.CheckConstraint(
            "jsonb_array_length(mediators) BETWEEN 1 AND 3", name=op.f("ck_mediation_cases_mediator_count")
        ),
        sa.CheckConstraint(
            _one_of("outcome", ("agreement", "failed_referred", "withdrawn")),
            name=op.f("ck_mediation_cases_outcome"),
        ),
        sa.CheckConstraint(
            _one_of("referred_to", ("court", "petition_office", "police")),
            name=op.f("ck_mediation_cases_referred_to"),
        ),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_mediation_cases_event_id_events")),
        sa.ForeignKeyConstraint(
            ["opened_by"], ["users.id"], name=op.f("fk_mediation_cases_opened_by_users"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["outcome_by"],
            ["users.id"],
            name=op.f("fk_mediation_cases_outcome_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_cases")),
        sa.UniqueConstraint("event_id", name=op.f("uq_mediation_cases_event_id")),
    )
    op.create_index("ix_mediation_cases_district_opened", "mediation_cases", ["district_code", "opened_at"])
    op.create_index("ix_mediation_cases_town_opened", "mediation_cases", ["town_code", "opened_at"])
    op.create_table(
        "mediation_sessions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("case_id", sa.BigInteger(), nullable=False),
        sa.Column("held_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("place", sa.String(length=200), nullable=True),
        sa.Column("notes", sa.Text(), nullable=True),
        sa.Column("recorded_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"], ["mediation_cases.id"], name=op.f("fk_mediation_sessions_case_id_mediation_cases")
        ),
        sa.ForeignKeyConstraint(
            ["recorded_by"],
            ["users.id"],
            name=op.f("fk_mediation_sessions_recorded_by_users"),
            ondelete="RESTRICT",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mediation_sessions")),
    )
    op.create_index(op.f("ix_mediation_sessions_case_id"), "mediation_sessions", ["case_id"], unique=False)


def downgrade() -> None:
    op.drop_table("mediation_sessions")
    op.drop_table("mediation_cases")
    op.drop_table("open311_requests")
    op.drop_table("open311_apps")
    op.drop_table("hotline_tickets")
    op.drop_constraint("ck_events_channel", "events", type_="check")
    op.drop_column("events", "camera_id")
    op.drop_column("events", "channel")
