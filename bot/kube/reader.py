"""Read fleet status by listing every Flux kind in every cluster, concurrently and isolated."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bot.config import FluxbotConfig
from bot.domain.events import FluxEvent
from bot.domain.fleet import (
    ClusterProblem,
    ClusterStatus,
    ClusterTarget,
    EventsUnavailable,
    ProblemKind,
)
from bot.domain.kinds import FLUX_GROUPS, KINDS, FluxKind
from bot.domain.status import FluxObject, ObjectRef
from bot.kube.clients import ClientPool
from bot.kube.discovery import ServedKinds, discover
from bot.kube.errors import describe_error
from bot.kube.events import read_events
from bot.kube.listing import list_objects
from bot.observability import metrics

log = logging.getLogger(__name__)

# Served versions change only when Flux is upgraded; rediscover now and then, or after an error.
DISCOVERY_TTL_SECONDS: Final = 600.0


class KubeFleetReader:
    """A FleetReader over live clusters: one thread per cluster, one problem per failure."""

    def __init__(self, config: FluxbotConfig) -> None:
        self._config = config
        self._settings = config.kubernetes
        self._pool = ClientPool(config.kubernetes)
        self._executor = ThreadPoolExecutor(
            max_workers=config.kubernetes.max_parallel_clusters, thread_name_prefix="kube-read"
        )
        self._discovered: dict[str, tuple[float, ServedKinds]] = {}
        self._lock = threading.Lock()
        # Listings in memory at once, across the clusters read in parallel: each is the
        # largest transient thing a read holds (see cache.max_parallel_lists).
        self._list_slots = threading.Semaphore(config.cache.max_parallel_lists)

    def read(
        self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
    ) -> list[ClusterStatus]:
        """Status of each target; a cluster that fails is reported, the others still answer."""
        futures = [self._executor.submit(self._read_cluster, t, kinds) for t in targets]
        return [f.result() for f in futures]

    def events(self, target: ClusterTarget, ref: ObjectRef) -> list[FluxEvent]:
        """Recent Events about `ref` in `target`, newest first."""
        try:
            api_client = self._pool.get(target.cluster, self._config.cluster(target))
        except Exception as err:
            raise EventsUnavailable(describe_error(err, "?", self._timeout[1]).message) from err
        return read_events(api_client, ref, self._timeout)

    def close(self) -> None:
        """Stop the worker threads and close every connection pool."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._pool.close()

    @property
    def _timeout(self) -> tuple[float, float]:
        return (self._settings.connect_timeout_seconds, self._settings.request_timeout_seconds)

    def _read_cluster(self, target: ClusterTarget, kinds: frozenset[str]) -> ClusterStatus:
        started = time.monotonic()
        server = "?"
        objects: list[FluxObject] = []
        problems: list[ClusterProblem] = []
        try:
            api_client = self._pool.get(target.cluster, self._config.cluster(target))
            server = api_client.configuration.host
            served = self._served_kinds(target.cluster, api_client)
            if not served.flux_installed:
                problems.append(
                    ClusterProblem(
                        ProblemKind.FLUX_MISSING,
                        "Flux is not installed: the cluster serves none of "
                        + ", ".join(FLUX_GROUPS),
                    )
                )
            custom = k8s.CustomObjectsApi(api_client)
            for kind in KINDS:
                version = served.version_of(kind)
                if version is None or (kinds and kind.kind not in kinds):
                    continue
                try:
                    objects.extend(self._list(custom, version, kind))
                except ApiException as err:
                    if err.status in (401,) or (err.status or 0) >= 500:
                        raise
                    problems.append(
                        describe_error(err, server, self._timeout[1], kinds=(kind.kind,))
                    )
                    if err.status == 404:
                        self._forget(target.cluster)
                    continue
        except Exception as err:  # noqa: BLE001 - every failure is this cluster's problem
            self._forget(target.cluster)
            problem = describe_error(err, server, self._timeout[1])
            log.info("cannot read cluster %s: %s", target.cluster, problem.detail)
            metrics.record_cluster_error(target.environment, target.cluster, problem.kind)
            return ClusterStatus(target.environment, target.cluster, (), (problem,), read_at=_now())
        for problem in problems:
            metrics.record_cluster_error(target.environment, target.cluster, problem.kind)
        log.debug(
            "read %d objects from %s in %.3f s",
            len(objects),
            target.cluster,
            time.monotonic() - started,
        )
        return ClusterStatus(
            target.environment, target.cluster, tuple(objects), tuple(problems), read_at=_now()
        )

    def _list(self, custom: Any, version: str, kind: FluxKind) -> list[FluxObject]:
        with self._list_slots:
            return list_objects(custom, kind, version, self._timeout)[0]

    def _served_kinds(self, cluster: str, api_client: Any) -> ServedKinds:
        with self._lock:
            cached = self._discovered.get(cluster)
        if cached and time.monotonic() - cached[0] < DISCOVERY_TTL_SECONDS:
            return cached[1]
        served = discover(api_client, self._timeout)
        with self._lock:
            self._discovered[cluster] = (time.monotonic(), served)
        return served

    def _forget(self, cluster: str) -> None:
        with self._lock:
            self._discovered.pop(cluster, None)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)
