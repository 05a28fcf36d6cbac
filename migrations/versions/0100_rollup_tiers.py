"""Closure rollup tiers: per grid and local month, per grid and local year, kept by a trigger

Revision ID: 0100
Revises: 0120
Create Date: 2026-12-07 12:20:00

At a city's density the daily rollups of 0090 hold about one event per row, so a district's ten
years read as many rows as there are events. closure_rollup_months and closure_rollup_years hold
the same counts per district, town, village and grid ('' for none) and local month or year of
the due time (Asia/Shanghai; the period is its first day), without the category, and the
histogram of hours to close in one bytea per row: its non-empty buckets, five bytes each (the
bucket, then its count as a big-endian int4), in no particular order. A district's ten years by
grid then read about twelve rows per grid (whole years, and whole months at the edges).

The primary key leads with the district and the period, so a scope's range of periods is one
index range; the rows are written in key order and the tables leave a fifth of each page free,
so that the trigger's updates stay on their row's page (HOT) and a district's periods stay
together on disk. A trigger on events, beside 0090's (which it leaves as it is), takes each changed
row's old contribution out and puts its new one in, months then years, each in key order; it
fires only for events with a due time, so a new report (not accepted yet) costs nothing. The
existing rollups are summed into the tiers once, here.
"""

import sqlalchemy as sa
from alembic import op

revision = "0100"
down_revision = "0120"
branch_labels = None
depends_on = None

TIERS = {"closure_rollup_months": "month", "closure_rollup_years": "year"}
CODES = ("town_code", "village_code", "grid_code")
CODE_LENGTHS = {"district_code": 6, "town_code": 9, "village_code": 12, "grid_code": 15}

# One histogram entry: the bucket (0..193) in a byte, then the count as a big-endian int4.
ENTRY_SQL = """
CREATE FUNCTION closure_hours_entry(bucket integer, n integer) RETURNS bytea
LANGUAGE sql IMMUTABLE PARALLEL SAFE AS $$
    SELECT set_byte('\\x00'::bytea, 0, bucket) || int4send(n)
$$
"""

# The sum of two histograms (either may list a bucket more than once, or null); buckets whose
# count comes to zero are left out (a itself is returned as it is when b is empty).
MERGE_SQL = """
CREATE FUNCTION closure_hours_merge(a bytea, b bytea) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS $$
DECLARE
    counts integer[] := '{}';
    touched integer[] := '{}';
    part bytea;
    bucket integer;
    i integer;
    out bytea := ''::bytea;
BEGIN
    -- Most changes (an acceptance, a move) bring no hours: leave the row's histogram as it is.
    IF b IS NULL OR length(b) = 0 THEN
        RETURN coalesce(a, ''::bytea);
    END IF;
    FOREACH part IN ARRAY ARRAY[coalesce(a, ''::bytea), coalesce(b, ''::bytea)] LOOP
        FOR i IN 0 .. length(part) / 5 - 1 LOOP
            bucket := get_byte(part, 5 * i);
            IF counts[bucket] IS NULL THEN
                counts[bucket] := 0;
                touched := touched || bucket;
            END IF;
            counts[bucket] := counts[bucket]
                + ((get_byte(part, 5 * i + 1) << 24) | (get_byte(part, 5 * i + 2) << 16)
                   | (get_byte(part, 5 * i + 3) << 8) | get_byte(part, 5 * i + 4));
        END LOOP;
    END LOOP;
    FOREACH bucket IN ARRAY touched LOOP
        IF counts[bucket] <> 0 THEN
            out := out || closure_hours_entry(bucket, counts[bucket]);
        END IF;
    END LOOP;
    RETURN out;
END
$$
"""


def _follow_sql(table: str, period: str) -> str:
    """Upsert one tier's rows of the changed event's old (-1) and new (+1) contributions."""
    key = f"district_code, {period}, town_code, village_code, grid_code"
    return f"""
    INSERT INTO {table} AS r ({key}, due, closed, closed_on_time, reworked, hours)
    SELECT * FROM (
        SELECT d.district_code, date_trunc('{period}', d.due_day)::date, d.town_code,
            d.village_code, d.grid_code, sum(d.due) AS due, sum(d.closed) AS closed,
            sum(d.closed_on_time) AS closed_on_time, sum(d.reworked) AS reworked,
            closure_hours_merge(NULL, string_agg(closure_hours_entry(d.bucket, d.closed),
                ''::bytea) FILTER (WHERE d.bucket IS NOT NULL)) AS hours
        FROM (SELECT * FROM closure_rollup_delta(OLD, -1) WHERE TG_OP <> 'INSERT'
              UNION ALL
              SELECT * FROM closure_rollup_delta(NEW, 1) WHERE TG_OP <> 'DELETE') d
        GROUP BY 1, 2, 3, 4, 5
    ) c
    WHERE c.due <> 0 OR c.closed <> 0 OR c.closed_on_time <> 0 OR c.reworked <> 0
        OR c.hours <> ''::bytea
    ORDER BY 1, 2, 3, 4, 5
    ON CONFLICT ({key})
    DO UPDATE SET due = r.due + excluded.due, closed = r.closed + excluded.closed,
        closed_on_time = r.closed_on_time + excluded.closed_on_time,
        reworked = r.reworked + excluded.reworked,
        hours = closure_hours_merge(r.hours, excluded.hours);"""


