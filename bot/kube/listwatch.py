"""List, then watch from the listed resourceVersion, until told to stop: the one loop fluxbot
follows a collection with (the watch cache's Flux kinds, the ConfigMap history's shards).

A dropped stream is resumed from the last resourceVersion seen, once, before it counts as a
failure; 410 Gone (the server no longer has that version) relists at once; any other failure is
reported, waited out with exponential backoff and jitter, and followed by a relist; a relist is
also due every `resync_seconds`.

One `WatchLoop` thread follows many collections (a cluster's 15 Flux kinds): their streams are
read as they become readable (bot/kube/watchstream.py), and the blocking steps (a listing, the
request that opens a watch) run one after the other in the same thread, each bounded by its
timeouts. A ListWatch on its own (`run`) is a loop of one.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import selectors
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any

import orjson
from kubernetes.client.exceptions import ApiException

from bot.kube.watchstream import WatchStream, timed_out

log = logging.getLogger(__name__)

# The longest the loop sleeps with nothing due: it looks at the stop flag at least this often
# even if a wake-up were lost.
_IDLE_CHECK_SECONDS = 30.0


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


class ListWatch:
    """Keep one collection current: `relist` lists it (and returns the list's resourceVersion),
    `list_call` is the API's list function the watch streams from, `apply` takes one raw event
    and returns the resourceVersion to resume from, `failed` reports a failure before the
    backoff."""

    def __init__(
        self,
        *,
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
        self._resumes_left = 1
        self._resource_version: str | None = None
        self._listed_at = 0.0
        # When the next step (a relist, a watch request) may run: now, or after a backoff.
        self.due = 0.0
        self.stream: WatchStream | None = None
        self._loop: WatchLoop | None = None

    def interrupt(self) -> None:
        """Wake the loop following this collection (to see its stop flag)."""
        if self._loop is not None:
            self._loop.wake()

    def run(self, resource_version: str | None = None) -> None:
        """List (unless `resource_version` is already listed), then watch; recover from every
        failure until `stop` is set."""
        if resource_version is not None:
            self._resource_version = resource_version
            self._listed_at = time.monotonic()
        WatchLoop([self], self._stop).run()

    # -- the steps a WatchLoop drives --

    def advance(self) -> None:
        """With no stream open: relist if due, then open the watch (both block)."""
        watching = False
        try:
            resync_due = self._resync > 0 and time.monotonic() - self._listed_at > self._resync
            if self._resource_version is None or resync_due:
                self._resource_version = self._relist()
                self._listed_at = time.monotonic()
                self._backoff.reset()
            if self._resource_version is None:
                return  # listed nothing to resume from: list again
            watching = True
            self.stream = self._open(self._resource_version)
        except Exception as err:  # noqa: BLE001 - every failure is retried
            self._recover(err, watching=watching)

    def read(self) -> None:
        """Apply every event that has arrived on the open stream."""
        stream = self.stream
        assert stream is not None
        try:
            for event in stream.read_events():
                if self._stop.is_set():
                    break
                if isinstance(event, dict) and event.get("type") == "ERROR":
                    raise _status_error(event.get("object"))
                self._resource_version = self._apply(event, self._resource_version or "")
                # The stream works: a later cut may again be resumed at once.
                self._resumes_left = 1
            else:
                if stream.cut is not None:
                    raise stream.cut
                if not stream.ended:
                    return
                # The server ended the watch (its timeout): watch again, or relist if due.
                self._resumes_left = 1
        except Exception as err:  # noqa: BLE001 - every failure is retried
            self._close_stream()
            self._recover(err, watching=True)
            return
        self._close_stream()

    def silent(self) -> None:
        """The open stream said nothing for longer than its read timeout: it is dead."""
        stream = self.stream
        assert stream is not None
        self._close_stream()
        self._recover(timed_out(stream, "watch"), watching=True)

    def close(self) -> None:
        """Close the open stream, if any."""
        self._close_stream()

    def _open(self, resource_version: str) -> WatchStream:
        until_resync = float("inf")
        if self._resync > 0:
            until_resync = self._listed_at + self._resync - time.monotonic()
        # The server ends the watch in time for the next resync.
        seconds = max(1, int(min(self._watch_timeout, until_resync)))
        # A silent, half-dead connection must not hang the watcher forever.
        read_timeout = seconds + 30
        response = self._list_call(
            watch=True,
            resource_version=resource_version,
            timeout_seconds=seconds,
            allow_watch_bookmarks=True,
            _preload_content=False,
            _request_timeout=(self._connect_timeout, read_timeout),
        )
        try:
            return WatchStream(response, read_timeout)
        except BaseException:
            response.close()
            response.release_conn()
            raise

    def _close_stream(self) -> None:
        stream, self.stream = self.stream, None
        if stream is not None:
            if self._loop is not None:
                self._loop.forget(stream)
            stream.close()

    def _recover(self, err: BaseException, *, watching: bool) -> None:
        if self._stop.is_set():
            return
        if isinstance(err, ApiException):
            if err.status == 410:
                # Too old: the server no longer has our history. Relist now.
                self._resource_version = None
                return
            self._fail(err)
            return
        if watching and self._resumes_left > 0:
            # A stream cut mid-way: resume from where we were at once, before calling
            # it a failure. A second failure in a row goes the slow way.
            self._resumes_left -= 1
            return
        self._fail(err)

    def _fail(self, err: BaseException) -> None:
        self._resource_version = None
        self._failed(err)
        self.due = time.monotonic() + self._backoff.next()


def _status_error(status: object) -> Exception:
    """The ApiException of an ERROR event, as kubernetes/watch/watch.py raises it (with the
    Status as its body, so the error's words carry the server's message)."""
    code = status.get("code") if isinstance(status, dict) else None
    if not isinstance(status, dict) or not isinstance(code, int):
        return ValueError(f"watch ERROR event without a status code: {status!r:.200}")
    err = ApiException(status=code, reason=f"{status.get('reason')}: {status.get('message')}")
    err.body = orjson.dumps(status).decode()
    return err


class WatchLoop:
    """One thread following many ListWatches: steps the idle ones, reads the readable ones."""

    def __init__(self, members: Iterable[ListWatch], stop: threading.Event) -> None:
        self._members = list(members)
        self._stop = stop
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._selector.register(self._wake_r, selectors.EVENT_READ, None)
        # Guards the wake-up pipe: once the loop has closed it, its descriptor numbers may
        # belong to another file, which a late wake() must not write into.
        self._pipe_lock = threading.Lock()
        self._pipe_open = True
        for member in self._members:
            member._loop = self

    def wake(self) -> None:
        """Make the loop look at its stop flag now (from any thread)."""
        with self._pipe_lock:
            if not self._pipe_open:
                return  # the loop is gone
            # A full pipe is a loop already woken.
            with contextlib.suppress(BlockingIOError):
                os.write(self._wake_w, b"\0")

    def forget(self, stream: WatchStream) -> None:
        """Stop waiting on `stream` (it is being closed)."""
        with contextlib.suppress(KeyError):
            self._selector.unregister(stream.fd)

    def run(self) -> None:
        """Follow every member until `stop` is set, then close their streams."""
        try:
            while not self._stop.is_set():
                try:
                    self._step_idle()
                    if self._stop.is_set():
                        break
                    self._wait_and_read()
                except Exception:  # a bug here must not end the cluster's watching for good
                    log.exception("watch loop failed; going on in a second")
                    self._stop.wait(1.0)
        finally:
            for member in self._members:
                member.close()
            self._selector.close()
            with self._pipe_lock:
                self._pipe_open = False
                os.close(self._wake_r)
                os.close(self._wake_w)

    def _step_idle(self) -> None:
        for member in self._members:
            if self._stop.is_set():
                return
            if member.stream is None and member.due <= time.monotonic():
                member.advance()
                if member.stream is not None:
                    self._selector.register(member.stream.fd, selectors.EVENT_READ, member)

    def _wait_and_read(self) -> None:
        now = time.monotonic()
        wake_at = now + _IDLE_CHECK_SECONDS
        buffered = []
        for member in self._members:
            if member.stream is None:
                wake_at = min(wake_at, member.due)
            elif member.stream.has_buffered:
                buffered.append(member)
            else:
                wake_at = min(wake_at, member.stream.deadline)
        ready = self._selector.select(0.0 if buffered else max(0.0, wake_at - now))
        for key, _events in ready:
            if key.data is None:
                self._drain_wake()
            elif key.data.stream is not None:
                key.data.read()
        for member in buffered:
            if member.stream is not None:
                member.read()
        now = time.monotonic()
        for member in self._members:
            if member.stream is not None and member.stream.deadline <= now:
                member.silent()

    def _drain_wake(self) -> None:
        try:
            while os.read(self._wake_r, 512):
                pass
        except BlockingIOError:
            pass
