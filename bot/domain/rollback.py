"""Emergency rollback of a HelmRelease: when it can help, to what, and how, by Flux's rules.

Offered only when the newest Helm release failed (or its tests did, or the release is stalled
on an upgrade or test failure) and helm-controller has not already rolled it back; never for a
chart that cannot be fetched (going back does not fix the source). The target is what
helm-controller's `Snapshots.Previous` picks (api/v2/snapshot_types.go): the newest
deployed/superseded release after the latest whose tests did not fail.

Two ways (`actions.rollback`):
- `flux` (default): keep the parent Kustomization from re-applying the HelmRelease (annotate it
  `kustomize.toolkit.fluxcd.io/reconcile: disabled`; fluxcd/pkg ssa skips such objects), pin the
  chart to the target version (`spec.chart.spec.version`, or for `chartRef` the OCIRepository's
  `spec.ref.tag` when no other HelmRelease uses it), and let helm-controller upgrade: right
  namespace, cluster, service account, post-renderers, history. Values are not restored: the
  snapshot keeps only their digest.
- `helm`: `helm rollback`, refused where the Helm CLI cannot do what helm-controller would (a
  storage namespace other than the release namespace, a remote cluster).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Final

from bot.domain.kinds import HELM_RELEASE
from bot.domain.status import (
    RECONCILE_ANNOTATION,
    ROLLED_BACK_BY,
    ROLLED_BACK_FROM,
    ROLLED_BACK_TO,
    FluxObject,
    ObjectRef,
    ReleaseSnapshot,
)

SUCCESSFUL_RELEASE: Final = frozenset({"deployed", "superseded"})
# Ready reasons that mean the chart could not be had: rolling back does not help.
CHART_UNAVAILABLE: Final = frozenset({"ArtifactFailed", "SourceNotReady", "HelmChartNotReady"})
# Helm's release name rules (helm/helm internal/chart/v3/util/validate_name.go): a DNS-1123
# subdomain of at most 53 characters.
RELEASE_NAME: Final = re.compile(
    r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
)
NAMESPACE: Final = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class CannotRollBack(Exception):
    """Rolling back cannot help or cannot be done right; the message says why."""


@dataclass(frozen=True, slots=True)
class Pin:
    """What the Flux-native rollback patches: the HelmRelease's chart version, or the
    OCIRepository its chartRef names."""

    ref: ObjectRef
    body: dict[str, Any]
    field: str  # for people: `spec.chart.spec.version` or `spec.ref.tag`


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """An emergency rollback: from the current Helm release to helm-controller's Previous."""

    method: str  # flux | helm
    release: str
    namespace: str
    storage_namespace: str
    current: ReleaseSnapshot
    target: ReleaseSnapshot
    pin: Pin | None = None
    # The configured cluster `helm` runs against when the release lives in a remote cluster
    # (`spec.kubeConfig`); empty when it lives where the HelmRelease is.
    helm_cluster: str = ""

    @property
    def values_changed(self) -> bool:
        """Whether the values differ between the two releases (their configDigest)."""
        return bool(self.current.config_digest and self.target.config_digest) and (
            self.current.config_digest != self.target.config_digest
        )

    def describe(self) -> str:
        """One line for people."""
        return (
            f"roll back Helm release {self.namespace}/{self.release} from revision "
            f"{self.current.version} ({self.current.chart_name}@{self.current.chart_version}, "
            f"{self.current.status}) to revision {self.target.version} "
            f"({self.target.chart_name}@{self.target.chart_version})"
        )


