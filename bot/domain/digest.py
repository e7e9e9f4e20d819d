"""Compose an environment's digest: what is broken and why, what changed, nothing else.

Failing objects are grouped by root cause: a failing source and the Kustomizations and
HelmReleases that fail because of it (through `sourceRef` or `dependsOn`) are one item.
Changes since the last digest come from recorded transitions and actions, grouped the same
way: one fixed source is one "recovered" item with what recovered with it. A HelmRelease whose
newer chart failed is a failure ("66.3.0 failed, 65.1.0 still running"), not an upgrade.
Composing is pure: the caller gathers current status and history, this decides what earns a
line.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Final

from bot.domain.action_rules import material_state
from bot.domain.causes import Key as Key3
from bot.domain.causes import group_failures, group_selected
from bot.domain.change_window import ChangeWindow, fold
from bot.domain.condense import condense
from bot.domain.fleet import CacheState, ClusterProblem, ClusterStatus, Freshness, HealthCounts
from bot.domain.forges import commit_link
from bot.domain.history import ActionRecord, ObjectKey, Snooze
from bot.domain.kinds import GIT_REPOSITORY, HELM_RELEASE, kind_order
from bot.domain.posture import Finding
from bot.domain.status import FluxObject, Health, truncate_hex
from bot.domain.transitions import Change, Transition

# An object that failed this many times in one digest window is flapping, not news each time.
FLAP_THRESHOLD: Final = 3
# Without a previous digest, "changes" covers the last day.
FIRST_WINDOW: Final = dt.timedelta(days=1)
# The key phrase of an error in a one-line summary of a problem.
PHRASE_LIMIT: Final = 100
# Helm release statuses of a release that is (or was) running (helm pkg/release/status.go).
_RAN: Final = frozenset({"deployed", "superseded"})


@dataclass(frozen=True, slots=True)
class ClusterLine:
    """One cluster's one-line summary."""

    cluster: str
    counts: HealthCounts
    freshness: Freshness | None
    unreadable: ClusterProblem | None
    # When fluxbot last read the cluster fine (from the history store), if it ever did.
    last_read: dt.datetime | None = None

    @property
    def state(self) -> str:
        """`unreadable`, `stale`, `syncing` or `live`."""
        if self.unreadable is not None:
            return "unreadable"
        return self.freshness.state.value if self.freshness is not None else "live"

    @property
    def error(self) -> str:
        """Why the cluster could not be read, or why its data is stale."""
        if self.unreadable is not None:
            return self.unreadable.message
        return self.freshness.error if self.freshness is not None else ""

    @property
    def since(self) -> dt.datetime | None:
        """Since when the cluster could not be read (or its data is stale), as best known."""
        if self.freshness is not None and self.freshness.state is CacheState.STALE:
            return self.freshness.since
        return self.last_read if self.unreadable is not None else None


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """One root cause: the failing object at the top, and what fails because of it."""

    cluster: str
    root: FluxObject
    dependents: tuple[FluxObject, ...]
    since: dt.datetime | None
    # A link to the open incident about this root cause: the digest points there instead.
    incident: str = ""


@dataclass(frozen=True, slots=True)
class SuspendedItem:
    """A suspended object, and whether its suspension outlived its announced end."""

    cluster: str
    obj: FluxObject
    overdue: bool


@dataclass(frozen=True, slots=True)
class DriftItem:
    """A HelmRelease that is ready but whose cluster state drifted (`Drifted=True`)."""

    cluster: str
    obj: FluxObject


@dataclass(frozen=True, slots=True)
class RevisionGroup:
    """Objects that moved to the same revision."""

    new: str
    old: tuple[str, ...]
    objects: tuple[ObjectKey, ...]
    # The commit's page, when the revision is a commit of a GitRepository on a known forge.
    link: str | None = None
    # When some of the objects moved while fluxbot was down: from when to when.
    while_down: tuple[dt.datetime, dt.datetime] | None = None

    @property
    def short(self) -> str:
        """The revision as `flux get` prints it (`main@sha1:696f056d`)."""
        return truncate_hex(self.new)


