"""The shard rules: which ConfigMap holds what, how records merge, what retention keeps."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final, TypeVar

from bot.domain.history import ActionRecord, ObjectKey, RunState, fold_known
from bot.domain.incidents import IncidentState
from bot.domain.transitions import Change, Transition
from bot.history.configmap.codec import HealthChanges, Known, Seen, StateShard, as_utc

T = TypeVar("T")
# Transitions and actions: both are records with an `at` time.
_Timed = TypeVar("_Timed", Transition, ActionRecord)
STORE_LABEL: Final = "fluxbot.io/history"
SHARD_LABEL: Final = "fluxbot.io/history-shard"
ENVIRONMENT_ANNOTATION: Final = "fluxbot.io/environment"
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
ENV_SHARD = "environment"
STATE_SHARD = "state"
FINAL_STATES: Final = frozenset({RunState.POSTED, RunState.SKIPPED})
HEALTH_CHANGES: Final = frozenset({Change.FAILING, Change.RECOVERED, Change.REMOVED})


class HistoryUnavailable(Exception):
    """The history ConfigMaps cannot be read or written now; the message says why."""


class Conflict(Exception):
    """Someone else wrote the shard since we read it (409), or deleted it (404)."""


@dataclass
class Pending:
    """Transitions and actions recorded but not written yet."""

    transitions: list[Transition] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    # Complete listings (cluster, kind, states), applied before the transitions.
    listings: list[tuple[str, str, Known]] = field(default_factory=list)
    seen: Seen = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.transitions or self.actions or self.listings or self.seen)


def transition_key(t: Transition) -> ObjectKey:
    """The object a transition is about."""
    return (t.cluster, t.kind, t.namespace, t.name)


def fold_health(health: HealthChanges, transitions: Iterable[Transition]) -> HealthChanges:
    """`health` updated with `transitions` (in any order), as SqliteHistory's upsert does.

    The latest failing/recovered/removed transition of an object wins, except that failing
    again without having recovered keeps the earlier failing time (a restarted watch cache,
    on this replica or the next leader, reports every failing object anew).
    """
    out = dict(health)
    for t in transitions:
        if t.change not in HEALTH_CHANGES:
            continue
        key = transition_key(t)
        known = out.get(key)
        if known is None:
            out[key] = (t.change, t.at)
        elif known[0] is Change.FAILING and t.change is Change.FAILING:
            out[key] = (Change.FAILING, min(known[1], t.at))
        elif t.at >= known[1]:
            out[key] = (t.change, t.at)
    return out


def fold_pending(known: Known, seen: Seen, pending: Pending | None) -> tuple[Known, Seen]:
    """`known` and `seen` with the buffered listings, transitions and heartbeats applied."""
    if not pending:
        return known, seen
    out = dict(known)
    for cluster, kind, states in pending.listings:
        out = {k: v for k, v in out.items() if (k[0], k[1]) != (cluster, kind)}
        out.update(states)
    seen = dict(seen)
    for cluster, at in pending.seen.items():
        seen[cluster] = max(at, seen.get(cluster, at))
    return fold_known(out, pending.transitions), seen


def settle_health(health: HealthChanges, before: dt.datetime) -> HealthChanges:
    """`health` without the recoveries and removals older than `before`.

    Failing entries stay however old they are: an object failing for longer than the
    retention is still failing, and since when.
    """
    return {
        key: (change, at)
        for key, (change, at) in health.items()
        if change is Change.FAILING or at >= before
    }


def merge_timed(old: Sequence[T], new: Iterable[T], at: Callable[[T], dt.datetime]) -> list[T]:
    """`old` plus whatever of `new` it lacks, oldest first (records are equal by value)."""
    seen = set(old)
    merged = list(old)
    for item in new:
        if item not in seen:
            seen.add(item)
            merged.append(item)
    merged.sort(key=at)
    return merged


def within_window(
    stored: Sequence[_Timed], pending: Iterable[_Timed], since: dt.datetime, until: dt.datetime
) -> list[_Timed]:
    """Records with since < at <= until: a slice of the sorted `stored`, plus `pending`."""
    since, until = as_utc(since), as_utc(until)
    lo = bisect_right(stored, since, key=lambda r: r.at)
    hi = bisect_right(stored, until, key=lambda r: r.at)
    out = list(stored[lo:hi])
    fresh = [r for r in pending if since < r.at <= until]
    return merge_timed(out, fresh, lambda r: r.at) if fresh else out


def records_since(
    ts: list[Transition], acts: list[ActionRecord], cutoff: dt.datetime
) -> tuple[list[Transition], list[ActionRecord]]:
    """The transitions and actions at or after `cutoff` (both lists are oldest first)."""
    return (
        ts[bisect_left(ts, cutoff, key=lambda t: t.at) :],
        acts[bisect_left(acts, cutoff, key=lambda a: a.at) :],
    )


def prune_state(state: StateShard, before: dt.datetime) -> int:
    """Forget snoozes that expired and runs scheduled before `before`; how many.

    The latest run of each environment in each state is kept whatever its age, so that
    last_run() still knows when a weekly digest was last posted (as SqliteHistory does).
    """
    latest: dict[tuple[str, RunState], dt.datetime] = {}
    for run in state.runs.values():
        slot = (run.environment, run.state)
        if slot not in latest or run.scheduled_for > latest[slot]:
            latest[slot] = run.scheduled_for
    count = 0
    for key, run in list(state.runs.items()):
        if run.scheduled_for < min(before, latest[(run.environment, run.state)]):
            del state.runs[key]
            count += 1
    for snooze_key, snooze in list(state.snoozes.items()):
        if snooze.until < before:
            del state.snoozes[snooze_key]
            count += 1
    for incident_key, incident in list(state.incidents.items()):
        if (
            incident.state is IncidentState.RESOLVED
            and incident.resolved_at is not None
            and incident.resolved_at < before
        ):
            del state.incidents[incident_key]
            count += 1
    return count


def shard_name(prefix: str, environment: str) -> str:
    """The ConfigMap name of one environment's shard (hashed when its name cannot be used)."""
    name = f"{prefix}-env-{environment}"
    if DNS_LABEL.match(environment) and len(name) <= 253:
        return name
    digest = hashlib.sha256(environment.encode()).hexdigest()[:16]
    return f"{prefix}-env-{digest}"
