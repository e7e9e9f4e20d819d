"""What happened between digests: the records a digest is built from, and where they are kept.

Transitions come from the watch cache continuously; actions from the remediation service;
snoozes from people. A `HistoryStore` keeps them (SQLite for one replica, the cluster for
several) so a restart loses nothing, and remembers which digests were posted so none is posted
twice.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Protocol

from bot.domain.incidents import IncidentRecord
from bot.domain.transitions import Change, KnownState, Transition

if TYPE_CHECKING:  # change_window names its objects by ObjectKey, defined here
    from bot.domain.change_window import ChangeWindow

ObjectKey = tuple[str, str, str, str]
"""(cluster, kind, namespace, name): an object, fleet-wide (cluster names are unique)."""


@dataclass(frozen=True, slots=True)
class ActionRecord:
    """One remediation action, as the digest reports it ("reconciled by alice")."""

    at: dt.datetime
    environment: str
    cluster: str
    kind: str
    namespace: str
    name: str
    action: str
    user: str
    ok: bool
    summary: str


@dataclass(frozen=True, slots=True)
class Snooze:
    """An object hidden from digests until `until`, or until its state changes."""

    environment: str
    cluster: str
    kind: str
    namespace: str
    name: str
    until: dt.datetime
    # material_state() of the object when snoozed: a different state ends the snooze.
    state: str
    by: str

    @property
    def key(self) -> ObjectKey:
        """The snoozed object."""
        return (self.cluster, self.kind, self.namespace, self.name)


def fold_known(
    known: Mapping[ObjectKey, KnownState], transitions: Iterable[Transition]
) -> dict[ObjectKey, KnownState]:
    """`known` brought up to date with `transitions` (oldest first)."""
    out = dict(known)
    for t in transitions:
        key = (t.cluster, t.kind, t.namespace, t.name)
        if t.change is Change.REMOVED:
            out.pop(key, None)
            continue
        state = out.get(key) or KnownState(False, "", False)
        if t.change is Change.ADDED:
            state = KnownState(False, t.new, False)
        elif t.change is Change.FAILING:
            state = KnownState(True, state.revision, state.suspended)
        elif t.change is Change.RECOVERED:
            state = KnownState(False, state.revision, state.suspended)
        elif t.change is Change.SUSPENDED:
            state = KnownState(False, state.revision, True)
        elif t.change is Change.RESUMED:
            state = KnownState(state.failing, state.revision, False)
        elif t.change is Change.REVISION:
            state = KnownState(state.failing, t.new, state.suspended)
        out[key] = state
    return out


class RunState(StrEnum):
    """Where a scheduled digest stands."""

    POSTING = "posting"
    POSTED = "posted"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class DigestRun:
    """One scheduled digest of one environment."""

    environment: str
    scheduled_for: dt.datetime
    state: RunState
    updated_at: dt.datetime
    message_ts: str = ""
    error: str = ""
    attempts: int = 0


class HistoryStore(Protocol):
    """Durable history for digests. Every method is safe to call from several threads."""

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """Append transitions (as the watch cache emits them)."""
        ...

    def transitions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[Transition]:
        """Transitions of `environment` with since < at <= until, oldest first."""
        ...

    def change_window(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> ChangeWindow:
        """The transitions of `environment` with since < at <= until, folded per object:
        equal to `change_window.fold(self.transitions(environment, since, until))`."""
        ...

    def record_action(self, record: ActionRecord) -> None:
        """Append one remediation action."""
        ...

    def known_states(self, environment: str, cluster: str) -> dict[ObjectKey, KnownState]:
        """What the store last knew of every object of one cluster (kept by record_transitions
        and record_listing)."""
        ...

    def record_listing(
        self, environment: str, cluster: str, kind: str, states: Mapping[ObjectKey, KnownState]
    ) -> None:
        """Replace what the store knows of one kind in one cluster with a complete listing."""
        ...

    def mark_seen(self, environment: str, clusters: Sequence[str], at: dt.datetime) -> None:
        """Record that fluxbot read `clusters` fine at `at` (a heartbeat while it watches)."""
        ...

    def last_seen(self, environment: str) -> dict[str, dt.datetime]:
        """Per cluster, the last time fluxbot read it fine."""
        ...

    def actions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[ActionRecord]:
        """Actions of `environment` with since < at <= until, oldest first."""
        ...

    def failing_since(self, environment: str) -> dict[ObjectKey, dt.datetime]:
        """For each object whose latest failing/recovered transition is `failing`: since when."""
        ...

    def save_snooze(self, snooze: Snooze) -> None:
        """Add or replace the snooze of one object."""
        ...

    def snoozes(self, environment: str, now: dt.datetime) -> list[Snooze]:
        """Snoozes of `environment` that have not expired at `now`."""
        ...

    def claim_run(self, environment: str, scheduled_for: dt.datetime, now: dt.datetime) -> bool:
        """Mark a digest as being posted; False when it was already posted or skipped.

        A run left in POSTING or FAILED (a crash, a Slack error) may be claimed again.
        """
        ...

    def finish_run(
        self,
        environment: str,
        scheduled_for: dt.datetime,
        state: RunState,
        now: dt.datetime,
        message_ts: str = "",
        error: str = "",
    ) -> None:
        """Record how a claimed run ended."""
        ...

    def last_run(self, environment: str, states: Sequence[RunState]) -> DigestRun | None:
        """The latest run of `environment` in one of `states`, if any."""
        ...

    def save_incident(self, record: IncidentRecord) -> None:
        """Add or replace one incident (keyed by `record.id`)."""
        ...

    def incidents(self, environment: str) -> list[IncidentRecord]:
        """Every incident of `environment` still kept: open, snoozed, and resolved ones not
        yet pruned (a root cause failing again soon after reopens its incident)."""
        ...

    def prune(self, before: dt.datetime) -> int:
        """Forget transitions, actions, expired snoozes, runs and resolved incidents older
        than `before`; count."""
        ...

    def close(self) -> None:
        """Release the store's resources."""
        ...
