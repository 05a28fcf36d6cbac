# mypy: disable-error-code="attr-defined"
# (op.create_geospatial_table and the like are registered on alembic's op by GeoAlchemy2 at run time.)
"""Areas, categories, events and the append-only event trail

Revision ID: 0001
Revises:
Create Date: 2026-11-25 02:39:44.062852
"""

import sqlalchemy as sa
from alembic import op
from geoalchemy2 import Geometry
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


CATEGORIES = [
    # code, 中文名, English name, SLA hours, sensitive
    ("dispute", "矛盾纠纷", "Disputes", 72, True),
    ("public_security", "治安隐患", "Public security hazards", 24, False),
    ("safety", "安全隐患", "Safety hazards (fire, buildings, gas)", 24, False),
    ("rental", "出租屋与流动人口", "Rental housing and migrant population", 72, True),
    ("environment", "环境卫生", "Environment and sanitation", 48, False),
    ("livelihood", "民生服务", "Livelihood services", 120, False),
    ("emergency", "突发事件", "Emergencies", 2, False),
    ("other", "其他", "Other", 72, False),
]

APPEND_ONLY = """
CREATE FUNCTION event_actions_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'event_actions is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END $$;
CREATE TRIGGER event_actions_append_only BEFORE UPDATE OR DELETE ON event_actions
    FOR EACH ROW EXECUTE FUNCTION event_actions_append_only();
CREATE TRIGGER event_actions_no_truncate BEFORE TRUNCATE ON event_actions
    FOR EACH STATEMENT EXECUTE FUNCTION event_actions_append_only();
"""


