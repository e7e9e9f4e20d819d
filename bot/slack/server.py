"""Run the Bolt app: over HTTP behind a production WSGI server, or in Socket Mode.

In HTTP mode nothing of a request reaches Bolt before its Slack signature is verified here:
the body is bounded before it is read (waitress refuses larger ones before buffering them),
the timestamp must be digits within five minutes of now, the signature `v0=` and 64 hex
digits, and any failure of any kind is a 401. Bolt then only ever sees what Slack signed, so
its error handler can never act on an attacker's `response_url`.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import logging
import re
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any, Final

from slack_bolt import App
from slack_bolt.adapter.socket_mode import SocketModeHandler
from slack_bolt.adapter.wsgi import SlackRequestHandler
from waitress.server import TcpWSGIServer, create_server

log = logging.getLogger(__name__)

EVENTS_PATH: Final = "/slack/events"
# Slack's slash commands and interaction payloads are a few KiB; the largest, a modal's
# submission with its whole view, stays well under this.
MAX_BODY_BYTES: Final = 256 * 1024
# Slack sends each request whole and at once; a connection idle this long is closed, so
# half-sent requests (slowloris) cannot hold connections for waitress's default 120 s.
CHANNEL_TIMEOUT_SECONDS: Final = 10
# How often waitress looks for such idle connections (its default is 30 s).
CLEANUP_INTERVAL_SECONDS: Final = 2
# Open connections accepted at once (waitress's default is 100, which 110 slow clients
# exhausted). Idle ones cost a socket and a small buffer, no thread.
CONNECTION_LIMIT: Final = 1000
# Slack refuses timestamps more than five minutes off (slack_sdk.signature), as we do.
MAX_CLOCK_SKEW_SECONDS: Final = 5 * 60
PROBE_TIMEOUT_SECONDS: Final = 2.0

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
# Readiness of the Slack side: None when it answers, else the reason in words.
Probe = Callable[[], str | None]


class Unverified(Exception):
    """A request that does not carry Slack's valid signature; the reason is for the log."""


