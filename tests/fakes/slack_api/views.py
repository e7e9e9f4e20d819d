"""Modals: trigger_ids (single-use, short-lived) and views.open/push/update."""

from __future__ import annotations

import copy
import json
import secrets
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .blockkit import validate_view
from .records import _SlackError


@dataclass
class _Trigger:
    user: str | None
    issued: float
    used: bool = False


class Views:
    """Triggers and views (a mixin of FakeSlack)."""

    def issue_trigger_id(self, user_id: str | None = None) -> str:
        """A fresh trigger_id as Slack sends with a command or click: single-use, short-lived."""
        n = next(self._counter)
        trigger = f"{n}.{self._ts_base}.{secrets.token_hex(16)}"
        with self._lock:
            self._triggers[trigger] = _Trigger(user_id, time.monotonic())
        return trigger

    def views(self) -> list[dict[str, Any]]:
        """Every view opened, pushed or updated, in its current state."""
        with self._lock:
            return copy.deepcopy(list(self._views.values()))

    def view(self, view_id: str) -> dict[str, Any] | None:
        """One view by id, or None."""
        with self._lock:
            view = self._views.get(view_id)
            return copy.deepcopy(view) if view is not None else None

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
