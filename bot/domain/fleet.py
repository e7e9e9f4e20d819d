"""Fleet views: environments of clusters, what each cluster reported, and how to order it."""

from __future__ import annotations

import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from bot.domain.events import FluxEvent
from bot.domain.kinds import kind_order
from bot.domain.readout import duration_words
from bot.domain.status import FluxObject, Health, ObjectRef

if TYPE_CHECKING:
    # Only a type here: the posture module builds on this one.
    from bot.domain.posture import PosturePolicy


class ProblemKind(StrEnum):
    """Why a cluster, or some kinds in it, could not be read."""

    CONFIG = "config"
    UNREACHABLE = "unreachable"
    TIMEOUT = "timeout"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    FLUX_MISSING = "flux-missing"
    API_ERROR = "api-error"


@dataclass(frozen=True, slots=True)
class ClusterProblem:
    """A read failure, in words a user understands, with the raw cause kept for logs."""

    kind: ProblemKind
    message: str
    detail: str = ""
    # The Flux kinds it affects; empty when the whole cluster could not be read.
    kinds: tuple[str, ...] = ()

    @property
    def whole_cluster(self) -> bool:
        """Whether nothing at all could be read from the cluster."""
        return not self.kinds


class CacheState(StrEnum):
    """How current a cluster's data is."""

    SYNCING = "syncing"
    LIVE = "live"
    STALE = "stale"


@dataclass(frozen=True, slots=True)
class Freshness:
    """How current the data of a cluster is: live, still syncing, or stale since a moment."""

    state: CacheState
    since: dt.datetime | None = None
    error: str = ""
    # Why the data is stale, when the cache knows (a 401, a timeout, ...).
    problem: ProblemKind | None = None
    # False when nothing was ever read from the cluster: there is no last known state.
    ever_read: bool = True


@dataclass(frozen=True, slots=True)
class ClusterTarget:
    """One cluster of one environment, as named in the configuration."""

    environment: str
    cluster: str


@dataclass(frozen=True, slots=True)
class HealthCounts:
    """How many objects are in each health group."""

    failing: int = 0
    progressing: int = 0
    suspended: int = 0
    ready: int = 0

    @property
    def total(self) -> int:
        """All objects counted."""
        return self.failing + self.progressing + self.suspended + self.ready

    @classmethod
    def of(cls, objects: Iterable[FluxObject]) -> HealthCounts:
        """Count `objects` by health."""
        counts = Counter(o.health for o in objects)
        return cls(
            failing=counts[Health.FAILING],
            progressing=counts[Health.PROGRESSING],
            suspended=counts[Health.SUSPENDED],
            ready=counts[Health.READY],
        )

    def __add__(self, other: HealthCounts) -> HealthCounts:
        return HealthCounts(
            self.failing + other.failing,
            self.progressing + other.progressing,
            self.suspended + other.suspended,
            self.ready + other.ready,
        )


_T = TypeVar("_T")


class StatusViews:
    """What queries derive from one unchanged set of objects (counts, order, causes), kept.

    A reader that holds objects in memory (the watch cache) hands out the same StatusViews
    until the objects change, so a burst of questions about an unchanged cluster sorts and
    groups it once; every other reader gets a fresh one per read.
    """

    __slots__ = ("_lock", "_memo")

    def __init__(self, counts: HealthCounts | None = None) -> None:
        self._lock = threading.Lock()
        self._memo: dict[Hashable, Any] = {}
        if counts is not None:
            self._memo["counts"] = counts

    def get(self, key: Hashable, compute: Callable[[], _T]) -> _T:
        """The value kept under `key`, computed once (concurrent askers may both compute)."""
        try:
            return self._memo[key]  # type: ignore[no-any-return]
        except KeyError:
            pass
        value = compute()
        with self._lock:
            return self._memo.setdefault(key, value)  # type: ignore[no-any-return]


