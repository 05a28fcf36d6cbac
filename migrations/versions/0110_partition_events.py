"""Events and their trail partitioned by month; the phone's UUID claimed in event_ids

Revision ID: 0110
Revises: 0090
Create Date: 2026-12-07 12:30:00

`events` becomes partitioned by range of `received_at` (the server's clock, never null, never
changed) and `event_actions` by range of `created_at`, one partition per local month
(Asia/Shanghai) and a default partition for anything outside the months made, so no insert ever
fails for want of a partition. A partitioned table's unique keys must include the partition key,
so the primary keys become (id, received_at) and (id, created_at); the phone's UUID stays unique
across partitions through `event_ids (id primary key, received_at)`: a BEFORE INSERT trigger on
events claims the id there first (ON CONFLICT DO NOTHING) and skips the event when the id was
already claimed, which is what `INSERT INTO events ... ON CONFLICT (id) DO NOTHING` did before;
another trigger refuses to change an event's received_at (which would move it).
Two reports of one id at once wait on the claim's key, as they waited on the events' key. The
foreign keys that pointed at events(id) point at event_ids(id).

Each table is rebuilt: its columns, checks, foreign keys and triggers are read from the catalog
as the earlier migrations left them and declared again on the new parent, and its indexes are
declared as the models have them, so the partitioned table is the old one but for its keys. The
rows are copied into the months' partitions, the indexes built after, then the old table is
dropped; both tables are locked throughout (measured in docs/scaling.md). The rollups' function
that takes an events row is declared again, since it names the old table's row type.

`create_month_partitions(parent, key, first_month, last_month)` makes the missing months'
partitions (and the default); housekeeping calls it for the months ahead (backend.events.
partitions). A month whose rows already sit in the default partition is left there: making it
would mean moving rows of the append-only trail, and the rollups would count them twice.
"""

import sqlalchemy as sa
from alembic import op

revision = "0110"
down_revision = "0090"
branch_labels = None
depends_on = None

ZONE = "Asia/Shanghai"

CREATE_PARTITIONS_SQL = f"""
CREATE FUNCTION create_month_partitions(parent text, key text, first_month date, last_month date)
RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    month date := date_trunc('month', first_month);
    made integer := 0;
    partition text;
    low timestamptz;
    high timestamptz;
    crowded boolean;
BEGIN
    -- Two servers' housekeeping at once: the second finds the first's partitions.
    PERFORM pg_advisory_xact_lock(hashtext('create_month_partitions:' || parent));
    IF to_regclass(parent || '_default') IS NULL THEN
        EXECUTE format('CREATE TABLE %I PARTITION OF %I DEFAULT', parent || '_default', parent);
    END IF;
    WHILE month <= last_month LOOP
        partition := parent || to_char(month, '_YYYY_MM');
        low := month::timestamp AT TIME ZONE '{ZONE}';
        high := (month + interval '1 month')::timestamp AT TIME ZONE '{ZONE}';
        IF to_regclass(partition) IS NULL THEN
            EXECUTE format('SELECT EXISTS (SELECT FROM %I WHERE %I >= $1 AND %I < $2)',
                parent || '_default', key, key) INTO crowded USING low, high;
            IF crowded THEN
                RAISE WARNING '% keeps the rows of % in %_default', parent, partition, parent;
            ELSE
                EXECUTE format('CREATE TABLE %I PARTITION OF %I FOR VALUES FROM (%L) TO (%L)',
                    partition, parent, low, high);
                made := made + 1;
            END IF;
        END IF;
        month := month + interval '1 month';
    END LOOP;
    RETURN made;
END
$$
"""

# Claim the id first; an id already claimed (a retry, or a different report under the same id)
# stores nothing, and the writer reads what is stored under it.
CLAIM_SQL = """
CREATE FUNCTION events_claim_id() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO event_ids (id, received_at) VALUES (NEW.id, NEW.received_at)
        ON CONFLICT (id) DO NOTHING;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END
$$
"""
CLAIM_TRIGGER_SQL = (
    "CREATE TRIGGER events_claim_id BEFORE INSERT ON events FOR EACH ROW EXECUTE FUNCTION events_claim_id()"
)

