"""docs/scaling.md stays true to the schema: every table is placed (reference, distributed or
local), and a distributed table either carries the distribution column in its primary and
unique keys, or the document says why not and what the move to Citus changes."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Table, UniqueConstraint

from backend.models import Base

DOC = Path(__file__).resolve().parents[1] / "docs" / "scaling.md"
DISTRIBUTION_COLUMN = "district_code"
KINDS = ("reference", "distributed", "local")


def placed_tables() -> dict[str, tuple[str, str, str]]:
    """The rows of the document's table of tables: name -> (kind, keys ready, why not)."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("\n## Tables\n", 1)[1]
    rows = {}
    for line in section.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 4 or cells[0] in ("table", "") or set(cells[0]) <= {"-"}:
            continue
        rows[cells[0]] = (cells[1], cells[2], cells[3])
    return rows


def keys_of(table: Table) -> list[tuple[str, list[str]]]:
    """The primary key and every unique constraint and unique index, with their columns."""
    keys = [("primary key", [column.name for column in table.primary_key.columns])]
    keys += [
        (str(constraint.name or "unique"), [column.name for column in constraint.columns])
        for constraint in table.constraints
        if isinstance(constraint, UniqueConstraint)
    ]
    keys += [
        (str(index.name), [column.name for column in index.columns])
        for index in table.indexes
        if index.unique
    ]
    return keys


def test_every_table_is_placed():
    placed = placed_tables()
    missing = sorted(set(Base.metadata.tables) - set(placed))
    assert not missing, f"add a row for {missing} to the table of tables in docs/scaling.md"
    unknown = sorted(set(placed) - set(Base.metadata.tables))
    assert not unknown, f"docs/scaling.md places tables that do not exist: {unknown}"
    for name, (kind, _, _) in placed.items():
        assert kind in KINDS, (name, kind)


def test_distributed_tables_carry_the_district_in_their_keys_or_say_why_not():
    for name, (kind, ready, why_not) in placed_tables().items():
        if kind != "distributed":
            assert not ready and not why_not, f"{name}: only distributed tables say whether keys are ready"
            continue
        table = Base.metadata.tables[name]
        lacking = [key for key, columns in keys_of(table) if DISTRIBUTION_COLUMN not in columns]
        assert ready == ("no" if lacking else "yes"), f"{name}: keys without {DISTRIBUTION_COLUMN}: {lacking}"
        if lacking:
            # The reason must name what changes, not only that something does.
            assert len(why_not) >= 40 and "district" in why_not, (name, why_not)
        else:
            assert DISTRIBUTION_COLUMN in table.columns, name
            assert not why_not, f"{name}: ready, so nothing to explain"


def test_reference_tables_are_not_keyed_by_district():
    # A reference table is copied whole to every node: it must not need the district to be found.
    for name, (kind, _, _) in placed_tables().items():
        if kind == "reference":
            primary = [column.name for column in Base.metadata.tables[name].primary_key.columns]
            assert DISTRIBUTION_COLUMN not in primary, name
