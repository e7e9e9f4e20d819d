"""One fake cluster's API server, assembled from its subsystems.

A fake Kubernetes API server for Flux objects, real enough for the official Python client.

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

import secrets
import ssl
import threading
import traceback
from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..loopback import EventLoopThread, Faults, LoopbackServer, RequestLog
from .auth import Rbac, _Deny
from .discovery import (
    Discovery,
    aggregated_content_type,
    discovery_etag,
    negotiate_aggregated,
)
from .encoding import _dumps, _parse_body, _parse_body_for_log, _status_response
from .errors import ApiError
from .faults import Fault, FaultInjection, _Dropped, _fault_error
from .handlers import ResourceHandlers
from .resources import Resource, _group_versions, build_resources
from .store import ObjectStore, _Event, _Stored
from .watch import _CLOSE, Watches, _Watcher

DEFAULT_USER = "system:serviceaccount:flux-system:fluxbot"
DEFAULT_KUBE_VERSION = "v1.33.1"


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


class FakeKubeApiServer(
    LoopbackServer, ObjectStore, Discovery, Rbac, FaultInjection, Watches, ResourceHandlers
):
    """One fake cluster's API server: HTTP on 127.0.0.1, state kept across stop/start.

    `omit_groups` leaves API groups out entirely (Flux not installed); `versions` serves a
    group, or one `Kind.group`, under other version names, preferred first (an older Flux).
    `aggregated_discovery=False` plays a kube-apiserver older than 1.26, which answers `/apis`
    with the legacy APIGroupList whatever the Accept header asks for. `stale_discovery` holds
    `group/version`s the aggregated document marks `Stale` (an aggregated API server that
    kube-aggregator could not reach); `malformed_aggregated_discovery`, when set, replaces the
    aggregated document's body (a proxy or server that mangles it), Content-Type unchanged.
    """

    what = "the server"
    client_max_size = 64 * 1024 * 1024

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
        aggregated_discovery: bool = True,
        port: int = 0,
        loop: EventLoopThread | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.name = name
        self.token = token or f"token-{name}-{secrets.token_hex(6)}"
        self.user = user
        self.validate = validate
        self.kube_version = kube_version
        self.aggregated_discovery = aggregated_discovery
        self.stale_discovery: set[str] = set()
        self.malformed_aggregated_discovery: bytes | None = None
        self.bookmark_interval = bookmark_interval
        # Watch events are written in pieces of this many bytes when set (see Watches._send).
        self.event_piece_bytes: int | None = None
        self.resources = build_resources(omit_groups, versions)
        self._by_gv: dict[tuple[str, str], dict[str, Resource]] = {}
        for res in self.resources.values():
            for version in res.versions:
                self._by_gv.setdefault((res.group, version), {})[res.plural] = res
        self._group_versions = _group_versions(self.resources.values(), versions or {})
        super().__init__(port=port, loop=loop, ssl_context=ssl_context)
        self._lock = threading.RLock()
        self._store: dict[tuple[str, str], dict[tuple[str, str], _Stored]] = {
            key: {} for key in self.resources
        }
        self._rv = 0
        self._history: deque[_Event] = deque(maxlen=max(1, history_size))
        self._compacted_rv = 0
        self._watchers: set[_Watcher] = set()
        self._drop_after: int | None = None
        self._faults: Faults[Fault] = Faults()
        self._denies: list[_Deny] = []
        self._review_grants: list[tuple[str | None, str | None, str, str, str | None]] = []
        self._requests: RequestLog[RequestRecord] = RequestLog()
        self._release_generation = 0
        self.internal_errors: list[str] = []

    def _routes(self, app: web.Application) -> None:
        app.router.add_route("*", "/{tail:.*}", self._handle)

    async def _before_stop(self) -> None:
        with self._lock:
            self._release_generation += 1
            for watcher in self._watchers:
                watcher.queue.put_nowait(_CLOSE)

    def _aggregated_response(self, request: web.Request, version: str) -> web.Response:
        document = self._aggregated(version)
        headers = {
            "Content-Type": aggregated_content_type(version),
            "ETag": discovery_etag(document),
            "Vary": "Accept",
            "Cache-Control": "public",
        }
        if request.headers.get("If-None-Match") == headers["ETag"]:
            del headers["Content-Type"]
            return web.Response(status=304, headers=headers)
        body = self.malformed_aggregated_discovery
        return web.Response(body=_dumps(document) if body is None else body, headers=headers)

    # -- the request log --

    def requests(
        self, method: str | None = None, path_contains: str | None = None
    ) -> list[RequestRecord]:
        """Requests received so far, oldest first, optionally filtered."""
        return self._requests.records(
            lambda r: (
                (method is None or r.method == method.upper())
                and (path_contains is None or path_contains in r.path)
            )
        )

    def writes(self) -> list[RequestRecord]:
        """Every request that was not a read, whether or not it succeeded."""
        return [r for r in self.requests() if r.is_write]

    def clear_requests(self) -> None:
        """Empty the request log."""
        self._requests.clear()

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
        if segments == ["apis"] and record.method == "GET":
            version = negotiate_aggregated(
                request.headers.get("Accept", ""), self.aggregated_discovery_versions()
            )
            if version is not None:
                return self._aggregated_response(request, version)
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
