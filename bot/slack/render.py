"""Answers as Slack messages: Block Kit built with slack_sdk's models, within Slack's limits.

Every block is built as a `slack_sdk.models.blocks` object, so `to_dict()` validates the
per-element limits (section text 3000, header 150, button text 75, ...). What slack_sdk does
not check is enforced here: at most 50 blocks, escaped `&`, `<`, `>` in anything that came from
a cluster, a fallback `text` for notifications, and condensing large answers rather than
letting Slack reject them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from bot.commands.answers import (
    Answer,
    ClusterReport,
    DigestAnswer,
    EnvironmentReport,
    EnvsAnswer,
    ErrorAnswer,
    HelpAnswer,
    ObjectAnswer,
    ObjectMatch,
    StatusAnswer,
)
from bot.domain.fleet import CacheState, ClusterTarget, Freshness, HealthCounts
from bot.domain.status import FluxObject, Health

MAX_BLOCKS: Final = 50
SECTION_LIMIT: Final = 3000
FALLBACK_LIMIT: Final = 3900
# A failing object's message is cut here in lists; `get` shows it whole.
MESSAGE_PREVIEW: Final = 280
# Failing objects listed one per section before the rest are summarised.
MAX_FAILING_ITEMS: Final = 15
MAX_LISTED: Final = 20

SHARE_ACTION: Final = "flux_share"

ICONS: Final = {
    Health.FAILING: ":red_circle:",
    Health.PROGRESSING: ":large_blue_circle:",
    Health.SUSPENDED: ":double_vertical_bar:",
    Health.READY: ":large_green_circle:",
}


@dataclass(frozen=True, slots=True)
class SlackMessage:
    """A message ready for chat.postMessage or a response_url: fallback text and blocks."""

    text: str
    blocks: list[dict[str, Any]]


def escape(text: str) -> str:
    """Escape the three characters Slack's mrkdwn treats as control characters."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def fallback_text(text: str) -> str:
    """A message's fallback `text` from plain words: escaped (Slack reads it as mrkdwn, so
    `<!channel>` in a controller message would notify everyone) and clipped."""
    return clip(escape(text), FALLBACK_LIMIT)


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, marked with an ellipsis when cut."""
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


class ButtonSource(Protocol):
    """Makes the remediation buttons of an object (signed, and only those that apply)."""

    def menu(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement | None:
        """One button that opens the object's actions, for condensed lists."""
        ...

    def actions(self, environment: str, cluster: str, obj: FluxObject) -> list[ButtonElement]:
        """Every action button that applies to the object."""
        ...


def render(
    answer: Answer,
    command: str = "/flux",
    share_value: str | None = None,
    buttons: ButtonSource | None = None,
) -> SlackMessage:
    """Any answer as a Slack message; `share_value` adds a "Post to channel" button and
    `buttons` the remediation buttons of failing and suspended objects."""
    match answer:
        case StatusAnswer():
            message = _status(answer, buttons)
        case ObjectAnswer():
            message = _object(answer, buttons)
        case DigestAnswer():
            message = _digest_preview(answer)
        case EnvsAnswer():
            message = _envs(answer)
        case HelpAnswer():
            message = _help(answer, command)
        case ErrorAnswer():
            message = _error(answer)
    if share_value is not None:
        message = _with_share_button(message, share_value)
    return message


class _Blocks:
    """Collects blocks, keeping room for the closing blocks every message needs."""

    def __init__(self, reserve: int) -> None:
        self.items: list[Block] = []
        self.reserve = reserve

    @property
    def room(self) -> int:
        return MAX_BLOCKS - self.reserve - len(self.items)

    def add(self, block: Block) -> bool:
        if self.room <= 0:
            return False
        self.items.append(block)
        return True

    def dicts(self) -> list[dict[str, Any]]:
        return [block.to_dict() for block in self.items]


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)))


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, SECTION_LIMIT))])


def _header(text: str) -> HeaderBlock:
    return HeaderBlock(text=PlainTextObject(text=clip(text, 150), emoji=True))


def _sections(lines: Sequence[str]) -> list[SectionBlock]:
    """Pack lines into as few sections as the 3000-character limit allows."""
    out: list[SectionBlock] = []
    chunk: list[str] = []
    size = 0
    for raw in lines:
        line = clip(raw, SECTION_LIMIT)
        if chunk and size + len(line) + 1 > SECTION_LIMIT:
            out.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        out.append(_section("\n".join(chunk)))
    return out


def counts_text(counts: HealthCounts) -> str:
    """`*2* failing · 1 progressing · 0 suspended · 40 ready`, bold where it matters."""
    failing = f"*{counts.failing} failing*" if counts.failing else "0 failing"
    return (
        f"{failing} · {counts.progressing} progressing · "
        f"{counts.suspended} suspended · {counts.ready} ready"
    )


