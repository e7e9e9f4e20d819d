"""Change health of an environment, from the transitions the history store recorded.

- A **change** is a new revision reaching a cluster: a `revision` transition of a
  GitRepository, OCIRepository or Bucket (the fetched artifact), or of a HelmRelease (a new
  chart version), counted once per cluster, object and revision.
- A change **failed** when a Kustomization or HelmRelease of the same cluster turned failing
  after it and before the cluster's next change, within `FAILURE_WINDOW`. The change failure
  rate is failed changes over changes.
- **Time to recovery** runs from an object's `failing` transition to its next `recovered`
  one; still-failing objects are counted apart.
- **Flapping** objects are those that turned failing most often (twice or more).

Pure: no I/O; the caller passes the transitions and how far back the history reaches.
"""

from __future__ import annotations

import datetime as dt
import statistics
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from bot.domain.transitions import Change, Transition

FAILURE_WINDOW: Final = dt.timedelta(hours=24)
CHANGE_KINDS: Final = frozenset({"GitRepository", "OCIRepository", "Bucket", "HelmRelease"})
WORKLOAD_KINDS: Final = frozenset({"Kustomization", "HelmRelease"})
CHART_DAYS: Final = 28
MAX_FLAPPING: Final = 5


@dataclass(frozen=True, slots=True)
class DayCount:
    """Failures and recoveries on one UTC day; `covered` False before the history begins."""

    day: dt.date
    failures: int
    recoveries: int
    covered: bool = True


@dataclass(frozen=True, slots=True)
class Flapping:
    """An object that turned failing `count` times in the window."""

    cluster: str
    kind: str
    namespace: str
    name: str
    count: int


@dataclass(frozen=True, slots=True)
class ChangeHealth:
    """An environment's change health over a window, and failures per day for the chart."""

    environment: str
    since: dt.datetime
    until: dt.datetime
    # From when the history store has data (its retention), when that is after `since`.
    history_from: dt.datetime | None
    changes: int
    failed_changes: int
    revisions: int
    recoveries: tuple[dt.timedelta, ...]
    still_failing: int
    flapping: tuple[Flapping, ...]
    days: tuple[DayCount, ...]
    transitions: int

    @property
    def failure_rate(self) -> float | None:
        """Failed changes over changes; None without changes."""
        return self.failed_changes / self.changes if self.changes else None

    @property
    def median_recovery(self) -> dt.timedelta | None:
        """The median time to recovery, None without recoveries."""
        if not self.recoveries:
            return None
        return dt.timedelta(seconds=statistics.median(r.total_seconds() for r in self.recoveries))

    @property
    def worst_recovery(self) -> dt.timedelta | None:
        """The longest time to recovery, None without recoveries."""
        return max(self.recoveries) if self.recoveries else None

    @property
    def no_history(self) -> bool:
        """Nothing at all was recorded in the window."""
        return self.transitions == 0


def change_health(
    environment: str,
    transitions: Sequence[Transition],
    since: dt.datetime,
    until: dt.datetime,
    history_from: dt.datetime | None = None,
    chart_days: int = CHART_DAYS,
) -> ChangeHealth:
    """Change health of `environment` from its transitions (oldest first) in (since, until];
    the chart covers the `chart_days` days up to `until` (transitions must cover them too)."""
    ordered = sorted(transitions, key=lambda t: t.at)
    window = [t for t in ordered if since < t.at <= until]
    changes = _changes(window)
    failed = sum(1 for c in changes if _failed(c, changes, window))
    recoveries, still = _recoveries(window)
    flaps = Counter(
        (t.cluster, t.kind, t.namespace, t.name) for t in window if t.change is Change.FAILING
    )
    flapping = tuple(
        Flapping(*key, count)
        for key, count in sorted(flaps.items(), key=lambda kv: (-kv[1], kv[0]))
        if count >= 2
    )[:MAX_FLAPPING]
    start = history_from if history_from is not None and history_from > since else None
    return ChangeHealth(
        environment=environment,
        since=since,
        until=until,
        history_from=start,
        changes=len(changes),
        failed_changes=failed,
        revisions=len({c.new.rsplit(":", 1)[-1] for c in changes}),
        recoveries=tuple(recoveries),
        still_failing=still,
        flapping=flapping,
        days=_days(ordered, until, chart_days, history_from),
        transitions=len(window),
    )


def _changes(window: Sequence[Transition]) -> list[Transition]:
    seen: set[tuple[str, str, str, str, str]] = set()
    out = []
    for t in window:
        if t.change is not Change.REVISION or t.kind not in CHANGE_KINDS or not t.new:
            continue
        key = (t.cluster, t.kind, t.namespace, t.name, t.new)
        if key not in seen:
            seen.add(key)
            out.append(t)
    return out


def _failed(
    change: Transition, changes: Sequence[Transition], window: Sequence[Transition]
) -> bool:
    later = [c.at for c in changes if c.cluster == change.cluster and c.at > change.at]
    end = min([*later, change.at + FAILURE_WINDOW])
    return any(
        t.change is Change.FAILING
        and t.kind in WORKLOAD_KINDS
        and t.cluster == change.cluster
        and change.at <= t.at < end
        for t in window
    )


def _recoveries(window: Sequence[Transition]) -> tuple[list[dt.timedelta], int]:
    failing: dict[tuple[str, str, str, str], dt.datetime] = {}
    out = []
    for t in window:
        key = (t.cluster, t.kind, t.namespace, t.name)
        if t.change is Change.FAILING:
            failing.setdefault(key, t.at)
        elif t.change in (Change.RECOVERED, Change.REMOVED) and key in failing:
            started = failing.pop(key)
            if t.change is Change.RECOVERED:
                out.append(t.at - started)
    return out, len(failing)


def _days(
    ordered: Sequence[Transition],
    until: dt.datetime,
    chart_days: int,
    history_from: dt.datetime | None,
) -> tuple[DayCount, ...]:
    last = until.astimezone(dt.UTC).date()
    days = [last - dt.timedelta(days=n) for n in range(chart_days - 1, -1, -1)]
    failures = Counter(
        t.at.astimezone(dt.UTC).date() for t in ordered if t.change is Change.FAILING
    )
    recovered = Counter(
        t.at.astimezone(dt.UTC).date() for t in ordered if t.change is Change.RECOVERED
    )
    first = history_from.astimezone(dt.UTC).date() if history_from is not None else None
    return tuple(
        DayCount(d, failures[d], recovered[d], covered=first is None or d >= first) for d in days
    )
