"""Transitions: what changed about a Flux object between two observations of it.

The watch cache compares each new observation with the previous one and emits transitions
(became failing, recovered, revision changed, suspended, resumed, added, removed), which
digests and action tracking subscribe to. Comparing is pure: no clocks, no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from bot.domain.status import FluxObject, Health


class Change(StrEnum):
    """The kinds of transition."""

    FAILING = "failing"
    RECOVERED = "recovered"
    REVISION = "revision"
    SUSPENDED = "suspended"
    RESUMED = "resumed"
    ADDED = "added"
    REMOVED = "removed"


@dataclass(frozen=True, slots=True)
class Transition:
    """One change of one object in one cluster, at the moment fluxbot saw it."""

    environment: str
    cluster: str
    kind: str
    namespace: str
    name: str
    change: Change
    at: dt.datetime
    old: str = ""
    new: str = ""
    message: str = ""
    # Set on what the first listing after a start found changed: it happened while fluxbot was
    # not watching, between this moment (when it last saw the cluster) and `at`.
    down_since: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class KnownState:
    """What the history store last knew of one object: enough to tell what changed since.

    `failing` is the object's settled health as the watch cache keeps it (progressing does not
    erase failing; suspending does), so a comparison after a restart emits the same failing and
    recovered transitions the cache would have emitted had it been watching.
    """

    failing: bool
    revision: str
    suspended: bool


@dataclass(frozen=True, slots=True)
class Listing:
    """A complete listing of one kind in one cluster: the watch cache's first after its start."""

    environment: str
    cluster: str
    kind: str
    objects: tuple[FluxObject, ...]
    at: dt.datetime


def settled_health(previous: Health | None, obj: FluxObject | None) -> Health | None:
    """The last health an object settled in: progressing does not erase failing or ready.

    An object that fails, then retries (progressing), then succeeds has recovered; one that
    merely progresses through an upgrade has not. Remembering the settled health tells them apart.
    """
    if obj is None:
        return None
    health = obj.health
    return previous if health is Health.PROGRESSING and previous is not None else health


def transitions(
    environment: str,
    cluster: str,
    old: FluxObject | None,
    new: FluxObject | None,
    old_settled: Health | None,
    at: dt.datetime,
) -> list[Transition]:
    """What changed from `old` to `new` (either may be None: added or removed)."""
    ref = new or old
    if ref is None:
        return []

    def make(change: Change, before: str = "", after: str = "", message: str = "") -> Transition:
        assert ref is not None
        return Transition(
            environment,
            cluster,
            ref.kind,
            ref.namespace,
            ref.name,
            change,
            at,
            before,
            after,
            message,
        )

    if new is None:
        return [make(Change.REMOVED)]
    out = []
    if old is None:
        out.append(make(Change.ADDED, after=new.full_revision))
        if new.suspended:
            # Recorded so the history store knows it is suspended (see KnownState).
            out.append(make(Change.SUSPENDED))
    new_settled = settled_health(old_settled, new)
    if new_settled is Health.FAILING and old_settled is not Health.FAILING:
        out.append(make(Change.FAILING, message=new.message))
    elif new_settled is Health.READY and old_settled is Health.FAILING:
        out.append(make(Change.RECOVERED, message=new.message))
    if old is not None:
        if new.suspended and not old.suspended:
            out.append(make(Change.SUSPENDED))
        elif old.suspended and not new.suspended:
            out.append(make(Change.RESUMED))
        if new.full_revision and new.full_revision != old.full_revision:
            out.append(make(Change.REVISION, old.full_revision, new.full_revision))
    return out


def catch_up(
    listing: Listing,
    known: Mapping[tuple[str, str, str, str], KnownState],
    down_since: dt.datetime,
) -> list[Transition]:
    """What changed between the last known states of `listing`'s kind and the listing itself.

    `known` maps (cluster, kind, namespace, name) to its last recorded state; only entries of
    the listing's cluster and kind are compared. The transitions are the ones the watch cache
    would have emitted had it been watching, marked `down_since`.
    """

    def make(obj_key: tuple[str, str, str], change: Change, **fields: str) -> Transition:
        kind, namespace, name = obj_key
        return Transition(
            listing.environment, listing.cluster, kind, namespace, name, change, listing.at,
            down_since=down_since, **fields,
        )  # fmt: skip

    out: list[Transition] = []
    previous = {
        key[1:]: state
        for key, state in known.items()
        if key[0] == listing.cluster and key[1] == listing.kind
    }
    for obj in listing.objects:
        before = previous.pop(obj.key, None)
        if before is None:
            out.append(make(obj.key, Change.ADDED, new=obj.full_revision))
            if obj.health is Health.FAILING:
                out.append(make(obj.key, Change.FAILING, message=obj.message))
            if obj.suspended:
                out.append(make(obj.key, Change.SUSPENDED))
            continue
        was_failing, revision, suspended = before.failing, before.revision, before.suspended
        settled = settled_health(Health.FAILING if was_failing else None, obj)
        if settled is Health.FAILING and not was_failing:
            out.append(make(obj.key, Change.FAILING, message=obj.message))
        elif settled is Health.READY and was_failing:
            out.append(make(obj.key, Change.RECOVERED, message=obj.message))
        if obj.suspended and not suspended:
            out.append(make(obj.key, Change.SUSPENDED))
        elif suspended and not obj.suspended:
            out.append(make(obj.key, Change.RESUMED))
        if obj.full_revision and obj.full_revision != revision:
            out.append(make(obj.key, Change.REVISION, old=revision, new=obj.full_revision))
    out += [make(key, Change.REMOVED) for key in sorted(previous)]
    return out
