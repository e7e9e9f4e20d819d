"""Which version of each Flux kind a cluster serves, discovered rather than assumed."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from kubernetes import client as k8s

from bot.domain.kinds import FLUX_GROUPS, KINDS, FluxKind


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


def discover(api_client: Any, timeout: tuple[float, float]) -> ServedKinds:
    """Ask the API server which Flux group versions it serves and map each kind to one.

    The group's preferred version wins when it serves the kind; otherwise the newest of the
    versions fluxbot understands. One request for the group list, then usually one per group.
    """
    group_list = k8s.ApisApi(api_client).get_api_versions(_request_timeout=timeout)
    custom = k8s.CustomObjectsApi(api_client)
    versions: dict[str, str] = {}
    for group in group_list.groups or []:
        if group.name not in FLUX_GROUPS:
            continue
        served = [v.version for v in group.versions or []]
        preferred = group.preferred_version.version if group.preferred_version else None
        wanted = [k for k in KINDS if k.group == group.name]
        candidates = [preferred] if preferred in served else []
        candidates += [v for k in wanted for v in k.versions if v in served]
        checked: set[str] = set()
        for version in candidates:
            if version is None or version in checked or all(k.kind in versions for k in wanted):
                continue
            checked.add(version)
            resources = custom.get_api_resources(group.name, version, _request_timeout=timeout)
            kinds_here = {r.kind for r in resources.resources or [] if "/" not in r.name}
            for kind in wanted:
                if kind.kind in kinds_here and version in kind.versions:
                    versions.setdefault(kind.kind, version)
    return ServedKinds(versions)
