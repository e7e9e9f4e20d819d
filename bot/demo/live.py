"""The demo fleet, alive: it can be acted on, and a simulated Flux answers.

`fluxbot serve --demo` uses this so the remediation buttons work without a cluster: writes are
applied to the demo objects in memory (merge patches, as an API server would), and the
simulated Flux controllers the tests use (bot/simulation/flux.py) handle each change after a
short delay. The demo's failures live in Git and in registries (a revoked deploy key, a chart
version that does not exist, an immutable field), so reconciling a failing object fails again
with the same message, as it would for real; anything else becomes Ready.
"""

from __future__ import annotations

import copy
import datetime as dt
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from bot.config import FluxbotConfig
from bot.demo import DEMO_ENVIRONMENTS, demo_channel, demo_directory
from bot.domain.action_lease import ActionLease, Claim, ClaimState
from bot.domain.events import FluxEvent, newest_first
from bot.domain.fleet import CacheState, ClusterStatus, ClusterTarget, FleetLayout, Freshness
from bot.domain.status import FluxObject, Health, ObjectRef, parse_flux_object
from bot.offline import event_of, read_dump
from bot.simulation.apiserver import merge_patch, next_generation
from bot.simulation.flux import FluxSimulator

# How long the simulated controller takes to reconcile: long enough to see "waiting…".
RECONCILE_SECONDS: Final = 1.5
ANYONE: Final = "anyone"

Key = tuple[str, str, str]


def demo_config() -> FluxbotConfig:
    """A configuration for the demo: its environments, and everyone may act (not guests)."""
    environments = {}
    for env in DEMO_ENVIRONMENTS:
        clusters = sorted(p.stem for p in (demo_directory() / env).glob("*.yaml"))
        environments[env] = {
            "channel": demo_channel(env),
            "clusters": [{"name": c, "context": f"demo-{c}"} for c in clusters],
            "actions": {
                "reconcile": [ANYONE],
                "suspend": [ANYONE],
                "rollback": [ANYONE],
                "confirmation": "dialog",
                "rollback_approval": False,
            },
            "digest": {"enabled": False},
        }
    return FluxbotConfig.model_validate(
        {"roles": {ANYONE: {"users": ["*"]}}, "environments": environments}
    )


@dataclass
class _Cluster:
    objects: dict[Key, dict[str, Any]]
    parsed: dict[Key, FluxObject]
    events: list[tuple[ObjectRef, FluxEvent]]
    flux: FluxSimulator | None = None


class _ClusterStore:
    """One demo cluster as the simulated controllers' store (called under the demo's lock)."""

    def __init__(self, demo: LiveDemo, cluster: _Cluster) -> None:
        self._demo = demo
        self._cluster = cluster

    def objects(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for o in self._cluster.objects.values()]

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self._cluster.objects.get((kind, namespace, name))
        return copy.deepcopy(found) if found is not None else None

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        key = _key_of(obj)
        current = self._cluster.objects.get(key)
        if current is not None:
            updated = copy.deepcopy(current)
            updated["status"] = status
            self._demo.store(self._cluster, key, updated)

    def write_spec(self, obj: dict[str, Any], spec: dict[str, Any]) -> None:
        key = _key_of(obj)
        current = self._cluster.objects.get(key)
        if current is not None and current.get("spec") != spec:
            updated = copy.deepcopy(current)
            updated["spec"] = spec
            updated["metadata"]["generation"] = next_generation(current, updated)
            self._demo.store(self._cluster, key, updated)


