"""The Web API endpoint: parameters, tokens, dispatch to the methods, the call log."""

from __future__ import annotations

import asyncio
import copy
import json
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from .records import CallRecord, _SlackError

# Web API methods that take the app-level (xapp-) token instead of the bot token.
_APP_TOKEN_METHODS = frozenset({"apps.connections.open"})


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


class WebApi:
    """`/api/<method>` (a mixin of FakeSlack)."""

    def calls(self, method: str | None = None) -> list[CallRecord]:
        """Web API calls so far, oldest first, optionally of one method."""
        with self._lock:
            return [copy.deepcopy(c) for c in self._calls if method is None or c.method == method]

    def wait_for_call(self, method: str, count: int = 1, timeout: float = 5.0) -> list[CallRecord]:
        """Block until `method` was called at least `count` times; returns those calls."""
        return self.wait_for(
            lambda: c if len(c := self.calls(method)) >= count else None,
            timeout,
            f"{count} {method} call(s)",
        )

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

    def _api_test(self, params: dict[str, Any]) -> dict[str, Any]:
        return {"ok": True, "args": {k: v for k, v in params.items() if isinstance(v, str)}}

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