def _when(value: dt.datetime | None) -> str:
    if value is None:
        return "unknown"
    stamp = int(value.timestamp())
    plain = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    # Slack shows dates in each reader's own time zone; the fallback is for old clients.
    return f"<!date^{stamp}^{{date_short_pretty}} {{time}}|{plain}>"


def freshness_text(fresh: Freshness | None) -> str:
    """Empty when live; otherwise a warning a reader cannot miss."""
    if fresh is None or fresh.state is CacheState.LIVE:
        return ""
    if fresh.state is CacheState.SYNCING:
        return " :hourglass_flowing_sand: _still syncing_"
    since = f" since {_when(fresh.since)}" if fresh.since else ""
    return f" :warning: *stale{since}*: {escape(fresh.error)} (last known state shown)"


def _cluster_line(report: ClusterReport) -> str:
    status = report.status
    problem = status.unreadable
    if problem is not None:
        return f":warning: *{escape(status.cluster)}*: cannot read: {escape(problem.message)}"
    icon = ":red_circle:" if report.counts.failing else ":large_green_circle:"
    line = f"{icon} *{escape(status.cluster)}*  {counts_text(report.counts)}"
    line += freshness_text(status.freshness)
    for partial in (p for p in status.problems if not p.whole_cluster):
        line += f"\n      :warning: {', '.join(partial.kinds)}: {escape(partial.message)}"
    return line


def object_title(obj: FluxObject) -> str:
    """`*HelmRelease* `flux-apps/podinfo``."""
    return f"*{obj.kind}* `{escape(obj.namespace)}/{escape(obj.name)}`"


def _failure_text(cluster: str, obj: FluxObject) -> str:
    reason = f"*{escape(obj.reason)}*" if obj.reason else "failing"
    message = escape(clip(" ".join(obj.message.split()), MESSAGE_PREVIEW))
    return (
        f"{ICONS[Health.FAILING]} {object_title(obj)} on *{escape(cluster)}*\n"
        f"{reason} since {_when(obj.ready_since)}\n> {message or '(no message)'}"
    )


def _status(answer: StatusAnswer, buttons: ButtonSource | None) -> SlackMessage:
    blocks = _Blocks(reserve=3)
    fallback: list[str] = []
    for env in answer.environments:
        _environment_blocks(env, answer, blocks, buttons)
        fallback.append(_status_fallback(env))
    if not answer.environments:
        blocks.add(_section("No environments are configured."))
    return SlackMessage(fallback_text(" ".join(fallback) or "No environments."), blocks.dicts())


def _environment_blocks(
    env: EnvironmentReport, answer: StatusAnswer, blocks: _Blocks, buttons: ButtonSource | None
) -> None:
    counts = env.counts
    clusters = len(env.clusters)
    blocks.add(
        _header(
            f"{env.name}: {counts.failing} failing of {counts.total} {answer.scope}"
            if counts.failing
            else f"{env.name}: all {counts.total} {answer.scope} healthy"
            if counts.total == counts.ready
            else f"{env.name}: nothing failing ({counts.total} {answer.scope})"
        )
    )
    for section in _sections([_cluster_line(c) for c in env.clusters]):
        blocks.add(section)
    failing = [(c.cluster, o) for c in env.clusters for o in c.shown if o.health is Health.FAILING]
    if failing:
        blocks.add(DividerBlock())
    listed = 0
    for cluster, obj in failing:
        if listed >= MAX_FAILING_ITEMS or blocks.room <= 3:
            break
        section = _section(_failure_text(cluster, obj))
        if buttons is not None:
            section.accessory = buttons.menu(env.name, cluster, obj)
        blocks.add(section)
        listed += 1
    if listed < len(failing):
        blocks.add(
            _context(
                f"… and {len(failing) - listed} more failing; narrow with `--kind` or `--cluster`"
            )
        )
    for health, title in ((Health.PROGRESSING, "Progressing"), (Health.SUSPENDED, "Suspended")):
        others = [(c.cluster, o) for c in env.clusters for o in c.shown if o.health is health]
        if health is Health.SUSPENDED and buttons is not None:
            # Suspended objects get their own line and button while there is room.
            while others and blocks.room > 3 and listed < MAX_FAILING_ITEMS:
                cluster, obj = others.pop(0)
                section = _section(_suspended_text(cluster, obj))
                section.accessory = buttons.menu(env.name, cluster, obj)
                blocks.add(section)
                listed += 1
        if others:
            blocks.add(_section(_listing(title, health, others)))
    if not answer.failing_only and counts.total and counts.ready == counts.total:
        blocks.add(
            _context(f"{clusters} cluster{'s' if clusters != 1 else ''}, every object Ready.")
        )


