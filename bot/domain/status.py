"""The status of one Flux object, computed exactly as `flux get` computes its columns.

`parse_flux_object` turns an object as the API server returns it (a JSON mapping) into a
`FluxObject`: the READY / SUSPENDED / REVISION / MESSAGE that `flux get` would print, plus what
the rest of fluxbot needs (reason, stalled/progressing, generation lag, HelmRelease history,
references). It never raises on odd input: missing or mistyped fields read as absent.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from sys import intern
from types import MappingProxyType
from typing import Any, Final, TypeVar, cast

from bot.domain.kinds import (
    ALERT,
    ARTIFACT_GENERATOR,
    EXTERNAL_ARTIFACT,
    GIT_REPOSITORY,
    HELM_CHART,
    HELM_RELEASE,
    HELM_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_REPOSITORY,
    IMAGE_UPDATE_AUTOMATION,
    KUSTOMIZATION,
    PROVIDER,
    FluxKind,
    Suspend,
    kind_named,
)

_K = TypeVar("_K")
_T = TypeVar("_T")
_V = TypeVar("_V")

# Who suspended an object through fluxbot, when, why and until when (annotations on it).
SUSPENDED_BY: Final = "fluxbot.io/suspended-by"
SUSPENDED_AT: Final = "fluxbot.io/suspended-at"
SUSPEND_REASON: Final = "fluxbot.io/suspend-reason"
SUSPENDED_UNTIL: Final = "fluxbot.io/suspended-until"
# The Flux Operator's record of who suspended an object (its web UI and CLI write it).
OPERATOR_SUSPENDED_BY: Final = "fluxcd.controlplane.io/suspendedBy"
# fluxbot's record of an emergency rollback, kept until Resume.
# The last button a fluxbot replica claimed on the object (one action across replicas).
ACTION_ID: Final = "fluxbot.io/action-id"
ROLLED_BACK_BY: Final = "fluxbot.io/rolled-back-by"
ROLLED_BACK_FROM: Final = "fluxbot.io/rolled-back-from"
ROLLED_BACK_TO: Final = "fluxbot.io/rolled-back-to"
# Set on an object to keep its parent Kustomization from re-applying it.
RECONCILE_ANNOTATION: Final = "kustomize.toolkit.fluxcd.io/reconcile"
REQUESTED_AT: Final = "reconcile.fluxcd.io/requestedAt"
OWNER_NAME_LABEL: Final = "kustomize.toolkit.fluxcd.io/name"
OWNER_NAMESPACE_LABEL: Final = "kustomize.toolkit.fluxcd.io/namespace"
# source-watcher api/v1beta1: an ArtifactGenerator with this annotation set to `disabled` is
# not reconciled, and `flux get artifact generators` prints it as suspended.
GENERATOR_RECONCILE_ANNOTATION: Final = "source.extensions.fluxcd.io/reconcile"
NOT_RECONCILED_MESSAGE: Final = "waiting to be reconciled"
OCI_HELM_REPOSITORY_MESSAGE: Final = "Helm repository is Ready"

# Go's regexp `\b` is ASCII-only; re.ASCII keeps Python's the same.
_HEX_WORD: Final = re.compile(r"\b[a-f0-9]{40,128}\b", re.ASCII)


def truncate_hex(text: str) -> str:
    """Shorten every 40-128 character hex word to 8 characters, as `flux get` does."""
    return _HEX_WORD.sub(lambda m: m.group(0)[:8], text)


class Health(StrEnum):
    """How fluxbot groups an object for people: what needs attention comes first."""

    FAILING = "failing"
    PROGRESSING = "progressing"
    SUSPENDED = "suspended"
    READY = "ready"

    @property
    def rank(self) -> int:
        """Sort key: failing first, ready last."""
        return _HEALTH_ORDER.index(self)


_HEALTH_ORDER: Final = (Health.FAILING, Health.PROGRESSING, Health.SUSPENDED, Health.READY)


class KStatus(StrEnum):
    """The kstatus verdict `flux reconcile` waits on."""

    TERMINATING = "Terminating"
    IN_PROGRESS = "InProgress"
    FAILED = "Failed"
    CURRENT = "Current"


@dataclass(frozen=True, slots=True)
class Condition:
    """One `status.conditions[]` entry."""

    type: str
    status: str
    reason: str
    message: str
    last_transition_time: dt.datetime | None
    observed_generation: int | None


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A reference to another Flux object, its namespace already defaulted."""

    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.kind}/{self.namespace}/{self.name}"


@dataclass(frozen=True, slots=True)
class InventoryEntry:
    """One object a Kustomization or HelmRelease applied (`status.inventory.entries[]`)."""

    namespace: str
    name: str
    group: str
    kind: str

    @property
    def ref(self) -> ObjectRef:
        """A reference by kind, namespace and name (the group is dropped)."""
        return ObjectRef(self.kind, self.namespace, self.name)


