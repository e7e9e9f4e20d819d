"""Form submissions: the suspend form and the typed confirmation."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.views.forms import on_confirm_form, on_suspend_form
from bot.slack.remediation import CONFIRM_VIEW, SUSPEND_VIEW


def register(app: App) -> None:
    """Listen for the action forms' submissions."""
    app.view(SUSPEND_VIEW)(on_suspend_form)
    app.view(CONFIRM_VIEW)(on_confirm_form)
