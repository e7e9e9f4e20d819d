"""Incidents as they are remembered: one per root cause per environment, with its message.

The history store keeps these records so that a restart or a new leader updates the message
already posted instead of posting another. What an incident shows and when it changes is
decided in `bot.incidents`; this module is only the record and its identity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

CLUSTER_UNREADABLE: Final = "cluster-unreadable"
"""The `kind` of the incident raised for a cluster that cannot be read (it has no object)."""


class IncidentState(StrEnum):
    """Where an incident stands."""

    OPEN = "open"
    RESOLVED = "resolved"
    SNOOZED = "snoozed"


def incident_id(
    environment: str, cluster: str, kind: str, namespace: str = "", name: str = ""
) -> str:
    """The stable identity of a root cause: the same root in the same cluster is one incident."""
    return "/".join((environment, cluster, kind, namespace, name))


@dataclass(frozen=True, slots=True)
class IncidentRecord:
    """One incident: its root cause, its Slack message, and how it ended (if it has)."""

    environment: str
    cluster: str
    # The root object; kind CLUSTER_UNREADABLE (namespace and name empty) for a cluster.
    kind: str
    namespace: str
    name: str
    state: IncidentState
    failing_since: dt.datetime
    channel: str = ""
    # Empty until the message is posted.
    message_ts: str = ""
    # A link to the message (chat.getPermalink), for `/flux incidents` and digests.
    permalink: str = ""
    posted_at: dt.datetime | None = None
    # The last top-level post or re-announcement in the thread.
    announced_at: dt.datetime | None = None
    resolved_at: dt.datetime | None = None
    # How many times the root cause recovered and failed again while this incident lived.
    flaps: int = 0
    # The root's revision when the incident was posted, to tell "fixed by revision X".
    revision: str = ""
    # Why it ended, in words ("alice's reconcile", "revision main@sha1:…"), or who snoozed it.
    outcome: str = ""

    @property
    def id(self) -> str:
        """See `incident_id`."""
        return incident_id(self.environment, self.cluster, self.kind, self.namespace, self.name)

    @property
    def is_cluster(self) -> bool:
        """Whether this is a "cluster unreadable" incident."""
        return self.kind == CLUSTER_UNREADABLE

    @property
    def open(self) -> bool:
        """Whether the incident is still failing and announced as such."""
        return self.state is IncidentState.OPEN

    def to_json(self) -> dict[str, object]:
        """A JSON document both history backends store as is."""

        def when(moment: dt.datetime | None) -> str | None:
            return moment.astimezone(dt.UTC).isoformat() if moment else None

        return {
            "environment": self.environment,
            "cluster": self.cluster,
            "kind": self.kind,
            "namespace": self.namespace,
            "name": self.name,
            "state": self.state.value,
            "failing_since": when(self.failing_since),
            "channel": self.channel,
            "message_ts": self.message_ts,
            "permalink": self.permalink,
            "posted_at": when(self.posted_at),
            "announced_at": when(self.announced_at),
            "resolved_at": when(self.resolved_at),
            "flaps": self.flaps,
            "revision": self.revision,
            "outcome": self.outcome,
        }

    @classmethod
    def from_json(cls, data: dict[str, object]) -> IncidentRecord:
        """Back from `to_json`; ValueError when the document is not one."""

        def when(key: str) -> dt.datetime | None:
            value = data.get(key)
            if value is None:
                return None
            moment = dt.datetime.fromisoformat(str(value))
            return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)

        since = when("failing_since")
        if since is None:
            raise ValueError("an incident record needs failing_since")
        flaps = data.get("flaps", 0)
        return cls(
            environment=str(data["environment"]),
            cluster=str(data["cluster"]),
            kind=str(data["kind"]),
            namespace=str(data.get("namespace", "")),
            name=str(data.get("name", "")),
            state=IncidentState(str(data["state"])),
            failing_since=since,
            channel=str(data.get("channel", "")),
            message_ts=str(data.get("message_ts", "")),
            permalink=str(data.get("permalink", "")),
            posted_at=when("posted_at"),
            announced_at=when("announced_at"),
            resolved_at=when("resolved_at"),
            flaps=int(flaps) if isinstance(flaps, int | str) else 0,
            revision=str(data.get("revision", "")),
            outcome=str(data.get("outcome", "")),
        )
