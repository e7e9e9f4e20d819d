"""The remediation service: one place that checks, executes, follows and audits every action.

Chat adapters turn clicks and text commands into `ActionRequest`s and render what comes back;
every request goes through `prepare` (the declarative policy, optional Kubernetes RBAC, the
object's current state) again right before it runs, whatever the message said.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Protocol

from bot.config import ClusterConfig, FluxbotConfig, KubernetesAuthorization
from bot.domain.fleet import ClusterTarget
from bot.domain.history import ActionRecord
from bot.domain.policy import Action, Actor, ConfirmationMode, Role, decide
from bot.domain.remediation import (
    Outcome,
    OutcomeState,
    ReconcileOptions,
    Refused,
    RollbackPlan,
    check_offered,
    check_reconcilable,
    index_objects,
    material_state,
    reconcile_outcome,
    reconcile_patch,
    reconcile_token,
    resume_patch,
    rollback_plan,
    source_chain,
    suspend_patch,
)
from bot.domain.status import FluxObject, ObjectRef
from bot.observability import metrics

log = logging.getLogger(__name__)

Progress = Callable[[str], None]


class ObjectSource(Protocol):
    """Current object state (the watch cache)."""

    def object(self, target: ClusterTarget, ref: ObjectRef) -> FluxObject | None:
        """The cached object, if any."""
        ...

    def wait_for(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        predicate: Callable[[FluxObject], bool],
        timeout: float,
    ) -> FluxObject | None:
        """Block until the object satisfies `predicate`, or None after `timeout`."""
        ...

    def cluster_objects(self, target: ClusterTarget) -> Sequence[FluxObject]:
        """Every cached object of the cluster."""
        ...


class ClusterWriter(Protocol):
    """Writes to clusters (the Kubernetes adapter)."""

    def patch(self, target: ClusterTarget, ref: ObjectRef, body: dict[str, object]) -> None:
        """Merge-patch an object."""
        ...

    def record_event(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        action: str,
        username: str,
        groups: Sequence[str],
        message: str,
        *,
        warning: bool = False,
    ) -> None:
        """Leave an audit Event on an object."""
        ...

    def may(
        self, target: ClusterTarget, ref: ObjectRef, verb: str, user: str, groups: Sequence[str]
    ) -> tuple[bool, str]:
        """Ask the cluster whether `user` may `verb` the object."""
        ...


class Rollbacks(Protocol):
    """Runs Helm (the Helm adapter)."""

    def rollback(self, cluster: ClusterConfig, release: str, revision: int, namespace: str) -> str:
        """`helm rollback ... --wait`."""
        ...

    def history(self, cluster: ClusterConfig, release: str, namespace: str) -> object:
        """The newest release revision (with .revision, .status, .chart, .description)."""
        ...


class Verdict(StrEnum):
    """Whether a request may go ahead."""

    OK = "ok"
    DENIED = "denied"
    STALE = "stale"
    REFUSED = "refused"
    GONE = "gone"
    BUSY = "busy"


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One requested action on one object."""

    action: Action
    target: ClusterTarget
    ref: ObjectRef
    variant: str = ""  # with-source, force, reset (reconcile)
    state: str = ""  # fingerprint the request was made from; "" skips the check
    reason: str = ""  # suspend
    until: dt.datetime | None = None  # suspend
    rollback_to: int = 0  # the target revision shown in the plan

    def describe(self) -> str:
        """`reconcile with source of HelmRelease flux-apps/podinfo on prod-eu-1`."""
        what = self.action.value + (f" ({self.variant})" if self.variant else "")
        return f"{what} of {self.title}"

    @property
    def title(self) -> str:
        """`HelmRelease flux-apps/podinfo on prod-eu-1`."""
        return f"{self.ref.kind} {self.ref.namespace}/{self.ref.name} on {self.target.cluster}"