# An event's received_at names its partition and its claim: changing it would move the row to
# another partition, where the claim trigger, finding the id claimed, would drop it.
FIXED_SQL = """
CREATE FUNCTION events_received_at_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'events.received_at never changes: it names the event''s partition'
        USING ERRCODE = 'insufficient_privilege';
END
$$
"""
FIXED_TRIGGER_SQL = (
    "CREATE TRIGGER events_received_at_fixed BEFORE UPDATE OF received_at ON events FOR EACH ROW"
    " WHEN (OLD.received_at IS DISTINCT FROM NEW.received_at) EXECUTE FUNCTION events_received_at_fixed()"
)

# The foreign keys that name an event: (table, column, options).
EVENT_REFERENCES = [
    ("event_actions", "event_id", ""),
    ("attachments", "event_id", ""),
    ("hotline_tickets", "event_id", " DEFERRABLE INITIALLY DEFERRED"),
    ("open311_requests", "event_id", ""),
    ("mediation_cases", "event_id", ""),
]


# The tables' indexes as the models declare them (migrations 0001 to 0090 made them so). Written
# out rather than read back from the catalog: PostgreSQL's text of an `IN (...)` predicate,
# parsed again, is an equal but differently shaped expression.
_STATS_COLUMNS = [
    "village_code",
    "grid_code",
    "category_code",
    "status",
    "accepted_at",
    "closed_at",
    "rework_count",
    "assignee_id",
    "reporter_id",
    "id",
]
_STATISTICS_ACTIONS = (
    "action IN ('accept', 'reject', 'close', 'reopen', 'return')"
    " OR (action = 'report' AND to_status <> 'reported')"
)


def _create_indexes(table: str) -> None:
    if table == "events":
        op.create_index("ix_events_received", "events", ["received_at", "id"])
        for scope in ("grid", "village", "town", "district"):
            op.create_index(f"ix_events_{scope}_received", "events", [f"{scope}_code", "received_at", "id"])
        op.create_index("ix_events_location", "events", ["location"], postgresql_using="gist")
        for scope, other in (("district", "town"), ("town", "district")):
            op.create_index(
                f"ix_events_{scope}_due",
                "events",
                [f"{scope}_code", "due_at"],
                postgresql_where=sa.text("due_at IS NOT NULL"),
                postgresql_include=[f"{other}_code", *_STATS_COLUMNS],
            )
        op.create_index("ix_events_reporter_received", "events", ["reporter_id", "received_at"])
        op.create_index(
            "ix_events_open_due",
            "events",
            ["due_at", "id"],
            postgresql_where=sa.text("due_at IS NOT NULL AND status NOT IN ('closed', 'rejected')"),
        )
    else:
        op.create_index("ix_event_actions_event_id", "event_actions", ["event_id"])
        op.create_index(
            "ix_event_actions_event_closing",
            "event_actions",
            ["event_id", "created_at"],
            postgresql_include=["action"],
            postgresql_where=sa.text("action IN ('reject', 'close', 'reopen', 'return')"),
        )
        op.create_index(
            "ix_event_actions_statistics_since",
            "event_actions",
            ["created_at"],
            postgresql_where=sa.text(_STATISTICS_ACTIONS),
        )


def _rows(sql: str, **params: object) -> list[sa.Row]:
    return list(op.get_bind().execute(sa.text(sql), params))


def _definitions(table: str) -> dict[str, list[str]]:
    """What is declared on a table besides its columns, checks, keys and indexes, as SQL."""
    return {
        "foreign_keys": [
            f"ALTER TABLE {table} ADD CONSTRAINT {row.conname} {row.definition}"
            for row in _rows(
                "SELECT conname, pg_get_constraintdef(oid) AS definition FROM pg_constraint"
                " WHERE conrelid = CAST(:t AS regclass) AND contype = 'f' ORDER BY conname",
                t=table,
            )
        ],
        "triggers": [
            row.definition
            for row in _rows(
                "SELECT pg_get_triggerdef(oid) AS definition FROM pg_trigger"
                " WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal AND tgparentid = 0"
                " ORDER BY tgname",
                t=table,
            )
        ],
    }


