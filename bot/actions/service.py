"""The remediation service: one place that checks, executes, follows and audits every action.

Chat adapters turn clicks and text commands into `ActionRequest`s and render what comes back;
every request goes through `prepare` (the declarative policy, optional Kubernetes RBAC, the
object's current state) again right before it runs, whatever the message said.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import secrets
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Final, Protocol

from bot.actions.follow import Await, Following
from bot.actions.leases import LeaseKeeper
from bot.actions.model import ActionRequest, ActionResult
from bot.config import ClusterConfig, FluxbotConfig, KubernetesAuthorization, Tier
from bot.domain.action_lease import ActionLease, Claim, ClaimState
from bot.domain.fleet import ClusterTarget
from bot.domain.history import ActionRecord
from bot.domain.policy import Action, Actor, ConfirmationMode, Role, decide
from bot.domain.remediation import (
    Outcome,
    OutcomeState,
    ReconcileOptions,
    Refused,
    check_offered,
    check_reconcilable,
    follow_budget,
    index_objects,
    material_state,
    reconcile_outcome,
    reconcile_patch,
    reconcile_token,
    resume_patch,
    suspend_patch,
    with_source_plan,
)
from bot.domain.rollback import (
    CannotRollBack,
    RollbackPlan,
    check_helm_cli,
    check_helm_names,
    check_remote,
    hold_patch,
    plan_from_helm_history,
    release_patch,
    rollback_plan,
)
from bot.domain.status import RECONCILE_ANNOTATION, FluxObject, ObjectRef, parse_go_duration
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

    def on_change(self, listener: Callable[[], None]) -> None:
        """Call `listener` (quickly, without arguments) after every change."""
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

    def claim(
        self, target: ClusterTarget, ref: ObjectRef, action_id: str, lease: ActionLease
    ) -> Claim:
        """Write the action's lease (and its button's `action_id`) on the object,
        conditionally on its resourceVersion, unless the button was used or another action's
        lease is live."""
        ...

    def hold(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        lease: ActionLease,
        renewed: ActionLease | None,
    ) -> bool:
        """Renew `lease` (or remove it: None) if the object still carries it."""
        ...


class Rollbacks(Protocol):
    """Runs Helm (the Helm adapter)."""

    def rollback(
        self,
        cluster: ClusterConfig,
        release: str,
        revision: int,
        namespace: str,
        *,
        timeout: float,
        options: Mapping[str, str],
        service_account: str,
    ) -> str:
        """`helm rollback ... --wait` as helm-controller would (its timeout, options and
        service account)."""
        ...

    def history(self, cluster: ClusterConfig, release: str, namespace: str) -> object:
        """The newest release revision (with .revision, .status, .chart, .description)."""
        ...

    def revisions(self, cluster: ClusterConfig, release: str, namespace: str) -> Sequence[object]:
        """The newest release revisions, newest first (each like `history`'s)."""
        ...


class Verdict(StrEnum):
    """Whether a request may go ahead."""

    OK = "ok"
    DENIED = "denied"
    STALE = "stale"
    REFUSED = "refused"
    GONE = "gone"


@dataclass(frozen=True, slots=True)
class Preparation:
    """The checked request: may it run, how must it be confirmed, and what it would do."""

    verdict: Verdict
    message: str
    obj: FluxObject | None = None
    confirmation: ConfirmationMode = ConfirmationMode.NONE
    needs_approval: bool = False
    plan: RollbackPlan | None = None


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
        self._leases = LeaseKeeper(writer, clock)

    # -- checks --

    def authorize(self, actor: Actor, action: Action, request: ActionRequest) -> str | None:
        """Why `actor` may not `action` the request's object (role, then Kubernetes RBAC), or
        None when they may. Snoozes and approvals pass this same gate."""
        policy = self.config.policy(request.target.environment)
        decision = decide(actor, action, policy, self._roles)
        if not decision.allowed:
            return f"Not allowed: {decision.reason}."
        k8s_auth = self.config.environments[request.target.environment].actions
        if k8s_auth.kubernetes_authorization is not None:
            allowed, why = self._kubernetes_allows(
                actor, action, request, k8s_auth.kubernetes_authorization
            )
            if not allowed:
                return why
        return None

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
            # Every object the action writes is reviewed, not only the one clicked: a source
            # in another namespace, a parent Kustomization, a pinned OCIRepository.
            for ref, verb in self._written(request, obj, plan):
                allowed, why = self._kubernetes_allows(
                    actor, verb, request.but(ref=ref), k8s_auth.kubernetes_authorization
                )
                if not allowed:
                    if ref != request.ref:
                        why = why.removesuffix(".") + f", which this {request.action} writes."
                    return Preparation(Verdict.DENIED, why, obj)
        confirmation = policy.confirmation
        if request.action is Action.SUSPEND and confirmation is ConfirmationMode.NONE:
            # Suspend always asks for a reason, so it always goes through a form.
            confirmation = ConfirmationMode.DIALOG
        if (
            request.action is Action.RESUME
            and obj.rolled_back_from
            and self.config.tier_of(request.target.environment) is Tier.PRODUCTION
        ):
            # Resuming after a rollback redeploys what Git declares: type the name first.
            confirmation = ConfirmationMode.TYPED
        needs_approval = request.action is Action.ROLLBACK and policy.rollback_approval
        return Preparation(Verdict.OK, "", obj, confirmation, needs_approval, plan)

    def _written(
        self, request: ActionRequest, obj: FluxObject, plan: RollbackPlan | None
    ) -> list[tuple[ObjectRef, Action]]:
        """Each object the action will write, with the verb it is reviewed for (`reconcile`
        for the sources and parents it only asks to reconcile), in the order written."""
        objects = index_objects(self.objects.cluster_objects(request.target))

        def with_sources(of: FluxObject) -> list[tuple[ObjectRef, Action]]:
            try:
                chain, _skipped = with_source_plan(of, objects)
            except Refused:
                return []  # refused when it runs; nothing of the chain is written then
            return [(ref, Action.RECONCILE) for ref in chain]

        written: list[tuple[ObjectRef, Action]] = []
        match request.action:
            case Action.RECONCILE if _options(request.variant).with_source:
                written += with_sources(obj)
            case Action.RESUME:
                source = obj.helm.chart_source if obj.helm is not None else None
                pinned = (
                    objects.get((source.kind, source.namespace, source.name)) if source else None
                )
                if pinned is not None and pinned.reconcile_disabled:
                    written.append((pinned.ref, Action.RESUME))
                owner = obj.owner
                parent = objects.get((owner.kind, owner.namespace, owner.name)) if owner else None
                if parent is not None:
                    written += [*with_sources(parent), (parent.ref, Action.RECONCILE)]
            case Action.ROLLBACK if plan is not None and plan.pin is not None:
                if plan.pin.ref != request.ref:
                    written.append((plan.pin.ref, Action.ROLLBACK))
        return [*written, (request.ref, request.action)]

    def _check(self, request: ActionRequest, obj: FluxObject) -> RollbackPlan | None:
        check_offered(obj, request.action.value, request.variant)
        match request.action:
            case Action.RECONCILE:
                check_reconcilable(obj)
                reconcile_patch("check", obj, _options(request.variant))
                if request.variant == "with-source":
                    objects = index_objects(self.objects.cluster_objects(request.target))
                    with_source_plan(obj, objects)
            case Action.SUSPEND:
                if obj.suspended:
                    raise Refused("it is already suspended")
            case Action.RESUME:
                if not obj.suspended and not obj.rolled_back_from:
                    raise Refused("it is neither suspended nor rolled back")
            case Action.ROLLBACK:
                plan = self.plan_rollback(request.target, obj)
                if request.rollback_to and request.rollback_to != plan.target.version:
                    raise Refused(
                        f"the plan changed: the previous successful release is now revision "
                        f"{plan.target.version}, not {request.rollback_to}"
                    )
                return plan
        return None

    @property
    def rollback_method(self) -> str | None:
        """How rollbacks are done (flux, helm), or None when they cannot be."""
        method = self.config.actions.rollback
        return None if method == "helm" and self.helm is None else method

    def plan_rollback(self, target: ClusterTarget, obj: FluxObject) -> RollbackPlan:
        """The rollback that would help `obj`, the configured way; Refused if none."""
        method = self.rollback_method
        if method is None:
            raise Refused(
                "actions.rollback is helm but no helm client is configured (actions.helm_path)"
            )
        objects = index_objects(self.objects.cluster_objects(target))
        try:
            remote = self._remote_cluster(target, obj)
            if method == "helm" and obj.helm is not None:
                check_remote(obj, mapped_remote=remote is not None)
            if method == "helm" and obj.suspended and obj.helm and obj.helm.history:
                # Suspended, the HelmRelease's history is not kept: ask Helm instead.
                plan = self._plan_from_helm(target, obj)
            else:
                plan = rollback_plan(obj, objects, method)
            if method == "helm":
                check_helm_cli(obj, plan, mapped_remote=remote is not None)
                if remote is not None:
                    plan = dataclasses.replace(plan, helm_cluster=remote.display_name)
        except CannotRollBack as err:
            raise Refused(str(err)) from err
        return plan

    def _remote_cluster(self, target: ClusterTarget, obj: FluxObject) -> ClusterConfig | None:
        """The configured cluster a HelmRelease's `spec.kubeConfig` Secret reaches, if mapped."""
        if obj.helm is None or not obj.helm.kube_config:
            return None
        secret, key = obj.helm.kube_config_secret
        if not secret:
            return None
        return self.config.helm_remote_cluster(target.cluster, obj.namespace, secret, key)

    def _helm_cluster(self, target: ClusterTarget, obj: FluxObject) -> ClusterConfig:
        """Where `helm` must run for this HelmRelease: where its release is stored."""
        return self._remote_cluster(target, obj) or self.config.cluster(target)

    def _plan_from_helm(self, target: ClusterTarget, obj: FluxObject) -> RollbackPlan:
        assert self.helm is not None
        assert obj.helm is not None
        newest = obj.helm.history[0]
        storage = obj.helm.storage_namespace or newest.namespace
        check_helm_names(newest.name, storage)
        try:
            revisions = self.helm.revisions(self._helm_cluster(target, obj), newest.name, storage)
        except Exception as err:
            raise CannotRollBack(f"could not read `helm history`: {err}") from err
        return plan_from_helm_history(
            obj,
            [
                (int(getattr(r, "revision", 0)), str(getattr(r, "status", "")),
                 str(getattr(r, "chart", "")))
                for r in revisions
            ],
        )  # fmt: skip

    def _kubernetes_allows(
        self, actor: Actor, action: Action, request: ActionRequest, auth: KubernetesAuthorization
    ) -> tuple[bool, str]:
        user = auth.user.format(user_id=actor.id, user_name=actor.name or actor.id)
        groups = sorted(
            {g.format(group=handle) for g in auth.groups for handle in actor.group_handles}
        )
        try:
            allowed, reason = self.writer.may(
                request.target, request.ref, action.value, user, groups
            )
        except Exception as err:  # noqa: BLE001 - an unanswered check denies
            return False, f"Could not check Kubernetes authorization: {err}."
        if allowed:
            return True, ""
        because = f" ({reason})" if reason else ""
        return (
            False,
            f"Not allowed by Kubernetes RBAC: {user} may not {action} "
            f"{request.ref.kind} {request.ref.namespace}/{request.ref.name}{because}.",
        )

    # -- execution --

    def run(self, actor: Actor, request: ActionRequest, progress: Progress) -> Following:
        """Check again, then execute, audit and follow the action; it yields what it waits
        for (`Await`), so that no thread is parked while a controller works."""
        prepared = self.prepare(actor, request)
        if prepared.verdict is not Verdict.OK or prepared.obj is None:
            return ActionResult(False, prepared.message)
        # The first write claims the object: replicas racing for it (the halves of a double
        # click, or two different buttons) meet at the API server's resourceVersion check,
        # which lets exactly one of them through.
        lease = ActionLease.start(
            request.action_id or secrets.token_hex(8), _action_name(request), self.clock()
        )
        try:
            claim = self.writer.claim(request.target, request.ref, request.action_id, lease)
        except Exception as err:  # noqa: BLE001 - nothing was written
            return ActionResult(False, f"Could not start {request.describe()}: {err}")
        if claim.state is ClaimState.USED:
            log.info("action %s: claimed by another replica", request.describe())
            return ActionResult(
                False,
                "This button was already used (another fluxbot replica took it); nothing "
                "more was done.",
                claimed_elsewhere=True,
            )
        if claim.state is ClaimState.BUSY:
            assert claim.holder is not None
            log.info("action %s: the object is busy (%s)", request.describe(), claim.holder)
            return ActionResult(
                False,
                f"Busy: another fluxbot replica is running {claim.holder.action} on this object "
                f"since {claim.holder.since.astimezone(dt.UTC):%H:%M} UTC; nothing was "
                "done. Try again once it has finished.",
                busy_elsewhere=True,
            )
        self._leases.keep(request.target, request.ref, lease)
        try:
            result = yield from self._act(actor, request, prepared, progress)
        finally:
            self._leases.release(lease)
        self._audit(actor, request, result)
        self._remember(actor, request, result)
        return result

    def _act(
        self, actor: Actor, request: ActionRequest, prepared: Preparation, progress: Progress
    ) -> Following:
        """Execute the claimed action, log and measure it."""
        assert prepared.obj is not None
        progress("")  # running: the first write follows
        started = time.monotonic()
        match request.action:
            case Action.RECONCILE:
                result = yield from self._reconcile(request, prepared.obj, progress)
            case Action.SUSPEND:
                result = self._suspend(actor, request)
            case Action.RESUME:
                result = yield from self._resume(actor, request, prepared.obj, progress)
            case Action.ROLLBACK:
                assert prepared.plan is not None
                if prepared.plan.method == "flux":
                    result = yield from self._flux_rollback(actor, request, prepared.plan, progress)
                else:
                    result = self._rollback(actor, request, prepared.obj, prepared.plan, progress)
        verdict = "ok" if result.ok else "progressing" if result.pending else "failed"
        metrics.record_action(request.action.value, verdict, time.monotonic() - started)
        log.info(
            "action %s by %s: %s (%.1f s)",
            request.describe(),
            actor.id,
            verdict,
            time.monotonic() - started,
            extra={
                "action": request.action.value,
                "variant": request.variant,
                "environment": request.target.environment,
                "cluster": request.target.cluster,
                "object": str(request.ref),
                "user": actor.id,
                "approved_by": request.approved_by,
                "ok": result.ok,
            },
        )
        return result

    def _reconcile(self, request: ActionRequest, obj: FluxObject, progress: Progress) -> Following:
        options = _options(request.variant)
        token = reconcile_token(self.clock())
        started = time.monotonic()
        title = request.title
        chain: list[ObjectRef] = []
        skipped: list[ObjectRef] = []
        objects = index_objects(self.objects.cluster_objects(request.target))
        if options.with_source:
            try:
                chain, skipped = with_source_plan(obj, objects)
            except Refused as err:
                return ActionResult(False, f"Cannot reconcile {title} with its source: {err}.")
        members = [objects[(r.kind, r.namespace, r.name)] for r in chain if r.kind and
                   (r.kind, r.namespace, r.name) in objects]  # fmt: skip
        deadline = started + self._budget([*members, obj])
        details = [
            f"{ref.kind} {ref.namespace}/{ref.name}: reconciliation not supported by the "
            "object (static), skipped"
            for ref in skipped
        ]
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
            outcome = yield from self._follow(
                request.target, source, token, deadline - time.monotonic()
            )
            if outcome.state is not OutcomeState.SUCCEEDED:
                # `flux reconcile --with-source` stops when the source is not Ready.
                why = (
                    f"{source.kind} reconciliation failed: '{outcome.message}'"
                    if outcome.state is OutcomeState.FAILED
                    else f"{source.kind} {source.namespace}/{source.name} is still not Ready "
                    f"after {time.monotonic() - started:.0f} s: {outcome.message}"
                )
                return ActionResult(
                    False,
                    f"{why}; {title} was not reconciled.",
                    details=details,
                    outcome=outcome,
                    pending=outcome.state is OutcomeState.PROGRESSING,
                )
        try:
            self.writer.patch(request.target, request.ref, reconcile_patch(token, obj, options))
        except Exception as err:  # noqa: BLE001 - reported to the person who acted
            return ActionResult(False, f"Could not request a reconcile of {title}: {err}")
        progress(f"Reconcile of {title} requested; waiting for the controller…")
        outcome = yield from self._follow(
            request.target, request.ref, token, deadline - time.monotonic()
        )
        seconds = time.monotonic() - started
        if outcome.state is OutcomeState.SUCCEEDED:
            applied = f": applied revision {outcome.revision}" if outcome.revision else ""
            return ActionResult(
                True,
                f"Reconciled {title} in {seconds:.1f} s{applied}.",
                details=details,
                outcome=outcome,
            )
        if outcome.state is OutcomeState.FAILED:
            return ActionResult(
                False,
                f"Reconcile of {title} failed after {seconds:.1f} s: {outcome.message}",
                details=details,
                outcome=outcome,
            )
        return ActionResult(
            False,
            f"Reconcile of {title} is still progressing after {seconds:.0f} s: {outcome.message}",
            details=details,
            outcome=outcome,
            pending=True,
        )

    def _budget(self, chain: Sequence[FluxObject]) -> float:
        """How long to follow: the chain's spec.timeouts, at most actions.follow_timeout."""
        return min(follow_budget(chain), self.config.actions.follow_timeout_seconds)

    def _follow(
        self, target: ClusterTarget, ref: ObjectRef, token: str, timeout: float
    ) -> Generator[Await, FluxObject | None, Outcome]:
        """Wait until the controller handled `token` and the object settled, or time runs out."""

        def settled(o: FluxObject) -> bool:
            result = reconcile_outcome(o, token)
            return result is not None and result.state is not OutcomeState.PROGRESSING

        obj = yield Await(target, ref, settled, max(0.0, timeout))
        if obj is not None:
            outcome = reconcile_outcome(obj, token)
            assert outcome is not None
            return outcome
        current = self.objects.object(target, ref)
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

    def _resume(
        self, actor: Actor, request: ActionRequest, obj: FluxObject, progress: Progress
    ) -> Following:
        """Hand the object back to Git: release fluxbot's hold, let the parent Kustomization
        apply Git's current spec (with its source), say what that deploys, and only then
        unsuspend, so resuming never redeploys the bad version behind Git's back."""
        title = request.title
        result = ActionResult(False, "")
        started = time.monotonic()
        objects = index_objects(self.objects.cluster_objects(request.target))
        held = [obj.ref]
        source = obj.helm.chart_source if obj.helm is not None else None
        pinned = objects.get((source.kind, source.namespace, source.name)) if source else None
        if pinned is not None and pinned.reconcile_disabled:
            held.append(pinned.ref)
        try:
            for ref in held:
                progress(f"Resuming {title}: handing {ref.kind} {ref.name} back to Git…")
                self.writer.patch(request.target, ref, release_patch_for(ref == obj.ref))
            result.changed.append("parent Kustomization may apply it again")
        except Exception as err:  # noqa: BLE001 - reported with what was done
            result.headline = f"Could not resume {title}: {err}"
            return result
        owner = obj.owner
        parent = objects.get((owner.kind, owner.namespace, owner.name)) if owner else None
        if parent is not None:
            progress(f"Resuming {title}: applying Git with Kustomization {parent.name}…")
            applied = yield from self._reconcile(
                ActionRequest(Action.RECONCILE, request.target, parent.ref, variant="with-source"),
                parent,
                progress,
            )
            if not applied.ok:
                result.headline = (
                    f"Resume of {title} stopped: Git's current spec could not be applied "
                    f"({applied.headline})"
                )
                result.not_changed.append(
                    "still suspended" if obj.suspended else "Git's spec not applied yet"
                )
                return result
            result.changed.append(f"Git applied by Kustomization {parent.name}")
        # The cache watches each kind on its own stream, so the parent being Ready says
        # nothing about whether the HelmRelease seen here already carries what it applied:
        # what it deploys is read only from the object that handled this resume's token.
        now = self.objects.object(request.target, request.ref) or obj
        token = reconcile_token(self.clock())
        body: dict[str, object] = (
            resume_patch(token)
            if now.suspended or obj.suspended
            else {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}
        )
        try:
            progress(f"Resuming {title}: {'unsuspending' if now.suspended else 'reconciling'}…")
            self.writer.patch(request.target, request.ref, body)
        except Exception as err:  # noqa: BLE001 - reported to the person who acted
            result.headline = f"Could not resume {title}: {err}"
            result.not_changed.append("still suspended")
            return result
        left = self._budget([now]) - (time.monotonic() - started)
        outcome = yield from self._follow(request.target, request.ref, token, left)
        result.outcome = outcome
        said = _what_it_deploys(
            self.objects.object(request.target, request.ref), token, outcome, parent is not None
        )
        if said:
            result.details.append(said)
        if outcome.state is OutcomeState.FAILED:
            result.headline = f"Resumed {title}, but its reconcile failed: {outcome.message}"
            return result
        result.ok = outcome.state is OutcomeState.SUCCEEDED
        result.pending = not result.ok
        state = "and reconciled" if result.ok else "(still reconciling)"
        result.headline = f"Resumed {title} {state}."
        return result

    def _flux_rollback(
        self, actor: Actor, request: ActionRequest, plan: RollbackPlan, progress: Progress
    ) -> Following:
        """Pin the previous chart and let helm-controller upgrade to it, tracked."""
        assert plan.pin is not None
        title = request.title
        target = f"{plan.target.chart_name}@{plan.target.chart_version}"
        result = ActionResult(False, "")
        steps_left = [
            "parent Kustomization kept from re-applying the HelmRelease",
            f"chart pinned to {plan.target.chart_version} ({plan.pin.ref.kind} "
            f"{plan.pin.ref.name} {plan.pin.field})",
        ]
        started = time.monotonic()
        token = reconcile_token(self.clock())
        try:
            progress(f"Rolling back {title}: keeping the parent Kustomization off it…")
            self.writer.patch(request.target, request.ref, hold_patch(actor.name or actor.id, plan))
            if plan.pin.ref != request.ref:
                self.writer.patch(request.target, plan.pin.ref, _HOLD_ONLY)
            result.changed.append(steps_left.pop(0))
            progress(f"Rolling back {title}: pinning the chart to {plan.target.chart_version}…")
            self.writer.patch(request.target, plan.pin.ref, plan.pin.body)
            self.writer.patch(
                request.target,
                request.ref,
                {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}},
            )
            result.changed.append(steps_left.pop(0))
        except Exception as err:  # noqa: BLE001 - every step's failure is reported with the state
            result.not_changed = steps_left
            result.headline = f"Rollback of {title} failed: {err}"
            result.offer_resume = bool(result.changed)
            return result
        progress(f"Rolling back {title}: helm-controller is upgrading to {target}…")
        current = self.objects.object(request.target, request.ref)
        budget = self._budget([current]) if current is not None else 300.0
        outcome = yield from self._follow(request.target, request.ref, token, budget)
        result.outcome = outcome
        result.offer_resume = True
        seconds = time.monotonic() - started
        now = self.objects.object(request.target, request.ref)
        newest = now.helm.history[0] if now and now.helm and now.helm.history else None
        wanted = plan.target.chart_version.split("+", 1)[0]
        if (
            outcome.state is OutcomeState.SUCCEEDED
            and newest is not None
            and newest.chart_version.split("+", 1)[0] == wanted
        ):
            result.ok = True
            result.headline = (
                f"Rolled back {title} to {target} in {seconds:.0f} s: helm-controller "
                f"upgraded it (Helm revision {newest.version})."
            )
        elif outcome.state is OutcomeState.PROGRESSING:
            result.pending = True
            result.headline = (
                f"Rollback of {title} to {target} is still progressing after {seconds:.0f} s: "
                f"{outcome.message}"
            )
        else:
            result.headline = f"Rollback of {title} to {target} failed: {outcome.message}"
        warnings = [
            f"Git still declares {plan.current.chart_version}: the HelmRelease stays pinned "
            "and kept from its parent Kustomization until someone presses Resume, which "
            "redeploys what Git then declares. Fix Git first."
        ]
        if plan.values_changed:
            warnings.append(
                "The values also changed since the target release (configDigest differs); "
                "pinning the chart did not restore them."
            )
        result.warning = " ".join(warnings)
        return result

    def _rollback(
        self,
        actor: Actor,
        request: ActionRequest,
        obj: FluxObject,
        plan: RollbackPlan,
        progress: Progress,
    ) -> ActionResult:
        """`helm rollback` (actions.rollback: helm), with the HelmRelease suspended first."""
        assert self.helm is not None
        title = (
            f"HelmRelease {request.ref.namespace}/{request.ref.name} on {request.target.cluster}"
        )
        # Release storage lives where helm-controller installs: the remote cluster when
        # spec.kubeConfig is set (plan_rollback refused it unless mapped).
        cluster = self._helm_cluster(request.target, obj)
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
            self.writer.patch(request.target, request.ref, hold_patch(actor.name or actor.id, plan))
            result.changed.append(steps_left.pop(0))
            progress(f"Rolling back {title}: suspending the HelmRelease…")
            self.writer.patch(
                request.target,
                request.ref,
                suspend_patch(
                    actor.name or actor.id,
                    f"emergency rollback to revision {plan.target.version}",
                    self.clock(),
                    None,
                ),
            )
            result.changed.append(steps_left.pop(0))
            progress(f"Rolling back {title}: {plan.describe()} (helm rollback --wait)…")
            assert obj.helm is not None
            options = dict(obj.helm.rollback_options)
            timeout = (
                parse_go_duration(options.pop("timeout", ""))
                or obj.timeout
                or dt.timedelta(seconds=self.config.actions.helm_timeout_seconds)
            )
            self.helm.rollback(
                cluster,
                plan.release,
                plan.target.version,
                plan.storage_namespace,
                timeout=timeout.total_seconds(),
                options=options,
                service_account=(
                    f"system:serviceaccount:{request.ref.namespace}:{obj.helm.service_account}"
                    if obj.helm.service_account
                    else ""
                ),
            )
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

    def _remember(
        self, actor: Actor, request: ActionRequest, result: ActionResult, action: str = ""
    ) -> None:
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
            action=action
            or request.action.value + (f" ({request.variant})" if request.variant else ""),
            user=actor.name or actor.id,
            ok=result.ok,
            summary=result.headline,
        )
        try:
            self.on_action(record)
        except Exception:
            log.exception("could not record the action for the digest")

    def audit_snooze(self, actor: Actor, request: ActionRequest, until: dt.datetime) -> None:
        """A snooze is audited like any action: an Event, a log line, the digest history."""
        result = ActionResult(
            True, f"Snoozed {request.title} in digests until {until:%Y-%m-%d %H:%M} UTC."
        )
        snooze = request.but(variant="")
        self._audit(actor, snooze, result, action="snooze")
        self._remember(actor, snooze, result, action="snooze")
        log.info(
            "action snooze of %s by %s: ok",
            request.title,
            actor.id,
            extra={
                "action": "snooze",
                "environment": request.target.environment,
                "cluster": request.target.cluster,
                "object": str(request.ref),
                "user": actor.id,
                "ok": True,
            },
        )

    def _audit(
        self, actor: Actor, request: ActionRequest, result: ActionResult, action: str = ""
    ) -> None:
        approved = f", approved by {request.approved_by}" if request.approved_by else ""
        message = f"{actor.name or actor.id} ({actor.id}) via fluxbot{approved}: {result.headline}"
        try:
            self.writer.record_event(
                request.target,
                request.ref,
                action or request.action.value + (f"-{request.variant}" if request.variant else ""),
                actor.name or actor.id,
                sorted(actor.group_handles),
                message,
                warning=not result.ok and not result.pending,
            )
        except Exception as err:  # noqa: BLE001 - the action itself is done; say the audit failed
            log.warning("could not record the audit Event for %s: %s", request.describe(), err)
            result.details.append(f"(the audit Event could not be written: {err})")