# The same workloads are applied in many clusters, so their inventories repeat entry for
# entry: equal entries (immutable) are shared by every object that lists them.
@functools.lru_cache(maxsize=16384)
def parse_inventory_id(entry_id: str) -> InventoryEntry | None:
    """`<namespace>_<name>_<group>_<kind>` (cli-utils ObjMetadata) as an entry, or None.

    Namespaces and groups hold no underscore; a colon in a name is written `__` (RBAC names).
    """
    head, sep, kind = entry_id.rpartition("_")
    head, sep2, group = head.rpartition("_")
    namespace, sep3, name = head.partition("_")
    if not (sep and sep2 and sep3 and name and kind):
        return None
    # Interned: a fleet's inventories repeat the same namespaces, groups, kinds and names.
    return InventoryEntry(
        intern(namespace), intern(name.replace("__", ":")), intern(group), intern(kind)
    )


@dataclass(frozen=True, slots=True)
class ReleaseSnapshot:
    """One entry of a HelmRelease's `status.history` (newest first)."""

    version: int
    name: str
    namespace: str
    chart_name: str
    chart_version: str
    app_version: str
    status: str
    first_deployed: dt.datetime | None
    last_deployed: dt.datetime | None
    action: str
    config_digest: str = ""
    # A test hook of this release ended in phase Failed.
    tests_failed: bool = False


@dataclass(frozen=True, slots=True)
class HelmReleaseStatus:
    """What a HelmRelease says about its Helm release, for history and rollback."""

    history: tuple[ReleaseSnapshot, ...]
    storage_namespace: str
    last_attempted_revision: str
    last_attempted_release_action: str
    failures: int
    install_failures: int
    upgrade_failures: int
    # Where the chart comes from: the HelmChart templated from `spec.chart`, or `spec.chartRef`.
    chart_source: ObjectRef | None
    # The template's `spec.chart.spec.sourceRef` (the HelmChart's own source), if templated.
    chart_repository: ObjectRef | None = None
    # What a rollback needs from the spec: `spec.chart.spec.version` (templated charts), a
    # remote cluster (`spec.kubeConfig`), the account helm-controller impersonates, and
    # `spec.rollback` (timeout, disableHooks, force, recreate, cleanupOnFail, disableWait).
    chart_version: str = ""
    chart_ref: bool = False  # the chart comes from `spec.chartRef`, not a templated HelmChart
    kube_config: bool = False
    # `spec.kubeConfig.secretRef` (name, key), empty with a configMapRef (workload identity).
    kube_config_secret: tuple[str, str] = ("", "")
    service_account: str = ""
    rollback_options: tuple[tuple[str, str], ...] = ()

    @property
    def release_name(self) -> str:
        """The Helm release name Flux uses (shortened with a hash when over 53 characters)."""
        return self.history[0].name if self.history else ""

    @property
    def release_namespace(self) -> str:
        """The namespace the release is installed into."""
        return self.history[0].namespace if self.history else ""


@dataclass(frozen=True, slots=True)
class Suspension:
    """Who suspended an object through fluxbot, when, why, and until when."""

    by: str
    at: dt.datetime | None
    reason: str
    until: dt.datetime | None


@dataclass(frozen=True, slots=True)
class Delivery:
    """What a rollout needs: where an artifact comes from, and since when it is in place."""

    # Sources: `spec.url`.
    url: str = ""
    # OCI artifacts: the Git repository and commit they were built from, as the
    # `org.opencontainers.image.source` / `.revision` annotations source-controller copies into
    # `status.artifact.metadata`; a Kustomization's `status.lastAppliedOriginRevision`.
    origin_url: str = ""
    origin_revision: str = ""
    # Kustomization and HelmRelease `status.lastAttemptedRevision`.
    attempted_revision: str = ""
    # Sources: `status.artifact.lastUpdateTime`; Kustomizations: `firstReconciled` of the
    # `status.history` entry of the applied revision; HelmReleases: the release's lastDeployed.
    since: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class Safeguards:
    """The spec fields that say how an object's failures are handled (for the posture audit).

    Values are as written in the spec; absent fields keep their zero value here and the audit
    applies Flux's defaults (helm-controller api/v2, kustomize-controller api/v1).
    """

    # HelmRelease `spec.upgrade` / `spec.install`.
    upgrade_retries: int = 0
    upgrade_remediate_last_failure: bool | None = None
    upgrade_remediation_strategy: str = ""
    upgrade_strategy: str = ""
    install_retries: int = 0
    install_remediate_last_failure: bool | None = None
    install_strategy: str = ""
    # Kustomization `spec.wait`, `spec.healthChecks`, `spec.timeout`, `spec.interval`, and the
    # kinds in `status.inventory`.
    wait: bool = False
    health_checks: int = 0
    timeout: dt.timedelta | None = None
    interval: dt.timedelta | None = None
    inventory_kinds: frozenset[str] = frozenset()


