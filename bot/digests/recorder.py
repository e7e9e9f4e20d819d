"""Record transitions from the watch cache into the history store, in batches."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from bot.domain.history import HistoryStore
from bot.domain.transitions import Transition

log = logging.getLogger(__name__)


class TransitionRecorder:
    """Buffers transitions (called on watcher threads) and writes them every `interval` s.

    Only the leader records: a follower's buffer is dropped, since the leader sees the same
    transitions from its own watches.
    """

    def __init__(
        self,
        history: HistoryStore,
        is_leader: Callable[[], bool] = lambda: True,
        interval: float = 1.0,
    ) -> None:
        self._history = history
        self._is_leader = is_leader
        self._interval = interval
        self._buffer: list[Transition] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="history-recorder", daemon=True)

    def __call__(self, transition: Transition) -> None:
        """Subscriber for FleetCache.subscribe: quick, never blocks on I/O."""
        with self._lock:
            self._buffer.append(transition)

    def start(self) -> TransitionRecorder:
        """Start flushing in the background."""
        self._thread.start()
        return self

    def flush(self) -> int:
        """Write what is buffered now; returns how many were written."""
        with self._lock:
            batch, self._buffer = self._buffer, []
        if not batch or not self._is_leader():
            return 0
        try:
            self._history.record_transitions(batch)
        except Exception:
            log.exception(
                "could not record %d transitions; keeping them for the next try", len(batch)
            )
            with self._lock:
                self._buffer = batch + self._buffer
            return 0
        return len(batch)

    def stop(self) -> None:
        """Flush once more and stop."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(5)
        self.flush()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()
