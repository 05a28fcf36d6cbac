"""Percentiles from the closure rollups' histograms of hours to close.

The trigger of migration 0090 files each closed event's hours from acceptance to closing in a
bucket: 0 below a minute, then eight buckets per doubling of the minutes (bucket b >= 1 holds
[2^((b-1)/8), 2^(b/8)) minutes), the last one open-ended from 2^24 minutes (32 years). Buckets
of any days, grids and categories add up, so one histogram answers for any union of them.

A percentile is interpolated as percentile_cont does (between the order statistics on either
side of fraction * (n - 1)), each order statistic read as the geometric middle of its bucket
(half a minute for bucket 0). Each read is within a factor 2^(1/16) (4.4%) of the true value,
or within 30 seconds for bucket 0, and so is their interpolation: an estimate is within 4.5% of
the exact figure plus 30 seconds (for durations under 32 years; a negative duration, which only
hand-written data has, counts as under a minute).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

BUCKETS_PER_DOUBLING = 8
LAST_BUCKET = 1 + 24 * BUCKETS_PER_DOUBLING
# The bound the API documentation states (2^(1/16) - 1 = 4.43%, rounded up).
RELATIVE_ERROR = 0.045
ABSOLUTE_ERROR_HOURS = 0.5 / 60


def bucket_hours(bucket: int) -> float:
    """The hours that stand for a bucket's durations: the geometric middle of its bounds."""
    if bucket <= 0:
        return ABSOLUTE_ERROR_HOURS
    return 2 ** ((bucket - 0.5) / BUCKETS_PER_DOUBLING) / 60


def percentiles(counts: Iterable[tuple[int, int]], fractions: Sequence[float]) -> list[float] | None:
    """The percentiles of a histogram given as (bucket, count) pairs (None when it is empty)."""
    ordered = sorted((bucket, n) for bucket, n in counts if n > 0)
    total = sum(n for _, n in ordered)
    if total == 0:
        return None

    def order_statistic(rank: int) -> float:
        seen = 0
        for bucket, n in ordered:
            seen += n
            if rank < seen:
                return bucket_hours(bucket)
        return bucket_hours(ordered[-1][0])

    out = []
    for fraction in fractions:
        position = fraction * (total - 1)
        low = int(position)
        low_value = order_statistic(low)
        high_value = order_statistic(min(low + 1, total - 1))
        out.append(low_value + (high_value - low_value) * (position - low))
    return out


# The rollups' two triggers on events (migration 0090).
TRIGGERS = ("closure_rollups_insert_delete", "closure_rollups_update")
_KEY = "d.district_code, d.town_code, d.village_code, d.grid_code, d.category_code, d.due_day"
_REBUILD = (
    "TRUNCATE closure_rollups, closure_rollup_hours",
    f"""INSERT INTO closure_rollups (district_code, town_code, village_code, grid_code,
        category_code, due_day, due, closed, closed_on_time, reworked)
    SELECT {_KEY}, sum(d.due), sum(d.closed), sum(d.closed_on_time), sum(d.reworked)
    FROM events e, closure_rollup_delta(e, 1) d
    GROUP BY {_KEY}""",
    f"""INSERT INTO closure_rollup_hours (district_code, town_code, village_code, grid_code,
        category_code, due_day, bucket, closed)
    SELECT {_KEY}, d.bucket, sum(d.closed)
    FROM events e, closure_rollup_delta(e, 1) d
    WHERE d.bucket IS NOT NULL
    GROUP BY {_KEY}, d.bucket""",
)


def set_triggers(session: Session, *, enabled: bool) -> None:
    """Switch the rollups' triggers on events on or off (for a bulk load, which rebuilds them
    after); takes a lock on events until commit."""
    for trigger in TRIGGERS:
        session.execute(text(f"ALTER TABLE events {'ENABLE' if enabled else 'DISABLE'} TRIGGER {trigger}"))


def rebuild(session: Session) -> None:
    """Count the rollups afresh from the events (one pass; the caller commits)."""
    for statement in _REBUILD:
        session.execute(text(statement))