@dataclass(frozen=True, slots=True)
class ChartUpgrade:
    """A HelmRelease that moved to another chart version and runs it (or is still upgrading)."""

    cluster: str
    namespace: str
    name: str
    old: str
    new: str
    in_progress: bool = False


@dataclass(frozen=True, slots=True)
class ChangeItem:
    """One root cause that failed (or recovered) since the last digest, with what followed it.

    `root` is the transition of the object at the top; `dependents` those of the objects that
    failed (recovered) because of it. `failed_upgrade` says which chart failed and which still
    runs, for a HelmRelease whose upgrade failed.
    """

    cluster: str
    root: Transition
    dependents: tuple[Transition, ...] = ()
    failed_upgrade: str = ""

    @property
    def size(self) -> int:
        """How many objects this item stands for."""
        return 1 + len(self.dependents)


@dataclass(frozen=True, slots=True)
class Problem:
    """One line of the top-level message: what is wrong, where, since when, new or not."""

    kind: str  # "unreadable", "failing" or "overdue"
    cluster: str
    subject: str  # "GitRepository flux-system/platform"; "" for an unreadable cluster
    message: str  # the error in full
    since: dt.datetime | None
    new: bool
    dependents: int = 0

    @property
    def phrase(self) -> str:
        """The key phrase of the error: condensed (only when shown, condensing costs)."""
        return condense(self.message, PHRASE_LIMIT)


@dataclass(frozen=True, slots=True)
class Changes:
    """What happened since the last digest."""

    revisions: tuple[RevisionGroup, ...] = ()
    chart_upgrades: tuple[ChartUpgrade, ...] = ()
    new_failures: tuple[ChangeItem, ...] = ()
    recoveries: tuple[ChangeItem, ...] = ()
    flapping: tuple[tuple[ObjectKey, int], ...] = ()
    actions: tuple[ActionRecord, ...] = ()

    @property
    def empty(self) -> bool:
        """Nothing worth telling."""
        return not (
            self.revisions
            or self.chart_upgrades
            or self.new_failures
            or self.recoveries
            or self.flapping
            or self.actions
        )

    @property
    def count(self) -> int:
        """How many things changed, for the summary line."""
        return (
            sum(len(g.objects) for g in self.revisions)
            + len(self.chart_upgrades)
            + sum(i.size for i in self.new_failures)
            + sum(i.size for i in self.recoveries)
            + len(self.flapping)
            + len(self.actions)
        )


@dataclass(frozen=True)
class Digest:
    """An environment's digest, ready to render."""

    environment: str
    now: dt.datetime
    since: dt.datetime
    clusters: tuple[ClusterLine, ...]
    attention: tuple[AttentionItem, ...]
    suspended: tuple[SuspendedItem, ...]
    changes: Changes
    snoozed: int = 0
    counts: HealthCounts = field(default_factory=HealthCounts)
    # The posture audit's findings (advice, not failures: they do not make a digest unhealthy).
    posture: tuple[Finding, ...] = ()
    drifted: tuple[DriftItem, ...] = ()

    @property
    def unreadable(self) -> tuple[ClusterLine, ...]:
        """Clusters that could not be read, or whose data is stale."""
        return tuple(
            c
            for c in self.clusters
            if c.unreadable is not None
            or (c.freshness is not None and c.freshness.state is CacheState.STALE)
        )

    @property
    def healthy(self) -> bool:
        """Nothing failing, unreadable or suspended, and no changes: nothing to say."""
        return (
            not self.attention
            and not self.unreadable
            and not self.suspended
            and not self.drifted
            and self.changes.empty
        )

    @cached_property
    def problems(self) -> tuple[Problem, ...]:
        """What is wrong, most urgent first: unreadable clusters, root causes, overdue
        suspensions."""
        out = [
            Problem(
                "unreadable",
                c.cluster,
                "",
                c.error,
                c.since,
                new=c.since is not None and c.since > self.since,
            )
            for c in self.unreadable
        ]
        out += [
            Problem(
                "failing",
                i.cluster,
                f"{i.root.kind} {i.root.namespace}/{i.root.name}",
                i.root.message,
                i.since,
                new=i.since is not None and i.since > self.since,
                dependents=len(i.dependents),
            )
            for i in self.attention
        ]
        out += [
            Problem(
                "overdue",
                s.cluster,
                f"{s.obj.kind} {s.obj.namespace}/{s.obj.name}",
                "suspended past its end",
                s.obj.suspension.until if s.obj.suspension else None,
                new=False,
            )
            for s in self.suspended
            if s.overdue
        ]
        return tuple(out)