@dataclass(frozen=True, slots=True)
class FluxObject:
    """One Flux object's status: the `flux get` columns and what fluxbot needs beyond them."""

    kind: str
    namespace: str
    name: str
    # The four `flux get` columns, exactly as it prints them.
    ready: str
    suspended: bool
    revision: str
    message: str
    # Beyond `flux get`.
    full_revision: str
    reason: str
    stalled: bool
    reconciling: bool
    generation: int
    observed_generation: int | None
    ready_since: dt.datetime | None
    deleting: bool
    conditions: tuple[Condition, ...]
    source_ref: ObjectRef | None
    depends_on: tuple[ObjectRef, ...]
    owner: ObjectRef | None
    last_handled_reconcile_at: str
    helm: HelmReleaseStatus | None
    # The latest reconcile request token, fluxbot's suspension record, and whether the parent
    # Kustomization is kept from re-applying this object.
    requested_at: str = ""
    suspension: Suspension | None = None
    reconcile_disabled: bool = False
    # What a Kustomization or HelmRelease (Flux 2.8+) applied, from `status.inventory`.
    inventory: tuple[InventoryEntry, ...] | None = None
    # A Kustomization or HelmRelease with `spec.kubeConfig` applies to another cluster.
    remote_cluster: bool = False
    # How long the controller's current operation may take before it gives up, as each kind's
    # API defines it (see `operation_timeout`); None for kinds without a timeout.
    timeout: dt.timedelta | None = None
    created_at: dt.datetime | None = None
    delivery: Delivery | None = None
    safeguards: Safeguards | None = None
    # spec.interval (a Go duration), when set.
    interval: dt.timedelta | None = None
    # An OCI HelmRepository: source-controller never reconciles it (no token, no status).
    static: bool = False
    # The chart version an emergency rollback went back from (fluxbot.io/rolled-back-from).
    rolled_back_from: str = ""
    # A GitRepository's `spec.url`: digests link revisions to their commit on known forges.
    url: str = ""
    _health: Health = field(init=False, repr=False, compare=False)

    @property
    def flux_kind(self) -> FluxKind:
        """The FluxKind of this object."""
        return kind_named(self.kind)

    @property
    def key(self) -> tuple[str, str, str]:
        """Identity within a cluster: (kind, namespace, name)."""
        return (self.kind, self.namespace, self.name)

    @property
    def ref(self) -> ObjectRef:
        """A reference to this object."""
        return ObjectRef(self.kind, self.namespace, self.name)

    @property
    def generation_lag(self) -> bool:
        """Whether the controller has not yet seen the latest spec."""
        return self.observed_generation is not None and self.observed_generation != self.generation

    @property
    def has_ready_condition(self) -> bool:
        """Whether a controller has ever reported Ready on this object."""
        return (
            any(c.type == "Ready" for c in self.conditions)
            or self.message == OCI_HELM_REPOSITORY_MESSAGE
            or bool(self.flux_kind.always_ready)
        )

    @property
    def drifted(self) -> bool:
        """A HelmRelease whose cluster state drifted from the release (`Drifted=True`).

        In drift detection's `warn` mode helm-controller reports it and stays Ready; in
        `enabled` mode it corrects the drift, so a lasting `Drifted=True` is worth telling.
        """
        return any(c.type == "Drifted" and c.status == "True" for c in self.conditions)

    @property
    def kstatus(self) -> KStatus:
        """The kstatus verdict, in the order `flux reconcile` evaluates it."""
        if self.deleting:
            return KStatus.TERMINATING
        if self.generation_lag or self.reconciling:
            return KStatus.IN_PROGRESS
        if self.stalled:
            return KStatus.FAILED
        return KStatus.CURRENT if self.ready == "True" else KStatus.IN_PROGRESS

    @property
    def health(self) -> Health:
        """Which group a person should see this object in."""
        # Computed once at parse time: every query sorts and counts by it.
        return self._health

    def _compute_health(self) -> Health:
        if self.suspended:
            return Health.SUSPENDED
        if self.stalled or (self.ready == "False" and self.has_ready_condition):
            return Health.FAILING
        if self.ready == "True" and not self.generation_lag and not self.deleting:
            return Health.READY
        return Health.PROGRESSING

    def __post_init__(self) -> None:
        object.__setattr__(self, "_health", self._compute_health())


def _constructor(cls: type[_T]) -> Callable[..., _T]:
    """A constructor for the frozen, slotted dataclass `cls`: every init field (in order or by
    name), no defaults; about twice as fast as `cls(...)`, for the parser's hot path.

    A frozen dataclass's __init__ sets each field through `object.__setattr__`; this sets the
    slots through their descriptors and then runs `__post_init__`, as __init__ would. A cold
    sync builds some 60 fields for each of 100,000 objects. The code is generated from the
    class's own fields (as dataclasses generates __init__), so it cannot drift from them.
    """
    names = [f.name for f in dataclasses.fields(cls) if f.init]  # type: ignore[arg-type]
    scope: dict[str, Any] = {"_new": object.__new__, "_cls": cls}
    scope.update({f"_set_{name}": getattr(cls, name).__set__ for name in names})
    lines = [f"def new({', '.join(names)}):", "    obj = _new(_cls)"]
    lines += [f"    _set_{name}(obj, {name})" for name in names]
    if hasattr(cls, "__post_init__"):
        lines.append("    obj.__post_init__()")
    lines.append("    return obj")
    exec("\n".join(lines), scope)  # noqa: S102 -- only field names of our own dataclasses
    constructor: Callable[..., _T] = scope["new"]
    return constructor


