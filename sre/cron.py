"""Crontab expressions as crontab(5) reads them, through APScheduler's CronTrigger.

APScheduler 3's `CronTrigger.from_crontab` numbers weekdays from Monday = 0, where crontab has
Sunday = 0 (and 7): `0 2 * * 0` would fire on Mondays. Numeric weekdays are turned into names
(sun, mon, ...), which both read the same way.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apscheduler.triggers.cron import CronTrigger

_DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")
_NUMBER = re.compile(r"(?<![/\d])([0-7])(?!\d)")


def weekday_names(field: str) -> str:
    """A crontab weekday field with its day numbers as names; step values (`*/2`) are left alone."""
    return _NUMBER.sub(lambda m: _DAYS[int(m.group(1))], field)


def crontab_trigger(expr: str) -> CronTrigger:
    """A UTC CronTrigger for a five-field crontab expression; ValueError when it is not one."""
    from apscheduler.triggers.cron import CronTrigger  # not at module level: CLI start-up time

    fields = expr.split()
    if len(fields) != 5:
        raise ValueError(f"cron {expr!r}: five fields (minute hour day month weekday)")
    minute, hour, day, month, weekday = fields
    return CronTrigger(minute=minute, hour=hour, day=day, month=month, day_of_week=weekday_names(weekday),
                       timezone="UTC")