def compose(
    environment: str,
    clusters: Sequence[ClusterStatus],
    transitions: Sequence[Transition] | ChangeWindow,
    actions: Sequence[ActionRecord],
    snoozes: Sequence[Snooze],
    failing_since: Mapping[ObjectKey, dt.datetime],
    now: dt.datetime,
    since: dt.datetime | None,
    last_seen: Mapping[str, dt.datetime] | None = None,
) -> Digest:
    """The digest of `environment` at `now`, covering changes after `since`.

    `transitions` are those recorded, or the window (since, now] already folded per object
    (see `HistoryStore.change_window`).
    """
    last_seen = last_seen or {}
    window_start = since or now - FIRST_WINDOW
    window = (
        transitions
        if isinstance(transitions, ChangeWindow)
        else fold(t for t in transitions if window_start < t.at <= now)
    )
    snoozed = {s.key: s for s in snoozes if s.until > now}
    attention: list[AttentionItem] = []
    suspended: list[SuspendedItem] = []
    hidden = 0
    total = HealthCounts()
    for status in clusters:
        total = total + status.counts
        items, hidden_here = _attention(status, snoozed, failing_since)
        attention += items
        hidden += hidden_here
        suspended += [
            SuspendedItem(
                status.cluster,
                o,
                overdue=o.suspension is not None
                and o.suspension.until is not None
                and o.suspension.until < now,
            )
            for o in _suspended(status)
        ]
    attention.sort(
        key=lambda i: (-len(i.dependents), kind_order(i.root.kind), i.cluster, i.root.name)
    )
    suspended.sort(key=lambda s: (not s.overdue, s.cluster, s.obj.namespace, s.obj.name))
    drifted = tuple(DriftItem(status.cluster, o) for status in clusters for o in _drifted(status))
    lines = tuple(
        ClusterLine(s.cluster, s.counts, s.freshness, s.unreadable, last_seen.get(s.cluster))
        for s in clusters
    )
    return Digest(
        environment=environment,
        now=now,
        since=window_start,
        clusters=lines,
        attention=tuple(attention),
        suspended=tuple(suspended),
        changes=_changes(window, actions, window_start, now, clusters),
        snoozed=hidden,
        counts=total,
        drifted=drifted,
    )


def _suspended(status: ClusterStatus) -> tuple[FluxObject, ...]:
    # Kept with the status while its objects are unchanged: a pass over every object less.
    return status.views.get("suspended", lambda: tuple(o for o in status.objects if o.suspended))


def _drifted(status: ClusterStatus) -> tuple[FluxObject, ...]:
    return status.views.get(
        "drifted", lambda: tuple(o for o in status.objects if o.drifted and not o.suspended)
    )


