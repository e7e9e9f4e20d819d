"""Watches: event streams, resumption by resourceVersion, 410 Expired, bookmarks, drops."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from .discovery import _Request
from .encoding import _dumps
from .errors import ApiError, status_body
from .resources import Resource
from .selectors import FieldSelector, LabelSelector
from .store import _Event, _in_version, _with_rv

_CLOSE = "close"
_ABORT = "abort"


@dataclass(eq=False)
class _Watcher:
    resource: Resource
    version: str
    namespace: str | None
    labels: LabelSelector
    fields: FieldSelector
    seen_rv: int = 0
    remaining: int | None = None
    queue: asyncio.Queue[Any] = field(default_factory=asyncio.Queue)

    def convert(self, event: _Event) -> tuple[str, dict[str, Any]] | None:
        """The event this watcher should see, as kube-apiserver's cacher decides it."""
        if event.key != self.resource.key:
            return None
        if self.namespace is not None and event.namespace != self.namespace:
            return None
        cur = event.type != "DELETED" and self._selects(event.obj)
        old = event.prev is not None and self._selects(event.prev)
        if cur and not old:
            return ("ADDED", event.obj)
        if cur and old:
            return ("MODIFIED", event.obj)
        if old and event.prev is not None:
            gone = event.obj if event.type == "DELETED" else _with_rv(event.prev, event.rv)
            return ("DELETED", gone)
        return None

    def _selects(self, obj: Mapping[str, Any]) -> bool:
        return self.labels.matches(obj["metadata"].get("labels")) and self.fields.matches(obj)


async def _finish(response: web.StreamResponse) -> web.StreamResponse:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


class Watches:
    """Open watch streams of a server (a mixin of FakeKubeApiServer)."""

    def drop_watches(self, *, abort: bool = False) -> int:
        """End every open watch stream now; returns how many.

        By default a stream ends cleanly, as when the server closes a watch; with `abort` the
        connection is cut mid-stream and the client sees a protocol error.
        """
        with self._lock:
            for watcher in self._watchers:
                self._loop.call_soon(watcher.queue.put_nowait, _ABORT if abort else _CLOSE)
            return len(self._watchers)

    def drop_watches_after(self, n_events: int) -> None:
        """End each open and future watch stream after it sends `n_events` more events."""
        with self._lock:
            self._drop_after = n_events
            for watcher in self._watchers:
                watcher.remaining = n_events

    @property
    def open_watches(self) -> int:
        """How many watch streams are open now."""
        with self._lock:
            return len(self._watchers)

    def wait_for_watches(self, count: int = 1, timeout: float = 5.0) -> None:
        """Block until at least `count` watches are open; TimeoutError otherwise."""
        deadline = time.monotonic() + timeout
        event = threading.Event()
        while self.open_watches < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.open_watches} watches open, wanted {count}")
            event.wait(0.005)

    async def _serve_watch(
        self, request: web.Request, target: _Request, query: Mapping[str, str]
    ) -> web.StreamResponse:
        res = target.resource
        labels, fields = self._selectors(target, query)
        rv_param = query.get("resourceVersion") or ""
        if rv_param not in ("", "0") and not rv_param.isdigit():
            raise ApiError(400, "BadRequest", f"invalid resource version: {rv_param!r}")
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        except ValueError:
            raise ApiError(400, "BadRequest", "invalid timeoutSeconds") from None
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        watcher = _Watcher(res, target.version, target.namespace, labels, fields)
        backlog: list[tuple[str, dict[str, Any]]] = []
        expired: dict[str, Any] | None = None
        with self._lock:
            watcher.seen_rv = self._rv
            watcher.remaining = self._drop_after
            if rv_param in ("", "0"):
                backlog = [("ADDED", s.obj) for s in self._matching(target, query)]
            elif int(rv_param) < self._compacted_rv:
                expired = status_body(
                    410,
                    "Expired",
                    f"too old resource version: {rv_param} ({self._compacted_rv})",
                )
            else:
                since = int(rv_param)
                for event in self._history:
                    if event.rv > since and (converted := watcher.convert(event)):
                        backlog.append(converted)
            if expired is None:
                self._watchers.add(watcher)
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout if timeout else None
        next_bookmark = loop.time() + self.bookmark_interval
        try:
            await response.prepare(request)
            if expired is not None:
                await response.write(_dumps({"type": "ERROR", "object": expired}) + b"\n")
                await response.write_eof()
                return response
            for kind, obj in backlog:
                if not await self._send(response, watcher, kind, obj):
                    return await _finish(response)
            while True:
                now = loop.time()
                if deadline is not None and now >= deadline:
                    break
                transport = request.transport
                if transport is None or transport.is_closing():
                    return response
                if bookmarks and now >= next_bookmark:
                    mark = {
                        "apiVersion": res.api_version(target.version),
                        "kind": res.kind,
                        "metadata": {"resourceVersion": str(watcher.seen_rv)},
                    }
                    await response.write(_dumps({"type": "BOOKMARK", "object": mark}) + b"\n")
                    next_bookmark = now + self.bookmark_interval
                wait = 0.25
                if deadline is not None:
                    wait = min(wait, deadline - now)
                if bookmarks:
                    wait = min(wait, next_bookmark - now)
                try:
                    item = await asyncio.wait_for(watcher.queue.get(), max(wait, 0.001))
                except TimeoutError:
                    continue
                if item == _CLOSE:
                    break
                if item == _ABORT:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                watcher.seen_rv = max(watcher.seen_rv, item.rv)
                converted = watcher.convert(item)
                if converted is None:
                    continue
                if not await self._send(response, watcher, *converted, event=item):
                    break
            return await _finish(response)
        except (ConnectionError, RuntimeError):
            # The client went away mid-stream; there is nobody left to tell.
            return response
        finally:
            with self._lock:
                self._watchers.discard(watcher)

    async def _send(
        self,
        response: web.StreamResponse,
        watcher: _Watcher,
        kind: str,
        obj: dict[str, Any],
        event: _Event | None = None,
    ) -> bool:
        """Write one event; False when the stream is to be cut after it."""
        res = watcher.resource
        cache_key = (kind, watcher.version)
        line = event.cache.get(cache_key) if event is not None and obj is event.obj else None
        if line is None:
            line = _dumps({"type": kind, "object": _in_version(obj, res, watcher.version)}) + b"\n"
            if event is not None and obj is event.obj:
                event.cache[cache_key] = line
        piece = self.event_piece_bytes
        if piece:
            # A slow or congested link: the event arrives in pieces, each its own HTTP chunk
            # and TCP segment, so a chunk's size line and the event's JSON straddle reads.
            for start in range(0, len(line), piece):
                await response.write(line[start : start + piece])
                await asyncio.sleep(0.002)
        else:
            await response.write(line)
        if watcher.remaining is not None:
            watcher.remaining -= 1
            if watcher.remaining <= 0:
                return False
        return True
