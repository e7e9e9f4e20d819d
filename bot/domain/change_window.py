"""A digest window's transitions, folded per object to what a digest reads of them.

A day of a 100,000-object fleet is ~75,000 transitions per environment, but a digest reads
only a few facts per object: how often it failed (flapping), its latest failure, its latest
recovery, and where its revision went (first old, latest new). Folding once, in the history
store, spares building a `Transition` for every row: the digest's cost then follows the
objects that changed, not the rows, and it leaves few long-lived objects behind for the
garbage collector to scan.

`fold` is the reference: a history store may fold its rows however it likes (SQLite folds
them straight from the query) as long as the result equals `fold` of its `transitions`, order
included (tests/test_history_contract.py checks both stores).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from bot.domain.history import ObjectKey
from bot.domain.transitions import Change, Transition

# Per object whose revision changed: the `old` of its first revision transition in the
# window, then the `new`, `at`, `down_since` and `environment` of its latest one. A plain
# tuple of strings and datetimes: the garbage collector stops tracking it (20,000 of these
# per digest at fleet scale).
Revision = tuple[str, str, dt.datetime, dt.datetime | None, str]


@dataclass(frozen=True, slots=True)
class ChangeWindow:
    """The transitions of one window (since < at <= until), folded per object.

    `failing` and `recovered` hold each object's latest such transition, oldest first (ties
    in the order the objects first did so). `revisions` is in the order of each object's
    latest revision transition.
    """

    failures: Mapping[ObjectKey, int] = field(default_factory=dict)
    failing: tuple[Transition, ...] = ()
    recovered: tuple[Transition, ...] = ()
    revisions: Mapping[ObjectKey, Revision] = field(default_factory=dict)

    def same_as(self, other: ChangeWindow) -> bool:
        """Equal, and in the same order (mappings compare equal in any order)."""
        return (
            self == other
            and list(self.failures.items()) == list(other.failures.items())
            and list(self.revisions.items()) == list(other.revisions.items())
        )


def fold(transitions: Iterable[Transition]) -> ChangeWindow:
    """The window of `transitions` (oldest first, as the stores return them)."""
    failures: dict[ObjectKey, int] = {}
    failing: dict[ObjectKey, Transition] = {}
    recovered: dict[ObjectKey, Transition] = {}
    revisions: dict[ObjectKey, Revision] = {}
    for t in transitions:
        change = t.change
        if change is Change.FAILING:
            key = (t.cluster, t.kind, t.namespace, t.name)
            failures[key] = failures.get(key, 0) + 1
            failing[key] = t
        elif change is Change.RECOVERED:
            recovered[(t.cluster, t.kind, t.namespace, t.name)] = t
        elif change is Change.REVISION:
            key = (t.cluster, t.kind, t.namespace, t.name)
            # Popped and put back: the object moves to its latest revision's place.
            previous = revisions.pop(key, None)
            first = previous[0] if previous is not None else t.old
            revisions[key] = (first, t.new, t.at, t.down_since, t.environment)
    return ChangeWindow(failures, oldest_first(failing), oldest_first(recovered), revisions)


def oldest_first(latest: Mapping[ObjectKey, Transition]) -> tuple[Transition, ...]:
    """Each object's latest transition, oldest first; ties keep the mapping's order."""
    return tuple(sorted(latest.values(), key=_at))


def _at(t: Transition) -> dt.datetime:
    return t.at
