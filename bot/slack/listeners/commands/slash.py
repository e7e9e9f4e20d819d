"""The slash command: ack at once, then answer through the response_url."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, BoltContext

from bot.commands.answers import Answer, ErrorAnswer, HelpAnswer
from bot.commands.executor import CommandContext
from bot.commands.grammar import ActionCommand, Command, GetCommand, StatusCommand, parse
from bot.observability import metrics
from bot.slack.listeners.listening import acked, after_ack
from bot.slack.remediation import Origin
from bot.slack.render import render
from bot.slack.responder import post_response

if TYPE_CHECKING:
    from bot.slack.app import SlackBot

log = logging.getLogger(__name__)


def on_command(ack: Ack, command: dict[str, Any], context: BoltContext) -> None:
    """Ack `/flux …` at once; answer it from the answers pool."""
    ack()
    acked(context)
    after_ack(context, command, lambda app: answer_command(app.bot, command), on="answers")


def context_for(bot: SlackBot, channel_id: str) -> CommandContext:
    """The channel's environment is the default; elsewhere people must name one."""
    env = bot.runner.layout.environment_for_channel(channel_id)
    return CommandContext(
        default_environment=env.name if env else None,
        environment_required=env is None,
        prefix=f"{bot.settings.command} ",
    )


def command_name(command: Command) -> str:
    """The command's name for metrics: status, get, envs, help, action (a bounded set)."""
    return type(command).__name__.removesuffix("Command").lower()


def answer_command(bot: SlackBot, command: dict[str, Any]) -> None:
    """Run the command text and post the answer (ephemeral unless --share)."""
    started = time.monotonic()
    text = str(command.get("text") or "")
    channel_id = str(command.get("channel_id") or "")
    parsed = parse(text)
    context = context_for(bot, channel_id)
    if isinstance(parsed, ActionCommand) and bot.remediation is not None:
        origin = Origin(
            user_id=str(command.get("user_id") or ""),
            channel_id=channel_id,
            response_url=str(command.get("response_url") or ""),
            trigger_id=str(command.get("trigger_id") or ""),
        )
        bot.remediation.on_command(parsed, origin, context)
        metrics.record_command(command_name(parsed), "ok", time.monotonic() - started)
        return
    answer = bot.runner.run(parsed, context)
    share = isinstance(parsed, StatusCommand | GetCommand) and parsed.share
    offer_share = not share and shareable(answer)
    message = render(
        answer,
        command=bot.settings.command,
        share_value=text[:2000] if offer_share else None,
        buttons=bot.buttons,
    )
    log.info(
        "answered %s command from %s in %s",
        type(parsed).__name__,
        command.get("user_id"),
        channel_id,
    )
    posted = post_response(
        str(command.get("response_url") or ""),
        message,
        bot.settings.api_retries,
        in_channel=share,
    )
    if not posted:
        result = "error"
    elif isinstance(answer, ErrorAnswer) or (isinstance(answer, HelpAnswer) and answer.problem):
        result = "rejected"
    else:
        result = "ok"
    metrics.record_command(command_name(parsed), result, time.monotonic() - started)


def shareable(answer: Answer) -> bool:
    """Only real answers are worth posting for everyone, not help or errors."""
    return not isinstance(answer, HelpAnswer | ErrorAnswer)
