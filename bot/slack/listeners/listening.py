"""What every listener shares: the bot, the pools that work after the ack, the error handler.

Bolt's request thread waits for `ack()`; with `process_before_response` the listener itself
runs on that thread, so a handler acks and hands the rest to one of these pools. A Slack that
hangs (a response_url, views.update, chat.update) can then hold a pool's threads, never the
acks of new requests.
"""

from __future__ import annotations

import contextvars
import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final, Literal

from slack_bolt import BoltContext

from bot.observability import metrics
from bot.observability.logging import request_scope

if TYPE_CHECKING:
    from bot.slack.app import SlackBot
    from bot.slack.remediation import SlackRemediation

log = logging.getLogger(__name__)

# Set by the app's first middleware (bot/slack/app.py): when Slack's request arrived, and the
# app's Listening.
RECEIVED_AT: Final = "fluxbot_received_at"
LISTENING: Final = "fluxbot_listening"

ErrorHandler = Callable[[Exception, dict[str, Any]], None]


@dataclass(frozen=True)
class Listening:
    """The bot, a pool per kind of work done after the ack, and the app's one error handler."""

    bot: SlackBot
    # Slash commands and the answers a click re-runs (Share).
    answers: ThreadPoolExecutor
    # Remediation clicks and form submissions: they call Slack and read clusters.
    interactions: ThreadPoolExecutor
    # Events: mentions answered in threads.
    events: ThreadPoolExecutor
    on_error: ErrorHandler

    @classmethod
    def for_bot(cls, bot: SlackBot, on_error: ErrorHandler) -> Listening:
        """Pools of `bot.settings.listener_threads` threads each (started lazily)."""
        threads = bot.settings.listener_threads

        def pool(name: str) -> ThreadPoolExecutor:
            return ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"slack-{name}")

        return cls(bot, pool("answer"), pool("interaction"), pool("event"), on_error)


def listening(context: BoltContext) -> Listening:
    """The app's Listening, from a request's context."""
    found = context[LISTENING]
    assert isinstance(found, Listening)
    return found


def acked(context: BoltContext) -> None:
    """Record how long after its arrival a request was acknowledged."""
    received = context.get(RECEIVED_AT)
    if isinstance(received, float):
        metrics.record_ack(time.monotonic() - received)


Pool = Literal["answers", "interactions", "events"]


def after_ack(
    context: BoltContext, body: dict[str, Any], work: Callable[[Listening], None], *, on: Pool
) -> None:
    """Run `work` on the app's pool `on`, in a request scope of its own; an exception goes
    to the app's error handler, as it would from a listener."""
    app = listening(context)
    pool: ThreadPoolExecutor = getattr(app, on)

    def run() -> None:
        with request_scope():
            try:
                work(app)
            except Exception as err:  # noqa: BLE001 - the error handler logs it and apologises
                app.on_error(err, body)

    pool.submit(contextvars.copy_context().run, run)


def remediate(
    context: BoltContext, body: dict[str, Any], work: Callable[[SlackRemediation], None]
) -> None:
    """Run `work` with the app's remediation on the interactions pool. Without remediation no
    message carries its buttons or forms: such a request (an old message's) is only logged."""

    def run(app: Listening) -> None:
        if app.bot.remediation is None:
            log.info("ignored a remediation request: actions are not enabled here")
            return
        work(app.bot.remediation)

    after_ack(context, body, run, on="interactions")