def verified_body(environ: dict[str, Any], signing_secret: bytes, now: float) -> bytes:
    """The request body, if Slack signed it less than five minutes ago; else Unverified."""
    length = str(environ.get("CONTENT_LENGTH") or "")
    if not length.isdigit() or len(length) > 9:
        raise Unverified("no usable Content-Length")
    if int(length) > MAX_BODY_BYTES:
        raise Unverified(f"body of {length} bytes is over {MAX_BODY_BYTES}")
    timestamp = str(environ.get("HTTP_X_SLACK_REQUEST_TIMESTAMP") or "")
    signature = str(environ.get("HTTP_X_SLACK_SIGNATURE") or "")
    if not _TIMESTAMP.fullmatch(timestamp):
        raise Unverified("the timestamp is not a number of seconds")
    if abs(now - int(timestamp)) > MAX_CLOCK_SKEW_SECONDS:
        raise Unverified("the timestamp is more than five minutes off")
    if not _SIGNATURE.fullmatch(signature):
        raise Unverified("the signature is not v0= and 64 hex digits")
    body = bytes(environ["wsgi.input"].read(int(length)))
    if len(body) != int(length):
        raise Unverified("the body is shorter than its Content-Length")
    base = b"v0:" + timestamp.encode() + b":" + body
    expected = "v0=" + hmac.new(signing_secret, base, hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        raise Unverified("the signature does not match")
    return body


def wsgi_app(app: App, signing_secret: str) -> WsgiApp:
    """The WSGI application: signed Slack requests at /slack/events, liveness at /healthz."""
    bolt = SlackRequestHandler(app, path=EVENTS_PATH)
    secret = signing_secret.encode()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO")
        if path == "/healthz":
            return _plain(start_response, "200 OK", b"ok\n")
        if path != EVENTS_PATH or environ.get("REQUEST_METHOD") != "POST":
            return _plain(start_response, "404 Not Found", b"not found\n")
        try:
            body = verified_body(environ, secret, time.time())
        except Exception as err:  # noqa: BLE001 - whatever went wrong, the request is not Slack's
            # Never the body or the headers: they are the attacker's.
            log.warning("refused an unverified request: %s", _reason(err))
            return _plain(start_response, "401 Unauthorized", b"invalid request\n")
        verified = {**environ, "wsgi.input": io.BytesIO(body), "CONTENT_LENGTH": str(len(body))}
        try:
            return bolt(verified, start_response)
        except Exception:
            log.exception("the Slack request could not be handled")
            return _plain(start_response, "500 Internal Server Error", b"error\n")

    return application


def _reason(err: Exception) -> str:
    if isinstance(err, Unverified):
        return str(err)
    return f"verification failed ({type(err).__name__})"


def _plain(start_response: Callable[..., Any], status: str, body: bytes) -> list[bytes]:
    start_response(status, [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def serve_http(
    app: App,
    signing_secret: str,
    host: str,
    port: int,
    threads: int,
    ready: Callable[[int, Probe], None],
) -> None:
    """Serve until SIGTERM or SIGINT; `ready` gets the bound port and a probe of the listener."""
    server = create_server(
        wsgi_app(app, signing_secret),
        host=host,
        port=port,
        threads=threads,
        # A burst of slash commands must queue, not be refused.
        backlog=1024,
        connection_limit=CONNECTION_LIMIT,
        channel_timeout=CHANNEL_TIMEOUT_SECONDS,
        cleanup_interval=CLEANUP_INTERVAL_SECONDS,
        # waitress answers 413 itself, before buffering a body this large.
        max_request_body_size=MAX_BODY_BYTES,
        max_request_header_size=64 * 1024,
        ident="fluxbot",
        # select() cannot watch a descriptor past FD_SETSIZE (1024): with the watch
        # connections of a large fleet plus a full connection limit, waitress's default
        # select loop died with "filedescriptor out of range". poll() has no such ceiling.
        asyncore_use_poll=True,
    )
    # One host, one port: waitress returns a single TCP server, whose port we report.
    assert isinstance(server, TcpWSGIServer)
    bound = int(server.getsockname()[1])
    _on_signals(server.close)
    log.info("listening for Slack on http://%s:%d%s", host, bound, EVENTS_PATH)
    ready(bound, _http_probe(host, bound))
    try:
        server.run()
    except OSError:
        # close() from the signal handler ends run() with a closed-socket error.
        log.debug("server closed")


def _http_probe(host: str, port: int) -> Probe:
    """Ask the Slack listener itself for /healthz: it accepts, parses and answers."""
    target = "127.0.0.1" if host in ("0.0.0.0", "", "::") else host  # noqa: S104 - the wildcard
    url = f"http://{target}:{port}/healthz"
    # Never through a proxy: this is our own port.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def probe() -> str | None:
        try:
            with opener.open(url, timeout=PROBE_TIMEOUT_SECONDS) as response:
                if response.status == 200:
                    return None
                return f"Slack: the HTTP listener answered {response.status}"
        except Exception as err:  # noqa: BLE001 - any failure means not ready, in words
            return f"Slack: the HTTP listener does not answer ({err})"

    return probe


def serve_socket_mode(app: App, app_token: str, ready: Callable[[int, Probe], None]) -> None:
    """Connect to Slack over a WebSocket (no public URL needed) until SIGTERM or SIGINT."""
    handler = SocketModeHandler(app, app_token)
    stop = threading.Event()
    _on_signals(stop.set)
    handler.connect()
    log.info("connected to Slack in Socket Mode")

    def probe() -> str | None:
        if handler.client.is_connected():
            return None
        return "Slack: the Socket Mode connection is down (reconnecting)"

    ready(0, probe)
    stop.wait()
    handler.close()


def _on_signals(callback: Callable[[], None]) -> None:
    def handle(signum: int, _frame: object) -> None:
        log.info("received %s, shutting down", signal.Signals(signum).name)
        callback()

    signal.signal(signal.SIGTERM, handle)
    signal.signal(signal.SIGINT, handle)
