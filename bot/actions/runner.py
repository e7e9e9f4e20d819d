"""Runs started actions off the chat threads: once per button, one per object, drained on shutdown.

Following a reconcile can take minutes, so actions run on a worker pool and report to a sink.
A button's nonce is claimed once (double clicks, two people, Slack retries); the claim store is
pluggable so a store shared by replicas can take the in-memory one's place.
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Protocol

from bot.actions.model import (
    Abandoned,
    ActionEvent,
    ActionRequest,
    ActionResult,
    ActionSink,
    AlreadyDone,
    Busy,
    Crashed,
    Finished,
    Progress,
    Running,
    Started,
)
from bot.domain.fleet import ClusterTarget
from bot.domain.policy import Actor
from bot.domain.status import ObjectRef

log = logging.getLogger(__name__)

Execute = Callable[[Actor, ActionRequest, Callable[[str], None]], ActionResult]


class Claims(Protocol):
    """One-shot claims on nonces (buttons, forms, approval requests)."""

    def claim(self, nonce: str, ttl: float) -> bool:
        """True the first time `nonce` is claimed within `ttl` seconds; False afterwards."""
        ...


class MemoryClaims:
    """Claims held by this process (enough for one replica, or a leader that owns actions)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._nonces: dict[str, float] = {}

    def claim(self, nonce: str, ttl: float) -> bool:
        """True the first time `nonce` is seen; double clicks and retries get False."""
        now = self._clock()
        with self._lock:
            for old in [n for n, expiry in self._nonces.items() if expiry < now]:
                del self._nonces[old]
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now + ttl
            return True


class ActionRunner:
    """A pool of workers running actions, one at a time per object."""

    def __init__(
        self,
        execute: Execute,
        claims: Claims | None = None,
        *,
        workers: int = 8,
        claim_ttl: float = 7 * 86400,
    ) -> None:
        self._execute = execute
        self.claims: Claims = claims or MemoryClaims()
        self.claim_ttl = claim_ttl
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="action")
        self._lock = threading.Lock()
        self._busy: dict[tuple[ClusterTarget, ObjectRef], str] = {}
        self._inflight: dict[Future[None], tuple[ActionRequest, ActionSink]] = {}
        self._closing = False

    def holder(self, target: ClusterTarget, ref: ObjectRef) -> str | None:
        """What is running on the object right now, if anything."""
        with self._lock:
            return self._busy.get((target, ref))

    def claim(self, nonce: str) -> bool:
        """Claim a nonce once (an empty nonce, a typed command, always claims)."""
        return not nonce or self.claims.claim(nonce, self.claim_ttl)

    def start(
        self, actor: Actor, request: ActionRequest, nonce: str, sink: ActionSink
    ) -> Started | Busy | AlreadyDone:
        """Run the action in the background, unless the nonce was used or the object is busy."""
        if self._closing:
            return Busy("fluxbot is restarting; try again in a minute.")
        key = (request.target, request.ref)
        with self._lock:
            holder = self._busy.get(key)
            if holder is not None:
                return Busy(f"An action on this object is already running ({holder}).")
            if not self.claim(nonce):
                return AlreadyDone("This button was already used; nothing more was done.")
            self._busy[key] = f"{request.action} by <@{actor.id}>"
        # The worker thread keeps this interaction's request id in its log lines.
        context = contextvars.copy_context()
        future = self._executor.submit(context.run, self._run, actor, request, sink, key)
        with self._lock:
            self._inflight[future] = (request, sink)
        future.add_done_callback(self._forget)
        return Started(request, actor)

    def shutdown(self, timeout: float) -> None:
        """Take no new actions; let running ones finish for `timeout` s, then tell each sink
        which were abandoned (their writes may have happened; their outcome is not followed)."""
        self._closing = True
        with self._lock:
            running = dict(self._inflight)
        _done, pending = wait(list(running), timeout=timeout)
        for future in pending:
            request, sink = running[future]
            log.warning("abandoning %s at shutdown", request.describe())
            _deliver(sink, Abandoned(request))
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _run(
        self,
        actor: Actor,
        request: ActionRequest,
        sink: ActionSink,
        key: tuple[ClusterTarget, ObjectRef],
    ) -> None:
        try:
            _deliver(sink, Running(request, actor))
            result = self._execute(
                actor, request, lambda text: _deliver(sink, Progress(request, text))
            )
        except Exception:
            log.exception("action %s failed unexpectedly", request.describe())
            with self._lock:
                self._busy.pop(key, None)
            _deliver(sink, Crashed(request))
            return
        with self._lock:
            self._busy.pop(key, None)
        _deliver(sink, Finished(request, actor, result))

    def _forget(self, future: Future[None]) -> None:
        with self._lock:
            self._inflight.pop(future, None)


def _deliver(sink: ActionSink, event: ActionEvent) -> None:
    try:
        sink.report(event)
    except Exception:
        log.exception("could not report %s", type(event).__name__)
