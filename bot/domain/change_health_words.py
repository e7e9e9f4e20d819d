"""A change-health report's facts in words, for every renderer: its headline and figures."""

from __future__ import annotations

import datetime as dt

from bot.domain.change_health import ChangeHealth
from bot.domain.readout import duration_words


def headline(report: ChangeHealth) -> str:
    """`production change health, 28 d: 12 changes, 2 failed (17%), recovery median 14 min`."""
    days = duration_words(report.until - report.since)
    if report.no_history:
        return f"{report.environment} change health, {days}: no history recorded"
    rate = report.failure_rate
    failed = f", {report.failed_changes} failed ({rate:.0%})" if rate is not None else ""
    median = report.median_recovery
    recovery = f", recovery median {duration_words(median)}" if median is not None else ""
    return f"{report.environment} change health, {days}: {report.changes} changes{failed}{recovery}"


def report_lines(report: ChangeHealth) -> list[str]:
    """The figures, one per line, each saying what it counts."""
    lines = []
    if report.history_from is not None:
        lines.append(
            f"History only from {_when(report.history_from)} (the store keeps no more): the "
            "figures cover less than asked."
        )
    if report.no_history:
        lines.append(
            "Nothing was recorded for this environment in this window: fluxbot records "
            "transitions while `fluxbot serve` runs."
        )
        return lines
    rate = report.failure_rate
    lines.append(
        f"Revisions applied: {report.changes} changes ({report.revisions} distinct revisions)"
    )
    lines.append(
        "Change failure rate: "
        + (
            f"{rate:.0%} ({report.failed_changes} of {report.changes})"
            if rate is not None
            else "n/a (no changes)"
        )
    )
    median, worst = report.median_recovery, report.worst_recovery
    if median is not None and worst is not None:
        lines.append(
            f"Time to recovery: median {duration_words(median)}, worst {duration_words(worst)} "
            f"({len(report.recoveries)} recoveries)"
        )
    else:
        lines.append("Time to recovery: n/a (no recoveries)")
    if report.still_failing:
        lines.append(f"Still failing: {report.still_failing} object(s) that failed in the window")
    if report.flapping:
        lines.append("Most flapping:")
        lines += [
            f"  {f.kind} {f.namespace}/{f.name} on {f.cluster}: failed {f.count} times"
            for f in report.flapping
        ]
    return lines


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
