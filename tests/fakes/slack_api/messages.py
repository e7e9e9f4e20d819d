"""Messages: chat.postMessage/postEphemeral/update/delete/getPermalink, threads, fallbacks."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping
from typing import Any

from .blockkit import _too_long, validate_blocks
from .records import _flag, _SlackError

TEXT_LIMIT = 40000
TEXT_SOFT_LIMIT = 4000
# Fields that arrive JSON-encoded in form bodies (slack_sdk's `params=` path, or curl).
_JSON_FIELDS = ("blocks", "attachments", "view", "metadata")
# Internal bookkeeping kept on stored messages but never shown in API answers.
_PRIVATE_KEYS = ("channel", "ephemeral_user", "source")


class Messages:
    """Channels' messages (a mixin of FakeSlack)."""

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

    def message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One stored message, or None."""
        with self._lock:
            msg = self._messages.get(channel, {}).get(ts)
            return copy.deepcopy(msg) if msg is not None else None

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
