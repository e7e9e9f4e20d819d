"""Liveness, readiness and metrics over HTTP, on a port of their own.

`/healthz` answers 200 while the process can serve HTTP at all (Kubernetes' liveness probe,
the image's HEALTHCHECK). `/readyz` answers 200 when the readiness callback reports no
problem, else 503 with one line per reason. `/metrics` is the Prometheus text exposition.
The server runs on daemon threads from the standard library: it needs no framework, and it
keeps answering while the Slack adapter is busy or still connecting.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Final

from bot.domain.fleet import CacheState, ClusterTarget, Freshness
from bot.observability.metrics import CONTENT_TYPE, METRICS, Metrics

log = logging.getLogger(__name__)

Readiness = Callable[[], list[str]]

_TEXT: Final = "text/plain; charset=utf-8"


class HealthServer:
    """`/healthz`, `/readyz` and `/metrics` on `host:port` (port 0 picks a free one)."""

    def __init__(
        self,
        host: str,
        port: int,
        readiness: Readiness,
        *,
        metrics: Metrics = METRICS,
        notices: Callable[[], list[str]] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self._readiness = readiness
        # Things an operator should know that do not make fluxbot unready (a history file
        # moved aside, say): listed under /readyz's first line either way.
        self._notices = notices or (lambda: [])
        self._metrics = metrics
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> int:
        """Listen and serve in the background; returns the bound port."""
        if self._server is not None:
            return int(self._server.server_address[1])
        server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name="health-server", daemon=True
        )
        self._thread.start()
        bound = int(server.server_address[1])
        log.info("health and metrics on http://%s:%d (/healthz /readyz /metrics)", self.host, bound)
        return bound

    def stop(self) -> None:
        """Stop serving and close the socket."""
        server, self._server = self._server, None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> HealthServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- what the endpoints answer: (status, content type, body) --

    def healthz(self) -> tuple[int, str, bytes]:
        """Alive: this thread could answer."""
        return 200, _TEXT, b"ok\n"

    def readyz(self) -> tuple[int, str, bytes]:
        """Ready when the readiness callback reports no reason not to be."""
        try:
            reasons = self._readiness()
        except Exception as err:
            # A broken check means "not ready", and says so.
            log.exception("readiness check failed")
            reasons = [f"readiness check failed: {type(err).__name__}"]
        notices = self._notices()
        if not reasons:
            return 200, _TEXT, ("\n".join(["ok", *notices]) + "\n").encode()
        return 503, _TEXT, ("\n".join([*reasons, *notices]) + "\n").encode()

    def metrics(self) -> tuple[int, str, bytes]:
        """The Prometheus text exposition."""
        return 200, CONTENT_TYPE, self._metrics.exposition()


def _handler(owner: HealthServer) -> type[BaseHTTPRequestHandler]:
    routes: dict[str, Callable[[], tuple[int, str, bytes]]] = {
        "/healthz": owner.healthz,
        "/livez": owner.healthz,
        "/readyz": owner.readyz,
        "/metrics": owner.metrics,
    }

    class Handler(BaseHTTPRequestHandler):
        server_version = "fluxbot-health"
        sys_version = ""

        def do_GET(self) -> None:
            self._answer(send_body=True)

        def do_HEAD(self) -> None:
            self._answer(send_body=False)

        def _answer(self, *, send_body: bool) -> None:
            route = routes.get(self.path.split("?", 1)[0])
            if route is None:
                status, content_type, body = 404, _TEXT, b"not found\n"
            else:
                status, content_type, body = route()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if send_body:
                self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            # Probes arrive every few seconds: keep them out of the log unless debugging.
            log.debug("health %s - " + format, self.address_string(), *args)

    return Handler


def cache_readiness(freshness: Mapping[ClusterTarget, Freshness]) -> list[str]:
    """Why the fleet is not ready yet: one reason per cluster whose first sync is not over.

    A live cluster is ready, and so is a stale one: its problem (unreachable, access denied)
    is reported in every answer, and restarting fluxbot would not fix it.
    """
    return [
        f"cluster {target.environment}/{target.cluster}: still syncing"
        for target, fresh in freshness.items()
        if fresh.state is CacheState.SYNCING
    ]


class ProbedReadiness:
    """A readiness check that asks a probe each time, once one is attached (until then: not)."""

    def __init__(self, reason: str) -> None:
        self._reason = reason
        self._probe: Callable[[], str | None] | None = None

    def attach(self, probe: Callable[[], str | None]) -> None:
        """From now on, ready when `probe` returns None (else its words are the reason)."""
        self._probe = probe

    def __call__(self) -> list[str]:
        probe = self._probe
        if probe is None:
            return [self._reason]
        problem = probe()
        return [] if problem is None else [problem]


def all_of(*checks: Readiness) -> Readiness:
    """A readiness check that is ready when every one of `checks` is, with all reasons."""

    def check() -> list[str]:
        return [reason for each in checks for reason in each()]

    return check
