"""Digests as terminal text and as JSON (`fluxbot digest ENV --dry-run`).

The terminal gets the whole digest, never cut, with every message in full; Slack gets the
condensed form (bot.slack.digest_render).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any, Final

from bot.domain.digest import ChangeItem, Changes, Digest, Problem
from bot.domain.digest_words import (
    TOP_PROBLEMS,
    count_words,
    duration,
    headline,
    unreadable_since,
    utc_minute,
    while_down,
)
from bot.domain.fleet import CacheState, HealthCounts
from bot.domain.posture import posture_line
from bot.domain.status import truncate_hex
from bot.domain.transitions import Transition


def counts_line(counts: HealthCounts) -> str:
    """`2 failing · 1 progressing · 0 suspended · 40 ready`."""
    return (
        f"{counts.failing} failing · {counts.progressing} progressing · "
        f"{counts.suspended} suspended · {counts.ready} ready"
    )


def _change_record(t: Transition) -> dict[str, Any]:
    return {
        "object": "/".join((t.cluster, t.kind, t.namespace, t.name)),
        "at": t.at.isoformat(),
        "message": t.message,
        "while_down": {"from": t.down_since.isoformat(), "to": t.at.isoformat()}
        if t.down_since is not None
        else None,
    }


def _item_record(item: ChangeItem) -> dict[str, Any]:
    return {
        **_change_record(item.root),
        "failed_upgrade": item.failed_upgrade or None,
        "dependents": [_change_record(d) for d in item.dependents],
    }


# Objects named for a revision that moved, then a count.
NAMED_OBJECTS: Final = 3


def problem_text(problem: Problem, now: dt.datetime) -> str:
    """One problem in one line: where, what, the key phrase, how long, new or ongoing."""
    age = "new" if problem.new else "ongoing"
    if problem.kind == "unreadable":
        since = f"for {duration(problem.since, now)}" if problem.since else "since unknown"
        return f"{problem.cluster} cannot be read ({since}): {problem.phrase}"
    if problem.kind == "overdue":
        return (
            f"{problem.subject} on {problem.cluster}: its suspension ended "
            f"{duration(problem.since, now)} ago; resume or extend it"
        )
    dependents = f" (+{problem.dependents} failing because of it)" if problem.dependents else ""
    return (
        f"{problem.subject} on {problem.cluster}: {problem.phrase}{dependents}; "
        f"failing {duration(problem.since, now)}, {age}"
    )


def named_objects(keys: Sequence[tuple[str, str, str, str]], limit: int = NAMED_OBJECTS) -> str:
    """`Kustomization apps, GitRepository platform and 9 more`."""
    names = [f"{kind} {name}" for _cluster, kind, _ns, name in keys[:limit]]
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(names) + more


def change_lines(changes: Changes, now: dt.datetime) -> list[str]:
    """Every change, one item per line (dependents on the lines below), without markup."""
    lines = []
    for group in changes.revisions:
        where = ", ".join(sorted({k[0] for k in group.objects}))
        old = f" (from {', '.join(truncate_hex(o) for o in group.old)})" if group.old else ""
        link = f" {group.link}" if group.link else ""
        lines.append(
            f"- {group.short} applied to {count_words(len(group.objects), 'object')} on {where}: "
            f"{named_objects(group.objects)}{old}{link}{while_down(group)}"
        )
    for up in changes.chart_upgrades:
        state = " (in progress)" if up.in_progress else ""
        lines.append(
            f"- upgraded: HelmRelease {up.namespace}/{up.name} on {up.cluster}: "
            f"chart {up.old} -> {up.new}{state}"
        )
    for item in changes.new_failures:
        t = item.root
        why = item.failed_upgrade or " ".join(t.message.split())
        lines.append(
            f"- new failure: {t.kind} {t.namespace}/{t.name} on {item.cluster}: {why}"
            f"{while_down(t)}"
        )
        if item.dependents:
            lines.append(
                f"    and {count_words(len(item.dependents), 'object')} failing because of it: "
                + named_objects([_key(d) for d in item.dependents], 10)
            )
    for item in changes.recoveries:
        t = item.root
        lines.append(
            f"- recovered: {t.kind} {t.namespace}/{t.name} on {item.cluster}{while_down(t)}"
        )
        if item.dependents:
            lines.append(
                f"    with {count_words(len(item.dependents), 'object')} that recovered with it: "
                + named_objects([_key(d) for d in item.dependents], 10)
            )
    for (where, kind, ns, name), count in changes.flapping:
        lines.append(f"- flapping: {kind} {ns}/{name} on {where} failed {count} times")
    for a in changes.actions:
        result = "" if a.ok else " (failed)"
        lines.append(
            f"- {a.user} ran {a.action} on {a.kind} {a.namespace}/{a.name} ({a.cluster}){result}"
        )
    return lines


def _key(t: Transition) -> tuple[str, str, str, str]:
    return (t.cluster, t.kind, t.namespace, t.name)


def render_digest(digest: Digest) -> str:
    """The whole digest as text: nothing is cut."""
    lines = [headline(digest), ""]
    if (posture := posture_line(digest.posture)) is not None:
        lines[1:1] = [posture]
    problems = digest.problems
    if problems:
        lines += [f"  ! {problem_text(p, digest.now)}" for p in problems[:TOP_PROBLEMS]]
        if len(problems) > TOP_PROBLEMS:
            lines.append(f"  … and {len(problems) - TOP_PROBLEMS} more problem(s), all below")
        lines.append("")
    for cluster in digest.clusters:
        if cluster.unreadable is not None:
            lines.append(
                f"  {cluster.cluster}: cannot read ({unreadable_since(cluster)}): "
                f"{cluster.unreadable.message}"
            )
            continue
        line = f"  {cluster.cluster}: {counts_line(cluster.counts)}"
        fresh = cluster.freshness
        if fresh is not None and fresh.state is CacheState.STALE:
            line += f" (stale since {utc_minute(fresh.since)}: {fresh.error})"
        lines.append(line)
    if digest.attention:
        lines += ["", "Needs attention:"]
        for item in digest.attention:
            root = item.root
            if item.incident:
                where = f"{root.kind} {root.namespace}/{root.name} on {item.cluster}"
                lines.append(f"  - {where}: open incident {item.incident}")
                continue
            dependents = f" -> {len(item.dependents)} dependents" if item.dependents else ""
            lines.append(
                f"  - {root.kind} {root.namespace}/{root.name} on {item.cluster}: "
                f"{' '.join(root.message.split())}{dependents} "
                f"(failing since {utc_minute(item.since)})"
            )
            lines += [f"      {d.kind} {d.namespace}/{d.name}" for d in item.dependents]
    if digest.suspended:
        lines += ["", "Suspended:"]
        for s in digest.suspended:
            record = s.obj.suspension
            who = (
                f" by {record.by} since {utc_minute(record.at)}: {record.reason}"
                + (f" (until {utc_minute(record.until)})" if record.until else "")
                if record
                else ""
            )
            overdue = " OVERDUE: its suspension has ended" if s.overdue else ""
            lines.append(
                f"  - {s.obj.kind} {s.obj.namespace}/{s.obj.name} on {s.cluster}{who}{overdue}"
            )
    if digest.drifted:
        # Ready, but helm-controller found the cluster drifted from the release (warn mode).
        lines += ["", "Drifted from their Helm release:"]
        lines += [
            f"  - {d.obj.kind} {d.obj.namespace}/{d.obj.name} on {d.cluster}"
            for d in digest.drifted
        ]
    if not digest.changes.empty:
        lines += ["", f"Changes since {utc_minute(digest.since)}:"]
        lines += [f"  {line}" for line in change_lines(digest.changes, digest.now)]
    if digest.snoozed:
        lines += ["", f"({digest.snoozed} snoozed object(s) not shown)"]
    return "\n".join(lines).rstrip()


def digest_record(digest: Digest) -> dict[str, Any]:
    """The digest as JSON-ready data."""
    return {
        "environment": digest.environment,
        "now": digest.now.isoformat(),
        "since": digest.since.isoformat(),
        "healthy": digest.healthy,
        "headline": headline(digest),
        "problems": [
            {
                "kind": p.kind,
                "cluster": p.cluster,
                "object": p.subject or None,
                "phrase": p.phrase,
                "since": p.since.isoformat() if p.since else None,
                "new": p.new,
                "dependents": p.dependents,
            }
            for p in digest.problems
        ],
        "counts": {
            "failing": digest.counts.failing,
            "progressing": digest.counts.progressing,
            "suspended": digest.counts.suspended,
            "ready": digest.counts.ready,
        },
        "clusters": [
            {
                "cluster": c.cluster,
                "failing": c.counts.failing,
                "ready": c.counts.ready,
                "state": c.state,
                "unreadable": c.unreadable.message if c.unreadable else None,
                "error": c.unreadable.message
                if c.unreadable
                else (c.freshness.error if c.freshness and c.freshness.error else None),
                "since": c.since.isoformat() if c.since else None,
                "last_read": c.last_read.isoformat() if c.last_read else None,
            }
            for c in digest.clusters
        ],
        "attention": [
            {
                "cluster": i.cluster,
                "kind": i.root.kind,
                "namespace": i.root.namespace,
                "name": i.root.name,
                "message": i.root.message,
                "since": i.since.isoformat() if i.since else None,
                "dependents": [f"{d.kind}/{d.namespace}/{d.name}" for d in i.dependents],
                "incident": i.incident or None,
            }
            for i in digest.attention
        ],
        "suspended": [
            {
                "cluster": s.cluster,
                "kind": s.obj.kind,
                "namespace": s.obj.namespace,
                "name": s.obj.name,
                "by": s.obj.suspension.by if s.obj.suspension else None,
                "reason": s.obj.suspension.reason if s.obj.suspension else None,
                "overdue": s.overdue,
            }
            for s in digest.suspended
        ],
        "drifted": [
            {"cluster": d.cluster, "namespace": d.obj.namespace, "name": d.obj.name}
            for d in digest.drifted
        ],
        "changes": {
            "revisions": [
                {
                    "new": g.new,
                    "short": g.short,
                    "old": list(g.old),
                    "objects": ["/".join(k) for k in g.objects],
                    "link": g.link,
                    "while_down": {
                        "from": g.while_down[0].isoformat(),
                        "to": g.while_down[1].isoformat(),
                    }
                    if g.while_down
                    else None,
                }
                for g in digest.changes.revisions
            ],
            "chart_upgrades": [
                {
                    "cluster": u.cluster,
                    "release": f"{u.namespace}/{u.name}",
                    "old": u.old,
                    "new": u.new,
                    "in_progress": u.in_progress,
                }
                for u in digest.changes.chart_upgrades
            ],
            "new_failures": [_item_record(i) for i in digest.changes.new_failures],
            "recoveries": [_item_record(i) for i in digest.changes.recoveries],
            "flapping": [
                {"object": "/".join(k), "failures": n} for k, n in digest.changes.flapping
            ],
            "actions": [
                {
                    "user": a.user,
                    "action": a.action,
                    "object": f"{a.kind}/{a.namespace}/{a.name}",
                    "ok": a.ok,
                }
                for a in digest.changes.actions
            ],
        },
        "snoozed": digest.snoozed,
    }
