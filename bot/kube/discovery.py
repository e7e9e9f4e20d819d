"""Which version of each Flux kind a cluster serves, discovered rather than assumed.

One request usually suffices: `/apis` asked for aggregated discovery (Kubernetes >= 1.26 as
apidiscovery.k8s.io/v2beta1, >= 1.30 as v2) lists every group, version and resource at once.
Like client-go (`discovery/discovery_client.go`, `downloadAPIs`), the answer is told apart by
its Content-Type; an older server answers the legacy APIGroupList instead, and then each Flux
group version is asked for its resources (`discovery/aggregated_discovery.go` is how client-go
reads the aggregated document, stale versions included).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from kubernetes import client as k8s

from bot.domain.kinds import FLUX_GROUPS, KINDS, FluxKind

_AGGREGATED_GROUP = "apidiscovery.k8s.io"
_AGGREGATED_KIND = "APIGroupDiscoveryList"
_AGGREGATED_VERSIONS = ("v2", "v2beta1")
# Newest first, then the legacy document for servers that know neither. client-go sent these
# three while it read v2beta1; it has since dropped v2beta1, which only 1.26-1.29 servers serve.
_ACCEPT = ",".join(
    [
        f"application/json;g={_AGGREGATED_GROUP};v={v};as={_AGGREGATED_KIND}"
        for v in _AGGREGATED_VERSIONS
    ]
    + ["application/json"]
)


@dataclass(frozen=True, slots=True)
class ServedKinds:
    """The API version to use for each Flux kind this cluster serves."""

    versions: Mapping[str, str]

    @property
    def flux_installed(self) -> bool:
        """Whether the cluster serves any Flux API at all."""
        return bool(self.versions)

    def version_of(self, kind: FluxKind) -> str | None:
        """The served version of `kind`, or None when the cluster does not serve it."""
        return self.versions.get(kind.kind)


class _Malformed(Exception):
    """The aggregated discovery document is not what apidiscovery.k8s.io/v2 describes."""


def discover(api_client: Any, timeout: tuple[float, float]) -> ServedKinds:
    """Ask the API server which Flux group versions it serves and map each kind to one.

    The group's preferred version wins when it serves the kind; otherwise the newest of the
    versions fluxbot understands. One request when the server serves aggregated discovery;
    otherwise the group list, then usually one request per group.
    """
    apis = k8s.ApisApi(api_client)
    # A urllib3 response: its Content-Type says which document came back.
    response: Any = apis.get_api_versions(
        _request_timeout=timeout, _preload_content=False, _headers={"Accept": _ACCEPT}
    )
    try:
        content_type = response.headers.get("Content-Type") or ""
        body = response.data
    finally:
        # Read in full: the connection goes back to the pool for the listings that follow.
        response.release_conn()
    if _is_aggregated(content_type):
        try:
            return _from_aggregated(body)
        except _Malformed:
            # A server or proxy that mangles the document: the legacy requests still work.
            group_list = apis.get_api_versions(_request_timeout=timeout)
    else:
        # Decoded exactly as ApisApi would have, so a legacy answer costs no second request.
        text = body.decode("utf-8")
        group_list = api_client.deserialize(text, "V1APIGroupList", content_type)
    return _from_legacy(api_client, group_list, timeout)


def _is_aggregated(content_type: str) -> bool:
    """client-go's ContentTypeIsGVK: JSON with g, v, as naming an APIGroupDiscoveryList."""
    base, *raw_params = content_type.split(";")
    params = {}
    for param in raw_params:
        key, _, value = param.partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return (
        base.strip().lower() == "application/json"
        and params.get("g") == _AGGREGATED_GROUP
        and params.get("v") in _AGGREGATED_VERSIONS
        and params.get("as") == _AGGREGATED_KIND
    )


def _from_aggregated(body: bytes) -> ServedKinds:
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise _Malformed from None
    items = _field(document, "items", list)
    versions: dict[str, str] = {}
    for item in items:
        name = _field(_field(item, "metadata", dict, default={}), "name", str, default="")
        if name not in FLUX_GROUPS:
            continue
        kinds_by_version: dict[str, set[str]] = {}
        for entry in _field(item, "versions", list, default=[]):
            version = _field(entry, "version", str)
            # client-go leaves a Stale version out of the group altogether: its resources
            # may be long out of date, and the first version that is not Stale is preferred.
            if entry.get("freshness") == "Stale":
                continue
            kinds = set()
            for resource in _field(entry, "resources", list, default=[]):
                kind = (_field(resource, "responseKind", (dict, type(None))) or {}).get("kind")
                # client-go skips a resource without a responseKind; so do we.
                if isinstance(kind, str) and kind:
                    kinds.add(kind)
            kinds_by_version[version] = kinds
        served = list(kinds_by_version)
        _choose(name, served, served[0] if served else None, kinds_by_version.__getitem__, versions)
    return ServedKinds(versions)


def _field(obj: Any, key: str, kind: type | tuple[type, ...], default: Any = None) -> Any:
    """`obj[key]` (or `default` when absent), which must be a `kind`."""
    if not isinstance(obj, dict):
        raise _Malformed
    value = obj.get(key, default)
    if not isinstance(value, kind):
        raise _Malformed
    return value


def _from_legacy(api_client: Any, group_list: Any, timeout: tuple[float, float]) -> ServedKinds:
    custom = k8s.CustomObjectsApi(api_client)
    versions: dict[str, str] = {}

    def kinds_at(group: str) -> Callable[[str], set[str]]:
        def fetch(version: str) -> set[str]:
            resources = custom.get_api_resources(group, version, _request_timeout=timeout)
            return {r.kind for r in resources.resources or [] if "/" not in r.name}

        return fetch

    for group in group_list.groups or []:
        if group.name not in FLUX_GROUPS:
            continue
        served = [v.version for v in group.versions or []]
        preferred = group.preferred_version.version if group.preferred_version else None
        _choose(group.name, served, preferred, kinds_at(group.name), versions)
    return ServedKinds(versions)


def _choose(
    group: str,
    served: list[str],
    preferred: str | None,
    kinds_at: Callable[[str], set[str]],
    versions: dict[str, str],
) -> None:
    """Record in `versions` the version to use for each of `group`'s kinds it serves.

    `kinds_at(version)` is asked only for the versions needed, preferred first.
    """
    wanted = [k for k in KINDS if k.group == group]
    candidates = [preferred] if preferred in served else []
    candidates += [v for k in wanted for v in k.versions if v in served]
    checked: set[str] = set()
    for version in candidates:
        if version is None or version in checked or all(k.kind in versions for k in wanted):
            continue
        checked.add(version)
        kinds_here = kinds_at(version)
        for kind in wanted:
            if kind.kind in kinds_here and version in kind.versions:
                versions.setdefault(kind.kind, version)
