"""Rollout answers as terminal text."""

from __future__ import annotations

from bot.commands.answers import RolloutAnswer
from bot.commands.rollout_words import PLAIN, rollout_text


def render_rollout(answer: RolloutAnswer) -> str:
    """The rollout answer as terminal text: commit URLs on lines of their own."""
    return rollout_text(answer, PLAIN)
