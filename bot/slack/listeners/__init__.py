"""Bolt listeners, one package per kind of Slack request (as bolt-python's starter lays them
out), each with `register(app)` and its handlers as plain functions in modules.

Every handler acks on the request's own thread and hands the work to a pool of ours
(`listening.after_ack`): nothing that waits on Slack or a cluster ever runs before the ack,
nor on a thread an ack could wait for.
"""

from __future__ import annotations

from slack_bolt import App

from bot.slack.listeners import actions, commands, events, views


def register_listeners(app: App, command: str) -> None:
    """Register every listener: the slash command `command` (it is configured, so the only
    `register` that takes more than the app), button clicks, form submissions, events."""
    commands.register(app, command)
    actions.register(app)
    views.register(app)
    events.register(app)
