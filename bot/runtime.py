"""Assemble a long-running fluxbot: watch cache, history, leader election, digests.

This is the composition root for `fluxbot serve` (and `fluxbot digest`): the only place that
knows which adapter implements which port.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from bot.commands.executor import CommandRunner
from bot.config import FluxbotConfig
from bot.digests.composer import DigestComposer
from bot.digests.recorder import TransitionRecorder
from bot.domain.history import HistoryStore
from bot.history.sqlite import SqliteHistory
from bot.incidents.service import IncidentPublisher, IncidentService
from bot.kube.cache import FleetCache
from bot.kube.lease import LeaderElector

log = logging.getLogger(__name__)

LEASE_NAME = "fluxbot-leader"


@dataclass
class Runtime:
    """Everything a serving fluxbot keeps running, and how to stop it in order."""

    config: FluxbotConfig
    cache: FleetCache
    runner: CommandRunner
    history: HistoryStore
    recorder: TransitionRecorder
    elector: LeaderElector | None = None
    _stops: list[Callable[[], None]] = field(default_factory=list)

    @property
    def is_leader(self) -> bool:
        """Whether this replica records history and posts digests."""
        return self.elector is None or self.elector.is_leader

    def on_stop(self, callback: Callable[[], None]) -> None:
        """Run `callback` first when stopping (later registrations run earlier)."""
        self._stops.insert(0, callback)

    def stop(self) -> None:
        """Stop taking work, flush history, release the Lease, close connections."""
        for callback in self._stops:
            try:
                callback()
            except Exception:
                log.exception("error while stopping")
        self.recorder.stop()
        if self.elector is not None:
            # Hand over at once instead of making the next leader wait out the Lease.
            self.elector.stop(release=True)
        self.cache.stop()
        self.history.close()


def home_cluster_client() -> Any:
    """An API client for the cluster fluxbot runs in (or the kubeconfig's current context)."""
    configuration = k8s.Configuration()
    if os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        # Read $KUBECONFIG now: the client captured it when it was imported.
        k8s_config.load_kube_config(
            config_file=os.environ.get("KUBECONFIG") or None,
            client_configuration=configuration,
            persist_config=False,
        )
    return k8s.ApiClient(configuration)


def open_history(config: FluxbotConfig, api_client: Any | None = None) -> HistoryStore:
    """The configured history store."""
    settings = config.history
    if settings.backend == "configmap":
        # Imported only when chosen: most installations run one replica on SQLite.
        from bot.history.configmap import ConfigMapHistory  # noqa: PLC0415

        return ConfigMapHistory(
            api_client or home_cluster_client(),
            settings.namespace,
            retention=dt.timedelta(days=settings.retention_days),
            # Followers keep their copy current, so a snooze or action saved on any replica
            # reaches the leader's next digest.
            follow=True,
        )
    return SqliteHistory.open_or_recover(settings.path.expanduser())


def start_runtime(config: FluxbotConfig, sync_seconds: float) -> Runtime:
    """Start the watch cache, history recording and (if configured) leader election."""
    settings = config.history
    home = (
        home_cluster_client()
        if settings.leader_election or settings.backend == "configmap"
        else None
    )
    history = open_history(config, home)
    elector = None
    if settings.leader_election:
        # Unique even for two replicas that share a host name and a PID namespace.
        identity = f"{socket.gethostname()}-{os.getpid()}-{secrets.token_hex(3)}"
        elector = LeaderElector(
            home,
            settings.namespace,
            LEASE_NAME,
            identity,
            lease_seconds=settings.lease_seconds,
            renew_seconds=settings.lease_seconds / 3,
            retry_seconds=min(2.0, settings.lease_seconds / 3),
        )
        if settings.backend == "configmap":
            # A new leader must start from what the previous one recorded, not what it read at
            # its own start.
            elector.on_started_leading = history.reload  # type: ignore[attr-defined]
        elector.start()
    cache = FleetCache(config)
    recorder = TransitionRecorder(
        history,
        is_leader=(lambda: elector.is_leader) if elector else (lambda: True),
        live_clusters=cache.live_clusters,
        snapshot=cache.listings,
    ).start()
    cache.subscribe(recorder)
    cache.subscribe_listings(recorder.listing)
    cache.start()
    if not cache.wait_synced(sync_seconds):
        log.warning("some clusters are not synced yet; their answers say so")
    layout = config.layout()
    composer = DigestComposer(layout, cache, history, before=recorder.flush)
    runner = CommandRunner(
        layout,
        cache,
        composer,
        incidents=lambda env: [r for r in history.incidents(env) if r.open and r.message_ts],
    )
    return Runtime(config, cache, runner, history, recorder, elector)


def start_incidents(runtime: Runtime, publisher: IncidentPublisher) -> IncidentService:
    """Raise incidents from the watch cache's transitions; only the leader posts."""
    service = IncidentService(
        runtime.config,
        runtime.cache,
        runtime.history,
        publisher,
        is_leader=lambda: runtime.is_leader,
    )
    runtime.cache.subscribe(service)
    runtime.on_stop(service.stop)
    return service.start()