class LiveDemo:
    """The demo fleet as a reader, an object source and a writer, with a simulated Flux."""

    def __init__(self) -> None:
        # Re-entrant: the simulated controllers write back while a step holds it.
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._listeners: list[Callable[[], None]] = []
        self._clusters: dict[tuple[str, str], _Cluster] = {}
        for env in DEMO_ENVIRONMENTS:
            for path in sorted((demo_directory() / env).glob("*.yaml")):
                cluster = _Cluster({}, {}, [])
                for doc in read_dump(path):
                    if doc.get("kind") == "Event":
                        cluster.events.append(event_of(doc))
                        continue
                    obj = parse_flux_object(doc)
                    cluster.objects[obj.key] = doc
                    cluster.parsed[obj.key] = obj
                cluster.flux = FluxSimulator(_ClusterStore(self, cluster))
                # The demo's failures are in Git and registries: a retry fails the same way.
                for key, obj in cluster.parsed.items():
                    history = obj.helm.history if obj.helm is not None else ()
                    if obj.health is not Health.FAILING:
                        continue
                    if history and history[0].status == "failed":
                        # A release that fails at this chart version: an older one works.
                        failed = (history[0].chart_version, obj.message)
                        cluster.flux.release_failures[key] = failed
                    else:
                        cluster.flux.failures[key] = obj.message
                self._clusters[(env, path.stem)] = cluster
        self._timers: list[threading.Timer] = []
        self.read_at = dt.datetime.now(dt.UTC)

    def layout(self) -> FleetLayout:
        """The demo environments."""
        return demo_config().layout()

    # -- reading --

    def read(
        self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
    ) -> list[ClusterStatus]:
        """Current status of each demo cluster."""
        out = []
        with self._lock:
            for target in targets:
                cluster = self._clusters[(target.environment, target.cluster)]
                objects = tuple(o for o in cluster.parsed.values() if not kinds or o.kind in kinds)
                out.append(
                    ClusterStatus(
                        target.environment,
                        target.cluster,
                        objects,
                        read_at=dt.datetime.now(dt.UTC),
                        freshness=Freshness(CacheState.LIVE, self.read_at),
                    )
                )
        return out

    def events(self, target: ClusterTarget, ref: ObjectRef) -> list[FluxEvent]:
        """Events of the dump and of the actions taken since."""
        with self._lock:
            cluster = self._clusters[(target.environment, target.cluster)]
            return newest_first([e for r, e in cluster.events if r == ref], 10)

    def object(self, target: ClusterTarget, ref: ObjectRef) -> FluxObject | None:
        """One object's current status."""
        with self._lock:
            return self._clusters[(target.environment, target.cluster)].parsed.get(_key(ref))

    def cluster_objects(self, target: ClusterTarget) -> tuple[FluxObject, ...]:
        """Every object of one demo cluster."""
        with self._lock:
            return tuple(self._clusters[(target.environment, target.cluster)].parsed.values())

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (quickly, without arguments) after every change."""
        with self._lock:
            self._listeners.append(listener)

    def wait_for(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        predicate: Callable[[FluxObject], bool],
        timeout: float,
    ) -> FluxObject | None:
        """Block until the object satisfies `predicate`, or None after `timeout`."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                obj = self._clusters[(target.environment, target.cluster)].parsed.get(_key(ref))
                if obj is not None and predicate(obj):
                    return obj
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    # -- writing --

    def patch(self, target: ClusterTarget, ref: ObjectRef, body: dict[str, Any]) -> None:
        """Apply a merge patch, as the API server would, and let the controller react."""
        with self._changed:
            cluster = self._clusters[(target.environment, target.cluster)]
            current = cluster.objects.get(_key(ref))
            if current is None:
                raise LookupError(f"{ref} is not in the demo cluster {target.cluster}")
            updated = merge_patch(current, body)
            updated["metadata"]["generation"] = next_generation(current, updated)
            self.store(cluster, _key(ref), updated)
        # The controllers react to every change (a token, a new generation) after a moment.
        timer = threading.Timer(RECONCILE_SECONDS, self._reconcile, (target,))
        timer.daemon = True
        timer.start()
        self._timers.append(timer)

    def record_event(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        action: str,
        username: str,
        groups: Sequence[str],
        message: str,
        *,
        warning: bool = False,
    ) -> None:
        """Keep the audit Event, so `get` shows it."""
        event = FluxEvent(
            type="Warning" if warning else "Normal",
            reason="WebAction",
            message=message,
            count=1,
            last_seen=dt.datetime.now(dt.UTC),
            source="fluxbot",
            revision="",
        )
        with self._lock:
            self._clusters[(target.environment, target.cluster)].events.append((ref, event))

    def may(
        self, target: ClusterTarget, ref: ObjectRef, verb: str, user: str, groups: Sequence[str]
    ) -> tuple[bool, str]:
        """The demo has no Kubernetes RBAC to ask."""
        return True, "demo"

    def claim(
        self, target: ClusterTarget, ref: ObjectRef, action_id: str, lease: ActionLease
    ) -> Claim:
        """The demo is one process: its runner's claims and per-object lock already hold."""
        return Claim(ClaimState.CLAIMED)

    def hold(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        lease: ActionLease,
        renewed: ActionLease | None,
    ) -> bool:
        """Nothing to renew in one process."""
        return True

    def close(self) -> None:
        """Cancel pending simulated reconciles."""
        for timer in self._timers:
            timer.cancel()

    # -- the simulated controller --

    def _reconcile(self, target: ClusterTarget) -> None:
        with self._changed:
            flux = self._clusters[(target.environment, target.cluster)].flux
            assert flux is not None
            flux.step()

    def store(self, cluster: _Cluster, key: Key, obj: dict[str, Any]) -> None:
        """Keep a new version of an object and wake whoever waits for a change."""
        with self._changed:
            cluster.objects[key] = obj
            cluster.parsed[key] = parse_flux_object(obj)
            self._changed.notify_all()
            for listener in self._listeners:
                listener()


def _key(ref: ObjectRef) -> Key:
    return (ref.kind, ref.namespace, ref.name)


def _key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return (str(obj["kind"]), str(meta["namespace"]), str(meta["name"]))
