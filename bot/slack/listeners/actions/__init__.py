"""Button clicks on fluxbot's messages: Share, and the remediation buttons."""

from __future__ import annotations

import re

from slack_bolt import App

from bot.slack.buttons import ACT, APPROVE, DENY, MENU, SNOOZE
from bot.slack.listeners.actions.approvals import on_approve, on_deny
from bot.slack.listeners.actions.object_buttons import on_act, on_menu, on_snooze
from bot.slack.listeners.actions.share import on_share
from bot.slack.render import SHARE_ACTION


def register(app: App) -> None:
    """Listen for every button fluxbot puts on its messages."""
    app.action(SHARE_ACTION)(on_share)
    app.action(re.compile(f"^{MENU}:"))(on_menu)
    app.action(re.compile(f"^{ACT}:"))(on_act)
    app.action(re.compile(f"^{SNOOZE}:"))(on_snooze)
    app.action(re.compile(f"^{APPROVE}:"))(on_approve)
    app.action(re.compile(f"^{DENY}:"))(on_deny)
