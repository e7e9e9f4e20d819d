"""What every fake server shares: one event loop thread, 127.0.0.1, a request log, faults.

A fake (`FakeKubeApiServer`, `FakeSlack`) subclasses `LoopbackServer`: it adds its routes in
`_routes(app)` and may close its long-lived connections in `_before_stop()`; start/stop, the
port and URL, and the context manager come from here. Every fake of a process runs on the
same asyncio loop on one daemon thread (`shared_loop()`), so a fleet of twenty clusters and a
Slack workspace cost one thread. Tests drive the fakes synchronously from any thread but the
loop's own.

`RequestLog` keeps what a fake was asked, for assertions about what a client did; `Faults`
holds injected failures that match requests and count the ones they affected.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, Generic, Protocol, Self, TypeVar

from aiohttp import web

T = TypeVar("T")
R = TypeVar("R")


class EventLoopThread:
    """One asyncio event loop on one daemon thread, hosting any number of fake servers."""

    def __init__(self, name: str = "fake-servers") -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=name, daemon=True)
        self._thread.start()

    @property
    def in_loop_thread(self) -> bool:
        """True when called from the loop's own thread (where blocking would deadlock)."""
        return threading.current_thread() is self._thread

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 30.0) -> T:
        """Run a coroutine on the loop and wait for its result."""
        if self.in_loop_thread:
            coro.close()
            raise RuntimeError("blocking call from the fake servers' own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a plain callback on the loop from any thread, in FIFO order."""
        self.loop.call_soon_threadsafe(fn, *args)


_shared_loop: EventLoopThread | None = None
_shared_loop_lock = threading.Lock()


def shared_loop() -> EventLoopThread:
    """The process-wide loop thread that servers use unless given another."""
    global _shared_loop  # noqa: PLW0603
    with _shared_loop_lock:
        if _shared_loop is None:
            _shared_loop = EventLoopThread()
        return _shared_loop


def bind_loopback(port: int) -> socket.socket:
    """A non-blocking TCP socket bound to 127.0.0.1:`port` (0: any free port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # SO_REUSEADDR lets a restart bind the same port while old connections sit in TIME_WAIT.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
    except OSError:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


class LoopbackServer:
    """An aiohttp server on 127.0.0.1 that keeps its port (and its state) across stop/start."""

    what = "the fake server"  # how errors name it
    client_max_size = 16 * 1024 * 1024
    backlog = 128

    def __init__(
        self,
        *,
        port: int = 0,
        loop: EventLoopThread | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._port = port
        self._loop = loop or shared_loop()
        self._runner: web.AppRunner | None = None
        # Serves HTTPS with this server context when given (see tests/fakes/tls.py).
        self._ssl_context = ssl_context

    # -- what a fake adds --

    def _routes(self, app: web.Application) -> None:
        """Add the fake's routes to `app`."""
        raise NotImplementedError

    async def _before_stop(self) -> None:
        """Close long-lived connections (watches, WebSockets) before the listener goes."""

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The TCP port; fixed by the first start() and reused by later ones."""
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT` (`https` when serving TLS), without a trailing slash."""
        if not self._port:
            raise RuntimeError(f"{self.what} has no port until it is started")
        scheme = "https" if self._ssl_context is not None else "http"
        return f"{scheme}://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the server accepts connections now."""
        return self._runner is not None

    def start(self) -> Self:
        """Listen (again) on the server's port; state from before a stop() is kept."""
        if not self.running:
            self._loop.run(self._astart())
        return self

    def stop(self) -> None:
        """Close open streams and connections and stop listening; connecting is refused."""
        if self.running:
            self._loop.run(self._astop())

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        if self._runner is not None:
            return
        sock = bind_loopback(self._port)
        self._port = sock.getsockname()[1]
        app = web.Application(client_max_size=self.client_max_size)
        self._routes(app)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.SockSite(runner, sock, backlog=self.backlog, ssl_context=self._ssl_context)
        await site.start()
        self._runner = runner

    async def _astop(self) -> None:
        runner, self._runner = self._runner, None
        await self._before_stop()
        if runner is not None:
            await runner.cleanup()

    async def _sleep_unless_stopped(self, seconds: float) -> bool:
        """Sleep `seconds` (injected latency); False as soon as the server stops."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            if self._runner is None:
                return False
            await asyncio.sleep(min(left, 0.02))
        return True


class RequestLog(Generic[R]):
    """What a fake was asked, oldest first; thread-safe."""

    def __init__(self) -> None:
        self._records: list[R] = []
        self._lock = threading.Lock()

    def append(self, record: R) -> None:
        """Log one request."""
        with self._lock:
            self._records.append(record)

    def records(self, keep: Callable[[R], bool] | None = None) -> list[R]:
        """The logged requests, optionally those `keep` accepts."""
        with self._lock:
            records = list(self._records)
        return [r for r in records if keep is None or keep(r)]

    def clear(self) -> None:
        """Forget every logged request."""
        with self._lock:
            self._records.clear()

    def __iter__(self) -> Iterator[R]:
        return iter(self.records())


class Injected(Protocol):
    """An injected fault as `Faults` sees it: how often it hit, and whether it is used up."""

    hits: int

    @property
    def spent(self) -> bool:
        """Whether it has affected as many requests as it was meant to."""
        ...


F = TypeVar("F", bound=Injected)


class Faults(Generic[F]):
    """Injected faults in the order they were added; the first that matches a request wins."""

    def __init__(self) -> None:
        self._faults: list[F] = []
        self._lock = threading.Lock()

    def add(self, fault: F) -> F:
        """Inject one more fault."""
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, matches: Callable[[F], bool]) -> F | None:
        """The first unspent fault `matches` accepts, counted as having hit; else None."""
        with self._lock:
            for fault in self._faults:
                if not fault.spent and matches(fault):
                    fault.hits += 1
                    return fault
        return None

    def clear(self) -> None:
        """Remove every fault."""
        with self._lock:
            self._faults.clear()
