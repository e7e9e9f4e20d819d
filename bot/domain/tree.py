"""What a Kustomization or HelmRelease manages, as `flux tree kustomization` prints it.

flux2 cmd/flux/tree_kustomization.go walks `status.inventory.entries` (`<namespace>_<name>_
<group>_<kind>`), skips the Kustomization's own entry, and descends into every Kustomization
and HelmRelease it applied, unless the parent applies to a remote cluster (`spec.kubeConfig`):
then its objects live in that cluster and are listed without status.
The CLI reads a HelmRelease's objects from its Helm storage Secret; helm-controller (Flux 2.8+)
records them in the HelmRelease's own `status.inventory`, which is what fluxbot reads (it reads
no Secrets). Flux objects in the tree carry their status, so each shows its health.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Final

from bot.domain.kinds import FLUX_GROUPS, HELM_RELEASE, KUSTOMIZATION
from bot.domain.status import FluxObject, Health, InventoryEntry, ObjectRef

# Deeper than any real fleet nests; protects against inventories that point in a circle.
MAX_DEPTH: Final = 12


@dataclass(frozen=True, slots=True)
class TreeNode:
    """One object in the tree: an inventory entry, its status when it is a Flux object
    fluxbot reads, and what it manages in turn."""

    entry: InventoryEntry
    obj: FluxObject | None
    children: tuple[TreeNode, ...]
    # Why the children are not shown, when they are not (remote cluster, no inventory).
    note: str = ""

    @property
    def label(self) -> str:
        """`Kind/namespace/name` as `flux tree` prints it (no namespace when cluster-scoped)."""
        where = f"{self.entry.namespace}/" if self.entry.namespace else ""
        return f"{self.entry.kind}/{where}{self.entry.name}"

    @property
    def is_flux(self) -> bool:
        """Whether the entry is a Flux object (of any Flux API group)."""
        return self.entry.group in FLUX_GROUPS

    def walk(self) -> Iterable[tuple[int, TreeNode]]:
        """Every node below this one with its depth (1 for direct children), depth first."""
        for child in self.children:
            yield 1, child
            for depth, node in child.walk():
                yield depth + 1, node

    def counts(self) -> Counter[Health]:
        """Health of every Flux object below this one."""
        return Counter(n.obj.health for _, n in self.walk() if n.obj is not None)

    @property
    def size(self) -> int:
        """How many objects are below this one."""
        return sum(1 for _ in self.walk())


def build_tree(root: FluxObject, objects: Iterable[FluxObject]) -> TreeNode:
    """The tree under `root` (a Kustomization or HelmRelease) from the cluster's objects."""
    by_ref = {o.ref: o for o in objects}
    entry = InventoryEntry(root.namespace, root.name, root.flux_kind.group, root.kind)
    return _node(entry, root, by_ref, frozenset({root.ref}), 0)


def _node(
    entry: InventoryEntry,
    obj: FluxObject | None,
    by_ref: Mapping[ObjectRef, FluxObject],
    ancestors: frozenset[ObjectRef],
    depth: int,
) -> TreeNode:
    if obj is None or obj.kind not in (KUSTOMIZATION.kind, HELM_RELEASE.kind):
        return TreeNode(entry, obj, ())
    if depth >= MAX_DEPTH:
        return TreeNode(entry, obj, (), "nested too deep to show")
    if obj.inventory is None:
        note = (
            "no inventory recorded yet"
            if obj.kind == KUSTOMIZATION.kind
            else "no inventory in its status (helm-controller of Flux 2.8 or later records it)"
        )
        return TreeNode(entry, obj, (), note)
    if obj.remote_cluster:
        # What it applied lives in the other cluster: listed, but not looked up or descended.
        remote = tuple(TreeNode(c, None, ()) for c in obj.inventory if c.ref != obj.ref)
        return TreeNode(entry, obj, remote, "applies to a remote cluster (spec.kubeConfig)")
    children = []
    for child in obj.inventory:
        ref = child.ref
        if child.group == entry.group and ref == obj.ref:
            continue  # a Kustomization that applies itself (flux-system) is not its own child
        found = by_ref.get(ref) if child.group in FLUX_GROUPS else None
        if ref in ancestors:
            children.append(TreeNode(child, found, (), "already shown above"))
            continue
        children.append(_node(child, found, by_ref, ancestors | {ref}, depth + 1))
    return TreeNode(entry, obj, tuple(children))
