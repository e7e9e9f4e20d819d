"""Start the Bolt app on HTTP or Socket Mode; Slack's refusals come back as words.

The composition root wires the Slack adapter without naming a Slack library type.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.slack.app import SlackBot, build_app
from bot.slack.server import Probe, serve_http, serve_socket_mode

# The Web API client every Slack adapter posts with (make_client builds it).
SlackClient: TypeAlias = WebClient


class SlackRefused(Exception):
    """Slack refused a token; the message says which, and Slack's reason."""


def run_app(
    bot: SlackBot,
    *,
    http: bool,
    host: str,
    port: int,
    ready: Callable[[int, Probe], None],
) -> None:
    """Serve `bot` until SIGTERM or SIGINT: HTTP on host:port, or Socket Mode."""
    credentials = bot.credentials
    try:
        app = build_app(bot, http=http)
    except BoltError as err:
        # Bolt checks the bot token with auth.test before anything else.
        raise SlackRefused(f"Slack refused SLACK_BOT_TOKEN: {err}") from err
    if http:
        assert credentials.signing_secret is not None
        serve_http(
            app, credentials.signing_secret.get_secret_value(), host, port,
            bot.settings.listener_threads, ready,
        )  # fmt: skip
        return
    assert credentials.app_token is not None
    try:
        serve_socket_mode(app, credentials.app_token.get_secret_value(), ready)
    except SlackApiError as err:
        reason = err.response.get("error")
        raise SlackRefused(f"Slack refused SLACK_APP_TOKEN: {reason}") from err
