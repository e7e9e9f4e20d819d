"""Digests as terminal text and as JSON (`fluxbot digest ENV --dry-run`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.domain.digest import Digest
from bot.domain.fleet import CacheState, HealthCounts
from bot.domain.posture import posture_line


def counts_line(counts: HealthCounts) -> str:
    """`2 failing · 1 progressing · 0 suspended · 40 ready`."""
    return (
        f"{counts.failing} failing · {counts.progressing} progressing · "
        f"{counts.suspended} suspended · {counts.ready} ready"
    )


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC") if value else "unknown"


def headline(digest: Digest) -> str:
    """The one line a channel sees first."""
    if digest.healthy:
        return (
            f"{digest.environment}: all {digest.counts.total} objects ready, no changes since "
            f"{_when(digest.since)}"
        )
    parts = [f"{len(digest.attention)} need attention"]
    if digest.suspended:
        parts.append(f"{len(digest.suspended)} suspended")
    parts.append(f"{digest.changes.count} changes")
    if digest.unreadable:
        parts.append(f"{len(digest.unreadable)} cluster(s) not read")
    return f"{digest.environment} digest: " + " · ".join(parts)


def render_digest(digest: Digest) -> str:
    """The whole digest as text."""
    lines = [headline(digest), ""]
    if (posture := posture_line(digest.posture)) is not None:
        lines[1:1] = [posture]
    for cluster in digest.clusters:
        if cluster.unreadable is not None:
            lines.append(f"  {cluster.cluster}: cannot read: {cluster.unreadable.message}")
            continue
        line = f"  {cluster.cluster}: {counts_line(cluster.counts)}"
        fresh = cluster.freshness
        if fresh is not None and fresh.state is CacheState.STALE:
            line += f" (stale since {_when(fresh.since)}: {fresh.error})"
        lines.append(line)
    if digest.attention:
        lines += ["", "Needs attention:"]
        for item in digest.attention:
            root = item.root
            dependents = f" -> {len(item.dependents)} dependents" if item.dependents else ""
            lines.append(
                f"  - {root.kind} {root.namespace}/{root.name} on {item.cluster}: "
                f"{' '.join(root.message.split())}{dependents} (failing since {_when(item.since)})"
            )
            lines += [f"      {d.kind} {d.namespace}/{d.name}" for d in item.dependents]
    if digest.suspended:
        lines += ["", "Suspended:"]
        for s in digest.suspended:
            record = s.obj.suspension
            who = (
                f" by {record.by} since {_when(record.at)}: {record.reason}"
                + (f" (until {_when(record.until)})" if record.until else "")
                if record
                else ""
            )
            overdue = " OVERDUE: its suspension has ended" if s.overdue else ""
            lines.append(
                f"  - {s.obj.kind} {s.obj.namespace}/{s.obj.name} on {s.cluster}{who}{overdue}"
            )
    changes = digest.changes
    if not changes.empty:
        lines += ["", f"Changes since {_when(digest.since)}:"]
        for group in changes.revisions:
            old = f" (from {', '.join(group.old)})" if group.old else ""
            lines.append(f"  - {len(group.objects)} object(s) now at {group.new}{old}")
        for up in changes.chart_upgrades:
            release = f"{up.namespace}/{up.name}"
            lines.append(f"  - HelmRelease {release} on {up.cluster}: chart {up.old} -> {up.new}")
        for t in changes.new_failures:
            lines.append(
                f"  - new failure: {t.kind} {t.namespace}/{t.name} on {t.cluster}: {t.message}"
            )
        for t in changes.recoveries:
            lines.append(f"  - recovered: {t.kind} {t.namespace}/{t.name} on {t.cluster}")
        for (where, kind, ns, name), count in changes.flapping:
            lines.append(f"  - flapping: {kind} {ns}/{name} on {where} failed {count} times")
        for a in changes.actions:
            result = "" if a.ok else " (failed)"
            target = f"{a.kind} {a.namespace}/{a.name} ({a.cluster})"
            lines.append(f"  - {a.user} ran {a.action} on {target}{result}")
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
                "state": c.freshness.state.value if c.freshness else "live",
                "unreadable": c.unreadable.message if c.unreadable else None,
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
        "changes": {
            "revisions": [
                {"new": g.new, "old": list(g.old), "objects": ["/".join(k) for k in g.objects]}
                for g in digest.changes.revisions
            ],
            "chart_upgrades": [
                {
                    "cluster": u.cluster,
                    "release": f"{u.namespace}/{u.name}",
                    "old": u.old,
                    "new": u.new,
                }
                for u in digest.changes.chart_upgrades
            ],
            "new_failures": [
                "/".join((t.cluster, t.kind, t.namespace, t.name))
                for t in digest.changes.new_failures
            ],
            "recoveries": [
                "/".join((t.cluster, t.kind, t.namespace, t.name))
                for t in digest.changes.recoveries
            ],
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
