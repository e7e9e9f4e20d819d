"""Follow many objects at once on one thread, woken by the watch cache's change notifications.

Following a reconcile can take minutes. An action waiting for its outcome yields an `Await`
instead of parking a worker thread, so a slow follow never delays another action's writes.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from typing import Protocol

from bot.actions.model import ActionResult
from bot.domain.fleet import ClusterTarget
from bot.domain.status import FluxObject, ObjectRef

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Await:
    """What a running action waits for: the object satisfying `predicate`, for `timeout` s.
    It is resumed with the object, or None when the time ran out."""

    target: ClusterTarget
    ref: ObjectRef
    predicate: Callable[[FluxObject], bool]
    timeout: float


# An action that waits: it yields `Await`s and returns its result.
Following = Generator[Await, FluxObject | None, ActionResult]


class Watched(Protocol):
    """The watch cache, as far as following needs it."""

    def object(self, target: ClusterTarget, ref: ObjectRef) -> FluxObject | None:
        """The cached object, if any."""
        ...

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` after every change."""
        ...


@dataclass(slots=True)
class _Pending:
    wait: Await
    deadline: float
    done: Callable[[FluxObject | None], None]
    fired: bool = field(default=False)


class Follower:
    """Resolves `Await`s: checks each when the cache changes, and times them out."""

    def __init__(self, objects: Watched, clock: Callable[[], float] = time.monotonic) -> None:
        self._objects = objects
        self._clock = clock
        self._lock = threading.Lock()
        self._pending: list[_Pending] = []
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        objects.on_change(self._wake.set)

    def follow(self, wait: Await, done: Callable[[FluxObject | None], None]) -> None:
        """Call `done(obj)` once the object satisfies the wait, or `done(None)` at its end."""
        obj = self._objects.object(wait.target, wait.ref)
        if obj is not None and wait.predicate(obj):
            done(obj)
            return
        with self._lock:
            self._pending.append(_Pending(wait, self._clock() + max(0.0, wait.timeout), done))
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="follow", daemon=True)
                self._thread.start()
        self._wake.set()

    def waiting(self) -> int:
        """How many follows are in flight."""
        with self._lock:
            return len(self._pending)

    def stop(self) -> None:
        """Stop following; pending follows are not resolved."""
        self._stop.set()
        self._wake.set()

    def _loop(self) -> None:
        while not self._stop.is_set():
            with self._lock:
                pending = list(self._pending)
            now = self._clock()
            nearest = min((p.deadline for p in pending), default=now + 1.0)
            self._wake.wait(max(0.0, min(nearest - now, 1.0)))
            self._wake.clear()
            for item in pending:
                self._check(item)

    def _check(self, item: _Pending) -> None:
        wait = item.wait
        try:
            obj = self._objects.object(wait.target, wait.ref)
            met = obj is not None and wait.predicate(obj)
        except Exception:
            log.exception("following %s failed", wait.ref)
            obj, met = None, True
        if not met and self._clock() < item.deadline:
            return
        with self._lock:
            if item.fired:
                return
            item.fired = True
            self._pending.remove(item)
        item.done(obj if met else None)
