"""A user group's members changed: roles granted by groups are read afresh."""

from __future__ import annotations

from slack_bolt import BoltContext

from bot.slack.listeners.listening import acked, listening


def on_group_change(context: BoltContext) -> None:
    """Forget the cached memberships (Bolt acks events itself); the next click reads them."""
    acked(context)
    remediation = listening(context).bot.remediation
    if remediation is not None:
        # In memory only: nothing here waits on Slack.
        remediation.directory.invalidate()
