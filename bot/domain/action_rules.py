"""What a remediation action does to Flux objects, decided without touching a cluster.

These rules mirror the Flux CLI (fluxcd/flux2 `cmd/flux/reconcile*.go`, `suspend.go`,
`resume.go`, `readiness.go`): the reconcile token annotations,
`--with-source` mapping, refusing suspended objects, how completion is judged, which Helm
release an emergency rollback goes back to, and what counts as a material change between the
state a button was rendered from and the state when it is clicked.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from bot.domain.kinds import HELM_CHART, HELM_RELEASE
from bot.domain.policy import Action
from bot.domain.rollback import CannotRollBack, rollback_plan
from bot.domain.status import (
    OPERATOR_SUSPENDED_BY,
    RECONCILE_ANNOTATION,
    REQUESTED_AT,
    SUSPEND_REASON,
    SUSPENDED_AT,
    SUSPENDED_BY,
    SUSPENDED_UNTIL,
    FluxObject,
    ObjectRef,
)

FORCE_AT: Final = "reconcile.fluxcd.io/forceAt"
RESET_AT: Final = "reconcile.fluxcd.io/resetAt"
# kustomize-controller strips fields owned by other managers; the Flux CLI uses this one.
FIELD_MANAGER: Final = "flux-client-side-apply"


class Refused(Exception):
    """The action cannot be done on this object as it is; the message says why."""


@dataclass(frozen=True, slots=True)
class ReconcileOptions:
    """`flux reconcile` flags."""

    with_source: bool = False
    force: bool = False
    reset: bool = False


def reconcile_token(now: dt.datetime) -> str:
    """A new request token: RFC 3339 with nanoseconds, like the Flux CLI's."""
    utc = now.astimezone(dt.UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond:06d}000Z"


def reconcile_patch(token: str, obj: FluxObject, options: ReconcileOptions) -> dict[str, Any]:
    """The merge patch that requests a reconcile (and force / reset for HelmReleases)."""
    annotations = {REQUESTED_AT: token}
    if obj.kind == HELM_RELEASE.kind:
        if options.force:
            annotations[FORCE_AT] = token
        if options.reset:
            annotations[RESET_AT] = token
    elif options.force or options.reset:
        raise Refused("force and reset retries apply to HelmReleases only")
    return {"metadata": {"annotations": annotations}}


def check_offered(obj: FluxObject, action: str, variant: str = "") -> None:
    """Refuse what the Flux CLI does not offer for the kind (no `flux reconcile alert`, no
    `flux suspend source external`, `--with-source` only where flux has it)."""
    kind = obj.flux_kind
    if action in ("reconcile", "suspend", "resume") and action not in kind.actions:
        raise Refused(f"Flux offers no {action} for {kind.kind} objects")
    if variant == "with-source" and (not kind.with_source or obj.source_ref is None):
        # A source the CLI cannot reconcile (an ExternalArtifact) is refused by
        # with_source_plan, in the CLI's words.
        raise Refused(f"{kind.kind} {obj.namespace}/{obj.name} has no source to reconcile first")


def check_reconcilable(obj: FluxObject) -> None:
    """What the Flux CLI refuses to reconcile, in its words: a suspended or static object."""
    if obj.static:
        raise Refused(
            f"{obj.kind} {obj.namespace}/{obj.name} is an OCI Helm repository: reconciliation "
            "not supported by the object"
        )
    if obj.suspended:
        raise Refused(
            f"{obj.kind} {obj.namespace}/{obj.name} is suspended; resume it first (the Flux "
            "CLI: resource is suspended)"
        )


# Source kinds `flux reconcile --with-source` knows how to reconcile (cmd/flux/reconcile_*.go).
RECONCILABLE_SOURCES: Final = frozenset(
    {"GitRepository", "OCIRepository", "Bucket", "HelmChart", "HelmRepository"}
)


def source_chain(
    obj: FluxObject, objects: Mapping[tuple[str, str, str], FluxObject]
) -> list[ObjectRef]:
    """What `--with-source` reconciles first, deepest source first.

    Kustomization: its sourceRef. HelmRelease with `spec.chart`: the generated HelmChart, after
    that chart's own source; with `spec.chartRef`: that OCIRepository or HelmChart.
    """
    chain: list[ObjectRef] = []
    source = obj.source_ref
    depth = 0
    while source is not None and depth < 3:
        chain.insert(0, source)
        found = objects.get((source.kind, source.namespace, source.name))
        if found is None or source.kind != HELM_CHART.kind:
            break
        source = found.source_ref
        depth += 1
    return chain


