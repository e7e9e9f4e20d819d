"""The lease an action holds on the object it acts on, visible to every fluxbot replica.

While an action runs, its object carries `fluxbot.io/action-lease`: which action, an id that
names no person, since when, and until when the lease holds. The running replica renews it;
another replica refuses to start a different action on the object while it is live, and
treats an expired one (its replica died mid-action) as free. `fluxbot.io/action-id` (the last
button used on the object) stays after the action, so the other half of a double click is
still told the button was used. Both are written in one patch carrying the resourceVersion
just read: the API server lets exactly one of two racing replicas through.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from bot.domain.status import ACTION_ID

ACTION_LEASE: Final = "fluxbot.io/action-lease"
# How long a lease holds without renewal: how long a replica that died mid-action keeps the
# object from other actions. The running replica renews it every RENEW_SECONDS.
LEASE_SECONDS: Final = 90.0
RENEW_SECONDS: Final = 30.0


@dataclass(frozen=True, slots=True)
class ActionLease:
    """An action's hold on one object: what runs, since and until when."""

    id: str
    action: str
    since: dt.datetime
    until: dt.datetime

    @classmethod
    def start(cls, lease_id: str, action: str, now: dt.datetime) -> ActionLease:
        """A fresh lease taken at `now`."""
        return cls(lease_id, action, now, now + dt.timedelta(seconds=LEASE_SECONDS))

    def renewed(self, now: dt.datetime) -> ActionLease:
        """The same lease, held for another LEASE_SECONDS from `now`."""
        return dataclasses.replace(self, until=now + dt.timedelta(seconds=LEASE_SECONDS))

    def live(self, now: dt.datetime) -> bool:
        """Whether the lease still holds at `now`."""
        return now < self.until

    def encode(self) -> str:
        """The annotation value."""
        return json.dumps(
            {
                "id": self.id,
                "action": self.action,
                "since": _rfc3339(self.since),
                "until": _rfc3339(self.until),
            },
            separators=(",", ":"),
        )

    @classmethod
    def parse(cls, value: object) -> ActionLease | None:
        """The lease an annotation value describes; None when absent or unreadable (a lease
        nobody can read cannot say when it ends, so it does not lock the object)."""
        if not isinstance(value, str) or len(value) > 1024:
            return None
        try:
            raw = json.loads(value)
            since = dt.datetime.fromisoformat(str(raw["since"]))
            until = dt.datetime.fromisoformat(str(raw["until"]))
            lease = cls(str(raw["id"]), str(raw["action"]), since, until)
        except (ValueError, TypeError, KeyError):
            return None
        if since.tzinfo is None or until.tzinfo is None or not lease.id:
            return None
        return lease


class ClaimState(StrEnum):
    """What claiming an object for an action found."""

    CLAIMED = "claimed"  # the object is this action's until it is done
    USED = "used"  # this button was already used (by any replica)
    BUSY = "busy"  # another action holds a live lease on the object


@dataclass(frozen=True, slots=True)
class Claim:
    """The answer to a claim, with the lease that holds the object when it is busy."""

    state: ClaimState
    holder: ActionLease | None = None


def judge_claim(
    annotations: Mapping[str, Any], action_id: str, lease: ActionLease, now: dt.datetime
) -> Claim | None:
    """Why the object cannot be claimed for `lease` (used button, live lease), or None."""
    if action_id and annotations.get(ACTION_ID) == action_id:
        return Claim(ClaimState.USED)
    holder = ActionLease.parse(annotations.get(ACTION_LEASE))
    if holder is not None and holder.id != lease.id and holder.live(now):
        return Claim(ClaimState.BUSY, holder)
    return None


def claim_patch(resource_version: str, action_id: str, lease: ActionLease) -> dict[str, Any]:
    """The conditional merge patch that claims the object (and the button, if any)."""
    annotations = {ACTION_LEASE: lease.encode()}
    if action_id:
        annotations[ACTION_ID] = action_id
    return {"metadata": {"resourceVersion": resource_version, "annotations": annotations}}


def lease_patch(resource_version: str, lease: ActionLease | None) -> dict[str, Any]:
    """The conditional merge patch that renews a lease, or removes it (None) when done."""
    value = lease.encode() if lease is not None else None
    return {"metadata": {"resourceVersion": resource_version, "annotations": {ACTION_LEASE: value}}}


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).isoformat(timespec="seconds")