@dataclass(frozen=True, slots=True)
class ClusterStatus:
    """Everything one cluster reported: its Flux objects and any problems reading it."""

    environment: str
    cluster: str
    objects: tuple[FluxObject, ...]
    problems: tuple[ClusterProblem, ...] = ()
    read_at: dt.datetime | None = None
    # None when read straight from the API server just now; set when answered from the cache.
    freshness: Freshness | None = None
    # Derived views of `objects`; shared by reads of an unchanged cluster (see StatusViews).
    views: StatusViews = field(default_factory=StatusViews, compare=False, repr=False)

    @property
    def unreadable(self) -> ClusterProblem | None:
        """The problem that kept the whole cluster from being read, if any."""
        return next((p for p in self.problems if p.whole_cluster), None)

    @property
    def counts(self) -> HealthCounts:
        """Objects per health group."""
        return self.views.get("counts", lambda: HealthCounts.of(self.objects))


# How each read failure is named where there is room for a word or two.
PROBLEM_WORDS: dict[ProblemKind, str] = {
    ProblemKind.CONFIG: "configuration",
    ProblemKind.UNREACHABLE: "unreachable",
    ProblemKind.TIMEOUT: "timed out",
    ProblemKind.UNAUTHORIZED: "401",
    ProblemKind.FORBIDDEN: "403",
    ProblemKind.FLUX_MISSING: "no Flux",
    ProblemKind.API_ERROR: "API error",
}


class TroubleState(StrEnum):
    """Why a cluster's objects cannot be taken at face value."""

    UNREADABLE = "unreadable"
    STALE = "stale"
    SYNCING = "syncing"


@dataclass(frozen=True, slots=True)
class ClusterTrouble:
    """A cluster whose answer is missing or not current, with a short cause and since when."""

    environment: str
    cluster: str
    state: TroubleState
    # A word or two: `401`, `unreachable`, `timed out`; the full message for details.
    cause: str
    message: str
    since: dt.datetime | None

    def describe(self, now: dt.datetime) -> str:
        """`401 for 7 h`, or just the cause when since when is unknown."""
        if self.since is None:
            return self.cause
        return f"{self.cause} for {_age(now - self.since)}"


def cluster_trouble(status: ClusterStatus) -> ClusterTrouble | None:
    """Unreadable (nothing could be read), stale (last known state), still syncing, or None."""
    fresh = status.freshness
    whole = status.unreadable
    since = fresh.since if fresh is not None and fresh.state is CacheState.STALE else None
    if whole is not None:
        return ClusterTrouble(
            status.environment,
            status.cluster,
            TroubleState.UNREADABLE,
            PROBLEM_WORDS[whole.kind],
            whole.message,
            since,
        )
    if fresh is None or fresh.state is CacheState.LIVE:
        return None
    if fresh.state is CacheState.SYNCING:
        return ClusterTrouble(
            status.environment, status.cluster, TroubleState.SYNCING, "syncing", "", None
        )
    cause = PROBLEM_WORDS[fresh.problem] if fresh.problem else "not updating"
    state = TroubleState.STALE if fresh.ever_read else TroubleState.UNREADABLE
    return ClusterTrouble(
        status.environment, status.cluster, state, cause, fresh.error, fresh.since
    )


def freshness_trouble(target: ClusterTarget, fresh: Freshness) -> ClusterTrouble | None:
    """The trouble a freshness alone tells of (for answers that list clusters, not objects)."""
    return cluster_trouble(ClusterStatus(target.environment, target.cluster, (), (), None, fresh))


def _age(delta: dt.timedelta) -> str:
    return duration_words(max(delta, dt.timedelta(0)))


def sort_key(obj: FluxObject) -> tuple[int, int, str, str]:
    """Failing first, then progressing, suspended, ready; then kind, namespace, name."""
    return (obj.health.rank, kind_order(obj.kind), obj.namespace, obj.name)


def sort_objects(objects: Iterable[FluxObject]) -> list[FluxObject]:
    """`objects` in attention order (see `sort_key`)."""
    return sorted(objects, key=sort_key)


