"""A fake Slack Web API and response_url endpoint, real enough for slack_sdk and slack_bolt.

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

Servers run on the process-wide loop of `tests.fakes.kube_api` (one daemon thread for every
fake). The Python API (seeding, faults, inspection, `wait_for*`) is thread-safe and may be
called from any thread but that loop's.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import itertools
import json
import math
import re
import secrets
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from .kube_api import EventLoopThread, bind_loopback, shared_loop

T = TypeVar("T")

DEFAULT_SIGNING_SECRET = "fake-signing-secret"
RESPONSE_URL = "response_url"
"""Pseudo method name: pass it to fail(), latency() or rate_limit() to target response URLs."""

MESSAGE_BLOCK_LIMIT = 50
MODAL_BLOCK_LIMIT = 100
TEXT_LIMIT = 40000
TEXT_SOFT_LIMIT = 4000

_TEXT_TYPES = ("plain_text", "mrkdwn")
_STYLES = ("primary", "danger")
_SELECTS = frozenset(
    f"{prefix}{kind}_select"
    for prefix in ("", "multi_")
    for kind in ("static", "external", "users", "conversations", "channels")
)
_ACTIONS_ELEMENTS = _SELECTS | {
    "button",
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "overflow",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "workflow_button",
}
_ACCESSORY_ELEMENTS = (_ACTIONS_ELEMENTS - {"datetimepicker", "rich_text_input"}) | {"image"}
_INPUT_ELEMENTS = _SELECTS | {
    "checkboxes",
    "datepicker",
    "datetimepicker",
    "email_text_input",
    "file_input",
    "number_input",
    "plain_text_input",
    "radio_buttons",
    "rich_text_input",
    "timepicker",
    "url_text_input",
}
_BLOCK_TYPES = frozenset(
    {
        "actions",
        "context",
        "divider",
        "file",
        "header",
        "image",
        "input",
        "markdown",
        "rich_text",
        "section",
        "video",
    }
)
_CHANNEL_ID = re.compile(r"^[CGDU][A-Z0-9]+$")
# Fields that arrive JSON-encoded in form bodies (slack_sdk's `params=` path, or curl).
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
# Internal bookkeeping kept on stored messages but never shown in API answers.
_PRIVATE_KEYS = ("channel", "ephemeral_user", "source")
# Web API methods that take the app-level (xapp-) token instead of the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})
SOCKET_PATH = "/link/"
ACK_DEADLINE = 3.0
"""Seconds Slack waits for an envelope's ack before it tells the user the app timed out."""


# --- Block Kit validation -----------------------------------------------------------------


def _too_long(limit: int) -> str:
    return f"must be less than {limit + 1} characters"


class _Checker:
    """Collects Slack-style `[ERROR] what [json-pointer:where]` messages for one surface."""

    def __init__(self) -> None:
        self.errors: list[str] = []
        self.block_ids: set[str] = set()
        self.action_ids: set[str] = set()

    def error(self, path: str, message: str) -> None:
        self.errors.append(f"[ERROR] {message} [json-pointer:{path}]")

    def string(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        max_len: int,
        *,
        required: bool = False,
        min_len: int = 0,
    ) -> str | None:
        value = parent.get(key)
        where = f"{path}/{key}"
        if value is None:
            if required:
                self.error(path, f"missing required field: {key}")
            return None
        if not isinstance(value, str):
            self.error(where, "must be a string")
            return None
        if len(value) > max_len:
            self.error(where, _too_long(max_len))
        elif len(value) < min_len:
            self.error(where, f"must be more than {min_len - 1} characters")
        return value

    def text(
        self,
        parent: Mapping[str, Any],
        key: str,
        path: str,
        max_len: int,
        *,
        plain: bool = False,
        required: bool = True,
    ) -> None:
        obj = parent.get(key)
        if obj is None:
            if required:
                self.error(path, f"missing required field: {key}")
            return
        self.text_object(obj, f"{path}/{key}", max_len, plain=plain)

    def text_object(self, obj: Any, path: str, max_len: int, *, plain: bool = False) -> None:
        if not isinstance(obj, dict):
            self.error(path, "must be a text object")
            return
        kind = obj.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
        elif plain and kind != "plain_text":
            self.error(f"{path}/type", "must be plain_text")
        elif kind not in _TEXT_TYPES:
            self.error(f"{path}/type", "must be one of plain_text, mrkdwn")
        self.string(obj, "text", path, max_len, required=True, min_len=1)

    def items(
        self, parent: Mapping[str, Any], key: str, path: str, max_items: int, *, min_items: int = 0
    ) -> list[Any]:
        value = parent.get(key)
        where = f"{path}/{key}"
        if value is None:
            if min_items:
                self.error(path, f"missing required field: {key}")
            return []
        if not isinstance(value, list):
            self.error(where, "must be an array")
            return []
        if len(value) > max_items:
            self.error(where, f"no more than {max_items} items allowed")
        elif len(value) < min_items:
            self.error(where, f"must provide at least {min_items} items")
        return value

    def blocks(self, blocks: Any, path: str, limit: int) -> None:
        if not isinstance(blocks, list):
            self.error(path, "must be an array")
            return
        if len(blocks) > limit:
            self.error(path, f"no more than {limit} items allowed")
        for i, block in enumerate(blocks):
            self.block(block, f"{path}/{i}")

    def block(self, block: Any, path: str) -> None:
        if not isinstance(block, dict):
            self.error(path, "must be an object")
            return
        kind = block.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
            return
        if kind not in _BLOCK_TYPES:
            self.error(f"{path}/type", f"unsupported block type: {kind!r}")
            return
        block_id = self.string(block, "block_id", path, 255)
        if block_id is not None:
            if block_id in self.block_ids:
                self.error(f"{path}/block_id", f"block_id {block_id!r} must be unique")
            self.block_ids.add(block_id)
        getattr(self, f"_block_{kind}")(block, path)

    def _block_section(self, block: Mapping[str, Any], path: str) -> None:
        if block.get("text") is None and block.get("fields") is None:
            self.error(path, "must provide either text or fields")
        self.text(block, "text", path, 3000, required=False)
        for i, text in enumerate(self.items(block, "fields", path, 10)):
            self.text_object(text, f"{path}/fields/{i}", 2000)
        if block.get("accessory") is not None:
            self.element(block["accessory"], f"{path}/accessory", _ACCESSORY_ELEMENTS)

    def _block_header(self, block: Mapping[str, Any], path: str) -> None:
        self.text(block, "text", path, 150, plain=True)

    def _block_context(self, block: Mapping[str, Any], path: str) -> None:
        for i, element in enumerate(self.items(block, "elements", path, 10, min_items=1)):
            where = f"{path}/elements/{i}"
            if isinstance(element, dict) and element.get("type") == "image":
                self.element(element, where, frozenset({"image"}))
            else:
                self.text_object(element, where, 3000)

    def _block_actions(self, block: Mapping[str, Any], path: str) -> None:
        for i, element in enumerate(self.items(block, "elements", path, 25, min_items=1)):
            self.element(element, f"{path}/elements/{i}", _ACTIONS_ELEMENTS)

    def _block_divider(self, block: Mapping[str, Any], path: str) -> None:
        pass

    def _block_image(self, block: Mapping[str, Any], path: str) -> None:
        self._image(block, path)
        self.text(block, "title", path, 2000, plain=True, required=False)

    def _block_input(self, block: Mapping[str, Any], path: str) -> None:
        self.text(block, "label", path, 2000, plain=True)
        self.text(block, "hint", path, 2000, plain=True, required=False)
        if block.get("element") is None:
            self.error(path, "missing required field: element")
        else:
            self.element(block["element"], f"{path}/element", _INPUT_ELEMENTS)

    def _block_markdown(self, block: Mapping[str, Any], path: str) -> None:
        self.string(block, "text", path, 12000, required=True, min_len=1)

    def _block_rich_text(self, block: Mapping[str, Any], path: str) -> None:
        self.items(block, "elements", path, 10000, min_items=1)

    def _block_video(self, block: Mapping[str, Any], path: str) -> None:
        self.string(block, "video_url", path, 3000, required=True)
        self.string(block, "thumbnail_url", path, 3000, required=True)
        self.string(block, "alt_text", path, 2000, required=True)
        self.text(block, "title", path, 200, plain=True)

    def _block_file(self, block: Mapping[str, Any], path: str) -> None:
        self.string(block, "external_id", path, 255, required=True)

    def _image(self, obj: Mapping[str, Any], path: str) -> None:
        if obj.get("image_url") is None and obj.get("slack_file") is None:
            self.error(path, "must provide either image_url or slack_file")
        self.string(obj, "image_url", path, 3000)
        self.string(obj, "alt_text", path, 2000, required=True)

    def element(self, element: Any, path: str, allowed: frozenset[str]) -> None:
        if not isinstance(element, dict):
            self.error(path, "must be an object")
            return
        kind = element.get("type")
        if kind is None:
            self.error(path, "missing required field: type")
            return
        if kind not in allowed:
            self.error(f"{path}/type", f"element type {kind!r} is not allowed here")
            return
        if kind == "image":
            self._image(element, path)
            return
        action_id = self.string(element, "action_id", path, 255)
        if action_id is not None:
            if action_id in self.action_ids:
                self.error(f"{path}/action_id", f"action_id {action_id!r} must be unique")
            self.action_ids.add(action_id)
        self.text(element, "placeholder", path, 150, plain=True, required=False)
        if element.get("confirm") is not None:
            self.confirm(element["confirm"], f"{path}/confirm")
        if kind in ("button", "workflow_button"):
            self.text(element, "text", path, 75, plain=True)
            self.string(element, "value", path, 2000)
            self.string(element, "url", path, 3000)
            self.string(element, "accessibility_label", path, 75)
            style = element.get("style")
            if style is not None and style not in _STYLES:
                self.error(f"{path}/style", "must be one of primary, danger")
        elif kind in ("static_select", "multi_static_select"):
            if element.get("options") is None and element.get("option_groups") is None:
                self.error(path, "must provide either options or option_groups")
            self.options(element, path, 100, plain=True)
            for i, group in enumerate(self.items(element, "option_groups", path, 100)):
                where = f"{path}/option_groups/{i}"
                if isinstance(group, dict):
                    self.text(group, "label", where, 75, plain=True)
                    self.options(group, where, 100, plain=True, min_items=1)
        elif kind == "overflow":
            self.options(element, path, 5, plain=True, min_items=1)
        elif kind in ("checkboxes", "radio_buttons"):
            self.options(element, path, 10, plain=False, min_items=1)
        elif kind == "plain_text_input":
            self.string(element, "initial_value", path, 3000)

    def options(
        self,
        parent: Mapping[str, Any],
        path: str,
        max_items: int,
        *,
        plain: bool,
        min_items: int = 0,
    ) -> None:
        for i, option in enumerate(
            self.items(parent, "options", path, max_items, min_items=min_items)
        ):
            where = f"{path}/options/{i}"
            if not isinstance(option, dict):
                self.error(where, "must be an object")
                continue
            self.text(option, "text", where, 75, plain=plain)
            self.string(option, "value", where, 150, required=True)
            self.text(option, "description", where, 75, plain=plain, required=False)

    def confirm(self, confirm: Any, path: str) -> None:
        if not isinstance(confirm, dict):
            self.error(path, "must be an object")
            return
        self.text(confirm, "title", path, 100, plain=True)
        self.text(confirm, "text", path, 300)
        self.text(confirm, "confirm", path, 30, plain=True)
        self.text(confirm, "deny", path, 30, plain=True)
        style = confirm.get("style")
        if style is not None and style not in _STYLES:
            self.error(f"{path}/style", "must be one of primary, danger")


def validate_blocks(blocks: Any, *, modal: bool = False) -> list[str]:
    """Slack's `[ERROR] ...` messages for a message's (or a modal's) `blocks`; [] when valid."""
    checker = _Checker()
    if modal:
        checker.blocks(blocks, "/view/blocks", MODAL_BLOCK_LIMIT)
    else:
        checker.blocks(blocks, "/blocks", MESSAGE_BLOCK_LIMIT)
    return checker.errors


def validate_view(view: Any) -> list[str]:
    """Slack's `[ERROR] ...` messages for a `views.open/update/push` view; [] when valid."""
    checker = _Checker()
    path = "/view"
    if not isinstance(view, dict):
        checker.error(path, "must be an object")
        return checker.errors
    kind = view.get("type")
    if kind not in ("modal", "home"):
        checker.error(f"{path}/type", "must be one of modal, home")
    if kind == "modal":
        checker.text(view, "title", path, 24, plain=True)
        checker.text(view, "submit", path, 24, plain=True, required=False)
        checker.text(view, "close", path, 24, plain=True, required=False)
        blocks = view.get("blocks")
        has_input = isinstance(blocks, list) and any(
            isinstance(b, dict) and b.get("type") == "input" for b in blocks
        )
        if has_input and view.get("submit") is None:
            checker.error(path, "submit is required when the view has input blocks")
    checker.string(view, "private_metadata", path, 3000)
    checker.string(view, "callback_id", path, 255)
    checker.string(view, "external_id", path, 255)
    if view.get("blocks") is None:
        checker.error(path, "missing required field: blocks")
    else:
        checker.blocks(view["blocks"], f"{path}/blocks", MODAL_BLOCK_LIMIT)
    return checker.errors


# --- records and errors -------------------------------------------------------------------


@dataclass
class CallRecord:
    """One Web API call as the fake answered it."""

    method: str
    params: dict[str, Any]
    token: str | None
    status: int
    response: dict[str, Any]
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Whether Slack would call this a success (HTTP 200 and `ok: true`)."""
        return self.status == 200 and bool(self.response.get("ok"))

    @property
    def error(self) -> str | None:
        """The `error` code of a failed call."""
        return self.response.get("error")


@dataclass
class ResponseRecord:
    """One POST to a response_url: what arrived, and what the fake answered."""

    id: str
    url: str
    channel: str
    user: str
    payload: dict[str, Any]
    status: int
    body: str
    message_ts: str | None = None  # the message this post created, replaced or deleted
    at: float = field(default_factory=time.monotonic)

    @property
    def ok(self) -> bool:
        """Whether Slack accepted the post."""
        return self.status == 200


@dataclass
class SocketRecord:
    """One Socket Mode WebSocket connection, as the fake saw it."""

    id: int
    ticket: str
    opened: float = field(default_factory=time.monotonic)
    ready: bool = False  # `hello` sent: envelopes may be routed here
    closed: float | None = None
    disconnect_reason: str | None = None  # set once the fake asked it to reconnect
    envelopes: int = 0  # how many envelopes were sent on it

    @property
    def open(self) -> bool:
        """Whether the WebSocket is still connected."""
        return self.closed is None

    @property
    def routable(self) -> bool:
        """Whether new envelopes may go here: open, greeted, and not asked to disconnect."""
        return self.open and self.ready and self.disconnect_reason is None


@dataclass
class EnvelopeRecord:
    """One envelope pushed to the app over Socket Mode."""

    envelope_id: str
    type: str
    payload: dict[str, Any]
    accepts_response_payload: bool
    socket: int  # SocketRecord.id it went to
    sent: float = field(default_factory=time.monotonic)

    @property
    def response_url(self) -> str | None:
        """The response_url the payload carries (slash commands, most interactions)."""
        url = self.payload.get("response_url")
        return url if isinstance(url, str) else None


@dataclass
class AckRecord:
    """The app's acknowledgement of one envelope: `{"envelope_id": ..., "payload": ...}`."""

    envelope_id: str
    type: str  # the acknowledged envelope's type
    socket: int  # SocketRecord.id the ack came in on
    payload: dict[str, Any] | None  # the ack's response payload, if it sent one
    seconds: float  # from sending the envelope to receiving the ack
    at: float = field(default_factory=time.monotonic)

    @property
    def in_time(self) -> bool:
        """Whether the ack beat Slack's 3 second deadline."""
        return self.seconds <= ACK_DEADLINE


class _SlackError(Exception):
    def __init__(
        self,
        error: str,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        self.error = error
        self.status = status
        self.headers = dict(headers or {})
        self.extra = extra
        super().__init__(error)

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, **self.extra}


@dataclass
class _Fault:
    method: str | None
    status: int
    error: str
    retry_after: int | None
    times: int | None
    hits: int = 0
    headers: dict[str, str] = field(default_factory=dict)

    def matches(self, method: str) -> bool:
        if self.times is not None and self.hits >= self.times:
            return False
        return self.method is None or self.method == method


@dataclass
class _ResponseUrl:
    id: str
    url: str
    channel: str
    user: str
    message_ts: str | None
    created: float
    uses: int = 0


@dataclass
class _Trigger:
    user: str | None
    issued: float
    used: bool = False


@dataclass
class _Socket:
    record: SocketRecord
    ws: web.WebSocketResponse
    closer: asyncio.TimerHandle | None = None  # the close after a `disconnect`, if pending
    closing: asyncio.Task[None] | None = None  # referenced, so it is not garbage-collected


@dataclass
class _Bucket:
    tokens: float
    updated: float


def _flag(value: Any) -> bool:
    if isinstance(value, str):
        return value.lower() in ("1", "true", "yes")
    return bool(value)


# --- the server ---------------------------------------------------------------------------


class FakeSlack:
    """A fake Slack workspace: Web API, response URLs and triggers, on 127.0.0.1."""

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
        self._port = port
        self._loop = loop or shared_loop()
        self._runner: web.AppRunner | None = None
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
        self._calls: list[CallRecord] = []
        self._messages: dict[str, dict[str, dict[str, Any]]] = {}
        self._responses: list[ResponseRecord] = []
        self._response_urls: dict[str, _ResponseUrl] = {}
        self._triggers: dict[str, _Trigger] = {}
        self._views: dict[str, dict[str, Any]] = {}
        self._stacks: dict[str | None, list[str]] = {}
        self._warnings: list[str] = []
        self._faults: list[_Fault] = []
        self._latency: dict[str | None, float] = {}
        self._channel_rate: tuple[float, float] | None = None
        self._buckets: dict[str, _Bucket] = {}
        self._envelopes: dict[str, EnvelopeRecord] = {}
        self._acks: list[AckRecord] = []
        # External uploads by file ID: filename, declared length, bytes once uploaded, and
        # where they were shared once completed.
        self._uploads: dict[str, dict[str, Any]] = {}

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The TCP port; fixed by the first start() and reused by later ones."""
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, without a trailing slash."""
        if not self._port:
            raise RuntimeError("the fake Slack has no port until it is started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def api_url(self) -> str:
        """What `WebClient(base_url=...)` takes: `url + "/api/"`."""
        return f"{self.url}/api/"

    @property
    def running(self) -> bool:
        """Whether the server accepts connections now."""
        return self._runner is not None

    def start(self) -> FakeSlack:
        """Listen (again) on the fake's port; state from before a stop() is kept."""
        if not self.running:
            self._loop.run(self._astart())
        return self

    def stop(self) -> None:
        """Stop listening; connecting is refused until start()."""
        if self.running:
            self._loop.run(self._astop())

    def __enter__(self) -> FakeSlack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        if self._runner is not None:
            return
        sock = bind_loopback(self._port)
        self._port = sock.getsockname()[1]
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_route("POST", "/commands/{rid}", self._handle_response_url)
        app.router.add_route("POST", "/actions/{rid}", self._handle_response_url)
        app.router.add_route("GET", SOCKET_PATH, self._handle_socket)
        app.router.add_route("POST", "/upload/v1/{file_id}", self._handle_upload)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        await web.SockSite(runner, sock, backlog=512).start()
        self._runner = runner

    async def _astop(self) -> None:
        runner, self._runner = self._runner, None
        with self._lock:
            live = [s for s in self._sockets.values() if s.record.open]
        await asyncio.gather(*(self._aclose_socket(s) for s in live), return_exceptions=True)
        if runner is not None:
            await runner.cleanup()

    # -- Python API: the workspace directory --

    def add_user(
        self,
        id: str,
        name: str,
        *,
        deleted: bool = False,
        is_restricted: bool = False,
        is_ultra_restricted: bool = False,
        is_admin: bool = False,
        is_owner: bool = False,
        is_bot: bool = False,
        real_name: str | None = None,
        team_id: str | None = None,
    ) -> dict[str, Any]:
        """Register (or replace) a user as `users.info` returns it.

        `team_id` other than the workspace's makes a Slack Connect user from another
        organisation: users.info then reports their own team, as Slack does.
        """
        real = real_name or name
        team = team_id or self.team_id
        user: dict[str, Any] = {
            "id": id,
            "team_id": team,
            "name": name,
            "real_name": real,
            "deleted": deleted,
            "is_admin": is_admin,
            "is_owner": is_owner,
            "is_primary_owner": False,
            "is_restricted": is_restricted,
            "is_ultra_restricted": is_ultra_restricted,
            "is_bot": is_bot,
            "is_app_user": False,
            "tz": "Etc/UTC",
            "tz_offset": 0,
            "updated": self._ts_base,
            "profile": {"real_name": real, "display_name": name, "team": team},
        }
        if is_bot:
            user["profile"]["bot_id"] = self.bot_id
        with self._lock:
            self._users[id] = user
            return copy.deepcopy(user)

    def add_usergroup(
        self,
        id: str,
        handle: str,
        name: str | None = None,
        users: Iterable[str] = (),
        *,
        disabled: bool = False,
        description: str = "",
    ) -> dict[str, Any]:
        """Register (or replace) a user group (`S…` id, `@handle`) with its members."""
        group = {
            "id": id,
            "team_id": self.team_id,
            "is_usergroup": True,
            "is_subteam": True,
            "name": name or handle,
            "handle": handle,
            "description": description,
            "is_external": False,
            "date_create": self._ts_base,
            "date_update": self._ts_base,
            "date_delete": self._ts_base if disabled else 0,
            "auto_type": None,
            "created_by": self.bot_user_id,
            "updated_by": self.bot_user_id,
            "deleted_by": None,
            "prefs": {"channels": [], "groups": []},
            "users": list(users),
        }
        with self._lock:
            self._groups[id] = group
            return copy.deepcopy(group)

    def set_usergroup_users(self, id: str, users: Iterable[str]) -> None:
        """Replace a group's members (as when someone edits it in Slack); KeyError if unknown."""
        with self._lock:
            group = self._groups[id]
            group["users"] = list(users)
            group["date_update"] = int(time.time())
            self._bump()

    def add_channel(
        self,
        id: str,
        name: str,
        is_private: bool = False,
        *,
        is_member: bool = True,
        is_archived: bool = False,
    ) -> dict[str, Any]:
        """Register a channel; a private one the bot is not in answers `channel_not_found`."""
        channel = {
            "id": id,
            "name": name,
            "is_channel": not is_private,
            "is_group": is_private,
            "is_im": id.startswith("D"),
            "is_private": is_private,
            "is_member": is_member,
            "is_archived": is_archived,
            "is_general": name == "general",
            "created": self._ts_base,
            "context_team_id": self.team_id,
        }
        with self._lock:
            self._channels[id] = channel
            return copy.deepcopy(channel)

    def add_message(
        self,
        channel: str,
        text: str,
        *,
        user: str,
        blocks: list[dict[str, Any]] | None = None,
        thread_ts: str | None = None,
    ) -> str:
        """Seed a message as a person posted it (e.g. a thread to reply in); returns its ts."""
        with self._lock:
            msg = self._store_message(
                channel, text=text, blocks=blocks, user=user, thread_ts=thread_ts, source="user"
            )
            return str(msg["ts"])

    # -- Python API: triggers and response URLs --

    def issue_trigger_id(self, user_id: str | None = None) -> str:
        """A fresh trigger_id as Slack sends with a command or click: single-use, short-lived."""
        n = next(self._counter)
        trigger = f"{n}.{self._ts_base}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = _Trigger(user_id, time.monotonic())
        return trigger

    def new_response_url(
        self, channel_id: str, user_id: str, *, message_ts: str | None = None
    ) -> str:
        """A response_url for a command (or, with `message_ts`, for a click on that message)."""
        n = next(self._counter)
        rid = f"{self.team_id}-{n}-{secrets.token_hex(8)}"
        kind = "actions" if message_ts else "commands"
        url = f"{self.url}/{kind}/{rid}"
        with self._lock:
            self._response_urls[rid] = _ResponseUrl(
                rid, url, channel_id, user_id, message_ts, time.monotonic()
            )
        return url

    # -- Python API: Socket Mode --

    def socket_connections(self) -> int:
        """How many Socket Mode connections take envelopes now (open, greeted, not told to
        disconnect)."""
        with self._lock:
            return sum(1 for s in self._sockets.values() if s.record.routable)

    def sockets(self) -> list[SocketRecord]:
        """Every Socket Mode connection accepted so far, closed ones included, oldest first."""
        with self._lock:
            return [copy.deepcopy(s.record) for s in self._sockets.values()]

    def wait_for_socket(self, count: int = 1, timeout: float = 5.0) -> list[SocketRecord]:
        """Block until at least `count` connections take envelopes; returns those."""
        return self.wait_for(
            lambda: r if len(r := [s for s in self.sockets() if s.routable]) >= count else None,
            timeout,
            f"{count} Socket Mode connection(s)",
        )

    def send_slash_command(
        self,
        command: str,
        text: str = "",
        *,
        user_id: str = "U0USER",
        user_name: str = "user",
        channel_id: str = "C0CHAN",
        channel_name: str = "general",
        response_url: str | None = None,
        trigger_id: str | None = None,
        enterprise_id: str | None = None,
    ) -> str:
        """Push `/command text`, typed by `user_id` in `channel_id`, to a connected app.

        The payload has the fields of an HTTP slash command form, with a live response_url and
        trigger_id minted here. Returns the envelope_id (see envelope(), wait_for_ack()).
        """
        payload = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command if command.startswith("/") else f"/{command}",
            "text": text,
            "api_app_id": self.app_id,
            "is_enterprise_install": "false",
            "response_url": response_url or self.new_response_url(channel_id, user_id),
            "trigger_id": trigger_id or self.issue_trigger_id(user_id),
        }
        if enterprise_id:
            payload["enterprise_id"] = enterprise_id
        return self.send_envelope("slash_commands", payload, accepts_response_payload=True)

    def send_interaction(
        self, payload: Mapping[str, Any], *, accepts_response_payload: bool | None = None
    ) -> str:
        """Push an interaction payload (block_actions, view_submission...) as an `interactive`
        envelope; returns its envelope_id.

        Like Slack, only view submissions and option requests accept a response payload in
        the ack, unless `accepts_response_payload` says otherwise.
        """
        if accepts_response_payload is None:
            accepts_response_payload = payload.get("type") in (
                "view_submission",
                "block_suggestion",
            )
        return self.send_envelope(
            "interactive", dict(payload), accepts_response_payload=accepts_response_payload
        )

    def send_envelope(
        self,
        type: str,
        payload: Mapping[str, Any],
        *,
        accepts_response_payload: bool = False,
        envelope_id: str | None = None,
    ) -> str:
        """Push any envelope (`events_api` too) to one connection, round-robin; its id.

        RuntimeError when no connection takes envelopes (see wait_for_socket()).
        """
        envelope_id = envelope_id or str(uuid.uuid4())
        with self._lock:
            targets = [s for s in self._sockets.values() if s.record.routable]
            if not targets:
                raise RuntimeError("no Socket Mode connection to send the envelope to")
            sock = targets[self._round_robin % len(targets)]
            self._round_robin += 1
            record = EnvelopeRecord(
                envelope_id,
                type,
                copy.deepcopy(dict(payload)),
                accepts_response_payload,
                sock.record.id,
            )
            self._envelopes[envelope_id] = record
            sock.record.envelopes += 1
        message = {
            "envelope_id": envelope_id,
            "type": type,
            "payload": record.payload,
            "accepts_response_payload": accepts_response_payload,
        }
        self._loop.run(self._asend_envelope(sock, record, json.dumps(message)))
        return envelope_id

    def envelopes(self) -> list[EnvelopeRecord]:
        """Envelopes pushed so far, oldest first."""
        with self._lock:
            return [copy.deepcopy(e) for e in self._envelopes.values()]

    def envelope(self, envelope_id: str) -> EnvelopeRecord | None:
        """One pushed envelope, or None."""
        with self._lock:
            record = self._envelopes.get(envelope_id)
            return copy.deepcopy(record) if record is not None else None

    def acks(self, envelope_id: str | None = None) -> list[AckRecord]:
        """Acks received so far, oldest first, optionally for one envelope."""
        with self._lock:
            return [
                copy.deepcopy(a)
                for a in self._acks
                if envelope_id is None or a.envelope_id == envelope_id
            ]

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> AckRecord:
        """Block until the app acknowledged `envelope_id`; returns the ack."""
        return self.wait_for(
            lambda: next(iter(self.acks(envelope_id)), None),
            timeout,
            f"the ack of envelope {envelope_id}",
        )

    def disconnect_sockets(
        self, reason: str = "refresh_requested", *, close_after: float | None = 5.0
    ) -> int:
        """Send `{"type": "disconnect", "reason": reason}` on every connection, as Slack does
        before it recycles one; returns how many were told.

        Told connections get no more envelopes. The app should open a new one and drop the old;
        any still open `close_after` seconds later are closed from this side (None: never).
        Note that slack_sdk's built-in client keeps reading the old socket until it is closed
        or its 3 s read times out, so envelopes sent on the new connection in the meantime are
        acked that much later: pass a short `close_after` when the test is not about that.
        """
        with self._lock:
            targets = [s for s in self._sockets.values() if s.record.open]
            targets = [s for s in targets if s.record.disconnect_reason is None]
            for sock in targets:
                sock.record.disconnect_reason = reason
            self._bump()
        message = json.dumps(
            {"type": "disconnect", "reason": reason, "debug_info": {"host": "applink-fake"}}
        )
        for sock in targets:
            self._loop.run(self._adisconnect(sock, message, close_after))
        return len(targets)

    def close_sockets(self) -> int:
        """Close every open connection from Slack's side with no `disconnect` first (as when
        an edge server dies); returns how many were closed."""
        with self._lock:
            targets = [s for s in self._sockets.values() if s.record.open]
        for sock in targets:
            self._loop.run(self._aclose_socket(sock))
        return len(targets)

    # -- Python API: faults --

    def rate_limit(self, method: str, times: int | None = 1, retry_after: float = 1) -> None:
        """Answer the next `times` calls of `method` (None: every call) with 429 + Retry-After."""
        # Slack sends whole seconds, and slack_sdk's retry handler int()s the header.
        seconds = max(0, math.ceil(retry_after))
        with self._lock:
            self._faults.append(_Fault(method, 429, "ratelimited", seconds, times))

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
        with self._lock:
            self._faults.append(_Fault(method, status, error, None, times, 0, dict(headers or {})))

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

    def reset(self) -> None:
        """Forget all traffic, messages, views, URLs, triggers, warnings and faults.

        Users, groups and channels stay registered; ts values keep increasing.
        """
        with self._lock:
            self._init_traffic()
            self._bump()

    # -- Python API: inspection --

    def calls(self, method: str | None = None) -> list[CallRecord]:
        """Web API calls so far, oldest first, optionally of one method."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def messages(
        self, channel: str, *, thread_ts: str | None = None, include_ephemeral: bool = True
    ) -> list[dict[str, Any]]:
        """The channel's current messages (thread replies included), oldest first.

        Each has `ts`, `text`, `blocks`, `user`, `thread_ts`, `ephemeral_user` (None unless
        ephemeral) and `channel`. `thread_ts` narrows to one thread (parent and replies).
        """
        with self._lock:
            msgs = list(self._messages.get(channel, {}).values())
            return [
                copy.deepcopy(m)
                for m in msgs
                if (thread_ts is None or thread_ts in (m["ts"], m["thread_ts"]))
                and (include_ephemeral or m["ephemeral_user"] is None)
            ]

    def uploads(self) -> list[dict[str, Any]]:
        """Files uploaded through the external upload flow, oldest first: `id`, `filename`,
        `length` (declared), `data` (the bytes received, None until step 2), `title`,
        `completed`, `channel` and `thread_ts` (where completeUploadExternal shared it)."""
        with self._lock:
            return [copy.deepcopy(u) for u in self._uploads.values()]

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One stored message, or None."""
        with self._lock:
            msg = self._messages.get(channel, {}).get(ts)
            return copy.deepcopy(msg) if msg is not None else None

    def responses(self, url_or_id: str | None = None) -> list[ResponseRecord]:
        """response_url posts so far (accepted or not), oldest first, optionally of one URL."""
        rid = url_or_id.rstrip("/").rsplit("/", 1)[-1] if url_or_id else None
        with self._lock:
            return [copy.deepcopy(r) for r in self._responses if rid is None or r.id == rid]

    def views(self) -> list[dict[str, Any]]:
        """Every view opened, pushed or updated, in its current state."""
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def view(self, view_id: str) -> dict[str, Any] | None:
        """One view by id, or None."""
        with self._lock:
            view = self._views.get(view_id)
            return copy.deepcopy(view) if view is not None else None

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

    def wait_for_response(
        self, count: int = 1, timeout: float = 5.0, url: str | None = None
    ) -> list[ResponseRecord]:
        """Block until at least `count` response_url posts arrived; returns them all."""
        return self.wait_for(
            lambda: r if len(r := self.responses(url)) >= count else None,
            timeout,
            f"{count} response_url post(s)",
        )

    def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[CallRecord]:
        """Block until `method` was called at least `count` times; returns those calls."""
        return self.wait_for(
            lambda: c if len(c := self.calls(method)) >= count else None,
            timeout,
            f"{count} {method} call(s)",
        )

    def wait_for_message(
        self,
        channel: str,
        predicate: Callable[[dict[str, Any]], bool] | None = None,
        timeout: float = 5.0,
    ) -> dict[str, Any]:
        """Block until a message in `channel` satisfies `predicate` (or any message); newest."""
        return self.wait_for(
            lambda: next(
                (m for m in reversed(self.messages(channel)) if predicate is None or predicate(m)),
                None,
            ),
            timeout,
            f"a matching message in {channel}",
        )

    # -- internals: bookkeeping --

    def _bump(self) -> None:
        with self._changed:
            self._generation += 1
            self._changed.notify_all()

    def _next_ts(self) -> str:
        micros = next(self._counter) * 100
        return f"{self._ts_base + micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _warn(self, text: str) -> None:
        self._warnings.append(text)

    def _raise_fault(self, method: str) -> None:
        for fault in self._faults:
            if fault.matches(method):
                fault.hits += 1
                headers = dict(fault.headers)
                if fault.retry_after is not None:
                    headers["Retry-After"] = str(fault.retry_after)
                raise _SlackError(fault.error, status=fault.status, headers=headers)

    def _delay(self, method: str) -> float:
        return self._latency.get(method, self._latency.get(None, 0.0))

    # -- internals: HTTP --

    async def _handle_api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        token: str | None = None
        try:
            params = await _read_params(request)
            auth = request.headers.get("Authorization", "")
            token = auth[7:].strip() if auth.lower().startswith("bearer ") else None
            form_token = params.pop("token", None)
            token = token or (str(form_token) if form_token else None)
            with self._lock:
                delay = self._delay(method)
            if delay:
                await asyncio.sleep(delay)
            status, body, headers = 200, self._call(method, params, token), {}
        except _SlackError as err:
            status, body, headers = err.status, err.body(), err.headers
        with self._lock:
            self._calls.append(CallRecord(method, params, token, status, copy.deepcopy(body)))
            self._bump()
        return web.json_response(body, status=status, headers=headers)

    def _call(self, method: str, params: dict[str, Any], token: str | None) -> dict[str, Any]:
        handler = self._methods.get(method)
        if handler is None:
            raise _SlackError("unknown_method", req_method=method)
        if method in _APP_TOKEN_METHODS:
            self._authenticate_app(token)
        elif method != "api.test":
            self._authenticate(token)
        with self._lock:
            self._raise_fault(method)
            return handler(params)

    def _authenticate(self, token: str | None) -> None:
        if not token:
            raise _SlackError("not_authed")
        if token == self.app_token:
            raise _SlackError("not_allowed_token_type")
        if token != self.bot_token:
            raise _SlackError("invalid_auth")

    def _authenticate_app(self, token: str | None) -> None:
        if not token:
            raise _SlackError("not_authed")
        if token == self.bot_token or token.startswith(("xoxb-", "xoxp-")):
            raise _SlackError("not_allowed_token_type")
        if token != self.app_token:
            raise _SlackError("invalid_auth")

    # -- internals: Socket Mode (on the loop) --

    async def _handle_socket(self, request: web.Request) -> web.StreamResponse:
        # `timeout` bounds close(): slack_sdk's built-in client never answers a close frame.
        ws = web.WebSocketResponse(timeout=1.0, autoping=True, max_msg_size=16 * 1024 * 1024)
        if not ws.can_prepare(request).ok:
            return web.Response(status=400, text="expected a WebSocket upgrade")
        ticket = request.query.get("ticket", "")
        with self._lock:
            issued = self._tickets.pop(ticket, None)
            if issued is None:
                self._warn(
                    f"Socket Mode: refused a connection with unknown or used ticket {ticket!r}"
                )
        if issued is None:
            return web.Response(status=401, text="invalid_ticket")
        await ws.prepare(request)
        with self._lock:
            sock = _Socket(SocketRecord(next(self._socket_ids), ticket), ws)
            self._sockets[sock.record.id] = sock
            hello = {
                "type": "hello",
                "num_connections": sum(1 for s in self._sockets.values() if s.record.open),
                "debug_info": {
                    "host": "applink-fake",
                    "build_number": 1,
                    "approximate_connection_time": 18060,
                },
                "connection_info": {"app_id": self.app_id},
            }
        try:
            await ws.send_str(json.dumps(hello))
            with self._lock:
                sock.record.ready = True
                self._bump()
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    self._on_socket_text(sock, msg.data)
                else:
                    with self._lock:
                        self._warn(f"Socket Mode: unexpected {msg.type.name} frame")
        except (ConnectionError, RuntimeError):
            pass
        finally:
            with self._lock:
                if sock.record.closed is None:
                    sock.record.closed = time.monotonic()
                if sock.closer is not None:
                    sock.closer.cancel()
                self._bump()
        return ws

    def _on_socket_text(self, sock: _Socket, data: str) -> None:
        now = time.monotonic()
        try:
            message = json.loads(data)
        except ValueError:
            message = None
        with self._lock:
            envelope_id = message.get("envelope_id") if isinstance(message, dict) else None
            if not isinstance(message, dict) or not isinstance(envelope_id, str):
                self._warn(f"Socket Mode: message without an envelope_id: {data[:200]!r}")
                return
            envelope = self._envelopes.get(envelope_id)
            if envelope is None:
                self._warn(f"Socket Mode: ack of unknown envelope {envelope_id}")
                return
            if any(a.envelope_id == envelope_id for a in self._acks):
                self._warn(f"Socket Mode: envelope {envelope_id} acknowledged twice")
                return
            payload = message.get("payload")
            if payload is not None and not isinstance(payload, dict):
                self._warn(f"Socket Mode: ack of {envelope_id} has a non-object payload")
                payload = None
            ack = AckRecord(
                envelope_id,
                envelope.type,
                sock.record.id,
                copy.deepcopy(payload),
                now - envelope.sent,
                now,
            )
            self._acks.append(ack)
            if ack.seconds > ACK_DEADLINE:
                self._warn(f"Socket Mode: envelope {envelope_id} acked after {ack.seconds:.2f}s")
            if payload:
                self._ack_payload(envelope, payload)
            self._bump()

    def _ack_payload(self, envelope: EnvelopeRecord, payload: dict[str, Any]) -> None:
        """What Slack does with a response in an ack: a command's shows as an ephemeral."""
        if not envelope.accepts_response_payload:
            self._warn(f"Socket Mode: {envelope.type} envelope ack carries an ignored payload")
            return
        if envelope.type != "slash_commands":
            return
        channel = str(envelope.payload.get("channel_id", ""))
        params = dict(payload)
        problem = self._check_content(params, f"ack of a command in {channel}")
        if problem is not None:
            self._warn(f"Socket Mode: command ack rejected: {problem[0]} {problem[1]}")
            return
        in_channel = params.get("response_type") == "in_channel"
        self._store_message(
            channel,
            text=params.get("text"),
            blocks=params.get("blocks"),
            user=self.bot_user_id,
            ephemeral_user=None if in_channel else str(envelope.payload.get("user_id", "")),
            source="ack",
        )

    async def _asend_envelope(self, sock: _Socket, record: EnvelopeRecord, message: str) -> None:
        try:
            with self._lock:
                record.sent = time.monotonic()
            await sock.ws.send_str(message)
        except (ConnectionError, RuntimeError) as err:
            with self._lock:
                self._envelopes.pop(record.envelope_id, None)
            raise ConnectionError(f"Socket Mode connection {sock.record.id} is gone") from err

    async def _adisconnect(self, sock: _Socket, message: str, close_after: float | None) -> None:
        try:
            await sock.ws.send_str(message)
        except (ConnectionError, RuntimeError):
            return
        if close_after is not None:
            sock.closer = asyncio.get_running_loop().call_later(
                close_after, self._close_later, sock
            )

    def _close_later(self, sock: _Socket) -> None:
        sock.closer = None
        sock.closing = asyncio.get_running_loop().create_task(self._aclose_socket(sock))

    async def _aclose_socket(self, sock: _Socket) -> None:
        if sock.closer is not None:
            sock.closer.cancel()
        if not sock.ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await sock.ws.close(code=1001, message=b"going away")
        with self._lock:
            if sock.record.closed is None:
                sock.record.closed = time.monotonic()
                self._bump()

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        rid = request.match_info["rid"]
        raw = await request.read()
        payload = _response_payload(raw, request.content_type)
        headers: dict[str, str] = {}
        ts: str | None = None
        if payload is None:
            payload, status, text = {"raw": raw.decode(errors="replace")}, 400, "invalid_payload"
        else:
            with self._lock:
                delay = self._delay(RESPONSE_URL)
            if delay:
                await asyncio.sleep(delay)
            with self._lock:
                try:
                    status, text, ts = self._post_response(rid, payload)
                except _SlackError as err:
                    status, text, headers = err.status, err.error, err.headers
        with self._lock:
            ru = self._response_urls.get(rid)
            self._responses.append(
                ResponseRecord(
                    id=rid,
                    url=ru.url if ru else str(request.url),
                    channel=ru.channel if ru else "",
                    user=ru.user if ru else "",
                    payload=payload,
                    status=status,
                    body=text,
                    message_ts=ts,
                )
            )
            self._bump()
        return web.Response(status=status, text=text, headers=headers)

    # -- internals: messages --

    def _resolve_channel(self, params: Mapping[str, Any]) -> str:
        channel = params.get("channel")
        if not channel or not isinstance(channel, str):
            raise _SlackError("channel_not_found")
        known = self._channels.get(channel)
        if known is None:
            known = next((c for c in self._channels.values() if f"#{c['name']}" == channel), None)
        if known is not None:
            if known["is_private"] and not known["is_member"]:
                raise _SlackError("channel_not_found")
            if known["is_archived"]:
                raise _SlackError("is_archived")
            return str(known["id"])
        if self.strict_channels or not _CHANNEL_ID.match(channel):
            raise _SlackError("channel_not_found")
        return channel

    def _check_content(
        self, params: dict[str, Any], where: str, *, partial: bool = False
    ) -> tuple[str, list[str]] | None:
        """(error, messages) when Slack would reject the text/blocks in `params`.

        Decodes JSON-encoded blocks in place and records warnings Slack would only log.
        """
        for key in _JSON_FIELDS:
            if isinstance(params.get(key), str) and params[key].strip():
                try:
                    params[key] = json.loads(params[key])
                except ValueError:
                    if key == "blocks":
                        return "invalid_blocks_format", ["blocks is not valid JSON"]
        text = params.get("text")
        blocks = params.get("blocks")
        if blocks is not None and not isinstance(blocks, list):
            return "invalid_blocks_format", ["[ERROR] must be an array [json-pointer:/blocks]"]
        if not partial and not text and not blocks and not params.get("attachments"):
            return "no_text", []
        if text is not None and not isinstance(text, str):
            text = params["text"] = str(text)
        if text and len(text) > TEXT_LIMIT:
            return "msg_too_long", [f"[ERROR] {_too_long(TEXT_LIMIT)} [json-pointer:/text]"]
        if blocks:
            errors = validate_blocks(blocks)
            if errors:
                return "invalid_blocks", errors
            # chat.update without `text` keeps the old fallback, so only warn when it is gone.
            if not text and (not partial or "text" in params):
                self._warn(f"{where}: blocks without a top-level text fallback")
        if text and len(text) > TEXT_SOFT_LIMIT:
            self._warn(f"{where}: text over {TEXT_SOFT_LIMIT} characters ({len(text)})")
        return None

    def _validate_or_raise(self, params: dict[str, Any], where: str, partial: bool = False) -> None:
        problem = self._check_content(params, where, partial=partial)
        if problem is not None:
            error, messages = problem
            extra: dict[str, Any] = {}
            if messages:
                extra["errors"] = [m.removeprefix("[ERROR] ") for m in messages]
                extra["response_metadata"] = {"messages": messages}
            raise _SlackError(error, **extra)

    def _store_message(
        self,
        channel: str,
        *,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        user: str,
        thread_ts: str | None = None,
        ephemeral_user: str | None = None,
        reply_broadcast: bool = False,
        source: str = "api",
    ) -> dict[str, Any]:
        msgs = self._messages.setdefault(channel, {})
        ts = self._next_ts()
        msg: dict[str, Any] = {
            "type": "message",
            "channel": channel,
            "ts": ts,
            "text": text or "",
            "blocks": copy.deepcopy(blocks) if blocks else [],
            "user": user,
            "bot_id": self.bot_id if user == self.bot_user_id else None,
            "app_id": self.app_id if user == self.bot_user_id else None,
            "team": self.team_id,
            "thread_ts": None,
            "ephemeral_user": ephemeral_user,
            "reply_broadcast": reply_broadcast,
            "source": source,
        }
        if thread_ts:
            parent = msgs.get(thread_ts)
            if parent is not None and parent["thread_ts"] not in (None, parent["ts"]):
                # A reply to a reply lands in the root's thread, as in Slack.
                thread_ts = parent["thread_ts"]
                parent = msgs.get(thread_ts)
            if parent is None:
                self._warn(f"message in {channel} replies to unknown thread_ts {thread_ts}")
            elif ephemeral_user is None:
                parent["thread_ts"] = parent["ts"]
                parent["reply_count"] = parent.get("reply_count", 0) + 1
                users = parent.setdefault("reply_users", [])
                if user not in users:
                    users.append(user)
                parent["latest_reply"] = ts
            msg["thread_ts"] = thread_ts
        msgs[ts] = msg
        self._bump()
        return msg

    @staticmethod
    def _public(msg: Mapping[str, Any]) -> dict[str, Any]:
        out = {
            k: copy.deepcopy(v)
            for k, v in msg.items()
            if k not in _PRIVATE_KEYS and v is not None and v != []
        }
        if not msg.get("reply_broadcast"):
            out.pop("reply_broadcast", None)
        return out

    def _find_own_message(self, channel: str, ts: Any, *, delete: bool) -> dict[str, Any]:
        msg = self._messages.get(channel, {}).get(str(ts)) if ts else None
        # Ephemeral messages live only in the client: the API cannot find them.
        if msg is None or msg["ephemeral_user"] is not None:
            raise _SlackError("message_not_found")
        if msg["user"] != self.bot_user_id:
            raise _SlackError("cant_delete_message" if delete else "cant_update_message")
        return msg

    # -- internals: Web API methods (called with the lock held) --

    # files.* -- Slack's external upload flow (docs.slack.dev/messaging/working-with-files):
    # 1. files.getUploadURLExternal(filename, length) -> upload_url, file_id
    # 2. POST the bytes to upload_url (raw body or multipart) -> 200 "OK - <length>"
    # 3. files.completeUploadExternal(files=[{id, title}], channel_id, initial_comment,
    #    thread_ts) shares the file: without channel_id it stays private.
    # files.upload was retired (November 2025): it answers `method_deprecated`.

    def _files_get_upload_url_external(self, params: dict[str, Any]) -> dict[str, Any]:
        filename = params.get("filename")
        length = params.get("length")
        if not filename or length in (None, ""):
            raise _SlackError("invalid_arguments")
        try:
            size = int(length)
        except (TypeError, ValueError):
            raise _SlackError("invalid_arguments") from None
        file_id = f"F{next(self._counter):08d}"
        self._uploads[file_id] = {
            "id": file_id,
            "filename": str(filename),
            "length": size,
            "alt_txt": params.get("alt_txt"),
            "data": None,
            "title": None,
            "completed": False,
            "channel": None,
            "thread_ts": None,
        }
        return {"ok": True, "upload_url": f"{self.url}/upload/v1/{file_id}", "file_id": file_id}

    async def _handle_upload(self, request: web.Request) -> web.Response:
        file_id = request.match_info["file_id"]
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file") or form.get("filename")
            data = part.file.read() if hasattr(part, "file") else str(part or "").encode()
        else:
            data = await request.read()
        with self._lock:
            upload = self._uploads.get(file_id)
            if upload is None or upload["completed"]:
                return web.Response(status=404, text="Not Found")
            upload["data"] = data
            self._bump()
        return web.Response(status=200, text=f"OK - {len(data)}")

    def _files_complete_upload_external(self, params: dict[str, Any]) -> dict[str, Any]:
        raw = params.get("files")
        try:
            files = json.loads(raw) if isinstance(raw, str) else raw
        except ValueError:
            raise _SlackError("invalid_arguments") from None
        if not isinstance(files, list) or not files:
            raise _SlackError("invalid_arguments")
        uploads = []
        for item in files:
            upload = self._uploads.get(str(item.get("id"))) if isinstance(item, dict) else None
            if upload is None or upload["data"] is None or upload["completed"]:
                raise _SlackError("file_not_found")
            uploads.append((upload, item))
        channel = None
        if params.get("channel_id"):
            channel = self._resolve_channel({"channel": params["channel_id"]})
        thread_ts = params.get("thread_ts") or None
        shared = []
        for upload, item in uploads:
            upload.update(
                completed=True,
                title=item.get("title") or upload["filename"],
                channel=channel,
                thread_ts=thread_ts,
            )
            shared.append(
                {
                    "id": upload["id"],
                    "name": upload["filename"],
                    "title": upload["title"],
                    "size": len(upload["data"]),
                }
            )
        if channel is not None:
            msg = self._store_message(
                channel,
                text=params.get("initial_comment"),
                blocks=None,
                user=self.bot_user_id,
                thread_ts=thread_ts,
            )
            msg["files"] = copy.deepcopy(shared)
        return {"ok": True, "files": shared}

    def _files_upload_retired(self, params: dict[str, Any]) -> dict[str, Any]:
        raise _SlackError("method_deprecated")

    def _api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "args": {k: v for k, v in params.items() if isinstance(v, str)}}

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        self._tickets[ticket] = time.monotonic()
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}{SOCKET_PATH}?ticket={ticket}"}

    def _auth_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"https://{self.team_domain}.slack.com/",
            "team": self.team_name,
            "user": self.bot_name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _chat_post_message(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params)
        if self._channel_rate is not None:
            self._take_channel_token(channel)
        self._validate_or_raise(params, f"chat.postMessage to {channel}")
        msg = self._store_message(
            channel,
            text=params.get("text"),
            blocks=params.get("blocks"),
            user=self.bot_user_id,
            thread_ts=params.get("thread_ts") or None,
            reply_broadcast=_flag(params.get("reply_broadcast")),
        )
        return {"ok": True, "channel": channel, "ts": msg["ts"], "message": self._public(msg)}

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

    def _chat_post_ephemeral(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params)
        user = params.get("user")
        if not user:
            raise _SlackError("user_not_found")
        known = self._users.get(user)
        if known is not None and known["deleted"]:
            raise _SlackError("user_not_found")
        self._validate_or_raise(params, f"chat.postEphemeral to {channel}")
        msg = self._store_message(
            channel,
            text=params.get("text"),
            blocks=params.get("blocks"),
            user=self.bot_user_id,
            thread_ts=params.get("thread_ts") or None,
            ephemeral_user=user,
        )
        return {"ok": True, "message_ts": msg["ts"]}

    def _chat_update(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params)
        self._validate_or_raise(params, f"chat.update in {channel}", partial=True)
        if params.get("text") is None and params.get("blocks") is None:
            raise _SlackError("no_text")
        msg = self._find_own_message(channel, params.get("ts"), delete=False)
        # Like Slack: a field left out keeps its old value; `blocks: []` removes the blocks.
        if params.get("text") is not None:
            msg["text"] = params["text"]
        if params.get("blocks") is not None:
            msg["blocks"] = copy.deepcopy(params["blocks"])
        if not msg["text"] and not msg["blocks"]:
            raise _SlackError("no_text")
        msg["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
        self._bump()
        return {
            "ok": True,
            "channel": channel,
            "ts": msg["ts"],
            "text": msg["text"],
            "message": self._public(msg),
        }

    def _chat_delete(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._resolve_channel(params)
        msg = self._find_own_message(channel, params.get("ts"), delete=True)
        del self._messages[channel][msg["ts"]]
        self._bump()
        return {"ok": True, "channel": channel, "ts": msg["ts"]}

    def _chat_get_permalink(self, params: dict[str, Any]) -> dict[str, Any]:
        # https://api.slack.com/methods/chat.getPermalink: `https://<team>.slack.com/archives/
        # <channel>/p<ts without the dot>`, with `?thread_ts=…&cid=…` for a thread reply;
        # message_not_found for a ts with no message, channel_not_found for an unknown channel.
        channel = self._resolve_channel(params)
        msg = self._messages.get(channel, {}).get(str(params.get("message_ts") or ""))
        if msg is None or msg["ephemeral_user"] is not None:
            raise _SlackError("message_not_found")
        link = (
            f"https://{self.team_domain}.slack.com/archives/{channel}/p{msg['ts'].replace('.', '')}"
        )
        if msg["thread_ts"] and msg["thread_ts"] != msg["ts"]:
            link += f"?thread_ts={msg['thread_ts']}&cid={channel}"
        return {"ok": True, "channel": channel, "permalink": link}

    def _users_info(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._users.get(str(params.get("user", "")))
        if user is None:
            raise _SlackError("user_not_found")
        return {"ok": True, "user": copy.deepcopy(user)}

    def _group_view(self, group: Mapping[str, Any], include_users: bool) -> dict[str, Any]:
        out = copy.deepcopy(dict(group))
        out["user_count"] = len(group["users"])
        if not include_users:
            out.pop("users")
        return out

    def _usergroups_list(self, params: dict[str, Any]) -> dict[str, Any]:
        include_users = _flag(params.get("include_users"))
        include_disabled = _flag(params.get("include_disabled"))
        groups = [
            self._group_view(g, include_users)
            for g in self._groups.values()
            if include_disabled or not g["date_delete"]
        ]
        return {"ok": True, "usergroups": groups}

    def _usergroups_users_list(self, params: dict[str, Any]) -> dict[str, Any]:
        group = self._groups.get(str(params.get("usergroup", "")))
        if group is None:
            raise _SlackError("no_such_subteam")
        if group["date_delete"] and not _flag(params.get("include_disabled")):
            raise _SlackError("no_such_subteam")
        return {"ok": True, "users": list(group["users"])}

    def _conversations_info(self, params: dict[str, Any]) -> dict[str, Any]:
        channel = self._channels.get(str(params.get("channel", "")))
        if channel is None or (channel["is_private"] and not channel["is_member"]):
            raise _SlackError("channel_not_found")
        return {"ok": True, "channel": copy.deepcopy(channel)}

    # -- internals: views --

    def _view_param(self, params: dict[str, Any]) -> dict[str, Any]:
        view = params.get("view")
        if isinstance(view, str):
            try:
                view = json.loads(view)
            except ValueError:
                raise _SlackError("invalid_arguments") from None
        errors = validate_view(view)
        if errors:
            # Slack answers a bad view with invalid_arguments (not invalid_blocks).
            raise _SlackError(
                "invalid_arguments",
                errors=[e.removeprefix("[ERROR] ") for e in errors],
                response_metadata={"messages": errors},
            )
        assert isinstance(view, dict)
        return view

    def _exchange_trigger(self, params: dict[str, Any]) -> _Trigger:
        trigger_id = params.get("trigger_id") or params.get("interactivity_pointer")
        if not trigger_id:
            raise _SlackError(
                "invalid_arguments",
                response_metadata={"messages": ["[ERROR] missing required field: trigger_id"]},
            )
        trigger = self._triggers.get(str(trigger_id))
        if trigger is None:
            raise _SlackError("invalid_trigger_id")
        if trigger.used:
            raise _SlackError("exchanged_trigger_id")
        if time.monotonic() - trigger.issued > self.trigger_ttl:
            raise _SlackError("expired_trigger_id")
        trigger.used = True
        return trigger

    def _save_view(
        self,
        view: Mapping[str, Any],
        *,
        view_id: str | None = None,
        root: str | None = None,
        previous: str | None = None,
    ) -> dict[str, Any]:
        view_id = view_id or f"V{next(self._counter):010d}"
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view.get("type", "modal"),
            "blocks": copy.deepcopy(view.get("blocks", [])),
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "state": {"values": {}},
            "hash": f"{int(time.time())}.{secrets.token_hex(4)}",
            "title": copy.deepcopy(view.get("title")),
            "close": copy.deepcopy(view.get("close")),
            "submit": copy.deepcopy(view.get("submit")),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "external_id": view.get("external_id", ""),
            "root_view_id": root or view_id,
            "previous_view_id": previous,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        external = stored["external_id"]
        if external and any(
            v["external_id"] == external and v["id"] != view_id for v in self._views.values()
        ):
            raise _SlackError("duplicate_external_id")
        self._views[view_id] = stored
        self._bump()
        return stored

    def _views_open(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._view_param(params)
        trigger = self._exchange_trigger(params)
        stored = self._save_view(view)
        self._stacks[trigger.user] = [stored["id"]]
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _views_push(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._view_param(params)
        trigger = self._exchange_trigger(params)
        stack = self._stacks.setdefault(trigger.user, [])
        if len(stack) >= 3:
            raise _SlackError("push_limit_reached")
        root = stack[0] if stack else None
        stored = self._save_view(view, root=root, previous=stack[-1] if stack else None)
        stack.append(stored["id"])
        return {"ok": True, "view": copy.deepcopy(stored)}

    def _views_update(self, params: dict[str, Any]) -> dict[str, Any]:
        view = self._view_param(params)
        view_id, external_id = params.get("view_id"), params.get("external_id")
        if not view_id and not external_id:
            raise _SlackError("invalid_arguments")
        old = self._views.get(str(view_id)) if view_id else None
        if old is None and external_id:
            old = next((v for v in self._views.values() if v["external_id"] == external_id), None)
        if old is None:
            raise _SlackError("not_found")
        if params.get("hash") and params["hash"] != old["hash"]:
            raise _SlackError("hash_conflict")
        stored = self._save_view(
            view, view_id=old["id"], root=old["root_view_id"], previous=old["previous_view_id"]
        )
        return {"ok": True, "view": copy.deepcopy(stored)}

    # -- internals: response URLs (called with the lock held) --

    def _post_response(self, rid: str, payload: dict[str, Any]) -> tuple[int, str, str | None]:
        """(HTTP status, body, affected message ts) for one response_url POST."""
        self._raise_fault(RESPONSE_URL)
        ru = self._response_urls.get(rid)
        if ru is None:
            return 404, "no_service", None
        if time.monotonic() - ru.created > self.response_url_ttl:
            return 404, "expired_url", None
        if ru.uses >= self.response_url_uses:
            return 404, "used_url", None
        original = self._messages.get(ru.channel, {}).get(ru.message_ts or "")
        if _flag(payload.get("delete_original")):
            if original is None:
                return 404, "message_not_found", None
            del self._messages[ru.channel][original["ts"]]
            ru.uses += 1
            return 200, "ok", original["ts"]
        response_type = payload.get("response_type") or "ephemeral"
        if response_type not in ("ephemeral", "in_channel"):
            return 400, "invalid_payload", None
        problem = self._check_content(payload, f"response_url for {ru.channel}")
        if problem is not None:
            return 400, problem[0], None
        ru.uses += 1
        if _flag(payload.get("replace_original")):
            if original is not None:
                original["text"] = payload.get("text") or ""
                original["blocks"] = copy.deepcopy(payload.get("blocks") or [])
                original["edited"] = {"user": self.bot_user_id, "ts": self._next_ts()}
                self._bump()
                return 200, "ok", original["ts"]
            self._warn(f"response_url for {ru.channel}: replace_original with no original")
        msg = self._store_message(
            ru.channel,
            text=payload.get("text"),
            blocks=payload.get("blocks"),
            user=self.bot_user_id,
            thread_ts=payload.get("thread_ts") or None,
            ephemeral_user=ru.user if response_type == "ephemeral" else None,
            source=RESPONSE_URL,
        )
        return 200, "ok", msg["ts"]


async def _read_params(request: web.Request) -> dict[str, Any]:
    """Query, form, multipart or JSON parameters of a Web API call, merged."""
    params: dict[str, Any] = dict(request.query)
    ctype = request.content_type
    if ctype.startswith("multipart/"):
        form = await request.post()
        params.update({k: v if isinstance(v, str) else "(file)" for k, v in form.items()})
        return params
    raw = await request.read()
    if not raw:
        return params
    if ctype == "application/json":
        try:
            body = json.loads(raw)
        except ValueError:
            raise _SlackError("invalid_json") from None
        if not isinstance(body, dict):
            raise _SlackError("invalid_json")
        params.update(body)
    else:
        params.update(parse_qsl(raw.decode(errors="replace"), keep_blank_values=True))
    return params


def _response_payload(raw: bytes, content_type: str) -> dict[str, Any] | None:
    """The JSON object POSTed to a response_url (or a legacy `payload=` form); None if bad."""
    try:
        if content_type == "application/x-www-form-urlencoded":
            payload = json.loads(dict(parse_qsl(raw.decode())).get("payload", "{}"))
        else:
            payload = json.loads(raw or b"{}")
    except ValueError:
        return None
    return payload if isinstance(payload, dict) else None