TRIGGER_FUNCTION_SQL = f"""
CREATE FUNCTION closure_rollup_tiers_follow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    {"".join(_follow_sql(table, period) for table, period in TIERS.items())}
    RETURN NULL;
END
$$
"""

# The columns 0090's update trigger watches.
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
TRIGGERS = {
    "closure_tiers_insert": "AFTER INSERT ON events FOR EACH ROW WHEN (NEW.due_at IS NOT NULL)",
    "closure_tiers_delete": "AFTER DELETE ON events FOR EACH ROW WHEN (OLD.due_at IS NOT NULL)",
    "closure_tiers_update": f"AFTER UPDATE OF {', '.join(WATCHED)} ON events FOR EACH ROW"
    f" WHEN ((OLD.due_at IS NOT NULL OR NEW.due_at IS NOT NULL)"
    f" AND ({', '.join(f'OLD.{c}' for c in WATCHED)})"
    f" IS DISTINCT FROM ({', '.join(f'NEW.{c}' for c in WATCHED)}))",
}


def backfill_sql(table: str, period: str) -> str:
    """Sum the daily rollups into one tier (which must be empty), in key order so that a
    district's rows of a period lie together on disk."""
    key = f"district_code, {period}, town_code, village_code, grid_code"
    of_day = (
        f"district_code, date_trunc('{period}', due_day)::date AS {period},"
        " town_code, village_code, grid_code"
    )
    return f"""
    INSERT INTO {table} ({key}, due, closed, closed_on_time, reworked, hours)
    SELECT {key}, c.due, c.closed, c.closed_on_time, c.reworked, coalesce(h.hours, ''::bytea)
    FROM (SELECT {of_day}, sum(due) AS due, sum(closed) AS closed,
            sum(closed_on_time) AS closed_on_time, sum(reworked) AS reworked
          FROM closure_rollups GROUP BY 1, 2, 3, 4, 5) c
    LEFT JOIN (
        SELECT {key}, string_agg(closure_hours_entry(bucket, closed), ''::bytea) AS hours
        FROM (SELECT {of_day}, bucket, sum(closed)::integer AS closed FROM closure_rollup_hours
              GROUP BY 1, 2, 3, 4, 5, 6 HAVING sum(closed) <> 0) b
        GROUP BY 1, 2, 3, 4, 5
    ) h USING (district_code, {period}, town_code, village_code, grid_code)
    WHERE c.due <> 0 OR c.closed <> 0 OR c.closed_on_time <> 0 OR c.reworked <> 0
        OR h.hours IS NOT NULL
    ORDER BY {key}"""  # noqa: S608 - fixed names


def upgrade() -> None:
    for table, period in TIERS.items():
        op.create_table(
            table,
            sa.Column("district_code", sa.String(6), nullable=False),
            sa.Column(period, sa.Date(), nullable=False),
            *(sa.Column(code, sa.String(CODE_LENGTHS[code]), nullable=False) for code in CODES),
            sa.Column("due", sa.Integer(), nullable=False),
            sa.Column("closed", sa.Integer(), nullable=False),
            sa.Column("closed_on_time", sa.Integer(), nullable=False),
            sa.Column("reworked", sa.Integer(), nullable=False),
            sa.Column("hours", sa.LargeBinary(), nullable=False),
            sa.PrimaryKeyConstraint("district_code", period, *CODES, name=f"pk_{table}"),
            postgresql_with={"fillfactor": 80},
        )
    op.execute(ENTRY_SQL)
    op.execute(MERGE_SQL)
    op.execute(TRIGGER_FUNCTION_SQL)
    for table, period in TIERS.items():
        op.execute(backfill_sql(table, period))
    for name, when in TRIGGERS.items():
        op.execute(f"CREATE TRIGGER {name} {when} EXECUTE FUNCTION closure_rollup_tiers_follow()")


def downgrade() -> None:
    for name in TRIGGERS:
        op.execute(f"DROP TRIGGER {name} ON events")
    op.execute("DROP FUNCTION closure_rollup_tiers_follow()")
    op.execute("DROP FUNCTION closure_hours_merge(bytea, bytea)")
    op.execute("DROP FUNCTION closure_hours_entry(integer, integer)")
    for table in TIERS:
        op.drop_table(table)
