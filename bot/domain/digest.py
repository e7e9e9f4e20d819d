"""Compose an environment's digest: what is broken and why, what changed, nothing else.

Failing objects are grouped by root cause: a failing source and the Kustomizations and
HelmReleases that fail because of it (through `sourceRef` or `dependsOn`) are one item.
Changes since the last digest come from recorded transitions and actions. Composing is pure:
the caller gathers current status and history, this decides what earns a line.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.domain.causes import group_failures
from bot.domain.fleet import CacheState, ClusterProblem, ClusterStatus, Freshness, HealthCounts
from bot.domain.history import ActionRecord, ObjectKey, Snooze
from bot.domain.kinds import HELM_RELEASE, kind_order
from bot.domain.posture import Finding
from bot.domain.remediation import material_state
from bot.domain.status import FluxObject
from bot.domain.transitions import Change, Transition

# An object that failed this many times in one digest window is flapping, not news each time.
FLAP_THRESHOLD: Final = 3
# Without a previous digest, "changes" covers the last day.
FIRST_WINDOW: Final = dt.timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ClusterLine:
    """One cluster's one-line summary."""

    cluster: str
    counts: HealthCounts
    freshness: Freshness | None
    unreadable: ClusterProblem | None


@dataclass(frozen=True, slots=True)
class AttentionItem:
    """One root cause: the failing object at the top, and what fails because of it."""

    cluster: str
    root: FluxObject
    dependents: tuple[FluxObject, ...]
    since: dt.datetime | None


@dataclass(frozen=True, slots=True)
class SuspendedItem:
    """A suspended object, and whether its suspension outlived its announced end."""

    cluster: str
    obj: FluxObject
    overdue: bool


@dataclass(frozen=True, slots=True)
class RevisionGroup:
    """Objects that moved to the same revision."""

    new: str
    old: tuple[str, ...]
    objects: tuple[ObjectKey, ...]


@dataclass(frozen=True, slots=True)
class ChartUpgrade:
    """A HelmRelease that moved to another chart version."""

    cluster: str
    namespace: str
    name: str
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class Changes:
    """What happened since the last digest."""

    revisions: tuple[RevisionGroup, ...] = ()
    chart_upgrades: tuple[ChartUpgrade, ...] = ()
    new_failures: tuple[Transition, ...] = ()
    recoveries: tuple[Transition, ...] = ()
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
            + len(self.new_failures)
            + len(self.recoveries)
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
            not self.attention and not self.unreadable and not self.suspended and self.changes.empty
        )


def compose(
    environment: str,
    clusters: Sequence[ClusterStatus],
    transitions: Sequence[Transition],
    actions: Sequence[ActionRecord],
    snoozes: Sequence[Snooze],
    failing_since: Mapping[ObjectKey, dt.datetime],
    now: dt.datetime,
    since: dt.datetime | None,
) -> Digest:
    """The digest of `environment` at `now`, covering changes after `since`."""
    window_start = since or now - FIRST_WINDOW
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
            for o in status.objects
            if o.suspended
        ]
    attention.sort(
        key=lambda i: (-len(i.dependents), kind_order(i.root.kind), i.cluster, i.root.name)
    )
    suspended.sort(key=lambda s: (not s.overdue, s.cluster, s.obj.namespace, s.obj.name))
    lines = tuple(ClusterLine(s.cluster, s.counts, s.freshness, s.unreadable) for s in clusters)
    return Digest(
        environment=environment,
        now=now,
        since=window_start,
        clusters=lines,
        attention=tuple(attention),
        suspended=tuple(suspended),
        changes=_changes(transitions, actions, window_start, now),
        snoozed=hidden,
        counts=total,
    )


def _attention(
    status: ClusterStatus,
    snoozed: Mapping[ObjectKey, Snooze],
    failing_since: Mapping[ObjectKey, dt.datetime],
) -> tuple[list[AttentionItem], int]:
    items = []
    hidden = 0
    for group in group_failures(status.objects):
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
    transitions: Sequence[Transition],
    actions: Sequence[ActionRecord],
    start: dt.datetime,
    end: dt.datetime,
) -> Changes:
    window = [t for t in transitions if start < t.at <= end]
    failures = Counter(_key(t) for t in window if t.change is Change.FAILING)
    flapping = {k for k, n in failures.items() if n >= FLAP_THRESHOLD}
    revisions: dict[str, dict[ObjectKey, str]] = defaultdict(dict)
    firsts: dict[ObjectKey, str] = {}
    upgrades: dict[ObjectKey, tuple[str, str]] = {}
    for t in window:
        if t.change is not Change.REVISION:
            continue
        key = _key(t)
        if t.kind == HELM_RELEASE.kind:
            old = upgrades[key][0] if key in upgrades else t.old
            upgrades[key] = (old, t.new)
            continue
        firsts.setdefault(key, t.old)
        for rev_objects in revisions.values():
            rev_objects.pop(key, None)
        revisions[t.new][key] = firsts[key]
    groups = tuple(
        sorted(
            (
                RevisionGroup(
                    new,
                    tuple(sorted({old for old in moved.values() if old})),
                    tuple(sorted(moved)),
                )
                for new, moved in revisions.items()
                if moved
            ),
            key=lambda g: (-len(g.objects), g.new),
        )
    )
    chart_upgrades = tuple(
        ChartUpgrade(k[0], k[2], k[3], old, new)
        for k, (old, new) in sorted(upgrades.items())
        if old != new
    )
    new_failures = _latest_per_object(
        t for t in window if t.change is Change.FAILING and _key(t) not in flapping
    )
    recoveries = _latest_per_object(
        t for t in window if t.change is Change.RECOVERED and _key(t) not in flapping
    )
    return Changes(
        revisions=groups,
        chart_upgrades=chart_upgrades,
        new_failures=new_failures,
        recoveries=recoveries,
        flapping=tuple(sorted((k, failures[k]) for k in flapping)),
        actions=tuple(a for a in actions if start < a.at <= end),
    )


def _latest_per_object(transitions: Iterable[Transition]) -> tuple[Transition, ...]:
    latest: dict[ObjectKey, Transition] = {}
    for t in transitions:
        latest[_key(t)] = t
    return tuple(sorted(latest.values(), key=lambda t: t.at))


def _key(t: Transition) -> ObjectKey:
    return (t.cluster, t.kind, t.namespace, t.name)
