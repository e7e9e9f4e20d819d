"""`report`: an environment's change health from the history store."""

from __future__ import annotations

import datetime as dt

from bot.commands.answers import ErrorAnswer, ReportAnswer
from bot.domain.history import HistoryStore
from bot.reports.compose import compose_report, parse_span


def answer_report(
    environment: str, since: str, history: HistoryStore | None, now: dt.datetime
) -> ReportAnswer | ErrorAnswer:
    """The `report` command's answer; a bad span is explained."""
    try:
        span = parse_span(since)
    except ValueError as err:
        return ErrorAnswer(str(err))
    return ReportAnswer(compose_report(environment, history, span, now))
