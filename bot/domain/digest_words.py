"""A digest's facts in words, for every renderer: its headline, durations, when a cluster was
last read, changes found after a restart. The terminal and Slack renderers both read these."""

from __future__ import annotations

import datetime as dt
from typing import Final

from bot.domain.digest import Changes, ClusterLine, Digest, RevisionGroup
from bot.domain.fleet import CacheState
from bot.domain.transitions import Transition

# The top-level message names this many problems, then says how many more there are.
TOP_PROBLEMS: Final = 3


def utc_minute(value: dt.datetime | None) -> str:
    """`2026-11-30 13:40 UTC`, or `unknown`."""
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def while_down(t: Transition | RevisionGroup) -> str:
    """Marks a change found after a restart: ` (while fluxbot was down, 02:10-02:25 UTC)`."""
    if isinstance(t, RevisionGroup):
        if t.while_down is None:
            return ""
        start, end = (w.astimezone(dt.UTC) for w in t.while_down)
    elif t.down_since is None:
        return ""
    else:
        start, end = t.down_since.astimezone(dt.UTC), t.at.astimezone(dt.UTC)
    day = "" if start.date() == end.date() else f"{start:%Y-%m-%d} "
    return f" (while fluxbot was down, {day}{start:%H:%M}–{end:%H:%M} UTC)"


def unreadable_since(line: ClusterLine) -> str:
    """`since 02:10 UTC`, `last read 02:10 UTC` or `never read by fluxbot`."""
    if line.freshness is not None and line.freshness.state is CacheState.STALE:
        return f"since {utc_minute(line.freshness.since)}"
    if line.last_read is not None:
        return f"last read {utc_minute(line.last_read)}"
    return "never read by fluxbot"


def duration(since: dt.datetime | None, now: dt.datetime) -> str:
    """`45m`, `3h`, `2d 4h`: how long since `since`."""
    if since is None:
        return "?"
    minutes = max(0, int((now - since).total_seconds() // 60))
    if minutes < 60:
        return f"{minutes}m"
    hours = minutes // 60
    if hours < 48:
        return f"{hours}h"
    return f"{hours // 24}d {hours % 24}h"


def applied_texts(changes: Changes) -> list[str]:
    """What was applied: the revisions objects moved to, and the charts releases run now."""
    out = []
    for group in changes.revisions:
        where = ", ".join(sorted({k[0] for k in group.objects}))
        out.append(f"{group.short} to {count_words(len(group.objects), 'object')} on {where}")
    out += [
        f"{u.name} chart {u.new}" + (" (in progress)" if u.in_progress else "")
        for u in changes.chart_upgrades
    ]
    return out


def headline(digest: Digest) -> str:
    """The one line a channel sees first (the notification): the problems themselves."""
    if digest.healthy:
        return (
            f"{digest.environment}: all {digest.counts.total} objects ready, no changes since "
            f"{utc_minute(digest.since)}"
        )
    problems = digest.problems
    parts = []
    for problem in problems[:TOP_PROBLEMS]:
        if problem.kind == "unreadable":
            parts.append(f"{problem.cluster} cannot be read")
        elif problem.kind == "overdue":
            parts.append(f"{problem.subject.split()[-1]} on {problem.cluster} still suspended")
        else:
            phrase = problem.phrase if len(problem.phrase) <= 60 else problem.phrase[:59] + "…"
            parts.append(f"{problem.subject.split('/')[-1]} on {problem.cluster}: {phrase}")
    text = f"{digest.environment}: " + "; ".join(parts) if parts else digest.environment
    if len(problems) > TOP_PROBLEMS:
        text += f" and {len(problems) - TOP_PROBLEMS} more"
    tail = []
    applied = applied_texts(digest.changes)
    if applied:
        tail.append(
            "applied " + applied[0] + (f" (+{len(applied) - 1})" if len(applied) > 1 else "")
        )
    changes = digest.changes.count
    if changes:
        tail.append(count_words(changes, "change"))
    if digest.drifted:
        tail.append(f"{len(digest.drifted)} drifted")
    return " · ".join([text, *tail])


def count_words(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")
