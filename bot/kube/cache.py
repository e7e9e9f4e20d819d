"""A live, memory-lean cache of Flux status per cluster: list, then watch (informer style).

Each cluster gets a supervisor thread that connects and discovers the served Flux versions,
then one watcher thread per served kind: it lists, watches from the returned
resourceVersion, resumes after a dropped stream, relists on 410 Gone, backs off with jitter
after errors, and relists periodically (resync). Only the parsed status model is kept, never
whole objects. Every change is compared with what was there before and the transitions are
handed to subscribers. Status queries read memory only; each answer carries the cluster's
freshness (syncing, live, or stale since when and why) so stale data is never taken for live.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from kubernetes import client as k8s

from bot.collector import collection_paused
from bot.config import CacheSettings, ClusterConfig, FluxbotConfig, KubernetesSettings
from bot.domain.events import FluxEvent
from bot.domain.fleet import (
    CacheState,
    ClusterProblem,
    ClusterStatus,
    ClusterTarget,
    EventsUnavailable,
    Freshness,
    HealthCounts,
    ProblemKind,
    StatusViews,
)
from bot.domain.kinds import FLUX_GROUPS, KINDS, FluxKind
from bot.domain.status import FluxObject, Health, ObjectRef, parse_flux_object
from bot.domain.transitions import Listing, Transition, settled_health, transitions
from bot.kube.clients import build_api_client
from bot.kube.discovery import ServedKinds, discover
from bot.kube.errors import describe_error
from bot.kube.events import read_events
from bot.kube.listing import list_objects
from bot.kube.listwatch import Backoff, ListWatch, WatchLoop
from bot.observability import metrics

log = logging.getLogger(__name__)

Subscriber = Callable[[Transition], None]
Key = tuple[str, str, str]

# Problems that concern one kind and will not heal by retrying sooner; they do not make the
# rest of the cluster's data stale.
_PER_KIND: Final = frozenset({ProblemKind.FORBIDDEN, ProblemKind.FLUX_MISSING})


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ClusterUnavailable(Exception):
    """The cluster cannot be written to now; the message says why."""


@dataclass(frozen=True, slots=True)
class ClusterConnection:
    """What a writer needs to act on one cluster."""

    api_client: Any
    served: ServedKinds
    timeout: tuple[float, float]


@dataclass(slots=True)
class _KindHealth:
    synced: bool = False
    problem: ClusterProblem | None = None
    since: dt.datetime | None = None


class ClusterCache:
    """The cached Flux status of one cluster, kept current by watcher threads."""

    def __init__(
        self,
        target: ClusterTarget,
        cluster: ClusterConfig,
        kubernetes: KubernetesSettings,
        settings: CacheSettings,
        emit: Subscriber,
        listed: Callable[[Listing], None] | None = None,
        list_slots: threading.Semaphore | None = None,
        settled: threading.Event | None = None,
    ) -> None:
        self.target = target
        # Set whenever this cluster may have stopped syncing (live, failed): wakes wait_synced.
        self._settling = settled or threading.Event()
        # Shared by every cluster of a FleetCache: how many listings run at once, fleet-wide.
        self.list_slots = list_slots or threading.Semaphore(settings.max_parallel_lists)
        self._listed = listed
        self._cluster = cluster
        self._kubernetes = kubernetes
        self._settings = settings
        self._emit = emit
        self._lock = threading.Lock()
        # Signalled on every change, for callers following one object (action outcomes).
        self._changed = threading.Condition(self._lock)
        # Told (without arguments, under the lock: keep them quick) after every change.
        self.listeners: list[Callable[[], None]] = []
        # Objects by kind, then (namespace, name): a listing replaces one kind without a scan.
        self._store: dict[str, dict[tuple[str, str], FluxObject]] = {}
        # The health an object last settled in (see settled_health), kept only where it is not
        # the object's own health (a progressing object that was failing or ready before):
        # one entry for a few percent of objects instead of one record per object.
        self._settled: dict[Key, Health] = {}
        # Objects per kind and health, kept as changes arrive: counting needs no scan.
        self._counts: dict[str, Counter[Health]] = {}
        # What status queries read, per kinds asked for, until the next change (see StatusViews).
        self._snapshots: dict[frozenset[str], tuple[tuple[FluxObject, ...], StatusViews]] = {}
        self._kinds: dict[str, _KindHealth] = {}
        self._cluster_problem: ClusterProblem | None = None
        self._problem_since: dt.datetime | None = None
        self._synced_at: dt.datetime | None = None
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._watchers: list[_KindWatcher] = []
        self._api_client: Any = None
        self.server = "?"
        self.served: ServedKinds | None = None
        # Whether this cluster still holds the collector's pause of its cold sync.
        self._pausing = False

    def _notify(self) -> None:
        """Wake whoever follows an object (the caller holds the lock)."""
        self._changed.notify_all()
        for listener in self.listeners:
            listener()

    # -- lifecycle --

    def start(self) -> None:
        """Connect, discover and start watching, in the background."""
        # Everything the cold sync allocates is either the cache itself or a listing freed
        # by reference counting: the cyclic collector stays off until this cluster is live
        # or has failed (see bot/collector.py).
        collection_paused.hold()
        self._pausing = True
        thread = threading.Thread(
            target=self._supervise, name=f"cache-{self.target.cluster}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every thread of this cluster and close its connections."""
        self._stop.set()
        with self._changed:
            self._end_cold_sync()
            self._notify()
        for watcher in list(self._watchers):
            watcher.interrupt()
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._api_client is not None:
            self._api_client.close()

    @property
    def api_client(self) -> Any:
        """The cluster's API client, once connected; None before."""
        return self._api_client

    @property
    def timeout(self) -> tuple[float, float]:
        """(connect, read) timeouts for ordinary requests."""
        return (
            self._kubernetes.connect_timeout_seconds,
            self._kubernetes.request_timeout_seconds,
        )

    def _supervise(self) -> None:
        backoff = Backoff(
            self._settings.backoff_initial_seconds, self._settings.backoff_max_seconds
        )
        while not self._stop.is_set():
            try:
                if self._api_client is None:
                    self._api_client = build_api_client(self._cluster, self._kubernetes)
                    self.server = self._api_client.configuration.host
                served = discover(self._api_client, self.timeout)
            except Exception as err:  # noqa: BLE001 - reported as this cluster's problem
                self._cluster_failed(describe_error(err, self.server, self.timeout[1]))
                self._stop.wait(backoff.next())
                continue
            if served.flux_installed:
                self._start_watchers(served)
                return
            self._cluster_failed(
                ClusterProblem(
                    ProblemKind.FLUX_MISSING,
                    "Flux is not installed: the cluster serves none of " + ", ".join(FLUX_GROUPS),
                )
            )
            # Flux may be installed later (a cluster being bootstrapped): look again.
            self._stop.wait(backoff.next())

    def _start_watchers(self, served: ServedKinds) -> None:
        """Follow every served Flux kind from this thread, until the cache stops.

        One thread per cluster, not per kind: a thread costs 40-60 KB of memory, and a fleet
        of 100 clusters would run 1,500 of them (see bot/kube/listwatch.py WatchLoop).
        """
        self.served = served
        with self._lock:
            self._cluster_problem = None
            for kind in KINDS:
                if served.version_of(kind) is not None:
                    self._kinds[kind.kind] = _KindHealth()
        for kind in KINDS:
            version = served.version_of(kind)
            if version is not None:
                self._watchers.append(
                    _KindWatcher(self, kind, version, self._api_client, self._settings)
                )
        WatchLoop([w.listwatch for w in self._watchers], self._stop).run()

    # -- state, called by watchers --

    @property
    def stopping(self) -> threading.Event:
        """Set when the cache is shutting down."""
        return self._stop

    def _end_cold_sync(self) -> None:
        # The caller holds the lock. Live, failed or stopping: the cold sync is over.
        self._settling.set()
        if self._pausing:
            self._pausing = False
            collection_paused.release()

    def _cluster_failed(self, problem: ClusterProblem) -> None:
        metrics.record_cluster_error(self.target.environment, self.target.cluster, problem.kind)
        with self._lock:
            self._end_cold_sync()
            self._cluster_problem = problem
            self._problem_since = self._problem_since or _now()
        log.info("cluster %s: %s", self.target.cluster, problem.detail or problem.message)

    def kind_failed(self, kind: str, problem: ClusterProblem) -> None:
        """Record that watching `kind` failed; the watcher will retry."""
        metrics.record_cluster_error(self.target.environment, self.target.cluster, problem.kind)
        with self._lock:
            health = self._kinds.setdefault(kind, _KindHealth())
            if health.problem is None:
                health.since = _now()
            health.problem = problem
            if problem.kind not in _PER_KIND:
                self._end_cold_sync()
            self._note_synced(_now())
        log.info("cluster %s %s: %s", self.target.cluster, kind, problem.detail or problem.message)

    def replace_kind(self, kind: str, objects: Iterable[FluxObject]) -> None:
        """Install a fresh listing of `kind`, emitting what changed since the last one."""
        at = _now()
        fresh = {(o.namespace, o.name): o for o in objects}
        emitted: list[Transition] = []
        with self._lock:
            health = self._kinds.setdefault(kind, _KindHealth())
            first = not health.synced
            old = self._store.get(kind, {})
            gone = old.keys() - fresh.keys()
            changed = bool(gone)
            for namespace, name in gone:
                key = (kind, namespace, name)
                obj = old[namespace, name]
                emitted += self._diff(obj, None, self._settled_health(key, obj), at)
                self._settled.pop(key, None)
            kept: dict[tuple[str, str], FluxObject] = {}
            compared = fresh
            if first and not old:
                # The cold sync: nothing to compare with, and every object has settled in its
                # own health.
                kept, compared, changed = fresh, {}, True
            for short_key, listed in compared.items():
                previous = old.get(short_key)
                key = (kind, *short_key)
                previous_settled = self._settled_health(key, previous)
                if not first:
                    emitted += self._diff(previous, listed, previous_settled, at)
                if previous is not None and previous == listed:
                    # Unchanged: keep the object answers already hold, not a copy of it.
                    current = previous
                else:
                    changed = True
                    current = listed
                kept[short_key] = current
                self._keep_settled(key, current, settled_health(previous_settled, current))
            self._store[kind] = kept
            self._counts[kind] = Counter(o.health for o in kept.values())
            if changed:
                # A periodic relist that found nothing new keeps what answers derived.
                self._snapshots.clear()
            health.synced = True
            health.problem = None
            health.since = None
            self._note_synced(at)
            self._notify()
            if not any(h.problem for h in self._kinds.values()):
                self._problem_since = None
        if first and self._listed is not None:
            # What changed while fluxbot was not watching is found against the history store.
            try:
                self._listed(
                    Listing(
                        self.target.environment, self.target.cluster, kind,
                        tuple(fresh.values()), at,
                    )
                )  # fmt: skip
            except Exception:
                log.exception("listing subscriber failed")
        self._publish(emitted)

    def _note_synced(self, at: dt.datetime) -> None:
        # Synced once every kind has listed, or cannot be listed for a reason retrying won't fix.
        if self._synced_at is None and all(
            h.synced or (h.problem and h.problem.kind in _PER_KIND) for h in self._kinds.values()
        ):
            self._synced_at = at
            self._end_cold_sync()

    def upsert(self, obj: FluxObject) -> None:
        """Apply one ADDED or MODIFIED watch event."""
        at = _now()
        key = obj.key
        with self._lock:
            objects = self._store.setdefault(obj.kind, {})
            old = objects.get((obj.namespace, obj.name))
            old_settled = self._settled_health(key, old)
            objects[obj.namespace, obj.name] = obj
            self._keep_settled(key, obj, settled_health(old_settled, obj))
            emitted = self._diff(old, obj, old_settled, at)
            if old != obj:
                self._count(old, -1)
                self._count(obj, +1)
                self._snapshots.clear()
            self._notify()
        self._publish(emitted)

    def remove(self, key: Key) -> None:
        """Apply one DELETED watch event."""
        at = _now()
        with self._lock:
            gone = self._store.get(key[0], {}).pop((key[1], key[2]), None)
            settled = self._settled_health(key, gone)
            self._settled.pop(key, None)
            emitted = self._diff(gone, None, settled, at) if gone is not None else []
            if gone is not None:
                self._count(gone, -1)
                self._snapshots.clear()
            self._notify()
        self._publish(emitted)

    def _settled_health(self, key: Key, obj: FluxObject | None) -> Health | None:
        # The caller holds the lock.
        return None if obj is None else self._settled.get(key, obj.health)

    def _keep_settled(self, key: Key, obj: FluxObject, settled: Health | None) -> None:
        # The caller holds the lock.
        if settled is None or settled is obj.health:
            self._settled.pop(key, None)
        else:
            self._settled[key] = settled

    def _count(self, obj: FluxObject | None, delta: int) -> None:
        if obj is not None:
            self._counts.setdefault(obj.kind, Counter())[obj.health] += delta

    def _snapshot(self, kinds: frozenset[str]) -> tuple[tuple[FluxObject, ...], StatusViews]:
        # The caller holds the lock. One tuple and one StatusViews per kinds asked for, kept
        # until the next change: answers about an unchanged cluster derive everything once.
        snapshot = self._snapshots.get(kinds)
        if snapshot is None:
            objects = tuple(
                obj
                for kind, by_name in self._store.items()
                if not kinds or kind in kinds
                for obj in by_name.values()
            )
            total: Counter[Health] = Counter()
            for kind, counted in self._counts.items():
                if not kinds or kind in kinds:
                    total.update(counted)
            counts = HealthCounts(
                failing=total[Health.FAILING],
                progressing=total[Health.PROGRESSING],
                suspended=total[Health.SUSPENDED],
                ready=total[Health.READY],
            )
            snapshot = self._snapshots[kinds] = (objects, StatusViews(counts))
        return snapshot

    def _diff(
        self,
        old: FluxObject | None,
        new: FluxObject | None,
        old_settled: Health | None,
        at: dt.datetime,
    ) -> list[Transition]:
        return transitions(self.target.environment, self.target.cluster, old, new, old_settled, at)

    def _publish(self, emitted: Sequence[Transition]) -> None:
        for transition in emitted:
            try:
                self._emit(transition)
            except Exception:
                log.exception("transition subscriber failed")

    # -- reading --

    def get(self, ref: ObjectRef) -> FluxObject | None:
        """The cached object, if any."""
        with self._lock:
            return self._store.get(ref.kind, {}).get((ref.namespace, ref.name))

    def wait_for(
        self, ref: ObjectRef, predicate: Callable[[FluxObject], bool], timeout: float
    ) -> FluxObject | None:
        """Wait for a watch event that makes `predicate` true for `ref`; None on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                obj = self._store.get(ref.kind, {}).get((ref.namespace, ref.name))
                if obj is not None and predicate(obj):
                    return obj
                left = deadline - time.monotonic()
                if left <= 0 or self._stop.is_set():
                    return None
                self._changed.wait(left)

    def listings(self) -> list[Listing]:
        """The cached objects of every kind listed so far, one listing per kind."""
        at = _now()
        with self._lock:
            return [
                Listing(
                    self.target.environment,
                    self.target.cluster,
                    kind,
                    tuple(self._store.get(kind, {}).values()),
                    at,
                )
                for kind, h in self._kinds.items()
                if h.synced
            ]

    def freshness(self) -> Freshness:
        """Whether this cluster's data is live, still syncing, or stale (since when, why)."""
        with self._lock:
            return self._freshness()

    def _freshness(self) -> Freshness:
        stale = [h for h in self._kinds.values() if h.problem and h.problem.kind not in _PER_KIND]
        ever_read = any(h.synced for h in self._kinds.values())
        if self._cluster_problem is not None:
            since = self._problem_since
            problem = self._cluster_problem
            return Freshness(CacheState.STALE, since, problem.message, problem.kind, ever_read)
        if stale:
            first = min(stale, key=lambda h: h.since or _now())
            assert first.problem is not None
            return Freshness(
                CacheState.STALE, first.since, first.problem.message, first.problem.kind, ever_read
            )
        if self._synced_at is None:
            return Freshness(CacheState.SYNCING)
        return Freshness(CacheState.LIVE, self._synced_at)

    def status(self, kinds: frozenset[str] = frozenset()) -> ClusterStatus:
        """What the cache knows of this cluster, with its freshness."""
        with self._lock:
            freshness = self._freshness()
            objects, views = self._snapshot(kinds)
            problems = [
                h.problem
                for kind, h in self._kinds.items()
                if h.problem and h.problem.kind in _PER_KIND and (not kinds or kind in kinds)
            ]
            ever_synced = any(h.synced for h in self._kinds.values())
            if not ever_synced:
                # Nothing to show: whatever keeps us from syncing is the whole-cluster problem.
                whole = self._cluster_problem or next(
                    (h.problem for h in self._kinds.values() if h.problem), None
                )
                if whole is not None:
                    problems = [
                        ClusterProblem(whole.kind, whole.message, whole.detail),
                        *problems,
                    ]
        return ClusterStatus(
            self.target.environment,
            self.target.cluster,
            objects,
            tuple(problems),
            read_at=_now(),
            freshness=freshness,
            views=views,
        )


