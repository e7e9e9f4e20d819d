"""Post answers to Slack's response_url with bounded retries (Bolt's respond() has none)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.webhook import WebhookClient

from bot.slack.render import SlackMessage

log = logging.getLogger(__name__)


def retry_handlers(retries: int) -> list[RetryHandler]:
    """Retry connection errors and 429s (honouring Retry-After), at most `retries` times each."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=retries),
        RateLimitErrorRetryHandler(max_retry_count=retries),
    ]


def post_response(
    response_url: str,
    message: SlackMessage,
    retries: int,
    *,
    in_channel: bool = False,
    replace_original: bool | None = None,
    extra: dict[str, Any] | None = None,
) -> bool:
    """Send `message` to a response_url; False (and a log line) when Slack refused it."""
    client = WebhookClient(response_url, timeout=10, retry_handlers=retry_handlers(retries))
    body: dict[str, Any] = {
        "text": message.text,
        "blocks": message.blocks,
        "response_type": "in_channel" if in_channel else "ephemeral",
        **(extra or {}),
    }
    if replace_original is not None:
        body["replace_original"] = replace_original
    response = client.send_dict(body)
    if response.status_code != 200:
        log.warning(
            "response_url refused the answer: HTTP %s %s", response.status_code, response.body
        )
        return False
    return True
