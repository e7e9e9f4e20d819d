"""Root causes: which failing object the others in a cluster fail because of.

A GitRepository whose deploy key was revoked fails, and so does every Kustomization built
from it and every HelmRelease whose chart comes from it. To a reader that is one problem with
one fix. An object's cause is a failing object it points at through `sourceRef`, `dependsOn`,
or (for a HelmRelease) its HelmChart's own source; following causes upwards ends at the root.
Digests, status answers and incidents all group failures this way, so the rule lives here once.
"""

from __future__ import annotations

from collections.abc import Iterable, Set
from dataclasses import dataclass

from bot.domain.kinds import kind_order
from bot.domain.status import FluxObject, Health, ObjectRef

Key = tuple[str, str, str]


@dataclass(frozen=True, slots=True)
class CauseGroup:
    """One root cause in one cluster: the failing object at the top, and what fails because of
    it, in kind order (sources first) then namespace and name."""

    root: FluxObject
    dependents: tuple[FluxObject, ...]


def group_failures(objects: Iterable[FluxObject]) -> list[CauseGroup]:
    """The failing objects of one cluster grouped by root cause, in the order roots were met."""
    listed = list(objects)
    return group_related(listed, {o.ref for o in listed if o.health is Health.FAILING})


def group_related(objects: Iterable[FluxObject], selected: Set[ObjectRef]) -> list[CauseGroup]:
    """The `selected` objects of one cluster grouped by the selected object they follow from.

    An object's cause is a selected object it points at (as for failures); following causes
    upwards ends at the root. Digests group what recovered together this way: one fixed source
    is one item with the objects that recovered with it.
    """
    # Plain tuples as keys: hashing them is much cheaper than hashing ObjectRefs, and digests
    # group thousands of changes this way.
    listed = list(objects)
    chosen_keys = {(r.kind, r.namespace, r.name) for r in selected}
    every: dict[Key, FluxObject] = {}
    chosen: dict[Key, FluxObject] = {}
    for obj in listed:
        key = (obj.kind, obj.namespace, obj.name)
        every[key] = obj
        if key in chosen_keys:
            chosen[key] = obj

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
            tuple(sorted(dependents, key=lambda o: (kind_order(o.kind), o.namespace, o.name))),
        )
        for root, dependents in groups.items()
    ]