def _rebuild(table: str, *, key: tuple[str, ...], partition_by: str | None) -> None:
    """Make `table` again, partitioned by `partition_by` (or not, when None), with primary key
    `key`, the same columns, checks, indexes, foreign keys and triggers, and the same rows; the
    indexes are built after the rows are in."""
    declared = _definitions(table)
    old = f"{table}_unpartitioned" if partition_by else f"{table}_partitioned"
    op.execute(f"ALTER TABLE {table} RENAME TO {old}")
    op.execute(f"ALTER TABLE {old} DROP CONSTRAINT pk_{table}")
    for row in _rows(
        "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = :t", t=old
    ):
        op.execute(f"DROP INDEX {row.indexname}")
    identity = " INCLUDING IDENTITY" if table == "event_actions" else ""
    op.execute(
        f"CREATE TABLE {table} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS"
        f" INCLUDING STORAGE{identity})" + (f" PARTITION BY RANGE ({partition_by})" if partition_by else "")
    )
    op.execute(f"ALTER TABLE {table} ADD CONSTRAINT pk_{table} PRIMARY KEY ({', '.join(key)})")
    if partition_by:
        op.execute(
            f"SELECT create_month_partitions('{table}', '{partition_by}',"
            f" CAST(coalesce((SELECT min({partition_by}) FROM {old}), now()) AT TIME ZONE '{ZONE}' AS date),"
            f" CAST(greatest((SELECT max({partition_by}) FROM {old}), now() + interval '3 months')"
            f" AT TIME ZONE '{ZONE}' AS date))"
        )
    op.execute(f"INSERT INTO {table} SELECT * FROM {old}")
    op.execute(f"DROP TABLE {old}")
    if identity:
        # The new identity's sequence took a free name (the old one's was taken): give it the
        # usual one, and go on from the last id.
        sequence = _rows("SELECT pg_get_serial_sequence(:t, 'id') AS name", t=table)[0].name
        op.execute(f"ALTER SEQUENCE {sequence} RENAME TO {table}_id_seq")
        op.execute(f"SELECT setval('{table}_id_seq', coalesce((SELECT max(id) FROM {table}), 0) + 1, false)")
    _create_indexes(table)
    for statements in declared.values():
        for statement in statements:
            op.execute(statement)


def _point_references_at(target: str, source: str) -> None:
    for table, column, options in EVENT_REFERENCES:
        op.execute(f"ALTER TABLE {table} DROP CONSTRAINT fk_{table}_{column}_{source}")
        op.execute(
            f"ALTER TABLE {table} ADD CONSTRAINT fk_{table}_{column}_{target}"
            f" FOREIGN KEY ({column}) REFERENCES {target} (id){options}"
        )


def _rollup_delta() -> str:
    """The rollups' function of an events row (migration 0090), as it stands."""
    return str(
        _rows(
            "SELECT pg_get_functiondef(CAST('closure_rollup_delta(events, integer)' AS regprocedure)) AS sql"
        )[0].sql
    )


def upgrade() -> None:
    op.create_table(
        "event_ids",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_event_ids")),
    )
    op.execute("INSERT INTO event_ids (id, received_at) SELECT id, received_at FROM events")
    # The foreign keys first, since they hold on to the events' old primary key.
    _point_references_at("event_ids", "events")
    op.execute(CREATE_PARTITIONS_SQL)
    delta = _rollup_delta()
    op.execute("DROP FUNCTION closure_rollup_delta(events, integer)")
    _rebuild("events", key=("id", "received_at"), partition_by="received_at")
    _rebuild("event_actions", key=("id", "created_at"), partition_by="created_at")
    op.execute(delta)
    op.execute(CLAIM_SQL)
    op.execute(CLAIM_TRIGGER_SQL)
    op.execute(FIXED_SQL)
    op.execute(FIXED_TRIGGER_SQL)
    op.execute("ANALYZE events")
    op.execute("ANALYZE event_actions")


def downgrade() -> None:
    op.execute("DROP TRIGGER events_received_at_fixed ON events")
    op.execute("DROP FUNCTION events_received_at_fixed()")
    op.execute("DROP TRIGGER events_claim_id ON events")
    op.execute("DROP FUNCTION events_claim_id()")
    delta = _rollup_delta()
    op.execute("DROP FUNCTION closure_rollup_delta(events, integer)")
    _rebuild("event_actions", key=("id",), partition_by=None)
    _rebuild("events", key=("id",), partition_by=None)
    op.execute(delta)
    op.execute("DROP FUNCTION create_month_partitions(text, text, date, date)")
    _point_references_at("events", "event_ids")
    op.drop_table("event_ids")