_new_condition: Final = _constructor(Condition)
_new_snapshot: Final = _constructor(ReleaseSnapshot)
_new_helm_status: Final = _constructor(HelmReleaseStatus)
_new_delivery: Final = _constructor(Delivery)
_new_flux_object: Final = _constructor(FluxObject)


def parse_flux_object(obj: Mapping[str, Any], kind: str | None = None) -> FluxObject:
    """Read a Flux object (as the API returns it) into its status.

    `kind`, when given, is the kind listed or watched (list items need not carry it) and
    wins over the object's own. Missing or mistyped fields read as absent; only a kind that
    is not a Flux kind raises (ValueError), because there is no `flux get` answer for it.
    """
    # A cold sync parses every object of the fleet: the common shapes (plain dicts and
    # strings, as json decodes them) are read inline, anything else goes through the helpers.
    kind = _str(obj.get("kind") if kind is None else kind)
    try:
        flux_kind = kind_named(kind)
    except KeyError:
        raise ValueError(f"not a Flux kind: {kind!r}") from None
    metadata = obj.get("metadata")
    if type(metadata) is not dict:
        metadata = _map(metadata)
    spec = obj.get("spec")
    if type(spec) is not dict:
        spec = _map(spec)
    status = obj.get("status")
    if type(status) is not dict:
        status = _map(status)
    namespace = _str(metadata.get("namespace"))
    name = _str(metadata.get("name"))
    conditions, ready_condition, stalled, reconciling = _conditions(status.get("conditions"))
    helm = _helm_status(namespace, name, spec, status) if flux_kind is HELM_RELEASE else None
    oci = flux_kind is HELM_REPOSITORY and _str(spec.get("type")) == "oci"

    if flux_kind.always_ready:
        # Alerts and Providers have no status (v1beta3); flux get prints them Ready regardless.
        ready, message = "True", flux_kind.always_ready
    elif oci:
        # OCI HelmRepositories are not reconciled into an artifact; flux get calls them Ready.
        ready, message = "True", OCI_HELM_REPOSITORY_MESSAGE
    elif ready_condition is not None:
        ready, message = ready_condition.status, ready_condition.message
    else:
        ready, message = "False", NOT_RECONCILED_MESSAGE

    full_revision = _revision(flux_kind, status, helm)
    revision = _shortened(full_revision) if flux_kind.shortens_revision else full_revision
    if flux_kind.shortens_message:
        message = _shortened(message)

    labels = metadata.get("labels")
    owner = None
    if labels:
        if type(labels) is not dict:
            labels = _map(labels)
        owner_name = _str(labels.get(OWNER_NAME_LABEL))
        if owner_name:
            owner_namespace = _str(labels.get(OWNER_NAMESPACE_LABEL)) or namespace
            owner = _object_ref(KUSTOMIZATION.kind, owner_namespace, owner_name)

    annotations = metadata.get("annotations")
    if annotations:
        annotated = _annotated(flux_kind, spec, _map(annotations))
    elif flux_kind.suspend is Suspend.SPEC or flux_kind.suspend is Suspend.SPEC_UNSHOWN:
        annotated = _NOT_ANNOTATED_SUSPENDED if spec.get("suspend") is True else _NOT_ANNOTATED
    else:
        annotated = _NOT_ANNOTATED
    suspended, suspension, requested_at, reconcile_disabled, rolled_back_from = annotated

    generation = metadata.get("generation")
    if type(generation) is not int:
        generation = _int(generation) or 0
    observed_generation = status.get("observedGeneration")
    if type(observed_generation) is not int:
        observed_generation = _int(observed_generation)
    interval = parse_go_duration(spec.get("interval"))
    inventory = None
    safeguards = None
    if flux_kind is KUSTOMIZATION or flux_kind is HELM_RELEASE:
        inventory, inventory_kinds = _inventory(status)
        safeguards = (
            _kustomization_safeguards(spec, interval, inventory_kinds)
            if helm is None
            else _helm_safeguards(spec)
        )
    # Every field, in order (named in the comments): binding 38 keywords cost 6% of a parse.
    # A field added without a value here fails every parse (the constructor has no defaults).
    return _new_flux_object(
        kind,  # kind
        namespace,  # namespace
        name,  # name
        ready,  # ready
        suspended,  # suspended
        revision,  # revision
        message,  # message
        full_revision,  # full_revision
        ready_condition.reason if ready_condition else "",  # reason
        stalled,  # stalled
        reconciling,  # reconciling
        generation,  # generation
        observed_generation,  # observed_generation
        ready_condition.last_transition_time if ready_condition else None,  # ready_since
        bool(metadata.get("deletionTimestamp")),  # deleting
        conditions,  # conditions
        _source_ref(flux_kind, namespace, spec, helm),  # source_ref
        _depends_on(flux_kind, namespace, spec),  # depends_on
        owner,  # owner
        # Tokens and digests are unique to an object: not interned (an entry in the
        # interpreter's table costs more than sharing saves when nothing repeats).
        _unshared_str(status.get("lastHandledReconcileAt")),  # last_handled_reconcile_at
        helm,  # helm
        requested_at,  # requested_at
        suspension,  # suspension
        reconcile_disabled,  # reconcile_disabled
        inventory,  # inventory
        bool(_map(spec.get("kubeConfig"))),  # remote_cluster
        operation_timeout(flux_kind, spec, helm),  # timeout
        parse_time(metadata.get("creationTimestamp")),  # created_at
        _delivery(flux_kind, spec, status, helm, full_revision),  # delivery
        safeguards,  # safeguards
        interval,  # interval
        oci,  # static
        rolled_back_from,  # rolled_back_from
        _str(spec.get("url")) if flux_kind is GIT_REPOSITORY else "",  # url
    )


