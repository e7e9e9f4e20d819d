"""Plain-text rendering of answers, for the terminal (`fluxbot status`, `fluxbot shell`)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Final

from bot.commands.answers import (
    Answer,
    AuditAnswer,
    ClusterReport,
    DigestAnswer,
    EnvironmentReport,
    EnvsAnswer,
    ErrorAnswer,
    HelpAnswer,
    IncidentsAnswer,
    ObjectAnswer,
    ObjectMatch,
    ReportAnswer,
    RolloutAnswer,
    StatusAnswer,
    TreeAnswer,
    TreeMatch,
)
from bot.commands.headline import environment_headline, plural, trouble_summary
from bot.commands.rollout_words import PLAIN, deployed_line
from bot.domain.condense import condense
from bot.domain.events import event_object
from bot.domain.fleet import (
    CacheState,
    ClusterTarget,
    ClusterTrouble,
    Freshness,
    TroubleState,
    cluster_trouble,
)
from bot.domain.readout import age, duration_words, is_stuck, release_versions, state_since
from bot.domain.status import FluxObject, Health
from bot.domain.tree import TreeNode
from bot.incidents.planner import title as incident_title
from bot.render.audit_text import render_audit
from bot.render.digest_text import counts_line, render_digest
from bot.render.report_text import render_report
from bot.render.rollout_text import render_rollout

MARKS = {
    Health.FAILING: "✗",
    Health.PROGRESSING: "…",
    Health.SUSPENDED: "⏸",
    Health.READY: "✓",
}
_HEADER = ("", "KIND", "NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "AGE", "MESSAGE")
# Room for one message in a table row; `get` prints it whole.
ROW_MESSAGE: Final = 200


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
        case IncidentsAnswer():
            return _render_incidents(answer)
        case EnvsAnswer():
            return _render_envs(answer)
        case HelpAnswer():
            return f"{answer.problem}\n\n{answer.text}" if answer.problem else answer.text
        case RolloutAnswer():
            return render_rollout(answer)
        case AuditAnswer():
            return render_audit(answer)
        case ReportAnswer():
            return render_report(answer.report)
        case ErrorAnswer():
            text = answer.message
            if answer.suggestions:
                text += f" Did you mean {' or '.join(answer.suggestions)}?"
            if answer.choices:
                text += f" Valid names: {', '.join(answer.choices)}"
            return text


def _render_incidents(answer: IncidentsAnswer) -> str:
    if answer.unavailable or not answer.incidents:
        return answer.unavailable or f"No open incidents in {', '.join(answer.environments)}."
    return "\n".join(
        f"{incident_title(r)}: failing since {r.failing_since:%Y-%m-%d %H:%M} UTC"
        + (f" {r.permalink}" if r.permalink else "")
        for r in answer.incidents
    )


def render_status(answer: StatusAnswer) -> str:
    """Environments, then clusters, then a `flux get`-like table with failures first."""
    scope = answer.scope + (" (listing failing only)" if answer.failing_only else "")
    blocks = [_render_environment(env, scope, answer) for env in answer.environments]
    return "\n\n".join(blocks) if blocks else "No environments configured."


def _render_environment(env: EnvironmentReport, scope: str, answer: StatusAnswer) -> str:
    lines = [
        f"== {environment_headline(env, answer.scope, answer.now)}",
        f"   {plural(len(env.clusters), 'cluster')} · {env.counts.total} {scope}: "
        f"{counts_line(env.counts)}",
    ]
    for cluster in env.clusters:
        lines.append("")
        lines.extend(_render_cluster(cluster, answer.now))
    return "\n".join(lines)


def _render_cluster(report: ClusterReport, now: dt.datetime) -> list[str]:
    cluster = report.status
    trouble = report.trouble
    if trouble is not None and trouble.state is TroubleState.UNREADABLE:
        return [
            f"{cluster.cluster}: CANNOT READ ({_trouble_words(trouble, now)}): {trouble.message}"
        ]
    lines = [f"{cluster.cluster}: {counts_line(cluster.counts)}{_stale_note(trouble, now)}"]
    if report.deployed is not None:
        lines.append(f"  {deployed_line(report.deployed, now, PLAIN)}")
    lines += [
        f"  ! {', '.join(p.kinds)}: {p.message}" for p in cluster.problems if not p.whole_cluster
    ]
    listing = report.derived("text-listing", lambda: _Listing.of(report))
    if not listing.rows:
        lines.append("  (no matching objects)")
        return lines
    lines += listing.lines(now)
    return lines


_Cells = tuple[str, str, str, str, str, str, str]
# The seven cells before AGE, since and timeout in microseconds (or -1), the message.
_Row = tuple[str, str, str, str, str, str, str, int, int, str]


class _Listing:
    """A cluster's table with every cell but the age worked out: only the age column depends
    on the moment of the answer, so an unchanged cluster is laid out once.

    Rows keep their cells as they are (strings the objects already hold) and one format string
    pads them: padded copies of every row cost 350 bytes an object (35 MB at 100,000 objects,
    docs/scaling.md), padding at answer time about 1 microsecond a row.
    """

    __slots__ = ("header", "row_format", "rows")

    def __init__(self, header: tuple[str, str], row_format: str, rows: list[_Row]) -> None:
        self.header = header
        # The seven cells before AGE, each padded to its column's width.
        self.row_format = row_format
        # (the seven cells, microseconds since the epoch it is in this state or -1, its
        # timeout in microseconds when it is progressing or -1, message). Whole microseconds:
        # the age is `now - since` exactly as datetimes subtract.
        self.rows = rows

    @classmethod
    def of(cls, report: ClusterReport) -> _Listing:
        """The listing of `report`'s objects, causes first (see `_cause_order`)."""
        objects = _cause_order(report)
        cells = [_static_cells(o, report.root_cause(o) is not None) for o in objects]
        widths = [
            max(len(title), *(len(row[i]) for row in cells)) if cells else len(title)
            for i, title in enumerate(_HEADER[:7])
        ]
        row_format = "  ".join(f"{{:<{width}}}" for width in widths)
        rows: list[_Row] = []
        for row, obj in zip(cells, objects, strict=True):
            since = state_since(obj)
            timeout = obj.timeout if obj.health is Health.PROGRESSING else None
            rows.append(
                (
                    *row,
                    -1 if since is None else _micros(since - _EPOCH),
                    -1 if timeout is None else _micros(timeout),
                    _row_message(obj),
                )
            )
        return cls((row_format.format(*_HEADER[:7]), _HEADER[8]), row_format, rows)

    def lines(self, now: dt.datetime) -> list[str]:
        """The table as `table()` lays it out, ages measured at `now`."""
        now_us = _micros(now - _EPOCH)
        ages = [_age_words(row[7], row[8], now_us) for row in self.rows]
        width = max(len(_HEADER[7]), *(len(a) for a in ages))
        pad = self.row_format.format
        out = [f"  {self.header[0]}  {_HEADER[7].ljust(width)}  {self.header[1]}".rstrip()]
        # str.format ignores the arguments past the seven cells.
        out += [
            f"  {pad(*row)}  {aged.ljust(width)}  {row[9]}".rstrip()
            for row, aged in zip(self.rows, ages, strict=True)
        ]
        return out


