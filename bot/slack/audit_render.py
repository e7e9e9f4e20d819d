"""The posture audit as a Slack message: the key fact, one line per rule, then per environment
each object with the fields to set."""

from __future__ import annotations

from typing import Final

from bot.commands.answers import AuditAnswer
from bot.commands.audit_words import audit_text, environment_title, grouped, headline
from bot.domain.posture import summary_lines
from bot.slack.render import (
    FALLBACK_LIMIT,
    Blocks,
    SlackMessage,
    clip,
    context_block,
    escape,
    header_block,
    section_blocks,
)

# Objects listed per environment before the rest are counted.
MAX_OBJECTS: Final = 12


def audit_message(answer: AuditAnswer, command: str = "/flux") -> SlackMessage:
    """Header, summary, then each environment's objects with what to set and why."""
    blocks = Blocks(reserve=1)
    blocks.add(header_block(headline(answer)))
    summary = summary_lines(answer.findings)
    if summary:
        blocks.add(section_blocks(["• " + escape(line) for line in summary])[0])
    for env in answer.environments:
        lines = [f"*{escape(environment_title(env))}*"]
        objects = grouped(env)
        for title, findings in objects[:MAX_OBJECTS]:
            lines.append(f"*{escape(title)}*")
            lines += [f"      `{f.field}` {escape(f.advice)}" for f in findings]
        if len(objects) > MAX_OBJECTS:
            lines.append(
                f"_… and {len(objects) - MAX_OBJECTS} more objects: "
                f"`{command} audit {escape(env.name)}` or `fluxbot audit --output json`_"
            )
        for section in section_blocks(lines):
            if not blocks.add(section):
                break
    blocks.reserve = 0
    blocks.add(
        context_block(
            "Findings are advice, in Flux's field names with Flux's defaults applied; the "
            "policy per tier and environment is `posture` in the configuration."
        )
    )
    return SlackMessage(clip(audit_text(answer), FALLBACK_LIMIT), blocks.dicts())