# (suspended, suspension, requested_at, reconcile_disabled, rolled_back_from) of an object
# without annotations, suspended in its spec or not.
_Annotated = tuple[bool, "Suspension | None", str, bool, str]
_NOT_ANNOTATED: Final[_Annotated] = (False, None, "", False, "")
_NOT_ANNOTATED_SUSPENDED: Final[_Annotated] = (True, None, "", False, "")


def _annotated(
    flux_kind: FluxKind, spec: Mapping[str, Any], annotations: Mapping[str, Any]
) -> _Annotated:
    suspended_by = _str(annotations.get(SUSPENDED_BY)) or _str(
        annotations.get(OPERATOR_SUSPENDED_BY)
    )
    suspension = (
        Suspension(
            by=suspended_by,
            at=parse_time(annotations.get(SUSPENDED_AT)),
            reason=_str(annotations.get(SUSPEND_REASON)),
            until=parse_time(annotations.get(SUSPENDED_UNTIL)),
        )
        if suspended_by
        else None
    )
    return (
        _suspended(flux_kind, spec, annotations),
        suspension,
        _unshared_str(annotations.get(REQUESTED_AT)),
        _str(annotations.get(RECONCILE_ANNOTATION)).lower() == "disabled",
        _str(annotations.get(ROLLED_BACK_FROM)),
    )


def _conditions(raw: object) -> tuple[tuple[Condition, ...], Condition | None, bool, bool]:
    """The conditions, the Ready one, and whether Stalled and Reconciling are True.

    Where a type repeats, the last entry counts (as a map by type would keep it).
    """
    if not isinstance(raw, list) or not raw:
        return (), None, False, False
    conditions = []
    ready = stalled = reconciling = None
    for raw_item in raw:
        item = raw_item if type(raw_item) is dict else _map(raw_item)
        if not item:
            continue
        get = item.get
        value = get("type")
        type_ = intern(value) if type(value) is str else ""
        value = get("status")
        status = intern(value) if type(value) is str and value else "Unknown"
        value = get("reason")
        reason = intern(value) if type(value) is str else ""
        value = get("message")
        message = intern(value) if type(value) is str else ""
        value = get("lastTransitionTime")
        at = _time(value) if type(value) is str and value else parse_time(value)
        value = get("observedGeneration")
        generation = value if type(value) is int else _int(value)
        condition = _new_condition(type_, status, reason, message, at, generation)
        conditions.append(condition)
        if type_ == "Ready":
            ready = condition
        elif type_ == "Stalled":
            stalled = condition
        elif type_ == "Reconciling":
            reconciling = condition
    return (
        tuple(conditions),
        ready,
        stalled is not None and stalled.status == "True",
        reconciling is not None and reconciling.status == "True",
    )


def _kustomization_safeguards(
    spec: Mapping[str, Any], interval: dt.timedelta | None, inventory_kinds: frozenset[str]
) -> Safeguards:
    key = (
        spec.get("wait") is True,
        len(_list(spec.get("healthChecks"))),
        parse_go_duration(spec.get("timeout")),
        interval,
        inventory_kinds,
    )
    shared = _SAFEGUARDS.get(key)
    if shared is None:
        shared = _remember(
            _SAFEGUARDS,
            key,
            Safeguards(
                wait=key[0],
                health_checks=key[1],
                timeout=key[2],
                interval=key[3],
                inventory_kinds=inventory_kinds,
            ),
        )
    return shared


def _helm_safeguards(spec: Mapping[str, Any]) -> Safeguards:
    upgrade, install = _map(spec.get("upgrade")), _map(spec.get("install"))
    up_rem, in_rem = _map(upgrade.get("remediation")), _map(install.get("remediation"))
    key = (
        _int(up_rem.get("retries")) or 0,
        _bool(up_rem.get("remediateLastFailure")),
        _str(up_rem.get("strategy")),
        _str(_map(upgrade.get("strategy")).get("name")),
        _int(in_rem.get("retries")) or 0,
        _bool(in_rem.get("remediateLastFailure")),
        _str(_map(install.get("strategy")).get("name")),
    )
    shared = _SAFEGUARDS.get(key)
    if shared is None:
        shared = _remember(_SAFEGUARDS, key, Safeguards(*key))
    return shared


# A fleet's objects mostly share a few failure-handling settings: equal Safeguards (immutable)
# are kept once, with their set of inventory kinds. Keyed by their field values (ints, bools,
# strings, durations: no two different values of one field compare equal).
_SAFEGUARDS: Final[dict[tuple[Any, ...], Safeguards]] = {}


