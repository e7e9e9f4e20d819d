"""The Flux kinds fluxbot reads, with the names users may call them by.

Each kind says how `flux get` prints it (flux2 `cmd/flux/get_*.go`): which columns it has,
whether it shortens hashes, whether it is always Ready, where suspension is read from; and
which of `flux reconcile|suspend|resume` exist for it (`cmd/flux/reconcile_*.go`, ...).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Final

SOURCE_GROUP: Final = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP: Final = "kustomize.toolkit.fluxcd.io"
HELM_GROUP: Final = "helm.toolkit.fluxcd.io"
IMAGE_GROUP: Final = "image.toolkit.fluxcd.io"
NOTIFICATION_GROUP: Final = "notification.toolkit.fluxcd.io"
SOURCE_EXTENSIONS_GROUP: Final = "source.extensions.fluxcd.io"
FLUX_GROUPS: Final = (
    SOURCE_GROUP,
    KUSTOMIZE_GROUP,
    HELM_GROUP,
    IMAGE_GROUP,
    NOTIFICATION_GROUP,
    SOURCE_EXTENSIONS_GROUP,
)


class Suspend(StrEnum):
    """Where `flux get` reads SUSPENDED from, if it prints the column at all."""

    SPEC = "spec"  # `spec.suspend`, printed as a SUSPENDED column
    # `spec.suspend` exists (flux suspend/resume set it) but `flux get` prints no column.
    SPEC_UNSHOWN = "spec-unshown"
    # ArtifactGenerator: the `source.extensions.fluxcd.io/reconcile: disabled` annotation.
    ANNOTATION = "annotation"
    NONE = "none"  # no suspension at all (ExternalArtifact)


ALL_ACTIONS: Final = frozenset({"reconcile", "suspend", "resume"})
SUSPEND_ONLY: Final = frozenset({"suspend", "resume"})


@dataclass(frozen=True, slots=True)
class FluxKind:
    """A Flux object kind: where its API lives and how `flux get` prints it."""

    kind: str
    group: str
    plural: str
    aliases: tuple[str, ...]
    # Newest first. Clusters on older Flux releases may serve only the beta versions.
    versions: tuple[str, ...]
    is_source: bool
    # `flux get` shortens 40-128 hex words in these columns (utils.TruncateHex).
    shortens_revision: bool
    shortens_message: bool
    suspend: Suspend = Suspend.SPEC
    # Kinds `flux get` always prints as Ready with this message, whatever their status.
    always_ready: str = ""
    # Which of `flux reconcile`, `flux suspend`, `flux resume` exist for the kind.
    actions: frozenset[str] = ALL_ACTIONS
    # Whether `flux reconcile KIND --with-source` exists.
    with_source: bool = False

    @property
    def short(self) -> str:
        """The shortest alias, for condensed output (`hr`, `ks`, `gitrepo`)."""
        return min(self.aliases, key=len)

    @property
    def title_plural(self) -> str:
        """`ImagePolicies`, `HelmReleases`: the kind in a sentence about several."""
        return f"{self.kind[:-1]}ies" if self.kind.endswith("y") else f"{self.kind}s"

    @property
    def suspended_column(self) -> bool:
        """Whether `flux get` prints a SUSPENDED column for this kind."""
        return self.suspend in (Suspend.SPEC, Suspend.ANNOTATION)

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
    with_source=True,
)  # fmt: skip
BUCKET: Final = FluxKind(
    "Bucket", SOURCE_GROUP, "buckets", ("bucket",),
    ("v1", "v1beta2"), is_source=True, shortens_revision=True, shortens_message=True,
)  # fmt: skip
# get_artifact_generator.go: SUSPENDED is `IsDisabled()`, an annotation; no revision column;
# no reconcile/suspend/resume command.
ARTIFACT_GENERATOR: Final = FluxKind(
    "ArtifactGenerator", SOURCE_EXTENSIONS_GROUP, "artifactgenerators",
    ("ag", "artifact-generator", "generator"),
    ("v1beta1",), is_source=False, shortens_revision=False, shortens_message=False,
    suspend=Suspend.ANNOTATION, actions=frozenset(),
)  # fmt: skip
# get_source_external.go: REVISION and MESSAGE shortened, no SUSPENDED column; the CLI refuses
# to reconcile it ("cannot reconcile source of kind ExternalArtifact").
EXTERNAL_ARTIFACT: Final = FluxKind(
    "ExternalArtifact", SOURCE_GROUP, "externalartifacts", ("external", "ea"),
    ("v1",), is_source=True, shortens_revision=True, shortens_message=True,
    suspend=Suspend.NONE, actions=frozenset(),
)  # fmt: skip
KUSTOMIZATION: Final = FluxKind(
    "Kustomization", KUSTOMIZE_GROUP, "kustomizations", ("ks", "kustomization"),
    ("v1", "v1beta2"), is_source=False, shortens_revision=True, shortens_message=True,
    with_source=True,
)  # fmt: skip
HELM_RELEASE: Final = FluxKind(
    "HelmRelease", HELM_GROUP, "helmreleases", ("hr", "helmrelease"),
    ("v2", "v2beta2", "v2beta1"), is_source=False, shortens_revision=False, shortens_message=False,
    with_source=True,
)  # fmt: skip
# get_image_*.go: no hash shortening; ImagePolicy prints IMAGE and TAG and no SUSPENDED column.
# v1beta2 was removed in image-reflector/automation-controller v1.2.0; older clusters serve it.
IMAGE_REPOSITORY: Final = FluxKind(
    "ImageRepository", IMAGE_GROUP, "imagerepositories", ("imagerepo", "imgrepo"),
    ("v1", "v1beta2"), is_source=False, shortens_revision=False, shortens_message=False,
)  # fmt: skip
IMAGE_POLICY: Final = FluxKind(
    "ImagePolicy", IMAGE_GROUP, "imagepolicies", ("imagepol", "imgpol"),
    ("v1", "v1beta2"), is_source=False, shortens_revision=False, shortens_message=False,
    suspend=Suspend.SPEC_UNSHOWN,
)  # fmt: skip
IMAGE_UPDATE_AUTOMATION: Final = FluxKind(
    "ImageUpdateAutomation", IMAGE_GROUP, "imageupdateautomations",
    ("imageupdate", "iua", "imgupd", "imgauto"),
    ("v1", "v1beta2"), is_source=False, shortens_revision=False, shortens_message=False,
)  # fmt: skip
# get_receiver.go; get_alertprovider.go and get_alert.go print Provider and Alert as always
# Ready (they have no status since v1beta3), Provider without a SUSPENDED column. Neither has a
# `flux reconcile` command; both can be suspended and resumed.
RECEIVER: Final = FluxKind(
    "Receiver", NOTIFICATION_GROUP, "receivers", ("receiver",),
    ("v1", "v1beta2"), is_source=False, shortens_revision=False, shortens_message=False,
)  # fmt: skip
PROVIDER: Final = FluxKind(
    "Provider", NOTIFICATION_GROUP, "providers", ("provider", "alert-provider", "alert-providers"),
    ("v1beta3", "v1beta2"), is_source=False, shortens_revision=False, shortens_message=False,
    suspend=Suspend.SPEC_UNSHOWN, always_ready="Provider is Ready", actions=SUSPEND_ONLY,
)  # fmt: skip
ALERT: Final = FluxKind(
    "Alert", NOTIFICATION_GROUP, "alerts", ("alert",),
    ("v1beta3", "v1beta2"), is_source=False, shortens_revision=False, shortens_message=False,
    always_ready="Alert is Ready", actions=SUSPEND_ONLY,
)  # fmt: skip

# Sources, then what consumes them, then image automation and notifications.
KINDS: Final = (
    GIT_REPOSITORY,
    OCI_REPOSITORY,
    HELM_REPOSITORY,
    HELM_CHART,
    BUCKET,
    ARTIFACT_GENERATOR,
    EXTERNAL_ARTIFACT,
    KUSTOMIZATION,
    HELM_RELEASE,
    IMAGE_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_UPDATE_AUTOMATION,
    RECEIVER,
    PROVIDER,
    ALERT,
)
_BY_NAME: Final = {name: k for k in KINDS for name in k.names()}
_BY_KIND: Final = {k.kind: k for k in KINDS}
_BY_GROUP_KIND: Final = {(k.group, k.kind): k for k in KINDS}
_ORDER: Final = {k.kind: index for index, k in enumerate(KINDS)}


def resolve_kind(name: str) -> FluxKind | None:
    """The kind a user means by `name` (`hr`, `HelmRelease`, `helmreleases`), or None."""
    return _BY_NAME.get(name.strip().lower())


def kind_named(kind: str) -> FluxKind:
    """The FluxKind for an exact `kind` value such as `HelmRelease`; KeyError if not Flux."""
    return _BY_KIND[kind]


def is_flux_kind(kind: object) -> bool:
    """Whether `kind` is one of the Flux kinds fluxbot reads."""
    return kind in _BY_KIND


def is_flux_object(api_version: object, kind: object) -> bool:
    """Whether `apiVersion` + `kind` name a Flux kind (`Provider` alone is not enough)."""
    if not isinstance(api_version, str) or not api_version:
        # Older dumps and list items may omit apiVersion; the kind decides.
        return is_flux_kind(kind)
    return (api_version.partition("/")[0], kind) in _BY_GROUP_KIND


def kind_order(kind: str) -> int:
    """Position of `kind` in KINDS order, for stable sorting."""
    return _ORDER.get(kind, len(KINDS))
