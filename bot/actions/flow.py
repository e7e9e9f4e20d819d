"""The order of remediation: actor + request -> the next step (confirm, plan, approve, start).

Every entry point (a click, a submitted form, a typed command, an approval, a snooze) comes
here, and every one passes the service's checks (role, Kubernetes RBAC, current state) right
now, whatever the message showed. The chat adapter only shows the step it gets back.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from bot.actions.model import (
    ActionRequest,
    ActionSink,
    AlreadyDone,
    AskReason,
    AskTypedName,
    AwaitApproval,
    Busy,
    Decided,
    Denied,
    Refused,
    ShowPlan,
    Snoozed,
    Stale,
    Step,
)
from bot.actions.runner import ActionRunner
from bot.actions.service import ActionService, Preparation, Verdict
from bot.domain.action_rules import material_state
from bot.domain.history import HistoryStore, Snooze
from bot.domain.policy import Action, Actor, ConfirmationMode

log = logging.getLogger(__name__)


class ActionFlow:
    """Decides the next step of every remediation request and starts what may run."""

    def __init__(
        self,
        service: ActionService,
        runner: ActionRunner,
        history: HistoryStore | None = None,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.service = service
        self.runner = runner
        self.history = history
        self.clock = clock

    def next(self, actor: Actor, request: ActionRequest, nonce: str, sink: ActionSink) -> Step:
        """The next step for `actor` on `request`; Started when it now runs."""
        prepared = self.service.prepare(actor, request)
        stopped = self._stopped(request, prepared)
        if stopped is not None:
            return stopped
        typed = prepared.confirmation is ConfirmationMode.TYPED and not request.confirmed
        if request.action is Action.SUSPEND and not request.reason:
            return AskReason(request, typed=typed)
        if request.action is Action.ROLLBACK and not request.planned:
            assert prepared.plan is not None
            planned = request.but(rollback_to=prepared.plan.target.version)
            return ShowPlan(planned, prepared.plan, prepared.needs_approval)
        if typed:
            warning = ""
            if request.action is Action.RESUME and prepared.obj and prepared.obj.rolled_back_from:
                warning = (
                    f"Resuming redeploys what Git declares (it was "
                    f"{prepared.obj.rolled_back_from} when rolled back). Fix Git first."
                )
            return AskTypedName(request, warning)
        if prepared.needs_approval and not request.approved_by:
            assert prepared.plan is not None
            # The confirmation that asks is a button or form too: it asks once.
            if not self.runner.claim(nonce):
                return AlreadyDone("This rollback was already requested; nothing more was done.")
            config = self.service.config
            policy = config.policy(request.target.environment)
            groups = tuple(
                sorted(
                    {
                        g
                        for role in policy.grants.get(request.action, frozenset())
                        if role in config.roles
                        for g in config.roles[role].groups
                    }
                )
            )
            return AwaitApproval(
                request.but(requester=actor.id),
                prepared.plan,
                float(config.actions.approval_ttl_seconds),
                approver_groups=groups,
                channel=config.environments[request.target.environment].channel or "",
            )
        return self.runner.start(actor, request, nonce, sink)

    def wants_form(self, request: ActionRequest) -> bool:
        """Whether the next step may be a form, from configuration and cached state only (no
        chat calls), so a chat adapter can open a form at once while its trigger is fresh."""
        if request.action is Action.SUSPEND and not request.reason:
            return True
        if request.confirmed or (request.action is Action.ROLLBACK and not request.planned):
            return False
        config = self.service.config
        environment = request.target.environment
        if environment not in config.environments:
            return False
        if config.policy(environment).confirmation is ConfirmationMode.TYPED:
            return True
        if request.action is Action.RESUME:
            obj = self.service.objects.object(request.target, request.ref)
            return bool(obj and obj.rolled_back_from)
        return False

    def check(self, actor: Actor, request: ActionRequest) -> Step | None:
        """The step that stops `request` now (denied, stale, refused, busy), or None."""
        return self._stopped(request, self.service.prepare(actor, request))

    def _stopped(self, request: ActionRequest, prepared: Preparation) -> Step | None:
        match prepared.verdict:
            case Verdict.DENIED:
                return Denied(prepared.message)
            case Verdict.STALE:
                assert prepared.obj is not None
                return Stale(prepared.message, prepared.obj)
            case Verdict.REFUSED | Verdict.GONE:
                return Refused(prepared.message, prepared.obj)
            case Verdict.OK:
                pass
        holder = self.runner.holder(request.target, request.ref)
        if holder is not None:
            return Busy(f"An action on this object is already running ({holder}).")
        return None

    def approve(
        self,
        approver: Actor,
        requester: Actor,
        request: ActionRequest,
        nonce: str,
        sink: ActionSink,
    ) -> Step:
        """A second person approves a rollback request: it runs as the requester's."""
        if approver.id == requester.id:
            return Refused("You cannot approve your own request: a second person must.")
        why = self.service.authorize(approver, request.action, request)
        if why is not None:
            return Denied(f"Only someone who may {request.action} can decide. {why}")
        for who in (requester, approver):
            stopped = self.check(who, request)
            if stopped is not None:
                return stopped
        approved = request.but(approved_by=approver.id, requester=requester.id)
        return self.runner.start(requester, approved, nonce, sink)

    def deny(self, decider: Actor, request: ActionRequest, nonce: str) -> Step:
        """Deny (or, for the requester, withdraw) an approval request."""
        if decider.id != request.requester:
            why = self.service.authorize(decider, request.action, request)
            if why is not None:
                return Denied(f"Only someone who may {request.action} can decide. {why}")
        if not self.runner.claim(nonce):
            return AlreadyDone("This request was already decided.")
        log.info(
            "%s denied by %s",
            request.describe(),
            decider.id,
            extra={"action": request.action.value, "user": decider.id},
        )
        return Decided(request, decider.id)

    def snooze(self, actor: Actor, request: ActionRequest, days: dt.timedelta) -> Step:
        """Hide the object from digests; snoozing needs the right to reconcile it."""
        why = self.service.authorize(actor, Action.RECONCILE, request)
        if why is not None:
            return Denied(why.replace("Not allowed:", "Not allowed to snooze:", 1))
        obj = self.service.objects.object(request.target, request.ref)
        if obj is None:
            return Refused(f"{request.ref} is not on {request.target.cluster} any more.")
        if self.history is None:
            return Refused("Snoozing needs fluxbot's history store.")
        until = self.clock() + days
        self.history.save_snooze(
            Snooze(
                request.target.environment, request.target.cluster, obj.kind, obj.namespace,
                obj.name, until, state=material_state(obj), by=actor.name or actor.id,
            )
        )  # fmt: skip
        self.service.audit_snooze(actor, request, until)
        return Snoozed(request, until)

    def may_snooze(self, actor: Actor, request: ActionRequest) -> Step | None:
        """Whether the snooze choices may be offered: a step that stops it, or None."""
        why = self.service.authorize(actor, Action.RECONCILE, request)
        if why is not None:
            return Denied(why.replace("Not allowed:", "Not allowed to snooze:", 1))
        if self.service.objects.object(request.target, request.ref) is None:
            return Refused(f"{request.ref} is not on {request.target.cluster} any more.")
        return None