_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)


def _micros(delta: dt.timedelta) -> int:
    return delta // _MICROSECOND


def _age_words(since_us: int, timeout_us: int, now_us: int) -> str:
    """The AGE cell as `duration_words` and `is_stuck` make it, in whole microseconds."""
    if since_us < 0:
        return "-"
    elapsed = max(now_us - since_us, 0)
    seconds = elapsed // 1_000_000
    if seconds < 60:
        words = f"{seconds} s"
    elif seconds < 3600:
        words = f"{seconds // 60} min"
    elif seconds < 2 * 86400:
        words = f"{seconds // 3600} h"
    else:
        words = f"{seconds // 86400} d"
    return words + " STUCK" if 0 <= timeout_us < elapsed else words


def _cause_order(report: ClusterReport) -> list[FluxObject]:
    """Failing roots, each followed by what fails because of it; then everything else."""
    shown = {o.key for o in report.shown}
    ordered: dict[tuple[str, str, str], FluxObject] = {}
    for group in report.causes:
        for obj in (group.root, *group.dependents):
            if obj.key in shown:
                ordered.setdefault(obj.key, obj)
    # Keys, not objects: comparing whole objects row by row made this quadratic.
    return [*ordered.values(), *(o for o in report.shown if o.key not in ordered)]


def _trouble_words(trouble: ClusterTrouble, now: dt.datetime) -> str:
    since = f" since {_when(trouble.since)}" if trouble.since else ""
    return f"{trouble.describe(now)}{since}"


def _stale_note(trouble: ClusterTrouble | None, now: dt.datetime) -> str:
    if trouble is None:
        return ""
    if trouble.state is TroubleState.SYNCING:
        return " (still syncing)"
    return (
        f" (STALE: {_trouble_words(trouble, now)}: {trouble.message}; showing the last known state)"
    )


def _static_cells(obj: FluxObject, blocked: bool) -> _Cells:
    """A row's cells up to READY: what does not change with the moment of the answer."""
    return (
        MARKS[obj.health],
        ("↳ " if blocked else "") + obj.kind,
        obj.namespace,
        obj.name,
        obj.revision,
        # Kinds whose `flux get` has no SUSPENDED column (ImagePolicy, Provider, ...).
        str(obj.suspended) if obj.flux_kind.suspended_column else "-",
        obj.ready,
    )


