"""The Flux kinds fluxbot reads, with the names users may call them by."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

SOURCE_GROUP: Final = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP: Final = "kustomize.toolkit.fluxcd.io"
HELM_GROUP: Final = "helm.toolkit.fluxcd.io"
FLUX_GROUPS: Final = (SOURCE_GROUP, KUSTOMIZE_GROUP, HELM_GROUP)


@dataclass(frozen=True, slots=True)
class FluxKind:
    """A Flux object kind: where its API lives and how `flux get` prints it."""

    kind: str
    group: str
    plural: str
    aliases: tuple[str, ...]
    # Newest first. Clusters on Flux < 2.7 may serve only the beta versions.
    versions: tuple[str, ...]
    is_source: bool
    # `flux get` shortens 40-128 hex words in these columns (utils.TruncateHex).
    shortens_revision: bool
    shortens_message: bool

    @property
    def short(self) -> str:
        """The shortest alias, for condensed output (`hr`, `ks`, `gitrepo`)."""
        return min(self.aliases, key=len)

    def names(self) -> tuple[str, ...]:
        """Every lower-case name that selects this kind on the command line."""
        return (self.kind.lower(), self.plural, *self.aliases)


GIT_REPOSITORY: Final = FluxKind(
    "GitRepository", SOURCE_GROUP, "gitrepositories", ("gitrepo", "git"),
    ("v1", "v1beta2"), is_source=True, shortens_revision=True, shortens_message=True,
)  # fmt: skip
OCI_REPOSITORY: Final = FluxKind(
    "OCIRepository", SOURCE_GROUP, "ocirepositories", ("ocirepo", "oci"),
    ("v1", "v1beta2"), is_source=True, shortens_revision=True, shortens_message=True,
)  # fmt: skip
HELM_REPOSITORY: Final = FluxKind(
    "HelmRepository", SOURCE_GROUP, "helmrepositories", ("helmrepo", "helm"),
    ("v1", "v1beta2"), is_source=True, shortens_revision=True, shortens_message=True,
)  # fmt: skip
HELM_CHART: Final = FluxKind(
    "HelmChart", SOURCE_GROUP, "helmcharts", ("hc", "chart"),
    ("v1", "v1beta2"), is_source=True, shortens_revision=False, shortens_message=True,
)  # fmt: skip
BUCKET: Final = FluxKind(
    "Bucket", SOURCE_GROUP, "buckets", ("bucket",),
    ("v1", "v1beta2"), is_source=True, shortens_revision=True, shortens_message=True,
)  # fmt: skip
KUSTOMIZATION: Final = FluxKind(
    "Kustomization", KUSTOMIZE_GROUP, "kustomizations", ("ks", "kustomization"),
    ("v1", "v1beta2"), is_source=False, shortens_revision=True, shortens_message=True,
)  # fmt: skip
HELM_RELEASE: Final = FluxKind(
    "HelmRelease", HELM_GROUP, "helmreleases", ("hr", "helmrelease"),
    ("v2", "v2beta2", "v2beta1"), is_source=False, shortens_revision=False, shortens_message=False,
)  # fmt: skip

# The order `flux get all` prints in: sources, then what consumes them.
KINDS: Final = (
    GIT_REPOSITORY,
    OCI_REPOSITORY,
    HELM_REPOSITORY,
    HELM_CHART,
    BUCKET,
    KUSTOMIZATION,
    HELM_RELEASE,
)
_BY_NAME: Final = {name: k for k in KINDS for name in k.names()}
_BY_KIND: Final = {k.kind: k for k in KINDS}


def resolve_kind(name: str) -> FluxKind | None:
    """The kind a user means by `name` (`hr`, `HelmRelease`, `helmreleases`), or None."""
    return _BY_NAME.get(name.strip().lower())


def kind_named(kind: str) -> FluxKind:
    """The FluxKind for an exact `kind` value such as `HelmRelease`; KeyError if not Flux."""
    return _BY_KIND[kind]


def is_flux_kind(kind: object) -> bool:
    """Whether `kind` is one of the Flux kinds fluxbot reads."""
    return kind in _BY_KIND


def kind_order(kind: str) -> int:
    """Position of `kind` in `flux get all` order, for stable sorting."""
    for index, k in enumerate(KINDS):
        if k.kind == kind:
            return index
    return len(KINDS)