def _attention(
    status: ClusterStatus,
    snoozed: Mapping[ObjectKey, Snooze],
    failing_since: Mapping[ObjectKey, dt.datetime],
) -> tuple[list[AttentionItem], int]:
    items = []
    hidden = 0
    # Kept with the status while its objects are unchanged, as status answers keep them.
    for group in status.views.get("causes", lambda: tuple(group_failures(status.objects))):
        root = group.root
        key = (status.cluster, root.kind, root.namespace, root.name)
        snooze = snoozed.get(key)
        if snooze is not None and snooze.state == material_state(root):
            hidden += 1 + len(group.dependents)
            continue
        since = failing_since.get(key) or root.ready_since
        items.append(AttentionItem(status.cluster, root, group.dependents, since))
    return items, hidden


def _changes(
    window: ChangeWindow,
    actions: Sequence[ActionRecord],
    start: dt.datetime,
    end: dt.datetime,
    clusters: Sequence[ClusterStatus] = (),
) -> Changes:
    # Each cluster's objects by (kind, namespace, name), built once for every lookup below.
    current: dict[str, dict[tuple[str, str, str], FluxObject]] = {}
    for status in clusters:
        index = current.setdefault(status.cluster, {})
        for o in status.objects:
            index[(o.kind, o.namespace, o.name)] = o
    failures = window.failures
    flapping = {k for k, n in failures.items() if n >= FLAP_THRESHOLD}
    revisions: dict[str, dict[ObjectKey, str]] = defaultdict(dict)
    downtime: dict[ObjectKey, tuple[dt.datetime, dt.datetime]] = {}
    upgrades: dict[ObjectKey, tuple[str, str]] = {}
    for key, (old, new, at, down_since, _) in window.revisions.items():
        if key[1] == HELM_RELEASE.kind:
            upgrades[key] = (old, new)
            continue
        if down_since is not None:
            downtime[key] = (down_since, at)
        revisions[new][key] = old
    groups = tuple(
        sorted(
            (
                RevisionGroup(
                    new,
                    tuple(sorted({old for old in moved.values() if old})),
                    _in_kind_order(moved),
                    _link(new, moved, current),
                    _downtime([downtime[k] for k in moved if k in downtime]),
                )
                for new, moved in revisions.items()
            ),
            key=lambda g: (-len(g.objects), g.new),
        )
    )
    chart_upgrades: list[ChartUpgrade] = []
    failed_upgrades: dict[ObjectKey, str] = {}
    for key, (old, new) in sorted(upgrades.items()):
        if old == new:
            continue
        verdict = _upgrade_verdict(_find(current, key), new)
        if verdict is None:
            chart_upgrades.append(ChartUpgrade(key[0], key[2], key[3], old, new))
        elif verdict == "":
            chart_upgrades.append(ChartUpgrade(key[0], key[2], key[3], old, new, in_progress=True))
        else:
            failed_upgrades[key] = verdict
    new_failures = tuple(t for t in window.failing if _key(t) not in flapping)
    failing_keys = {_key(t) for t in new_failures}
    # A failed upgrade of a release that was failing already is still news: its chart failed.
    new_failures += tuple(
        Transition(
            environment, key[0], key[1], key[2], key[3], Change.FAILING, at,
            message=obj.message if (obj := _find(current, key)) else "", down_since=down_since,
        )
        for key, (_, _, at, down_since, environment) in (
            window.revisions.items() if failed_upgrades else ()
        )
        if key in failed_upgrades and key not in failing_keys and key not in flapping
    )  # fmt: skip
    recoveries = tuple(t for t in window.recovered if _key(t) not in flapping)
    return Changes(
        revisions=groups,
        chart_upgrades=tuple(chart_upgrades),
        new_failures=_by_root_cause(new_failures, current, failed_upgrades),
        recoveries=_by_root_cause(recoveries, current, {}),
        flapping=tuple(sorted((k, failures[k]) for k in flapping)),
        actions=tuple(a for a in actions if start < a.at <= end),
    )


def _downtime(
    windows: Sequence[tuple[dt.datetime, dt.datetime]],
) -> tuple[dt.datetime, dt.datetime] | None:
    return (min(w[0] for w in windows), max(w[1] for w in windows)) if windows else None


