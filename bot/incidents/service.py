"""The incident loop: feed the planner from the watch cache, carry out its effects in order.

Transitions from the watch cache wake the loop at once; it also runs every `tick` seconds,
since waits and repeat intervals end without any transition. Only the leader evaluates and
posts: on becoming leader it takes the open incidents (and their message timestamps) from the
history store, so it updates the messages already posted instead of posting again.

Each channel has its own worker and queue, so one channel's rate limit never delays another.
A queue coalesces: an incident marked for publishing twice before its turn is published once,
with what it shows by then, which keeps a burst of dependents joining to one `chat.update`.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from bot.config import FluxbotConfig
from bot.domain.fleet import FleetReader
from bot.domain.history import HistoryStore
from bot.domain.transitions import Transition
from bot.incidents.planner import (
    IncidentPlanner,
    IncidentSettings,
    IncidentView,
    Note,
    Observation,
    Publish,
)

log = logging.getLogger(__name__)


class RetryLater(Exception):
    """Slack cannot take the call now (rate limited, unreachable); try after `seconds`."""

    def __init__(self, seconds: float, reason: str) -> None:
        super().__init__(reason)
        self.seconds = seconds


class MessageGone(Exception):
    """The incident's message no longer exists (someone deleted it)."""


@dataclass(frozen=True, slots=True)
class Posted:
    """Where a new incident message landed."""

    ts: str
    permalink: str


class IncidentPublisher(Protocol):
    """Shows incidents in a chat: the Slack adapter implements it."""

    def post(self, view: IncidentView) -> Posted:
        """Post a new incident message; RetryLater when it could not be posted now."""
        ...

    def update(self, view: IncidentView) -> None:
        """Edit the incident's message in place; RetryLater when it could not now,
        MessageGone when it was deleted."""
        ...

    def note(self, view: IncidentView, text: str, mention: bool) -> None:
        """Reply in the incident's thread; RetryLater when it could not now."""
        ...


def settings_of(config: FluxbotConfig, environment: str) -> IncidentSettings | None:
    """The planner's settings for an environment, None when it raises no incidents."""
    configured = config.incidents(environment)
    if configured is None:
        return None
    return IncidentSettings(
        channel=config.environments[environment].channel,
        wait=dt.timedelta(seconds=configured.wait_seconds),
        repeat=dt.timedelta(seconds=configured.repeat_seconds),
        reopen=dt.timedelta(seconds=configured.reopen_seconds),
        mention=configured.mention,
    )


class _ChannelWorker:
    """Publishes one channel's incidents and notes, in order, one call at a time."""

    def __init__(self, service: IncidentService, channel: str) -> None:
        self._service = service
        self.channel = channel
        self._cond = threading.Condition()
        # Publish items coalesce by incident; notes keep their order behind them.
        self._queue: OrderedDict[tuple[str, int], Publish | Note] = OrderedDict()
        self._seq = 0
        self._not_before = 0.0
        self._thread = threading.Thread(target=self._run, name=f"incidents-{channel}", daemon=True)
        self._thread.start()

    def put(self, effect: Publish | Note) -> None:
        with self._cond:
            if isinstance(effect, Publish):
                key = (effect.incident, -1)
                queued = self._queue.get(key)
                if queued is not None:
                    if effect.urgent:
                        self._queue[key] = effect  # a refresh queued earlier becomes urgent
                    return
            else:
                self._seq += 1
                key = (effect.incident, self._seq)
            self._queue[key] = effect
            self._cond.notify()

    def idle(self) -> bool:
        with self._cond:
            return not self._queue

    def wake(self) -> None:
        with self._cond:
            self._cond.notify()

    def join(self, timeout: float) -> None:
        """Wait for the publish in flight (a post and the save of its timestamp) to end."""
        self._thread.join(timeout)

    def _run(self) -> None:
        stop = self._service.stopping
        while not stop.is_set():
            with self._cond:
                while not stop.is_set() and (
                    not self._queue or time.monotonic() < self._not_before
                ):
                    wait = max(0.0, self._not_before - time.monotonic()) if self._queue else None
                    self._cond.wait(wait if wait is not None else 1.0)
                if stop.is_set():
                    return
                # Top-level messages first: what the channel shows must not wait behind
                # thread replies, which are paced at a message a second.
                key = next(
                    (k for k, e in self._queue.items() if isinstance(e, Publish) and e.urgent),
                    None,
                ) or next((k for k, e in self._queue.items() if isinstance(e, Publish)), None)
                if key is None:
                    key = next(iter(self._queue))
                effect = self._queue.pop(key)
            try:
                self._service.carry_out(effect)
            except RetryLater as err:
                log.warning("incidents: %s; retrying in %.1f s", err, err.seconds)
                with self._cond:
                    self._queue[key] = effect
                    self._queue.move_to_end(key, last=False)
                    self._not_before = time.monotonic() + err.seconds
            except Exception:
                log.exception("incidents: could not publish %s", effect)


