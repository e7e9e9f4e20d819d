"""What a remediation action does to Flux objects, decided without touching a cluster.

These rules mirror the Flux CLI (../shared/notes/flux.md): the reconcile token annotations,
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
from bot.domain.status import (
    RECONCILE_ANNOTATION,
    REQUESTED_AT,
    SUSPEND_REASON,
    SUSPENDED_AT,
    SUSPENDED_BY,
    SUSPENDED_UNTIL,
    FluxObject,
    Health,
    ObjectRef,
    ReleaseSnapshot,
)

FORCE_AT: Final = "reconcile.fluxcd.io/forceAt"
RESET_AT: Final = "reconcile.fluxcd.io/resetAt"
# kustomize-controller strips fields owned by other managers; the Flux CLI uses this one.
FIELD_MANAGER: Final = "flux-client-side-apply"
SUCCESSFUL_RELEASE: Final = frozenset({"deployed", "superseded"})


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


def check_reconcilable(obj: FluxObject) -> None:
    """The Flux CLI refuses to reconcile a suspended object; so do we."""
    if obj.suspended:
        raise Refused(f"{obj.kind} {obj.namespace}/{obj.name} is suspended; resume it first")


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


def suspend_patch(
    actor: str, reason: str, now: dt.datetime, until: dt.datetime | None
) -> dict[str, Any]:
    """Suspend, record who/when/why/until when, and keep the parent Kustomization off it."""
    annotations: dict[str, str | None] = {
        SUSPENDED_BY: actor,
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


@dataclass(frozen=True, slots=True)
class RollbackPlan:
    """An emergency rollback: from the current Helm release to the last successful one."""

    release: str
    namespace: str
    storage_namespace: str
    current: ReleaseSnapshot
    target: ReleaseSnapshot

    def describe(self) -> str:
        """One line for people."""
        return (
            f"roll back Helm release {self.namespace}/{self.release} from revision "
            f"{self.current.version} ({self.current.chart_name}@{self.current.chart_version}, "
            f"{self.current.status}) to revision {self.target.version} "
            f"({self.target.chart_name}@{self.target.chart_version})"
        )


def rollback_plan(obj: FluxObject) -> RollbackPlan:
    """The rollback of a HelmRelease to its previous successful release; Refused if none."""
    if obj.kind != HELM_RELEASE.kind or obj.helm is None:
        raise Refused("only HelmReleases can be rolled back")
    history = obj.helm.history
    if not history:
        raise Refused("the HelmRelease has no release history to roll back to")
    current = history[0]
    target = next((s for s in history[1:] if s.status in SUCCESSFUL_RELEASE), None)
    if target is None:
        raise Refused(
            "no earlier successful release in the HelmRelease's history "
            f"({len(history)} entr{'y' if len(history) == 1 else 'ies'})"
        )
    return RollbackPlan(
        release=current.name,
        namespace=current.namespace,
        storage_namespace=obj.helm.storage_namespace or current.namespace,
        current=current,
        target=target,
    )


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

    Done means `status.lastHandledReconcileAt == token`. Then, as kstatus: a generation lag or
    Reconciling=True is still in progress, Stalled is failed, Ready True succeeded; a failed
    attempt (Ready False, retrying) is reported at once rather than after five minutes.
    """
    if obj.last_handled_reconcile_at != token:
        return None
    if obj.generation_lag:
        return Outcome(OutcomeState.PROGRESSING, "the controller has not caught up yet")
    if obj.stalled or (obj.ready == "False" and obj.health is Health.FAILING):
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


def applicable_actions(obj: FluxObject, rollback_available: bool) -> list[tuple[Action, str]]:
    """The buttons an object deserves: (action, variant) pairs, most useful first."""
    if obj.suspended:
        return [(Action.RESUME, "")]
    actions: list[tuple[Action, str]] = [(Action.RECONCILE, "")]
    if obj.source_ref is not None:
        actions.append((Action.RECONCILE, "with-source"))
    if obj.kind == HELM_RELEASE.kind:
        actions.append((Action.RECONCILE, "force"))
        if obj.stalled or (obj.helm is not None and obj.helm.failures):
            actions.append((Action.RECONCILE, "reset"))
        if rollback_available:
            try:
                rollback_plan(obj)
                actions.append((Action.ROLLBACK, ""))
            except Refused:
                pass
    actions.append((Action.SUSPEND, ""))
    return actions


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
