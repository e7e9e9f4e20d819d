"""One list request for a Flux kind, read and parsed the way every reader of the fleet needs.

The response body is taken raw and decoded once by orjson (the client would decode it to text
first, then parse it with the standard library's json, at twice the CPU), parsed with the
garbage collector paused (see bot/collector.py), and dropped as soon as it is parsed: listings
are the largest transient thing a read ever holds.
"""

from __future__ import annotations

import json
import threading
from typing import Any

import orjson

from bot.collector import collection_paused
from bot.domain.kinds import FluxKind
from bot.domain.status import FluxObject, parse_flux_object

# Listings are decoded and parsed one at a time, process-wide, while their requests still run
# side by side. Under the GIL they never ran in parallel anyway, and 16 of them taking turns
# every few milliseconds cost 15-40% more CPU than one after the other in repeated isolated
# tests (docs/scaling.md); one at a time also keeps one decoded listing in memory, not 16.
_PARSING = threading.Lock()


def list_objects(
    custom: Any, kind: FluxKind, version: str, timeout: tuple[float, float]
) -> tuple[list[FluxObject], str]:
    """Every object of `kind` in the cluster, parsed, and the list's resourceVersion.

    ValueError when the body is not a JSON object: an empty answer would say the kind has none.
    """
    response: Any = custom.list_cluster_custom_object(
        kind.group, version, kind.plural, _request_timeout=timeout, _preload_content=False
    )
    try:
        body = response.data
    finally:
        response.release_conn()
    with _PARSING, collection_paused:
        listing = _decode(body)
        del body
        if not isinstance(listing, dict):
            raise ValueError(f"list of {kind.plural} is not a JSON object")
        # List items of custom resources carry their kind, but the kind listed is the one.
        objects = [
            parse_flux_object(item, kind.kind)
            for item in listing.get("items") or ()
            if isinstance(item, dict)
        ]
        metadata = listing.get("metadata")
    version = str(metadata.get("resourceVersion", "")) if isinstance(metadata, dict) else ""
    return objects, version


def _decode(body: bytes) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        # orjson is strict where the standard library is not (a lone surrogate escape, say):
        # such a body is read the way the client itself would read it.
        return json.loads(body)
