"""Build the Bolt app: one client with retries, the listeners, one global error handler."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from slack_bolt import App, BoltContext
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.commands.executor import CommandRunner
from bot.config import SlackSettings
from bot.observability import metrics
from bot.slack.credentials import DEFAULT_API_URL, SlackCredentials
from bot.slack.labels import labelled, labelled_view
from bot.slack.listeners import register_listeners
from bot.slack.listeners.listening import LISTENING, RECEIVED_AT, Listening
from bot.slack.remediation import SlackRemediation
from bot.slack.render import ButtonSource, SlackMessage
from bot.slack.responder import allow_response_host, api_method, post_response, retry_handlers

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class SlackBot:
    """What the listeners need: the command runner and how to reach Slack."""

    runner: CommandRunner
    settings: SlackSettings
    credentials: SlackCredentials
    client: WebClient
    # Present when the fleet can be acted on (a configured fleet, not the demo).
    remediation: SlackRemediation | None = None

    @property
    def buttons(self) -> ButtonSource | None:
        """Where remediation buttons come from, if actions are possible."""
        return self.remediation.mint if self.remediation else None


class _LabellingClient(WebClient):
    """A WebClient that puts the process's message label (bot/slack/labels.py) on messages."""

    def api_call(
        self, api_method: str, *, json: dict[str, Any] | None = None, **kwargs: Any
    ) -> Any:
        if json is not None and api_method in _MESSAGE_METHODS:
            json = labelled(json)
        elif json is not None and api_method in _VIEW_METHODS:
            json = labelled_view(json)
        return super().api_call(api_method, json=json, **kwargs)


_MESSAGE_METHODS = frozenset({"chat.postMessage", "chat.postEphemeral", "chat.update"})
_VIEW_METHODS = frozenset({"views.open", "views.push", "views.update"})


def make_client(credentials: SlackCredentials, settings: SlackSettings) -> WebClient:
    """The Web API client: configurable base URL, bounded retries on 429 and connection errors."""
    return _LabellingClient(
        token=credentials.bot_token.get_secret_value(),
        base_url=credentials.api_url,
        timeout=10,
        retry_handlers=retry_handlers(settings.api_retries),
    )


def build_app(bot: SlackBot, *, http: bool) -> App:
    """A Bolt app answering `/flux` (or the configured command) for `bot`'s fleet."""
    credentials = bot.credentials
    if credentials.api_url != DEFAULT_API_URL:
        allow_response_host(credentials.api_url)
    bolt_log = logging.getLogger("fluxbot.slack")
    # Bolt logs whole request bodies at INFO and DEBUG: only its warnings, unless debugging.
    if not logging.getLogger().isEnabledFor(logging.DEBUG):
        bolt_log.setLevel(logging.WARNING)
    # Apologies go out on a thread of their own: never on the thread that answers Slack.
    apologies = ThreadPoolExecutor(max_workers=2, thread_name_prefix="slack-apology")

    def on_error(error: Exception, body: dict[str, Any]) -> None:
        """Log every unhandled listener error once, and tell the person who asked."""
        if isinstance(error, SlackApiError):
            metrics.record_slack_api_error(
                api_method(error.response.api_url), str(error.response.get("error"))
            )
        kind = body.get("type") or ("command" if "command" in body else "unknown")
        log.error("unhandled error in a %s listener: %r", kind, error, exc_info=error)
        response_url = body.get("response_url")
        if isinstance(response_url, str) and response_url:
            apology = "Sorry, that failed inside fluxbot; the operators can find it in the log."
            message = SlackMessage(
                apology,
                [{"type": "section", "text": {"type": "mrkdwn", "text": f":boom: {apology}"}}],
            )
            apologies.submit(post_response, response_url, message, bot.settings.api_retries)

    listening = Listening.for_bot(bot, on_error)
    app = App(
        client=bot.client,
        signing_secret=(
            credentials.signing_secret.get_secret_value() if credentials.signing_secret else None
        ),
        # Socket Mode payloads are authenticated by the connection, not signed.
        request_verification_enabled=http,
        # Listeners run on the request's thread and only ack and hand their work to the pools
        # of `listening`: the ack never waits for a thread of a pool that Slack could hold.
        process_before_response=True,
        logger=bolt_log,
    )

    @app.middleware
    def stamp_arrival(context: BoltContext, next: Callable[[], None]) -> None:
        """Note when Slack's request arrived (for the ack latency metric), and give listeners
        the bot and its pools."""
        context[RECEIVED_AT] = time.monotonic()
        context[LISTENING] = listening
        next()

    register_listeners(app, bot.settings.command)
    # The one error handler: for listeners, and for the work they hand to the pools.
    app.error(on_error)
    return app
