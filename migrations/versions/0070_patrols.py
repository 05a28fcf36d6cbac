# mypy: disable-error-code="attr-defined"
# (op.create_geospatial_table and the like are registered on alembic's op by GeoAlchemy2 at run time.)
"""Patrols: workers' tracks by batch, their daily figures and the patrol norms

Revision ID: 0070
Revises: 0060
Create Date: 2026-12-07 04:12:28

A track is one row per batch the phone sent (a LineStringM, measure = epoch seconds, with arrays
of accuracy and mock flags), keyed by (patrol, batch key) so a resent batch is found by its key.
Reports a worker made during a patrol are linked by time: events gain an index on
(reporter_id, received_at) and no column, so the report path writes nothing more.
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0070"
down_revision = "0068"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "patrol_norms",
        sa.Column("grid_kind", sa.String(length=20), nullable=False),
        sa.Column("min_hours", sa.Double(), nullable=False),
        sa.Column("min_coverage", sa.Double(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "grid_kind IN ('comprehensive', 'dedicated')", name=op.f("ck_patrol_norms_grid_kind")
        ),
        sa.CheckConstraint(
            "min_coverage >= 0 AND min_coverage <= 1", name=op.f("ck_patrol_norms_min_coverage")
        ),
        sa.CheckConstraint("min_hours >= 0 AND min_hours <= 24", name=op.f("ck_patrol_norms_min_hours")),
        sa.PrimaryKeyConstraint("grid_kind", name=op.f("pk_patrol_norms")),
    )
    op.create_table(
        "patrol_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("points", sa.Integer(), nullable=False),
        sa.Column("flagged_speed", sa.Integer(), nullable=False),
        sa.Column("flagged_accuracy", sa.Integer(), nullable=False),
        sa.Column("flagged_mock", sa.Integer(), nullable=False),
        sa.Column("patrol_seconds", sa.Double(), nullable=False),
        sa.Column("inside_seconds", sa.Double(), nullable=False),
        sa.Column("longest_outside_seconds", sa.Double(), nullable=False),
        sa.Column("long_stay_outside", sa.Boolean(), nullable=False),
        sa.Column("distance_m", sa.Double(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_patrol_days_worker_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("day", "worker_id", name=op.f("pk_patrol_days")),
    )
    op.create_table(
        "patrol_grid_days",
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("grid_kind", sa.String(length=20), nullable=True),
        sa.Column("inside_seconds", sa.Double(), nullable=False),
        sa.Column("coverage", sa.Double(), nullable=False),
        sa.Column("rental_buildings_visited", sa.Integer(), nullable=False),
        sa.Column("emergency_units_visited", sa.Integer(), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_patrol_grid_days_worker_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("day", "worker_id", "grid_code", name=op.f("pk_patrol_grid_days")),
    )
    op.create_index(
        "ix_patrol_grid_days_district_day", "patrol_grid_days", ["district_code", "day"], unique=False
    )
    op.create_index("ix_patrol_grid_days_grid_day", "patrol_grid_days", ["grid_code", "day"], unique=False)
    op.create_index("ix_patrol_grid_days_town_day", "patrol_grid_days", ["town_code", "day"], unique=False)
    op.create_index(
        "ix_patrol_grid_days_village_day", "patrol_grid_days", ["village_code", "day"], unique=False
    )
    op.create_table(
        "patrols",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("worker_id", sa.BigInteger(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("closed_by", sa.String(length=5), nullable=True),
        sa.Column("last_point_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "last_seen_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("points", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("closed_by IN ('phone', 'idle')", name=op.f("ck_patrols_closed_by")),
        sa.CheckConstraint("(ended_at IS NULL) = (closed_by IS NULL)", name=op.f("ck_patrols_ended")),
        sa.ForeignKeyConstraint(
            ["worker_id"], ["users.id"], name=op.f("fk_patrols_worker_id_users"), ondelete="RESTRICT"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_patrols")),
    )
    op.create_index(
        "ix_patrols_open_seen",
        "patrols",
        ["last_seen_at"],
        unique=False,
        postgresql_where=sa.text("ended_at IS NULL"),
    )
    op.create_index("ix_patrols_worker_started", "patrols", ["worker_id", "started_at"], unique=False)
    op.create_geospatial_table(
        "patrol_batches",
        sa.Column("patrol_id", sa.UUID(), nullable=False),
        sa.Column("batch_key", sa.String(length=64), nullable=False),
        sa.Column("content_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("crs", sa.String(length=10), nullable=False),
        sa.Column("first_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("n_points", sa.SmallInteger(), nullable=False),
        sa.Column(
            "track",
            Geometry(
                geometry_type="LINESTRINGM",
                srid=4326,
                dimension=3,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("accuracy_m", postgresql.ARRAY(sa.REAL()), nullable=False),
        sa.Column("mock", postgresql.ARRAY(sa.Boolean()), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("n_points > 0", name=op.f("ck_patrol_batches_n_points")),
        sa.ForeignKeyConstraint(
            ["patrol_id"],
            ["patrols.id"],
            name=op.f("fk_patrol_batches_patrol_id_patrols"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("patrol_id", "batch_key", name=op.f("pk_patrol_batches")),
    )
    op.create_index("ix_patrol_batches_first_at", "patrol_batches", ["first_at"], unique=False)
    op.create_index("ix_events_reporter_received", "events", ["reporter_id", "received_at"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_events_reporter_received", table_name="events")
    op.drop_index("ix_patrol_batches_first_at", table_name="patrol_batches")
    op.drop_geospatial_table("patrol_batches")
    op.drop_index("ix_patrols_worker_started", table_name="patrols")
    op.drop_index("ix_patrols_open_seen", table_name="patrols", postgresql_where=sa.text("ended_at IS NULL"))
    op.drop_table("patrols")
    op.drop_index("ix_patrol_grid_days_village_day", table_name="patrol_grid_days")
    op.drop_index("ix_patrol_grid_days_town_day", table_name="patrol_grid_days")
    op.drop_index("ix_patrol_grid_days_grid_day", table_name="patrol_grid_days")
    op.drop_index("ix_patrol_grid_days_district_day", table_name="patrol_grid_days")
    op.drop_table("patrol_grid_days")
    op.drop_table("patrol_days")
    op.drop_table("patrol_norms")
