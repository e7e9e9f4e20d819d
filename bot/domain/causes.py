"""Root causes: which object the failing ones in a cluster fail because of.

A GitRepository whose deploy key was revoked fails, and so does every Kustomization built
from it and every HelmRelease whose chart comes from it. To a reader that is one problem with
one fix. An object's cause is found, in this order:

- upstream, through `sourceRef` (a HelmRelease through its HelmChart's own source, a
  Kustomization through the ExternalArtifact it reads, the ArtifactGenerator that writes it
  and that generator's sources): the nearest failing one;
- a failing `dependsOn` dependency;
- ownership: a Kustomization failing its health check (reason `HealthCheckFailed`,
  kustomize-controller) because an object it applied is failing; what it applied is known
  from `status.inventory` and from the `kustomize.toolkit.fluxcd.io/name|namespace` labels;
- waiting: an object that only waits (`DependencyNotReady`, or a health check) on a
  dependency or applied object that is merely progressing is attached to it; that
  progressing object then heads the group, since it is what the others wait for.

Following causes upwards ends at the root. Digests, status answers and incidents all group
failures this way, so the rule lives here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from typing import Final

from bot.domain.kinds import (
    ARTIFACT_GENERATOR,
    EXTERNAL_ARTIFACT,
    FLUX_GROUPS,
    HELM_CHART,
    KUSTOMIZATION,
    kind_order,
)
from bot.domain.status import FluxObject, Health, ObjectRef

Key = tuple[str, str, str]

# fluxcd/pkg apis/meta: the Ready reasons of an object that waits on another.
DEPENDENCY_NOT_READY: Final = "DependencyNotReady"
HEALTH_CHECK_FAILED: Final = "HealthCheckFailed"
# Sources whose own upstream is followed: a chart's source, an artifact's generator.
_PASS_THROUGH: Final = frozenset({HELM_CHART.kind, EXTERNAL_ARTIFACT.kind})


@dataclass(frozen=True, slots=True)
class CauseGroup:
    """One root cause in one cluster: the object at the top (failing, or progressing when the
    others only wait for it), and what fails because of it, in kind order (sources first)
    then namespace and name."""

    root: FluxObject
    dependents: tuple[FluxObject, ...]


def group_failures(objects: Iterable[FluxObject]) -> list[CauseGroup]:
    """The failing objects of one cluster grouped by root cause, in the order roots were met."""
    # Plain tuples as keys: hashing them is much cheaper than hashing ObjectRefs, and status
    # answers group every cluster on every question.
    listed = list(objects)
    by_key: dict[Key, FluxObject] = {o.key: o for o in listed}
    failing = [o for o in listed if o.health is Health.FAILING]
    applied = _applied_by(listed, by_key)

    def health_of(key: Key) -> Health | None:
        found = by_key.get(key)
        return found.health if found is not None else None

    def upstream(obj: FluxObject) -> list[Key]:
        # The source chain, nearest first: a chart's or an artifact's own source, and the
        # sources an ArtifactGenerator reads.
        chain: list[Key] = []
        ref = obj.source_ref
        while ref is not None and len(chain) < 4:
            key = (ref.kind, ref.namespace, ref.name)
            if key in chain:
                break
            chain.append(key)
            found = by_key.get(key)
            if found is None:
                break
            if found.kind == ARTIFACT_GENERATOR.kind:
                chain += [k for r in found.depends_on if (k := _key(r)) not in chain]
                break
            if found.kind not in _PASS_THROUGH:
                break
            ref = found.source_ref
        return chain

    def cause(obj: FluxObject) -> Key | None:
        above = upstream(obj)
        depends = [_key(r) for r in obj.depends_on]
        for key in (*above, *depends):
            if health_of(key) is Health.FAILING:
                return key
        checks_health = obj.kind == KUSTOMIZATION.kind and obj.reason == HEALTH_CHECK_FAILED
        children = applied.get(obj.key, ()) if checks_health else ()
        for key in children:
            if health_of(key) is Health.FAILING:
                return key
        if obj.health is not Health.FAILING:
            return None
        if obj.reason == DEPENDENCY_NOT_READY:
            # An ImagePolicy waits on its ImageRepository the same way.
            for key in (*depends, *above):
                if health_of(key) is Health.PROGRESSING:
                    return key
        for key in children:
            if health_of(key) is Health.PROGRESSING:
                return key
        return None

    def root_of(obj: FluxObject) -> Key:
        seen = {obj.key}
        current = obj.key
        while (parent := cause(by_key[current])) is not None and parent not in seen:
            seen.add(parent)
            current = parent
        return current

    groups: dict[Key, list[FluxObject]] = {}
    for obj in failing:
        root = root_of(obj)
        members = groups.setdefault(root, [])
        if root != obj.key:
            members.append(obj)
    return [
        CauseGroup(
            by_key[key],
            tuple(sorted(dependents, key=lambda o: (kind_order(o.kind), o.namespace, o.name))),
        )
        for key, dependents in groups.items()
    ]


def _key(ref: ObjectRef) -> Key:
    return (ref.kind, ref.namespace, ref.name)


def _applied_by(
    objects: list[FluxObject], by_key: dict[Key, FluxObject]
) -> dict[Key, tuple[Key, ...]]:
    """The Flux objects each Kustomization or HelmRelease applied, in inventory order."""
    out: dict[Key, dict[Key, None]] = {}
    for obj in objects:
        for entry in obj.inventory or ():
            if entry.group not in FLUX_GROUPS:
                continue
            key = (entry.kind, entry.namespace, entry.name)
            if key in by_key and key != obj.key:
                out.setdefault(obj.key, {})[key] = None
        owner = obj.owner
        if owner is not None and (owner_key := _key(owner)) != obj.key:
            out.setdefault(owner_key, {})[obj.key] = None
    return {owner: tuple(children) for owner, children in out.items()}


def group_related(objects: Iterable[FluxObject], selected: Set[ObjectRef]) -> list[CauseGroup]:
    """The `selected` objects of one cluster grouped by the selected object they follow from.

    An object's cause is a selected object it points at (as for failures); following causes
    upwards ends at the root. Digests group what recovered together this way: one fixed source
    is one item with the objects that recovered with it.
    """
    # Plain tuples as keys: hashing them is much cheaper than hashing ObjectRefs, and digests
    # group thousands of changes this way.
    return group_selected(
        {(o.kind, o.namespace, o.name): o for o in objects},
        {(r.kind, r.namespace, r.name) for r in selected},
    )


def group_selected(every: Mapping[Key, FluxObject], chosen_keys: Set[Key]) -> list[CauseGroup]:
    """`group_related`, given the cluster's objects by key (in the cluster's order): a digest
    indexes each cluster once for all it groups."""
    chosen = {key: every[key] for key in every if key in chosen_keys}

    def cause(obj: FluxObject) -> Key | None:
        source = obj.source_ref
        source_key = (source.kind, source.namespace, source.name) if source is not None else None
        if source_key is not None and source_key in chosen:
            return source_key
        for ref in obj.depends_on:
            key = (ref.kind, ref.namespace, ref.name)
            if key in chosen:
                return key
        # A HelmRelease's chart may be fine while the chart's own source is the cause.
        chart = every.get(source_key) if source_key is not None else None
        if chart is not None and chart.source_ref is not None:
            ref = chart.source_ref
            key = (ref.kind, ref.namespace, ref.name)
            if key in chosen:
                return key
        return None

    def root_of(key: Key) -> Key:
        seen = {key}
        current = key
        while (parent := cause(chosen[current])) is not None and parent not in seen:
            seen.add(parent)
            current = parent
        return current

    groups: dict[Key, list[FluxObject]] = {}
    for key, obj in chosen.items():
        root = root_of(key)
        members = groups.setdefault(root, [])
        if root != key:
            members.append(obj)
    return [
        CauseGroup(
            chosen[root],
            tuple(sorted(dependents, key=lambda o: (kind_order(o.kind), o.namespace, o.name)))
            if dependents
            else (),
        )
        for root, dependents in groups.items()
    ]
