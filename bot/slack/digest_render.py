"""Digests as Slack messages: a top-level message that names the problems, the details (in
its thread).

Slack caps a message at 50 blocks and a section at 3,000 characters. Nothing is cut silently:
every list that does not fit ends with "… and N more" and where to see the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
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

from bot.domain.condense import DEFAULT_LIMIT as CONDENSED
from bot.domain.condense import condense
from bot.domain.digest import ChangeItem, Digest, Problem, RevisionGroup
from bot.domain.digest_words import (
    TOP_PROBLEMS,
    duration,
    headline,
    unreadable_since,
    while_down,
)
from bot.domain.fleet import CacheState
from bot.domain.posture import posture_line
from bot.domain.status import FluxObject, truncate_hex
from bot.domain.transitions import Transition
from bot.slack.render import (
    MAX_BLOCKS,
    SECTION_LIMIT,
    SlackMessage,
    clip,
    counts_text,
    escape,
    fallback_text,
    object_title,
    slack_date,
)

# Root causes listed under Needs attention (each is a section and a row of buttons).
MAX_ITEMS: Final = 12
# Lines of the Suspended section, and of each kind of change.
MAX_LINES: Final = 25
MAX_CHANGES: Final = 10
# Dependents named on a root cause's line, then a count.
NAMED_DEPENDENTS: Final = 5
# One block is kept free for the note a preview adds (bot.slack.render._digest_preview).
BLOCK_BUDGET: Final = MAX_BLOCKS - 1


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


def _context(text: str) -> ContextBlock:
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, SECTION_LIMIT))])


def _more(count: int, what: str, where: str) -> str:
    return f"_… and {count} more {what}; {where}_"


def _print_all(environment: str) -> str:
    return f"`fluxbot digest {escape(environment)} --dry-run` prints them all"


def _problem_line(problem: Problem, digest: Digest) -> str:
    now = digest.now
    if problem.kind == "unreadable":
        since = f"for {duration(problem.since, now)}" if problem.since else "since unknown"
        return (
            f":warning: *{escape(problem.cluster)}* cannot be read ({since}): "
            f"{escape(problem.phrase)}"
        )
    subject = problem.subject.split(" ", 1)
    title = f"{subject[0]} `{escape(subject[-1])}`"
    if problem.kind == "overdue":
        return (
            f":alarm_clock: {title} on *{escape(problem.cluster)}*: its suspension ended "
            f"{duration(problem.since, now)} ago; resume or extend it"
        )
    dependents = f" (+{problem.dependents} failing because of it)" if problem.dependents else ""
    age = "*new*" if problem.new else "ongoing"
    return (
        f":red_circle: {title} on *{escape(problem.cluster)}*: {escape(problem.phrase)}"
        f"{dependents} · failing {duration(problem.since, now)}, {age}"
    )


def _revision_text(group: RevisionGroup) -> str:
    where = ", ".join(sorted({k[0] for k in group.objects}))
    revision = f"`{escape(group.short)}`"
    if group.link:
        revision += f" (<{group.link}|commit>)"
    names = ", ".join(f"{k[1]} `{escape(k[3])}`" for k in group.objects[:3])
    more = f" and {len(group.objects) - 3} more" if len(group.objects) > 3 else ""
    old = f" (from `{escape(clip(', '.join(truncate_hex(o) for o in group.old), 200))}`)"
    return (
        f"{revision} applied to {len(group.objects)} object(s) on {escape(where)}: "
        f"{names}{more}{old if group.old else ''}{escape(while_down(group))}"
    )


def summary_message(digest: Digest, details_in_thread: bool) -> SlackMessage:
    """The top-level message: the problems by name, what was applied, where the rest is."""
    posture = posture_line(digest.posture)
    if digest.healthy:
        text = f":large_green_circle: *{escape(headline(digest))}*"
        healthy = [_section(text).to_dict()]
        if posture is not None:
            # The posture is advice: one line here, its list where the details go.
            healthy.append(_section(f":shield: {escape(posture)}").to_dict())
            if details_in_thread:
                healthy.append(_context("Details in the thread :thread:").to_dict())
        return SlackMessage(fallback_text(headline(digest)), healthy)
    problems = digest.problems
    lines = [f":red_circle: *{escape(digest.environment)} digest*"]
    lines += [_problem_line(p, digest) for p in problems[:TOP_PROBLEMS]]
    where = "in the thread" if details_in_thread else "below"
    if len(problems) > TOP_PROBLEMS:
        lines.append(_more(len(problems) - TOP_PROBLEMS, "problem(s)", f"all {where}"))
    changes = digest.changes
    for group in changes.revisions[:1]:
        lines.append(f":arrow_up: {_revision_text(group)}")
    upgrades = [u for u in changes.chart_upgrades if not u.in_progress]
    if upgrades:
        named = ", ".join(f"`{escape(u.name)}` {escape(u.new)}" for u in upgrades[:3])
        more = f" and {len(upgrades) - 3} more" if len(upgrades) > 3 else ""
        lines.append(f":arrow_up: Upgraded {named}{more}")
    counts = []
    if changes.count:
        counts.append(f"{changes.count} change(s) since {slack_date(digest.since)}")
    if digest.suspended:
        counts.append(f"{len(digest.suspended)} suspended")
    if digest.snoozed:
        counts.append(f"{digest.snoozed} snoozed")
    if posture is not None:
        lines.append(f":shield: {escape(posture)}")
    blocks: list[dict[str, Any]] = [_section("\n".join(lines)).to_dict()]
    footer = " · ".join(counts)
    if details_in_thread:
        footer = f"{footer} · details in the thread :thread:" if footer else "Details in the thread"
    if footer:
        blocks.append(_context(footer).to_dict())
    return SlackMessage(fallback_text(headline(digest)), blocks)


def single_message(digest: Digest, buttons: DigestButtons | None, reserve: int = 0) -> SlackMessage:
    """The digest in one message (`details_in_thread: false`): the problems first, then all.

    `reserve`: blocks kept free for the caller, besides the one a preview's note takes.
    """
    summary = summary_message(digest, details_in_thread=False)
    if digest.healthy and not digest.posture:
        return summary
    details = details_message(digest, buttons, reserve=len(summary.blocks) + 1 + reserve)
    divider = DividerBlock().to_dict()
    # The details' header repeats the summary's first line; the summary replaces it.
    return SlackMessage(summary.text, [*summary.blocks, divider, *details.blocks[1:]])


def details_message(
    digest: Digest, buttons: DigestButtons | None, reserve: int = 0
) -> SlackMessage:
    """Everything worth a line: clusters, root causes, suspensions, changes, unreadable.

    `reserve`: blocks kept free for what the caller puts around it.
    """
    budget = BLOCK_BUDGET - reserve
    env = digest.environment
    blocks: list[Block] = [HeaderBlock(text=PlainTextObject(text=clip(f"{env} digest", 150)))]
    lines = []
    for c in digest.clusters:
        if c.unreadable is not None:
            lines.append(
                f":warning: *{escape(c.cluster)}*: cannot read ({unreadable_since(c)}): "
                f"{escape(c.unreadable.message)}"
            )
            continue
        line = f"*{escape(c.cluster)}*  {counts_text(c.counts)}"
        if c.freshness is not None and c.freshness.state is CacheState.STALE:
            since = slack_date(c.freshness.since)
            line += f" :warning: stale since {since}: {escape(c.freshness.error)}"
        lines.append(line)
    blocks += _packed(lines or ["No clusters."], 3, "cluster(s)", "`/flux envs` lists them")

    if digest.attention:
        blocks += [DividerBlock(), _section(f"*Needs attention* ({len(digest.attention)})")]
        shown = 0
        for item in digest.attention[:MAX_ITEMS]:
            if len(blocks) + 4 > budget - 6:  # keep room for the other sections
                break
            shown += 1
            blocks += _attention_blocks(digest, item, buttons)
        if shown < len(digest.attention):
            rest = len(digest.attention) - shown
            blocks.append(
                _context(_more(rest, "root cause(s)", "`/flux status --failing` lists them"))
            )
        elif buttons is None and any(
            len(i.root.message) > CONDENSED for i in digest.attention[:shown]
        ):
            blocks.append(_context("Full messages: `/flux get KIND NAME`"))

    if digest.suspended:
        lines = [_suspended_line(s) for s in digest.suspended[:MAX_LINES]]
        more = ""
        if len(digest.suspended) > MAX_LINES:
            more = _more(
                len(digest.suspended) - MAX_LINES, "suspended", "`/flux status` lists them"
            )
        blocks += [DividerBlock(), _section(f"*Suspended* ({len(digest.suspended)})")]
        blocks += _packed([*lines, *([more] if more else [])], 2, "suspended", "`/flux status`")

    if digest.drifted:
        # Ready, but helm-controller found the cluster drifted from the release (warn mode).
        lines = [f"*Drifted from their Helm release* ({len(digest.drifted)})"]
        lines += [
            f":warning: {object_title(d.obj)} on {escape(d.cluster)}"
            for d in digest.drifted[:MAX_LINES]
        ]
        blocks += [DividerBlock(), _section("\n".join(lines))]

    changes = digest.changes
    if not changes.empty:
        lines = _change_lines(digest)
        blocks += [DividerBlock(), _section(f"*Changes since {slack_date(digest.since)}*")]
        room = max(1, budget - len(blocks) - (1 if digest.snoozed else 0))
        blocks += _packed(lines, room, "change(s)", _print_all(env))

    if digest.posture:
        blocks += [DividerBlock(), _section(_posture_list(digest))]

    if digest.snoozed:
        blocks.append(_context(f"{digest.snoozed} snoozed object(s) not shown."))
    if len(blocks) > budget:  # cannot happen with the budgets above; never cut silently
        rest = len(blocks) - budget + 1
        blocks = [*blocks[: budget - 1], _context(_more(rest, "block(s)", _print_all(env)))]
    return SlackMessage(fallback_text(headline(digest)), [b.to_dict() for b in blocks])


def _attention_blocks(digest: Digest, item: Any, buttons: DigestButtons | None) -> list[Block]:
    root = item.root
    if item.incident:
        # The incident's message has the details and the buttons, kept current.
        link = f"<{item.incident}|open incident>"
        return [
            _section(f":rotating_light: {object_title(root)} on *{escape(item.cluster)}*: {link}")
        ]
    deps = ""
    if item.dependents:
        names = ", ".join(
            f"{d.kind} `{escape(d.name)}`" for d in item.dependents[:NAMED_DEPENDENTS]
        )
        more = (
            f" and {len(item.dependents) - NAMED_DEPENDENTS} more"
            if len(item.dependents) > NAMED_DEPENDENTS
            else ""
        )
        deps = f"\n→ {len(item.dependents)} dependent(s) failing because of it: {names}{more}"
    text = (
        f":red_circle: {object_title(root)} on *{escape(item.cluster)}*: "
        f"{escape(condense(root.message))}{deps}\n"
        f"_failing since {slack_date(item.since)}_"
    )
    out: list[Block] = [_section(text)]
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
        out.append(ActionsBlock(elements=elements, block_id=f"digest:{anchor}"))
    return out


def _suspended_line(s: Any) -> str:
    record = s.obj.suspension
    line = f":double_vertical_bar: {object_title(s.obj)} on {escape(s.cluster)}"
    if record is not None:
        line += f" by {escape(record.by)} since {slack_date(record.at)}: _{escape(record.reason)}_"
        if record.until:
            line += f" (until {slack_date(record.until)})"
    if s.overdue:
        line += "\n      :alarm_clock: *its suspension has ended: resume it or extend it*"
    return line


def _change_lines(digest: Digest) -> list[str]:
    """Each kind of change, at most MAX_CHANGES lines, then how many more and where."""
    changes = digest.changes
    everything = _print_all(digest.environment)
    lines: list[str] = []

    def listed(items: Sequence[Any], render: Any, what: str, where: str = everything) -> None:
        lines.extend(render(i) for i in items[:MAX_CHANGES])
        if len(items) > MAX_CHANGES:
            lines.append(_more(len(items) - MAX_CHANGES, what, where))

    listed(changes.revisions, lambda g: f"• :arrow_up: {_revision_text(g)}", "revision(s)")
    listed(
        changes.chart_upgrades,
        lambda u: (
            f"• :arrow_up: upgraded HelmRelease `{escape(u.namespace)}/{escape(u.name)}` on "
            f"{escape(u.cluster)}: chart {escape(u.old)} → {escape(u.new)}"
            + (" _(in progress)_" if u.in_progress else "")
        ),
        "upgrade(s)",
    )
    listed(
        changes.new_failures,
        lambda i: _item_line(":red_circle: new failure", i, "failing because of it"),
        "new failure(s)",
        "`/flux status --failing` lists what still fails",
    )
    listed(
        changes.recoveries,
        lambda i: _item_line(":large_green_circle: recovered", i, "recovered with it"),
        "recoveries",
    )
    listed(
        changes.flapping,
        lambda f: (
            f"• :arrows_counterclockwise: flapping: {_ref(f[0][1], f[0][2], f[0][3], f[0][0])} "
            f"failed {f[1]} times"
        ),
        "flapping object(s)",
    )
    listed(
        changes.actions,
        lambda a: (
            f"• :hammer_and_wrench: {escape(a.user)} ran *{escape(a.action)}* on {a.kind} "
            f"`{escape(a.namespace)}/{escape(a.name)}` ({escape(a.cluster)})"
            + ("" if a.ok else " (failed)")
        ),
        "action(s)",
    )
    return lines


def _item_line(label: str, item: ChangeItem, followers: str) -> str:
    t: Transition = item.root
    line = f"• {label}: {_ref(t.kind, t.namespace, t.name, item.cluster)}"
    if item.failed_upgrade:
        line += f": *{escape(item.failed_upgrade)}*"
    elif label.endswith("new failure") and t.message:
        line += f": {escape(condense(t.message, 200))}"
    line += escape(while_down(t))
    if item.dependents:
        names = ", ".join(
            f"{d.kind} `{escape(d.name)}`" for d in item.dependents[:NAMED_DEPENDENTS]
        )
        more = len(item.dependents) - NAMED_DEPENDENTS
        line += f"\n      → {len(item.dependents)} {followers}: {names}"
        line += f" and {more} more" if more > 0 else ""
    return line


def _packed(lines: Sequence[str], room: int, what: str, where: str) -> list[Block]:
    """`lines` in as few sections as fit (3,000 characters each), at most `room` blocks.

    Lines that do not fit are counted in a last line: "… and N more `what`; `where`".
    """
    blocks: list[Block] = []
    chunk: list[str] = []
    size = 0
    for index, raw in enumerate(lines):
        line = clip(raw, SECTION_LIMIT)
        if chunk and size + len(line) + 1 > SECTION_LIMIT:
            if len(blocks) + 1 >= room:
                left = [*chunk, *lines[index:]]
                # The note needs room: give up lines of the chunk until it fits.
                while True:
                    rest = sum(1 for x in left[len(chunk) :] if not x.startswith("_…"))
                    note = _more(rest, what, where)
                    if not chunk or size + len(note) + 1 <= SECTION_LIMIT:
                        break
                    size -= len(chunk.pop()) + 1
                blocks.append(_section("\n".join([*chunk, note])))
                return blocks
            blocks.append(_section("\n".join(chunk)))
            chunk, size = [], 0
        chunk.append(line)
        size += len(line) + 1
    if chunk:
        blocks.append(_section("\n".join(chunk)))
    return blocks


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
