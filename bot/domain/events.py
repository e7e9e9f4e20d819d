"""Kubernetes Events that Flux controllers record on their objects, as people read them."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.kinds import HELM_CHART
from bot.domain.status import FluxObject, ObjectRef, parse_time

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
    # The object the event is about (`involvedObject`), when the event says.
    involved: ObjectRef | None = None

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
    involved = _map(obj.get("involvedObject") or obj.get("regarding"))
    return FluxEvent(
        type=str(obj.get("type") or "Normal"),
        reason=str(obj.get("reason") or ""),
        message=str(obj.get("message") or ""),
        count=count if isinstance(count, int) and count > 0 else 1,
        last_seen=last_seen,
        source=str(source.get("component") or obj.get("reportingComponent") or ""),
        revision=next((str(annotations[a]) for a in REVISION_ANNOTATIONS if a in annotations), ""),
        involved=ObjectRef(
            str(involved.get("kind") or ""),
            str(involved.get("namespace") or ""),
            str(involved.get("name") or ""),
        )
        if involved.get("name")
        else None,
    )


def event_object(event: FluxEvent, obj: FluxObject) -> str:
    """`Kind/name` as `flux events` prints it, with the namespace when it is another one."""
    about = event.involved or obj.ref
    where = f"{about.namespace}/" if about.namespace != obj.namespace else ""
    return f"{about.kind}/{where}{about.name}"


def event_sources(
    obj: FluxObject, objects: Mapping[tuple[str, str, str], FluxObject]
) -> list[ObjectRef]:
    """Whose Events `flux events --for KIND/NAME` shows besides the object's own: its source.

    flux2 cmd/flux/events.go: a Kustomization's `spec.sourceRef`; a HelmRelease's chart source
    and its HelmChart `<namespace>-<name>`; an ImagePolicy's ImageRepository; an Alert's
    Provider; a HelmChart's source. fluxbot also follows the `spec.chartRef` of a HelmRelease,
    and the source of the other kinds that have one (an ImageUpdateAutomation's
    GitRepository, an ExternalArtifact's generator).
    """
    refs: list[ObjectRef] = []
    if obj.helm is not None and obj.helm.chart_repository is not None:
        refs.append(obj.helm.chart_repository)
    if obj.source_ref is not None:
        refs.append(obj.source_ref)
        chart = objects.get((obj.source_ref.kind, obj.source_ref.namespace, obj.source_ref.name))
        if (
            obj.helm is not None
            and chart is not None
            and chart.kind == HELM_CHART.kind
            and chart.source_ref is not None
        ):
            refs.append(chart.source_ref)
    return list(dict.fromkeys(r for r in refs if r != obj.ref))


def newest_first(events: list[FluxEvent], limit: int) -> list[FluxEvent]:
    """The `limit` most recent events, newest first."""
    epoch = dt.datetime.min.replace(tzinfo=dt.UTC)
    return sorted(events, key=lambda e: e.last_seen or epoch, reverse=True)[:limit]


def _map(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}
