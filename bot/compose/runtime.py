"""A long-running fluxbot over a configuration: watch cache, history recording, leader election,
incidents (`fluxbot serve`; the Slack side is wired in `bot.compose.serve`)."""

from __future__ import annotations

import logging
import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.allocator import limit_arenas, release_free_memory
from bot.collector import freeze_survivors
from bot.commands.executor import CommandRunner
from bot.compose.history import open_history
from bot.config import FluxbotConfig
from bot.digests.composer import DigestComposer
from bot.digests.recorder import TransitionRecorder
from bot.domain.history import HistoryStore
from bot.incidents.service import IncidentPublisher, IncidentService
from bot.kube.cache import FleetCache
from bot.kube.clients import home_api_client
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


def start_runtime(config: FluxbotConfig, sync_seconds: float) -> Runtime:
    """Start the watch cache, history recording and (if configured) leader election."""
    # Before any thread: a cold sync on 16 arenas keeps their freed pages (bot/allocator.py).
    limit_arenas()
    settings = config.history
    home = (
        home_api_client() if settings.leader_election or settings.backend == "configmap" else None
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
    # The cache lives as long as the process: later full collections need not rescan it.
    log.info("%d objects moved out of the garbage collector's scans", freeze_survivors())
    # The listings are gone: what malloc kept of them goes back to the system.
    release_free_memory()
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
