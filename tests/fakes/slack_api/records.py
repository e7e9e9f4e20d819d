"""What the fake Slack saw: calls, response_url posts, sockets, envelopes, acks; and its errors."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

ACK_DEADLINE = 3.0
"""Seconds Slack waits for an envelope's ack before it tells the user the app timed out."""


@dataclass
class CallRecord:
    """One Web API call as the fake answered it."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    response: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Whether Slack would call this a success (HTTP 200 and `ok: true`)."""
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The `error` code of a failed call."""
        return self.response.get("error")


@dataclass
class ResponseRecord:
    """One POST to a response_url: what arrived, and what the fake answered."""

    id: str
    url: str
    channel: str
    user: str
    payload: dict[str, Any]
    status: int
    body: str
    message_ts: str | None = None  # the message this post created, replaced or deleted
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Whether Slack accepted the post."""
        return self.status == 200


@dataclass
class SocketRecord:
    """One Socket Mode WebSocket connection, as the fake saw it."""

    id: int
    ticket: str
    opened: float = field(default_factory=time.monotonic)
    ready: bool = False  # `hello` sent: envelopes may be routed here
    closed: float | None = None
    disconnect_reason: str | None = None  # set once the fake asked it to reconnect
    envelopes: int = 0  # how many envelopes were sent on it

    @property
    def open(self) -> bool:
        """Whether the WebSocket is still connected."""
        return self.closed is None

    @property
    def routable(self) -> bool:
        """Whether new envelopes may go here: open, greeted, and not asked to disconnect."""
        return self.open and self.ready and self.disconnect_reason is None


@dataclass
class EnvelopeRecord:
    """One envelope pushed to the app over Socket Mode."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    socket: int  # SocketRecord.id it went to
    sent: float = field(default_factory=time.monotonic)

    @property
    def response_url(self) -> str | None:
        """The response_url the payload carries (slash commands, most interactions)."""
        url = self.payload.get("response_url")
        return url if isinstance(url, str) else None


@dataclass
class AckRecord:
    """The app's acknowledgement of one envelope: `{"envelope_id": ..., "payload": ...}`."""

    envelope_id: str
    type: str  # the acknowledged envelope's type
    socket: int  # SocketRecord.id the ack came in on
    payload: dict[str, Any] | None  # the ack's response payload, if it sent one
    seconds: float  # from sending the envelope to receiving the ack
    at: float = field(default_factory=time.monotonic)

    @property
    def in_time(self) -> bool:
        """Whether the ack beat Slack's 3 second deadline."""
        return self.seconds <= ACK_DEADLINE


class _SlackError(Exception):
    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.error = error
        self.status = status
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(error)

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)
