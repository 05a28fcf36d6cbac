# mypy: disable-error-code="attr-defined"
# (op.create_geospatial_table and the like are registered on alembic's op by GeoAlchemy2 at run time.)
"""Party branches and groups, buildings, emergency units, check-ins, alerts and dispatches

Revision ID: 0020
Revises: 0005
Create Date: 2026-11-25 03:12:52
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geography, Geometry

revision = "0020"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_geospatial_table(
        "alerts",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("crs", sa.String(length=10), nullable=False),
        sa.Column("source_lon", sa.Double(), nullable=False),
        sa.Column("source_lat", sa.Double(), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("town_code", sa.String(length=9), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("requested_radius_m", sa.Double(), nullable=False),
        sa.Column("radius_m", sa.Double(), nullable=False),
        sa.Column("requested", sa.SmallInteger(), nullable=False),
        sa.Column("found", sa.SmallInteger(), nullable=False),
        sa.Column("widened", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("statement_timestamp()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "kind IN ('fire', 'violence', 'medical', 'traffic', 'disaster', 'public_security', 'other')",
            name=op.f("ck_alerts_kind"),
        ),
        sa.CheckConstraint(
            "found <= requested AND radius_m >= requested_radius_m", name=op.f("ck_alerts_found")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_alerts")),
    )
    op.create_index("ix_alerts_created_at", "alerts", ["created_at"], unique=False)
    op.create_index("ix_alerts_district_code", "alerts", ["district_code"], unique=False)
    op.create_index("ix_alerts_grid_code", "alerts", ["grid_code"], unique=False)
    op.create_index("ix_alerts_town_code", "alerts", ["town_code"], unique=False)
    op.create_index("ix_alerts_village_code", "alerts", ["village_code"], unique=False)
    op.create_geospatial_table(
        "emergency_units",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=10), nullable=False),
        sa.Column("members", sa.SmallInteger(), server_default="3", nullable=False),
        sa.Column(
            "location",
            Geography(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeogFromText",
                name="geography",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("assignment", sa.String(length=10), nullable=False),
        sa.Column("leader_name", sa.String(length=50), nullable=True),
        sa.Column("leader_phone", sa.String(length=40), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.CheckConstraint(
            "assignment IN ('contains', 'nearest')", name=op.f("ck_emergency_units_assignment")
        ),
        sa.CheckConstraint(
            "kind IN ('shop', 'hotel', 'market', 'school', 'other')", name=op.f("ck_emergency_units_kind")
        ),
        sa.CheckConstraint("members BETWEEN 1 AND 50", name=op.f("ck_emergency_units_members")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_emergency_units")),
    )
    op.create_geospatial_index(
        "ix_emergency_units_active_location",
        "emergency_units",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("active"),
        postgresql_ops={},
    )
    op.create_index("ix_emergency_units_district_code", "emergency_units", ["district_code"], unique=False)
    op.create_index("ix_emergency_units_grid_code", "emergency_units", ["grid_code"], unique=False)
    op.create_index("ix_emergency_units_town_code", "emergency_units", ["town_code"], unique=False)
    op.create_index("ix_emergency_units_village_code", "emergency_units", ["village_code"], unique=False)
    op.create_table(
        "party_branches",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("secretary", sa.String(length=50), nullable=True),
        sa.Column("member_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.CheckConstraint("member_count >= 0", name=op.f("ck_party_branches_member_count")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_branches")),
        sa.UniqueConstraint("grid_code", name=op.f("uq_party_branches_grid_code")),
    )
    op.create_index("ix_party_branches_district_code", "party_branches", ["district_code"], unique=False)
    op.create_index("ix_party_branches_town_code", "party_branches", ["town_code"], unique=False)
    op.create_index("ix_party_branches_village_code", "party_branches", ["village_code"], unique=False)
    op.create_table(
        "alert_dispatches",
        sa.Column("alert_id", sa.BigInteger(), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("rank", sa.SmallInteger(), nullable=False),
        sa.Column("distance_m", sa.Double(), nullable=False),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("acknowledged_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by", sa.BigInteger(), nullable=True),
        sa.Column("arrived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("arrived_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "(acknowledged_at IS NULL OR acknowledged_at >= dispatched_at) AND (arrived_at IS NULL OR "
            "(acknowledged_at IS NOT NULL AND arrived_at >= acknowledged_at))",
            name=op.f("ck_alert_dispatches_times"),
        ),
        sa.ForeignKeyConstraint(
            ["alert_id"], ["alerts.id"], name=op.f("fk_alert_dispatches_alert_id_alerts"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["emergency_units.id"], name=op.f("fk_alert_dispatches_unit_id_emergency_units")
        ),
        sa.PrimaryKeyConstraint("alert_id", "unit_id", name=op.f("pk_alert_dispatches")),
        sa.UniqueConstraint("alert_id", "rank", name=op.f("uq_alert_dispatches_alert_id_rank")),
    )
    op.create_index("ix_alert_dispatches_unit_id", "alert_dispatches", ["unit_id"], unique=False)
    op.create_table(
        "check_ins",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("unit_id", sa.BigInteger(), nullable=False),
        sa.Column("local_day", sa.Date(), nullable=False),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("members_on_duty", sa.SmallInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["unit_id"],
            ["emergency_units.id"],
            name=op.f("fk_check_ins_unit_id_emergency_units"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_check_ins")),
        sa.UniqueConstraint("unit_id", "local_day", name=op.f("uq_check_ins_unit_id_local_day")),
    )
    op.create_index("ix_check_ins_local_day", "check_ins", ["local_day"], unique=False)
    op.create_table(
        "party_groups",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("branch_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=12), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("leader", sa.String(length=50), nullable=True),
        sa.Column("member_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("cooperative", sa.String(length=100), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.CheckConstraint("kind IN ('building', 'cooperative')", name=op.f("ck_party_groups_kind")),
        sa.CheckConstraint("member_count >= 0", name=op.f("ck_party_groups_member_count")),
        sa.ForeignKeyConstraint(
            ["branch_id"], ["party_branches.id"], name=op.f("fk_party_groups_branch_id_party_branches")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_party_groups")),
    )
    op.create_index(op.f("ix_party_groups_branch_id"), "party_groups", ["branch_id"], unique=False)
    op.create_index("ix_party_groups_district_code", "party_groups", ["district_code"], unique=False)
    op.create_index("ix_party_groups_grid_code", "party_groups", ["grid_code"], unique=False)
    op.create_index("ix_party_groups_town_code", "party_groups", ["town_code"], unique=False)
    op.create_index("ix_party_groups_village_code", "party_groups", ["village_code"], unique=False)
    op.create_geospatial_table(
        "buildings",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("address", sa.String(length=200), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column(
            "location",
            Geometry(
                geometry_type="POINT",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("assignment", sa.String(length=10), nullable=False),
        sa.Column("floors", sa.SmallInteger(), nullable=True),
        sa.Column("households", sa.Integer(), server_default="0", nullable=False),
        sa.Column("rental_units", sa.Integer(), server_default="0", nullable=False),
        sa.Column("safe_rental_units", sa.Integer(), server_default="0", nullable=False),
        sa.Column("access_control", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("head_name", sa.String(length=50), nullable=True),
        sa.Column("head_phone", sa.String(length=40), nullable=True),
        sa.Column("party_group_id", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("grid_code", sa.String(length=15), nullable=False),
        sa.Column("village_code", sa.String(length=12), nullable=False),
        sa.Column("town_code", sa.String(length=9), nullable=False),
        sa.Column("district_code", sa.String(length=6), nullable=False),
        sa.CheckConstraint(
            "GeometryType(geom) IN ('POINT', 'POLYGON', 'MULTIPOLYGON')", name=op.f("ck_buildings_geom_type")
        ),
        sa.CheckConstraint("assignment IN ('contains', 'nearest')", name=op.f("ck_buildings_assignment")),
        sa.CheckConstraint(
            "households >= 0 AND rental_units >= 0 AND safe_rental_units >= 0 "
            "AND safe_rental_units <= rental_units AND (floors IS NULL OR floors > 0)",
            name=op.f("ck_buildings_counts"),
        ),
        sa.ForeignKeyConstraint(
            ["party_group_id"],
            ["party_groups.id"],
            name=op.f("fk_buildings_party_group_id_party_groups"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buildings")),
    )
    op.create_index("ix_buildings_district_code", "buildings", ["district_code"], unique=False)
    op.create_index("ix_buildings_grid_code", "buildings", ["grid_code"], unique=False)
    op.create_geospatial_index(
        "ix_buildings_location",
        "buildings",
        ["location"],
        unique=False,
        postgresql_using="gist",
        postgresql_ops={},
    )
    op.create_index(op.f("ix_buildings_party_group_id"), "buildings", ["party_group_id"], unique=False)
    op.create_index("ix_buildings_town_code", "buildings", ["town_code"], unique=False)
    op.create_index("ix_buildings_village_code", "buildings", ["village_code"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_buildings_village_code", table_name="buildings")
    op.drop_index("ix_buildings_town_code", table_name="buildings")
    op.drop_index(op.f("ix_buildings_party_group_id"), table_name="buildings")
    op.drop_geospatial_index(
        "ix_buildings_location", table_name="buildings", postgresql_using="gist", column_name="location"
    )
    op.drop_index("ix_buildings_grid_code", table_name="buildings")
    op.drop_index("ix_buildings_district_code", table_name="buildings")
    op.drop_geospatial_table("buildings")
    op.drop_index("ix_party_groups_village_code", table_name="party_groups")
    op.drop_index("ix_party_groups_town_code", table_name="party_groups")
    op.drop_index("ix_party_groups_grid_code", table_name="party_groups")
    op.drop_index("ix_party_groups_district_code", table_name="party_groups")
    op.drop_index(op.f("ix_party_groups_branch_id"), table_name="party_groups")
    op.drop_table("party_groups")
    op.drop_index("ix_check_ins_local_day", table_name="check_ins")
    op.drop_table("check_ins")
    op.drop_index("ix_alert_dispatches_unit_id", table_name="alert_dispatches")
    op.drop_table("alert_dispatches")
    op.drop_index("ix_party_branches_village_code", table_name="party_branches")
    op.drop_index("ix_party_branches_town_code", table_name="party_branches")
    op.drop_index("ix_party_branches_district_code", table_name="party_branches")
    op.drop_table("party_branches")
    op.drop_index("ix_emergency_units_village_code", table_name="emergency_units")
    op.drop_index("ix_emergency_units_town_code", table_name="emergency_units")
    op.drop_index("ix_emergency_units_grid_code", table_name="emergency_units")
    op.drop_index("ix_emergency_units_district_code", table_name="emergency_units")
    op.drop_geospatial_index(
        "ix_emergency_units_active_location",
        table_name="emergency_units",
        postgresql_using="gist",
        postgresql_where=sa.text("active"),
        column_name="location",
    )
    op.drop_geospatial_table("emergency_units")
    op.drop_index("ix_alerts_village_code", table_name="alerts")
    op.drop_index("ix_alerts_town_code", table_name="alerts")
    op.drop_index("ix_alerts_grid_code", table_name="alerts")
    op.drop_index("ix_alerts_district_code", table_name="alerts")
    op.drop_index("ix_alerts_created_at", table_name="alerts")
    op.drop_geospatial_table("alerts")
