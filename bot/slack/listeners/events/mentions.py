"""`@fluxbot status production`: any `/flux` command after a mention, answered where it was asked.

Slash commands cannot be used in threads, where incidents are discussed; a mention can. The
text after the mention goes through the same grammar, channel defaults and checks as `/flux`,
and the answer is posted in the thread (or starts one under the mention), visible to everyone
there. Actions are not run from a mention, which has no response_url or trigger_id for their
forms: the answer is the object with its action buttons, which run every check on click.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING, Any, Final

from slack_bolt import BoltContext
from slack_sdk.errors import SlackApiError

from bot.commands.answers import ErrorAnswer, HelpAnswer
from bot.commands.grammar import ActionCommand, GetCommand, parse
from bot.observability import metrics
from bot.slack.listeners.commands.slash import command_name, context_for
from bot.slack.listeners.listening import acked, after_ack
from bot.slack.render import render

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)

# Leading mentions (`<@U0BOT>`, `<@U0BOT|fluxbot>`), then an optional `/flux` out of habit.
_MENTIONS: Final = re.compile(r"^\s*(?:<@[UW][A-Z0-9]+(?:\|[^>]*)?>[\s,:]*)+")


def on_mention(body: dict[str, Any], event: dict[str, Any], context: BoltContext) -> None:
    """Bolt acks events itself; the answer comes from the events pool."""
    acked(context)
    after_ack(context, body, lambda app: answer_mention(app.bot, event), on="events")


def command_text(text: str, command: str) -> str:
    """The command after the mention: `<@U0BOT> /flux status prod` is `status prod`."""
    rest = _MENTIONS.sub("", text, count=1).strip()
    if rest.startswith(command):
        rest = rest[len(command) :].strip()
    return rest


def answer_mention(bot: SlackBot, event: dict[str, Any]) -> None:
    """Run the mention's command and reply in its thread."""
    if event.get("bot_id"):
        return  # another app's message; never answer bots (no loops)
    started = time.monotonic()
    channel = str(event.get("channel") or "")
    thread = str(event.get("thread_ts") or event.get("ts") or "")
    text = command_text(str(event.get("text") or ""), bot.settings.command)
    parsed = parse(text)
    context = context_for(bot, channel)
    note = ""
    if isinstance(parsed, ActionCommand):
        # Show the object with its buttons: a click runs the action with all its checks.
        note = (
            f"To {parsed.action} it, press the button: fluxbot checks your role "
            "and asks for confirmation as it would for a command."
        )
        parsed = GetCommand(
            parsed.kind,
            parsed.name,
            namespace=parsed.namespace,
            cluster=parsed.cluster,
            environment=parsed.environment,
        )
    answer = bot.runner.run(parsed, context)
    message = render(answer, command=bot.settings.command, buttons=bot.buttons, shared=True)
    blocks = message.blocks
    if note and not isinstance(answer, ErrorAnswer):
        blocks = [
            *blocks[:49],
            {"type": "context", "elements": [{"type": "mrkdwn", "text": note}]},
        ]
    result = "ok"
    try:
        bot.client.chat_postMessage(
            channel=channel, thread_ts=thread or None, text=message.text, blocks=blocks
        )
    except SlackApiError as err:
        log.warning("could not answer a mention in %s: %s", channel, err.response.get("error"))
        result = "error"
    if result == "ok" and (
        isinstance(answer, ErrorAnswer) or (isinstance(answer, HelpAnswer) and answer.problem)
    ):
        result = "rejected"
    metrics.record_command(command_name(parsed), result, time.monotonic() - started)
