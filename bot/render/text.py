"""Plain-text rendering of answers, for the terminal (`fluxbot status`, `fluxbot shell`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.commands.answers import (
    Answer,
    ClusterReport,
    DigestAnswer,
    EnvironmentReport,
    EnvsAnswer,
    ErrorAnswer,
    HelpAnswer,
    ObjectAnswer,
    ObjectMatch,
    StatusAnswer,
    TreeAnswer,
    TreeMatch,
)
from bot.domain.events import event_object
from bot.domain.fleet import CacheState, ClusterStatus, ClusterTarget, Freshness
from bot.domain.status import FluxObject, Health
from bot.domain.tree import TreeNode
from bot.render.digest_text import counts_line, render_digest

MARKS = {
    Health.FAILING: "✗",
    Health.PROGRESSING: "…",
    Health.SUSPENDED: "⏸",
    Health.READY: "✓",
}
_HEADER = ("", "KIND", "NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE")


def render(answer: Answer) -> str:
    """Any answer as terminal text."""
    match answer:
        case StatusAnswer():
            return render_status(answer)
        case ObjectAnswer():
            return render_object(answer)
        case TreeAnswer():
            return render_tree(answer)
        case DigestAnswer():
            return render_digest(answer.digest)
        case EnvsAnswer():
            return _render_envs(answer)
        case HelpAnswer():
            return f"{answer.problem}\n\n{answer.text}" if answer.problem else answer.text
        case ErrorAnswer():
            if not answer.choices:
                return answer.message
            return f"{answer.message} Valid names: {', '.join(answer.choices)}"


def render_status(answer: StatusAnswer) -> str:
    """Environments, then clusters, then a `flux get`-like table with failures first."""
    scope = answer.scope + (" (listing failing only)" if answer.failing_only else "")
    blocks = [_render_environment(env, scope) for env in answer.environments]
    return "\n\n".join(blocks) if blocks else "No environments configured."


def _render_environment(env: EnvironmentReport, scope: str) -> str:
    clusters = len(env.clusters)
    lines = [
        f"== {env.name} · {clusters} cluster{'s' if clusters != 1 else ''} · "
        f"{env.counts.total} {scope}: {counts_line(env.counts)}"
    ]
    for cluster in env.clusters:
        lines.append("")
        lines.extend(_render_cluster(cluster))
    return "\n".join(lines)


def _render_cluster(report: ClusterReport) -> list[str]:
    cluster = report.status
    problem = cluster.unreadable
    if problem is not None:
        return [f"{cluster.cluster}: CANNOT READ ({problem.kind}): {problem.message}"]
    lines = [f"{cluster.cluster}: {counts_line(cluster.counts)}{freshness_note(cluster)}"]
    lines += [
        f"  ! {', '.join(p.kinds)}: {p.message}" for p in cluster.problems if not p.whole_cluster
    ]
    objects = report.shown
    if not objects:
        lines.append("  (no matching objects)")
        return lines
    rows = [_HEADER, *(_row(o) for o in objects)]
    lines += ["  " + line for line in table(rows)]
    return lines


def freshness_note(cluster: ClusterStatus) -> str:
    """Empty for live data; otherwise says the data is syncing or stale, since when and why."""
    return freshness_note_of(cluster.freshness)


def _row(obj: FluxObject) -> tuple[str, ...]:
    return (
        MARKS[obj.health],
        obj.kind,
        obj.namespace,
        obj.name,
        obj.revision,
        # Kinds whose `flux get` has no SUSPENDED column (ImagePolicy, Provider, ...).
        str(obj.suspended) if obj.flux_kind.suspended_column else "-",
        obj.ready,
        _one_line(obj.message),
    )


def table(rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns separated by two spaces; the last column is not padded."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return [
        "  ".join(
            [*(cell.ljust(w) for cell, w in zip(row, widths, strict=False)), row[-1]]
        ).rstrip()
        for row in rows
    ]


def render_object(answer: ObjectAnswer) -> str:
    """Each match in detail, then the clusters that could not be searched."""
    where = f" in namespace {answer.namespace}" if answer.namespace else ""
    parts = []
    if not answer.matches:
        parts.append(f"No {answer.kind} named {answer.name!r}{where} was found.")
    parts += [_render_match(m) for m in answer.matches]
    for cluster in answer.unreadable:
        assert cluster.unreadable is not None
        parts.append(f"{cluster.cluster}: not searched: {cluster.unreadable.message}")
    return "\n\n".join(parts)


def _render_match(match: ObjectMatch) -> str:
    obj = match.object
    lines = [
        f"{MARKS[obj.health]} {obj.kind} {obj.namespace}/{obj.name} "
        f"({match.environment} / {match.cluster}): {obj.health}",
        f"  Ready:      {obj.ready}"
        + (f" ({obj.reason})" if obj.reason else "")
        + (", drift detected (Drifted=True)" if obj.drifted else ""),
        f"  Message:    {_one_line(obj.message)}",
        f"  Revision:   {obj.full_revision or '-'}",
        f"  Suspended:  {obj.suspended}",
    ]
    if obj.generation_lag:
        lines.append(
            f"  Generation: {obj.generation} (controller has seen {obj.observed_generation})"
        )
    if obj.source_ref:
        lines.append(f"  Source:     {obj.source_ref}")
    if obj.depends_on:
        lines.append(f"  Depends on: {', '.join(str(d) for d in obj.depends_on)}")
    if obj.owner:
        lines.append(f"  Applied by: {obj.owner}")
    if match.dependents:
        lines.append(f"  Used by:    {', '.join(str(d.ref) for d in match.dependents)}")
    if obj.conditions:
        lines.append("  Conditions:")
        rows = [("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")]
        rows += [
            (
                c.type,
                c.status,
                c.reason,
                _when(c.last_transition_time),
                _one_line(c.message),
            )
            for c in obj.conditions
        ]
        lines += ["    " + line for line in table(rows)]
    if obj.helm is not None and obj.helm.history:
        lines.append(
            f"  Helm release {obj.helm.release_namespace}/{obj.helm.release_name} "
            f"(storage namespace {obj.helm.storage_namespace or '-'}):"
        )
        rows = [("REVISION", "CHART", "APP VERSION", "STATUS", "DEPLOYED")]
        rows += [
            (
                str(s.version),
                f"{s.chart_name}@{s.chart_version}",
                s.app_version,
                s.status,
                _when(s.last_deployed),
            )
            for s in obj.helm.history
        ]
        lines += ["    " + line for line in table(rows)]
    if match.events:
        # As `flux events --for KIND/NAME`: the object's Events and its sources'.
        lines.append("  Recent events:")
        event_rows = [("LAST SEEN", "TYPE", "REASON", "OBJECT", "REVISION", "MESSAGE")]
        event_rows += [
            (
                _when(e.last_seen) + (f" (x{e.count})" if e.count > 1 else ""),
                e.type,
                e.reason,
                event_object(e, obj),
                e.revision or "-",
                _one_line(e.message),
            )
            for e in match.events
        ]
        lines += ["    " + line for line in table(event_rows)]
    if match.events_note:
        lines.append(f"  ({match.events_note})")
    return "\n".join(lines)


def render_tree(answer: TreeAnswer) -> str:
    """Each match's tree as `flux tree` draws it, Flux objects marked with their health."""
    where = f" in namespace {answer.namespace}" if answer.namespace else ""
    parts = []
    if not answer.matches:
        parts.append(f"No {answer.kind} named {answer.name!r}{where} was found.")
    parts += [_render_tree_match(m) for m in answer.matches]
    for cluster in answer.unreadable:
        assert cluster.unreadable is not None
        parts.append(f"{cluster.cluster}: not searched: {cluster.unreadable.message}")
    return "\n\n".join(parts)


