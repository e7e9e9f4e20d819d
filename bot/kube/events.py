"""Read the recent Kubernetes Events that Flux controllers recorded on one object."""

from __future__ import annotations

from typing import Any, Final

from kubernetes import client as k8s

from bot.domain.events import FluxEvent, newest_first, parse_event
from bot.domain.fleet import EventsUnavailable
from bot.domain.status import ObjectRef
from bot.kube.errors import describe_error

# Enough to see what happened lately without flooding a chat message.
EVENT_LIMIT: Final = 10


def read_events(api_client: Any, ref: ObjectRef, timeout: tuple[float, float]) -> list[FluxEvent]:
    """The newest Events about `ref`; EventsUnavailable says why when they cannot be read."""
    selector = f"involvedObject.kind={ref.kind},involvedObject.name={ref.name}"
    try:
        listing = k8s.CoreV1Api(api_client).list_namespaced_event(
            ref.namespace, field_selector=selector, _request_timeout=timeout
        )
        items = api_client.sanitize_for_serialization(listing).get("items") or []
    except Exception as err:
        server = getattr(api_client.configuration, "host", "?")
        raise EventsUnavailable(describe_error(err, server, timeout[1]).message) from err
    return newest_first([parse_event(item) for item in items], EVENT_LIMIT)