@dataclass(frozen=True, slots=True)
class ObjectFilter:
    """Which objects a status query keeps."""

    kinds: frozenset[str] = field(default_factory=frozenset)
    failing_only: bool = False
    namespace: str | None = None
    name: str | None = None

    def matches(self, obj: FluxObject) -> bool:
        """Whether `obj` passes every criterion given."""
        return (
            (not self.kinds or obj.kind in self.kinds)
            and (not self.failing_only or obj.health is Health.FAILING)
            and (self.namespace is None or obj.namespace == self.namespace)
            and (self.name is None or obj.name == self.name)
        )

    def apply(self, status: ClusterStatus) -> ClusterStatus:
        """`status` with only the matching objects, and only the problems that still matter."""
        if not (self.kinds or self.failing_only or self.namespace or self.name):
            return status
        problems = tuple(
            p
            for p in status.problems
            if p.whole_cluster or not self.kinds or self.kinds.intersection(p.kinds)
        )
        objects = tuple(o for o in status.objects if self.matches(o))
        return ClusterStatus(
            environment=status.environment,
            cluster=status.cluster,
            objects=objects,
            problems=problems,
            read_at=status.read_at,
            freshness=status.freshness,
            # The same objects (a reader that already kept only these kinds): same views.
            views=status.views if len(objects) == len(status.objects) else StatusViews(),
        )


@runtime_checkable
class EventReader(Protocol):
    """Reads the recent Kubernetes Events of one object; not every reader can."""

    def events(self, target: ClusterTarget, ref: ObjectRef) -> list[FluxEvent]:
        """Events about `ref` in `target`, newest first; raises EventsUnavailable on failure."""
        ...


class EventsUnavailable(Exception):
    """Events could not be read; the message says why, in words."""


@runtime_checkable
class FreshnessReporter(Protocol):
    """Knows how current each cluster's data is (the watch cache does)."""

    def freshness(self) -> dict[ClusterTarget, Freshness]:
        """Every cluster's freshness."""
        ...


class FleetReader(Protocol):
    """Reads the current status of clusters; every adapter (live, files, demo) provides one."""

    def read(
        self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
    ) -> list[ClusterStatus]:
        """Status of each target, in the order given; a failing cluster yields problems."""
        ...


@dataclass(frozen=True, slots=True)
class EnvironmentLayout:
    """An environment as people know it: name, tier, Slack channel, cluster names."""

    name: str
    tier: str
    channel: str | None
    clusters: tuple[str, ...]
    # Other names people use for it (`prod` for `production`).
    aliases: tuple[str, ...] = ()
    # What the posture audit requires here; None: the tier's default (bot.domain.posture).
    posture: PosturePolicy | None = None


@dataclass(frozen=True, slots=True)
class FleetLayout:
    """The environments and clusters of the fleet, from configuration or a demo."""

    environments: tuple[EnvironmentLayout, ...]

    @property
    def names(self) -> list[str]:
        """Environment names in configuration order."""
        return [e.name for e in self.environments]

    def environment(self, name: str) -> EnvironmentLayout | None:
        """The environment called `name`, if any."""
        return next((e for e in self.environments if e.name == name), None)

    def resolve(self, name: str) -> EnvironmentLayout | None:
        """The environment called `name` or known by it as an alias (case-insensitive)."""
        wanted = name.lower()
        return next(
            (
                e
                for e in self.environments
                if e.name.lower() == wanted or wanted in (a.lower() for a in e.aliases)
            ),
            None,
        )

    def environment_for_channel(self, channel: str) -> EnvironmentLayout | None:
        """The environment whose Slack channel this is, if any."""
        return next((e for e in self.environments if e.channel == channel), None)

    def targets(self, environment: str | None = None) -> list[ClusterTarget]:
        """Every cluster of `environment`, or of the whole fleet when None."""
        return [
            ClusterTarget(e.name, c)
            for e in self.environments
            if environment is None or e.name == environment
            for c in e.clusters
        ]
