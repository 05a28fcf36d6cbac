"""Foreign keys from every column that names a user to users.id

Revision ID: 0030
Revises: 0010
Create Date: 2026-11-26 09:40:00

Values that name no user (the old demo history wrote made-up ids) are cleared first: person
columns become NULL, and a phone's sync state of a user who does not exist is deleted. Users are
disabled, not deleted, so the keys RESTRICT deleting anyone who reported, handled or acted on
something; only a sync state, the user's own phone cache, goes with its user.
"""

from alembic import op

revision = "0030"
down_revision = "0010"
branch_labels = None
depends_on = None

# table -> (columns, ON DELETE)
PERSON_COLUMNS = {
    "events": (("reporter_id", "assignee_id", "resolved_by", "closed_by"), "RESTRICT"),
    "event_actions": (("actor_id",), "RESTRICT"),
    "attachments": (("uploaded_by",), "RESTRICT"),
    "alerts": (("created_by",), "RESTRICT"),
    "alert_dispatches": (("acknowledged_by", "arrived_by"), "RESTRICT"),
    "check_ins": (("user_id",), "RESTRICT"),
    "sync_states": (("user_id",), "CASCADE"),
}


def _dangling(column: str) -> str:
    # NOT IN over a subquery is one hashed lookup per row, not a subplan run per row.
    return f"{column} IS NOT NULL AND {column} NOT IN (SELECT id FROM users)"


def upgrade() -> None:
    op.execute(f"DELETE FROM sync_states WHERE {_dangling('user_id')}")
    # The trail refuses updates; this one only clears ids that name no user.
    op.execute("ALTER TABLE event_actions DISABLE TRIGGER event_actions_append_only")
    for table, (columns, _) in PERSON_COLUMNS.items():
        if table == "sync_states":
            continue
        sets = ", ".join(f"{c} = CASE WHEN {_dangling(c)} THEN NULL ELSE {c} END" for c in columns)
        where = " OR ".join(f"({_dangling(c)})" for c in columns)
        op.execute(f"UPDATE {table} SET {sets} WHERE {where}")
    op.execute("ALTER TABLE event_actions ENABLE TRIGGER event_actions_append_only")
    for table, (columns, ondelete) in PERSON_COLUMNS.items():
        for column in columns:
            op.create_foreign_key(
                op.f(f"fk_{table}_{column}_users"), table, "users", [column], ["id"], ondelete=ondelete
            )


def downgrade() -> None:
    for table, (columns, _) in PERSON_COLUMNS.items():
        for column in columns:
            op.drop_constraint(op.f(f"fk_{table}_{column}_users"), table, type_="foreignkey")
