"""Post digests to Slack: a short line in the channel, the details in its thread."""

from __future__ import annotations

import logging
import threading
import time
from typing import Final

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import DigestConfig
from bot.domain.digest import Digest
from bot.domain.fleet import FleetLayout
from bot.slack.digest_render import (
    DigestButtons,
    details_message,
    single_message,
    summary_message,
)

log = logging.getLogger(__name__)

# chat.postMessage allows about one message per second per channel.
CHANNEL_INTERVAL: Final = 1.1


class SlackDigestPoster:
    """Posts digests, pacing messages per channel; 429s are retried by the client."""

    def __init__(
        self, client: WebClient, layout: FleetLayout, buttons: DigestButtons | None
    ) -> None:
        self._client = client
        self._layout = layout
        self._buttons = buttons
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def post(self, digest: Digest, settings: DigestConfig) -> str:
        """Post `digest`; returns the channel message's ts. SlackApiError when refused."""
        env = self._layout.environment(digest.environment)
        if env is None or not env.channel:
            raise ValueError(f"environment {digest.environment!r} has no channel")
        channel = env.channel
        # Posture findings alone keep a digest healthy, but their list goes in the thread.
        quiet = digest.healthy and not digest.posture
        if quiet or not settings.details_in_thread:
            message = single_message(digest, self._buttons)
            return self._send(channel, message.text, message.blocks)
        summary = summary_message(digest, True)
        ts = self._send(channel, summary.text, summary.blocks)
        details = details_message(digest, self._buttons)
        try:
            self._send(channel, details.text, details.blocks, thread_ts=ts)
        except SlackApiError as err:
            # The digest is out; posting it again would double it. Say so loudly instead.
            log.error(
                "digest %s posted, but its details could not be: %s",
                digest.environment,
                err.response.get("error"),
            )
        return ts

    def _send(
        self, channel: str, text: str, blocks: list[dict[str, object]], thread_ts: str | None = None
    ) -> str:
        with self._lock:
            wait = self._last.get(channel, 0.0) + CHANNEL_INTERVAL - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            response = self._client.chat_postMessage(
                channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, unfurl_links=False
            )
            self._last[channel] = time.monotonic()
        return str(response["ts"])