def _bool(value: object) -> bool | None:
    return value if isinstance(value, bool) else None


_ORIGIN_SOURCE: Final = "org.opencontainers.image.source"
_ORIGIN_REVISION: Final = "org.opencontainers.image.revision"
_ARTIFACT_KINDS: Final = frozenset({"GitRepository", "OCIRepository", "Bucket"})


def _delivery(
    flux_kind: FluxKind,
    spec: Mapping[str, Any],
    status: Mapping[str, Any],
    helm: HelmReleaseStatus | None,
    revision: str,
) -> Delivery | None:
    if helm is not None:
        deployed = next((s for s in helm.history if s.status in ("deployed", "superseded")), None)
        return _new_delivery(
            url="",
            origin_url="",
            origin_revision="",
            attempted_revision=helm.last_attempted_revision,
            since=deployed.last_deployed if deployed else None,
        )
    if flux_kind is KUSTOMIZATION:
        since = None
        for entry in _list(status.get("history")):
            item = _map(entry)
            if _str(_map(item.get("metadata")).get("revision")) == revision:
                since = parse_time(item.get("firstReconciled"))
                break
        return _new_delivery(
            url="",
            origin_url="",
            origin_revision=_str(status.get("lastAppliedOriginRevision")),
            attempted_revision=_str(status.get("lastAttemptedRevision")),
            since=since,
        )
    if flux_kind.kind in _ARTIFACT_KINDS:
        artifact = _map(status.get("artifact"))
        metadata = _map(artifact.get("metadata"))
        return _new_delivery(
            url=_str(spec.get("url")),
            origin_url=_str(metadata.get(_ORIGIN_SOURCE)),
            origin_revision=_str(metadata.get(_ORIGIN_REVISION)),
            attempted_revision="",
            since=parse_time(artifact.get("lastUpdateTime")),
        )
    return None


def _suspended(
    flux_kind: FluxKind, spec: Mapping[str, Any], annotations: Mapping[str, Any]
) -> bool:
    if flux_kind.suspend is Suspend.ANNOTATION:
        return _str(annotations.get(GENERATOR_RECONCILE_ANNOTATION)).lower() == "disabled"
    if flux_kind.suspend is Suspend.NONE:
        return False
    return spec.get("suspend") is True


def _inventory(
    status: Mapping[str, Any],
) -> tuple[tuple[InventoryEntry, ...] | None, frozenset[str]]:
    """`status.inventory` as entries (None without one), and the kinds its ids name."""
    raw = status.get("inventory")
    if not isinstance(raw, Mapping):
        return None, frozenset()
    entries = []
    kinds = set()
    for raw_item in _list(raw.get("entries")):
        item = raw_item if type(raw_item) is dict else _map(raw_item)
        entry_id = item.get("id")
        text = entry_id if type(entry_id) is str else ""
        entry = parse_inventory_id(text)
        if entry is not None:
            entries.append(entry)
            kinds.add(entry.kind)
        elif entry_id:
            # Inventory ids are `<namespace>_<name>_<group>_<Kind>` (fluxcd/pkg ssa
            # ObjMetadata); the posture audit takes the last part of any id it is given.
            kinds.add(text.rsplit("_", 1)[-1])
    return tuple(entries), frozenset(kinds)


# Source kinds whose `spec.timeout` defaults to 60s (the CRD default; HelmRepository's
# GetTimeout() returns one minute when unset). HelmChart has no timeout of its own.
_SOURCE_TIMEOUT_KINDS: Final = frozenset(
    {"GitRepository", "OCIRepository", "Bucket", HELM_REPOSITORY.kind}
)
_HELM_DEFAULT_TIMEOUT: Final = dt.timedelta(minutes=5)
_KUSTOMIZATION_MIN_TIMEOUT: Final = dt.timedelta(seconds=30)


def operation_timeout(
    flux_kind: FluxKind, spec: Mapping[str, Any], helm: HelmReleaseStatus | None
) -> dt.timedelta | None:
    """How long one reconcile may run, as the kind's controller computes it.

    Kustomization (kustomize-controller api/v1 `GetTimeout`): `spec.timeout`, else
    `spec.interval` minus 30s, never under 30s. HelmRelease (helm-controller api/v2
    `GetTimeout`, `Install/Upgrade.GetTimeout`): the timeout of the action it runs
    (`spec.install.timeout` or `spec.upgrade.timeout`), else `spec.timeout`, else 5m.
    GitRepository, OCIRepository, Bucket, HelmRepository (source-controller api/v1):
    `spec.timeout`, default 60s. Other kinds: None.
    """
    own = parse_go_duration(spec.get("timeout"))
    if helm is not None:
        action = helm.last_attempted_release_action.lower()
        if action in ("install", "upgrade"):
            for_action = parse_go_duration(_map(spec.get(action)).get("timeout"))
            if for_action is not None:
                return for_action
        return own or _HELM_DEFAULT_TIMEOUT
    if flux_kind is KUSTOMIZATION:
        if own is None:
            interval = parse_go_duration(spec.get("interval"))
            if interval is None:
                return None
            own = interval - dt.timedelta(seconds=30)
        return max(own, _KUSTOMIZATION_MIN_TIMEOUT)
    if flux_kind.kind in _SOURCE_TIMEOUT_KINDS:
        return own or dt.timedelta(seconds=60)
    return None