def _row_message(obj: FluxObject) -> str:
    message = condense(obj.message, ROW_MESSAGE)
    if (versions := release_versions(obj)) is not None:
        message = f"[{versions}] {message}"
    return message


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
    """Each match in detail, worst first, then the clusters that could not be searched."""
    where = f" in namespace {answer.namespace}" if answer.namespace else ""
    parts = []
    troubles = trouble_summary(
        [t for t in answer.troubles if t.state is not TroubleState.SYNCING], answer.now
    )
    if troubles:
        parts.append(" · ".join(troubles))
    if not answer.matches:
        searched = " in the clusters that could be read" if answer.unreadable else ""
        text = f"No {answer.kind} named {answer.name!r}{where} was found{searched}."
        if answer.suggestions:
            text += f" Did you mean {' or '.join(answer.suggestions)}?"
        parts.append(text)
    several = len(answer.matches) > 1
    parts += [
        _ready_line(m, answer.now)
        if several and m.object.health is Health.READY
        else _render_match(m, answer.now)
        for m in answer.matches
    ]
    for cluster in answer.unreadable:
        trouble = cluster_trouble(cluster)
        assert trouble is not None
        parts.append(
            f"{cluster.cluster}: not searched ({_trouble_words(trouble, answer.now)}): "
            f"{trouble.message}"
        )
    return "\n\n".join(parts)


def _ready_line(match: ObjectMatch, now: dt.datetime) -> str:
    """A ready copy among several matches: one line, the failing ones come first in full."""
    obj = match.object
    elapsed = age(obj, now)
    return (
        f"{MARKS[obj.health]} {obj.kind} {obj.namespace}/{obj.name} "
        f"({match.environment} / {match.cluster}): ready"
        + (f" at {obj.revision}" if obj.revision else "")
        + (f" for {duration_words(elapsed)}" if elapsed is not None else "")
        + _stale_note(match.trouble, now)
    )


def _render_match(match: ObjectMatch, now: dt.datetime) -> str:
    obj = match.object
    elapsed = age(obj, now)
    state = f"{obj.health} for {duration_words(elapsed)}" if elapsed is not None else obj.health
    if is_stuck(obj, now) and obj.timeout is not None:
        state += f", STUCK: past its {duration_words(obj.timeout)} timeout"
    trouble = match.trouble
    lines = [
        f"{MARKS[obj.health]} {obj.kind} {obj.namespace}/{obj.name} "
        f"({match.environment} / {match.cluster}): {state}{_stale_note(trouble, now)}",
        f"  Ready:      {obj.ready}"
        + (f" ({obj.reason})" if obj.reason else "")
        + (", drift detected (Drifted=True)" if obj.drifted else ""),
        f"  Message:    {_one_line(obj.message)}",
        f"  Revision:   {obj.full_revision or '-'}",
        f"  Suspended:  {obj.suspended}",
    ]
    if (versions := release_versions(obj)) is not None:
        lines.insert(4, f"  Chart:      {versions}")
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
    if match.blocked:
        lines.append(f"  Blocks {len(match.blocked)} (failing because of it):")
        lines += [
            f"    {d.ref}: {d.reason or 'failing'}: {condense(d.message, ROW_MESSAGE)}"
            for d in match.blocked
        ]
    if obj.conditions:
        lines.append("  Conditions:")
        rows = [("TYPE", "STATUS", "REASON", "SINCE", "MESSAGE")]
        rows += [
            (
                c.type,
                c.status,
                c.reason,
                _when(c.last_transition_time),
                # Conditions often repeat the Ready message: print it once, above.
                "(the message above)"
                if c.message and _one_line(c.message) == _one_line(obj.message)
                else _one_line(c.message),
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
        shown = _one_line(obj.message)
        event_rows += [
            (
                _when(e.last_seen) + (f" (x{e.count})" if e.count > 1 else ""),
                e.type,
                e.reason,
                event_object(e, obj),
                e.revision or "-",
                # The controller's event usually repeats the Ready message; print it once.
                "(the message above)" if _one_line(e.message) == shown else _one_line(e.message),
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
            e.name + (f" ({', '.join(e.aliases)})" if e.aliases else ""),
            e.tier,
            e.channel or "-",
            ", ".join(_with_state(answer, ClusterTarget(e.name, c)) for c in e.clusters),
        )
        for e in answer.layout.environments
    ]
    troubles = trouble_summary(answer.troubles, answer.now)
    lead = [" · ".join(troubles)] if troubles else []
    return "\n".join([*lead, *table(rows)])


def _with_state(answer: EnvsAnswer, target: ClusterTarget) -> str:
    fresh = answer.freshness.get(target)
    if fresh is None:
        return target.cluster
    trouble = answer.trouble(target)
    if trouble is None:
        return f"{target.cluster} ({fresh.state})"
    if trouble.state is TroubleState.SYNCING:
        return f"{target.cluster} (syncing)"
    return (
        f"{target.cluster} ({trouble.state}: {_trouble_words(trouble, answer.now)}: {fresh.error})"
    )


def _when(value: dt.datetime | None) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ") if value else "-"


def _one_line(text: str) -> str:
    return " ".join(text.split())
