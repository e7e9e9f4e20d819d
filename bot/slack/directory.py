"""Who a Slack user is, for role checks: users.info and user group membership, cached."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any, Final

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.actions.model import Actor

log = logging.getLogger(__name__)


# After a failed usergroups.list, wait this long before the next try, doubling each time
# up to the refresh interval: every click must not become one more call to a failing API.
FIRST_BACKOFF_SECONDS: Final = 5.0


class SlackDirectory:
    """Resolves a Slack user ID into an Actor with their user groups.

    usergroups.list is Tier 2 (about 20 calls a minute), so membership is read once for all
    groups and cached for `refresh_seconds`; a `subteam_members_changed` event invalidates it.
    When Slack fails to answer, the last membership is kept for at most `max_stale_seconds`
    after it was read, then dropped (roles granted through groups with it: fail closed), and
    failed calls are retried with backoff. users.info is cached for `refresh_seconds`, so a
    deactivation is noticed within it. A user of another organisation (Slack Connect) is
    marked external: granted roles by ID or group, never by `users: ["*"]`.
    """

    def __init__(
        self, client: WebClient, refresh_seconds: float, max_stale_seconds: float | None = None
    ) -> None:
        self._client = client
        self._refresh = refresh_seconds
        self._max_stale = max(refresh_seconds, max_stale_seconds or refresh_seconds)
        self._lock = threading.Lock()
        self._groups: dict[str, tuple[str, frozenset[str]]] = {}
        self._groups_read = -float("inf")
        self._retry_at = -float("inf")
        self._backoff = FIRST_BACKOFF_SECONDS
        self._users: dict[str, tuple[float, dict[str, Any]]] = {}
        self._home: tuple[str, str] | None = None

    def invalidate(self) -> None:
        """Read group membership again at the next check (a group changed)."""
        with self._lock:
            # Still usable until re-read: a failing re-read must not drop it before its time.
            self._groups_read = min(self._groups_read, time.monotonic() - self._refresh)
            self._retry_at = -float("inf")

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
            is_external=self._is_external(user),
        )

    def _is_external(self, user: dict[str, Any]) -> bool:
        """Whether `user` belongs to another organisation than the app's (Slack Connect)."""
        home = self._home_team()
        if home is None:
            return True  # unknown: treat as external, which only withholds "*"
        team, enterprise = home
        theirs = str(user.get("team_id") or "")
        their_enterprise = str((user.get("enterprise_user") or {}).get("enterprise_id") or "")
        if theirs == team:
            return False
        # Another workspace of the same Enterprise Grid organisation is not external.
        return not (enterprise and their_enterprise == enterprise)

    def _home_team(self) -> tuple[str, str] | None:
        with self._lock:
            if self._home is not None:
                return self._home
        try:
            response = self._client.auth_test()
        except SlackApiError as err:
            log.warning("auth.test failed: %s", err.response.get("error"))
            return None
        home = (str(response.get("team_id") or ""), str(response.get("enterprise_id") or ""))
        with self._lock:
            self._home = home
        return home

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
            if now - self._groups_read < self._refresh or now < self._retry_at:
                return self._usable(now)
        try:
            response = self._client.usergroups_list(include_users=True, include_disabled=False)
        except SlackApiError as err:
            # Keep what we knew for a while: a blip must not strip everyone of their roles.
            with self._lock:
                self._retry_at = now + self._backoff
                log.warning(
                    "usergroups.list failed: %s; next try in %.0f s",
                    err.response.get("error"),
                    self._backoff,
                )
                self._backoff = min(self._backoff * 2, self._refresh)
                return self._usable(now)
        groups = {
            str(g["id"]): (str(g.get("handle") or ""), frozenset(g.get("users") or ()))
            for g in response.get("usergroups") or []
        }
        with self._lock:
            self._groups, self._groups_read = groups, now
            self._retry_at, self._backoff = -float("inf"), FIRST_BACKOFF_SECONDS
        return groups

    def _usable(self, now: float) -> dict[str, tuple[str, frozenset[str]]]:
        """The cached membership, unless older than the staleness cap (caller holds the lock)."""
        if now - self._groups_read <= self._max_stale:
            return self._groups
        if self._groups:
            log.warning(
                "group membership is older than %.0f s and Slack cannot be asked: roles "
                "granted through user groups are withheld until it answers",
                self._max_stale,
            )
        return {}
