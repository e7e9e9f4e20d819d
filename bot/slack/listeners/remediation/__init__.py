"""Remediation clicks, forms and approvals: ack at once, act after."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from slack_bolt import Ack, App

from bot.observability.logging import request_scope
from bot.slack.buttons import ACT, APPROVE, DENY, MENU, SNOOZE
from bot.slack.interactions import CONFIRM_VIEW, SUSPEND_VIEW

if TYPE_CHECKING:
    from bot.slack.app import SlackBot


def register(app: App, bot: SlackBot) -> None:
    """Listen for action buttons, approval buttons and the action forms."""
    remediation = bot.remediation
    if remediation is None:
        return

    def on_menu(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with request_scope():
            remediation.on_menu(body, action)

    def on_act(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with request_scope():
            remediation.on_click(body, action)

    def on_approve(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with request_scope():
            remediation.on_approval(body, action, approve=True)

    def on_deny(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with request_scope():
            remediation.on_approval(body, action, approve=False)

    def on_suspend_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        # The form's own mistakes go back in the ack, at once; authorizing comes after it.
        with request_scope():
            remediation.on_suspend_form(view, str(body["user"]["id"]), _form_ack(ack))

    def on_confirm_form(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        with request_scope():
            remediation.on_confirm_form(view, str(body["user"]["id"]), _form_ack(ack))

    def on_snooze(ack: Ack, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        with request_scope():
            remediation.on_snooze(body, action)

    def on_group_change(ack: Ack) -> None:
        ack()
        remediation.directory.invalidate()

    app.action(re.compile(f"^{MENU}:"))(on_menu)
    app.action(re.compile(f"^{ACT}:"))(on_act)
    app.action(re.compile(f"^{APPROVE}:"))(on_approve)
    app.action(re.compile(f"^{DENY}:"))(on_deny)
    app.action(re.compile(f"^{SNOOZE}:"))(on_snooze)
    app.view(SUSPEND_VIEW)(on_suspend_form)
    app.view(CONFIRM_VIEW)(on_confirm_form)
    app.event("subteam_members_changed")(on_group_change)


def _form_ack(ack: Ack) -> Callable[..., None]:
    """An ack that answers a view submission with its errors, or closes the form."""

    def answer(errors: dict[str, str] | None = None) -> None:
        if errors:
            ack(response_action="errors", errors=errors)
        else:
            ack()

    return answer
