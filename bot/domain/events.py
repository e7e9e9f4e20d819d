"""Kubernetes Events that Flux controllers record on their objects, as people read them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.status import parse_time

# Controllers put the revision an event is about in these annotations.
REVISION_ANNOTATIONS: Final = (
    "source.toolkit.fluxcd.io/revision",
    "kustomize.toolkit.fluxcd.io/revision",
    "helm.toolkit.fluxcd.io/revision",
)


@dataclass(frozen=True, slots=True)
class FluxEvent:
    """One core/v1 Event about a Flux object."""

    type: str
    reason: str
    message: str
    count: int
    last_seen: dt.datetime | None
    source: str
    revision: str

    @property
    def is_warning(self) -> bool:
        """Flux records errors as Warning events."""
        return self.type == "Warning"


def parse_event(obj: Mapping[str, Any]) -> FluxEvent:
    """Read a core/v1 Event (either the events.k8s.io or the core field names)."""
    metadata = _map(obj.get("metadata"))
    annotations = _map(metadata.get("annotations"))
    source = _map(obj.get("source"))
    last_seen = (
        parse_time(obj.get("lastTimestamp"))
        or parse_time(obj.get("eventTime"))
        or parse_time(obj.get("firstTimestamp"))
        or parse_time(metadata.get("creationTimestamp"))
    )
    count = obj.get("count")
    return FluxEvent(
        type=str(obj.get("type") or "Normal"),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or ""),
        count=count if isinstance(count, int) and count > 0 else 1,
        last_seen=last_seen,
        source=str(source.get("component") or obj.get("reportingComponent") or ""),
        revision=next((str(annotations[a]) for a in REVISION_ANNOTATIONS if a in annotations), ""),
    )


def newest_first(events: list[FluxEvent], limit: int) -> list[FluxEvent]:
    """The `limit` most recent events, newest first."""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(events, key=lambda e: e.last_seen or epoch, reverse=True)[:limit]


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
