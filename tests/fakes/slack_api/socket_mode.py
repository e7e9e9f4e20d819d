"""Socket Mode: tickets, the WebSocket, envelopes routed round-robin, acks and disconnects."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import WSMsgType, web

from .records import ACK_DEADLINE, AckRecord, EnvelopeRecord, SocketRecord

SOCKET_PATH = "/link/"


@dataclass
class _Socket:
    record: SocketRecord
    ws: web.WebSocketResponse
    closer: asyncio.TimerHandle | None = None  # the close after a `disconnect`, if pending
    closing: asyncio.Task[None] | None = None  # referenced, so it is not garbage-collected


class SocketMode:
    """Socket Mode connections (a mixin of FakeSlack)."""

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

    def _apps_connections_open(self, params: dict[str, Any]) -> dict[str, Any]:
        ticket = str(uuid.uuid4())
        self._tickets[ticket] = time.monotonic()
        return {"ok": True, "url": f"ws://127.0.0.1:{self._port}{SOCKET_PATH}?ticket={ticket}"}
