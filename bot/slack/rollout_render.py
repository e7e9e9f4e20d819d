"""The rollout answer as a Slack message: one line per environment, details where clusters
differ, commit links on revisions, the promotion steps last."""

from __future__ import annotations

from bot.commands.answers import RolloutAnswer
from bot.commands.rollout_words import (
    Style,
    cluster_detail,
    environment_line,
    headline,
    rollout_text,
    source_title,
    step_line,
)
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

INDENT = "\u2003\u2003"
SLACK = Style(
    code=lambda s: f"`{s}`",
    escape=escape,
    # A link's text cannot hold backticks; the revision stays readable without them.
    link=lambda text, url: f"<{url}|{text.strip('`')}>",
)


def rollout_message(answer: RolloutAnswer) -> SlackMessage:
    """Header with the key fact, a section per source, promotion steps as context."""
    blocks = Blocks(reserve=1)
    blocks.add(header_block(headline(answer)))
    if not answer.sources:
        blocks.add(section_blocks(["No GitRepository or OCIRepository found."])[0])
    for source in answer.sources:
        lines = [f"*{escape(source_title(source))}*"]
        for env in source.environments:
            lines.append("• " + environment_line(env, answer.now, SLACK, answer.revision))
            if answer.detailed:
                for cluster in env.clusters:
                    # Slack trims leading spaces; em spaces keep the indent.
                    lines += [
                        INDENT + line.strip()
                        for line in cluster_detail(cluster, answer.now, SLACK, every=False)
                    ]
        for section in section_blocks(lines):
            if not blocks.add(section):
                break
        steps = [step_line(step, SLACK) for step in source.steps]
        if steps:
            blocks.add(context_block(":arrow_right: " + "\n:arrow_right: ".join(steps)))
    if blocks.room <= 0:
        blocks.reserve = 0
        blocks.add(context_block("… more sources; name one: `/flux rollout SOURCE`"))
    return SlackMessage(clip(rollout_text(answer), FALLBACK_LIMIT), blocks.dicts())