@dataclass(frozen=True, slots=True)
class Preparation:
    """The checked request: may it run, how must it be confirmed, and what it would do."""

    verdict: Verdict
    message: str
    obj: FluxObject | None = None
    confirmation: ConfirmationMode = ConfirmationMode.NONE
    needs_approval: bool = False
    plan: RollbackPlan | None = None


@dataclass
class ActionResult:
    """What happened, with what was and was not changed when something failed."""

    ok: bool
    headline: str
    details: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    not_changed: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    offer_resume: bool = False
    warning: str = ""


class ActionService:
    """Authorizes and runs remediation actions for one fleet."""

    def __init__(
        self,
        config: FluxbotConfig,
        objects: ObjectSource,
        writer: ClusterWriter,
        helm: Rollbacks | None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_action: Callable[[ActionRecord], None] | None = None,
    ) -> None:
        self.config = config
        self.on_action = on_action
        self.objects = objects
        self.writer = writer
        self.helm = helm
        self.clock = clock
        self._roles: Mapping[str, Role] = config.role_map()
        self._busy: dict[tuple[ClusterTarget, ObjectRef], str] = {}
        self._lock = threading.Lock()
        self._nonces: dict[str, float] = {}

    @property
    def rollback_available(self) -> bool:
        """Whether a Helm client is configured, so rollback can be offered."""
        return self.helm is not None

    # -- idempotency --

    def claim(self, nonce: str, ttl: float) -> bool:
        """True the first time a button nonce is seen; double clicks and retries get False."""
        now = time.monotonic()
        with self._lock:
            for old in [n for n, expiry in self._nonces.items() if expiry < now]:
                del self._nonces[old]
            if nonce in self._nonces:
                return False
            self._nonces[nonce] = now + ttl
            return True

    # -- checks --

    def prepare(self, actor: Actor, request: ActionRequest) -> Preparation:
        """Every check, on the server, right now; nothing is written."""
        policy = self.config.policy(request.target.environment)
        decision = decide(actor, request.action, policy, self._roles)
        if not decision.allowed:
            return Preparation(Verdict.DENIED, f"Not allowed: {decision.reason}.")
        obj = self.objects.object(request.target, request.ref)
        if obj is None:
            return Preparation(
                Verdict.GONE,
                f"{request.ref.kind} {request.ref.namespace}/{request.ref.name} is not on "
                f"{request.target.cluster} (any more).",
            )
        if request.state and request.state != material_state(obj):
            return Preparation(
                Verdict.STALE,
                f"{obj.kind} {obj.namespace}/{obj.name} changed since that message: it is now "
                f"{obj.health}"
                + (" and suspended" if obj.suspended else "")
                + (f" at {obj.revision}" if obj.revision else "")
                + ". Nothing was done; here is its current state.",
                obj,
            )
        plan = None
        try:
            plan = self._check(request, obj)
        except Refused as err:
            return Preparation(Verdict.REFUSED, f"Cannot {request.action}: {err}.", obj)
        k8s_auth = self.config.environments[request.target.environment].actions
        if k8s_auth.kubernetes_authorization is not None:
            allowed, why = self._kubernetes_allows(
                actor, request, k8s_auth.kubernetes_authorization
            )
            if not allowed:
                return Preparation(Verdict.DENIED, why, obj)
        with self._lock:
            holder = self._busy.get((request.target, request.ref))
        if holder is not None:
            return Preparation(
                Verdict.BUSY, f"An action on this object is already running ({holder}).", obj
            )
        confirmation = policy.confirmation
        if request.action is Action.SUSPEND and confirmation is ConfirmationMode.NONE:
            # Suspend always asks for a reason, so it always goes through a form.
            confirmation = ConfirmationMode.DIALOG
        needs_approval = request.action is Action.ROLLBACK and policy.rollback_approval
        return Preparation(Verdict.OK, "", obj, confirmation, needs_approval, plan)

    def _check(self, request: ActionRequest, obj: FluxObject) -> RollbackPlan | None:
        check_offered(obj, request.action.value, request.variant)
        match request.action:
            case Action.RECONCILE:
                check_reconcilable(obj)
                reconcile_patch("check", obj, _options(request.variant))
            case Action.SUSPEND:
                if obj.suspended:
                    raise Refused("it is already suspended")
            case Action.RESUME:
                if not obj.suspended:
                    raise Refused("it is not suspended")
            case Action.ROLLBACK:
                if self.helm is None:
                    raise Refused(
                        "no helm client is configured (actions.helm_path), so fluxbot cannot "
                        "roll back"
                    )
                plan = rollback_plan(obj)
                if request.rollback_to and request.rollback_to != plan.target.version:
                    raise Refused(
                        f"the plan changed: the previous successful release is now revision "
                        f"{plan.target.version}, not {request.rollback_to}"
                    )
                return plan
        return None

    def _kubernetes_allows(
        self, actor: Actor, request: ActionRequest, auth: KubernetesAuthorization
    ) -> tuple[bool, str]:
        user = auth.user.format(user_id=actor.id, user_name=actor.name or actor.id)
        groups = sorted(
            {g.format(group=handle) for g in auth.groups for handle in actor.group_handles}
        )
        try:
            allowed, reason = self.writer.may(
                request.target, request.ref, request.action.value, user, groups
            )
        except Exception as err:  # noqa: BLE001 - an unanswered check denies
            return False, f"Could not check Kubernetes authorization: {err}."
        if allowed:
            return True, ""
        because = f" ({reason})" if reason else ""
        return (
            False,
            f"Not allowed by Kubernetes RBAC: {user} may not {request.action} "
            f"{request.ref.kind} {request.ref.namespace}/{request.ref.name}{because}.",
        )

    # -- execution --

    def run(self, actor: Actor, request: ActionRequest, progress: Progress) -> ActionResult:
        """Check again, then execute, audit and follow the action."""
        prepared = self.prepare(actor, request)
        if prepared.verdict is not Verdict.OK or prepared.obj is None:
            return ActionResult(False, prepared.message)
        key = (request.target, request.ref)
        with self._lock:
            if key in self._busy:
                return ActionResult(False, f"Already running: {self._busy[key]}.")
            self._busy[key] = f"{request.action} by <@{actor.id}>"
        started = time.monotonic()
        try:
            match request.action:
                case Action.RECONCILE:
                    result = self._reconcile(request, prepared.obj, progress)
                case Action.SUSPEND:
                    result = self._suspend(actor, request)
                case Action.RESUME:
                    result = self._resume(request, progress)
                case Action.ROLLBACK:
                    assert prepared.plan is not None
                    result = self._rollback(request, prepared.plan, progress)
        finally:
            with self._lock:
                self._busy.pop(key, None)
        self._audit(actor, request, result)
        self._remember(actor, request, result)
        metrics.record_action(
            request.action.value, "ok" if result.ok else "failed", time.monotonic() - started
        )
        log.info(
            "action %s by %s: %s (%.1f s)",
            request.describe(),
            actor.id,
            "ok" if result.ok else "failed",
            time.monotonic() - started,
            extra={
                "action": request.action.value,
                "variant": request.variant,
                "environment": request.target.environment,
                "cluster": request.target.cluster,
                "object": str(request.ref),
                "user": actor.id,
                "ok": result.ok,
            },
        )
        return result

    def _reconcile(
        self, request: ActionRequest, obj: FluxObject, progress: Progress
    ) -> ActionResult:
        options = _options(request.variant)
        token = reconcile_token(self.clock())
        started = time.monotonic()
        title = request.title
        chain: list[ObjectRef] = []
        if options.with_source:
            chain = source_chain(obj, index_objects(self.objects.cluster_objects(request.target)))
        timeout = self.config.actions.follow_timeout_seconds
        for source in chain:
            progress(f"Reconciling source {source.kind} {source.namespace}/{source.name}…")
            try:
                self.writer.patch(
                    request.target,
                    source,
                    {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
                )
            except Exception as err:  # noqa: BLE001 - reported, with what was done
                return ActionResult(False, f"Could not request a reconcile of {source}: {err}")
            handled = self.objects.wait_for(
                request.target, source, lambda o: o.last_handled_reconcile_at == token, timeout
            )
            if handled is None:
                return ActionResult(
                    False,
                    f"Source {source} did not handle the request within {timeout:g} s; "
                    f"{title} was not reconciled.",
                )
        try:
            self.writer.patch(request.target, request.ref, reconcile_patch(token, obj, options))
        except Exception as err:  # noqa: BLE001 - reported to the person who acted
            return ActionResult(False, f"Could not request a reconcile of {title}: {err}")
        progress(f"Reconcile of {title} requested; waiting for the controller…")
        outcome = self._follow(request, token, timeout - (time.monotonic() - started))
        seconds = time.monotonic() - started
        if outcome.state is OutcomeState.SUCCEEDED:
            applied = f": applied revision {outcome.revision}" if outcome.revision else ""
            return ActionResult(
                True, f"Reconciled {title} in {seconds:.1f} s{applied}.", outcome=outcome
            )
        if outcome.state is OutcomeState.FAILED:
            return ActionResult(
                False,
                f"Reconcile of {title} failed after {seconds:.1f} s: {outcome.message}",
                outcome=outcome,
            )
        return ActionResult(
            True,
            f"Reconcile of {title} is still progressing after {seconds:.0f} s: {outcome.message}",
            outcome=outcome,
        )

    def _follow(self, request: ActionRequest, token: str, timeout: float) -> Outcome:
        """Wait until the controller handled `token` and the object settled, or time runs out."""

        def settled(o: FluxObject) -> bool:
            result = reconcile_outcome(o, token)
            return result is not None and result.state is not OutcomeState.PROGRESSING

        obj = self.objects.wait_for(request.target, request.ref, settled, max(0.0, timeout))
        if obj is not None:
            outcome = reconcile_outcome(obj, token)
            assert outcome is not None
            return outcome
        current = self.objects.object(request.target, request.ref)
        handled = current is not None and current.last_handled_reconcile_at == token
        why = (
            current.message
            if current is not None and handled
            else "the controller has not handled the request yet"
        )
        return Outcome(OutcomeState.PROGRESSING, why)

    def _suspend(self, actor: Actor, request: ActionRequest) -> ActionResult:
        title = request.title
        body = suspend_patch(actor.name or actor.id, request.reason, self.clock(), request.until)
        try:
            self.writer.patch(request.target, request.ref, body)
        except Exception as err:  # noqa: BLE001 - reported to the person who acted
            return ActionResult(False, f"Could not suspend {title}: {err}")
        until = f" until {request.until:%Y-%m-%d %H:%M} UTC" if request.until else ""
        return ActionResult(
            True,
            f"Suspended {title}{until}: {request.reason}",
            changed=["spec.suspend: true", "parent Kustomization kept from re-applying it"],
            offer_resume=True,
        )

    def _resume(self, request: ActionRequest, progress: Progress) -> ActionResult:
        title = request.title
        token = reconcile_token(self.clock())
        try:
            self.writer.patch(request.target, request.ref, resume_patch(token))
        except Exception as err:  # noqa: BLE001 - reported to the person who acted
            return ActionResult(False, f"Could not resume {title}: {err}")
        progress(f"Resumed {title}; waiting for the controller…")
        outcome = self._follow(request, token, self.config.actions.follow_timeout_seconds)
        if outcome.state is OutcomeState.FAILED:
            return ActionResult(
                False,
                f"Resumed {title}, but its reconcile failed: {outcome.message}",
                outcome=outcome,
            )
        state = (
            "and reconciled" if outcome.state is OutcomeState.SUCCEEDED else "(still reconciling)"
        )
        return ActionResult(True, f"Resumed {title} {state}.", outcome=outcome)

    def _rollback(
        self, request: ActionRequest, plan: RollbackPlan, progress: Progress
    ) -> ActionResult:
        assert self.helm is not None
        title = (
            f"HelmRelease {request.ref.namespace}/{request.ref.name} on {request.target.cluster}"
        )
        cluster = self.config.cluster(request.target)
        result = ActionResult(False, "")
        steps_left = [
            "parent Kustomization kept from re-applying the HelmRelease",
            "HelmRelease suspended",
            f"Helm release rolled back to revision {plan.target.version}",
        ]
        try:
            progress(
                f"Rolling back {title}: stopping the parent Kustomization from re-applying it…"
            )
            self.writer.patch(
                request.target,
                request.ref,
                {
                    "metadata": {
                        "annotations": {"kustomize.toolkit.fluxcd.io/reconcile": "disabled"}
                    }
                },
            )
            result.changed.append(steps_left.pop(0))
            progress(f"Rolling back {title}: suspending the HelmRelease…")
            self.writer.patch(
                request.target,
                request.ref,
                suspend_patch(
                    "fluxbot rollback",
                    f"emergency rollback to revision {plan.target.version}",
                    self.clock(),
                    None,
                ),
            )
            result.changed.append(steps_left.pop(0))
            progress(f"Rolling back {title}: {plan.describe()} (helm rollback --wait)…")
            self.helm.rollback(cluster, plan.release, plan.target.version, plan.storage_namespace)
            result.changed.append(steps_left.pop(0))
            newest = self.helm.history(cluster, plan.release, plan.storage_namespace)
        except Exception as err:  # noqa: BLE001 - every step's failure is reported with the state
            result.not_changed = steps_left
            result.headline = f"Rollback of {title} failed: {err}"
            result.offer_resume = bool(result.changed)
            return result
        status = str(getattr(newest, "status", ""))
        description = str(getattr(newest, "description", ""))
        result.ok = status == "deployed"
        verified = (
            f"Helm reports revision {getattr(newest, 'revision', '?')} {status}: {description}"
        )
        result.details.append(verified)
        result.headline = (
            f"Rolled back {title} to revision {plan.target.version} "
            f"({plan.target.chart_name}@{plan.target.chart_version})."
            if result.ok
            else f"Rollback of {title} ran, but Helm does not report it deployed. {verified}"
        )
        result.warning = (
            "The HelmRelease stays suspended until Git is fixed: resuming it before then "
            "redeploys the bad version."
        )
        result.offer_resume = True
        return result

    def _remember(self, actor: Actor, request: ActionRequest, result: ActionResult) -> None:
        """Hand the action to the digest history (the next digest lists it)."""
        if self.on_action is None:
            return
        record = ActionRecord(
            at=self.clock(),
            environment=request.target.environment,
            cluster=request.target.cluster,
            kind=request.ref.kind,
            namespace=request.ref.namespace,
            name=request.ref.name,
            action=request.action.value + (f" ({request.variant})" if request.variant else ""),
            user=actor.name or actor.id,
            ok=result.ok,
            summary=result.headline,
        )
        try:
            self.on_action(record)
        except Exception:
            log.exception("could not record the action for the digest")

    def _audit(self, actor: Actor, request: ActionRequest, result: ActionResult) -> None:
        message = f"{actor.name or actor.id} ({actor.id}) via fluxbot: {result.headline}"
        try:
            self.writer.record_event(
                request.target,
                request.ref,
                request.action.value + (f"-{request.variant}" if request.variant else ""),
                actor.name or actor.id,
                sorted(actor.group_handles),
                message,
                warning=not result.ok,
            )
        except Exception as err:  # noqa: BLE001 - the action itself is done; say the audit failed
            log.warning("could not record the audit Event for %s: %s", request.describe(), err)
            result.details.append(f"(the audit Event could not be written: {err})")


def _options(variant: str) -> ReconcileOptions:
    return ReconcileOptions(
        with_source=variant == "with-source",
        force=variant == "force",
        reset=variant == "reset",
    )
