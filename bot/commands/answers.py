"""What a command answers, as data; each adapter (terminal, Slack) renders it its own way."""

from __future__ import annotations

import bisect
import datetime as dt
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import TypeVar

from bot.domain.causes import CauseGroup
from bot.domain.change_health import ChangeHealth
from bot.domain.digest import Digest
from bot.domain.events import FluxEvent
from bot.domain.fleet import (
    ClusterStatus,
    ClusterTarget,
    ClusterTrouble,
    FleetLayout,
    Freshness,
    HealthCounts,
    cluster_trouble,
    freshness_trouble,
)
from bot.domain.incidents import IncidentRecord
from bot.domain.posture import Finding, PosturePolicy
from bot.domain.readout import state_since
from bot.domain.rollout import Deployed, SourceRollout
from bot.domain.status import FluxObject, Health, ObjectRef
from bot.domain.tree import TreeNode

_T = TypeVar("_T")


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True, slots=True)
class ClusterReport:
    """One cluster in a status answer: counts over everything asked about, rows to show."""

    # Every object in the question's scope (its kind and cluster), for the counts.
    status: ClusterStatus
    # What to list, failures first: the scope, narrowed further by --failing.
    shown: tuple[FluxObject, ...]
    # The failing objects grouped by root cause: each root with what fails because of it.
    causes: tuple[CauseGroup, ...] = ()
    # What is deployed: the root source's revision and how many objects applied it.
    deployed: Deployed | None = None
    # Set when `shown` is the same for every report of this status with this key: renderers
    # may then keep what they derive from it in the status's views (see StatusViews).
    view_key: Hashable | None = None
    # Each dependent's root, by (kind, namespace, name): asked for every listed row.
    _roots: dict[tuple[str, str, str], ObjectRef] = field(
        init=False, repr=False, compare=False, default_factory=dict
    )

    def __post_init__(self) -> None:
        for group in self.causes:
            for dependent in group.dependents:
                self._roots.setdefault(dependent.key, group.root.ref)

    def derived(self, name: str, compute: Callable[[], _T]) -> _T:
        """`compute()`, kept with the status while its objects are unchanged (when allowed)."""
        if self.view_key is None:
            return compute()
        return self.status.views.get((name, self.view_key), compute)

    def shown_in(self, health: Health) -> tuple[FluxObject, ...]:
        """The listed objects of one health group, in listing order."""
        return self.derived("by-health", self._by_health).get(health, ())

    def stuck_count(self, now: dt.datetime) -> int:
        """Objects in the scope progressing past their controller's timeout at `now`."""
        return bisect.bisect_left(self._deadlines()[1], now)

    def is_stuck(self, obj: FluxObject, now: dt.datetime) -> bool:
        """`readout.is_stuck(obj, now)` for an object of this cluster, from kept deadlines."""
        deadline = self._deadlines()[0].get(obj.key)
        return deadline is not None and now > deadline

    def _deadlines(self) -> tuple[dict[tuple[str, str, str], dt.datetime], list[dt.datetime]]:
        # When each progressing object becomes stuck (`readout.is_stuck`: in its state longer
        # than its timeout), by key and in order: fixed while the objects are unchanged.
        return self.status.views.get("stuck-deadlines", self._stuck_deadlines)

    def _stuck_deadlines(
        self,
    ) -> tuple[dict[tuple[str, str, str], dt.datetime], list[dt.datetime]]:
        deadlines = {}
        for obj in self.status.objects:
            if obj.health is Health.PROGRESSING and obj.timeout is not None:
                since = state_since(obj)
                if since is not None:
                    deadlines[obj.key] = since + obj.timeout
        return deadlines, sorted(deadlines.values())

    def _by_health(self) -> dict[Health, tuple[FluxObject, ...]]:
        groups: dict[Health, list[FluxObject]] = {}
        for obj in self.shown:
            groups.setdefault(obj.health, []).append(obj)
        return {health: tuple(objects) for health, objects in groups.items()}

    @property
    def trouble(self) -> ClusterTrouble | None:
        """Whether the cluster is unreadable, stale or syncing."""
        return cluster_trouble(self.status)

    def root_cause(self, obj: FluxObject) -> ObjectRef | None:
        """The object `obj` fails because of, when it is not its own root."""
        return self._roots.get(obj.key)

    @property
    def environment(self) -> str:
        """The cluster's environment."""
        return self.status.environment

    @property
    def cluster(self) -> str:
        """The cluster's name."""
        return self.status.cluster

    @property
    def counts(self) -> HealthCounts:
        """Objects per health group, over the whole scope."""
        return self.status.counts


@dataclass(frozen=True, slots=True)
class EnvironmentReport:
    """The status of one environment: each cluster's objects, failures first."""

    name: str
    clusters: tuple[ClusterReport, ...]

    @property
    def troubles(self) -> list[ClusterTrouble]:
        """Clusters that could not be read, are stale or still syncing, in cluster order."""
        return [t for c in self.clusters if (t := c.trouble) is not None]

    @property
    def counts(self) -> HealthCounts:
        """Objects per health group across the environment."""
        total = HealthCounts()
        for cluster in self.clusters:
            total = total + cluster.counts
        return total


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """Answer to `status`: one report per environment asked about."""

    environments: tuple[EnvironmentReport, ...]
    # What was counted, e.g. "Flux objects" or "HelmReleases".
    scope: str
    # Whether only failing objects are listed (counts still cover the whole scope).
    failing_only: bool = False
    # When the answer was made: ages and "stuck" are measured from here.
    now: dt.datetime = field(default_factory=_now)

    @property
    def clusters(self) -> list[ClusterReport]:
        """Every cluster of every environment in the answer."""
        return [c for env in self.environments for c in env.clusters]