class _KindWatcher:
    """List and watch one Flux kind in one cluster (in its cluster's WatchLoop), until the
    cache stops."""

    def __init__(
        self,
        cache: ClusterCache,
        kind: FluxKind,
        version: str,
        api_client: Any,
        settings: CacheSettings,
    ) -> None:
        self._cache = cache
        self._kind = kind
        self._version = version
        self._api = k8s.CustomObjectsApi(api_client)
        self._settings = settings
        self.listwatch = ListWatch(
            relist=self._list,
            list_call=functools.partial(
                self._api.list_cluster_custom_object, kind.group, version, kind.plural
            ),
            apply=self._apply,
            failed=self._failed,
            stop=cache.stopping,
            backoff=Backoff(settings.backoff_initial_seconds, settings.backoff_max_seconds),
            watch_timeout_seconds=settings.watch_timeout_seconds,
            connect_timeout=cache.timeout[0],
            resync_seconds=settings.resync_seconds,
        )

    def interrupt(self) -> None:
        """Wake the cluster's watch loop, to see that the cache stops."""
        self.listwatch.interrupt()

    def _failed(self, err: BaseException) -> None:
        problem = describe_error(
            err, self._cache.server, self._cache.timeout[1], kinds=(self._kind.kind,)
        )
        self._cache.kind_failed(self._kind.kind, problem)

    def _list(self) -> str:
        # A bounded number of listings are read and parsed at once, fleet-wide: the response
        # and its decoded JSON are the largest transient things the cache ever holds.
        with self._cache.list_slots:
            objects, version = list_objects(
                self._api, self._kind, self._version, self._cache.timeout
            )
        self._cache.replace_kind(self._kind.kind, objects)
        return version

    def _apply(self, event: Any, resource_version: str) -> str:
        if not isinstance(event, dict):
            return resource_version
        raw = event.get("object")
        if not isinstance(raw, dict):
            return resource_version
        metadata = raw.get("metadata") or {}
        new_version = str(metadata.get("resourceVersion") or resource_version)
        kind = event.get("type")
        if kind in ("ADDED", "MODIFIED"):
            self._cache.upsert(parse_flux_object(raw, self._kind.kind))
        elif kind == "DELETED":
            key = (self._kind.kind, str(metadata.get("namespace", "")), str(metadata.get("name")))
            self._cache.remove(key)
        return new_version


