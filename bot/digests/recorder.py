"""Record transitions from the watch cache into the history store, in batches.

Besides the transitions the cache emits while it watches, the recorder finds what changed
while fluxbot was not watching: the cache's first listing of each kind in each cluster (after
a start, or when this replica becomes the leader) is compared with what the history store last
knew of those objects, and the differences are recorded as transitions marked with the time
fluxbot last saw the cluster (`Transition.down_since`). While it watches, it records that time
as a heartbeat every `heartbeat` seconds and when it stops.

What the store could not take is kept for the next try, up to `max_buffered` items: while the
store stays down the oldest go first (and the log says how many), so a long outage costs the
oldest history, never the process's memory.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Sequence
from typing import Final

from bot.domain.history import HistoryStore
from bot.domain.status import FluxObject, Health
from bot.domain.transitions import KnownState, Listing, Transition, catch_up, settled_health

log = logging.getLogger(__name__)

Item = Transition | Listing

# Items kept while the store cannot take them: hours of a busy fleet's changes, a few MB.
MAX_BUFFERED: Final = 20_000


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def known_state(obj: FluxObject, before: KnownState | None) -> KnownState:
    """What the history store should know of `obj`, given what it knew before."""
    previous = Health.FAILING if before is not None and before.failing else None
    failing = settled_health(previous, obj) is Health.FAILING
    return KnownState(failing, obj.full_revision, obj.suspended)


class TransitionRecorder:
    """Buffers transitions and listings (called on watcher threads); writes them every
    `interval` s.

    Only the leader records: a follower's buffer is dropped, since the leader sees the same
    transitions from its own watches. A replica that becomes leader compares its cache
    (`snapshot`) with the store, so what changed during the handover is not lost.
    """

    def __init__(
        self,
        history: HistoryStore,
        is_leader: Callable[[], bool] = lambda: True,
        interval: float = 1.0,
        *,
        live_clusters: Callable[[], Iterable[tuple[str, str]]] = lambda: (),
        snapshot: Callable[[], Sequence[Listing]] = lambda: (),
        heartbeat: float = 60.0,
        clock: Callable[[], dt.datetime] = _now,
        max_buffered: int = MAX_BUFFERED,
    ) -> None:
        self._history = history
        self._is_leader = is_leader
        self._interval = interval
        self._live_clusters = live_clusters
        self._snapshot = snapshot
        self._heartbeat = heartbeat
        self._clock = clock
        self._max_buffered = max_buffered
        self._buffer: deque[Item] = deque()
        self._dropped = 0
        self._lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)
        # Per (environment, cluster) caught up with: when fluxbot had last seen it before.
        self._down_since: dict[tuple[str, str], dt.datetime | None] = {}
        self._was_leader: bool | None = None
        self._last_beat = 0.0

    def __call__(self, transition: Transition) -> None:
        """Subscriber for FleetCache.subscribe: quick, never blocks on I/O."""
        with self._lock:
            self._buffer.append(transition)
            self._trim()

    def listing(self, listing: Listing) -> None:
        """Subscriber for FleetCache.subscribe_listings: quick, never blocks on I/O."""
        with self._lock:
            self._buffer.append(listing)
            self._trim()

    def buffered(self) -> int:
        """How many transitions and listings wait to be written."""
        with self._lock:
            return len(self._buffer)

    def _trim(self) -> None:
        # Called with the lock held: drop the oldest beyond the bound.
        while len(self._buffer) > self._max_buffered:
            self._buffer.popleft()
            self._dropped += 1

    def start(self) -> TransitionRecorder:
        """Start flushing in the background."""
        self._thread.start()
        return self

    def flush(self) -> int:
        """Write what is buffered now; returns how many transitions were written."""
        with self._write_lock:
            with self._lock:
                batch, self._buffer = list(self._buffer), deque()
                dropped, self._dropped = self._dropped, 0
            if dropped:
                log.warning(
                    "history store unavailable for long: dropped the %d oldest unrecorded "
                    "transitions and listings (the buffer keeps %d)",
                    dropped, self._max_buffered,
                )  # fmt: skip
            leader = self._is_leader()
            gained = leader and self._was_leader is False
            self._was_leader = leader
            if not leader:
                return 0
            if gained:
                # Our cache is newer than what the previous leader recorded: catch up from it.
                self._down_since.clear()
                batch = [*self._snapshot(), *batch]
            written = self._write(batch)
            if time.monotonic() - self._last_beat >= self._heartbeat:
                self.beat()
            return written

    def beat(self) -> None:
        """Record that fluxbot sees every live cluster it has caught up with, now."""
        self._last_beat = time.monotonic()
        by_environment: dict[str, list[str]] = defaultdict(list)
        for environment, cluster in self._live_clusters():
            if (environment, cluster) in self._down_since:
                by_environment[environment].append(cluster)
        now = self._clock()
        for environment, clusters in by_environment.items():
            try:
                self._history.mark_seen(environment, clusters, now)
            except Exception:
                log.exception("could not record that %s is watched", environment)

    def _write(self, batch: list[Item]) -> int:
        written = 0
        pending: list[Transition] = []
        for index, item in enumerate(batch):
            try:
                if isinstance(item, Transition):
                    pending.append(item)
                    continue
                if pending:
                    self._history.record_transitions(pending)
                    written += len(pending)
                    pending = []
                written += self._catch_up(item)
            except Exception:
                log.exception("could not record history; keeping it for the next try")
                self._requeue([*pending, *batch[index:]])
                return written
        try:
            if pending:
                self._history.record_transitions(pending)
                written += len(pending)
        except Exception:
            log.exception(
                "could not record %d transitions; keeping them for the next try", len(pending)
            )
            self._requeue(pending)
        return written

    def _requeue(self, items: Sequence[Item]) -> None:
        with self._lock:
            self._buffer.extendleft(reversed(items))
            self._trim()

    def _catch_up(self, listing: Listing) -> int:
        key = (listing.environment, listing.cluster)
        if key not in self._down_since:
            self._down_since[key] = self._history.last_seen(listing.environment).get(
                listing.cluster
            )
        down_since = self._down_since[key]
        known = self._history.known_states(listing.environment, listing.cluster)
        found: list[Transition] = []
        if down_since is not None:
            # The store has watched this cluster before: what it knew is worth comparing.
            found = catch_up(listing, known, down_since)
            if found:
                log.info(
                    "%s/%s: %d change(s) while fluxbot was not watching (since %s)",
                    listing.environment, listing.cluster, len(found), down_since,
                )  # fmt: skip
                self._history.record_transitions(found)
        states = {
            (listing.cluster, o.kind, o.namespace, o.name): known_state(
                o, known.get((listing.cluster, o.kind, o.namespace, o.name))
            )
            for o in listing.objects
        }
        self._history.record_listing(listing.environment, listing.cluster, listing.kind, states)
        return len(found)

    def stop(self) -> None:
        """Flush once more, note the moment fluxbot stops watching, and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.flush()
        if self._was_leader:
            self.beat()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
