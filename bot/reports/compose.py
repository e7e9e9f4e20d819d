"""Compose a change-health report from the history store (any backend behind its contract)."""

from __future__ import annotations

import datetime as dt
import re
from typing import Final

from bot.domain.change_health import CHART_DAYS, ChangeHealth, change_health
from bot.domain.history import HistoryStore

_SPAN: Final = re.compile(r"^(\d+)([hdw])$")
_UNITS: Final = {"h": dt.timedelta(hours=1), "d": dt.timedelta(days=1), "w": dt.timedelta(weeks=1)}


def parse_span(text: str) -> dt.timedelta:
    """`28d`, `2w`, `36h` as a timedelta; ValueError for anything else."""
    match = _SPAN.match(text.strip().lower())
    if match is None or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a span like 28d, 2w or 36h")
    return int(match.group(1)) * _UNITS[match.group(2)]


def compose_report(
    environment: str,
    history: HistoryStore | None,
    span: dt.timedelta,
    now: dt.datetime,
    retention: dt.timedelta | None = None,
) -> ChangeHealth:
    """The report over `span` up to `now`; the chart always covers four weeks."""
    since = now - span
    start = min(since, now - dt.timedelta(days=CHART_DAYS))
    transitions = history.transitions(environment, start, now) if history is not None else []
    # The store keeps `retention` at most: earlier days are "no history", not "no failures".
    history_from = now - retention if history is not None and retention else None
    return change_health(environment, transitions, since, now, history_from)
