"""The change-health report in words (terminal and JSON)."""

from __future__ import annotations

import datetime as dt
from typing import Any

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


def render_report(report: ChangeHealth) -> str:
    """The report as terminal text, with the per-day counts the chart shows."""
    lines = [headline(report), "", *report_lines(report)]
    busy = [d for d in report.days if d.failures or d.recoveries]
    if busy:
        lines += ["", "Per day (failures / recoveries):"]
        lines += [f"  {d.day.isoformat()}  {d.failures} / {d.recoveries}" for d in busy]
    return "\n".join(lines)


def report_record(report: ChangeHealth) -> dict[str, Any]:
    """The report as JSON."""
    median, worst = report.median_recovery, report.worst_recovery
    return {
        "environment": report.environment,
        "since": report.since.isoformat(),
        "until": report.until.isoformat(),
        "history_from": report.history_from.isoformat() if report.history_from else None,
        "changes": report.changes,
        "revisions": report.revisions,
        "failed_changes": report.failed_changes,
        "change_failure_rate": report.failure_rate,
        "recoveries": len(report.recoveries),
        "recovery_median_seconds": int(median.total_seconds()) if median is not None else None,
        "recovery_worst_seconds": int(worst.total_seconds()) if worst is not None else None,
        "still_failing": report.still_failing,
        "flapping": [
            {
                "cluster": f.cluster,
                "kind": f.kind,
                "namespace": f.namespace,
                "name": f.name,
                "failures": f.count,
            }
            for f in report.flapping
        ],
        "days": [
            {
                "day": d.day.isoformat(),
                "failures": d.failures,
                "recoveries": d.recoveries,
                "covered": d.covered,
            }
            for d in report.days
        ],
    }


def _when(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