def with_source_plan(
    obj: FluxObject, objects: Mapping[tuple[str, str, str], FluxObject]
) -> tuple[list[ObjectRef], list[ObjectRef]]:
    """The sources to reconcile first and the static ones the CLI skips; Refused (in the CLI's
    words) when a source cannot be reconciled or any object of the chain is suspended."""
    check_reconcilable(obj)
    reconcile: list[ObjectRef] = []
    skipped: list[ObjectRef] = []
    for ref in source_chain(obj, objects):
        if ref.kind not in RECONCILABLE_SOURCES:
            raise Refused(f"cannot reconcile source of kind {ref.kind}")
        found = objects.get((ref.kind, ref.namespace, ref.name))
        if found is None:
            raise Refused(f"source {ref.kind} {ref.namespace}/{ref.name} was not found")
        if found.static:
            skipped.append(ref)
            continue
        if found.suspended:
            raise Refused(
                f"source {ref.kind} {ref.namespace}/{ref.name} is suspended; resume it first "
                "(the Flux CLI: resource is suspended)"
            )
        reconcile.append(ref)
    return reconcile, skipped


def follow_budget(chain: Iterable[FluxObject]) -> float:
    """Seconds to follow a reconcile: each object's spec.timeout, the chain as a whole.

    Defaults as the controllers have them: a Kustomization's timeout is its interval,
    a HelmRelease's 5 minutes, a source's 60 seconds.
    """
    total = 0.0
    for obj in chain:
        if obj.timeout is not None:
            total += obj.timeout.total_seconds()
        elif obj.kind == "Kustomization" and obj.interval is not None:
            total += obj.interval.total_seconds()
        elif obj.kind == HELM_RELEASE.kind:
            total += 300.0
        else:
            total += 60.0
    return total


def suspend_patch(
    actor: str, reason: str, now: dt.datetime, until: dt.datetime | None
) -> dict[str, Any]:
    """Suspend, record who/when/why/until when, and keep the parent Kustomization off it."""
    annotations: dict[str, str | None] = {
        SUSPENDED_BY: actor,
        # The Flux Operator's annotation too, so its UI and other tools show who.
        OPERATOR_SUSPENDED_BY: actor,
        SUSPENDED_AT: _rfc3339(now),
        SUSPEND_REASON: reason,
        SUSPENDED_UNTIL: _rfc3339(until) if until else None,
        RECONCILE_ANNOTATION: "disabled",
    }
    return {"metadata": {"annotations": annotations}, "spec": {"suspend": True}}


def resume_patch(token: str) -> dict[str, Any]:
    """Resume and hand the object back to its parent Kustomization."""
    annotations: dict[str, str | None] = {
        SUSPENDED_BY: None,
        OPERATOR_SUSPENDED_BY: None,
        SUSPENDED_AT: None,
        SUSPEND_REASON: None,
        SUSPENDED_UNTIL: None,
        RECONCILE_ANNOTATION: None,
        # Resume relies on the generation bump; the token lets us follow the reconcile.
        REQUESTED_AT: token,
    }
    return {"metadata": {"annotations": annotations}, "spec": {"suspend": False}}


