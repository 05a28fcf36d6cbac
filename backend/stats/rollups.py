"""Percentiles from the closure rollups' histograms of hours to close, and the rollups' tiers.

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

The tiers of migration 0100 (per grid and local month, per grid and local year) keep the same
buckets, a row's histogram in one bytea of five-byte entries (the bucket, then its count as a
big-endian int4). `merged` adds any number of them up with numpy, and `cover` cuts a period into
whole years, whole months and the edges left over (or taken away), so that a district's ten
years read a few rows per grid.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np
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


# The histograms of a tier row: (bucket, count) entries, five bytes each.
ENTRY = np.dtype([("bucket", "u1"), ("count", ">i4")])
_BUCKET_HOURS = np.array([bucket_hours(bucket) for bucket in range(LAST_BUCKET + 1)])


def merged(histograms: Sequence[bytes | None]) -> np.ndarray:
    """The histograms of the tiers' bytea (each a concatenation of any rows' histograms), one
    row of counts per bucket each (an array of len(histograms) x (LAST_BUCKET + 1))."""
    lengths = np.fromiter((len(h) if h else 0 for h in histograms), np.int64, len(histograms))
    entries = np.frombuffer(b"".join(h for h in histograms if h), ENTRY)
    owner = np.repeat(np.arange(len(histograms)), lengths // ENTRY.itemsize)
    width = LAST_BUCKET + 1
    flat = np.bincount(
        owner * width + entries["bucket"], weights=entries["count"], minlength=len(histograms) * width
    )
    return flat.reshape(len(histograms), width).round().astype(np.int64)


def percentiles_of(histograms: np.ndarray, fractions: Sequence[float]) -> list[list[float] | None]:
    """`percentiles` of each row of counts per bucket, with the same arithmetic (None for an
    empty row)."""
    cumulative = np.cumsum(histograms, axis=1)
    total = cumulative[:, -1] if histograms.size else np.zeros(len(histograms), np.int64)
    last = np.maximum(total - 1, 0)

    def order_statistic(rank: np.ndarray) -> np.ndarray:
        # The first bucket whose running count exceeds the rank.
        bucket = (cumulative <= rank[:, None]).sum(axis=1)
        return _BUCKET_HOURS[np.minimum(bucket, LAST_BUCKET)]

    columns = []
    for fraction in fractions:
        position = fraction * last.astype(np.float64)
        low = position.astype(np.int64)
        low_value = order_statistic(low)
        high_value = order_statistic(np.minimum(low + 1, last))
        columns.append(low_value + (high_value - low_value) * (position - low))
    values = np.stack(columns, axis=1) if columns else np.zeros((len(histograms), 0))
    # One conversion of the whole array: a tolist() per row costs more than the arithmetic above.
    return [row if n > 0 else None for row, n in zip(values.tolist(), total.tolist(), strict=True)]


@dataclass(frozen=True)
class Cover:
    """How a period of local days [first, end) is read: whole years [years[0], years[1]), whole
    months [start, stop) outside them (those before years[0] added, or, when the years begin
    before `start`, the months [years[0], start) taken away), and days: those between `first`
    and `start` added when `start` is later, taken away when it is earlier (a month read whole
    rather than most of its days one by one), and the days [stop, end) added."""

    start: date
    stop: date
    years: tuple[date, date]


def _month_on_or_after(day: date) -> date:
    if day.day == 1:
        return day
    return date(day.year + day.month // 12, day.month % 12 + 1, 1)


def cover(first: date, end: date, *, years: bool = True) -> Cover | None:
    """Cut [first, end) into whole months and (when `years`) whole years, reading a month or a
    year whole and taking its part before `first` away when that part is the smaller; None when
    no whole month ends by `end`."""
    start, stop = _month_on_or_after(first), date(end.year, end.month, 1)
    if start != first and (first - first.replace(day=1)).days < (start - first).days:
        start = first.replace(day=1)
    if start >= stop:
        return None
    year_start, year_stop = stop, stop
    if years:
        year_start = date(start.year + (start.month - 1 >= 13 - start.month), 1, 1)
        year_stop = date(stop.year, 1, 1)
        if year_start >= year_stop:
            year_start = year_stop = stop
    return Cover(start, stop, (year_start, year_stop))


# The rollups' triggers on events: the days' (migration 0090) and the tiers' (0100).
TRIGGERS = (
    "closure_rollups_insert_delete",
    "closure_rollups_update",
    "closure_tiers_insert",
    "closure_tiers_delete",
    "closure_tiers_update",
)
TIERS = {"closure_rollup_months": "month", "closure_rollup_years": "year"}
_KEY = "d.district_code, d.town_code, d.village_code, d.grid_code, d.category_code, d.due_day"


def _tier_sql(table: str, period: str) -> str:
    """Sum the daily rollups into one (empty) tier, as migration 0100 does, in key order so
    that a district's rows of a period lie together on disk."""
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


_REBUILD = (
    f"TRUNCATE closure_rollups, closure_rollup_hours, {', '.join(TIERS)}",
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
    *(_tier_sql(table, period) for table, period in TIERS.items()),
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