def _suspended_text(cluster: str, obj: FluxObject) -> str:
    text = f"{ICONS[Health.SUSPENDED]} {object_title(obj)} on *{escape(cluster)}* is suspended"
    record = obj.suspension
    if record is not None:
        text += f" by {escape(record.by)} since {_when(record.at)}"
        if record.until:
            text += f" until {_when(record.until)}"
        if record.reason:
            text += f"\n> {escape(clip(record.reason, MESSAGE_PREVIEW))}"
    return text


def _listing(title: str, health: Health, objects: Sequence[tuple[str, FluxObject]]) -> str:
    lines = [f"*{title}* ({len(objects)})"]
    for cluster, obj in objects[:MAX_LISTED]:
        detail = escape(clip(" ".join(obj.message.split()), 120)) if obj.message else ""
        lines.append(
            f"{ICONS[health]} {object_title(obj)} on {escape(cluster)}"
            + (f": _{detail}_" if detail else "")
        )
    if len(objects) > MAX_LISTED:
        lines.append(f"… and {len(objects) - MAX_LISTED} more")
    return "\n".join(lines)


def _status_fallback(env: EnvironmentReport) -> str:
    counts = env.counts
    text = (
        f"{env.name}: {counts.failing} failing, {counts.progressing} progressing, "
        f"{counts.suspended} suspended, {counts.ready} ready in {len(env.clusters)} clusters."
    )
    first = next(
        ((c.cluster, o) for c in env.clusters for o in c.shown if o.health is Health.FAILING),
        None,
    )
    if first is not None:
        cluster, obj = first
        text += f" First failure: {obj.kind} {obj.namespace}/{obj.name} on {cluster}: "
        text += clip(obj.message, 300)
    unreadable = [c.cluster for c in env.clusters if c.status.unreadable is not None]
    if unreadable:
        text += f" Cannot read: {', '.join(unreadable)}."
    return text


def _object(answer: ObjectAnswer, buttons: ButtonSource | None) -> SlackMessage:
    blocks = _Blocks(reserve=2)
    if not answer.matches:
        where = f" in namespace `{escape(answer.namespace)}`" if answer.namespace else ""
        text = f"No {answer.kind} named `{escape(answer.name)}`{where} was found."
        blocks.add(_section(f":mag: {text}"))
    for index, match in enumerate(answer.matches):
        if blocks.room < 4:
            blocks.add(_context(f"… and {len(answer.matches) - index} more matches"))
            break
        for block in _match_blocks(match, buttons):
            blocks.add(block)
    for cluster in answer.unreadable:
        assert cluster.unreadable is not None
        problem = escape(cluster.unreadable.message)
        blocks.add(_context(f":warning: {escape(cluster.cluster)} not searched: {problem}"))
    if answer.matches:
        first = answer.matches[0].object
        fallback = (
            f"{first.kind} {first.namespace}/{first.name}: Ready {first.ready}"
            f"{' (' + first.reason + ')' if first.reason else ''}: {clip(first.message, 500)}"
        )
    else:
        fallback = f"No {answer.kind} named {answer.name} was found."
    return SlackMessage(fallback_text(fallback), blocks.dicts())