@dataclass(frozen=True, slots=True)
class ObjectMatch:
    """One object found by `get`, with the cluster it lives in."""

    environment: str
    cluster: str
    object: FluxObject
    # Objects in the same cluster that reference this one (dependsOn, sourceRef, owner).
    dependents: tuple[FluxObject, ...]
    # Recent Events about the object, newest first, and why none when they could not be read.
    events: tuple[FluxEvent, ...] = ()
    events_note: str = ""
    freshness: Freshness | None = None
    # Failing objects that fail because of this one (it is their root cause).
    blocked: tuple[FluxObject, ...] = ()

    @property
    def trouble(self) -> ClusterTrouble | None:
        """Whether the match comes from a stale or syncing cluster."""
        if self.freshness is None:
            return None
        return freshness_trouble(ClusterTarget(self.environment, self.cluster), self.freshness)


@dataclass(frozen=True, slots=True)
class ObjectAnswer:
    """Answer to `get`: every match, and clusters that could not be searched."""

    kind: str
    name: str
    namespace: str | None
    # Worst first: failing, progressing, suspended, ready.
    matches: tuple[ObjectMatch, ...]
    unreadable: tuple[ClusterStatus, ...]
    now: dt.datetime = field(default_factory=_now)
    # Close names of that kind, when nothing matched.
    suggestions: tuple[str, ...] = ()

    @property
    def troubles(self) -> list[ClusterTrouble]:
        """Clusters not searched, then matches from stale clusters."""
        out = [t for s in self.unreadable if (t := cluster_trouble(s)) is not None]
        return out + [t for m in self.matches if (t := m.trouble) is not None]


@dataclass(frozen=True, slots=True)
class TreeMatch:
    """One Kustomization or HelmRelease found by `tree`, with what it manages."""

    environment: str
    cluster: str
    tree: TreeNode
    freshness: Freshness | None = None


@dataclass(frozen=True, slots=True)
class TreeAnswer:
    """Answer to `tree`: the tree under every match, and clusters that could not be searched."""

    kind: str
    name: str
    namespace: str | None
    matches: tuple[TreeMatch, ...]
    unreadable: tuple[ClusterStatus, ...]


@dataclass(frozen=True, slots=True)
class DigestAnswer:
    """Answer to `digest`: a preview of the environment's digest."""

    digest: Digest


@dataclass(frozen=True, slots=True)
class IncidentsAnswer:
    """Answer to `incidents`: open incidents, oldest first, or why they are not known."""

    environments: tuple[str, ...]
    incidents: tuple[IncidentRecord, ...]
    # Set when this fluxbot keeps no incidents (no history store, or none enabled).
    unavailable: str = ""


@dataclass(frozen=True, slots=True)
class EnvsAnswer:
    """Answer to `envs`: the fleet's layout."""

    layout: FleetLayout
    # How current each cluster's data is, where the reader knows (the watch cache does).
    freshness: Mapping[ClusterTarget, Freshness] = field(default_factory=dict)
    now: dt.datetime = field(default_factory=_now)

    def trouble(self, target: ClusterTarget) -> ClusterTrouble | None:
        """The cluster's trouble, if its freshness tells of one."""
        fresh = self.freshness.get(target)
        return freshness_trouble(target, fresh) if fresh is not None else None

    @property
    def troubles(self) -> list[ClusterTrouble]:
        """Every cluster that is stale or syncing, in layout order."""
        return [t for target in self.layout.targets() if (t := self.trouble(target)) is not None]


@dataclass(frozen=True, slots=True)
class HelpAnswer:
    """Usage help, with what was wrong with the input when that is why it is shown."""

    text: str
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """A request that names something that does not exist, with the names that do."""

    message: str
    choices: tuple[str, ...] = ()
    # The valid names closest to what was typed ("did you mean").
    suggestions: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class RolloutAnswer:
    """Answer to `rollout`: each source across environments in promotion order."""

    sources: tuple[SourceRollout, ...]
    # The revision asked about (`--revision`), if any.
    revision: str | None = None
    # Whether one source was asked for (details), or the fleet's overview.
    detailed: bool = False
    # Clusters that could not be read or are stale, for the headline.
    troubles: tuple[ClusterTrouble, ...] = ()
    now: dt.datetime = field(default_factory=_now)


@dataclass(frozen=True, slots=True)
class AuditedEnvironment:
    """One environment's policy and the findings against it."""

    name: str
    tier: str
    policy: PosturePolicy
    findings: tuple[Finding, ...]


@dataclass(frozen=True, slots=True)
class AuditAnswer:
    """Answer to `audit`: per environment, the objects whose failure handling falls short."""

    environments: tuple[AuditedEnvironment, ...]
    troubles: tuple[ClusterTrouble, ...] = ()
    now: dt.datetime = field(default_factory=_now)

    @property
    def findings(self) -> list[Finding]:
        """Every finding, environment by environment."""
        return [f for env in self.environments for f in env.findings]


@dataclass(frozen=True, slots=True)
class ReportAnswer:
    """Answer to `report`: an environment's change health from the history store."""

    report: ChangeHealth


Answer = (
    StatusAnswer | ObjectAnswer | TreeAnswer | DigestAnswer | IncidentsAnswer | EnvsAnswer
    | HelpAnswer | ErrorAnswer | RolloutAnswer | AuditAnswer | ReportAnswer
)  # fmt: skip
