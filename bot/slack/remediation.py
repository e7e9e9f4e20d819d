"""Remediation in Slack: clicks, forms, approvals and text commands, around ActionService.

Every path ends in `ActionService.prepare` (role, Kubernetes RBAC, current state) before
anything is shown as possible and again in `ActionService.run` before anything is written.
Outcomes update the message that held the button (through its response_url) and leave a
reply saying who did what: in the message's thread, or in the environment's channel when the
message was only visible to one person.
"""

from __future__ import annotations

import contextvars
import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any, Final

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import (
    ActionsBlock,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.views import View

from bot.actions.buttons import ButtonPayload, InvalidButton, sign, verify
from bot.actions.service import ActionRequest, ActionResult, ActionService, Preparation, Verdict
from bot.commands.answers import ErrorAnswer, ObjectAnswer, ObjectMatch
from bot.commands.executor import CommandContext, CommandRunner, blocked_by, dependents_of
from bot.commands.grammar import ActionCommand
from bot.domain.condense import condense
from bot.domain.fleet import ClusterTarget
from bot.domain.history import HistoryStore, Snooze
from bot.domain.policy import Action, Actor, ConfirmationMode, decide
from bot.domain.remediation import material_state, parse_duration, rollback_plan
from bot.domain.status import ObjectRef
from bot.slack.buttons import APPROVE, DENY, SNOOZE, ButtonMint
from bot.slack.directory import SlackDirectory
from bot.slack.render import SlackMessage, clip, escape, render, slack_date
from bot.slack.responder import post_response

log = logging.getLogger(__name__)

SUSPEND_VIEW: Final = "flux_suspend"
CONFIRM_VIEW: Final = "flux_confirm"
EXPIRY_CHOICES: Final = (
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("1d", "1 day"),
    ("3d", "3 days"),
    ("1w", "1 week"),
)


@dataclass(frozen=True, slots=True)
class Origin:
    """Where a click or command came from, and how to answer there."""

    user_id: str
    channel_id: str
    response_url: str
    trigger_id: str = ""
    message_ts: str = ""
    ephemeral: bool = True
    # The clicked message's blocks and the block holding the button (channel messages only).
    blocks: tuple[dict[str, Any], ...] = ()
    block_id: str = ""

    @classmethod
    def of_click(cls, body: dict[str, Any], action: dict[str, Any]) -> Origin:
        """From a block_actions payload."""
        container = body.get("container") or {}
        message = body.get("message") or {}
        ephemeral = bool(container.get("is_ephemeral")) or not message
        return cls(
            user_id=str((body.get("user") or {}).get("id", "")),
            channel_id=str(
                (body.get("channel") or {}).get("id") or container.get("channel_id", "")
            ),
            response_url=str(body.get("response_url") or ""),
            trigger_id=str(body.get("trigger_id") or ""),
            message_ts=str(container.get("message_ts") or message.get("ts") or ""),
            ephemeral=ephemeral,
            blocks=tuple(message.get("blocks") or ()) if not ephemeral else (),
            block_id=str(action.get("block_id") or ""),
        )

    def to_metadata(self) -> dict[str, Any]:
        """What a modal must remember to answer where the click happened."""
        return {
            "u": self.user_id,
            "ch": self.channel_id,
            "url": self.response_url,
            "ts": self.message_ts,
            "eph": self.ephemeral,
        }

    @classmethod
    def from_metadata(cls, data: dict[str, Any], trigger_id: str = "") -> Origin:
        """Back from a modal's private_metadata."""
        return cls(
            user_id=str(data.get("u", "")),
            channel_id=str(data.get("ch", "")),
            response_url=str(data.get("url", "")),
            trigger_id=trigger_id,
            message_ts=str(data.get("ts", "")),
            ephemeral=bool(data.get("eph", True)),
        )


class SlackRemediation:
    """The Slack side of remediation actions for one fleet."""

    def __init__(
        self,
        service: ActionService,
        runner: CommandRunner,
        directory: SlackDirectory,
        client: WebClient,
        mint: ButtonMint,
        key: bytes,
        retries: int,
        command: str,
        history: HistoryStore | None = None,
    ) -> None:
        self.service = service
        self.history = history
        self.runner = runner
        self.directory = directory
        self.client = client
        self.mint = mint
        self.key = key
        self.retries = retries
        self.command = command
        # Following a reconcile can take minutes: never on Bolt's listener threads.
        self.executor = ThreadPoolExecutor(max_workers=8, thread_name_prefix="action")
        self._inflight: dict[Future[None], tuple[ActionRequest, Origin]] = {}
        self._inflight_lock = threading.Lock()
        self._closing = False

    def shutdown(self, timeout: float) -> None:
        """Take no new actions; let running ones finish for `timeout` s, then say which were
        abandoned (their writes may have happened; their outcome is not followed)."""
        self._closing = True
        with self._inflight_lock:
            running = dict(self._inflight)
        _done, pending = wait(list(running), timeout=timeout)
        for future in pending:
            request, origin = running[future]
            log.warning("abandoning %s at shutdown", request.describe())
            self._ephemeral(
                origin,
                f":warning: fluxbot is restarting: {escape(request.describe())} was started, "
                f"but its outcome is no longer being followed. Check it with `{self.command} get "
                f"{request.ref.kind} {request.ref.name} -n {request.ref.namespace}`.",
            )
        self.executor.shutdown(wait=False, cancel_futures=True)

    # -- entry points --

    def on_menu(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """ "Actions…" on a condensed line: show the object with all its buttons."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is not None:
            self._show_object(origin, _target(payload), _ref(payload), note="")

    def on_click(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """An action button: check, then confirm, plan, ask for approval, or act."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is None:
            return
        actor = self.directory.actor(origin.user_id)
        request = _request(payload)
        prepared = self.service.prepare(actor, request)
        if not self._usable(origin, request, prepared):
            return
        if request.action is Action.SUSPEND:
            self._open_suspend_form(origin, payload, prepared)
        elif request.action is Action.ROLLBACK and payload.v != "confirm":
            self._show_plan(origin, payload, prepared)
        elif prepared.confirmation is ConfirmationMode.TYPED:
            self._open_confirm_form(origin, payload)
        elif request.action is Action.ROLLBACK and prepared.needs_approval:
            self._request_approval(origin, actor, payload, prepared)
        else:
            self._start(actor, request, payload.i, origin)

    def on_suspend_form(self, view: dict[str, Any], user_id: str) -> dict[str, str] | None:
        """The suspend form was submitted: errors for the form, or None and the action runs."""
        payload, origin = self._form_context(view)
        if payload is None or origin is None:
            return {"reason": "This form has expired; start again from the message."}
        values = _form_values(view)
        reason = values.get("reason", "").strip()
        if not reason:
            return {"reason": "Say why it is suspended: the next person will want to know."}
        typed_error = _typed_error(values, payload)
        if typed_error:
            return {"typed": typed_error}
        until = None
        if values.get("expiry"):
            delta = parse_duration(values["expiry"])
            until = dt.datetime.now(dt.UTC) + delta if delta else None
        actor = self.directory.actor(user_id)
        request = ActionRequest(
            Action.SUSPEND,
            _target(payload),
            _ref(payload),
            state=payload.s,
            reason=reason,
            until=until,
        )
        self._start(actor, request, payload.i, origin)
        return None

    def on_confirm_form(self, view: dict[str, Any], user_id: str) -> dict[str, str] | None:
        """A typed confirmation was submitted: errors for the form, or None and it goes on."""
        payload, origin = self._form_context(view)
        if payload is None or origin is None:
            return {"typed": "This form has expired; start again from the message."}
        error = _typed_error(_form_values(view), payload)
        if error:
            return {"typed": error}
        actor = self.directory.actor(user_id)
        request = _request(payload)
        prepared = self.service.prepare(actor, request)
        if not self._usable(origin, request, prepared):
            return None
        if request.action is Action.ROLLBACK and prepared.needs_approval:
            self._request_approval(origin, actor, payload, prepared)
        else:
            self._start(actor, request, payload.i, origin)
        return None

    def on_approval(self, body: dict[str, Any], action: dict[str, Any], approve: bool) -> None:
        """Approve or Deny on a rollback request."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is None:
            return
        approver = self.directory.actor(origin.user_id)
        request = _request(payload)
        if approve and approver.id == payload.q:
            self._ephemeral(origin, "You cannot approve your own request: a second person must.")
            return
        prepared = self.service.prepare(approver, request)
        if prepared.verdict is Verdict.DENIED and approver.id != payload.q:
            self._ephemeral(
                origin, f"Only someone who may roll back can decide. {escape(prepared.message)}"
            )
            return
        if not approve:
            if not self.service.claim(payload.i, self.mint_ttl):
                self._ephemeral(origin, "This request was already decided.")
                return
            self._replace(
                origin, f":no_entry: Rollback of {request.title} denied by <@{approver.id}>."
            )
            return
        requester = self.directory.actor(payload.q)
        if not self._usable(origin, request, self.service.prepare(requester, request)):
            return
        if not self._usable(origin, request, prepared):
            return
        self._start(requester, request, payload.i, origin, approved_by=approver.id)

    def on_command(self, command: ActionCommand, origin: Origin, context: CommandContext) -> None:
        """A typed action command: the same checks as a click; typing the name confirms it."""
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
            action,
            target,
            located.object.ref,
            variant=command.variant,
            reason=command.reason,
            until=until,
        )
        prepared = self.service.prepare(actor, request)
        if not self._usable(origin, request, prepared):
            return
        if action is Action.ROLLBACK:
            payload = self.mint.payload(
                action.value, target.environment, target.cluster, located.object
            )
            self._show_plan(origin, payload, prepared)
            return
        self._start(actor, request, "", origin)

    def on_snooze(self, body: dict[str, Any], action: dict[str, Any]) -> None:
        """ "Snooze…" offers durations; a duration hides the object from digests until then."""
        origin = Origin.of_click(body, action)
        payload = self._verified(origin, action)
        if payload is None:
            return
        actor = self.directory.actor(origin.user_id)
        # Snoozing takes the right to act on the object, like reconciling it.
        request = ActionRequest(Action.RECONCILE, _target(payload), _ref(payload))
        decision = decide(
            actor,
            Action.RECONCILE,
            self.service.config.policy(payload.e),
            self.service.config.role_map(),
        )
        if not decision.allowed:
            self._ephemeral(origin, f":no_entry: Not allowed to snooze: {escape(decision.reason)}.")
            return
        obj = self.service.objects.object(request.target, request.ref)
        if obj is None:
            self._ephemeral(origin, f":warning: {request.ref} is not on {payload.c} any more.")
            return
        if not payload.v:
            choices = [
                self.mint.button(
                    label,
                    SNOOZE,
                    self.mint.payload("snooze", payload.e, payload.c, obj, variant=value),
                )
                for value, label in EXPIRY_CHOICES
            ]
            text = f"Hide {_title(payload)} from digests until its state changes, or for:"
            blocks = [
                SectionBlock(text=MarkdownTextObject(text=text)).to_dict(),
                ActionsBlock(elements=choices).to_dict(),
            ]
            message = SlackMessage(f"Snooze {request.ref}", blocks)
            post_response(origin.response_url, message, self.retries, replace_original=False)
            return
        delta = parse_duration(payload.v)
        if delta is None or self.history is None:
            self._ephemeral(origin, ":warning: Snoozing needs fluxbot's history store.")
            return
        until = dt.datetime.now(dt.UTC) + delta
        self.history.save_snooze(
            Snooze(
                payload.e, payload.c, payload.k, payload.ns, payload.n, until,
                state=material_state(obj), by=actor.name or actor.id,
            )
        )  # fmt: skip
        self._ephemeral(
            origin,
            f":zzz: {_title(payload)} is hidden from digests until "
            f"{slack_date(until)}, or until its state changes.",
        )

    @property
    def mint_ttl(self) -> float:
        """How long a nonce must be remembered: as long as a button lives."""
        return float(self.service.config.actions.button_ttl_seconds)

    # -- steps --

    def _verified(self, origin: Origin, action: dict[str, Any]) -> ButtonPayload | None:
        try:
            return verify(str(action.get("value") or ""), self.key, time.time())
        except InvalidButton as err:
            log.warning("refused a button click from %s: %s", origin.user_id, err)
            self._ephemeral(origin, f":no_entry: {escape(str(err))}")
            return None

    def _usable(self, origin: Origin, request: ActionRequest, prepared: Preparation) -> bool:
        if prepared.verdict is Verdict.OK:
            return True
        if prepared.verdict is Verdict.STALE:
            self._show_object(origin, request.target, request.ref, note=prepared.message)
        else:
            icon = ":no_entry:" if prepared.verdict is Verdict.DENIED else ":warning:"
            self._ephemeral(origin, f"{icon} {escape(prepared.message)}")
        return False

    def _start(
        self,
        actor: Actor,
        request: ActionRequest,
        nonce: str,
        origin: Origin,
        approved_by: str = "",
    ) -> None:
        if self._closing:
            self._ephemeral(origin, "fluxbot is restarting; try again in a minute.")
            return
        if nonce and not self.service.claim(nonce, self.mint_ttl):
            self._ephemeral(origin, "This button was already used; nothing more was done.")
            return
        # The worker thread keeps this interaction's request id in its log lines.
        context = contextvars.copy_context()
        future = self.executor.submit(
            context.run, self._execute, actor, request, origin, approved_by
        )
        with self._inflight_lock:
            self._inflight[future] = (request, origin)
        future.add_done_callback(self._forget)

    def _forget(self, future: Future[None]) -> None:
        with self._inflight_lock:
            self._inflight.pop(future, None)

    def _execute(
        self, actor: Actor, request: ActionRequest, origin: Origin, approved_by: str
    ) -> None:
        try:
            self._replace(
                origin,
                f":hourglass_flowing_sand: {request.describe()} by <@{actor.id}>…",
                request=request,
            )
            result = self.service.run(actor, request, progress=lambda _text: None)
            self._report(actor, request, origin, result, approved_by)
        except Exception:
            log.exception("action %s failed unexpectedly", request.describe())
            self._ephemeral(origin, ":boom: That action failed inside fluxbot; see the log.")

    def _report(
        self,
        actor: Actor,
        request: ActionRequest,
        origin: Origin,
        result: ActionResult,
        approved_by: str,
    ) -> None:
        icon = ":white_check_mark:" if result.ok else ":x:"
        headline = result.headline
        said = result.outcome.message if result.outcome is not None else ""
        if said and said in headline:
            # The object's view above shows the controller's message whole; once is enough.
            headline = headline.replace(said, condense(said, 160))
        text_line = escape(headline)
        if request.until is not None:
            # The domain writes the expiry in UTC (it also goes into Kubernetes Events); in
            # Slack it is a date token each reader sees in their own time zone.
            plain = escape(f"{request.until:%Y-%m-%d %H:%M} UTC")
            text_line = text_line.replace(plain, slack_date(request.until))
        lines = [f"{icon} {text_line}"]
        lines += [escape(d) for d in result.details]
        if result.changed and not result.ok:
            lines.append("Changed: " + escape("; ".join(result.changed)))
        if result.not_changed:
            lines.append("Not changed: " + escape("; ".join(result.not_changed)))
        if result.warning:
            lines.append(f":warning: *{escape(result.warning)}*")
        who = f"<@{actor.id}>" + (f", approved by <@{approved_by}>" if approved_by else "")
        lines.append(f"_{request.action.value} by {who}_")
        text = clip("\n".join(lines), 2900)
        self._replace(origin, text, offer_resume=result.offer_resume, request=request)
        audit = f"{who}: {text_line}"
        try:
            if origin.ephemeral or not origin.message_ts:
                channel = self._environment_channel(request.target.environment) or origin.channel_id
                self.client.chat_postMessage(channel=channel, text=clip(audit, 3000))
            else:
                self.client.chat_postMessage(
                    channel=origin.channel_id, thread_ts=origin.message_ts, text=clip(audit, 3000)
                )
        except SlackApiError as err:
            log.warning("could not post the audit reply: %s", err.response.get("error"))

    def _replace(
        self,
        origin: Origin,
        text: str,
        *,
        offer_resume: bool = False,
        request: ActionRequest | None = None,
    ) -> None:
        """Update the message that held the button: the outcome, in place."""
        outcome: list[dict[str, Any]] = [SectionBlock(text=MarkdownTextObject(text=text)).to_dict()]
        if offer_resume and request is not None:
            obj = self.service.objects.object(request.target, request.ref)
            if obj is not None:
                buttons = [
                    b
                    for b in self.mint.actions(
                        request.target.environment, request.target.cluster, obj
                    )
                    if b.text and b.text.text == "Resume"
                ]  # fmt: skip
                if buttons:
                    outcome.append(ActionsBlock(elements=buttons).to_dict())
        if origin.ephemeral and request is not None:
            # Slack does not send an ephemeral message's blocks with the click: show the
            # object's view again, fresh, with the outcome where its buttons were.
            blocks = self._view_with(request, outcome)
        elif origin.ephemeral or not origin.blocks:
            blocks = outcome
        else:
            blocks = _insert_after(list(origin.blocks), origin.block_id, outcome)
        message = SlackMessage(clip(text, 3000), blocks)
        post_response(origin.response_url, message, self.retries, replace_original=True)

    def _view_with(
        self, request: ActionRequest, outcome: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        obj = self.service.objects.object(request.target, request.ref)
        if obj is None:
            return outcome
        siblings = tuple(self.service.objects.cluster_objects(request.target))
        match = ObjectMatch(
            request.target.environment,
            request.target.cluster,
            obj,
            dependents_of(obj, siblings),
            blocked=blocked_by(obj, siblings),
        )
        view = render(ObjectAnswer(obj.kind, obj.name, obj.namespace, (match,), ()), self.command)
        return [*view.blocks[:1], *outcome, *view.blocks[1:]][:50]

    def _ephemeral(self, origin: Origin, text: str) -> None:
        message = SlackMessage(
            clip(text, 3000),
            [SectionBlock(text=MarkdownTextObject(text=clip(text, 3000))).to_dict()],
        )
        post_response(origin.response_url, message, self.retries, replace_original=False)

    def _show_object(
        self, origin: Origin, target: ClusterTarget, ref: ObjectRef, note: str
    ) -> None:
        obj = self.service.objects.object(target, ref)
        if obj is None:
            self._ephemeral(origin, f":warning: {ref} is not on {target.cluster} any more.")
            return
        siblings = tuple(self.service.objects.cluster_objects(target))
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
                message.text,
                [
                    SectionBlock(
                        text=MarkdownTextObject(text=f":warning: {escape(note)}")
                    ).to_dict(),
                    *message.blocks[:49],
                ],
            )
        post_response(origin.response_url, message, self.retries, replace_original=False)

    def _show_plan(self, origin: Origin, payload: ButtonPayload, prepared: Preparation) -> None:
        obj = prepared.obj
        assert obj is not None
        plan = rollback_plan(obj)
        confirm = self.mint.payload(
            Action.ROLLBACK.value,
            payload.e,
            payload.c,
            obj,
            variant="confirm",
            rollback_to=plan.target.version,
        )
        approval = (
            " A second person who may roll back must approve it." if prepared.needs_approval else ""
        )
        text = (
            f":rewind: *Emergency rollback plan* for {escape(str(obj.ref))} "
            f"on *{escape(payload.c)}*\n"
            f"• Now: revision {plan.current.version} `{escape(plan.current.chart_name)}@"
            f"{escape(plan.current.chart_version)}` ({escape(plan.current.status)})\n"
            f"• Target: revision {plan.target.version} `{escape(plan.target.chart_name)}@"
            f"{escape(plan.target.chart_version)}`, the previous successful release\n"
            "Steps: keep the parent Kustomization from re-applying it, suspend the HelmRelease, "
            f"`helm rollback {escape(plan.release)} {plan.target.version} -n "
            f"{escape(plan.storage_namespace)} --wait`, verify.\n"
            f":warning: The HelmRelease stays suspended until Git is fixed.{approval}"
        )
        blocks = [
            SectionBlock(text=MarkdownTextObject(text=clip(text, 3000))).to_dict(),
            ActionsBlock(
                elements=[self.mint.button("Confirm rollback", "flux_act", confirm, style="danger")]
            ).to_dict(),
        ]
        post_response(
            origin.response_url,
            SlackMessage(f"Rollback plan for {obj.ref}", blocks),
            self.retries,
            replace_original=False,
        )

    def _request_approval(
        self, origin: Origin, requester: Actor, payload: ButtonPayload, prepared: Preparation
    ) -> None:
        obj = prepared.obj
        assert obj is not None
        assert prepared.plan is not None
        ttl = float(self.service.config.actions.approval_ttl_seconds)
        request_payload = self.mint.payload(
            Action.ROLLBACK.value, payload.e, payload.c, obj, ttl=ttl,
            rollback_to=prepared.plan.target.version, requester=requester.id,
        )  # fmt: skip
        approve = self.mint.button("Approve", APPROVE, request_payload, style="primary")
        deny = self.mint.button("Deny", DENY, request_payload, style="danger")
        text = (
            f":rotating_light: <@{requester.id}> asks to {escape(prepared.plan.describe())} "
            f"on *{escape(payload.c)}*. A second person who may roll back must approve; "
            f"this request expires in {int(ttl // 60)} minutes."
        )
        blocks = [
            SectionBlock(text=MarkdownTextObject(text=clip(text, 3000))).to_dict(),
            ActionsBlock(
                elements=[approve, deny], block_id=f"approval:{request_payload.i}"
            ).to_dict(),
        ]
        try:
            self.client.chat_postMessage(
                channel=origin.channel_id, text=clip(text, 3000), blocks=blocks
            )
        except SlackApiError as err:
            self._ephemeral(
                origin, f":x: Could not post the approval request: {err.response.get('error')}"
            )
            return
        self._ephemeral(
            origin, "Approval requested in the channel; the rollback runs once someone approves."
        )

    def _open_suspend_form(
        self, origin: Origin, payload: ButtonPayload, prepared: Preparation
    ) -> None:
        blocks: list[Any] = [
            SectionBlock(
                text=MarkdownTextObject(
                    text=f"Suspend {_title(payload)}. Flux stops reconciling it, and its parent "
                    "Kustomization will not undo the suspension."
                )
            ),
            InputBlock(
                block_id="reason",
                label=PlainTextObject(text="Why"),
                element=PlainTextInputElement(action_id="reason", multiline=True, max_length=500),
            ),
            InputBlock(
                block_id="expiry",
                label=PlainTextObject(text="For how long (a reminder, not an automatic resume)"),
                optional=True,
                element=StaticSelectElement(
                    action_id="expiry",
                    options=[
                        Option(value=v, text=PlainTextObject(text=t)) for v, t in EXPIRY_CHOICES
                    ],
                ),
            ),
        ]
        if prepared.confirmation is ConfirmationMode.TYPED:
            blocks.append(_typed_input(payload.n))
        self._open_view(origin, SUSPEND_VIEW, "Suspend", "Suspend", payload, blocks)

    def _open_confirm_form(self, origin: Origin, payload: ButtonPayload) -> None:
        label = {"rollback": "Roll back", "reconcile": "Reconcile", "resume": "Resume"}.get(
            payload.a, "Confirm"
        )
        blocks: list[Any] = [
            SectionBlock(text=MarkdownTextObject(text=f"{escape(label)} {_title(payload)}?")),
            _typed_input(payload.n),
        ]
        self._open_view(origin, CONFIRM_VIEW, "Confirm", label, payload, blocks)

    def _open_view(
        self,
        origin: Origin,
        callback_id: str,
        title: str,
        submit: str,
        payload: ButtonPayload,
        blocks: Sequence[Any],
    ) -> None:
        metadata = json.dumps({"p": sign(payload, self.key), **origin.to_metadata()})
        view = View(
            type="modal",
            callback_id=callback_id,
            title=PlainTextObject(text=title[:24]),
            submit=PlainTextObject(text=submit[:24]),
            close=PlainTextObject(text="Cancel"),
            private_metadata=metadata,
            blocks=list(blocks),
        )
        try:
            self.client.views_open(trigger_id=origin.trigger_id, view=view)
        except SlackApiError as err:
            self._ephemeral(origin, f":x: Could not open the form: {err.response.get('error')}")

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


def _title(payload: ButtonPayload) -> str:
    return (
        f"*{escape(payload.k)}* `{escape(payload.ns)}/{escape(payload.n)}` on *{escape(payload.c)}*"
    )


def _typed_input(name: str) -> InputBlock:
    return InputBlock(
        block_id="typed",
        label=PlainTextObject(text=f"Type {name} to confirm"[:2000]),
        element=PlainTextInputElement(action_id="typed", max_length=253),
    )


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


def _insert_after(
    blocks: list[dict[str, Any]], block_id: str, extra: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The clicked message with the outcome right under the clicked block (replacing buttons)."""
    index = next((i for i, b in enumerate(blocks) if b.get("block_id") == block_id), None)
    if index is None:
        merged = [*blocks, *extra]
    elif blocks[index].get("type") == "actions":
        merged = [*blocks[:index], *extra, *blocks[index + 1 :]]
    else:
        merged = [*blocks[: index + 1], *extra, *blocks[index + 1 :]]
    return merged[:50]


def _target(payload: ButtonPayload) -> ClusterTarget:
    return ClusterTarget(payload.e, payload.c)


def _ref(payload: ButtonPayload) -> ObjectRef:
    return ObjectRef(payload.k, payload.ns, payload.n)


def _request(payload: ButtonPayload) -> ActionRequest:
    action = Action(payload.a)
    variant = payload.v if payload.v in ("with-source", "force", "reset") else ""
    return ActionRequest(
        action,
        _target(payload),
        _ref(payload),
        variant=variant,
        state=payload.s,
        rollback_to=payload.r,
    )
