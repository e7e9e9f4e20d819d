"""Button clicks on fluxbot's messages."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App
from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject

from bot.commands.grammar import parse
from bot.slack.listeners.commands import context_for
from bot.slack.render import SHARE_ACTION, SlackMessage, escape, render
from bot.slack.responder import post_response

if TYPE_CHECKING:
    from bot.slack.app import SlackBot


def register(app: App, bot: SlackBot) -> None:
    """Listen for the buttons fluxbot puts on its messages."""

    def on_share(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        share_answer(bot, body, action)

    app.action(SHARE_ACTION)(on_share)


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
