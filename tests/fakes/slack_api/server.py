"""A fake Slack workspace, assembled from its subsystems.

A fake Slack Web API and response_url endpoint, real enough for slack_sdk and slack_bolt.

`FakeSlack` speaks plain HTTP on 127.0.0.1: the Web API methods the bot uses under `/api/`
(what `WebClient(base_url=fake.api_url)` calls) and response URLs under `/commands/` and
`/actions/` (what `respond()` / `WebhookClient` post to). Like Slack, API errors come back as
HTTP 200 with `{"ok": false, "error": ...}`, except rate limits (429 with `Retry-After`) and
injected faults. Every message, ephemeral, update, response_url post and view is checked
against Block Kit's limits, so a renderer that would be rejected in production is rejected
here with the same error code and a `[ERROR] ... [json-pointer:...]` explanation.

Socket Mode is played too: `apps.connections.open` (app-level token only) hands out a one-time
`ws://127.0.0.1:PORT/link/?ticket=...` URL on the same server; the WebSocket there says
`hello`, then carries the envelopes a test pushes with `send_slash_command()` /
`send_interaction()` (each to exactly one connection, round-robin, as Slack does) and records
the app's acks with their delay. `disconnect_sockets()` asks the app to reconnect. slack_sdk's
built-in client talks plain (unencrypted) WebSocket to any port but 443, so no TLS is needed.

Servers run on the process-wide loop of the loopback-server base (tests/fakes/loopback.py),
one daemon thread for every fake. The Python API (seeding, faults, inspection, `wait_for*`)
is thread-safe and may be called from any thread but that loop's.

One module per job: web_api.py (the `/api/` endpoint), directory.py (users, groups,
channels), messages.py (chat.*), views.py (triggers and modals), response_urls.py,
socket_mode.py, files.py (uploads), ratelimit.py (rate limits and injected faults),
blockkit.py (Block Kit limits) and records.py (what a test inspects). The Web API methods
(`_chat_*`, `_views_*`, ...) run with the fake's lock held.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from aiohttp import web

from ..loopback import EventLoopThread, Faults, LoopbackServer, RequestLog
from .directory import Directory
from .files import Files
from .messages import Messages
from .ratelimit import RateLimits, _Bucket, _Fault
from .records import AckRecord, CallRecord, EnvelopeRecord, ResponseRecord
from .response_urls import ResponseUrls, _ResponseUrl
from .socket_mode import SOCKET_PATH, SocketMode, _Socket
from .views import Views, _Trigger
from .web_api import WebApi

T = TypeVar("T")

DEFAULT_SIGNING_SECRET = "fake-signing-secret"


class FakeSlack(
    LoopbackServer,
    WebApi,
    Directory,
    Messages,
    Views,
    ResponseUrls,
    SocketMode,
    Files,
    RateLimits,
):
    """A fake Slack workspace: Web API, response URLs and triggers, on 127.0.0.1."""

    what = "the fake Slack"
    client_max_size = 16 * 1024 * 1024
    backlog = 512

    def __init__(
        self,
        bot_token: str = "xoxb-test",
        app_token: str = "xapp-test",
        signing_secret: str = DEFAULT_SIGNING_SECRET,
        team_id: str = "T0FAKE",
        bot_user_id: str = "U0BOT",
        *,
        bot_id: str = "B0BOT",
        bot_name: str = "fluxbot",
        app_id: str = "A0FAKE",
        team_name: str = "Fake Team",
        team_domain: str = "fake",
        strict_channels: bool = False,
        trigger_ttl: float = 3.0,
        response_url_ttl: float = 30 * 60.0,
        response_url_uses: int = 5,
        ts_base: int = 1_700_000_000,
        port: int = 0,
        loop: EventLoopThread | None = None,
    ) -> None:
        self.bot_token = bot_token
        self.app_token = app_token
        self.signing_secret = signing_secret
        self.team_id = team_id
        self.bot_user_id = bot_user_id
        self.bot_id = bot_id
        self.bot_name = bot_name
        self.app_id = app_id
        self.team_name = team_name
        self.team_domain = team_domain
        self.strict_channels = strict_channels
        self.trigger_ttl = trigger_ttl
        self.response_url_ttl = response_url_ttl
        self.response_url_uses = response_url_uses
        self._ts_base = ts_base
        super().__init__(port=port, loop=loop)
        self._lock = threading.RLock()
        self._changed = threading.Condition(self._lock)
        self._generation = 0
        self._counter = itertools.count(1)
        self._users: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        # Socket Mode connections outlive reset(): they are state, not traffic.
        self._tickets: dict[str, float] = {}
        self._sockets: dict[int, _Socket] = {}
        self._socket_ids = itertools.count(1)
        self._round_robin = 0
        self._init_traffic()
        self.add_user(bot_user_id, bot_name, is_bot=True)
        self._methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "api.test": self._api_test,
            "apps.connections.open": self._apps_connections_open,
            "auth.test": self._auth_test,
            "chat.postMessage": self._chat_post_message,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.update": self._chat_update,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "users.info": self._users_info,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.info": self._conversations_info,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "files.getUploadURLExternal": self._files_get_upload_url_external,
            "files.completeUploadExternal": self._files_complete_upload_external,
            "files.upload": self._files_upload_retired,
        }

    def _init_traffic(self) -> None:
        self._calls: RequestLog[CallRecord] = RequestLog()
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}
        self._responses: list[ResponseRecord] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._stacks: dict[str | None, list[str]] = {}
        self._warnings: list[str] = []
        self._faults: Faults[_Fault] = Faults()
        self._latency: dict[str | None, float] = {}
        self._channel_rate: tuple[float, float] | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._envelopes: dict[str, EnvelopeRecord] = {}
        self._acks: list[AckRecord] = []
        # External uploads by file ID: filename, declared length, bytes once uploaded, and
        # where they were shared once completed.
        self._uploads: dict[str, dict[str, Any]] = {}

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("POST", "/commands/{rid}", self._handle_response_url)
        app.router.add_route("POST", "/actions/{rid}", self._handle_response_url)
        app.router.add_route("GET", SOCKET_PATH, self._handle_socket)
        app.router.add_route("POST", "/upload/v1/{file_id}", self._handle_upload)

    async def _before_stop(self) -> None:
        with self._lock:
            live = [s for s in self._sockets.values() if s.record.open]
        await asyncio.gather(*(self._aclose_socket(s) for s in live), return_exceptions=True)

    @property
    def api_url(self) -> str:
        """What `WebClient(base_url=...)` takes: `url + "/api/"`."""
        return f"{self.url}/api/"

    def reset(self) -> None:
        """Forget all traffic, messages, views, URLs, triggers, warnings and faults.

        Users, groups and channels stay registered; ts values keep increasing.
        """
        with self._lock:
            self._init_traffic()
            self._bump()

    @property
    def warnings(self) -> list[str]:
        """What Slack would log but accept, e.g. blocks without a top-level `text` fallback."""
        with self._lock:
            return list(self._warnings)

    def wait_for(
        self, predicate: Callable[[], T | None], timeout: float = 5.0, what: str | None = None
    ) -> T:
        """Block until `predicate()` is truthy and return it; TimeoutError after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            with self._changed:
                seen = self._generation
            result = predicate()
            if result:
                return result
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"timed out after {timeout}s waiting for {what or predicate}")
            with self._changed:
                if self._generation == seen:
                    # Capped so predicates on outside state (or time) are re-checked too.
                    self._changed.wait(min(remaining, 0.05))

    def _bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _next_ts(self) -> str:
        micros = next(self._counter) * 100
        return f"{self._ts_base + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _warn(self, text: str) -> None:
        self._warnings.append(text)
