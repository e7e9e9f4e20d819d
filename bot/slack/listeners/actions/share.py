"""Share: post an answer for the whole channel."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, BoltContext
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from bot.commands.grammar import parse
from bot.slack.listeners.commands.slash import context_for
from bot.slack.listeners.listening import acked, after_ack
from bot.slack.render import SlackMessage, escape, render
from bot.slack.responder import post_response

if TYPE_CHECKING:
    from bot.slack.app import SlackBot


def on_share(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """Ack the click; re-run and post the answer from the answers pool."""
    ack()
    acked(context)
    after_ack(context, body, lambda app: share_answer(app.bot, body, action), on="answers")


def share_answer(bot: SlackBot, body: dict[str, Any], action: dict[str, Any]) -> None:
    """Re-run the command (the data may have moved on) and post it for the whole channel."""
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id", ""
    )
    user = (body.get("user") or {}).get("id", "")
    text = str(action.get("value") or "")
    answer = bot.runner.run(parse(text), context_for(bot, str(channel)))
    message = render(answer, command=bot.settings.command, buttons=bot.buttons, shared=True)
    shown = f"{bot.settings.command} {escape(text)}"
    credit = ContextBlock(
        elements=[MarkdownTextObject(text=f"Shared by <@{user}>: `{shown}`")]
    ).to_dict()
    shared = SlackMessage(message.text, [*message.blocks[:49], credit])
    post_response(
        str(body.get("response_url") or ""),
        shared,
        bot.settings.api_retries,
        in_channel=True,
        replace_original=False,
    )