# Keeps the parent Kustomization off the OCIRepository a rollback pinned.
_HOLD_ONLY: Final[dict[str, object]] = {
    "metadata": {"annotations": {RECONCILE_ANNOTATION: "disabled"}}
}


def release_patch_for(is_release: bool) -> dict[str, object]:
    """Release fluxbot's hold on the HelmRelease (with its rollback record) or on the
    OCIRepository a rollback pinned."""
    if is_release:
        return release_patch()
    return {"metadata": {"annotations": {RECONCILE_ANNOTATION: None}}}


def _what_it_deploys(
    obj: FluxObject | None, token: str, outcome: Outcome, git_applied: bool
) -> str:
    """What a resumed HelmRelease deploys, said only from a state that reflects the resume.

    Only an object that carries or handled `token` was written after the parent Kustomization
    applied Git (its spec is Git's); and only once helm-controller reconciled that generation
    successfully (`outcome`, judged by Flux's generation rules) is its newest release what
    the spec declares. Anything older could name the rolled-back version.
    """
    if obj is None or obj.helm is None:
        return ""
    if token not in (obj.requested_at, obj.last_handled_reconcile_at):
        return ""
    declares = "as Git declares" if git_applied else "as its spec declares"
    newest = obj.helm.history[0] if obj.helm.history else None
    if outcome.state is OutcomeState.SUCCEEDED and newest and newest.status == "deployed":
        return f"It now deploys {newest.chart_name}@{newest.chart_version}, {declares}."
    if not obj.helm.chart_version:
        return ""
    name = newest.chart_name if newest else ""
    wanted = f"{name}@{obj.helm.chart_version}" if name else obj.helm.chart_version
    source = "Git" if git_applied else "Its spec"
    return f"{source} declares {wanted}; it is not deployed yet."


def _action_name(request: ActionRequest) -> str:
    """The action as a lease names it to other replicas: no person, no object."""
    return request.action.value + (f" ({request.variant})" if request.variant else "")


def _options(variant: str) -> ReconcileOptions:
    return ReconcileOptions(
        with_source=variant == "with-source",
        force=variant == "force",
        reset=variant == "reset",
    )
