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

from collections.abc import Iterable
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
    listed = list(objects)
    by_ref = {o.ref: o for o in listed}
    failing = [o for o in listed if o.health is Health.FAILING]
    applied = _applied_by(listed, by_ref)

    def is_failing(ref: ObjectRef) -> bool:
        found = by_ref.get(ref)
        return found is not None and found.health is Health.FAILING

    def is_progressing(ref: ObjectRef) -> bool:
        found = by_ref.get(ref)
        return found is not None and found.health is Health.PROGRESSING

    def upstream(obj: FluxObject) -> list[ObjectRef]:
        # The source chain, nearest first: a chart's or an artifact's own source, and the
        # sources an ArtifactGenerator reads.
        chain: list[ObjectRef] = []
        ref = obj.source_ref
        while ref is not None and ref not in chain and len(chain) < 4:
            chain.append(ref)
            found = by_ref.get(ref)
            if found is None:
                break
            if found.kind == ARTIFACT_GENERATOR.kind:
                chain += [r for r in found.depends_on if r not in chain]
                break
            if found.kind not in _PASS_THROUGH:
                break
            ref = found.source_ref
        return chain

    def cause(obj: FluxObject) -> FluxObject | None:
        for ref in upstream(obj):
            if is_failing(ref):
                return by_ref[ref]
        for ref in obj.depends_on:
            if is_failing(ref):
                return by_ref[ref]
        checks_health = obj.kind == KUSTOMIZATION.kind and obj.reason == HEALTH_CHECK_FAILED
        children = applied.get(obj.ref, ()) if checks_health else ()
        for child in children:
            if is_failing(child):
                return by_ref[child]
        if obj.health is not Health.FAILING:
            return None
        if obj.reason == DEPENDENCY_NOT_READY:
            # An ImagePolicy waits on its ImageRepository the same way.
            for ref in (*obj.depends_on, *upstream(obj)):
                if is_progressing(ref):
                    return by_ref[ref]
        for child in children:
            if is_progressing(child):
                return by_ref[child]
        return None

    def root_of(obj: FluxObject) -> FluxObject:
        seen = {obj.ref}
        current = obj
        while (parent := cause(current)) is not None and parent.ref not in seen:
            seen.add(parent.ref)
            current = parent
        return current

    groups: dict[ObjectRef, list[FluxObject]] = {}
    for obj in failing:
        root = root_of(obj)
        members = groups.setdefault(root.ref, [])
        if root.ref != obj.ref:
            members.append(obj)
    return [
        CauseGroup(
            by_ref[ref],
            tuple(sorted(dependents, key=lambda o: (kind_order(o.kind), o.namespace, o.name))),
        )
        for ref, dependents in groups.items()
    ]


def _applied_by(
    objects: list[FluxObject], by_ref: dict[ObjectRef, FluxObject]
) -> dict[ObjectRef, tuple[ObjectRef, ...]]:
    """The Flux objects each Kustomization or HelmRelease applied, in inventory order."""
    out: dict[ObjectRef, dict[ObjectRef, None]] = {}
    for obj in objects:
        for entry in obj.inventory or ():
            if entry.group not in FLUX_GROUPS:
                continue
            ref = entry.ref
            if ref in by_ref and ref != obj.ref:
                out.setdefault(obj.ref, {})[ref] = None
        if obj.owner is not None and obj.owner != obj.ref:
            out.setdefault(obj.owner, {})[obj.ref] = None
    return {owner: tuple(children) for owner, children in out.items()}
