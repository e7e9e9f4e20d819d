"""response_url endpoints: limited uses, expiry, replace/delete the original, ephemerals."""

from __future__ import annotations

import asyncio
import copy
import json
import secrets
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .ratelimit import RESPONSE_URL
from .records import ResponseRecord, _flag, _SlackError


@dataclass
class _ResponseUrl:
    id: str
    url: str
    channel: str
    user: str
    message_ts: str | None
    created: float
    uses: int = 0


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


class ResponseUrls:
    """response_urls and what was posted to them (a mixin of FakeSlack)."""

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

    def responses(self, url_or_id: str | None = None) -> list[ResponseRecord]:
        """response_url posts so far (accepted or not), oldest first, optionally of one URL."""
        rid = url_or_id.rstrip("/").rsplit("/", 1)[-1] if url_or_id else None
        with self._lock:
            return [copy.deepcopy(r) for r in self._responses if rid is None or r.id == rid]

    def wait_for_response(
        self, count: int = 1, timeout: float = 5.0, url: str | None = None
    ) -> list[ResponseRecord]:
        """Block until at least `count` response_url posts arrived; returns them all."""
        return self.wait_for(
            lambda: r if len(r := self.responses(url)) >= count else None,
            timeout,
            f"{count} response_url post(s)",
        )

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
