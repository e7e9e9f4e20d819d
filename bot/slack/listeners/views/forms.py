"""The action forms: their own mistakes go back in the ack; everything else comes after it.

Slack shows a submission's errors only if they are the ack's body, so the form is checked on
the request's thread, from its signed metadata and values alone (no Slack, no cluster); the
role checks and the action run after the ack, so a slow Slack or cluster can never make Slack
report an error for a form whose action went ahead.
"""

from __future__ import annotations

from typing import Any

from slack_bolt import Ack, BoltContext

from bot.slack.listeners.listening import acked, listening, remediate


def on_suspend_form(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    """The suspend form: a missing reason or mistyped name is answered in the ack."""
    remediation = listening(context).bot.remediation
    errors = remediation.suspend_form_errors(view) if remediation is not None else None
    _ack(ack, errors, context)
    if not errors:
        user = str(body["user"]["id"])
        remediate(context, body, lambda remediation: remediation.on_suspend_form(view, user))


def on_confirm_form(
    ack: Ack, body: dict[str, Any], view: dict[str, Any], context: BoltContext
) -> None:
    """The typed confirmation: a mistyped name is answered in the ack."""
    remediation = listening(context).bot.remediation
    errors = remediation.confirm_form_errors(view) if remediation is not None else None
    _ack(ack, errors, context)
    if not errors:
        user = str(body["user"]["id"])
        remediate(context, body, lambda remediation: remediation.on_confirm_form(view, user))


def _ack(ack: Ack, errors: dict[str, str] | None, context: BoltContext) -> None:
    if errors:
        ack(response_action="errors", errors=errors)
    else:
        ack()  # closes the form
    acked(context)
