"""Remediation in Slack: payloads in, steps out.

Clicks, forms, approvals and typed commands become an `ActionRequest` and an `Actor`; the
action flow (bot.actions) decides the next step, and this module shows it: a form, a plan, an
approval request, the object's fresh state, or a refusal. A started action reports to a
`SlackPresenter`, which updates the message and leaves the audit reply.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Sequence
from typing import Any, Final

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement, PlainTextObject
from slack_sdk.models.views import View

from bot.actions.buttons import ButtonPayload, ExpiredButton, InvalidButton, sign, verify
from bot.actions.flow import ActionFlow
from bot.actions.model import (
    Action,
    ActionRequest,
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
    Started,
    Step,
)
from bot.actions.offers import parse_duration
from bot.commands.answers import ErrorAnswer, ObjectAnswer, ObjectMatch
from bot.commands.executor import CommandContext, CommandRunner, blocked_by, dependents_of
from bot.commands.grammar import ActionCommand
from bot.domain.fleet import ClusterTarget
from bot.domain.status import ObjectRef
from bot.slack.action_views import (
    EXPIRY_CHOICES,
    approval_message,
    confirm_form_blocks,
    note,
    plan_message,
    section,
    suspend_form_blocks,
    title,
)
from bot.slack.buttons import ACT, APPROVE, DENY, SNOOZE, ButtonMint
from bot.slack.directory import SlackDirectory
from bot.slack.presenter import Origin, SlackOutput, SlackPresenter, decided_origin
from bot.slack.render import SlackMessage, escape, render, slack_date
from bot.slack.responder import post_response

__all__ = ["CONFIRM_VIEW", "SUSPEND_VIEW", "Origin", "SlackRemediation"]

log = logging.getLogger(__name__)

SUSPEND_VIEW: Final = "flux_suspend"
CONFIRM_VIEW: Final = "flux_confirm"


class SlackRemediation:
    """The Slack side of remediation actions for one fleet."""

    def __init__(
        self,
        flow: ActionFlow,
        runner: CommandRunner,
        directory: SlackDirectory,
        client: WebClient,
        mint: ButtonMint,
        key: bytes,
        retries: int,
        command: str,
    ) -> None:
        self.flow = flow
        self.runner = runner
        self.directory = directory
        self.client = client
        self.mint = mint
        self.key = key
        self.retries = retries
        self.command = command
        self.output = SlackOutput(
            client, retries, command, self._environment_channel, self._resume_buttons,
            self._retry_buttons, lambda user_id: directory.actor(user_id).name or user_id,
            self._view_with,
        )  # fmt: skip

    def shutdown(self, timeout: float) -> None:
        """Take no new actions; let running ones finish for `timeout` s, then say which were
        abandoned."""
        self.flow.runner.shutdown(timeout)

    # -- entry points --

    def on_menu(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """ "Actions…" on a condensed line: show the object with all its buttons."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is not None:
            self._show_object(origin, _target(payload), _ref(payload), note="")

    def on_click(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """An action button: the flow says whether to confirm, plan, ask approval, or act."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is None:
            return
        request = _request(payload)
        # views.open needs the trigger_id within 3 s of the click: open the form first, then
        # check (reading roles may call Slack) and fill it, or say why not.
        view_id = self._open_loading(origin) if self.flow.wants_form(request) else ""
        actor = self.directory.actor(origin.user_id)
        step = self.flow.next(actor, request, payload.i, self._sink(origin))
        self._show(origin, payload, step, view_id=view_id)

    def suspend_form_errors(self, view: dict[str, Any]) -> dict[str, str] | None:
        """The suspend form's own mistakes, for the ack (None when it may go ahead): from its
        signed metadata and values alone, never Slack or a cluster."""
        payload, origin = self._form_context(view)
        if payload is None or origin is None:
            return {"reason": "This form has expired; start again from the message."}
        values = _form_values(view)
        if not values.get("reason", "").strip():
            return {"reason": "Say why it is suspended: the next person will want to know."}
        typed_error = _typed_error(values, payload)
        return {"typed": typed_error} if typed_error else None

    def on_suspend_form(self, view: dict[str, Any], user_id: str) -> None:
        """The suspend form, acknowledged without errors: the checks and the action."""
        payload, origin = self._form_context(view)
        if payload is None or origin is None:
            return  # expired since the ack: the ack said so
        values = _form_values(view)
        until = None
        if values.get("expiry"):
            delta = parse_duration(values["expiry"])
            until = dt.datetime.now(dt.UTC) + delta if delta else None
        actor = self.directory.actor(user_id)
        request = _request(payload).but(
            reason=values.get("reason", "").strip(), until=until, confirmed=True
        )
        self._show(origin, payload, self.flow.next(actor, request, payload.i, self._sink(origin)))

    def confirm_form_errors(self, view: dict[str, Any]) -> dict[str, str] | None:
        """A typed confirmation's mistakes, for the ack (None when it may go ahead)."""
        payload, origin = self._form_context(view)
        if payload is None or origin is None:
            return {"typed": "This form has expired; start again from the message."}
        error = _typed_error(_form_values(view), payload)
        return {"typed": error} if error else None

    def on_confirm_form(self, view: dict[str, Any], user_id: str) -> None:
        """A typed confirmation, acknowledged without errors: the checks and the action."""
        payload, origin = self._form_context(view)
        if payload is None or origin is None:
            return
        actor = self.directory.actor(user_id)
        request = _request(payload).but(confirmed=True)
        self._show(origin, payload, self.flow.next(actor, request, payload.i, self._sink(origin)))

    def on_approval(self, body: dict[str, Any], action: dict[str, Any], approve: bool) -> None:
        """Approve or Deny on a rollback request."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is None:
            return
        decider = self.directory.actor(origin.user_id)
        request = _request(payload).but(requester=payload.q)
        verdict = ":white_check_mark: Approved" if approve else ":no_entry_sign: Denied"
        decided = decided_origin(origin, f"{verdict} by <@{decider.id}>:")
        if approve:
            requester = self.directory.actor(payload.q)
            step = self.flow.approve(decider, requester, request, payload.i, self._sink(decided))
        else:
            step = self.flow.deny(decider, request, payload.i)
        if isinstance(step, Decided):
            # The request line says who decided; Deny runs nothing.
            self._sink(decided).replace(f"Rollback of {escape(request.title)} was not run.")
            return
        self._show(origin, payload, step)

    def on_command(self, command: ActionCommand, origin: Origin, context: CommandContext) -> None:
        """A typed action command: the same flow as a click; typing the name confirms it."""
        located = self.runner.locate(command, context)
        if isinstance(located, ErrorAnswer):
            post_response(origin.response_url, render(located, self.command), self.retries)
            return
        action = Action(command.action)
        target = ClusterTarget(located.environment, located.cluster)
        actor = self.directory.actor(origin.user_id)
        until = None
        if command.duration:
            delta = parse_duration(command.duration)
            if delta is None:
                self._ephemeral(
                    origin,
                    f"Cannot read --for {escape(repr(command.duration[:20]))}: "
                    "use 30m, 4h, 2d or 1w.",
                )
                return
            until = dt.datetime.now(dt.UTC) + delta
        request = ActionRequest(
            action, target, located.object.ref, variant=command.variant,
            reason=command.reason, until=until, confirmed=True,
        )  # fmt: skip
        payload = self.mint.payload(
            action.value, target.environment, target.cluster, located.object,
            variant=command.variant,
        )  # fmt: skip
        self._show(origin, payload, self.flow.next(actor, request, "", self._sink(origin)))

    def on_snooze(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """ "Snooze…" offers durations; a duration hides the object from digests until then."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is None:
            return
        actor = self.directory.actor(origin.user_id)
        request = ActionRequest(Action.RECONCILE, _target(payload), _ref(payload))
        if not payload.v:
            stopped = self.flow.may_snooze(actor, request)
            if stopped is not None:
                self._show(origin, payload, stopped)
                return
            obj = self.flow.service.objects.object(request.target, request.ref)
            assert obj is not None
            choices = [
                self.mint.button(
                    label,
                    SNOOZE,
                    self.mint.payload("snooze", payload.e, payload.c, obj, variant=value),
                )
                for value, label in EXPIRY_CHOICES
            ]
            text = f"Hide {title(payload)} from digests until its state changes, or for:"
            blocks = [section(text), ActionsBlock(elements=choices).to_dict()]
            message = SlackMessage(f"Snooze {request.ref}", blocks)
            post_response(origin.response_url, message, self.retries, replace_original=False)
            return
        delta = parse_duration(payload.v)
        if delta is None:
            self._ephemeral(origin, f":warning: Cannot snooze for {payload.v!r}.")
            return
        self._show(origin, payload, self.flow.snooze(actor, request, delta))

    # -- showing steps --

    def _show(self, origin: Origin, payload: ButtonPayload, step: Step, view_id: str = "") -> None:
        if view_id and not isinstance(step, AskReason | AskTypedName):
            self._update_view(view_id, _notice(step))
        match step:
            case Started():
                pass  # the presenter reports from here on
            case Denied(message=message):
                self._ephemeral(origin, f":no_entry: {escape(message)}")
            case Stale(message=message, obj=obj):
                self._show_object(origin, _target(payload), obj.ref, note=message)
            case Refused(message=message) | Busy(message=message):
                self._ephemeral(origin, f":warning: {escape(message)}")
            case AlreadyDone(message=message):
                self._ephemeral(origin, message)
            case AskReason(typed=typed):
                blocks = suspend_form_blocks(payload, typed)
                self._open_view(
                    origin, SUSPEND_VIEW, "Suspend", "Suspend", payload, blocks, view_id
                )
            case AskTypedName(warning=warning):
                label, blocks = confirm_form_blocks(payload, warning)
                self._open_view(origin, CONFIRM_VIEW, "Confirm", label, payload, blocks, view_id)
            case ShowPlan():
                self._show_plan(origin, payload, step)
            case AwaitApproval():
                self._request_approval(origin, payload, step)
            case Decided():
                pass  # shown by on_approval
            case Snoozed(until=until):
                self._ephemeral(
                    origin,
                    f":zzz: {title(payload)} is hidden from digests until "
                    f"{slack_date(until)}, or until its state changes.",
                )

    def _show_plan(self, origin: Origin, payload: ButtonPayload, step: ShowPlan) -> None:
        obj = self.flow.service.objects.object(step.request.target, step.request.ref)
        if obj is None:
            self._ephemeral(origin, f":warning: {step.request.ref} is not there any more.")
            return
        confirm = self.mint.payload(
            Action.ROLLBACK.value, payload.e, payload.c, obj,
            variant="confirm", rollback_to=step.plan.target.version,
        )  # fmt: skip
        button = self.mint.button("Confirm rollback", ACT, confirm, style="danger")
        post_response(
            origin.response_url,
            plan_message(step, payload.c, button),
            self.retries,
            replace_original=False,
        )

    def _request_approval(
        self, origin: Origin, payload: ButtonPayload, step: AwaitApproval
    ) -> None:
        obj = self.flow.service.objects.object(step.request.target, step.request.ref)
        if obj is None:
            self._ephemeral(origin, f":warning: {step.request.ref} is not there any more.")
            return
        request_payload = self.mint.payload(
            Action.ROLLBACK.value, payload.e, payload.c, obj, ttl=step.ttl_seconds,
            rollback_to=step.plan.target.version, requester=step.request.requester,
        )  # fmt: skip
        approve = self.mint.button("Approve", APPROVE, request_payload, style="primary")
        deny = self.mint.button("Deny", DENY, request_payload)  # neutral: denying is safe
        mentions = [self.directory.group_mention(g) for g in step.approver_groups]
        message = approval_message(step, payload.c, approve, deny, request_payload.i, mentions)
        channel = step.channel or origin.channel_id
        try:
            self.client.chat_postMessage(channel=channel, text=message.text, blocks=message.blocks)
        except Exception as err:  # noqa: BLE001 - any failure: nobody was asked
            reason = err.response.get("error") if isinstance(err, SlackApiError) else repr(err)
            log.warning("could not post an approval request: %s", reason)
            # Nobody can approve a request that was never posted: the button may be used again.
            self.flow.runner.claims.release(payload.i)
            self._ephemeral(origin, f":x: Could not post the approval request: {escape(reason)}")
            return
        self._ephemeral(
            origin,
            f"Approval requested in <#{channel}>; the rollback runs once someone approves.",
        )

    def _show_object(
        self, origin: Origin, target: ClusterTarget, ref: ObjectRef, note: str
    ) -> None:
        objects = self.flow.service.objects
        obj = objects.object(target, ref)
        if obj is None:
            self._ephemeral(origin, f":warning: {ref} is not on {target.cluster} any more.")
            return
        siblings = tuple(objects.cluster_objects(target))
        match = ObjectMatch(
            target.environment,
            target.cluster,
            obj,
            dependents_of(obj, siblings),
            blocked=blocked_by(obj, siblings),
        )
        answer = ObjectAnswer(obj.kind, obj.name, obj.namespace, (match,), ())
        message = render(answer, self.command, buttons=self.mint)
        if note:
            message = SlackMessage(
                message.text, [section(f":warning: {escape(note)}"), *message.blocks[:49]]
            )
        post_response(origin.response_url, message, self.retries, replace_original=False)

    def _open_view(
        self,
        origin: Origin,
        callback_id: str,
        heading: str,
        submit: str,
        payload: ButtonPayload,
        blocks: Sequence[Any],
        view_id: str = "",
    ) -> None:
        metadata = json.dumps({"p": sign(payload, self.key), **origin.to_metadata()})
        view = View(
            type="modal",
            callback_id=callback_id,
            title=PlainTextObject(text=heading[:24]),
            submit=PlainTextObject(text=submit[:24]),
            close=PlainTextObject(text="Cancel"),
            private_metadata=metadata,
            blocks=list(blocks),
        )
        try:
            if view_id:
                self.client.views_update(view_id=view_id, view=view)
            else:
                self.client.views_open(trigger_id=origin.trigger_id, view=view)
        except SlackApiError as err:
            self._ephemeral(origin, f":x: Could not open the form: {err.response.get('error')}")

    def _open_loading(self, origin: Origin) -> str:
        """Open a modal at once (the trigger_id expires 3 s after the click); "" if Slack
        refused, and the form is then opened the usual way."""
        view = View(
            type="modal",
            title=PlainTextObject(text="fluxbot"),
            close=PlainTextObject(text="Close"),
            blocks=[section(":hourglass_flowing_sand: Checking…")],
        )
        try:
            response = self.client.views_open(trigger_id=origin.trigger_id, view=view)
        except SlackApiError as err:
            log.warning("could not open a form: %s", err.response.get("error"))
            return ""
        except Exception as err:  # noqa: BLE001 - Slack did not answer: the usual way, then
            log.warning("could not open a form: %r", err)
            return ""
        return str((response.get("view") or {}).get("id") or "")

    def _update_view(self, view_id: str, text: str) -> None:
        view = View(
            type="modal",
            title=PlainTextObject(text="fluxbot"),
            close=PlainTextObject(text="Close"),
            blocks=[section(text)],
        )
        try:
            self.client.views_update(view_id=view_id, view=view)
        except SlackApiError as err:
            log.warning("could not update a form: %s", err.response.get("error"))
        except Exception as err:  # noqa: BLE001 - best-effort: the action may already run
            log.warning("could not update a form: %r", err)

    # -- helpers --

    def _sink(self, origin: Origin) -> SlackPresenter:
        return SlackPresenter(origin, self.output)

    def _ephemeral(self, origin: Origin, text: str) -> None:
        post_response(origin.response_url, note(text), self.retries, replace_original=False)

    def _verified(self, origin: Origin, action: dict[str, Any]) -> ButtonPayload | None:
        try:
            return verify(str(action.get("value") or ""), self.key, time.time())
        except ExpiredButton as err:
            # Genuine but old: show the current state it promised, with fresh buttons.
            self._show_object(origin, _target(err.payload), _ref(err.payload), note=str(err))
            return None
        except InvalidButton as err:
            log.warning("refused a button click from %s: %s", origin.user_id, err)
            self._ephemeral(origin, f":no_entry: {escape(str(err))}")
            return None

    def _form_context(self, view: dict[str, Any]) -> tuple[ButtonPayload | None, Origin | None]:
        try:
            data = json.loads(view.get("private_metadata") or "{}")
            payload = verify(str(data.get("p", "")), self.key, time.time())
        except (ValueError, InvalidButton):
            return None, None
        return payload, Origin.from_metadata(data)

    def _environment_channel(self, environment: str) -> str | None:
        env = self.runner.layout.environment(environment)
        return env.channel if env else None

    def _view_with(
        self, request: ActionRequest, outcome: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        """Slack does not send an ephemeral message's blocks with the click: the object's view
        again, fresh, with the outcome where its buttons were."""
        objects = self.flow.service.objects
        obj = objects.object(request.target, request.ref)
        if obj is None:
            return outcome
        siblings = tuple(objects.cluster_objects(request.target))
        match = ObjectMatch(
            request.target.environment,
            request.target.cluster,
            obj,
            dependents_of(obj, siblings),
            blocked=blocked_by(obj, siblings),
        )
        view = render(ObjectAnswer(obj.kind, obj.name, obj.namespace, (match,), ()), self.command)
        return [*view.blocks[:1], *outcome, *view.blocks[1:]][:50]

    def _retry_buttons(self, request: ActionRequest) -> list[ButtonElement]:
        obj = self.flow.service.objects.object(request.target, request.ref)
        if obj is None:
            return []
        return self.mint.actions(request.target.environment, request.target.cluster, obj)

    def _resume_buttons(self, request: ActionRequest) -> list[ButtonElement]:
        obj = self.flow.service.objects.object(request.target, request.ref)
        if obj is None:
            return []
        return [
            b
            for b in self.mint.actions(request.target.environment, request.target.cluster, obj)
            if b.text and b.text.text.startswith("Resume")
        ]


def _notice(step: Step) -> str:
    """What a form opened in advance says when the next step is not a form."""
    message = getattr(step, "message", "")
    if isinstance(step, Started):
        return ":hourglass_flowing_sand: Started; the message shows how it goes."
    return escape(message) if message else "Done; see the message."


def _typed_error(values: dict[str, str], payload: ButtonPayload) -> str:
    if "typed" not in values:
        return ""
    if values["typed"].strip() != payload.n:
        return f"Type the object's name, {payload.n}, exactly."
    return ""


def _form_values(view: dict[str, Any]) -> dict[str, str]:
    out: dict[str, str] = {}
    for block_id, actions in ((view.get("state") or {}).get("values") or {}).items():
        # One input per block; its action_id is the block's name.
        element = next(iter((actions or {}).values()), None) or {}
        if element.get("type") == "static_select":
            selected = element.get("selected_option") or {}
            out[block_id] = str(selected.get("value") or "")
        else:
            out[block_id] = str(element.get("value") or "")
    return out


def _target(payload: ButtonPayload) -> ClusterTarget:
    return ClusterTarget(payload.e, payload.c)


def _ref(payload: ButtonPayload) -> ObjectRef:
    return ObjectRef(payload.k, payload.ns, payload.n)


def _request(payload: ButtonPayload) -> ActionRequest:
    """The request a button (or a form made from one) carries."""
    action = Action(payload.a)
    variant = payload.v if payload.v in ("with-source", "force", "reset") else ""
    return ActionRequest(
        action,
        _target(payload),
        _ref(payload),
        variant=variant,
        state=payload.s,
        rollback_to=payload.r,
        planned=payload.v == "confirm" or bool(payload.q),
        requester=payload.q,
    )
