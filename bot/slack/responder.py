"""Post answers to Slack's response_url with bounded retries (Bolt's respond() has none).

A response_url is only ever posted to on Slack's hooks host (https://hooks.slack.com), or on
the host of SLACK_API_URL when one is set (GovSlack, tests), and redirects are never followed:
whatever a payload says, fluxbot cannot be made to send requests anywhere else.
"""

from __future__ import annotations

import logging
import threading
import urllib.request
from typing import Any, Final
from urllib.parse import urlsplit

from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.webhook import WebhookClient, WebhookResponse

from bot.observability import metrics
from bot.slack.labels import labelled
from bot.slack.render import SlackMessage

log = logging.getLogger(__name__)

SLACK_HOOKS: Final = ("https", "hooks.slack.com")
_allowed_lock = threading.Lock()
_allowed: set[tuple[str, str]] = {SLACK_HOOKS}


def allow_response_host(api_url: str) -> None:
    """Also accept response URLs on the host (and port) of this Web API base URL."""
    parts = urlsplit(api_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        with _allowed_lock:
            _allowed.add((parts.scheme, parts.netloc.lower()))


def allowed_response_url(url: str) -> bool:
    """Whether `url` is on Slack's hooks host or the configured API host, with no user info."""
    try:
        parts = urlsplit(url)
        netloc = parts.netloc.lower()
        origin = (parts.scheme, netloc.removesuffix(":443") if parts.scheme == "https" else netloc)
    except ValueError:
        return False
    if "@" in netloc or not parts.path.startswith("/"):
        return False
    with _allowed_lock:
        return origin in _allowed or (parts.scheme, netloc) in _allowed


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Refuse every redirect: a 3xx comes back as the answer, never followed."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class _HooksClient(WebhookClient):
    """WebhookClient (its retries, 429 handling) over an opener that follows no redirects."""

    def _perform_http_request_internal(
        self, url: str, req: urllib.request.Request
    ) -> WebhookResponse:
        opener = urllib.request.build_opener(
            urllib.request.HTTPSHandler(context=self.ssl), _NoRedirect()
        )
        with opener.open(req, timeout=self.timeout) as http_resp:
            charset: str = http_resp.headers.get_content_charset() or "utf-8"
            body: str = http_resp.read().decode(charset)
            return WebhookResponse(
                url=url, status_code=http_resp.status, body=body, headers=http_resp.headers
            )


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
    if not allowed_response_url(response_url):
        metrics.record_slack_api_error("response_url", "host_not_allowed")
        log.warning("not posting to a response_url outside Slack's hooks host")
        return False
    client = _HooksClient(response_url, timeout=10, retry_handlers=retry_handlers(retries))
    body: dict[str, Any] = {
        "text": message.text,
        "blocks": message.blocks,
        "response_type": "in_channel" if in_channel else "ephemeral",
        **(extra or {}),
    }
    if replace_original is not None:
        body["replace_original"] = replace_original
    response = client.send_dict(labelled(body))
    if response.status_code != 200:
        metrics.record_slack_api_error("response_url", f"http_{response.status_code}")
        log.warning(
            "response_url refused the answer: HTTP %s %s", response.status_code, response.body
        )
        return False
    return True
