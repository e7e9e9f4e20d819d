"""Who a Slack user is, for role checks: users.info and user group membership, cached."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.actions.model import Actor

log = logging.getLogger(__name__)


class SlackDirectory:
    """Resolves a Slack user ID into an Actor with their user groups.

    usergroups.list is Tier 2 (about 20 calls a minute), so membership is read once for all
    groups and cached for `refresh_seconds`; a `subteam_members_changed` event invalidates it.
    users.info is cached for the same time, so a deactivation is noticed within it.
    """

    def __init__(self, client: WebClient, refresh_seconds: float) -> None:
        self._client = client
        self._refresh = refresh_seconds
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[str, frozenset[str]]] = {}
        self._groups_read = -float("inf")
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}

    def invalidate(self) -> None:
        """Forget group membership (a group changed)."""
        with self._lock:
            self._groups_read = -float("inf")

    def actor(self, user_id: str) -> Actor:
        """The Actor for `user_id`; a user Slack cannot describe is treated as a guest."""
        user = self._user(user_id)
        if user is None:
            return Actor(id=user_id, is_guest=True)
        groups = self._membership()
        mine = {gid: handle for gid, (handle, members) in groups.items() if user_id in members}
        return Actor(
            id=user_id,
            name=str(user.get("name") or user.get("real_name") or user_id),
            groups=frozenset(mine),
            group_handles=frozenset(mine.values()),
            is_guest=bool(user.get("is_restricted") or user.get("is_ultra_restricted")),
            is_deleted=bool(user.get("deleted")),
            is_bot=bool(user.get("is_bot")),
        )

    def _user(self, user_id: str) -> dict[str, Any] | None:
        now = time.monotonic()
        with self._lock:
            cached = self._users.get(user_id)
        if cached and now - cached[0] < self._refresh:
            return cached[1]
        try:
            response = self._client.users_info(user=user_id)
        except SlackApiError as err:
            log.warning("users.info failed for %s: %s", user_id, err.response.get("error"))
            return None
        user = dict(response.get("user") or {})
        with self._lock:
            self._users[user_id] = (now, user)
        return user

    def group_mention(self, group: str) -> str:
        """`<!subteam^S…>` for a user group ID or handle, so its members are notified; the
        handle as text when Slack does not know it."""
        handle = group.removeprefix("@")
        for gid, (known, _members) in self._membership().items():
            if group in (gid, known) or handle == known:
                return f"<!subteam^{gid}>"
        return f"@{handle}"

    def _membership(self) -> dict[str, tuple[str, frozenset[str]]]:
        now = time.monotonic()
        with self._lock:
            if now - self._groups_read < self._refresh:
                return self._groups
        try:
            response = self._client.usergroups_list(include_users=True, include_disabled=False)
        except SlackApiError as err:
            # Keep what we knew: a transient error must not strip everyone of their roles.
            log.warning("usergroups.list failed: %s", err.response.get("error"))
            with self._lock:
                return self._groups
        groups = {
            str(g["id"]): (str(g.get("handle") or ""), frozenset(g.get("users") or ()))
            for g in response.get("usergroups") or []
        }
        with self._lock:
            self._groups, self._groups_read = groups, now
        return groups