def upgrade() -> None:
    op.execute("CREATE EXTENSION IF NOT EXISTS postgis")
    op.create_geospatial_table(
        "areas",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=15), nullable=False),
        sa.Column("level", sa.String(length=10), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("parent_code", sa.String(length=15), nullable=True),
        sa.Column("kind", sa.String(length=20), nullable=True),
        sa.Column(
            "geom",
            Geometry(
                geometry_type="MULTIPOLYGON",
                srid=4326,
                dimension=2,
                spatial_index=False,
                from_text="ST_GeomFromEWKT",
                name="geometry",
                nullable=False,
            ),
            nullable=False,
        ),
        sa.Column("valid_from", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("valid_to", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(level = 'district') = (parent_code IS NULL)", name=op.f("ck_areas_parent_unless_district")
        ),
        sa.CheckConstraint(
            "code ~ '^[0-9]+$' AND length(code) = CASE level WHEN 'district' THEN 6 "
            "WHEN 'town' THEN 9 WHEN 'village' THEN 12 ELSE 15 END",
            name=op.f("ck_areas_code_matches_level"),
        ),
        sa.CheckConstraint("level IN ('district', 'town', 'village', 'grid')", name=op.f("ck_areas_level")),
        sa.CheckConstraint("valid_to IS NULL OR valid_to >= valid_from", name=op.f("ck_areas_valid_range")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_areas")),
    )
    op.create_geospatial_index(
        "ix_areas_current_grid_geom",
        "areas",
        ["geom"],
        unique=False,
        postgresql_using="gist",
        postgresql_where=sa.text("level = 'grid' AND valid_to IS NULL"),
        postgresql_ops={},
    )
    op.create_geospatial_index(
        "ix_areas_geom", "areas", ["geom"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index(
        "ix_areas_parent_code",
        "areas",
        ["parent_code"],
        unique=False,
        postgresql_where=sa.text("valid_to IS NULL"),
    )
    op.create_index(
        "uq_areas_current_code", "areas", ["code"], unique=True, postgresql_where=sa.text("valid_to IS NULL")
    )
    op.create_table(
        "categories",
        sa.Column("code", sa.String(length=40), nullable=False),
        sa.Column("name_zh", sa.String(length=100), nullable=False),
        sa.Column("name_en", sa.String(length=100), nullable=False),
        sa.Column("parent_code", sa.String(length=40), nullable=True),
        sa.Column("sla_hours", sa.Integer(), nullable=False),
        sa.Column("sensitive", sa.Boolean(), server_default="false", nullable=False),
        sa.CheckConstraint("sla_hours > 0", name=op.f("ck_categories_sla_positive")),
        sa.ForeignKeyConstraint(
            ["parent_code"], ["categories.code"], name=op.f("fk_categories_parent_code_categories")
        ),
        sa.PrimaryKeyConstraint("code", name=op.f("pk_categories")),
    )
    op.create_geospatial_table(
        "events",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("category_code", sa.String(length=40), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
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
        sa.Column("accuracy_m", sa.Double(), nullable=True),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("reporter_id", sa.BigInteger(), nullable=True),
        sa.Column("grid_code", sa.String(length=15), nullable=True),
        sa.Column("village_code", sa.String(length=12), nullable=True),
        sa.Column("town_code", sa.String(length=9), nullable=True),
        sa.Column("district_code", sa.String(length=6), nullable=True),
        sa.Column("assignment", sa.String(length=10), nullable=False),
        sa.Column("boundary_id", sa.BigInteger(), nullable=True),
        sa.Column("assignment_distance_m", sa.Double(), nullable=True),
        sa.Column("responsible_code", sa.String(length=15), nullable=True),
        sa.Column("assignee_id", sa.BigInteger(), nullable=True),
        sa.Column("status", sa.String(length=12), server_default="reported", nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rework_count", sa.Integer(), server_default="0", nullable=False),
        sa.Column("version", sa.Integer(), server_default="1", nullable=False),
        sa.Column("contacts", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("content_hash", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "assignment IN ('contains', 'nearest', 'manual', 'unassigned')", name=op.f("ck_events_assignment")
        ),
        sa.CheckConstraint("crs IN ('wgs84', 'gcj02', 'bd09', 'cgcs2000')", name=op.f("ck_events_crs")),
        sa.CheckConstraint(
            "status IN ('reported', 'accepted', 'dispatched', 'in_progress', 'resolved', 'closed', "
            "'rejected')",
            name=op.f("ck_events_status"),
        ),
        sa.ForeignKeyConstraint(["boundary_id"], ["areas.id"], name=op.f("fk_events_boundary_id_areas")),
        sa.ForeignKeyConstraint(
            ["category_code"], ["categories.code"], name=op.f("fk_events_category_code_categories")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_events")),
    )
    op.create_index(
        "ix_events_district_received", "events", ["district_code", "received_at", "id"], unique=False
    )
    op.create_index("ix_events_grid_received", "events", ["grid_code", "received_at", "id"], unique=False)
    op.create_geospatial_index(
        "ix_events_location", "events", ["location"], unique=False, postgresql_using="gist", postgresql_ops={}
    )
    op.create_index("ix_events_received", "events", ["received_at", "id"], unique=False)
    op.create_index("ix_events_town_received", "events", ["town_code", "received_at", "id"], unique=False)
    op.create_index(
        "ix_events_village_received", "events", ["village_code", "received_at", "id"], unique=False
    )
    op.create_table(
        "event_actions",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("event_id", sa.UUID(), nullable=False),
        sa.Column("action", sa.String(length=20), nullable=False),
        sa.Column("from_status", sa.String(length=12), nullable=True),
        sa.Column("to_status", sa.String(length=12), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("data", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["event_id"], ["events.id"], name=op.f("fk_event_actions_event_id_events")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_actions")),
    )
    op.create_index(op.f("ix_event_actions_event_id"), "event_actions", ["event_id"], unique=False)
    op.execute(APPEND_ONLY)
    categories = sa.table(
        "categories",
        sa.column("code"),
        sa.column("name_zh"),
        sa.column("name_en"),
        sa.column("sla_hours"),
        sa.column("sensitive"),
    )
    op.bulk_insert(
        categories,
        [
            dict(zip(("code", "name_zh", "name_en", "sla_hours", "sensitive"), row, strict=False))
            for row in CATEGORIES
        ],
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER event_actions_no_truncate ON event_actions")
    op.execute("DROP TRIGGER event_actions_append_only ON event_actions")
    op.execute("DROP FUNCTION event_actions_append_only()")
    op.drop_index(op.f("ix_event_actions_event_id"), table_name="event_actions")
    op.drop_table("event_actions")
    op.drop_index("ix_events_village_received", table_name="events")
    op.drop_index("ix_events_town_received", table_name="events")
    op.drop_index("ix_events_received", table_name="events")
    op.drop_geospatial_index(
        "ix_events_location", table_name="events", postgresql_using="gist", column_name="location"
    )
    op.drop_index("ix_events_grid_received", table_name="events")
    op.drop_index("ix_events_district_received", table_name="events")
    op.drop_geospatial_table("events")
    op.drop_table("categories")
    op.drop_index("uq_areas_current_code", table_name="areas", postgresql_where=sa.text("valid_to IS NULL"))
    op.drop_index("ix_areas_parent_code", table_name="areas", postgresql_where=sa.text("valid_to IS NULL"))
    op.drop_geospatial_index("ix_areas_geom", table_name="areas", postgresql_using="gist", column_name="geom")
    op.drop_geospatial_index(
        "ix_areas_current_grid_geom",
        table_name="areas",
        postgresql_using="gist",
        postgresql_where=sa.text("level = 'grid' AND valid_to IS NULL"),
        column_name="geom",
    )
    op.drop_geospatial_table("areas")