def _render_tree_match(match: TreeMatch) -> str:
    root = match.tree
    assert root.obj is not None
    counts = root.counts()
    summary = ", ".join(f"{counts[h]} {h}" for h in Health if counts[h])
    lines = [
        f"{MARKS[root.obj.health]} {root.label} ({match.environment} / {match.cluster}): "
        f"{root.obj.health}; manages {root.size} objects"
        + (f" ({summary} Flux objects)" if summary else "")
        + freshness_note_of(match.freshness)
    ]
    if root.note:
        lines.append(f"  ({root.note})")
    lines += _tree_lines(root, "")
    return "\n".join(lines)


def _tree_lines(node: TreeNode, prefix: str) -> list[str]:
    lines = []
    for index, child in enumerate(node.children):
        last = index == len(node.children) - 1
        text = child.label
        if child.obj is not None:
            text = f"{MARKS[child.obj.health]} {text}"
            if child.obj.health in (Health.FAILING, Health.PROGRESSING):
                text += f": {_one_line(child.obj.message)}"
        elif child.is_flux:
            text += " (not found in the cluster)"
        if child.note:
            text += f" ({child.note})"
        lines.append(f"{prefix}{'└── ' if last else '├── '}{text}")
        lines += _tree_lines(child, prefix + ("    " if last else "│   "))
    return lines


def freshness_note_of(fresh: Freshness | None) -> str:
    """Empty for live data; otherwise says the data is syncing or stale, since when and why."""
    if fresh is None or fresh.state is CacheState.LIVE:
        return ""
    if fresh.state is CacheState.SYNCING:
        return " (still syncing)"
    since = f" since {_when(fresh.since)}" if fresh.since else ""
    return f" (STALE{since}: {fresh.error}; showing the last known state)"


def _render_envs(answer: EnvsAnswer) -> str:
    rows = [("ENVIRONMENT", "TIER", "CHANNEL", "CLUSTERS")]
    rows += [
        (
            e.name,
            e.tier,
            e.channel or "-",
            ", ".join(
                _with_state(c, answer.freshness.get(ClusterTarget(e.name, c))) for c in e.clusters
            ),
        )
        for e in answer.layout.environments
    ]
    return "\n".join(table(rows))


def _with_state(cluster: str, fresh: Freshness | None) -> str:
    if fresh is None:
        return cluster
    if fresh.state is CacheState.STALE:
        return f"{cluster} (stale since {_when(fresh.since)}: {fresh.error})"
    return f"{cluster} ({fresh.state})"


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _one_line(text: str) -> str:
    return " ".join(text.split())
