"""Who may do what: one declarative check in front of every remediation action.

Deny by default. A user may act when a role granted that action in that environment lists
them, directly or through a Slack user group. Guests and deactivated users never may.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum


class Action(StrEnum):
    """The remediation actions fluxbot offers."""

    RECONCILE = "reconcile"
    SUSPEND = "suspend"
    RESUME = "resume"
    ROLLBACK = "rollback"


class ConfirmationMode(StrEnum):
    """How an action is confirmed before it runs."""

    NONE = "none"
    DIALOG = "dialog"
    TYPED = "typed"


@dataclass(frozen=True, slots=True)
class Actor:
    """A person asking for an action, as the chat service describes them."""

    id: str
    name: str = ""
    # Group IDs and handles (without '@') the person belongs to.
    groups: frozenset[str] = frozenset()
    group_handles: frozenset[str] = frozenset()
    is_guest: bool = False
    is_deleted: bool = False
    is_bot: bool = False
    # From another organisation (Slack Connect): never one of "anyone" (`users: ["*"]`).
    is_external: bool = False


@dataclass(frozen=True, slots=True)
class Role:
    """Members of one role: user IDs and user groups (IDs or handles)."""

    name: str
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()

    def includes(self, actor: Actor) -> bool:
        """Whether `actor` holds this role, directly, through a group, or as anyone ("*")."""
        return (
            ("*" in self.users and not actor.is_external)
            or actor.id in self.users
            or bool(self.groups & (actor.groups | actor.group_handles))
        )


@dataclass(frozen=True, slots=True)
class EnvironmentPolicy:
    """The rights and care required in one environment."""

    environment: str
    grants: Mapping[Action, frozenset[str]] = field(default_factory=dict)
    confirmation: ConfirmationMode = ConfirmationMode.DIALOG
    rollback_approval: bool = False


@dataclass(frozen=True, slots=True)
class Decision:
    """The answer of the policy, with the reason to show a denied user."""

    allowed: bool
    reason: str
    roles_needed: tuple[str, ...] = ()


def decide(
    actor: Actor, action: Action, policy: EnvironmentPolicy, roles: Mapping[str, Role]
) -> Decision:
    """Whether `actor` may perform `action` in `policy`'s environment, and why (not)."""
    needed = tuple(sorted(policy.grants.get(action, frozenset())))
    if actor.is_deleted:
        return Decision(False, "deactivated users cannot act", needed)
    if actor.is_guest:
        return Decision(False, "guest accounts cannot act", needed)
    if actor.is_bot:
        return Decision(False, "bots cannot act", needed)
    if not needed:
        return Decision(
            False, f"nobody may {action} in {policy.environment} (no role is granted it)", needed
        )
    held = [name for name in needed if name in roles and roles[name].includes(actor)]
    if held:
        return Decision(True, f"holds role {held[0]}", needed)
    wanted = " or ".join(needed)
    return Decision(False, f"{action} in {policy.environment} needs the role {wanted}", needed)