def _upgrade_verdict(release: FluxObject | None, new: str) -> str | None:
    """None: upgraded; "": still upgrading; otherwise what failed and what still runs.

    helm-controller records every release it observes in `status.history`, newest first
    (internal/reconcile/release.go). A failed upgrade adds a snapshot of the new chart with
    status `failed`, and Helm leaves the previous release `deployed`: it is still running.
    """
    if release is None or release.helm is None or not release.helm.history:
        return None
    latest = release.helm.history[0]
    if latest.chart_version != new:
        return None
    if latest.status == "failed":
        running = next((s for s in release.helm.history[1:] if s.status == "deployed"), None)
        if running is not None and running.chart_version != new:
            return f"{new} failed, {running.chart_version} still running"
        return f"{new} failed"
    if latest.status in _RAN and release.health is not Health.PROGRESSING:
        return None
    return ""


def _link(
    new: str, moved: Mapping[ObjectKey, str], current: Mapping[str, Mapping[Key3, FluxObject]]
) -> str | None:
    """The commit page of `new`, from a GitRepository that moved to it (or serves it now)."""
    repositories = [_find(current, k) for k in moved if k[1] == GIT_REPOSITORY.kind]
    if not repositories:
        clusters = {k[0] for k in moved}
        repositories = [
            o
            for cluster, index in current.items()
            if cluster in clusters
            for o in index.values()
            if o.kind == GIT_REPOSITORY.kind and o.full_revision == new
        ]
    for repository in repositories:
        if repository is not None and repository.url:
            link = commit_link(repository.url, new)
            if link is not None:
                return link
    return None


def _by_root_cause(
    found: Sequence[Transition],
    current: Mapping[str, Mapping[Key3, FluxObject]],
    failed_upgrades: Mapping[ObjectKey, str],
) -> tuple[ChangeItem, ...]:
    """`found` grouped as Needs attention groups failures: one item per root cause."""
    by_key = {_key(t): t for t in found}
    per_cluster: dict[str, set[Key3]] = defaultdict(set)
    for cluster, kind, namespace, name in by_key:
        per_cluster[cluster].add((kind, namespace, name))
    items: list[ChangeItem] = []
    grouped: set[ObjectKey] = set()
    for cluster, index in current.items():
        selected = per_cluster.get(cluster)
        if not selected:
            continue
        for group in group_selected(index, selected):
            root = group.root
            root_key = (cluster, root.kind, root.namespace, root.name)
            grouped.add(root_key)
            members: tuple[Transition, ...] = ()
            if group.dependents:  # most roots stand alone: nothing to build for them
                member_keys = [(cluster, d.kind, d.namespace, d.name) for d in group.dependents]
                grouped.update(member_keys)
                members = tuple(by_key[k] for k in member_keys)
            items.append(
                ChangeItem(cluster, by_key[root_key], members, failed_upgrades.get(root_key, ""))
            )
    if len(grouped) < len(by_key):
        # Objects no longer there (deleted since) stand alone.
        items += [
            ChangeItem(t.cluster, t, (), failed_upgrades.get(_key(t), ""))
            for t in found
            if _key(t) not in grouped
        ]
    items.sort(key=lambda i: (-len(i.dependents), i.root.at, i.cluster, i.root.name))
    return tuple(items)


def _find(current: Mapping[str, Mapping[Key3, FluxObject]], key: ObjectKey) -> FluxObject | None:
    index = current.get(key[0])
    return index.get(key[1:]) if index is not None else None


def _in_kind_order(keys: Iterable[ObjectKey]) -> tuple[ObjectKey, ...]:
    """Sources first, then by cluster, namespace and name."""
    order: dict[str, int] = {}
    for key in keys:
        if key[1] not in order:
            order[key[1]] = kind_order(key[1])
    return tuple(sorted(keys, key=lambda k: (order[k[1]], k[0], k[2], k[3])))


def _key(t: Transition) -> ObjectKey:
    return (t.cluster, t.kind, t.namespace, t.name)
