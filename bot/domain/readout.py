"""What a reader needs beyond the `flux get` columns: since when, stuck or not, what runs.

`flux get` says an object is Ready False; a person on call also needs to know for how long, and
whether a reconcile that is "in progress" has been in progress for days. These facts come from
the object's own conditions and, for HelmReleases, `status.history`.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Final

from bot.domain.status import Condition, FluxObject, Health

# Helm release statuses (helm.sh/helm/v3 pkg/release/status.go) as helm-controller copies them
# into `status.history[].status`.
HELM_DEPLOYED: Final = "deployed"
HELM_FAILED: Final = "failed"


def state_since(obj: FluxObject) -> dt.datetime | None:
    """When the object entered the state it is shown in, as its conditions record it."""
    by_type = {c.type: c for c in obj.conditions}
    match obj.health:
        case Health.FAILING:
            stalled = by_type.get("Stalled")
            if obj.stalled and stalled is not None and stalled.last_transition_time:
                return _earliest(stalled, by_type.get("Ready"))
            return obj.ready_since
        case Health.PROGRESSING:
            reconciling = by_type.get("Reconciling")
            if obj.reconciling and reconciling is not None:
                return reconciling.last_transition_time
            if "Ready" in by_type:
                return obj.ready_since
            # Never reconciled: waiting since it was created.
            return obj.created_at
        case Health.SUSPENDED:
            return obj.suspension.at if obj.suspension else None
        case Health.READY:
            return obj.ready_since


def _earliest(*conditions: Condition | None) -> dt.datetime | None:
    times = [c.last_transition_time for c in conditions if c and c.last_transition_time]
    return min(times) if times else None


def age(obj: FluxObject, now: dt.datetime) -> dt.timedelta | None:
    """How long the object has been in its current state (None when unknown)."""
    since = state_since(obj)
    if since is None:
        return None
    return max(now - since, dt.timedelta(0))


def is_stuck(obj: FluxObject, now: dt.datetime) -> bool:
    """Progressing for longer than its controller allows one reconcile to take."""
    if obj.health is not Health.PROGRESSING or obj.timeout is None:
        return False
    elapsed = age(obj, now)
    return elapsed is not None and elapsed > obj.timeout


def duration_words(delta: dt.timedelta) -> str:
    """A short age: `45 s`, `12 min`, `7 h`, `4 d`."""
    seconds = int(delta.total_seconds())
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min"
    if seconds < 2 * 86400:
        return f"{seconds // 3600} h"
    return f"{seconds // 86400} d"


@dataclass(frozen=True, slots=True)
class ReleaseVersions:
    """A HelmRelease's attempted chart version next to the one that actually runs."""

    attempted: str
    attempted_status: str
    running: str

    def __str__(self) -> str:
        if not self.running:
            return f"{self.attempted} {self.attempted_status}, nothing running"
        return f"{self.attempted} {self.attempted_status} · {self.running} running"


def release_versions(obj: FluxObject) -> ReleaseVersions | None:
    """What was attempted and what runs, when they differ; None when they are the same."""
    helm = obj.helm
    if helm is None:
        return None
    deployed = next((s for s in helm.history if s.status == HELM_DEPLOYED), None)
    running = deployed.chart_version if deployed else ""
    newest = helm.history[0] if helm.history else None
    if newest is not None and newest.status != HELM_DEPLOYED and newest is not deployed:
        attempted, status = newest.chart_version, newest.status or "not deployed"
    elif helm.last_attempted_revision and helm.last_attempted_revision != running:
        # The chart could not be fetched or templated: Helm never ran, nothing in history.
        attempted, status = helm.last_attempted_revision, "attempted"
    else:
        return None
    if attempted == running and status != HELM_FAILED:
        return None
    return ReleaseVersions(attempted, status, running)