def rollback_plan(
    obj: FluxObject,
    objects: dict[tuple[str, str, str], FluxObject] | None = None,
    method: str = "flux",
) -> RollbackPlan:
    """The rollback that would help `obj`, done the `method` way; CannotRollBack if none."""
    if obj.kind != HELM_RELEASE.kind or obj.helm is None:
        raise CannotRollBack("only HelmReleases can be rolled back")
    helm = obj.helm
    history = helm.history
    if not history:
        raise CannotRollBack("the HelmRelease has no release history to roll back to")
    current = history[0]
    if obj.reason in CHART_UNAVAILABLE:
        raise CannotRollBack(
            f"its chart cannot be fetched ({obj.reason}: {obj.message}); an older release "
            "does not fix that, the chart source must be fixed"
        )
    if current.action == "rollback" or obj.reason in ("RollbackSucceeded",):
        raise CannotRollBack(
            f"helm-controller already rolled it back (revision {current.version}, "
            f"{current.chart_name}@{current.chart_version}); there is nothing left to roll back"
        )
    failed = (
        current.status == "failed"
        or current.tests_failed
        or (obj.stalled and obj.reason in ("UpgradeFailed", "TestFailed", "InstallFailed"))
    )
    if not failed:
        raise CannotRollBack(
            f"its newest release (revision {current.version}, {current.chart_version}) did not "
            "fail; rolling back would only go to older software"
        )
    target = previous(history)
    if target is None:
        raise CannotRollBack(
            "no earlier successful release in the HelmRelease's history "
            f"({len(history)} entr{'y' if len(history) == 1 else 'ies'})"
        )
    storage = helm.storage_namespace or current.namespace
    plan = RollbackPlan(method, current.name, current.namespace, storage, current, target)
    if method == "flux":
        return RollbackPlan(
            method, plan.release, plan.namespace, storage, current, target,
            pin=_pin(obj, target, objects or {}),
        )  # fmt: skip
    return plan


def previous(history: tuple[ReleaseSnapshot, ...]) -> ReleaseSnapshot | None:
    """helm-controller's `Snapshots.Previous(ignoreTests=false)`."""
    ordered = sorted(history, key=lambda s: s.version, reverse=True)
    return next(
        (s for s in ordered[1:] if s.status in SUCCESSFUL_RELEASE and not s.tests_failed), None
    )


def _pin(
    obj: FluxObject, target: ReleaseSnapshot, objects: dict[tuple[str, str, str], FluxObject]
) -> Pin:
    assert obj.helm is not None
    version = target.chart_version.split("+", 1)[0]
    source = obj.helm.chart_source
    if obj.helm.chart_ref and source is not None and source.kind == "OCIRepository":
        others = sorted(
            f"{o.namespace}/{o.name}"
            for o in objects.values()
            if o.kind == HELM_RELEASE.kind
            and o.helm is not None
            and o.helm.chart_source == source
            and o.key != obj.key
        )
        if others:
            raise CannotRollBack(
                f"its chart comes from OCIRepository {source.namespace}/{source.name}, which "
                f"HelmRelease {', '.join(others)} also uses: pinning it would roll that back too. "
                "Pin the version in Git instead"
            )
        body = {"spec": {"ref": {"tag": version, "semver": None, "semverFilter": None,
                                 "digest": None}}}  # fmt: skip
        return Pin(source, body, "spec.ref.tag")
    if obj.helm.chart_ref:
        raise CannotRollBack(
            f"its chartRef names {source.kind if source else 'a'} "
            f"{source.namespace + '/' + source.name if source else 'source'}, which fluxbot "
            "does not pin; pin the version in Git instead"
        )
    return Pin(obj.ref, {"spec": {"chart": {"spec": {"version": version}}}},
               "spec.chart.spec.version")  # fmt: skip


def hold_patch(actor: str, plan: RollbackPlan) -> dict[str, Any]:
    """Keep the parent Kustomization off the object, and say who rolled back from what."""
    return {
        "metadata": {
            "annotations": {
                RECONCILE_ANNOTATION: "disabled",
                ROLLED_BACK_BY: actor,
                ROLLED_BACK_FROM: plan.current.chart_version,
                ROLLED_BACK_TO: plan.target.chart_version,
            }
        }
    }


def release_patch() -> dict[str, Any]:
    """Hand the object back to its parent Kustomization (the first step of Resume)."""
    return {
        "metadata": {
            "annotations": {
                RECONCILE_ANNOTATION: None,
                ROLLED_BACK_BY: None,
                ROLLED_BACK_FROM: None,
                ROLLED_BACK_TO: None,
            }
        }
    }


