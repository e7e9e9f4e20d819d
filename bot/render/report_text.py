"""The change-health report for the terminal, and as JSON."""

from __future__ import annotations

from typing import Any

from bot.domain.change_health import ChangeHealth
from bot.domain.change_health_words import headline, report_lines


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