_GO_DURATION: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS: Final = {
    "ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0,
}  # fmt: skip


def parse_go_duration(value: object) -> dt.timedelta | None:
    """A Go duration string (`5m0s`, `1h30m`, `1.5h`, `500ms`) as a timedelta; None if not one."""
    if not isinstance(value, str) or not value:
        return None
    return _go_duration(value)


# A fleet writes a handful of distinct durations: parse each once and share the result.
@functools.lru_cache(maxsize=1024)
def _go_duration(value: str) -> dt.timedelta | None:
    text = value.strip()
    if text == "0":
        return dt.timedelta(0)
    position, seconds = 0, 0.0
    for match in _GO_DURATION.finditer(text):
        if match.start() != position:
            return None
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        position = match.end()
    if position != len(text) or position == 0:
        return None
    return dt.timedelta(seconds=seconds)


def _revision(
    flux_kind: FluxKind, status: Mapping[str, Any], helm: HelmReleaseStatus | None
) -> str:
    if helm is not None:
        if helm.history:
            return helm.history[0].chart_version
        return helm.last_attempted_revision
    if flux_kind is KUSTOMIZATION:
        return _str(status.get("lastAppliedRevision"))
    if flux_kind is IMAGE_POLICY:
        # flux get image policy prints IMAGE and TAG from status.latestRef (v1); v1beta2
        # had status.latestImage, already `image:tag`.
        latest = _map(status.get("latestRef"))
        if _str(latest.get("name")):
            return intern(f"{_str(latest.get('name'))}:{_str(latest.get('tag'))}")
        return _str(status.get("latestImage"))
    if flux_kind.is_source:
        artifact = status.get("artifact")
        if type(artifact) is not dict:
            artifact = _map(artifact)
        return _str(artifact.get("revision"))
    # The other kinds have no revision column in flux get.
    return ""


def _shortened(text: str) -> str:
    short = truncate_hex(text)
    # Shortened revisions repeat wherever the same revision is applied: kept once.
    return text if short is text else intern(short)


def _source_ref(
    flux_kind: FluxKind,
    namespace: str,
    spec: Mapping[str, Any],
    helm: HelmReleaseStatus | None,
) -> ObjectRef | None:
    if helm is not None:
        return helm.chart_source
    if flux_kind is HELM_CHART or flux_kind is KUSTOMIZATION or flux_kind is EXTERNAL_ARTIFACT:
        return _ref(spec.get("sourceRef"), namespace)
    if flux_kind is IMAGE_UPDATE_AUTOMATION:
        return _ref(spec.get("sourceRef"), namespace, GIT_REPOSITORY.kind)
    if flux_kind is IMAGE_POLICY:
        return _ref(spec.get("imageRepositoryRef"), namespace, IMAGE_REPOSITORY.kind)
    if flux_kind is ALERT:
        # Alerts may not point across namespaces (flux events: crossNamespaced false).
        ref = _ref(spec.get("providerRef"), namespace, PROVIDER.kind)
        return _object_ref(ref.kind, namespace, ref.name) if ref else None
    return None


def _depends_on(
    flux_kind: FluxKind, namespace: str, spec: Mapping[str, Any]
) -> tuple[ObjectRef, ...]:
    if flux_kind is ARTIFACT_GENERATOR:
        # An ArtifactGenerator builds its artifacts from these sources; it waits on them.
        return tuple(
            ref
            for entry in _list(spec.get("sources"))
            if (ref := _ref(entry, namespace)) is not None and ref.kind
        )
    raw = spec.get("dependsOn")
    if not raw:
        return ()
    # dependsOn entries name objects of the same kind (Kustomization or HelmRelease).
    refs = []
    for entry in _list(raw):
        item = _map(entry)
        if name := _str(item.get("name")):
            kind = _str(item.get("kind")) or flux_kind.kind
            refs.append(_object_ref(kind, _str(item.get("namespace")) or namespace, name))
    return tuple(refs)


# spec.kubeConfig.secretRef (name, key) of a HelmRelease without one.
_NO_SECRET: Final = ("", "")


