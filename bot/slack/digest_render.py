"""Digests as Slack messages: a short top-level line, the details (in its thread)."""

from __future__ import annotations

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

from bot.domain.digest import Digest
from bot.domain.fleet import CacheState
from bot.domain.posture import posture_line
from bot.domain.status import FluxObject
from bot.render.digest_text import headline
from bot.slack.render import (
    FALLBACK_LIMIT,
    MAX_BLOCKS,
    SECTION_LIMIT,
    SlackMessage,
    _when,
    clip,
    counts_text,
    escape,
    object_title,
)

MAX_ITEMS: Final = 12
MAX_LINES: Final = 25


class DigestButtons(Protocol):
    """Buttons a digest item carries: the object's actions, and snoozing it."""

    def menu(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement | None:
        """Opens the object's remediation buttons."""
        ...

    def snooze(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement:
        """Offers to hide the object from digests for a while."""
        ...


def _ref(kind: str, namespace: str, name: str, cluster: str) -> str:
    return f"{kind} `{escape(namespace)}/{escape(name)}` on {escape(cluster)}"


def _section(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip(text, SECTION_LIMIT)))


def summary_message(digest: Digest, details_in_thread: bool) -> SlackMessage:
    """The top-level message: one line, and where the details are."""
    icon = ":large_green_circle:" if digest.healthy else ":red_circle:"
    text = f"{icon} *{escape(headline(digest))}*"
    blocks: list[dict[str, Any]] = [_section(text).to_dict()]
    if (posture := posture_line(digest.posture)) is not None:
        blocks.append(_section(f":shield: {escape(posture)}").to_dict())
    if (not digest.healthy or digest.posture) and details_in_thread:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text="Details in the thread :thread:")]
            ).to_dict()
        )
    return SlackMessage(clip(headline(digest), FALLBACK_LIMIT), blocks)


def details_message(digest: Digest, buttons: DigestButtons | None) -> SlackMessage:
    """Everything worth a line: clusters, root causes, suspensions, changes, unreadable."""
    blocks: list[Block] = [
        HeaderBlock(text=PlainTextObject(text=clip(f"{digest.environment} digest", 150)))
    ]
    lines = []
    for c in digest.clusters:
        if c.unreadable is not None:
            lines.append(
                f":warning: *{escape(c.cluster)}*: cannot read: {escape(c.unreadable.message)}"
            )
            continue
        line = f"*{escape(c.cluster)}*  {counts_text(c.counts)}"
        if c.freshness is not None and c.freshness.state is CacheState.STALE:
            line += (
                f" :warning: stale since {_when(c.freshness.since)}: {escape(c.freshness.error)}"
            )
        lines.append(line)
    blocks.append(_section("\n".join(lines) or "No clusters."))

    if digest.attention:
        blocks += [DividerBlock(), _section(f"*Needs attention* ({len(digest.attention)})")]
        for item in digest.attention[:MAX_ITEMS]:
            root = item.root
            deps = ""
            if item.dependents:
                names = ", ".join(f"{d.kind} `{escape(d.name)}`" for d in item.dependents[:5])
                more = f" and {len(item.dependents) - 5} more" if len(item.dependents) > 5 else ""
                deps = (
                    f"\n→ {len(item.dependents)} dependent(s) failing because of it: {names}{more}"
                )
            text = (
                f":red_circle: {object_title(root)} on *{escape(item.cluster)}*: "
                f"{escape(clip(' '.join(root.message.split()), 300))}{deps}\n"
                f"_failing since {_when(item.since)}_"
            )
            blocks.append(_section(text))
            if buttons is not None:
                elements = [
                    b
                    for b in (
                        buttons.menu(digest.environment, item.cluster, root),
                        buttons.snooze(digest.environment, item.cluster, root),
                    )
                    if b is not None
                ]
                anchor = (elements[0].action_id or "x").rsplit(":", 1)[-1]
                blocks.append(ActionsBlock(elements=elements, block_id=f"digest:{anchor}"))
        if len(digest.attention) > MAX_ITEMS:
            rest = len(digest.attention) - MAX_ITEMS
            text = f"… and {rest} more; `/flux status --failing` lists them"
            blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text)]))

    if digest.suspended:
        lines = [f"*Suspended* ({len(digest.suspended)})"]
        for s in digest.suspended[:MAX_LINES]:
            record = s.obj.suspension
            line = f":double_vertical_bar: {object_title(s.obj)} on {escape(s.cluster)}"
            if record is not None:
                line += (
                    f" by {escape(record.by)} since {_when(record.at)}: _{escape(record.reason)}_"
                )
                if record.until:
                    line += f" (until {_when(record.until)})"
            if s.overdue:
                line += "\n      :alarm_clock: *its suspension has ended: resume it or extend it*"
            lines.append(line)
        blocks += [DividerBlock(), _section("\n".join(lines))]

    changes = digest.changes
    if not changes.empty:
        lines = [f"*Changes since {_when(digest.since)}*"]
        for group in changes.revisions[:10]:
            old = f" (from `{escape(', '.join(group.old)[:200])}`)" if group.old else ""
            where = ", ".join(sorted({k[0] for k in group.objects}))
            count = len(group.objects)
            lines.append(
                f"• {count} object(s) applied `{escape(group.new)}`{old} on {escape(where)}"
            )
        for up in changes.chart_upgrades[:10]:
            release = f"`{escape(up.namespace)}/{escape(up.name)}`"
            lines.append(
                f"• HelmRelease {release} on {escape(up.cluster)}: "
                f"chart {escape(up.old)} → {escape(up.new)}"
            )
        for t in changes.new_failures[:10]:
            lines.append(
                f"• :red_circle: new failure: {_ref(t.kind, t.namespace, t.name, t.cluster)}"
            )
        for t in changes.recoveries[:10]:
            lines.append(
                f"• :large_green_circle: recovered: {_ref(t.kind, t.namespace, t.name, t.cluster)}"
            )
        for (cluster, kind, ns, name), count in changes.flapping[:10]:
            what = _ref(kind, ns, name, cluster)
            lines.append(f"• :arrows_counterclockwise: flapping: {what} failed {count} times")
        for a in changes.actions[:10]:
            result = "" if a.ok else " (failed)"
            lines.append(
                f"• :hammer_and_wrench: {escape(a.user)} ran *{escape(a.action)}* on {a.kind} "
                f"`{escape(a.namespace)}/{escape(a.name)}` ({escape(a.cluster)}){result}"
            )
        blocks += [DividerBlock(), _section("\n".join(lines))]

    if digest.posture:
        blocks += [DividerBlock(), _section(_posture_list(digest))]

    if digest.snoozed:
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"{digest.snoozed} snoozed object(s) not shown.")]
            )
        )
    dicts = [b.to_dict() for b in blocks[:MAX_BLOCKS]]
    return SlackMessage(clip(headline(digest), FALLBACK_LIMIT), dicts)


def _posture_list(digest: Digest) -> str:
    """The posture findings, one per line (`/flux audit` has them with the advice)."""
    findings = digest.posture
    lines = [f"*Posture* ({len(findings)}): `/flux audit {escape(digest.environment)}` says why"]
    for f in findings[:MAX_LINES]:
        obj = f.object
        lines.append(
            f"• {obj.kind} `{escape(obj.namespace)}/{escape(obj.name)}` on {escape(f.cluster)}: "
            f"`{f.field}`"
        )
    if len(findings) > MAX_LINES:
        lines.append(f"… and {len(findings) - MAX_LINES} more")
    return "\n".join(lines)
