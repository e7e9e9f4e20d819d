"""List, then watch from the listed resourceVersion, until told to stop: the one loop fluxbot
follows a collection with (the watch cache's Flux kinds, the ConfigMap history's shards).

A dropped stream is resumed from the last resourceVersion seen, once, before it counts as a
failure; 410 Gone (the server no longer has that version) relists at once; any other failure is
reported, waited out with exponential backoff and jitter, and followed by a relist; a relist is
also due every `resync_seconds`.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException


class Backoff:
    """Exponential backoff with jitter, so a fleet of watchers does not retry in lockstep."""

    def __init__(self, initial: float, maximum: float) -> None:
        self.initial = initial
        self.maximum = maximum
        self.failures = 0

    def next(self) -> float:
        """Seconds to wait before the next attempt."""
        ceiling = min(self.maximum, self.initial * 2.0**self.failures)
        self.failures += 1
        return ceiling * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not cryptography

    def reset(self) -> None:
        """Forget past failures after a success."""
        self.failures = 0


class _Watch(k8s_watch.Watch):
    """The client's watch stream, without the setup fluxbot never needs.

    Upstream builds a fresh ApiClient (a Configuration copy, which reads the whole environment,
    and a connection pool) for every Watch, used only to raise the ApiException of a
    non-2xx answer, and inspects the listing function's signature on every stream to find
    the model to deserialize into and whether it is a log (`follow`). A fleet of 100
    clusters runs 1,500 watches: this one reuses the cluster's ApiClient, never
    deserializes (events stay the JSON the server sent) and always watches.
    """

    def __init__(self, api_client: Any) -> None:
        # The attributes kubernetes/watch/watch.py `Watch.__init__` sets, minus its ApiClient.
        self._raw_return_type = "object"
        self._stop = False
        self._api_client = api_client
        self.resource_version = None

    def get_watch_argument_name(self, func: Any) -> str:
        """Always `watch`: fluxbot streams collections, never logs."""
        return "watch"


class ListWatch:
    """Keep one collection current: `relist` lists it (and returns the list's resourceVersion),
    `list_call` is the API's list function the watch streams from, `apply` takes one raw event
    and returns the resourceVersion to resume from, `failed` reports a failure before the
    backoff. `api_client` is the cluster's, for the errors of a watch request."""

    def __init__(
        self,
        *,
        api_client: Any,
        relist: Callable[[], str | None],
        list_call: Callable[..., Any],
        apply: Callable[[Any, str], str],
        failed: Callable[[BaseException], None],
        stop: threading.Event,
        backoff: Backoff,
        watch_timeout_seconds: float,
        connect_timeout: float,
        resync_seconds: float = 0,
    ) -> None:
        self._relist = relist
        self._list_call = list_call
        self._apply = apply
        self._failed = failed
        self._stop = stop
        self._backoff = backoff
        self._watch_timeout = watch_timeout_seconds
        self._connect_timeout = connect_timeout
        self._resync = resync_seconds
        self._watch: Any = _Watch(api_client)
        self._resumes_left = 1

    def interrupt(self) -> None:
        """Unblock a watch stream that is waiting for the next event."""
        self._watch.stop()

    def run(self, resource_version: str | None = None) -> None:
        """List (unless `resource_version` is already listed), then watch; recover from every
        failure until `stop` is set."""
        listed_at = time.monotonic() if resource_version is not None else 0.0
        while not self._stop.is_set():
            watching = False
            try:
                resync_due = self._resync > 0 and time.monotonic() - listed_at > self._resync
                if resource_version is None or resync_due:
                    resource_version = self._relist()
                    listed_at = time.monotonic()
                    self._backoff.reset()
                if resource_version is None:
                    continue  # listed nothing to resume from: list again
                watching = True
                until_resync = float("inf")
                if self._resync > 0:
                    until_resync = listed_at + self._resync - time.monotonic()
                resource_version = self._watch_from(resource_version, until_resync)
                self._resumes_left = 1
            except ApiException as err:
                if self._stop.is_set():
                    break
                if err.status == 410:
                    # Too old: the server no longer has our history. Relist now.
                    resource_version = None
                    continue
                self._fail(err)
                resource_version = None
            except Exception as err:  # noqa: BLE001 - every failure is retried
                if self._stop.is_set():
                    break
                if watching and self._resumes_left > 0:
                    # A stream cut mid-way: resume from where we were at once, before calling
                    # it a failure. A second failure in a row goes the slow way.
                    self._resumes_left -= 1
                    continue
                self._fail(err)
                resource_version = None

    def _fail(self, err: BaseException) -> None:
        self._failed(err)
        self._stop.wait(self._backoff.next())

    def _watch_from(self, resource_version: str, until_resync: float) -> str:
        # The server ends the watch in time for the next resync.
        seconds = max(1, int(min(self._watch_timeout, until_resync)))
        stream: Iterable[Any] = self._watch.stream(
            self._list_call,
            resource_version=resource_version,
            timeout_seconds=seconds,
            allow_watch_bookmarks=True,
            deserialize=False,
            # A silent, half-dead connection must not hang the watcher forever.
            _request_timeout=(self._connect_timeout, seconds + 30),
        )
        for event in stream:
            if self._stop.is_set():
                self._watch.stop()
                break
            resource_version = self._apply(event, resource_version)
            # The stream works: a later cut may again be resumed at once.
            self._resumes_left = 1
        return resource_version
