"""Closure rollups: per grid, category and local due day, kept by a trigger on events

Revision ID: 0090
Revises: 0060
Create Date: 2026-12-07 04:30:00

closure_rollups holds the counts the closure figures need (due, closed, closed on time,
reworked) and closure_rollup_hours a histogram of hours to close in fixed log-spaced buckets,
both keyed by the event's district, town, village, grid ('' for none), category and the local
day (Asia/Shanghai) of its due time. An AFTER trigger on events takes each changed row's old
contribution out and puts its new one in, in the transaction that changed it; the rows it
touches are upserted in key order, so two writers never wait on each other in a cycle. The
existing events are counted in once, here.

The trigger reads only columns every later version of events keeps (codes, category, status and
the lifecycle times), so columns added to events later change nothing here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0090"
down_revision = "0080"
branch_labels = None
depends_on = None

KEY = ("district_code", "town_code", "village_code", "grid_code", "category_code", "due_day")
CODE_LENGTHS = {"district_code": 6, "town_code": 9, "village_code": 12, "grid_code": 15}

# The bucket of a duration in hours: 0 below a minute, then eight buckets per doubling of the
# minutes (bucket b >= 1 holds [2^((b-1)/8), 2^(b/8)) minutes), the last from 2^24 minutes (32
# years) up. backend.stats.rollups reads the buckets back with the same constants.
BUCKET_SQL = """
CREATE FUNCTION closure_hours_bucket(hours double precision) RETURNS smallint
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT CASE WHEN hours IS NULL THEN NULL
        WHEN hours < 1.0 / 60 THEN 0
        ELSE least(193, 1 + floor(ln(hours * 60) / ln(2) * 8))::smallint END
$$
"""

# One event's contribution to the rollups, times sign (+1 or -1): no row for an event without
# a due time or rejected (a null row, as OLD is on insert, has neither).
DELTA_SQL = """
CREATE FUNCTION closure_rollup_delta(e events, sign integer)
RETURNS TABLE (district_code text, town_code text, village_code text, grid_code text,
    category_code text, due_day date, due integer, closed integer, closed_on_time integer,
    reworked integer, bucket smallint)
LANGUAGE sql STABLE AS $$
    SELECT coalesce(e.district_code, ''), coalesce(e.town_code, ''),
        coalesce(e.village_code, ''), coalesce(e.grid_code, ''), e.category_code,
        (e.due_at AT TIME ZONE 'Asia/Shanghai')::date,
        sign,
        sign * (e.closed_at IS NOT NULL)::integer,
        sign * coalesce(e.closed_at <= e.due_at, false)::integer,
        sign * (e.closed_at IS NOT NULL AND e.rework_count >= 1)::integer,
        closure_hours_bucket(date_part('epoch', e.closed_at - e.accepted_at) / 3600)
    WHERE e.due_at IS NOT NULL AND e.status <> 'rejected'
$$
"""

TRIGGER_FUNCTION_SQL = """
CREATE FUNCTION closure_rollups_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO closure_rollups AS r (district_code, town_code, village_code, grid_code,
        category_code, due_day, due, closed, closed_on_time, reworked)
    SELECT d.district_code, d.town_code, d.village_code, d.grid_code, d.category_code,
        d.due_day, sum(d.due), sum(d.closed), sum(d.closed_on_time), sum(d.reworked)
    FROM (SELECT * FROM closure_rollup_delta(OLD, -1) WHERE TG_OP <> 'INSERT'
          UNION ALL
          SELECT * FROM closure_rollup_delta(NEW, 1) WHERE TG_OP <> 'DELETE') d
    GROUP BY 1, 2, 3, 4, 5, 6
    HAVING sum(d.due) <> 0 OR sum(d.closed) <> 0 OR sum(d.closed_on_time) <> 0
        OR sum(d.reworked) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6
    ON CONFLICT (district_code, town_code, village_code, grid_code, category_code, due_day)
    DO UPDATE SET due = r.due + excluded.due, closed = r.closed + excluded.closed,
        closed_on_time = r.closed_on_time + excluded.closed_on_time,
        reworked = r.reworked + excluded.reworked;
    INSERT INTO closure_rollup_hours AS r (district_code, town_code, village_code, grid_code,
        category_code, due_day, bucket, closed)
    SELECT d.district_code, d.town_code, d.village_code, d.grid_code, d.category_code,
        d.due_day, d.bucket, sum(d.closed)
    FROM (SELECT * FROM closure_rollup_delta(OLD, -1) WHERE TG_OP <> 'INSERT'
          UNION ALL
          SELECT * FROM closure_rollup_delta(NEW, 1) WHERE TG_OP <> 'DELETE') d
    WHERE d.bucket IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7
    HAVING sum(d.closed) <> 0
    ORDER BY 1, 2, 3, 4, 5, 6, 7
    ON CONFLICT (district_code, town_code, village_code, grid_code, category_code, due_day,
        bucket)
    DO UPDATE SET closed = r.closed + excluded.closed;
    RETURN NULL;
