"""Compose an environment's digest from the fleet's current status and its recorded history."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import replace

from bot.collector import collection_paused
from bot.config import FluxbotConfig
from bot.domain.digest import Digest, compose
from bot.domain.fleet import ClusterStatus, FleetLayout, FleetReader
from bot.domain.history import HistoryStore, RunState
from bot.domain.incidents import IncidentRecord
from bot.domain.posture import audit, default_policy


class DigestComposer:
    """Builds digests; without a history store, changes are simply not known."""

    def __init__(
        self,
        layout: FleetLayout,
        reader: FleetReader,
        history: HistoryStore | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        before: Callable[[], object] | None = None,
    ) -> None:
        self.layout = layout
        self.reader = reader
        self.history = history
        self.clock = clock
        # Writes what the recorder still buffers, so a digest right after a start includes
        # what changed while fluxbot was down.
        self.before = before

    def compose(self, environment: str, now: dt.datetime | None = None) -> Digest:
        """The digest of `environment`: changes since its last posted digest (or a day)."""
        if self.before is not None:
            self.before()
        now = now or self.clock()
        # A digest of 25,000 objects builds tens of thousands of items that live until it is
        # posted: collected as they are built, they would be rescanned over and over. One
        # pass after is enough (see bot/collector.py).
        with collection_paused:
            statuses = self.reader.read(self.layout.targets(environment))
            digest = self._compose(environment, statuses, now)
            layout = self.layout.environment(environment)
            if layout is None:
                return digest
            policy = layout.posture or default_policy(layout.tier)
            return replace(digest, posture=tuple(audit(statuses, {environment: policy}, now)))

    def _compose(self, environment: str, statuses: list[ClusterStatus], now: dt.datetime) -> Digest:
        if self.history is None:
            return compose(environment, statuses, [], [], [], {}, now, None)
        last = self.history.last_run(environment, [RunState.POSTED, RunState.SKIPPED])
        since = last.updated_at if last is not None else None
        window = since or now - dt.timedelta(days=1)
        digest = compose(
            environment,
            statuses,
            self.history.change_window(environment, window, now),
            self.history.actions(environment, window, now),
            self.history.snoozes(environment, now),
            self.history.failing_since(environment),
            now,
            since,
            self.history.last_seen(environment),
        )
        return _link_incidents(digest, self.history.incidents(environment))


def _link_incidents(digest: Digest, incidents: Sequence[IncidentRecord]) -> Digest:
    """Root causes with an open incident link to its message instead of being repeated."""
    links = {
        (i.cluster, i.kind, i.namespace, i.name): i.permalink
        for i in incidents
        if i.open and i.permalink
    }
    if not links:
        return digest
    attention = tuple(
        dataclasses.replace(
            item,
            incident=links.get(
                (item.cluster, item.root.kind, item.root.namespace, item.root.name), ""
            ),
        )
        for item in digest.attention
    )
    return dataclasses.replace(digest, attention=attention)


def digest_environments(config: FluxbotConfig) -> list[str]:
    """Environments that get scheduled digests."""
    return [name for name in config.environments if config.digest(name) is not None]