def _helm_status(
    namespace: str, name: str, spec: Mapping[str, Any], status: Mapping[str, Any]
) -> HelmReleaseStatus:
    history: tuple[ReleaseSnapshot, ...] = ()
    raw_history = status.get("history")
    if isinstance(raw_history, list) and raw_history:
        history = tuple(_snapshot(_map(s)) for s in raw_history if _map(s))
    chart_ref = _map(spec.get("chartRef"))
    template = _map(_map(spec.get("chart")).get("spec"))
    chart_source: ObjectRef | None
    chart_repository = _ref(template.get("sourceRef"), namespace) if template else None
    if chart_ref:
        chart_source = _ref(chart_ref, namespace)
    elif template:
        # Flux templates spec.chart into HelmChart `<hr-namespace>-<hr-name>` next to its source.
        source_namespace = _str(_map(template.get("sourceRef")).get("namespace")) or namespace
        chart_source = _object_ref(HELM_CHART.kind, source_namespace, intern(f"{namespace}-{name}"))
    else:
        chart_source = None
    kube_config = _map(spec.get("kubeConfig"))
    secret = _NO_SECRET
    if kube_config:
        secret_ref = _map(kube_config.get("secretRef"))
        secret = (_str(secret_ref.get("name")), _str(secret_ref.get("key")))
    rollback = spec.get("rollback")
    return _new_helm_status(
        history=history,
        storage_namespace=_str(status.get("storageNamespace")),
        last_attempted_revision=_str(status.get("lastAttemptedRevision")),
        last_attempted_release_action=_str(status.get("lastAttemptedReleaseAction")),
        failures=_int(status.get("failures")) or 0,
        install_failures=_int(status.get("installFailures")) or 0,
        upgrade_failures=_int(status.get("upgradeFailures")) or 0,
        chart_source=chart_source,
        chart_repository=chart_repository,
        chart_version=_str(template.get("version")),
        chart_ref=bool(chart_ref),
        kube_config=bool(kube_config),
        kube_config_secret=secret,
        service_account=_str(spec.get("serviceAccountName")),
        rollback_options=tuple(sorted((str(k), str(v)) for k, v in _map(rollback).items()))
        if rollback
        else (),
    )


def _snapshot(item: Mapping[str, Any]) -> ReleaseSnapshot:
    get = item.get
    version = get("version")
    first, last, hooks = get("firstDeployed"), get("lastDeployed"), get("testHooks")
    return _new_snapshot(
        version=(version if type(version) is int else _int(version)) or 0,
        name=_str(get("name")),
        namespace=_str(get("namespace")),
        chart_name=_str(get("chartName")),
        chart_version=_str(get("chartVersion")),
        app_version=_str(get("appVersion")),
        status=_str(get("status")),
        first_deployed=_time(first) if type(first) is str and first else parse_time(first),
        last_deployed=_time(last) if type(last) is str and last else parse_time(last),
        action=_str(get("action")),
        # A digest of the values: unique to a release more often than not, so not interned.
        config_digest=_unshared_str(get("configDigest")),
        tests_failed=bool(hooks)
        and any(_str(_map(hook).get("phase")) == "Failed" for hook in _map(hooks).values()),
    )


def _ref(raw: object, default_namespace: str, default_kind: str = "") -> ObjectRef | None:
    item = _map(raw)
    name = _str(item.get("name"))
    if not name:
        return None
    return _object_ref(
        _str(item.get("kind")) or default_kind,
        _str(item.get("namespace")) or default_namespace,
        name,
    )


def _object_ref(kind: str, namespace: str, name: str) -> ObjectRef:
    # Owners, sources and dependencies are named by many objects: equal references
    # (immutable) are shared while they stay in this bounded cache.
    key = (kind, namespace, name)
    ref = _REFS.get(key)
    if ref is None:
        ref = _remember(_REFS, key, ObjectRef(kind, namespace, name))
    return ref


_REFS: Final[dict[tuple[str, str, str], ObjectRef]] = {}


def _remember(cache: dict[_K, _V], key: _K, value: _V) -> _V:
    # The caches that share equal values are bounded: emptied when full, they start over
    # with what the fleet repeats now.
    if len(cache) >= 4096:
        cache.clear()
    cache[key] = value
    return value


def parse_time(value: object) -> dt.datetime | None:
    """An RFC 3339 timestamp as an aware datetime, or None when absent or malformed."""
    if not isinstance(value, str) or not value:
        return None
    return _time(value)


# The conditions and history entries of one object, and objects reconciled together, repeat
# the same timestamps: recently seen ones share one datetime (they are immutable). A plain
# dict, emptied when full: in a cold sync most timestamps are new, and a miss costs a third
# less than with functools.lru_cache's bookkeeping.
def _time(value: str) -> dt.datetime | None:
    seen = _TIMES.get(value, _UNSEEN)
    if seen is not _UNSEEN:
        return cast("dt.datetime | None", seen)
    parsed: dt.datetime | None
    try:
        parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    else:
        if not parsed.tzinfo:
            parsed = parsed.replace(tzinfo=dt.UTC)
    if len(_TIMES) >= 8192:
        _TIMES.clear()
    _TIMES[value] = parsed
    return parsed


_UNSEEN: Final = object()
_TIMES: Final[dict[str, dt.datetime | None]] = {}


def _str(value: object) -> str:
    # Interned: kinds, namespaces, names, reasons, revisions and messages repeat across a
    # fleet's objects and conditions, and every object is kept in the watch cache.
    return intern(value) if type(value) is str else ""


def _unshared_str(value: object) -> str:
    return value if type(value) is str else ""


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _map(value: object) -> Mapping[str, Any]:
    # dict first: parsed JSON is plain dicts, and the Mapping check is an ABC lookup.
    if type(value) is dict or (value is not None and isinstance(value, Mapping)):
        return value
    return _EMPTY


_EMPTY: Final[Mapping[str, Any]] = MappingProxyType({})


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []
