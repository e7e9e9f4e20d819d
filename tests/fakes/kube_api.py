"""A fake Kubernetes API server for Flux objects, real enough for the official Python client.

Each `FakeKubeApiServer` speaks plain HTTP on 127.0.0.1 with bearer-token auth and serves
discovery, CRUD, patch, the status subresource and watches for the Flux CRDs in
tests/fixtures/flux-crds, plus core `events` and `configmaps` and `coordination.k8s.io`
`leases`. Every write is validated against the real CRD schema (ConfigMaps against
kube-apiserver's own rules, 1 MiB limit included), and errors come back as the `Status` bodies
the real kube-apiserver sends, so the client raises the same `ApiException`s it would against a
cluster.

All servers of a process share one asyncio loop on one daemon thread (`EventLoopThread`), so
a fleet of twenty clusters costs one thread. Tests drive servers synchronously: `start()`,
`stop()`, `apply()`, `inject()` and friends are thread-safe and may be called from any thread
but the loop's own.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import copy
import json
import re
import secrets
import socket
import threading
import time
import traceback
import uuid
from collections import deque
from collections.abc import Callable, Coroutine, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import yaml
from aiohttp import web

from . import crds
from .kubeconfig import write_kubeconfig

T = TypeVar("T")

DEFAULT_USER = "system:serviceaccount:flux-system:fluxbot"
DEFAULT_KUBE_VERSION = "v1.33.1"

CR_VERBS = ("delete", "deletecollection", "get", "list", "patch", "create", "update", "watch")
STATUS_VERBS = ("get", "patch", "update")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_VERSION_RE = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")
_LABEL_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_REQ = re.compile(rf"^({_LABEL_KEY})\s+(in|notin)\s*\((.*)\)$")
_EQ_REQ = re.compile(rf"^({_LABEL_KEY})\s*(==|!=|=)\s*(.*)$")
_KEY_ONLY = re.compile(rf"^(!?)\s*({_LABEL_KEY})$")

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}
_DEFAULT_MESSAGES = {
    400: "the server rejected our request for an unknown reason",
    401: "Unauthorized",
    403: "forbidden: the fake API server denied the request",
    404: "the server could not find the requested resource",
    405: "the server does not allow this method on the requested resource",
    409: "the object has been modified; please apply your changes to the latest version and "
    "try again",
    410: "too old resource version",
    422: "the server rejected our request due to an error in our request",
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "Timeout: request did not complete within requested timeout - context deadline exceeded",
}


def status_body(
    code: int, reason: str | None = None, message: str | None = None, details: Any = None
) -> dict[str, Any]:
    """A `Status` failure object as kube-apiserver sends it with an error response."""
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message if message is not None else _DEFAULT_MESSAGES.get(code, "error"),
        "reason": reason or _REASONS.get(code, "Unknown"),
    }
    if details:
        body["details"] = details
    body["code"] = code
    return body


class ApiError(Exception):
    """An API failure that the server answers with a `Status` body."""

    def __init__(
        self,
        code: int,
        reason: str | None = None,
        message: str | None = None,
        details: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        self.code = code
        self.body = status_body(code, reason, message, details)
        self.headers = dict(headers or {})
        super().__init__(self.body["message"])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _version_priority(version: str) -> tuple[int, int, int]:
    """Sort key putting the version kube-apiserver would prefer first (v2 > v1 > v1beta2)."""
    match = _VERSION_RE.match(version)
    if not match:
        return (3, 0, 0)
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0))


# --- resources ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Resource:
    """One served resource type: what discovery lists and what the URL paths address."""

    group: str
    kind: str
    plural: str
    singular: str
    list_kind: str
    short_names: tuple[str, ...]
    namespaced: bool
    has_status: bool
    versions: tuple[str, ...]
    crd: crds.CrdVersion | None = field(default=None, repr=False, compare=False)

    @property
    def key(self) -> tuple[str, str]:
        """(group, plural), the storage key of this resource."""
        return (self.group, self.plural)

    @property
    def qualified(self) -> str:
        """`plural.group` as it appears in error messages (just `plural` for core)."""
        return f"{self.plural}.{self.group}" if self.group else self.plural

    @property
    def storage_version(self) -> str:
        """The version objects are stored as: the preferred one."""
        return self.versions[0]

    @property
    def is_core_type(self) -> bool:
        """True for built-in types, which have no `generation` bookkeeping here."""
        return self.crd is None

    def api_version(self, version: str | None = None) -> str:
        """`group/version` (or just `version` for the core group)."""
        version = version or self.storage_version
        return f"{self.group}/{version}" if self.group else version


_CORE_RESOURCES = (
    Resource("", "Event", "events", "event", "EventList", ("ev",), True, False, ("v1",)),
    Resource(
        "", "ConfigMap", "configmaps", "configmap", "ConfigMapList", ("cm",), True, False, ("v1",)
    ),
    Resource(
        "coordination.k8s.io", "Lease", "leases", "lease", "LeaseList", (), True, False, ("v1",)
    ),
)


def build_resources(
    omit_groups: Iterable[str] = (), versions: Mapping[str, Sequence[str]] | None = None
) -> dict[tuple[str, str], Resource]:
    """The resources one server serves, keyed by (group, plural).

    `versions` maps a group (`source.toolkit.fluxcd.io`) or one kind of it
    (`GitRepository.source.toolkit.fluxcd.io`) to the version names to serve instead of the
    CRD's, preferred first; an empty sequence stops serving it.
    """
    omitted = set(omit_groups)
    versions = dict(versions or {})
    by_kind: dict[tuple[str, str], list[crds.CrdVersion]] = {}
    for crd in crds.served_versions():
        by_kind.setdefault((crd.group, crd.kind), []).append(crd)
    out: dict[tuple[str, str], Resource] = {}
    for (group, kind), served in by_kind.items():
        if group in omitted:
            continue
        served.sort(key=lambda c: _version_priority(c.version))
        override = versions.get(f"{kind}.{group}", versions.get(group))
        names = tuple(override) if override is not None else tuple(c.version for c in served)
        if not names:
            continue
        schema_crd = next((c for c in served if c.version == names[0]), served[0])
        out[(group, schema_crd.plural)] = Resource(
            group=group,
            kind=kind,
            plural=schema_crd.plural,
            singular=schema_crd.singular,
            list_kind=schema_crd.list_kind,
            short_names=schema_crd.short_names,
            namespaced=schema_crd.namespaced,
            has_status=schema_crd.has_status_subresource,
            versions=names,
            crd=schema_crd,
        )
    for res in _CORE_RESOURCES:
        if res.group not in omitted or res.group == "":
            out[res.key] = res
    return out


# --- selectors ----------------------------------------------------------------------------


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class LabelSelector:
    """A parsed `labelSelector`: requirements that must all hold."""

    requirements: tuple[tuple[str, str, frozenset[str]], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k`; ValueError when malformed."""
        reqs = []
        for part in _split_top_level(text or ""):
            if match := _SET_REQ.match(part):
                key, op, values = match.groups()[0], match.group(3), match.group(4)
                items = frozenset(v.strip() for v in values.split(",") if v.strip())
                reqs.append((key, op, items))
            elif match := _EQ_REQ.match(part):
                key, op, value = match.group(1), match.group(3), match.group(4).strip()
                if not re.fullmatch(r"[A-Za-z0-9]?([-A-Za-z0-9_.]*[A-Za-z0-9])?", value):
                    raise ValueError(f"unable to parse requirement: invalid label value {value!r}")
                reqs.append((key, "!=" if op == "!=" else "=", frozenset({value})))
            elif match := _KEY_ONLY.match(part):
                reqs.append((match.group(2), "!" if match.group(1) else "exists", frozenset()))
            else:
                raise ValueError(f"unable to parse requirement: found {part!r}")
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels is selected."""
        labels = labels or {}
        for key, op, values in self.requirements:
            present = key in labels
            value = labels.get(key)
            if op == "=" and not (present and value in values):
                return False
            if op == "!=" and present and value in values:
                return False
            if op == "in" and not (present and value in values):
                return False
            if op == "notin" and present and value in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
        return True


_EVENT_FIELDS = {
    "involvedObject.kind": ("involvedObject", "kind"),
    "involvedObject.namespace": ("involvedObject", "namespace"),
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.uid": ("involvedObject", "uid"),
    "involvedObject.apiVersion": ("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": ("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": ("involvedObject", "fieldPath"),
    "reason": ("reason",),
    "reportingComponent": ("reportingComponent",),
    "source": ("source", "component"),
    "type": ("type",),
}


@dataclass(frozen=True)
class FieldSelector:
    """A parsed `fieldSelector` over the fields kube-apiserver indexes for a resource."""

    requirements: tuple[tuple[tuple[str, ...], bool, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None, resource: Resource) -> FieldSelector:
        """Parse `metadata.name=x,metadata.namespace!=y`; ValueError when unsupported."""
        reqs = []
        for part in _split_top_level(text or ""):
            match = re.match(r"^([A-Za-z.]+)\s*(==|!=|=)\s*(.*)$", part)
            if not match:
                raise ValueError(f"invalid selector: {part!r}; can't understand {part!r}")
            name, op, value = match.groups()
            if name in ("metadata.name", "metadata.namespace"):
                path: tuple[str, ...] = tuple(name.split("."))
            elif resource.key == ("", "events") and name in _EVENT_FIELDS:
                path = _EVENT_FIELDS[name]
            else:
                raise ValueError(f"field label not supported: {name}")
            reqs.append((path, op != "!=", value.strip()))
        return cls(tuple(reqs))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object is selected."""
        for path, equal, value in self.requirements:
            node: Any = obj
            for step in path:
                node = node.get(step) if isinstance(node, Mapping) else None
            actual = "" if node is None else str(node)
            if (actual == value) != equal:
                return False
        return True


# --- patches ------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value and leaves both inputs alone."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise ValueError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _walk(doc: Any, tokens: list[str]) -> Any:
    for token in tokens:
        if isinstance(doc, dict):
            if token not in doc:
                raise ValueError(f"path component {token!r} not found")
            doc = doc[token]
        elif isinstance(doc, list):
            doc = doc[_index(doc, token, allow_end=False)]
        else:
            raise ValueError(f"cannot descend into {type(doc).__name__} at {token!r}")
    return doc


def _index(doc: list[Any], token: str, *, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(doc)
    if not token.isdigit():
        raise ValueError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(doc) or (index == len(doc) and not allow_end):
        raise ValueError(f"array index {index} out of bounds")
    return index


def _remove(doc: Any, tokens: list[str]) -> Any:
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise ValueError(f"unable to remove nonexistent key: {last}")
        return parent.pop(last)
    if isinstance(parent, list):
        return parent.pop(_index(parent, last, allow_end=False))
    raise ValueError(f"cannot remove from {type(parent).__name__}")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent = _walk(doc, tokens[:-1])
    last = tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, allow_end=True), value)
    else:
        raise ValueError(f"cannot add to {type(parent).__name__}")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """RFC 6902 JSON patch; returns a new value; ValueError when an operation fails."""
    if not isinstance(operations, list):
        raise ValueError("a JSON patch must be a list of operations")
    doc = copy.deepcopy(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise ValueError(f"invalid JSON patch operation {op!r}")
        kind, tokens = op["op"], _pointer(op["path"])
        if kind == "add":
            doc = _add(doc, tokens, copy.deepcopy(op.get("value")))
        elif kind == "remove":
            _remove(doc, tokens)
        elif kind == "replace":
            if not tokens:
                doc = copy.deepcopy(op.get("value"))
                continue
            _walk(doc, tokens)
            _remove(doc, tokens)
            doc = _add(doc, tokens, copy.deepcopy(op.get("value")))
        elif kind in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = _remove(doc, source) if kind == "move" else copy.deepcopy(_walk(doc, source))
            doc = _add(doc, tokens, value)
        elif kind == "test":
            if _walk(doc, tokens) != op.get("value"):
                raise ValueError(f"testing value {op['path']} failed")
        else:
            raise ValueError(f"unexpected operation {kind!r}")
    return doc


# --- the loop and the request log ---------------------------------------------------------


class EventLoopThread:
    """One asyncio event loop on one daemon thread, hosting any number of fake servers."""

    def __init__(self, name: str = "fake-kube-api") -> None:
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
            raise RuntimeError("blocking call from the fake API server's own event loop")
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a plain callback on the loop from any thread, in FIFO order."""
        self.loop.call_soon_threadsafe(fn, *args)


_shared_loop: EventLoopThread | None = None
_shared_loop_lock = threading.Lock()


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


def shared_loop() -> EventLoopThread:
    """The process-wide loop thread that servers use unless given another."""
    global _shared_loop  # noqa: PLW0603
    with _shared_loop_lock:
        if _shared_loop is None:
            _shared_loop = EventLoopThread()
        return _shared_loop


@dataclass
class RequestRecord:
    """One request as the server saw it, for assertions about what a client did."""

    method: str
    path: str
    query: dict[str, str]
    content_type: str | None
    body: Any
    field_manager: str | None
    user_agent: str | None = None
    status: int | None = None  # 0 when the connection was cut without an answer

    @property
    def is_write(self) -> bool:
        """True for anything but a read (GET/HEAD)."""
        return self.method not in ("GET", "HEAD")


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

    def matches(self, method: str, path: str, is_watch: bool) -> bool:
        """Whether this fault applies to a request."""
        if self.times is not None and self.hits >= self.times:
            return False
        if self.method is not None and self.method.upper() != method:
            return False
        if self.watch is not None and self.watch != is_watch:
            return False
        return self.path_regex is None or bool(self.path_regex.search(path))


@dataclass(frozen=True)
class _Deny:
    verb: str
    resource: str
    group: str | None
    namespace: str | None


@dataclass
class _Stored:
    obj: dict[str, Any]
    raw: bytes


@dataclass
class _Event:
    rv: int
    type: str
    key: tuple[str, str]
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    cache: dict[tuple[str, str], bytes] = field(default_factory=dict)


class _Dropped(Exception):
    """The connection is to be cut without an answer."""


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


def _with_rv(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}


def _in_version(obj: dict[str, Any], res: Resource, version: str) -> dict[str, Any]:
    api_version = res.api_version(version)
    if obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version}


@dataclass
class _Request:
    resource: Resource
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None


# --- the server ---------------------------------------------------------------------------


class FakeKubeApiServer:
    """One fake cluster's API server: HTTP on 127.0.0.1, state kept across stop/start.

    `omit_groups` leaves API groups out entirely (Flux not installed); `versions` serves a
    group, or one `Kind.group`, under other version names, preferred first (an older Flux).
    """

    def __init__(
        self,
        name: str = "fake",
        *,
        token: str | None = None,
        user: str = DEFAULT_USER,
        omit_groups: Iterable[str] = (),
        versions: Mapping[str, Sequence[str]] | None = None,
        history_size: int = 1000,
        bookmark_interval: float = 1.0,
        validate: bool = True,
        kube_version: str = DEFAULT_KUBE_VERSION,
        port: int = 0,
        loop: EventLoopThread | None = None,
    ) -> None:
        self.name = name
        self.token = token or f"token-{name}-{secrets.token_hex(6)}"
        self.user = user
        self.validate = validate
        self.kube_version = kube_version
        self.bookmark_interval = bookmark_interval
        self.resources = build_resources(omit_groups, versions)
        self._by_gv: dict[tuple[str, str], dict[str, Resource]] = {}
        for res in self.resources.values():
            for version in res.versions:
                self._by_gv.setdefault((res.group, version), {})[res.plural] = res
        self._group_versions = _group_versions(self.resources.values(), versions or {})
        self._loop = loop or shared_loop()
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str], dict[tuple[str, str], _Stored]] = {
            key: {} for key in self.resources
        }
        self._rv = 0
        self._history: deque[_Event] = deque(maxlen=max(1, history_size))
        self._compacted_rv = 0
        self._watchers: set[_Watcher] = set()
        self._drop_after: int | None = None
        self._faults: list[Fault] = []
        self._denies: list[_Deny] = []
        self._review_grants: list[tuple[str | None, str | None, str, str, str | None]] = []
        self._requests: list[RequestRecord] = []
        self._release_generation = 0
        self.internal_errors: list[str] = []
        self._port = port
        self._runner: web.AppRunner | None = None

    # -- lifecycle --

    @property
    def port(self) -> int:
        """The TCP port; fixed by the first start() and reused by later ones."""
        return self._port

    @property
    def url(self) -> str:
        """`http://127.0.0.1:PORT`, the `server:` of a kubeconfig."""
        if not self._port:
            raise RuntimeError("the server has no port until it is started")
        return f"http://127.0.0.1:{self._port}"

    @property
    def running(self) -> bool:
        """Whether the server accepts connections now."""
        return self._runner is not None

    def start(self) -> FakeKubeApiServer:
        """Listen (again) on the server's port; state from before a stop() is kept."""
        if not self.running:
            self._loop.run(self._astart())
        return self

    def stop(self) -> None:
        """Close open watches and connections and stop listening; connecting is refused."""
        if self.running:
            self._loop.run(self._astop())

    def __enter__(self) -> FakeKubeApiServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    async def _astart(self) -> None:
        if self._runner is not None:
            return
        sock = bind_loopback(self._port)
        self._port = sock.getsockname()[1]
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await runner.setup()
        site = web.SockSite(runner, sock)
        await site.start()
        self._runner = runner

    async def _astop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is None:
            return
        with self._lock:
            self._release_generation += 1
            for watcher in self._watchers:
                watcher.queue.put_nowait(_CLOSE)
        await runner.cleanup()

    # -- Python API: seeding and inspection --

    @property
    def resource_version(self) -> str:
        """The server's current resourceVersion (one counter for all objects)."""
        return str(self._rv)

    def served_api_versions(self) -> list[str]:
        """Every `group/version` this server serves, e.g. for assertions on discovery."""
        return sorted({res.api_version(v) for res in self.resources.values() for v in res.versions})

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an object as a fixture or controller would; ValueError if invalid.

        Unlike an HTTP write this keeps the given `status` (and keeps the stored one when the
        object has none), and honours a given uid, creationTimestamp or generation (so a test
        can seed an object whose controller has not caught up yet).
        """
        obj = copy.deepcopy(dict(obj))
        res, version = self._resolve_py(obj.get("apiVersion"), obj.get("kind"))
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise ValueError(f"{res.kind} has no metadata")
        namespace = meta.setdefault("namespace", "default")
        name = meta.get("name")
        with self._lock:
            old = self._store[res.key].get((namespace, name))
            if old is None:
                new = self._fill_new(res, version, obj)
            else:
                new = obj
                if "status" not in new and "status" in old.obj:
                    new["status"] = copy.deepcopy(old.obj["status"])
                new_meta = new["metadata"]
                for key in ("uid", "creationTimestamp", "deletionTimestamp", "managedFields"):
                    if key in old.obj["metadata"] and key not in new_meta:
                        new_meta[key] = copy.deepcopy(old.obj["metadata"][key])
                if "generation" not in new_meta:
                    self._set_generation(res, old.obj, new)
            try:
                self._validate(res, version, new)
            except ApiError as err:
                raise ValueError(err.body["message"]) from None
            return copy.deepcopy(_in_version(self._commit(res, old, new).obj, res, version))

    def apply_many(self, objs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """apply() each object in turn."""
        return [self.apply(obj) for obj in objs]

    def load_yaml(self, source: str | Path) -> list[dict[str, Any]]:
        """apply() every object of a YAML file or text (multi-document, `kind: List` too)."""
        text = source
        if isinstance(source, Path) or ("\n" not in source and _is_file(source)):
            text = Path(source).read_text()
        objs: list[dict[str, Any]] = []
        for doc in yaml.safe_load_all(str(text)):
            if not doc:
                continue
            if str(doc.get("kind", "")).endswith("List") and "items" in doc:
                objs.extend(doc.get("items") or [])
            else:
                objs.append(doc)
        return self.apply_many(objs)

    def set_status(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Replace an object's status as its controller would; KeyError if there is none."""
        res, version = self._resolve_py(api_version, kind)
        with self._lock:
            old = self._store[res.key].get((namespace, name))
            if old is None:
                raise KeyError(f'{res.qualified} "{name}" not found in namespace {namespace!r}')
            new = copy.deepcopy(old.obj)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = copy.deepcopy(dict(status))
            try:
                self._validate(res, version, new)
            except ApiError as err:
                raise ValueError(err.body["message"]) from None
            return copy.deepcopy(_in_version(self._commit(res, old, new).obj, res, version))

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the stored object, or None."""
        res, version = self._resolve_py(api_version, kind)
        with self._lock:
            stored = self._store[res.key].get((namespace, name))
            return None if stored is None else copy.deepcopy(_in_version(stored.obj, res, version))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Remove an object at once (finalizers ignored); False if it did not exist."""
        res, _version = self._resolve_py(api_version, kind)
        with self._lock:
            old = self._store[res.key].get((namespace, name))
            if old is None:
                return False
            self._commit(res, old, None)
            return True

    def objects(
        self, kind: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the stored objects, optionally of one kind or namespace, sorted."""
        with self._lock:
            return [
                copy.deepcopy(stored.obj)
                for res in self.resources.values()
                if kind is None or res.kind == kind
                for (ns, _name), stored in sorted(self._store[res.key].items())
                if namespace is None or ns == namespace
            ]

    def compact(self) -> None:
        """Forget all watch history, like etcd compaction: older resourceVersions now get 410."""
        with self._lock:
            self._history.clear()
            self._compacted_rv = self._rv

    # -- Python API: the request log --

    def requests(
        self, method: str | None = None, path_contains: str | None = None
    ) -> list[RequestRecord]:
        """Requests received so far, oldest first, optionally filtered."""
        with self._lock:
            records = list(self._requests)
        return [
            r
            for r in records
            if (method is None or r.method == method.upper())
            and (path_contains is None or path_contains in r.path)
        ]

    def writes(self) -> list[RequestRecord]:
        """Every request that was not a read, whether or not it succeeded."""
        return [r for r in self.requests() if r.is_write]

    def clear_requests(self) -> None:
        """Empty the request log."""
        with self._lock:
            self._requests.clear()

    # -- Python API: RBAC and faults --

    def deny(
        self,
        verb: str,
        resource: str,
        *,
        group: str | None = None,
        namespace: str | None = None,
    ) -> None:
        """Forbid `verb` (or "*") on `resource` ("gitrepositories", "x/status" or "*").

        `group` and `namespace` narrow the rule; by default it applies everywhere.
        """
        with self._lock:
            self._denies.append(_Deny(verb, resource, group, namespace))

    def grant_review(
        self,
        *,
        user: str | None = None,
        group: str | None = None,
        verb: str = "*",
        resource: str = "*",
        namespace: str | None = None,
    ) -> None:
        """Let SubjectAccessReviews for `user` (or members of `group`) allow `verb` on `resource`.

        Reviews nothing grants are denied, as RBAC denies by default.
        """
        with self._lock:
            self._review_grants.append((user, group, verb, resource, namespace))

    def _review(self, review: Any) -> dict[str, Any]:
        spec = review.get("spec", {}) if isinstance(review, dict) else {}
        attrs = spec.get("resourceAttributes") or {}
        user, groups = spec.get("user"), set(spec.get("groups") or [])
        with self._lock:
            grants = list(self._review_grants)
        allowed = any(
            (g_user is None or g_user == user)
            and (g_group is None or g_group in groups)
            and (g_user is not None or g_group is not None)
            and g_verb in ("*", attrs.get("verb"))
            and g_resource in ("*", attrs.get("resource"))
            and (g_ns is None or g_ns == attrs.get("namespace"))
            for g_user, g_group, g_verb, g_resource, g_ns in grants
        )
        reason = "granted by the fake's review rules" if allowed else ""
        return {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": allowed, **({"reason": reason} if reason else {})},
        }

    def clear_denies(self) -> None:
        """Allow everything again."""
        with self._lock:
            self._denies.clear()

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
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear_faults(self) -> None:
        """Remove every injected fault, release hanging requests, stop dropping watches."""
        with self._lock:
            self._faults.clear()
            self._release_generation += 1
            self._drop_after = None
            for watcher in self._watchers:
                watcher.remaining = None

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

    # -- internals: resolution, validation, commits --

    def _resolve_py(self, api_version: Any, kind: Any) -> tuple[Resource, str]:
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("object needs apiVersion and kind")
        group, _, version = api_version.rpartition("/")
        for res in self.resources.values():
            if res.group == group and res.kind == kind and version in res.versions:
                return res, version
        raise ValueError(
            f'no matches for kind "{kind}" in version "{api_version}" on server {self.name!r}'
        )

    def _validate(self, res: Resource, version: str, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        name = meta.get("name") if isinstance(meta, dict) else None
        problems: list[str] = []
        if isinstance(name, str) and name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
            problems.append(
                f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
                "consist of lower case alphanumeric characters, '-' or '.', and must start and "
                "end with an alphanumeric character"
            )
        if res.crd is not None and self.validate:
            # Older served versions are checked against today's schema of the same kind.
            checked = {**obj, "apiVersion": res.crd.api_version}
            problems.extend(res.crd.errors(checked))
        else:
            problems.extend(_core_metadata_errors(meta))
            if res.key == ("", "events") and not isinstance(obj.get("involvedObject"), dict):
                problems.append("involvedObject: Required value")
            if res.key == ("", "configmaps"):
                problems.extend(_configmap_errors(obj))
        if problems:
            kind = f"{res.kind}.{res.group}" if res.group else res.kind
            listed = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
            causes = []
            for problem in problems:
                path, _, text = problem.partition(": ")
                causes.append({"reason": "FieldValueInvalid", "message": text, "field": path})
            raise ApiError(
                422,
                "Invalid",
                f'{kind} "{name}" is invalid: {listed}',
                {"name": name, "group": res.group, "kind": res.kind, "causes": causes},
            )

    @staticmethod
    def _spec_part(res: Resource, obj: Mapping[str, Any]) -> dict[str, Any]:
        skip = {"metadata", "apiVersion", "kind"} | ({"status"} if res.has_status else set())
        return {k: v for k, v in obj.items() if k not in skip}

    def _set_generation(self, res: Resource, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        if res.is_core_type:
            return
        generation = old["metadata"].get("generation", 1)
        if self._spec_part(res, old) != self._spec_part(res, new):
            generation += 1
        new["metadata"]["generation"] = generation

    def _fill_new(self, res: Resource, version: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"] = res.api_version(version)
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.pop("resourceVersion", None)
        if not res.is_core_type:
            meta.setdefault("generation", 1)
        return obj

    def _commit(self, res: Resource, old: _Stored | None, new: dict[str, Any] | None) -> _Stored:
        """Store `new` (None deletes) with a fresh resourceVersion and tell the watchers."""
        store = self._store[res.key]
        if new is not None:
            new["apiVersion"] = res.api_version()
            if old is not None and _same(old.obj, new):
                return old
        self._rv += 1
        rv = self._rv
        if new is None:
            assert old is not None
            gone = _with_rv(old.obj, rv)
            meta = gone["metadata"]
            key = (meta["namespace"], meta["name"])
            del store[key]
            event = _Event(rv, "DELETED", res.key, key[0], gone, old.obj)
            stored = _Stored(gone, b"")
        else:
            new["metadata"]["resourceVersion"] = str(rv)
            meta = new["metadata"]
            key = (meta["namespace"], meta["name"])
            stored = _Stored(new, _dumps(new))
            store[key] = stored
            kind = "ADDED" if old is None else "MODIFIED"
            event = _Event(rv, kind, res.key, key[0], new, None if old is None else old.obj)
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for watcher in self._watchers:
            if watcher.resource.key == res.key:
                self._loop.call_soon(watcher.queue.put_nowait, event)
        return stored

    # -- HTTP --

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body_bytes = await request.read()
        query = dict(request.query)
        content_type = request.headers.get("Content-Type")
        record = RequestRecord(
            method=request.method,
            path=request.path,
            query=query,
            content_type=content_type,
            body=_parse_body_for_log(body_bytes, content_type),
            field_manager=query.get("fieldManager"),
            user_agent=request.headers.get("User-Agent"),
        )
        with self._lock:
            self._requests.append(record)
        try:
            response = await self._respond(request, record, body_bytes)
        except ApiError as err:
            response = _status_response(err)
        except _Dropped:
            if request.transport is not None:
                request.transport.abort()
            record.status = 0
            return web.Response(status=503)
        except Exception:  # noqa: BLE001 - a bug in the fake must surface as a 500, not a hang
            self.internal_errors.append(traceback.format_exc())
            response = _status_response(
                ApiError(500, "InternalError", "fake API server error: " + traceback.format_exc())
            )
        record.status = response.status
        return response

    async def _respond(
        self, request: web.Request, record: RequestRecord, body_bytes: bytes
    ) -> web.StreamResponse:
        is_watch = record.query.get("watch") in ("true", "1")
        fault = self._take_fault(record.method, record.path, is_watch)
        if fault is not None:
            if fault.latency:
                await self._delay(fault.latency)
            if fault.hang and not await self._hang(request):
                # The client gave up or the server is going away: the request never happened.
                raise _Dropped
            if fault.status is not None:
                raise _fault_error(fault)
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            raise ApiError(401, "Unauthorized", "Unauthorized")
        segments = [s for s in record.path.split("/") if s]
        if record.path in ("/healthz", "/livez", "/readyz"):
            return web.Response(text="ok")
        if record.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            if record.method != "POST":
                raise ApiError(405)
            review = _parse_body(body_bytes, record.content_type, record.method)
            return web.Response(
                body=_dumps(self._review(review)), status=201, content_type="application/json"
            )
        discovery = self._discovery(segments)
        if discovery is not None:
            if record.method != "GET":
                raise ApiError(405)
            return web.Response(body=_dumps(discovery), content_type="application/json")
        target = self._route(segments)
        verb = self._verb(record.method, target, is_watch)
        self._authorize(verb, target)
        if verb == "watch":
            return await self._serve_watch(request, target, record.query)
        body: Any = None
        if body_bytes:
            body = _parse_body(body_bytes, record.content_type, record.method)
        manager = record.field_manager or (record.user_agent or "unknown").split("/")[0]
        with self._lock:
            status, result = self._dispatch(verb, target, record, body, manager)
        raw = result if isinstance(result, bytes) else _dumps(result)
        return web.Response(body=raw, status=status, content_type="application/json")

    def _take_fault(self, method: str, path: str, is_watch: bool) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(method, path, is_watch):
                    fault.hits += 1
                    return fault
        return None

    async def _delay(self, seconds: float) -> None:
        """Sleep, but give up when the server stops so that stop() need not wait for us."""
        loop = asyncio.get_running_loop()
        end = loop.time() + seconds
        while (left := end - loop.time()) > 0:
            if self._runner is None:
                raise _Dropped
            await asyncio.sleep(min(left, 0.02))

    async def _hang(self, request: web.Request) -> bool:
        """Wait until released (True) or the client disconnects (False)."""
        generation = self._release_generation
        while self._release_generation == generation:
            transport = request.transport
            if transport is None or transport.is_closing():
                return False
            await asyncio.sleep(0.02)
        return self._runner is not None

    def _discovery(self, segments: list[str]) -> dict[str, Any] | None:
        if segments == ["version"]:
            major, minor = self.kube_version.lstrip("v").split(".")[:2]
            return {
                "major": major,
                "minor": minor,
                "gitVersion": self.kube_version,
                "gitCommit": "0" * 40,
                "gitTreeState": "clean",
                "buildDate": "2025-05-15T08:00:00Z",
                "goVersion": "go1.24.2",
                "compiler": "gc",
                "platform": "linux/amd64",
            }
        if segments == ["api"]:
            return {
                "kind": "APIVersions",
                "versions": ["v1"],
                "serverAddressByClientCIDRs": [
                    {"clientCIDR": "0.0.0.0/0", "serverAddress": f"127.0.0.1:{self._port}"}
                ],
            }
        if segments == ["api", "v1"]:
            return self._resource_list("", "v1")
        if segments == ["apis"]:
            groups = sorted({res.group for res in self.resources.values() if res.group})
            return {
                "kind": "APIGroupList",
                "apiVersion": "v1",
                "groups": [self._group(g) for g in groups],
            }
        if len(segments) == 2 and segments[0] == "apis":
            group = self._group(segments[1])
            if not group["versions"]:
                raise ApiError(404)
            return {"kind": "APIGroup", "apiVersion": "v1", **group}
        if len(segments) == 3 and segments[0] == "apis":
            if (segments[1], segments[2]) not in self._by_gv:
                raise ApiError(404)
            return self._resource_list(segments[1], segments[2])
        return None

    def _group(self, group: str) -> dict[str, Any]:
        versions = self._group_versions.get(group, [])
        entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
        return {
            "name": group,
            "versions": entries,
            "preferredVersion": entries[0] if entries else {},
        }

    def _resource_list(self, group: str, version: str) -> dict[str, Any]:
        resources = []
        for plural, res in sorted(self._by_gv.get((group, version), {}).items()):
            resources.append(
                {
                    "name": plural,
                    "singularName": res.singular,
                    "namespaced": res.namespaced,
                    "kind": res.kind,
                    "verbs": list(CR_VERBS),
                    **({"shortNames": list(res.short_names)} if res.short_names else {}),
                }
            )
            if res.has_status:
                resources.append(
                    {
                        "name": f"{plural}/status",
                        "singularName": "",
                        "namespaced": res.namespaced,
                        "kind": res.kind,
                        "verbs": list(STATUS_VERBS),
                    }
                )
        return {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": f"{group}/{version}" if group else version,
            "resources": resources,
        }

    def _route(self, segments: list[str]) -> _Request:
        if segments[:2] == ["api", "v1"]:
            group, version, rest = "", "v1", segments[2:]
        elif len(segments) >= 3 and segments[0] == "apis":
            group, version, rest = segments[1], segments[2], segments[3:]
        else:
            raise ApiError(404)
        served = self._by_gv.get((group, version))
        if not served or not rest:
            raise ApiError(404)
        namespace: str | None = None
        if rest[0] == "namespaces":
            if len(rest) < 3:
                raise ApiError(404)
            namespace, rest = rest[1], rest[2:]
        res = served.get(rest[0])
        if res is None or len(rest) > 3:
            raise ApiError(404)
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if res.namespaced and namespace is None and name is not None:
            raise ApiError(404)
        if sub is not None and not (sub == "status" and res.has_status):
            raise ApiError(404)
        return _Request(res, version, namespace, name, sub)

    @staticmethod
    def _verb(method: str, target: _Request, is_watch: bool) -> str:
        collection = target.name is None
        verbs = {
            ("GET", True): "watch" if is_watch else "list",
            ("GET", False): "get",
            ("POST", True): "create",
            ("PUT", False): "update",
            ("PATCH", False): "patch",
            ("DELETE", False): "delete",
            ("DELETE", True): "deletecollection",
        }
        verb = verbs.get((method, collection))
        if verb is None or (target.subresource and verb not in STATUS_VERBS):
            raise ApiError(405)
        if (
            target.resource.namespaced
            and target.namespace is None
            and verb not in ("list", "watch")
        ):
            # Only reads span namespaces; kube-apiserver has no such path for anything else.
            raise ApiError(404)
        return verb

    def _authorize(self, verb: str, target: _Request) -> None:
        res = target.resource
        resource = res.plural + (f"/{target.subresource}" if target.subresource else "")
        with self._lock:
            denied = any(
                d.verb in (verb, "*")
                and d.resource in (resource, "*")
                and d.group in (None, res.group)
                and d.namespace in (None, target.namespace)
                for d in self._denies
            )
        if not denied:
            return
        scope = (
            f'in the namespace "{target.namespace}"'
            if target.namespace is not None
            else "at the cluster scope"
        )
        named = f' "{target.name}"' if target.name else ""
        details: dict[str, str] = {}
        if target.name:
            details["name"] = target.name
        if res.group:
            details["group"] = res.group
        details["kind"] = res.plural
        raise ApiError(
            403,
            "Forbidden",
            f'{res.qualified}{named} is forbidden: User "{self.user}" cannot {verb} resource '
            f'"{resource}" in API group "{res.group}" {scope}',
            details,
        )

    def _dispatch(
        self, verb: str, target: _Request, record: RequestRecord, body: Any, manager: str
    ) -> tuple[int, dict[str, Any] | bytes]:
        """(HTTP status, body) of a non-watch resource request."""
        res = target.resource
        is_apply = _media_type(record.content_type) == APPLY_PATCH
        if verb == "list":
            return 200, self._list(target, record.query)
        if verb == "deletecollection":
            return 200, self._delete_collection(target, record.query)
        if verb == "create":
            return 201, self._create(target, body, manager, record.query)
        assert target.name is not None
        namespace = target.namespace or ""
        stored = self._store[res.key].get((namespace, target.name))
        if verb == "patch" and stored is None and is_apply and not target.subresource:
            applied = _apply_body(body, target)
            manager = _require_manager(record)
            return 201, self._create(target, applied, manager, record.query, "Apply")
        if stored is None:
            raise self._not_found(res, target.name)
        if verb == "get":
            return 200, _in_version(stored.obj, res, target.version)
        if verb == "delete":
            return 200, self._delete(target, stored, body, record.query)
        if verb == "update":
            new = self._updated(target, stored, body)
        else:
            new = self._patched(target, stored, body, record)
        _record_manager(new, manager, "Apply" if is_apply else "Update", target)
        return 200, self._write(target, stored, new, record.query)

    def _not_found(self, res: Resource, name: str) -> ApiError:
        details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.plural}
        return ApiError(404, "NotFound", f'{res.qualified} "{name}" not found', details)

    def _conflict(self, res: Resource, name: str, message: str | None = None) -> ApiError:
        details = {"name": name, **({"group": res.group} if res.group else {}), "kind": res.plural}
        text = message or (
            "the object has been modified; please apply your changes to the latest version "
            "and try again"
        )
        return ApiError(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {res.qualified} "{name}": {text}',
            details,
        )

    def _selectors(self, target: _Request, query: Mapping[str, str]) -> tuple[Any, Any]:
        try:
            labels = LabelSelector.parse(query.get("labelSelector"))
            fields = FieldSelector.parse(query.get("fieldSelector"), target.resource)
        except ValueError as err:
            raise ApiError(400, "BadRequest", str(err)) from None
        return labels, fields

    def _matching(self, target: _Request, query: Mapping[str, str]) -> list[_Stored]:
        labels, fields = self._selectors(target, query)
        out = []
        for (ns, _name), stored in sorted(self._store[target.resource.key].items()):
            if target.namespace is not None and ns != target.namespace:
                continue
            obj = stored.obj
            if labels.matches(obj["metadata"].get("labels")) and fields.matches(obj):
                out.append(stored)
        return out

    def _list(self, target: _Request, query: Mapping[str, str]) -> bytes:
        res = target.resource
        items = self._matching(target, query)
        meta: dict[str, Any] = {"resourceVersion": str(self._rv)}
        start = 0
        if token := query.get("continue"):
            try:
                after = json.loads(base64.urlsafe_b64decode(token.encode()))["start"]
            except (ValueError, KeyError, TypeError):
                raise ApiError(400, "BadRequest", "continue key is not valid") from None
            start = next(
                (
                    i
                    for i, s in enumerate(items)
                    if [s.obj["metadata"]["namespace"], s.obj["metadata"]["name"]] > after
                ),
                len(items),
            )
        items = items[start:]
        limit = int(query.get("limit") or 0)
        if limit > 0 and len(items) > limit:
            last = items[limit - 1].obj["metadata"]
            token_body = {"rv": self._rv, "start": [last["namespace"], last["name"]]}
            meta["continue"] = base64.urlsafe_b64encode(_dumps(token_body)).decode()
            meta["remainingItemCount"] = len(items) - limit
            items = items[:limit]
        api_version = res.api_version(target.version)
        if api_version == res.api_version():
            raws = [s.raw for s in items]
        else:
            raws = [_dumps(_in_version(s.obj, res, target.version)) for s in items]
        head = _dumps({"apiVersion": api_version, "kind": res.list_kind, "metadata": meta})
        return head[:-1] + b',"items":[' + b",".join(raws) + b"]}"

    def _check_identity(self, target: _Request, body: Any) -> dict[str, Any]:
        res = target.resource
        if not isinstance(body, dict):
            raise ApiError(400, "BadRequest", "the body of the request must be a JSON object")
        expected = res.api_version(target.version)
        if res.is_core_type:
            # Built-in types decode with the URL's group/version/kind as defaults.
            body.setdefault("apiVersion", expected)
            body.setdefault("kind", res.kind)
        if body.get("kind") != res.kind or body.get("apiVersion") != expected:
            raise ApiError(
                400,
                "BadRequest",
                f"the API version in the data ({body.get('apiVersion')}) and kind "
                f"({body.get('kind')}) do not match the expected {expected} {res.kind}",
            )
        meta = body.setdefault("metadata", {})
        if not isinstance(meta, dict):
            raise ApiError(400, "BadRequest", "metadata must be an object")
        ns = meta.get("namespace")
        if ns and target.namespace and ns != target.namespace:
            raise ApiError(
                400,
                "BadRequest",
                "the namespace of the provided object does not match the namespace sent on "
                "the request",
            )
        if target.namespace:
            meta["namespace"] = target.namespace
        return body

    def _create(
        self,
        target: _Request,
        body: Any,
        manager: str,
        query: Mapping[str, str],
        operation: str = "Update",
    ) -> dict[str, Any]:
        res = target.resource
        obj = self._check_identity(target, body)
        meta = obj["metadata"]
        if meta.get("resourceVersion"):
            raise ApiError(
                400, "BadRequest", "resourceVersion should not be set on objects to be created"
            )
        if not meta.get("name") and meta.get("generateName"):
            alphabet = "bcdfghjklmnpqrstvwxz2456789"
            meta["name"] = meta["generateName"] + "".join(
                secrets.choice(alphabet) for _ in range(5)
            )
        for key in ("uid", "creationTimestamp", "deletionTimestamp", "generation"):
            meta.pop(key, None)
        if res.has_status:
            obj.pop("status", None)
        self._validate(res, target.version, obj)
        if (meta["namespace"], meta["name"]) in self._store[res.key]:
            details = {"name": meta["name"], "group": res.group, "kind": res.plural}
            raise ApiError(
                409,
                "AlreadyExists",
                f'{res.qualified} "{meta["name"]}" already exists',
                details,
            )
        new = self._fill_new(res, target.version, obj)
        _record_manager(new, manager, operation, target)
        if query.get("dryRun") == "All":
            return _in_version(new, res, target.version)
        return _in_version(self._commit(res, None, new).obj, res, target.version)

    def _updated(self, target: _Request, stored: _Stored, body: Any) -> dict[str, Any]:
        res = target.resource
        obj = self._check_identity(target, body)
        name = obj["metadata"].get("name")
        if name != target.name:
            raise ApiError(
                400,
                "BadRequest",
                f"the name of the object ({name}) does not match the name on the URL "
                f"({target.name})",
            )
        rv = obj["metadata"].get("resourceVersion")
        if rv and rv != stored.obj["metadata"]["resourceVersion"]:
            raise self._conflict(res, target.name or "")
        return self._merge_into(target, stored, obj)

    def _patched(
        self, target: _Request, stored: _Stored, body: Any, record: RequestRecord
    ) -> dict[str, Any]:
        res = target.resource
        content_type = _media_type(record.content_type)
        current = _in_version(stored.obj, res, target.version)
        try:
            if content_type == MERGE_PATCH or (
                content_type == STRATEGIC_PATCH and res.is_core_type
            ):
                if not isinstance(body, dict):
                    raise ApiError(400, "BadRequest", "a merge patch must be a JSON object")
                patched = merge_patch(current, body)
            elif content_type == JSON_PATCH:
                patched = json_patch(current, body)
            elif content_type == APPLY_PATCH:
                _require_manager(record)
                patched = merge_patch(current, _apply_body(body, target))
            else:
                accepted = f"{JSON_PATCH}, {MERGE_PATCH}, {APPLY_PATCH}"
                if res.is_core_type:
                    accepted += f", {STRATEGIC_PATCH}"
                raise ApiError(
                    415,
                    "UnsupportedMediaType",
                    f"the body of the request was in an unknown format - accepted media types "
                    f"include: {accepted}",
                )
        except ValueError as err:
            raise ApiError(422, "Invalid", f"the server rejected our request: {err}") from None
        if not isinstance(patched, dict) or not isinstance(patched.get("metadata"), dict):
            raise ApiError(422, "Invalid", "the patch removed the object's metadata")
        rv = patched["metadata"].get("resourceVersion")
        if rv and rv != stored.obj["metadata"]["resourceVersion"]:
            raise self._conflict(res, target.name or "")
        for key in ("apiVersion", "kind"):
            if patched.get(key) != current.get(key):
                raise ApiError(400, "BadRequest", f"a patch may not change {key}")
        if patched["metadata"].get("name") != target.name or patched["metadata"].get(
            "namespace"
        ) != (target.namespace or ""):
            raise ApiError(400, "BadRequest", "a patch may not change the name or namespace")
        return self._merge_into(target, stored, patched)

    def _merge_into(self, target: _Request, stored: _Stored, obj: dict[str, Any]) -> dict[str, Any]:
        """The object to store after a write of `obj`, keeping what the writer may not change."""
        res = target.resource
        old = stored.obj
        if target.subresource == "status":
            new = copy.deepcopy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return new
        new = obj
        if res.has_status:
            if "status" in old:
                new["status"] = copy.deepcopy(old["status"])
            else:
                new.pop("status", None)
        meta, old_meta = new["metadata"], old["metadata"]
        for key in (
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ):
            if key in old_meta:
                meta[key] = old_meta[key]
            else:
                meta.pop(key, None)
        meta["managedFields"] = copy.deepcopy(old_meta.get("managedFields", []))
        self._set_generation(res, old, new)
        return new

    def _write(
        self,
        target: _Request,
        stored: _Stored,
        new: dict[str, Any],
        query: Mapping[str, str],
    ) -> dict[str, Any]:
        res = target.resource
        new["apiVersion"] = res.api_version(target.version)
        self._validate(res, target.version, new)
        if query.get("dryRun") == "All":
            return new
        meta = new["metadata"]
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            self._commit(res, stored, None)
            return _in_version(new, res, target.version)
        return _in_version(self._commit(res, stored, new).obj, res, target.version)

    def _delete(
        self, target: _Request, stored: _Stored, body: Any, query: Mapping[str, str]
    ) -> dict[str, Any]:
        res = target.resource
        meta = stored.obj["metadata"]
        pre = (body or {}).get("preconditions") or {} if isinstance(body, dict) else {}
        if pre.get("resourceVersion") and pre["resourceVersion"] != meta["resourceVersion"]:
            raise self._conflict(
                res,
                meta["name"],
                f"Precondition failed: ResourceVersion in precondition: "
                f"{pre['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        if pre.get("uid") and pre["uid"] != meta["uid"]:
            raise self._conflict(
                res,
                meta["name"],
                f"Precondition failed: UID in precondition: {pre['uid']}, UID in object meta: "
                f"{meta['uid']}",
            )
        if query.get("dryRun") == "All":
            return _in_version(stored.obj, res, target.version)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return _in_version(stored.obj, res, target.version)
            new = copy.deepcopy(stored.obj)
            new["metadata"]["deletionTimestamp"] = _now()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            return _in_version(self._commit(res, stored, new).obj, res, target.version)
        self._commit(res, stored, None)
        details = {
            "name": meta["name"],
            **({"group": res.group} if res.group else {}),
            "kind": res.plural,
            "uid": meta["uid"],
        }
        return {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": details,
        }

    def _delete_collection(self, target: _Request, query: Mapping[str, str]) -> dict[str, Any]:
        res = target.resource
        deleted = []
        for stored in self._matching(target, query):
            deleted.append(_in_version(stored.obj, res, target.version))
            if query.get("dryRun") != "All":
                self._commit(res, stored, None)
        return {
            "apiVersion": res.api_version(target.version),
            "kind": res.list_kind,
            "metadata": {"resourceVersion": str(self._rv)},
            "items": deleted,
        }

    # -- watch --

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
        await response.write(line)
        if watcher.remaining is not None:
            watcher.remaining -= 1
            if watcher.remaining <= 0:
                return False
        return True


async def _finish(response: web.StreamResponse) -> web.StreamResponse:
    with contextlib.suppress(ConnectionError, RuntimeError):
        await response.write_eof()
    return response


def _core_metadata_errors(meta: Any) -> list[str]:
    """ObjectMeta checks for built-in kinds, which have no CRD schema to speak for them."""
    if not isinstance(meta, dict):
        return ["metadata: Required value"]
    problems = []
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        problems.append("metadata.name: Required value")
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            problems.append(f"metadata.{key}: must be a map of string to string")
    return problems


_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIGMAP_BYTES = 1024 * 1024


def _configmap_errors(obj: Mapping[str, Any]) -> list[str]:
    """ConfigMap checks kube-apiserver makes: key names, base64 binaryData, the 1 MiB limit."""
    problems = []
    total = 0
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    for field_name, values in (("data", data), ("binaryData", binary)):
        if not isinstance(values, dict):
            problems.append(f"{field_name}: Invalid value: must be a map of string to string")
            continue
        for key, value in values.items():
            if not _CONFIGMAP_KEY.match(key) or len(key) > 253:
                problems.append(
                    f'{field_name}[{key}]: Invalid value: "{key}": a valid config key must '
                    "consist of alphanumeric characters, '-', '_' or '.'"
                )
            if not isinstance(value, str):
                problems.append(f"{field_name}[{key}]: Invalid value: must be a string")
                continue
            if field_name == "data":
                total += len(value.encode())
                if key in binary:
                    problems.append(
                        f'data[{key}]: Invalid value: "{key}": duplicate of key present in '
                        "binaryData"
                    )
            else:
                try:
                    total += len(base64.b64decode(value, validate=True))
                except ValueError:
                    problems.append(
                        f"binaryData[{key}]: Invalid value: illegal base64 data (not base64)"
                    )
    if total > MAX_CONFIGMAP_BYTES:
        problems.append(f"[]: Too long: may not be more than {MAX_CONFIGMAP_BYTES} bytes")
    return problems


def _group_versions(
    resources: Iterable[Resource], overrides: Mapping[str, Sequence[str]]
) -> dict[str, list[str]]:
    """Each group's served versions, preferred first: as overridden, else by priority."""
    out: dict[str, list[str]] = {}
    for res in resources:
        if res.group:
            out.setdefault(res.group, []).extend(res.versions)
    for group, names in out.items():
        unique = sorted(set(names), key=_version_priority)
        first = [v for v in overrides.get(group, ()) if v in unique]
        out[group] = [*first, *[v for v in unique if v not in first]]
    return out


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a write changes nothing, in which case kube-apiserver skips it entirely."""

    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in obj["metadata"].items()
            if k not in ("resourceVersion", "managedFields")
        }
        return {**obj, "metadata": meta}

    return strip(old) == strip(new)


def _record_manager(obj: dict[str, Any], manager: str, operation: str, target: _Request) -> None:
    entries = [
        e
        for e in obj["metadata"].get("managedFields") or []
        if not (
            e.get("manager") == manager
            and e.get("operation") == operation
            and e.get("subresource") == target.subresource
        )
    ]
    entry: dict[str, Any] = {
        "manager": manager,
        "operation": operation,
        "apiVersion": target.resource.api_version(target.version),
        "time": _now(),
        "fieldsType": "FieldsV1",
        "fieldsV1": {},
    }
    if target.subresource:
        entry["subresource"] = target.subresource
    entries.append(entry)
    obj["metadata"]["managedFields"] = entries


def _require_manager(record: RequestRecord) -> str:
    if not record.field_manager:
        raise ApiError(
            422,
            "Invalid",
            'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required '
            "for apply patch",
        )
    return record.field_manager


def _apply_body(body: Any, target: _Request) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise ApiError(400, "BadRequest", "an apply patch must be an object")
    meta = body.setdefault("metadata", {})
    if target.namespace:
        meta.setdefault("namespace", target.namespace)
    meta.setdefault("name", target.name)
    return body


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # a long one-line YAML document is no file name
        return False


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _parse_body(raw: bytes, content_type: str | None, method: str) -> Any:
    kind = _media_type(content_type)
    try:
        if kind == APPLY_PATCH or kind.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as err:
        raise ApiError(400, "BadRequest", f"error decoding {method} body: {err}") from None


def _parse_body_for_log(raw: bytes, content_type: str | None) -> Any:
    if not raw:
        return None
    try:
        return _parse_body(raw, content_type, "")
    except ApiError:
        return raw.decode(errors="replace")


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


def _status_response(err: ApiError) -> web.Response:
    return web.Response(
        body=_dumps(err.body),
        status=err.code,
        content_type="application/json",
        headers=err.headers,
    )


# --- fleets -------------------------------------------------------------------------------


class FakeFleet:
    """Several fake clusters on one shared event loop, started and stopped together."""

    def __init__(
        self,
        names: Iterable[str] = (),
        *,
        loop: EventLoopThread | None = None,
        **server_options: Any,
    ) -> None:
        self._loop = loop or shared_loop()
        self.servers: dict[str, FakeKubeApiServer] = {}
        for name in names:
            self.add(name, **server_options)

    def add(self, name: str, **server_options: Any) -> FakeKubeApiServer:
        """Create a server named `name` (its kubeconfig context); not started yet."""
        if name in self.servers:
            raise ValueError(f"fleet already has a server named {name!r}")
        server = FakeKubeApiServer(name, loop=self._loop, **server_options)
        self.servers[name] = server
        return server

    def __getitem__(self, name: str) -> FakeKubeApiServer:
        return self.servers[name]

    def __iter__(self) -> Iterator[FakeKubeApiServer]:
        return iter(self.servers.values())

    def __len__(self) -> int:
        return len(self.servers)

    def start(self) -> FakeFleet:
        """Start every server that is not running, concurrently."""

        async def start_all() -> None:
            await asyncio.gather(*(s._astart() for s in self.servers.values() if not s.running))

        self._loop.run(start_all())
        return self

    def stop(self) -> None:
        """Stop every running server."""

        async def stop_all() -> None:
            await asyncio.gather(*(s._astop() for s in self.servers.values() if s.running))

        self._loop.run(stop_all())

    def __enter__(self) -> FakeFleet:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def kubeconfig_clusters(self) -> dict[str, tuple[str, str]]:
        """`context -> (url, token)` for write_kubeconfig()."""
        return {name: (s.url, s.token) for name, s in self.servers.items()}

    def write_kubeconfig(self, path: str | Path, current_context: str | None = None) -> Path:
        """Write a kubeconfig with one context per server, named like the server."""
        return write_kubeconfig(path, self.kubeconfig_clusters(), current_context)