class FleetCache:
    """A FleetReader answered from memory, kept current by list+watch in every cluster."""

    def __init__(self, config: FluxbotConfig) -> None:
        self._subscribers: list[Subscriber] = []
        self._listing_subscribers: list[Callable[[Listing], None]] = []
        self._clusters: dict[tuple[str, str], ClusterCache] = {}
        list_slots = threading.Semaphore(config.cache.max_parallel_lists)
        self._settled = threading.Event()
        layout = config.layout()
        for target in layout.targets():
            self._clusters[(target.environment, target.cluster)] = ClusterCache(
                target,
                config.cluster(target),
                config.kubernetes,
                config.cache,
                self._emit,
                self._listed,
                list_slots,
                self._settled,
            )

    def subscribe(self, subscriber: Subscriber) -> None:
        """Call `subscriber` with every transition; it runs on a watcher thread, keep it quick."""
        self._subscribers.append(subscriber)

    def subscribe_listings(self, subscriber: Callable[[Listing], None]) -> None:
        """Call `subscriber` with the first listing of each kind in each cluster."""
        self._listing_subscribers.append(subscriber)

    def _listed(self, listing: Listing) -> None:
        for subscriber in self._listing_subscribers:
            subscriber(listing)

    def _emit(self, transition: Transition) -> None:
        for subscriber in self._subscribers:
            subscriber(transition)

    def start(self) -> FleetCache:
        """Start syncing every cluster in the background."""
        for cluster in self._clusters.values():
            cluster.start()
        return self

    def stop(self) -> None:
        """Stop every cluster's threads."""
        for cluster in self._clusters.values():
            cluster.stop()

    def close(self) -> None:
        """Same as stop(); lets the cache stand where a reader is closed."""
        self.stop()

    def wait_synced(self, timeout: float) -> bool:
        """Wait until every cluster is live or has failed; True when all are live."""
        deadline = time.monotonic() + timeout
        while True:
            # Cleared before looking: a cluster settling meanwhile sets it again.
            self._settled.clear()
            states = [c.freshness().state for c in self._clusters.values()]
            if all(s is not CacheState.SYNCING for s in states):
                return all(s is CacheState.LIVE for s in states)
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            # Woken by each cluster that settles; the timeout covers a cluster that failed
            # and then went back to syncing (reconnected) without settling since.
            self._settled.wait(min(left, 0.5))

    def listings(self) -> list[Listing]:
        """What every cluster's cache holds now, one listing per listed kind."""
        return [listing for c in self._clusters.values() for listing in c.listings()]

    def live_clusters(self) -> list[tuple[str, str]]:
        """(environment, cluster) of every cluster whose data is live."""
        return [
            (c.target.environment, c.target.cluster)
            for c in self._clusters.values()
            if c.freshness().state is CacheState.LIVE
        ]

    def freshness(self) -> dict[ClusterTarget, Freshness]:
        """Every cluster's freshness."""
        return {c.target: c.freshness() for c in self._clusters.values()}

    def connection(self, target: ClusterTarget) -> ClusterConnection:
        """The API client, served Flux versions and timeouts of a connected cluster."""
        cluster = self._clusters[(target.environment, target.cluster)]
        if cluster.api_client is None or cluster.served is None:
            raise ClusterUnavailable(f"fluxbot is not connected to {target.cluster} yet")
        return ClusterConnection(cluster.api_client, cluster.served, cluster.timeout)

    def cluster_objects(self, target: ClusterTarget) -> tuple[FluxObject, ...]:
        """Every cached object of one cluster."""
        return self._clusters[(target.environment, target.cluster)].status().objects

    def object(self, target: ClusterTarget, ref: ObjectRef) -> FluxObject | None:
        """The cached status of one object, if the cache has it."""
        return self._clusters[(target.environment, target.cluster)].get(ref)

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (quickly, without arguments) after every change in any cluster."""
        for cluster in self._clusters.values():
            cluster.listeners.append(listener)

    def wait_for(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        predicate: Callable[[FluxObject], bool],
        timeout: float,
    ) -> FluxObject | None:
        """Block until the cached object satisfies `predicate`; None on timeout or removal."""
        return self._clusters[(target.environment, target.cluster)].wait_for(
            ref, predicate, timeout
        )

    def events(self, target: ClusterTarget, ref: ObjectRef) -> list[FluxEvent]:
        """Recent Events about `ref`, read from the cluster (Events are not cached)."""
        cluster = self._clusters[(target.environment, target.cluster)]
        if cluster.api_client is None:
            raise EventsUnavailable("not connected to the cluster yet")
        return read_events(cluster.api_client, ref, cluster.timeout)

    def read(
        self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
    ) -> list[ClusterStatus]:
        """Status of each target from memory, with its freshness."""
        return [self._clusters[(t.environment, t.cluster)].status(kinds) for t in targets]
