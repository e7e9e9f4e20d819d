"""Root causes: which failing object the others in a cluster fail because of.

A GitRepository whose deploy key was revoked fails, and so does every Kustomization built
from it and every HelmRelease whose chart comes from it. To a reader that is one problem with
one fix. An object's cause is a failing object it points at through `sourceRef`, `dependsOn`,
or (for a HelmRelease) its HelmChart's own source; following causes upwards ends at the root.
Digests, status answers and incidents all group failures this way, so the rule lives here once.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from bot.domain.kinds import kind_order
from bot.domain.status import FluxObject, Health, ObjectRef


@dataclass(frozen=True, slots=True)
class CauseGroup:
    """One root cause in one cluster: the failing object at the top, and what fails because of
    it, in kind order (sources first) then namespace and name."""

    root: FluxObject
    dependents: tuple[FluxObject, ...]


def group_failures(objects: Iterable[FluxObject]) -> list[CauseGroup]:
    """The failing objects of one cluster grouped by root cause, in the order roots were met."""
    listed = list(objects)
    by_ref = {o.ref: o for o in listed}
    failing = [o for o in listed if o.health is Health.FAILING]
    failing_refs = {o.ref for o in failing}

    def cause(obj: FluxObject) -> FluxObject | None:
        candidates: list[ObjectRef] = []
        if obj.source_ref is not None:
            candidates.append(obj.source_ref)
        candidates += obj.depends_on
        for ref in candidates:
            if ref in failing_refs:
                return by_ref[ref]
        # A HelmRelease's chart may be fine while the chart's own source fails.
        if obj.source_ref is not None and obj.source_ref in by_ref:
            chart = by_ref[obj.source_ref]
            if chart.source_ref is not None and chart.source_ref in failing_refs:
                return by_ref[chart.source_ref]
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