END
$$
"""

# Only the columns the rollups read; an update of anything else (a dispatch, a note, the
# version) does not run the function.
WATCHED = (
    "district_code",
    "town_code",
    "village_code",
    "grid_code",
    "category_code",
    "status",
    "due_at",
    "accepted_at",
    "closed_at",
    "rework_count",
)
TRIGGERS_SQL = [
    "CREATE TRIGGER closure_rollups_insert_delete AFTER INSERT OR DELETE ON events"
    " FOR EACH ROW EXECUTE FUNCTION closure_rollups_follow()",
    f"CREATE TRIGGER closure_rollups_update AFTER UPDATE OF {', '.join(WATCHED)} ON events"
    f" FOR EACH ROW WHEN (({', '.join(f'OLD.{c}' for c in WATCHED)})"
    f" IS DISTINCT FROM ({', '.join(f'NEW.{c}' for c in WATCHED)}))"
    " EXECUTE FUNCTION closure_rollups_follow()",
]

BACKFILL_SQL = [
    """INSERT INTO closure_rollups (district_code, town_code, village_code, grid_code,
        category_code, due_day, due, closed, closed_on_time, reworked)
    SELECT d.district_code, d.town_code, d.village_code, d.grid_code, d.category_code,
        d.due_day, sum(d.due), sum(d.closed), sum(d.closed_on_time), sum(d.reworked)
    FROM events e, closure_rollup_delta(e, 1) d
    GROUP BY 1, 2, 3, 4, 5, 6""",
    """INSERT INTO closure_rollup_hours (district_code, town_code, village_code, grid_code,
        category_code, due_day, bucket, closed)
    SELECT d.district_code, d.town_code, d.village_code, d.grid_code, d.category_code,
        d.due_day, d.bucket, sum(d.closed)
    FROM events e, closure_rollup_delta(e, 1) d
    WHERE d.bucket IS NOT NULL
    GROUP BY 1, 2, 3, 4, 5, 6, 7""",
]


def _key_columns() -> list[sa.Column]:
    return [
        *(sa.Column(name, sa.String(length), nullable=False) for name, length in CODE_LENGTHS.items()),
        sa.Column("category_code", sa.String(40), nullable=False),
        sa.Column("due_day", sa.Date(), nullable=False),
    ]


def upgrade() -> None:
    op.create_table(
        "closure_rollups",
        *_key_columns(),
        sa.Column("due", sa.Integer(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.Column("closed_on_time", sa.Integer(), nullable=False),
        sa.Column("reworked", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, name="pk_closure_rollups"),
    )
    op.create_table(
        "closure_rollup_hours",
        *_key_columns(),
        sa.Column("bucket", sa.SmallInteger(), nullable=False),
        sa.Column("closed", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(*KEY, "bucket", name="pk_closure_rollup_hours"),
    )
    op.execute(BUCKET_SQL)
    op.execute(DELTA_SQL)
    op.execute(TRIGGER_FUNCTION_SQL)
    for statement in BACKFILL_SQL:
        op.execute(statement)
    for statement in TRIGGERS_SQL:
        op.execute(statement)


def downgrade() -> None:
    op.execute("DROP TRIGGER closure_rollups_update ON events")
    op.execute("DROP TRIGGER closure_rollups_insert_delete ON events")
    op.execute("DROP FUNCTION closure_rollups_follow()")
    op.execute("DROP FUNCTION closure_rollup_delta(events, integer)")
    op.execute("DROP FUNCTION closure_hours_bucket(double precision)")
    op.drop_table("closure_rollup_hours")
    op.drop_table("closure_rollups")
