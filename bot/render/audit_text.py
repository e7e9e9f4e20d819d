"""The posture audit as terminal text."""

from __future__ import annotations

from bot.commands.answers import AuditAnswer
from bot.commands.audit_words import audit_text


def render_audit(answer: AuditAnswer) -> str:
    """The audit as terminal text: the words every renderer shares, unquoted."""
    return audit_text(answer)
