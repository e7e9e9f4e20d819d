"""Runs started actions off the chat threads: once per button, one per object, drained on shutdown.

Following a reconcile can take minutes, so actions run on a worker pool and report to a sink.
A button's nonce is claimed once (double clicks, two people, Slack retries); the claim store is
pluggable so a store shared by replicas can take the in-memory one's place. The nonces and the
per-object lock here answer at once within this replica; across replicas the action's first
write claims the object itself (bot.actions.service, bot.domain.action_lease).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from bot.actions.follow import Follower, Following
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
    Queued,
    Running,
    Started,
)
from bot.domain.fleet import ClusterTarget
from bot.domain.policy import Actor
from bot.domain.status import FluxObject, ObjectRef

log = logging.getLogger(__name__)

# Runs the action and returns its outcome. Its progress callback's first call (an empty text
# says only "the first write is about to happen") reports the action running: a replica
# that loses the claim on a button never shows "working…" over the winner's progress.
Execute = Callable[[Actor, ActionRequest, Callable[[str], None]], ActionResult | Following]


class Claims(Protocol):
    """One-shot claims on nonces (buttons, forms, approval requests)."""

    def claim(self, nonce: str, ttl: float) -> bool:
        """True the first time `nonce` is claimed within `ttl` seconds; False afterwards."""
        ...

    def release(self, nonce: str) -> None:
        """Give a claimed nonce back: its action wrote nothing, so the button may be used."""
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

    def release(self, nonce: str) -> None:
        """Forget `nonce`, so it may be claimed again."""
        with self._lock:
            self._nonces.pop(nonce, None)


class ActionRunner:
    """A pool of workers running actions, one at a time per object.

    Workers only write: an action waiting for a controller yields an `Await` and is handed to
    the `Follower`, which resumes it on a worker when the watch cache shows the outcome, so
    slow follows never hold up another action's first write.
    """

    def __init__(
        self,
        execute: Execute,
        claims: Claims | None = None,
        *,
        workers: int = 8,
        claim_ttl: float = 7 * 86400,
        follower: Follower | None = None,
    ) -> None:
        self._execute = execute
        self.claims: Claims = claims or MemoryClaims()
        self.claim_ttl = claim_ttl
        self._workers = workers
        self._follower = follower
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="action")
        # Reports go to chat on their own threads: a slow or hanging chat never holds up an
        # action's writes, and what an action did never depends on a post succeeding.
        self._posters = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="report")
        self._lock = threading.Condition()
        self._busy: dict[tuple[ClusterTarget, ObjectRef], str] = {}
        self._inflight: dict[int, _Action] = {}
        self._working = 0  # actions on a worker or waiting for one (not following)
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
            ahead = self._working
        if nonce:
            request = request.but(action_id=nonce)
        # The worker threads keep this interaction's request id in their log lines.
        action = _Action(
            actor, request, _InOrder(sink, self._posters), sink, key, nonce,
            contextvars.copy_context(),
        )  # fmt: skip
        with self._lock:
            self._inflight[id(action)] = action
        if ahead >= self._workers:
            # Say so at once rather than stay silent while other actions write.
            action.sink.report(
                Queued(request, f"{ahead} other action(s) are being started; this one is next")
            )
        self._submit(action, self._begin)
        return Started(request, actor)

    def shutdown(self, timeout: float) -> None:
        """Take no new actions; let running ones finish for `timeout` s, then tell each sink
        which were abandoned (their writes may have happened; their outcome is not followed)."""
        self._closing = True
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._inflight and time.monotonic() < deadline:
                self._lock.wait(max(0.0, deadline - time.monotonic()))
            pending = list(self._inflight.values())
        for action in pending:
            log.warning("abandoning %s at shutdown", action.request.describe())
            _deliver(action.raw_sink, Abandoned(action.request))
        if self._follower is not None:
            self._follower.stop()
        self._executor.shutdown(wait=False, cancel_futures=True)
        self._posters.shutdown(wait=False)

    def _submit(self, action: _Action, step: Callable[[_Action], None]) -> None:
        with self._lock:
            self._working += 1
        try:
            self._executor.submit(action.context.copy().run, self._on_worker, action, step)
        except RuntimeError:  # shut down: the action was reported abandoned
            with self._lock:
                self._working -= 1

    def _on_worker(self, action: _Action, step: Callable[[_Action], None]) -> None:
        try:
            step(action)
        finally:
            with self._lock:
                self._working -= 1

    def _begin(self, action: _Action) -> None:
        try:
            outcome = self._execute(action.actor, action.request, action.progress)
        except Exception:  # noqa: BLE001 - logged with its traceback by _crashed
            self._crashed(action)
            return
        if isinstance(outcome, ActionResult):
            self._finish(action, outcome)
        else:
            action.following = outcome
            self._advance(action, None)

    def _advance(self, action: _Action, value: FluxObject | None) -> None:
        """Run the action on to its next wait (or its end) on this worker."""
        assert action.following is not None
        try:
            wait = action.following.send(value)
        except StopIteration as stop:
            self._finish(action, stop.value)
            return
        except Exception:  # noqa: BLE001 - logged with its traceback by _crashed
            self._crashed(action)
            return
        if self._follower is None:
            raise RuntimeError("this runner has no Follower for actions that wait")
        self._follower.follow(
            wait, lambda obj: self._submit(action, lambda a: self._advance(a, obj))
        )

    def _crashed(self, action: _Action) -> None:
        log.exception("action %s failed unexpectedly", action.request.describe())
        self._done(action)
        _deliver(action.sink, Crashed(action.request))

    def _finish(self, action: _Action, result: ActionResult) -> None:
        self._done(action)
        _deliver(action.sink, Finished(action.request, action.actor, result))

    def _done(self, action: _Action) -> None:
        with self._lock:
            self._busy.pop(action.key, None)
            self._inflight.pop(id(action), None)
            self._lock.notify_all()
        if action.nonce and not action.running:
            # Nothing was written (refused, stale, a cluster down, claimed elsewhere): the
            # button stays usable here; on the object, another replica's claim still holds.
            self.claims.release(action.nonce)


class _Action:
    """One started action, between its steps."""

    def __init__(
        self,
        actor: Actor,
        request: ActionRequest,
        sink: ActionSink,
        raw_sink: ActionSink,
        key: tuple[ClusterTarget, ObjectRef],
        nonce: str,
        context: contextvars.Context,
    ) -> None:
        self.actor = actor
        self.request = request
        self.sink = sink
        self.raw_sink = raw_sink
        self.key = key
        self.nonce = nonce
        self.context = context
        self.running = False
        self.following: Following | None = None

    def progress(self, text: str) -> None:
        """The action's progress; its first call (maybe with no text) reports it running."""
        if not self.running:
            self.running = True
            _deliver(self.sink, Running(self.request, self.actor))
        if text:
            _deliver(self.sink, Progress(self.request, text))


class _InOrder:
    """An action's sink, fed on poster threads, one event at a time and in order."""

    def __init__(self, sink: ActionSink, posters: ThreadPoolExecutor) -> None:
        self._sink = sink
        self._posters = posters
        self._lock = threading.Lock()
        self._queue: deque[ActionEvent] = deque()
        self._draining = False

    def report(self, event: ActionEvent) -> None:
        """Queue `event`; it reaches the sink after the ones before it."""
        with self._lock:
            self._queue.append(event)
            if self._draining:
                return
            self._draining = True
        try:
            self._posters.submit(contextvars.copy_context().run, self._drain)
        except RuntimeError:  # shutting down: deliver here rather than lose it
            self._drain()

    def _drain(self) -> None:
        while True:
            with self._lock:
                if not self._queue:
                    self._draining = False
                    return
                event = self._queue.popleft()
            _deliver(self._sink, event)


def _deliver(sink: ActionSink, event: ActionEvent) -> None:
    try:
        sink.report(event)
    except Exception:
        log.exception("could not report %s", type(event).__name__)