def check_remote(obj: FluxObject, mapped_remote: bool) -> None:
    """Refuse a HelmRelease whose release lives in a remote cluster (`spec.kubeConfig`) that
    fluxbot cannot reach as that cluster."""
    assert obj.helm is not None
    if obj.helm.kube_config and not mapped_remote:
        secret, key = obj.helm.kube_config_secret
        ref = (
            f"Secret {obj.namespace}/{secret}" + (f" key {key}" if key else "")
            if secret
            else "a configMapRef (workload identity)"
        )
        raise CannotRollBack(
            f"the release lives in another cluster (spec.kubeConfig: {ref}) that is not mapped "
            "to a configured cluster in actions.helm_remote_clusters. Use actions.rollback: flux"
        )


def check_helm_cli(obj: FluxObject, plan: RollbackPlan, mapped_remote: bool) -> None:
    """What `helm rollback` cannot do right, refused (the Helm CLI has one --namespace for
    storage and for the chart's namespace-less resources; `spec.kubeConfig` is another
    cluster)."""
    assert obj.helm is not None
    check_remote(obj, mapped_remote)
    if plan.storage_namespace != plan.namespace:
        raise CannotRollBack(
            f"its Helm storage namespace ({plan.storage_namespace}) differs from the release "
            f"namespace ({plan.namespace}); the Helm CLI has one --namespace for both, so "
            "resources would land in the wrong namespace. Use actions.rollback: flux"
        )
    check_helm_names(plan.release, plan.storage_namespace, obj.helm.service_account)


def check_helm_names(release: str, storage_namespace: str, service_account: str = "") -> None:
    """Names from a cluster that go on helm's command line, checked by Kubernetes' and Helm's
    own rules (helm pkg/chartutil ValidateReleaseName), so none can read as a flag."""
    if not RELEASE_NAME.match(release) or len(release) > 53:
        raise CannotRollBack(f"{release!r} is not a valid Helm release name")
    if not NAMESPACE.match(storage_namespace) or len(storage_namespace) > 63:
        raise CannotRollBack(f"{storage_namespace!r} is not a valid namespace")
    if service_account and (not RELEASE_NAME.match(service_account) or len(service_account) > 253):
        raise CannotRollBack(f"{service_account!r} is not a valid ServiceAccount name")


def plan_from_helm_history(obj: FluxObject, revisions: list[tuple[int, str, str]]) -> RollbackPlan:
    """A Helm CLI rollback planned from `helm history` (revision, status, chart, newest first):
    while a HelmRelease is suspended its status.history is not kept up to date."""
    assert obj.helm is not None
    assert obj.helm.history
    known = obj.helm.history[0]
    if not revisions:
        raise CannotRollBack("`helm history` shows no revision")
    number, status, chart = revisions[0]
    if status not in ("failed", "pending-upgrade", "pending-install", "pending-rollback"):
        raise CannotRollBack(
            f"Helm's newest revision ({number}, {chart}) is {status}; rolling back would only "
            "go to older software"
        )
    if status.startswith("pending"):
        raise CannotRollBack(
            f"Helm's newest revision ({number}) is {status}: another operation is in progress "
            "or was interrupted; resolve that first"
        )
    target = next((r for r in revisions[1:] if r[1] in SUCCESSFUL_RELEASE), None)
    if target is None:
        raise CannotRollBack("no earlier successful revision in `helm history`")

    def snapshot(revision: tuple[int, str, str]) -> ReleaseSnapshot:
        name, _, version = revision[2].rpartition("-")
        return ReleaseSnapshot(
            version=revision[0], name=known.name, namespace=known.namespace,
            chart_name=name or revision[2], chart_version=version, app_version="",
            status=revision[1], first_deployed=None, last_deployed=None, action="",
        )  # fmt: skip

    storage = obj.helm.storage_namespace or known.namespace
    return RollbackPlan(
        "helm", known.name, known.namespace, storage, snapshot(revisions[0]), snapshot(target)
    )
