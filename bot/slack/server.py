"""Run the Bolt app: over HTTP behind a production WSGI server, or in Socket Mode."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Iterable
from typing import Any, Final

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import TcpWSGIServer, create_server

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/slack/events"


def wsgi_app(app: App) -> Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]:
    """The WSGI application: Slack's requests at /slack/events, a liveness probe at /healthz."""
    bolt = SlackRequestHandler(app, path=EVENTS_PATH)

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"ok\n"]
        return bolt(environ, start_response)

    return application


def serve_http(app: App, host: str, port: int, threads: int, ready: Callable[[int], None]) -> None:
    """Serve until SIGTERM or SIGINT; `ready` gets the bound port once listening."""
    server = create_server(
        wsgi_app(app),
        host=host,
        port=port,
        threads=threads,
        # A burst of slash commands must queue, not be refused.
        backlog=1024,
        ident="fluxbot",
    )
    # One host, one port: waitress returns a single TCP server, whose port we report.
    assert isinstance(server, TcpWSGIServer)
    bound = int(server.getsockname()[1])
    _on_signals(server.close)
    log.info("listening for Slack on http://%s:%d%s", host, bound, EVENTS_PATH)
    ready(bound)
    try:
        server.run()
    except OSError:
        # close() from the signal handler ends run() with a closed-socket error.
        log.debug("server closed")


def serve_socket_mode(app: App, app_token: str, ready: Callable[[int], None]) -> None:
    """Connect to Slack over a WebSocket (no public URL needed) until SIGTERM or SIGINT."""
    handler = SocketModeHandler(app, app_token)
    stop = threading.Event()
    _on_signals(stop.set)
    handler.connect()
    log.info("connected to Slack in Socket Mode")
    ready(0)
    stop.wait()
    handler.close()


def _on_signals(callback: Callable[[], None]) -> None:
    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        callback()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
