"""Plays Slack towards the bot: signed slash commands and interactions over real HTTP.

`SlackClient(url, signing_secret)` POSTs what Slack would POST to the bot's request URL
(`/slack/events`): slash commands as a form, interactions (block_actions, view_submission) as
a form with one JSON `payload` field, each signed with `v0=HMAC-SHA256(secret,
"v0:{ts}:{body}")` exactly as `slack_sdk.signature.SignatureVerifier` checks it. Options sign
with the wrong secret, send a stale timestamp or leave the signature out, so tests can prove the
bot refuses them. Given a `FakeSlack`, the client also mints the response_url and trigger_id a
real request would carry, and `click()` / `submit_view()` build payloads from the messages and
views the bot actually posted there.

`SlackClient.socket_mode(fake)` sends the same commands and interactions as Socket Mode
envelopes over the fake's WebSocket connections instead; each reply then stands for the app's
ack (status 200, body = the ack's payload as JSON, elapsed = seconds from send to ack).
"""

from __future__ import annotations

import json
import secrets
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

from slack_sdk.signature import SignatureVerifier

from .slack_api import FakeSlack

STALE_AGE = 6 * 60  # Bolt rejects timestamps more than 5 minutes off.
FORM = "application/x-www-form-urlencoded"

# What a view_submission's `state.values` holds for each input element type.
_STATE_KEYS = {
    "static_select": "selected_option",
    "external_select": "selected_option",
    "radio_buttons": "selected_option",
    "multi_static_select": "selected_options",
    "multi_external_select": "selected_options",
    "checkboxes": "selected_options",
    "users_select": "selected_user",
    "multi_users_select": "selected_users",
    "conversations_select": "selected_conversation",
    "multi_conversations_select": "selected_conversations",
    "channels_select": "selected_channel",
    "multi_channels_select": "selected_channels",
    "datepicker": "selected_date",
    "timepicker": "selected_time",
    "datetimepicker": "selected_date_time",
}


@dataclass
class SlackReply:
    """The bot's answer to one request, and what was sent to get it."""

    status: int
    body: str
    headers: dict[str, str]
    elapsed: float
    sent: dict[str, Any] = field(default_factory=dict)  # form fields, or the interaction payload
    response_url: str | None = None
    trigger_id: str | None = None
    envelope_id: str | None = None  # Socket Mode only

    def json(self) -> Any:
        """The body parsed as JSON (e.g. a view_submission's `response_action`); None if empty."""
        return json.loads(self.body) if self.body.strip() else None