def _rfc3339(value: dt.datetime) -> str:
    return value.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class OutcomeState(StrEnum):
    """Where a followed reconcile ended."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    PROGRESSING = "progressing"


@dataclass(frozen=True, slots=True)
class Outcome:
    """How a reconcile went, once the controller handled the token (or time ran out)."""

    state: OutcomeState
    message: str
    revision: str = ""


def reconcile_outcome(obj: FluxObject, token: str) -> Outcome | None:
    """The outcome once the controller has handled `token`; None while it has not.

    Done means `status.lastHandledReconcileAt == token`. Then, as `flux resume` does
    (cmd/flux/readiness.go), the Ready condition is judged for the latest generation by its
    own observedGeneration when it has one (kustomize- and helm-controller advance the
    status-level one only on success, so after a failed attempt at a new generation it lags
    for good); only without it does the status-level one count. Stalled is failed, Ready True
    succeeded, and a failed attempt (Ready False, retrying) is reported at once rather than
    after five minutes.
    """
    if obj.flux_kind.always_ready:
        # Alerts and Providers have no status to hand a token back in: resumed is done.
        return None if obj.suspended else Outcome(OutcomeState.SUCCEEDED, obj.message)
    if obj.last_handled_reconcile_at != token:
        return None
    ready = next((c for c in obj.conditions if c.type == "Ready"), None)
    if ready is not None and ready.observed_generation:
        current = ready.observed_generation == obj.generation
    else:
        current = not obj.generation_lag
    if not current:
        return Outcome(OutcomeState.PROGRESSING, "the controller has not caught up yet")
    if obj.stalled or (ready is not None and ready.status == "False"):
        return Outcome(OutcomeState.FAILED, obj.message, obj.full_revision)
    if obj.ready == "True" and not obj.reconciling:
        return Outcome(OutcomeState.SUCCEEDED, obj.message, obj.full_revision)
    return Outcome(OutcomeState.PROGRESSING, obj.message or "reconciling")


def material_state(obj: FluxObject) -> str:
    """A short fingerprint of what an action decision rests on.

    A button carries the fingerprint of the object it was rendered from; if the object has
    since recovered, moved to a new revision or been suspended, the fingerprint differs and
    the click is not acted on blindly.
    """
    basis = f"{obj.health}|{obj.full_revision}|{obj.suspended}"
    return hashlib.sha256(basis.encode()).hexdigest()[:10]


def applicable_actions(
    obj: FluxObject,
    rollback_method: str | None,
    objects: Mapping[tuple[str, str, str], FluxObject] | None = None,
) -> list[tuple[Action, str]]:
    """The buttons an object deserves: (action, variant) pairs, most useful first.

    `rollback_method` is None when rollback is not available at all. Static objects (OCI
    HelmRepositories) are not reconciled by Flux, so nothing is offered for them but suspend.
    Only what the Flux CLI has for the kind is offered (no `flux reconcile alert`, nothing for
    ExternalArtifacts and ArtifactGenerators, `--with-source` for Kustomizations, HelmReleases
    and HelmCharts).
    """
    offered = obj.flux_kind.actions
    if obj.suspended:
        return [(Action.RESUME, "")] if "resume" in offered else []
    if obj.reconcile_disabled and obj.kind == HELM_RELEASE.kind and _rolled_back(obj):
        return [(Action.RESUME, ""), (Action.SUSPEND, "")]
    actions: list[tuple[Action, str]] = []
    if not obj.static and "reconcile" in offered:
        actions.append((Action.RECONCILE, ""))
        if (
            obj.flux_kind.with_source
            and obj.source_ref is not None
            and obj.source_ref.kind in RECONCILABLE_SOURCES
        ):
            actions.append((Action.RECONCILE, "with-source"))
    if obj.kind == HELM_RELEASE.kind:
        actions.append((Action.RECONCILE, "force"))
        if obj.stalled or (obj.helm is not None and obj.helm.failures):
            actions.append((Action.RECONCILE, "reset"))
        if rollback_method is not None:
            try:
                rollback_plan(obj, dict(objects or {}), rollback_method)
                actions.append((Action.ROLLBACK, ""))
            except CannotRollBack:
                pass
    if "suspend" in offered:
        actions.append((Action.SUSPEND, ""))
    return actions


def _rolled_back(obj: FluxObject) -> bool:
    return bool(obj.rolled_back_from)


def index_objects(objects: Iterable[FluxObject]) -> dict[tuple[str, str, str], FluxObject]:
    """Objects by (kind, namespace, name)."""
    return {o.key: o for o in objects}


_UNITS: Final = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta | None:
    """`30m`, `2h`, `3d` or `1w` as a timedelta; None when it is not one of those."""
    text = text.strip().lower()
    # ASCII digits, and few of them: int() refuses 4,300+ digits, and 90 days fit in 6.
    if len(text) < 2 or text[-1] not in _UNITS or not re.fullmatch(r"[0-9]{1,6}", text[:-1]):
        return None
    amount = int(text[:-1])
    if amount <= 0 or amount * _UNITS[text[-1]] > 90 * 86400:
        return None
    return dt.timedelta(seconds=amount * _UNITS[text[-1]])
