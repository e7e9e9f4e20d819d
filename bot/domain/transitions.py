"""Transitions: what changed about a Flux object between two observations of it.

The watch cache compares each new observation with the previous one and emits transitions
(became failing, recovered, revision changed, suspended, resumed, added, removed), which
digests and action tracking subscribe to. Comparing is pure: no clocks, no I/O.
"""

from __future__ import annotations

import datetime as dt
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