class SlackClient:
    """Sends signed Slack requests to one URL, as Slack's servers would."""

    def __init__(
        self,
        url: str,
        signing_secret: str,
        *,
        fake: FakeSlack | None = None,
        team_id: str | None = None,
        team_domain: str = "fake",
        api_app_id: str | None = None,
        enterprise_id: str | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.url = url
        self.signing_secret = signing_secret
        self.fake = fake
        self.team_id = team_id or (fake.team_id if fake else "T0FAKE")
        self.team_domain = team_domain
        self.api_app_id = api_app_id or (fake.app_id if fake else "A0FAKE")
        self.enterprise_id = enterprise_id
        self.timeout = timeout
        self._verifier = SignatureVerifier(signing_secret)
        self._socket_mode = False

    @classmethod
    def socket_mode(cls, fake: FakeSlack, *, timeout: float = 5.0, **kwargs: Any) -> SlackClient:
        """A client that pushes envelopes over `fake`'s Socket Mode connections, not HTTP.

        Every method works as over HTTP, except that nothing is signed (so signing options are
        refused) and each reply waits up to `timeout` seconds for the app's ack.
        """
        # Never used to sign: SignatureVerifier just refuses an empty secret.
        client = cls("", "socket-mode-is-not-signed", fake=fake, timeout=timeout, **kwargs)
        client._socket_mode = True
        return client

    # -- signing and sending --

    def sign(self, body: str | bytes, timestamp: int | None = None) -> dict[str, str]:
        """The `X-Slack-Request-Timestamp` and `X-Slack-Signature` headers for `body`."""
        ts = str(int(time.time()) if timestamp is None else timestamp)
        signature = self._verifier.generate_signature(timestamp=ts, body=body)
        assert signature is not None
        return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    def post(
        self,
        body: str | bytes,
        content_type: str = FORM,
        *,
        bad_signature: bool = False,
        stale: bool = False,
        timestamp: int | None = None,
        signed: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> SlackReply:
        """POST a raw body, signed unless told otherwise; never raises on HTTP errors.

        `bad_signature` signs with the wrong secret, `stale` dates the request 6 minutes back,
        `timestamp` sets it outright, `signed=False` leaves both headers out.
        """
        if self._socket_mode:
            raise TypeError("a Socket Mode client sends envelopes, not raw request bodies")
        raw = body.encode() if isinstance(body, str) else body
        sent_headers = {"Content-Type": content_type, "User-Agent": "Slackbot 1.0"}
        if signed:
            ts = timestamp if timestamp is not None else int(time.time())
            if stale:
                ts -= STALE_AGE
            signer = (
                SignatureVerifier(self.signing_secret + "-wrong").generate_signature
                if bad_signature
                else self._verifier.generate_signature
            )
            sent_headers["X-Slack-Request-Timestamp"] = str(ts)
            sent_headers["X-Slack-Signature"] = signer(timestamp=str(ts), body=raw) or ""
        sent_headers.update(headers or {})
        request = urllib.request.Request(self.url, data=raw, headers=sent_headers, method="POST")
        start = time.perf_counter()
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as resp:
                status, text, got = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as err:
            status, text, got = err.code, err.read(), dict(err.headers)
        elapsed = time.perf_counter() - start
        return SlackReply(status, text.decode(errors="replace"), got, elapsed)

    def post_form(self, fields: Mapping[str, Any], **options: Any) -> SlackReply:
        """POST form fields (signed); `options` as for post()."""
        clean = {k: v for k, v in fields.items() if v is not None}
        if self._socket_mode:
            return self._envelope("slash_commands", clean, options)
        reply = self.post(urlencode(clean), FORM, **options)
        reply.sent = dict(clean)
        return reply

    def post_interaction(self, payload: Mapping[str, Any], **options: Any) -> SlackReply:
        """POST an interaction payload as Slack does: `payload=<json>` form-encoded."""
        if self._socket_mode:
            return self._envelope("interactive", dict(payload), options)
        reply = self.post(urlencode({"payload": json.dumps(payload)}), FORM, **options)
        reply.sent = dict(payload)
        return reply

    # -- slash commands --

    def slash_command(
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
        **options: Any,
    ) -> SlackReply:
        """Send `/command text` as typed by `user_id` in `channel_id`; `options` as for post().

        With a fake, the response_url and trigger_id are live ones minted there.
        """
        response_url = response_url or self._response_url(channel_id, user_id)
        trigger_id = trigger_id or self._trigger_id(user_id)
        fields = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "team_domain": self.team_domain,
            "enterprise_id": self.enterprise_id,
            "channel_id": channel_id,
            "channel_name": channel_name,
            "user_id": user_id,
            "user_name": user_name,
            "command": command if command.startswith("/") else f"/{command}",
            "text": text,
            "api_app_id": self.api_app_id,
            "is_enterprise_install": "false",
            "response_url": response_url,
            "trigger_id": trigger_id,
        }
        reply = self.post_form(fields, **options)
        reply.response_url, reply.trigger_id = response_url, trigger_id
        return reply

    def slash_commands(
        self, commands: Iterable[Mapping[str, Any]], *, workers: int = 32
    ) -> list[SlackReply]:
        """Send many slash commands at once (each a dict of slash_command() kwargs), in order."""
        items = list(commands)
        with ThreadPoolExecutor(max_workers=max(1, min(workers, len(items)))) as pool:
            return list(pool.map(lambda kw: self.slash_command(**kw), items))

    # -- events --

    def app_mention(
        self,
        text: str,
        *,
        user_id: str = "U0USER",
        channel_id: str = "C0CHAN",
        thread_ts: str | None = None,
        event_id: str | None = None,
        **options: Any,
    ) -> SlackReply:
        """`@bot text` posted by `user_id` (in a thread when `thread_ts` is given), delivered as
        Slack's Events API does: an `event_callback` envelope holding an `app_mention` event,
        signed JSON over HTTP or an `events_api` envelope over Socket Mode.

        Slack's reference payload: https://docs.slack.dev/reference/events/app_mention. With a
        fake, the mention is first posted to the channel there, so its `ts` is a real message.
        """
        fake = self.fake
        bot_user = fake.bot_user_id if fake else "U0BOT"
        full = f"<@{bot_user}> {text}"
        ts = (
            fake.add_message(channel_id, full, user=user_id, thread_ts=thread_ts)
            if fake
            else _action_ts()
        )
        event: dict[str, Any] = {
            "type": "app_mention",
            "user": user_id,
            "text": full,
            "ts": ts,
            "channel": channel_id,
            "event_ts": ts,
            "client_msg_id": secrets.token_hex(8),
        }
        if thread_ts:
            event["thread_ts"] = thread_ts
        body = {
            "token": "fake-verification-token",
            "team_id": self.team_id,
            "api_app_id": self.api_app_id,
            "event": event,
            "type": "event_callback",
            "event_id": event_id or f"Ev{secrets.token_hex(5).upper()}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "team_id": self.team_id,
                    "user_id": bot_user,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
            "event_context": secrets.token_hex(12),
        }
        if self._socket_mode:
            if options:
                raise TypeError("Socket Mode envelopes are not signed")
            envelope_id = self._need_fake().send_envelope("events_api", body)
            ack = self._need_fake().wait_for_ack(envelope_id, timeout=self.timeout)
            return SlackReply(200, "", {}, ack.seconds, sent=body, envelope_id=envelope_id)
        reply = self.post(json.dumps(body), "application/json", **options)
        reply.sent = body
        return reply

    # -- interactions --

    def block_action(
        self,
        action: Mapping[str, Any],
        *,
        user_id: str = "U0USER",
        channel_id: str = "C0CHAN",
        channel_name: str = "general",
        message: Mapping[str, Any] | None = None,
        message_ts: str | None = None,
        is_ephemeral: bool = False,
        response_url: str | None = None,
        trigger_id: str | None = None,
        state: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> SlackReply:
        """Send a block_actions interaction carrying one `action` (action_id, value, ...).

        `message` is the message that held the element (Slack omits it for ephemeral ones).
        """
        ts = message_ts or (message or {}).get("ts") or _action_ts()
        response_url = response_url or self._response_url(channel_id, user_id, message_ts=ts)
        trigger_id = trigger_id or self._trigger_id(user_id)
        full_action = {"action_ts": _action_ts(), **action}
        payload: dict[str, Any] = {
            "type": "block_actions",
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "fake-verification-token",
            "container": {
                "type": "message",
                "message_ts": ts,
                "channel_id": channel_id,
                "is_ephemeral": is_ephemeral,
            },
            "trigger_id": trigger_id,
            "team": {"id": self.team_id, "domain": self.team_domain},
            "enterprise": {"id": self.enterprise_id} if self.enterprise_id else None,
            "is_enterprise_install": False,
            "channel": {"id": channel_id, "name": channel_name},
            "state": {"values": dict(state or {})},
            "response_url": response_url,
            "actions": [full_action],
        }
        if message is not None and not is_ephemeral:
            payload["message"] = dict(message)
        reply = self.post_interaction(payload, **options)
        reply.response_url, reply.trigger_id = response_url, trigger_id
        return reply

    def click(
        self,
        channel_id: str,
        message_ts: str,
        action_id: str,
        *,
        user_id: str = "U0USER",
        value: str | None = None,
        **options: Any,
    ) -> SlackReply:
        """Click the element `action_id` of a message the bot posted to the fake.

        Buttons send their own value; for selects and overflows, `value` picks the option.
        """
        fake = self._need_fake()
        msg = fake.message(channel_id, message_ts)
        if msg is None:
            raise LookupError(f"no message {message_ts} in {channel_id}")
        found = _find_element(msg["blocks"], action_id)
        if found is None:
            raise LookupError(f"message {message_ts} has no element with action_id {action_id!r}")
        block_id, element = found
        action: dict[str, Any] = {
            "type": element["type"],
            "action_id": action_id,
            "block_id": block_id,
        }
        if element["type"] == "button":
            action["text"] = element.get("text")
            if "value" in element:
                action["value"] = element["value"]
            if "style" in element:
                action["style"] = element["style"]
        else:
            option = _find_option(element, value)
            if option is None:
                raise LookupError(f"{action_id!r} has no option with value {value!r}")
            key = "selected_options" if element["type"].startswith("multi_") else None
            action[key or "selected_option"] = [option] if key else option
        ephemeral = msg["ephemeral_user"] is not None
        public = {k: v for k, v in msg.items() if k not in ("channel", "ephemeral_user", "source")}
        return self.block_action(
            action,
            user_id=user_id,
            channel_id=channel_id,
            message=public,
            message_ts=message_ts,
            is_ephemeral=ephemeral,
            **options,
        )

    def view_submission(
        self,
        view: Mapping[str, Any],
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        user_id: str = "U0USER",
        trigger_id: str | None = None,
        **options: Any,
    ) -> SlackReply:
        """Submit `view` with `values` {block_id: {action_id: value}}; `options` as for post().

        A plain value is wrapped as the element type in the view expects (text input value,
        selected option, user, date...); a dict is sent as the element state unchanged.
        """
        trigger_id = trigger_id or self._trigger_id(user_id)
        submitted = dict(view)
        submitted.setdefault("id", f"V{secrets.token_hex(5).upper()}")
        submitted.setdefault("team_id", self.team_id)
        submitted.setdefault("app_id", self.api_app_id)
        submitted.setdefault("hash", f"{int(time.time())}.{secrets.token_hex(4)}")
        submitted["state"] = {"values": _state_values(view.get("blocks") or [], values or {})}
        payload = {
            "type": "view_submission",
            "team": {"id": self.team_id, "domain": self.team_domain},
            "user": self._user(user_id),
            "api_app_id": self.api_app_id,
            "token": "fake-verification-token",
            "trigger_id": trigger_id,
            "view": submitted,
            "response_urls": [],
            "is_enterprise_install": False,
            "enterprise": {"id": self.enterprise_id} if self.enterprise_id else None,
        }
        reply = self.post_interaction(payload, **options)
        reply.trigger_id = trigger_id
        return reply

    def submit_view(
        self,
        view_id: str,
        values: Mapping[str, Mapping[str, Any]] | None = None,
        *,
        user_id: str = "U0USER",
        **options: Any,
    ) -> SlackReply:
        """Submit a view the bot opened on the fake, by its id."""
        view = self._need_fake().view(view_id)
        if view is None:
            raise LookupError(f"no view {view_id}")
        return self.view_submission(view, values, user_id=user_id, **options)

    # -- helpers --

    def _envelope(
        self, kind: str, payload: dict[str, Any], options: Mapping[str, Any]
    ) -> SlackReply:
        if options:
            raise TypeError(f"Socket Mode envelopes are not signed: {', '.join(sorted(options))}")
        fake = self._need_fake()
        if kind == "slash_commands":
            envelope_id = fake.send_envelope(kind, payload, accepts_response_payload=True)
        else:
            envelope_id = fake.send_interaction(payload)
        ack = fake.wait_for_ack(envelope_id, timeout=self.timeout)
        body = json.dumps(ack.payload) if ack.payload is not None else ""
        return SlackReply(200, body, {}, ack.seconds, sent=payload, envelope_id=envelope_id)

    def _need_fake(self) -> FakeSlack:
        if self.fake is None:
            raise RuntimeError("this needs a SlackClient made with fake=FakeSlack(...)")
        return self.fake

    def _user(self, user_id: str) -> dict[str, str]:
        return {
            "id": user_id,
            "username": user_id.lower(),
            "name": user_id.lower(),
            "team_id": self.team_id,
        }

    def _response_url(self, channel_id: str, user_id: str, message_ts: str | None = None) -> str:
        if self.fake is not None:
            return self.fake.new_response_url(channel_id, user_id, message_ts=message_ts)
        kind = "actions" if message_ts else "commands"
        return f"https://hooks.slack.com/{kind}/{self.team_id}/1/{secrets.token_hex(12)}"

    def _trigger_id(self, user_id: str) -> str:
        if self.fake is not None:
            return self.fake.issue_trigger_id(user_id)
        return f"{int(time.time())}.1.{secrets.token_hex(16)}"


def _action_ts() -> str:
    return f"{time.time():.6f}"


def _elements(blocks: Sequence[Mapping[str, Any]]) -> Iterable[tuple[str | None, dict[str, Any]]]:
    for block in blocks:
        block_id = block.get("block_id")
        for element in block.get("elements") or []:
            if isinstance(element, dict) and block.get("type") == "actions":
                yield block_id, element
        for key in ("accessory", "element"):
            if isinstance(block.get(key), dict):
                yield block_id, block[key]


def _find_element(
    blocks: Sequence[Mapping[str, Any]], action_id: str
) -> tuple[str | None, dict[str, Any]] | None:
    return next(((b, e) for b, e in _elements(blocks) if e.get("action_id") == action_id), None)


def _find_option(element: Mapping[str, Any], value: Any) -> dict[str, Any] | None:
    options = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options.extend(group.get("options") or [])
    return next((o for o in options if o.get("value") == value), None)


def _state_values(
    blocks: Sequence[Mapping[str, Any]], values: Mapping[str, Mapping[str, Any]]
) -> dict[str, dict[str, Any]]:
    """A view's `state.values` as Slack builds it from what the user entered."""
    types = {(b, e.get("action_id")): e for b, e in _elements(blocks)}
    state: dict[str, dict[str, Any]] = {}
    for block_id, actions in values.items():
        for action_id, value in actions.items():
            element = types.get((block_id, action_id), {"type": "plain_text_input"})
            kind = element.get("type", "plain_text_input")
            if isinstance(value, dict):
                entry = {"type": kind, **value}
            elif kind in _STATE_KEYS:
                key = _STATE_KEYS[kind]
                if key.endswith("_options"):
                    picked = [_find_option(element, v) or _option(v) for v in value]
                    entry = {"type": kind, key: picked}
                elif key == "selected_option":
                    entry = {"type": kind, key: _find_option(element, value) or _option(value)}
                else:
                    entry = {"type": kind, key: value}
            else:
                entry = {"type": kind, "value": value}
            state.setdefault(block_id, {})[action_id] = entry
    return state


def _option(value: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": value}, "value": value}