def _match_blocks(match: ObjectMatch, buttons: ButtonSource | None) -> list[Block]:
    obj = match.object
    head = (
        f"{ICONS[obj.health]} {object_title(obj)} on *{escape(match.cluster)}* "
        f"({escape(match.environment)}): *{obj.health}*{freshness_text(match.freshness)}"
    )
    facts = [
        f"*Ready* {obj.ready}" + (f" ({escape(obj.reason)})" if obj.reason else ""),
        f"*Revision* `{escape(obj.full_revision)}`" if obj.full_revision else "*Revision* –",
        f"*Suspended* {obj.suspended}",
    ]
    if obj.generation_lag:
        facts.append(f"*Generation* {obj.generation} (controller saw {obj.observed_generation})")
    if obj.source_ref:
        facts.append(f"*Source* `{escape(str(obj.source_ref))}`")
    if obj.owner:
        facts.append(f"*Applied by* `{escape(str(obj.owner))}`")
    if obj.depends_on:
        facts.append("*Depends on* " + ", ".join(f"`{escape(str(d))}`" for d in obj.depends_on))
    if match.dependents:
        names = [f"`{escape(str(d.ref))}`" for d in match.dependents[:10]]
        more = f" and {len(match.dependents) - 10} more" if len(match.dependents) > 10 else ""
        facts.append("*Used by* " + ", ".join(names) + more)
    if obj.suspension is not None:
        record = obj.suspension
        until = f" until {_when(record.until)}" if record.until else ""
        facts.append(
            f"*Suspended by* {escape(record.by)} since {_when(record.at)}{until}: "
            f"{escape(record.reason)}"
        )
    blocks: list[Block] = [_section(head + "\n" + "\n".join(facts))]
    if buttons is not None:
        elements = buttons.actions(match.environment, match.cluster, obj)
        if elements:
            # A block_id of our own lets a click's outcome be put under the right buttons.
            anchor = (elements[0].action_id or "x").rsplit(":", 1)[-1]
            blocks.append(ActionsBlock(elements=elements, block_id=f"actions:{anchor}"))
    if obj.message:
        blocks.append(_section(f"> {escape(clip(' '.join(obj.message.split()), 2800))}"))
    details: list[str] = []
    if obj.conditions:
        details.append("*Conditions*")
        details += [
            f"• `{escape(c.type)}` {c.status}"
            + (f" *{escape(c.reason)}*" if c.reason else "")
            + f" since {_when(c.last_transition_time)}"
            for c in obj.conditions
        ]
    if obj.helm is not None and obj.helm.history:
        details.append(
            f"*Helm release* `{escape(obj.helm.release_namespace)}/{escape(obj.helm.release_name)}`"
            f" (storage namespace `{escape(obj.helm.storage_namespace or '-')}`)"
        )
        details += [
            f"• v{s.version} `{escape(s.chart_name)}@{escape(s.chart_version)}` "
            f"app {escape(s.app_version or '-')} *{escape(s.status)}* {_when(s.last_deployed)}"
            for s in obj.helm.history[:10]
        ]
    blocks += _sections(details)
    if match.events:
        lines = ["*Recent events*"]
        lines += [
            f"{':warning:' if e.is_warning else ':information_source:'} {_when(e.last_seen)} "
            f"*{escape(e.reason)}*{f' ×{e.count}' if e.count > 1 else ''}: "
            f"{escape(clip(' '.join(e.message.split()), 200))}"
            for e in match.events
        ]
        blocks += _sections(lines)
    if match.events_note:
        blocks.append(_context(escape(match.events_note)))
    return blocks


def _envs(answer: EnvsAnswer) -> SlackMessage:
    lines = []
    for env in answer.layout.environments:
        channel = f"<#{env.channel}>" if env.channel else "no channel"
        clusters = ", ".join(
            _cluster_with_freshness(c, answer.freshness.get(ClusterTarget(env.name, c)))
            for c in env.clusters
        )
        lines.append(f"*{escape(env.name)}* ({env.tier}) in {channel}: {clusters}")
    blocks = _Blocks(reserve=1)
    blocks.add(_header("Environments"))
    for section in _sections(lines):
        blocks.add(section)
    fallback = "; ".join(f"{e.name}: {', '.join(e.clusters)}" for e in answer.layout.environments)
    return SlackMessage(fallback_text(f"Environments: {fallback}"), blocks.dicts())


def _cluster_with_freshness(cluster: str, fresh: Freshness | None) -> str:
    if fresh is None:
        return escape(cluster)
    icon = {
        CacheState.LIVE: ":large_green_circle:",
        CacheState.SYNCING: ":hourglass_flowing_sand:",
        CacheState.STALE: ":warning:",
    }[fresh.state]
    return f"{icon} {escape(cluster)} ({fresh.state})"


def _help(answer: HelpAnswer, command: str) -> SlackMessage:
    # The command layer already wrote the help with this command's prefix.
    text = answer.text
    blocks: list[Block] = []
    if answer.problem:
        blocks.append(_section(f":warning: {escape(answer.problem)}"))
    blocks.append(_section(f"```{escape(text)}```"))
    fallback = f"{answer.problem}. " if answer.problem else ""
    return SlackMessage(
        fallback_text(fallback + f"Usage: {command} help"), [b.to_dict() for b in blocks]
    )


def _error(answer: ErrorAnswer) -> SlackMessage:
    text = f":warning: {escape(answer.message)}"
    if answer.choices:
        text += "\nValid names: " + ", ".join(f"`{escape(c)}`" for c in answer.choices)
    message = answer.message
    if answer.choices:
        message += " Valid names: " + ", ".join(answer.choices)
    return SlackMessage(fallback_text(message), [_section(text).to_dict()])


def _with_share_button(message: SlackMessage, value: str) -> SlackMessage:
    button = ButtonElement(
        text=PlainTextObject(text="Post to channel"),
        action_id=SHARE_ACTION,
        value=value,
    )
    blocks = [*message.blocks[: MAX_BLOCKS - 1], ActionsBlock(elements=[button]).to_dict()]
    return SlackMessage(message.text, blocks)


def _digest_preview(answer: DigestAnswer) -> SlackMessage:
    # Imported here: the digest renderer builds on this module's helpers.
    from bot.slack.digest_render import details_message  # noqa: PLC0415

    details = details_message(answer.digest, None)
    note = ContextBlock(
        elements=[MarkdownTextObject(text="Preview of the digest, only for you.")]
    ).to_dict()
    return SlackMessage(details.text, [*details.blocks[: MAX_BLOCKS - 1], note])
