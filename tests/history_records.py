"""Records the history tests write: transitions, actions and snoozes of production's
Kustomization flux-system/apps (and its neighbours) at minutes after T0."""

from __future__ import annotations

import datetime as dt

from bot.domain.history import ActionRecord, Snooze
from bot.domain.transitions import Change, Transition

T0 = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
PROD, STAGING = "production", "staging"


def at(minutes: float) -> dt.datetime:
    """T0 plus `minutes`."""
    return T0 + dt.timedelta(minutes=minutes)


def tr(
    change: Change,
    when: dt.datetime,
    name: str = "apps",
    *,
    environment: str = PROD,
    cluster: str = "prod-eu-1",
    kind: str = "Kustomization",
    old: str = "",
    new: str = "",
    message: str = "",
) -> Transition:
    """A transition of one object (by default production's Kustomization flux-system/apps)."""
    return Transition(
        environment, cluster, kind, "flux-system", name, change, when, old, new, message
    )


def action(when: dt.datetime, environment: str = PROD, name: str = "apps") -> ActionRecord:
    """A reconcile by alice."""
    return ActionRecord(
        when, environment, "prod-eu-1", "Kustomization", "flux-system", name, "reconcile",
        "alice", True, "reconciled by alice",
    )  # fmt: skip


def snooze(until: dt.datetime, name: str = "apps", by: str = "alice") -> Snooze:
    """A snooze of one production object."""
    return Snooze(PROD, "prod-eu-1", "Kustomization", "flux-system", name, until, "failing", by)
