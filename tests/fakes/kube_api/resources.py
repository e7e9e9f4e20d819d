"""The resource types a server serves (Flux CRDs, events, configmaps, leases), by version."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from .. import crds

_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def _version_priority(version: str) -> tuple[int, int, int]:
    """Sort key putting the version kube-apiserver would prefer first (v2 > v1 > v1beta2)."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


@dataclass(frozen=True)
class Resource:
    """One served resource type: what discovery lists and what the URL paths address."""

    group: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    short_names: tuple[str, ...]
    namespaced: bool
    has_status: bool
    versions: tuple[str, ...]
    crd: crds.CrdVersion | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """(group, plural), the storage key of this resource."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """`plural.group` as it appears in error messages (just `plural` for core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_version(self) -> str:
        """The version objects are stored as: the preferred one."""
        return self.versions[0]

    @property
    def is_core_type(self) -> bool:
        """True for built-in types, which have no `generation` bookkeeping here."""
        return self.crd is None

    def api_version(self, version: str | None = None) -> str:
        """`group/version` (or just `version` for the core group)."""
        version = version or self.storage_version
        return f"{self.group}/{version}" if self.group else version


_CORE_RESOURCES = (
    Resource("", "Event", "events", "event", "EventList", ("ev",), True, False, ("v1",)),
    Resource(
        "", "ConfigMap", "configmaps", "configmap", "ConfigMapList", ("cm",), True, False, ("v1",)
    ),
    Resource(
        "coordination.k8s.io", "Lease", "leases", "lease", "LeaseList", (), True, False, ("v1",)
    ),
)


def build_resources(
    omit_groups: Iterable[str] = (), versions: Mapping[str, Sequence[str]] | None = None
) -> dict[tuple[str, str], Resource]:
    """The resources one server serves, keyed by (group, plural).

    `versions` maps a group (`source.toolkit.fluxcd.io`) or one kind of it
    (`GitRepository.source.toolkit.fluxcd.io`) to the version names to serve instead of the
    CRD's, preferred first; an empty sequence stops serving it.
    """
    omitted = set(omit_groups)
    versions = dict(versions or {})
    by_kind: dict[tuple[str, str], list[crds.CrdVersion]] = {}
    for crd in crds.served_versions():
        by_kind.setdefault((crd.group, crd.kind), []).append(crd)
    out: dict[tuple[str, str], Resource] = {}
    for (group, kind), served in by_kind.items():
        if group in omitted:
            continue
        served.sort(key=lambda c: _version_priority(c.version))
        override = versions.get(f"{kind}.{group}", versions.get(group))
        names = tuple(override) if override is not None else tuple(c.version for c in served)
        if not names:
            continue
        schema_crd = next((c for c in served if c.version == names[0]), served[0])
        out[(group, schema_crd.plural)] = Resource(
            group=group,
            kind=kind,
            plural=schema_crd.plural,
            singular=schema_crd.singular,
            list_kind=schema_crd.list_kind,
            short_names=schema_crd.short_names,
            namespaced=schema_crd.namespaced,
            has_status=schema_crd.has_status_subresource,
            versions=names,
            crd=schema_crd,
        )
    for res in _CORE_RESOURCES:
        if res.group not in omitted or res.group == "":
            out[res.key] = res
    return out


def _group_versions(
    resources: Iterable[Resource], overrides: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Each group's served versions, preferred first: as overridden, else by priority."""
    out: dict[str, list[str]] = {}
    for res in resources:
        if res.group:
            out.setdefault(res.group, []).extend(res.versions)
    for group, names in out.items():
        unique = sorted(set(names), key=_version_priority)
        first = [v for v in overrides.get(group, ()) if v in unique]
        out[group] = [*first, *[v for v in unique if v not in first]]
    return out
