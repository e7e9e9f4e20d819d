"""Approve and Deny on a rollback's approval request."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.slack.listeners.listening import acked, remediate


def on_approve(
    ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext
) -> None:
    """Approve: the decider's checks and the rollback come after the ack."""
    ack()
    acked(context)
    remediate(context, body, lambda remediation: remediation.on_approval(body, action, True))


def on_deny(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """Deny (or withdraw): the decider's checks come after the ack."""
    ack()
    acked(context)
    remediate(context, body, lambda remediation: remediation.on_approval(body, action, False))
