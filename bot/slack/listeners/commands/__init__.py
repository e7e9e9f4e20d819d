"""The slash command (`/flux` or the configured one)."""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners.commands.slash import on_command


def register(app: App, command: str) -> None:
    """Listen for the configured slash command."""
    app.command(command)(on_command)
