"""Events API: mentions of the bot, and user group changes."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.events.mentions import on_mention
from bot.slack.listeners.events.usergroups import on_group_change


def register(app: App) -> None:
    """Listen for mentions and for changes to user groups' members."""
    app.event("app_mention")(on_mention)
    app.event("subteam_members_changed")(on_group_change)
