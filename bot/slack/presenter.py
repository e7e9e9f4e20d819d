"""Shows a running action in Slack: its progress and outcome in place, and an audit reply.

The presenter is the `ActionSink` of one action started from one message. The message that held
the button shows "working", each progress step while response_url uses remain (Slack allows 5),
then the outcome; a reply saying who did what goes to the message's thread, or to the
environment's channel when the message was only visible to one person.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Final

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import ActionsBlock, ButtonElement

from bot.actions.model import (
    Abandoned,
    ActionEvent,
    ActionRequest,
    Crashed,
    Finished,
    Progress,
    Queued,
    Running,
)
from bot.slack.action_views import (
    REQUEST_BLOCK,
    WORKING,
    headline_text,
    insert_after,
    note,
    outcome_text,
    section,
)
from bot.slack.render import SlackMessage, clip, escape
from bot.slack.responder import post_response

log = logging.getLogger(__name__)

_VERBS: Final = {
    "reconcile": "reconciled",
    "suspend": "suspended",
    "resume": "resumed",
    "rollback": "rolled back",
}
# Slack accepts 5 posts per response_url within 30 minutes; keep the last two for the outcome
# and a late notice, and stop trusting the URL a minute early.
RESPONSE_URL_USES: Final = 5
RESPONSE_URL_SECONDS: Final = 30 * 60 - 60
KEPT_FOR_OUTCOME: Final = 2


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
    # When Slack sent the interaction: its response_url lives 30 minutes from then.
    at: float = field(default_factory=time.time)

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
            "at": self.at,
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
            at=float(data.get("at") or time.time()),
        )


@dataclass
class SlackOutput:
    """How a presenter reaches Slack."""

    client: WebClient
    retries: int
    command: str
    channel_of: Callable[[str], str | None]
    resume_buttons: Callable[[ActionRequest], list[ButtonElement]]
    # Fresh buttons for the object, so a failed action can be retried from the message.
    retry_buttons: Callable[[ActionRequest], list[ButtonElement]]
    name_of: Callable[[str], str]
    # An ephemeral message's blocks do not come with the click: the object's view, redrawn
    # around what is shown in place of its buttons.
    object_view: Callable[[ActionRequest, list[dict[str, Any]]], list[dict[str, Any]]]
    # (channel, ts) of the open incident about the object, if incidents are raised: an action
    # asked for elsewhere (a typed command, an ephemeral answer) reports in its thread.
    incident_thread: Callable[[ActionRequest], tuple[str, str] | None] | None = None


@dataclass
class SlackPresenter:
    """The sink of one action: its events, shown where it was asked for."""

    origin: Origin
    out: SlackOutput
    request: ActionRequest | None = None
    _uses: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def report(self, event: ActionEvent) -> None:
        """Show one event of the action."""
        match event:
            case Queued(request=request, text=text):
                self.replace(f"{WORKING} {escape(request.describe())} is queued: {escape(text)}.")
            case Running(request=request, actor=actor):
                self.request = request
                self.replace(f"{WORKING} {escape(request.describe())} by <@{actor.id}>…")
            case Progress(text=text):
                if self._uses < RESPONSE_URL_USES - KEPT_FOR_OUTCOME and self._url_alive():
                    self.replace(f"{WORKING} {escape(text)}")
            case Finished():
                self._finished(event)
            case Crashed():
                self.ephemeral(":boom: That action failed inside fluxbot; see the log.")
            case Abandoned(request=request):
                ref = request.ref
                self.ephemeral(
                    f":warning: fluxbot is restarting: {escape(request.describe())} was "
                    "started, but its outcome is no longer being followed. Check it with "
                    f"`{self.out.command} get {ref.kind} {ref.name} -n {ref.namespace}`."
                )

    def _finished(self, event: Finished) -> None:
        result = event.result
        if result.claimed_elsewhere or result.busy_elsewhere:
            # Nothing was written: the replica that holds the button or the object reports
            # into its own message; this one only hears why nothing happened.
            self.ephemeral(escape(result.headline))
            return
        text = outcome_text(event)
        extra: list[dict[str, Any]] = []
        buttons: list[ButtonElement] = []
        if result.offer_resume:
            buttons = self.out.resume_buttons(event.request)
        elif not result.ok and not result.pending:
            buttons = self.out.retry_buttons(event.request)
        if buttons:
            extra.append(ActionsBlock(elements=buttons[:25]).to_dict())
        self.replace(text, extra)
        audit = self.audit_line(event)
        origin = self.origin
        try:
            incident = self.out.incident_thread(event.request) if self.out.incident_thread else None
            if (origin.ephemeral or not origin.message_ts) and incident is not None:
                self.out.client.chat_postMessage(
                    channel=incident[0], thread_ts=incident[1], text=audit
                )
            elif origin.ephemeral or not origin.message_ts:
                channel = self.out.channel_of(event.request.target.environment)
                self.out.client.chat_postMessage(channel=channel or origin.channel_id, text=audit)
            else:
                self.out.client.chat_postMessage(
                    channel=origin.channel_id, thread_ts=origin.message_ts, text=audit
                )
        except SlackApiError as err:
            log.warning("could not post the audit reply: %s", err.response.get("error"))
        except Exception as err:  # noqa: BLE001 - best-effort: the outcome stands as shown
            log.warning("could not post the audit reply: %r", err)

    def audit_line(self, event: Finished) -> str:
        """ "alice reconciled HelmRelease monitoring/kps · production/prod-us-1 → ✅": names,
        not mentions, so nobody is pinged by the record of what they did."""
        request = event.request
        result = event.result
        verb = _VERBS[request.action.value] + (f" ({request.variant})" if request.variant else "")
        icon = ":white_check_mark:" if result.ok else ":hourglass:" if result.pending else ":x:"
        line = (
            f"{escape(event.actor.name or event.actor.id)} {verb} {escape(request.ref.kind)} "
            f"{escape(request.ref.namespace)}/{escape(request.ref.name)} · "
            f"{escape(request.target.environment)}/{escape(request.target.cluster)} → {icon}"
        )
        if request.approved_by:
            line += f" (approved by {escape(self.out.name_of(request.approved_by))})"
        if not result.ok:
            line += f"\n{headline_text(event)}"
        return clip(line, 3000)

    def replace(self, text: str, extra: list[dict[str, Any]] | None = None) -> None:
        """Update the message that held the button, in place."""
        outcome = [section(text), *(extra or [])]
        origin = self.origin
        if origin.ephemeral and self.request is not None:
            blocks = self.out.object_view(self.request, outcome)
        elif origin.ephemeral or not origin.blocks:
            blocks = outcome
        else:
            blocks = insert_after(list(origin.blocks), origin.block_id, outcome)
        self._post(SlackMessage(clip(text, 3000), blocks), replace_original=True)

    def ephemeral(self, text: str) -> None:
        """A note only the person who clicked sees."""
        self._post(note(text), replace_original=False)

    def show(self, message: SlackMessage) -> None:
        """A message only the person who clicked sees."""
        self._post(message, replace_original=False)

    def _post(self, message: SlackMessage, *, replace_original: bool) -> None:
        with self._lock:
            usable = self._uses < RESPONSE_URL_USES and self._url_alive()
            self._uses += 1
        if usable:
            try:
                if post_response(
                    self.origin.response_url,
                    message,
                    self.out.retries,
                    replace_original=replace_original,
                ):
                    return
            except Exception as err:  # noqa: BLE001 - a hanging response_url: go around it
                log.warning("the response_url did not answer (%r); using the Web API", err)
                with self._lock:
                    self._uses = RESPONSE_URL_USES  # do not wait on it again
        self._without_response_url(message, replace_original=replace_original)

    def _url_alive(self) -> bool:
        return time.time() - self.origin.at < RESPONSE_URL_SECONDS

    def _without_response_url(self, message: SlackMessage, *, replace_original: bool) -> None:
        """Past the response_url's 30 minutes or 5 uses: update the channel message itself
        (chat.update has no such cap), or reply in its thread; an ephemeral message cannot be
        edited, so its outcome goes to the person directly."""
        origin = self.origin
        client = self.out.client
        try:
            if origin.ephemeral or not origin.message_ts:
                client.chat_postMessage(
                    channel=origin.user_id, text=message.text, blocks=message.blocks
                )
                return
            if replace_original:
                try:
                    client.chat_update(
                        channel=origin.channel_id,
                        ts=origin.message_ts,
                        text=message.text,
                        blocks=message.blocks,
                    )
                    return
                except SlackApiError as err:
                    log.info("could not update the message (%s); replying in its thread",
                             err.response.get("error"))  # fmt: skip
            client.chat_postMessage(
                channel=origin.channel_id,
                thread_ts=origin.message_ts,
                text=message.text,
                blocks=message.blocks,
            )
        except SlackApiError as err:
            log.warning("could not deliver an action's update: %s", err.response.get("error"))
        except Exception as err:  # noqa: BLE001 - best-effort, after the cluster was written
            log.warning("could not deliver an action's update: %r", err)


def decided_origin(origin: Origin, verdict: str) -> Origin:
    """The approval request's message with its request line rewritten: who decided."""
    blocks = []
    for block in origin.blocks:
        if block.get("block_id") == REQUEST_BLOCK and block.get("type") == "section":
            text = str((block.get("text") or {}).get("text") or "")
            asked = text.split(". ", 1)[0].removeprefix(":rotating_light: ")
            blocks.append(section(f"{verdict} {asked}.", block_id=REQUEST_BLOCK))
        else:
            blocks.append(block)
    return replace(origin, blocks=tuple(blocks))
