"""The one check of a statistics query's window, groupings and benchmark, for every kind.

Each kind of figures says which groupings it knows and how long a window it answers
(`Limits`); the rules are the same for all: the window [from, to) is not empty and at most
`max_window` long; at most `MAX_GROUP_BY` groupings, each known, none repeated; the benchmark
in (0, 1]. Windows are instants for closure figures and local days for the organisation's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from backend.errors import ValidationFailed, field_error

MAX_GROUP_BY = 2


@dataclass(frozen=True)
class Limits:
    """What one kind of statistics accepts: its groupings and its longest window."""

    keys: tuple[str, ...]
    max_window: timedelta
    max_window_text: str  # the same, as people say it: "20 years"


def query_errors(
    limits: Limits,
    *,
    start: date,
    end: date,
    group_by: Sequence[str],
    benchmark: float | None = None,
) -> list[dict[str, Any]]:
    """What is wrong with a window, groupings and benchmark, one error per bad field."""
    errors = []
    if start >= end:
        errors.append(field_error("from", "Must be before `to`.", location="query"))
    elif end - start > limits.max_window:
        errors.append(
            field_error("from", f"The window may be at most {limits.max_window_text} long.", location="query")
        )
    unknown = [key for key in group_by if key not in limits.keys]
    if unknown:
        errors.append(
            field_error(
                "group_by",
                f"Unknown grouping {', '.join(unknown)}; use {', '.join(limits.keys)}.",
                location="query",
            )
        )
    elif len(group_by) > MAX_GROUP_BY:
        errors.append(field_error("group_by", f"At most {MAX_GROUP_BY} groupings at once.", location="query"))
    elif len(set(group_by)) != len(group_by):
        errors.append(field_error("group_by", "A grouping is repeated.", location="query"))
    if benchmark is not None and not (0 < benchmark <= 1):
        errors.append(field_error("benchmark", "Must be in (0, 1].", location="query"))
    return errors


def refuse(errors: list[dict[str, Any]]) -> None:
    """Raise the errors found, if any, as one 422."""
    if errors:
        raise ValidationFailed("; ".join(f"{e['field']}: {e['message']}" for e in errors), errors=errors)


def check_query(
    limits: Limits,
    *,
    start: date,
    end: date,
    group_by: Sequence[str],
    benchmark: float | None = None,
) -> None:
    """Refuse a window, groupings or benchmark outside the rules, naming each bad field."""
    refuse(query_errors(limits, start=start, end=end, group_by=group_by, benchmark=benchmark))
