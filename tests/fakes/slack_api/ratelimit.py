"""Rate limits, injected failures and latency, as Slack answers them (429 + Retry-After)."""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field

from .records import _SlackError

RESPONSE_URL = "response_url"
"""Pseudo method name: pass it to fail(), latency() or rate_limit() to target response URLs."""


@dataclass
class _Fault:
    method: str | None
    status: int
    error: str
    retry_after: int | None
    times: int | None
    hits: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str) -> bool:
        if self.spent:
            return False
        return self.method is None or self.method == method


@dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimits:
    """Faults, latencies and the per-channel posting rate (a mixin of FakeSlack)."""

    def rate_limit(self, method: str, times: int | None = 1, retry_after: float = 1) -> None:
        """Answer the next `times` calls of `method` (None: every call) with 429 + Retry-After."""
        # Slack sends whole seconds, and slack_sdk's retry handler int()s the header.
        seconds = max(0, math.ceil(retry_after))
        self._faults.add(_Fault(method, 429, "ratelimited", seconds, times))

    def fail(
        self,
        method: str | None,
        error: str = "internal_error",
        status: int = 500,
        times: int | None = 1,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Answer the next `times` calls of `method` (None: any; times None: every) with error.

        With `status=200` this is a business error as Slack reports it (`ok: false`).
        `headers` go with the answer: e.g. a 302 with a `Location` plays a hijacked endpoint.
        """
        self._faults.add(_Fault(method, status, error, None, times, 0, dict(headers or {})))

    def latency(self, method: str | None, seconds: float) -> None:
        """Delay every answer of `method` (None: every method) by `seconds`; 0 removes it."""
        with self._lock:
            if seconds > 0:
                self._latency[method] = seconds
            else:
                self._latency.pop(method, None)

    def enforce_channel_rate(self, per_second: float | None = 1.0, burst: int = 3) -> None:
        """Emulate chat.postMessage's ~1 msg/s/channel: 429 Retry-After 1 past a short burst.

        `per_second=None` turns it off.
        """
        with self._lock:
            self._channel_rate = None if per_second is None else (per_second, float(burst))
            self._buckets.clear()

    def clear_faults(self) -> None:
        """Remove injected failures, rate limits, latencies and the per-channel rate."""
        with self._lock:
            self._faults.clear()
            self._latency.clear()
            self._channel_rate = None
            self._buckets.clear()

    def _raise_fault(self, method: str) -> None:
        fault = self._faults.take(lambda f: f.matches(method))
        if fault is not None:
            headers = dict(fault.headers)
            if fault.retry_after is not None:
                headers["Retry-After"] = str(fault.retry_after)
            raise _SlackError(fault.error, status=fault.status, headers=headers)

    def _delay(self, method: str) -> float:
        return self._latency.get(method, self._latency.get(None, 0.0))

    def _take_channel_token(self, channel: str) -> None:
        assert self._channel_rate is not None
        rate, burst = self._channel_rate
        now = time.monotonic()
        bucket = self._buckets.setdefault(channel, _Bucket(burst, now))
        bucket.tokens = min(burst, bucket.tokens + (now - bucket.updated) * rate)
        bucket.updated = now
        if bucket.tokens < 1:
            raise _SlackError("ratelimited", status=429, headers={"Retry-After": "1"})
        bucket.tokens -= 1