class IncidentService:
    """Raises, updates and resolves incidents for every environment that has them."""

    def __init__(
        self,
        config: FluxbotConfig,
        reader: FleetReader,
        history: HistoryStore,
        publisher: IncidentPublisher,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        tick_seconds: float = 1.0,
    ) -> None:
        self._config = config
        self._layout = config.layout()
        self._reader = reader
        self._history = history
        self._publisher = publisher
        self._is_leader = is_leader
        self._clock = clock
        self._tick = tick_seconds
        self._planner = IncidentPlanner()
        self._lock = threading.RLock()
        self._wake = threading.Event()
        self.stopping = threading.Event()
        self._leading = False
        self._workers: dict[str, _ChannelWorker] = {}
        self._thread: threading.Thread | None = None
        self._settings = {
            name: s for name in config.environments if (s := settings_of(config, name)) is not None
        }

    @property
    def environments(self) -> Sequence[str]:
        """Environments that raise incidents."""
        return list(self._settings)

    # -- lifecycle --

    def start(self) -> IncidentService:
        """Run the loop in the background."""
        if self._settings:
            self._thread = threading.Thread(target=self._loop, name="incidents", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop evaluating and publishing (whatever is queued is left to the next leader)."""
        self.stopping.set()
        self._wake.set()
        workers = list(self._workers.values())
        for worker in workers:
            worker.wake()
        deadline = time.monotonic() + 5
        if self._thread is not None:
            self._thread.join(5)
        # A message posted but whose timestamp is not saved yet would be posted again by the
        # next leader: let the post in flight finish saving before the history closes.
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))

    def __call__(self, transition: Transition) -> None:
        """A watch-cache subscriber: a change in an environment with incidents wakes the loop."""
        if transition.environment in self._settings:
            self._wake.set()

    def idle(self) -> bool:
        """Nothing queued for any channel (tests and benchmarks wait for this)."""
        return all(w.idle() for w in list(self._workers.values()))

    # -- the loop --

    def _loop(self) -> None:
        while not self.stopping.is_set():
            timeout = self._tick
            with self._lock:
                due = self._planner.next_due()
            if due is not None:
                # A wait that ends between ticks is acted on when it ends, not at the tick.
                timeout = min(timeout, max(0.01, (due - self._clock()).total_seconds()))
            self._wake.wait(timeout)
            self._wake.clear()
            if self.stopping.is_set():
                return
            try:
                self.evaluate()
            except Exception:
                log.exception("incidents: evaluation failed; trying again")

    def evaluate(self) -> None:
        """One round: every environment, if this replica leads."""
        leading = self._is_leader()
        with self._lock:
            if leading and not self._leading:
                self._take_over()
            elif not leading and self._leading:
                log.info("incidents: no longer leading; the new leader carries on")
                self._planner.forget()
            self._leading = leading
            if not leading:
                return
            for environment, settings in self._settings.items():
                self._evaluate(environment, settings)

    def _take_over(self) -> None:
        self._planner.forget()
        for environment in self._settings:
            self._planner.load(self._history.incidents(environment))
        log.info("incidents: leading; %d known incidents", len(self._planner.records()))

    def _evaluate(self, environment: str, settings: IncidentSettings) -> None:
        now = self._clock()
        statuses = self._reader.read(self._layout.targets(environment))
        window = now - settings.repeat - settings.wait - dt.timedelta(days=1)
        observed = Observation(
            clusters=statuses,
            snoozes=self._history.snoozes(environment, now),
            actions=self._history.actions(environment, window, now),
            failing_since=self._history.failing_since(environment),
        )
        effects, changed = self._planner.evaluate(environment, settings, observed, now)
        for record in changed:
            self._history.save_incident(record)
        worker = self._worker(settings.channel) if effects else None
        for effect in effects:
            assert worker is not None
            worker.put(effect)

    def _worker(self, channel: str) -> _ChannelWorker:
        worker = self._workers.get(channel)
        if worker is None:
            worker = self._workers[channel] = _ChannelWorker(self, channel)
        return worker

    # -- effects, on a channel worker --

    def carry_out(self, effect: Publish | Note) -> None:
        """Publish or note one incident, if this replica still leads."""
        if not self._is_leader():
            return
        now = self._clock()
        with self._lock:
            view = self._planner.view(effect.incident, now)
        if view is None:
            return
        if isinstance(effect, Publish):
            if not view.record.message_ts:
                if not view.record.open:
                    return  # never shown, and over: nothing to announce
                posted = self._publisher.post(view)
                with self._lock:
                    record = self._planner.posted(effect.incident, posted.ts, posted.permalink, now)
                    self._planner.mark_published(effect.incident, now)
                    # Under the lock, so a later change decided meanwhile is saved after this.
                    if record is not None:
                        self._history.save_incident(record)
                log.info("incidents: posted %s", effect.incident)
                if record is not None and not record.open:
                    # It recovered while being posted: show that at once.
                    self.carry_out(Publish(effect.incident))
            else:
                try:
                    self._publisher.update(view)
                except MessageGone:
                    with self._lock:
                        record = self._planner.message_gone(effect.incident)
                        if record is not None:
                            self._history.save_incident(record)
                    if record is not None and record.open:
                        log.warning("incidents: the message of %s was deleted; posting it again",
                                    effect.incident)  # fmt: skip
                        self.carry_out(Publish(effect.incident))
                    return
                with self._lock:
                    self._planner.mark_published(effect.incident, now)
        elif view.record.message_ts:
            self._publisher.note(view, effect.text, effect.mention)

    # -- reading --

    def thread_of(
        self, environment: str, cluster: str, kind: str, namespace: str, name: str
    ) -> tuple[str, str] | None:
        """(channel, ts) of the open incident an object is the root or a dependent of."""
        with self._lock:
            found = self._planner.incident_of(environment, cluster, (kind, namespace, name))
        if found is None:
            # Not the leader (or not known yet): the stored incidents name their roots.
            found = next(
                (
                    r
                    for r in self._history.incidents(environment)
                    if r.open
                    and r.cluster == cluster
                    and (r.kind, r.namespace, r.name) == (kind, namespace, name)
                ),
                None,
            )
        if found is None or not found.message_ts:
            return None
        return found.channel, found.message_ts
