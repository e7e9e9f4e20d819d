"""The workspace directory: users, user groups and channels, and the methods that read it."""

from __future__ import annotations

import copy
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .records import _flag, _SlackError

_CHANNEL_ID = re.compile(r"^[CGDU][A-Z0-9]+$")


class Directory:
    """Users, groups and channels (a mixin of FakeSlack)."""

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
