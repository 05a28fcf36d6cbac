"""Monthly partitions of events and their trail, made ahead of time.

`events` is partitioned by `received_at` and `event_actions` by `created_at`, one partition per
local month (Asia/Shanghai, as the rollups' days), named `<table>_YYYY_MM`, plus
`<table>_default` for rows of any month not made (migration 0110). Housekeeping makes the
current month and the next few, so the default stays empty in normal use; the database function
`create_month_partitions` does the work, so a migration, a seed and housekeeping name and bound
partitions alike.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.orm import Session

ZONE = ZoneInfo("Asia/Shanghai")
# The partitioned tables and their partition keys.
PARTITIONED = {"events": "received_at", "event_actions": "created_at"}
# The partitions' names: the schema's own tables never look like this.
PARTITION_NAME = re.compile(r"^(events|event_actions)_(\d{4}_\d{2}|default)$")
MONTHS_AHEAD = 3

_CREATE = text("SELECT create_month_partitions(:parent, :key, :first, :last)")


def month_of(moment: datetime) -> date:
    """The first day of the local month a moment falls in."""
    return moment.astimezone(ZONE).date().replace(day=1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def create_partitions(session: Session, first: date, last: date) -> int:
    """Make the partitions of both tables for the months from `first` to `last` that are not
    there yet (a month whose rows already sit in the default partition is skipped); returns how
    many were made."""
    made = 0
    for parent, key in PARTITIONED.items():
        made += session.execute(
            _CREATE, {"parent": parent, "key": key, "first": first, "last": last}
        ).scalar_one()
    return made


def create_partitions_ahead(session: Session, months: int = MONTHS_AHEAD) -> int:
    """Make this month's partitions and the next `months` months', where missing."""
    now = session.execute(text("SELECT now()")).scalar_one()
    this_month = month_of(now)
    return create_partitions(session, this_month, add_months(this_month, months))
