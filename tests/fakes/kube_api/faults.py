"""Fault injection: failures, latency and hangs that match requests by method, path and watch."""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .errors import ApiError


@dataclass
class Fault:
    """An injected failure, latency or hang; `hits` counts the requests it has affected."""

    method: str | None
    path_regex: re.Pattern[str] | None
    status: int | None
    times: int | None
    retry_after: float | None
    latency: float
    hang: bool
    watch: bool | None
    message: str | None
    reason: str | None
    hits: int = 0

    @property
    def spent(self) -> bool:
        """Whether it has affected the `times` requests it was meant to."""
        return self.times is not None and self.hits >= self.times

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        """Whether this fault applies to a request."""
        if self.spent:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return self.path_regex is None or bool(self.path_regex.search(path))


class _Dropped(Exception):
    """The connection is to be cut without an answer."""


def _fault_error(fault: Fault) -> ApiError:
    code = fault.status or 500
    headers: dict[str, str] = {}
    details: dict[str, Any] = {}
    if fault.retry_after is not None:
        seconds = fault.retry_after
        headers["Retry-After"] = str(int(seconds) if float(seconds).is_integer() else seconds)
        details["retryAfterSeconds"] = int(seconds)
    if code == 500 and not details:
        details["causes"] = [{"message": "injected fault"}]
    return ApiError(code, fault.reason, fault.message, details or None, headers)


class FaultInjection:
    """Injected faults of a server (a mixin of FakeKubeApiServer)."""

    def inject(
        self,
        method: str | None = None,
        path_regex: str | None = None,
        status: int | None = None,
        *,
        times: int | None = None,
        retry_after: float | None = None,
        latency: float = 0.0,
        hang: bool = False,
        watch: bool | None = None,
        message: str | None = None,
        reason: str | None = None,
    ) -> Fault:
        """Make matching requests fail with `status`, wait `latency` seconds, or `hang`.

        A fault matches by HTTP method, a regex searched in the URL path and, if `watch` is
        given, whether the request is a watch. It applies to the next `times` matching
        requests (every one when None) until clear_faults(). A hang lasts until the client
        gives up, the faults are cleared or the server stops. `retry_after` adds a
        Retry-After header (and `details.retryAfterSeconds`), as with 429.
        """
        if status is None and not latency and not hang:
            raise ValueError("a fault needs a status, a latency or a hang")
        fault = Fault(
            method=method.upper() if method else None,
            path_regex=re.compile(path_regex) if path_regex else None,
            status=status,
            times=times,
            retry_after=retry_after,
            latency=latency,
            hang=hang,
            watch=watch,
            message=message,
            reason=reason,
        )
        return self._faults.add(fault)

    def clear_faults(self) -> None:
        """Remove every injected fault, release hanging requests, stop dropping watches."""
        with self._lock:
            self._faults.clear()
            self._release_generation += 1
            self._drop_after = None
            for watcher in self._watchers:
                watcher.remaining = None

    def _take_fault(self, method: str, path: str, is_watch: bool) -> Fault | None:
        return self._faults.take(lambda fault: fault.matches(method, path, is_watch))

    async def _delay(self, seconds: float) -> None:
        """Sleep, but give up when the server stops so that stop() need not wait for us."""
        if not await self._sleep_unless_stopped(seconds):
            raise _Dropped

    async def _hang(self, request: web.Request) -> bool:
        """Wait until released (True) or the client disconnects (False)."""
        generation = self._release_generation
        while self._release_generation == generation:
            transport = request.transport
            if transport is None or transport.is_closing():
                return False
            await asyncio.sleep(0.02)
        return self._runner is not None
