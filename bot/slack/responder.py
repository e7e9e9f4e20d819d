"""Post answers to Slack's response_url with bounded retries (Bolt's respond() has none)."""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient

from bot.observability import metrics
from bot.slack.render import SlackMessage

log = logging.getLogger(__name__)


def api_method(url: str) -> str:
    """`chat.postMessage` for a Web API URL; `response_url` for Slack's reply URLs."""
    path = url.split("?", 1)[0]
    return path.rsplit("/", 1)[-1] if "/api/" in path else "response_url"


class _CountingRateLimitHandler(RateLimitErrorRetryHandler):
    """Retries 429s as RateLimitErrorRetryHandler does, counting each one."""

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is not None and response.status_code == 429:
            metrics.record_slack_ratelimited(api_method(request.url))
        return super()._can_retry(state=state, request=request, response=response, error=error)


def retry_handlers(retries: int) -> list[RetryHandler]:
    """Retry connection errors and 429s (honouring Retry-After), at most `retries` times each."""
    return [
        ConnectionErrorRetryHandler(max_retry_count=retries),
        _CountingRateLimitHandler(max_retry_count=retries),
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
        metrics.record_slack_api_error("response_url", f"http_{response.status_code}")
        log.warning(
            "response_url refused the answer: HTTP %s %s", response.status_code, response.body
        )
        return False
    return True
