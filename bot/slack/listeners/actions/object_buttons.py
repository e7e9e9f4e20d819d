"""The buttons on an object: "Actions…", an action (Reconcile, Suspend…, Rollback…), Snooze."""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.slack.listeners.listening import acked, remediate


def on_menu(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """ "Actions…": show the object with all its buttons, after the ack."""
    ack()
    acked(context)
    remediate(context, body, lambda remediation: remediation.on_menu(body, action))


def on_act(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """An action button: checks, forms and the action itself all come after the ack."""
    ack()
    acked(context)
    remediate(context, body, lambda remediation: remediation.on_click(body, action))


def on_snooze(ack: Ack, body: dict[str, Any], action: dict[str, Any], context: BoltContext) -> None:
    """ "Snooze…" and its durations, after the ack."""
    ack()
    acked(context)
    remediate(context, body, lambda remediation: remediation.on_snooze(body, action))
