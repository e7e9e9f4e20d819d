"""Cron schedules with crontab's day-of-week numbering (0 and 7 are Sunday).

APScheduler 3's `CronTrigger.from_crontab` reads day-of-week numbers the APScheduler way
(0 is Monday), so `0 9 * * 1-5` would fire Tuesday to Saturday. We translate the field into
day names first, so schedules mean what they mean in every crontab.
"""

from __future__ import annotations

from typing import Any, Final
from zoneinfo import ZoneInfo

_NAMES: Final = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


def cron_trigger(expression: str, timezone: str) -> Any:
    """An APScheduler trigger for a five-field crontab expression; ValueError when invalid."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError("a cron expression has five fields: minute hour day month weekday")
    minute, hour, day, month, weekday = fields
    # Loaded on first use: validating a configuration needs it, answering from one does not.
    from apscheduler.triggers.cron import CronTrigger  # noqa: PLC0415

    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekdays(weekday),
        timezone=ZoneInfo(timezone),
    )


def _weekdays(field: str) -> str:
    if field == "*" or not any(c.isdigit() for c in field):
        return field  # names and "*" mean the same to APScheduler as to crontab
    days: set[int] = set()
    for part in field.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            start, end = 0, 6
        elif "-" in body:
            low, high = body.split("-", 1)
            start, end = int(low), int(high)
        else:
            start = end = int(body)
        if not (0 <= start <= 7 and 0 <= end <= 7 and start <= end and step >= 1):
            raise ValueError(f"invalid day-of-week {part!r}")
        days.update(d % 7 for d in range(start, end + 1, step))
    return ",".join(_NAMES[d] for d in sorted(days))
