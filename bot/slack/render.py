"""Answers as Slack messages: Block Kit built with slack_sdk's models, within Slack's limits.

Every block is built as a `slack_sdk.models.blocks` object, so `to_dict()` validates the
per-element limits (section text 3000, header 150, button text 75, ...). What slack_sdk does
not check is enforced here: at most 50 blocks, escaped `&`, `<`, `>` in anything that came from
a cluster, a fallback `text` for notifications, and condensing large answers rather than
letting Slack reject them.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections import Counter
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
    AuditAnswer,
    ClusterReport,
    DigestAnswer,
    EnvironmentReport,
    EnvsAnswer,
    ErrorAnswer,
    HelpAnswer,
    IncidentsAnswer,
    ObjectAnswer,
    ObjectMatch,
    ReportAnswer,
    RolloutAnswer,
    StatusAnswer,
    TreeAnswer,
    TreeMatch,
)
from bot.commands.headline import environment_headline, trouble_summary
from bot.domain.condense import condense
from bot.domain.events import event_object
from bot.domain.fleet import (
    CacheState,
    ClusterTarget,
    ClusterTrouble,
    Freshness,
    HealthCounts,
    TroubleState,
    cluster_trouble,
)
from bot.domain.readout import age, duration_words, is_stuck, release_versions, state_since
from bot.domain.status import FluxObject, Health
from bot.domain.tree import TreeNode
from bot.incidents.planner import title as incident_title

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
    *,
    shared: bool = False,
) -> SlackMessage:
    """Any answer as a Slack message; `share_value` adds a "Post to channel" button,
    `buttons` the remediation buttons of failing and suspended objects, and `shared` says the
    message is for the whole channel (not "only for you")."""
    match answer:
        case StatusAnswer():
            message = _status(answer, buttons, command)
        case ObjectAnswer():
            message = _object(answer, buttons)
        case TreeAnswer():
            message = _tree(answer)
        case DigestAnswer():
            message = _digest_preview(answer, shared)
        case IncidentsAnswer():
            message = _incidents(answer)
        case EnvsAnswer():
            message = _envs(answer)
        case HelpAnswer():
            message = _help(answer, command)
        case ErrorAnswer():
            message = _error(answer)
        case RolloutAnswer():
            # Imported here: the rollout renderer builds on this module's helpers.
            from bot.slack.rollout_render import rollout_message  # noqa: PLC0415

            message = rollout_message(answer)
        case AuditAnswer():
            from bot.slack.audit_render import audit_message  # noqa: PLC0415

            message = audit_message(answer, command)
        case ReportAnswer():
            from bot.slack.report_post import report_message  # noqa: PLC0415

            message = report_message(answer.report, scheduled=False)
    if share_value is not None:
        message = _with_share_button(message, share_value)
    return message


class Blocks:
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


def context_block(text: str) -> ContextBlock:
    """A context block of mrkdwn, clipped to a section's limit."""
    return ContextBlock(elements=[MarkdownTextObject(text=clip(text, SECTION_LIMIT))])


def header_block(text: str) -> HeaderBlock:
    """A header of plain text, clipped to Slack's 150 characters."""
    return HeaderBlock(text=PlainTextObject(text=clip(text, 150), emoji=True))


def section_blocks(lines: Sequence[str]) -> list[SectionBlock]:
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


def slack_date(value: dt.datetime | None) -> str:
    """A moment as Slack's date token: each reader sees it in their own time zone."""
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
    since = f" since {slack_date(fresh.since)}" if fresh.since else ""
    return f" :warning: *stale{since}*: {escape(fresh.error)} (last known state shown)"


def _trouble_text(trouble: ClusterTrouble, now: dt.datetime) -> str:
    """`*unreadable*: 401 for 7 h (since <date>): the message`."""
    since = f" (since {slack_date(trouble.since)})" if trouble.since else ""
    message = f": {escape(condense(trouble.message, 200))}" if trouble.message else ""
    return f"*{trouble.state}*: {escape(trouble.describe(now))}{since}{message}"


def _cluster_line(report: ClusterReport, now: dt.datetime) -> str:
    status = report.status
    trouble = report.trouble
    name = f"*{escape(status.cluster)}*"
    if trouble is not None and trouble.state is TroubleState.UNREADABLE:
        return f":no_entry: {name} {_trouble_text(trouble, now)}"
    if trouble is not None and trouble.state is TroubleState.STALE:
        line = f":warning: {name}  {counts_text(report.counts)} · {_trouble_text(trouble, now)}"
        line += " _(last known state shown)_"
    elif trouble is not None:
        line = f":hourglass_flowing_sand: {name}  {counts_text(report.counts)} · _still syncing_"
    else:
        stuck = report.stuck_count(now)
        icon = (
            ":red_circle:"
            if report.counts.failing
            else ":large_orange_circle:"
            if stuck
            else ":large_green_circle:"
        )
        line = f"{icon} {name}  {counts_text(report.counts)}"
        if stuck:
            line += f" · *{stuck} stuck*"
    for partial in (p for p in status.problems if not p.whole_cluster):
        line += f"\n      :warning: {', '.join(partial.kinds)}: {escape(partial.message)}"
    if report.deployed is not None:
        # Imported here: the rollout renderer builds on this module's helpers.
        from bot.commands.rollout_words import deployed_line  # noqa: PLC0415
        from bot.slack.rollout_render import SLACK  # noqa: PLC0415

        line += f"\n      :package: {deployed_line(report.deployed, now, SLACK)}"
    return line


def object_title(obj: FluxObject) -> str:
    """`*HelmRelease* `flux-apps/podinfo``."""
    return f"*{obj.kind}* `{escape(obj.namespace)}/{escape(obj.name)}`"


def _age_words(obj: FluxObject, now: dt.datetime) -> str:
    """`failing for 4 d`, `progressing for 12 min`; empty when since when is unknown."""
    elapsed = age(obj, now)
    return f"{obj.health} for {duration_words(elapsed)}" if elapsed is not None else ""


def _stuck_words(obj: FluxObject, now: dt.datetime) -> str:
    if not is_stuck(obj, now) or obj.timeout is None:
        return ""
    return f"stuck: past its {duration_words(obj.timeout)} timeout"


def _names(objects: Sequence[FluxObject], limit: int = 4) -> str:
    names = [f"`{escape(o.name)}`" for o in objects[:limit]]
    return ", ".join(names) + (", …" if len(objects) > limit else "")


def _failure_text(
    cluster: str, obj: FluxObject, now: dt.datetime, blocked: Sequence[FluxObject] = ()
) -> str:
    reason = f"*{escape(obj.reason)}*" if obj.reason else "failing"
    message = escape(condense(obj.message, MESSAGE_PREVIEW))
    aged = _age_words(obj, now)
    facts = [f"{reason} since {slack_date(state_since(obj))}"]
    if (versions := release_versions(obj)) is not None:
        facts.append(escape(str(versions)))
    text = (
        f"{ICONS[Health.FAILING]} {object_title(obj)} on *{escape(cluster)}*"
        + (f" · *{aged}*" if aged else "")
        + f"\n{' · '.join(facts)}\n> {message or '(no message)'}"
    )
    if blocked:
        text += f"\n↳ blocks {len(blocked)}: {_names(blocked)}"
    return text


def _status(answer: StatusAnswer, buttons: ButtonSource | None, command: str) -> SlackMessage:
    blocks = Blocks(reserve=3)
    fallback: list[str] = []
    for env in answer.environments:
        _environment_blocks(env, answer, blocks, buttons, command)
        fallback.append(_status_fallback(env, answer))
    if not answer.environments:
        blocks.add(_section("No environments are configured."))
    return SlackMessage(fallback_text(" ".join(fallback) or "No environments."), blocks.dicts())


def _failure_items(env: EnvironmentReport) -> list[tuple[str, FluxObject, tuple[FluxObject, ...]]]:
    """Each root cause once (cluster, root, what it blocks), then any failing object left."""
    items = []
    for report in env.clusters:
        items += report.derived("slack-failures", functools.partial(_cluster_failures, report))
    return items


def _cluster_failures(
    report: ClusterReport,
) -> list[tuple[str, FluxObject, tuple[FluxObject, ...]]]:
    # Keys, not refs: plain tuples hash much faster, and this runs over every failure.
    failing = report.shown_in(Health.FAILING)
    shown = {o.key for o in failing}
    covered: set[tuple[str, str, str]] = set()
    items: list[tuple[str, FluxObject, tuple[FluxObject, ...]]] = []
    for group in report.causes:
        members = [group.root, *group.dependents]
        if not any(m.key in shown for m in members):
            continue
        blocked = tuple(d for d in group.dependents if d.key in shown)
        items.append((report.cluster, group.root, blocked))
        covered.update(m.key for m in members)
    items += [(report.cluster, o, ()) for o in failing if o.key not in covered]
    return items


def _environment_blocks(
    env: EnvironmentReport,
    answer: StatusAnswer,
    blocks: Blocks,
    buttons: ButtonSource | None,
    command: str,
) -> None:
    counts = env.counts
    clusters = len(env.clusters)
    now = answer.now
    blocks.add(header_block(environment_headline(env, answer.scope, now)))
    for section in section_blocks([_cluster_line(c, now) for c in env.clusters]):
        blocks.add(section)
    failing = _failure_items(env)
    if failing:
        blocks.add(DividerBlock())
    listed = 0
    for cluster, obj, blocked in failing:
        if listed >= MAX_FAILING_ITEMS or blocks.room <= 3:
            break
        section = _section(_failure_text(cluster, obj, now, blocked))
        if buttons is not None:
            # Actions on the root only: fixing it is what unblocks the rest.
            section.accessory = buttons.menu(env.name, cluster, obj)
        blocks.add(section)
        listed += 1
    if listed < len(failing):
        blocks.add(
            context_block(
                f"… and {len(failing) - listed} more failing; narrow with `--kind` or `--cluster`"
            )
        )
    example = next(((c, o) for c, o, b in failing[:listed] if b), None)
    if example is not None:
        cluster, root = example
        blocks.add(
            context_block(
                "Actions are on root causes: fix one and what it blocks follows. "
                f"`{escape(command)} get {root.kind.lower()} {escape(root.name)} "
                f"-n {escape(root.namespace)} --cluster {escape(cluster)}` lists what it blocks."
            )
        )
    for health, title in ((Health.PROGRESSING, "Progressing"), (Health.SUSPENDED, "Suspended")):
        shown = [(c, o) for c in env.clusters for o in c.shown_in(health)]
        if health is Health.PROGRESSING:
            # Stuck ones first: they are the ones that will not finish on their own.
            shown.sort(key=lambda item: not item[0].is_stuck(item[1], now))
        others = [(c.cluster, o) for c, o in shown]
        if health is Health.SUSPENDED and buttons is not None:
            # Suspended objects get their own line and button while there is room.
            while others and blocks.room > 3 and listed < MAX_FAILING_ITEMS:
                cluster, obj = others.pop(0)
                section = _section(_suspended_text(cluster, obj, now))
                section.accessory = buttons.menu(env.name, cluster, obj)
                blocks.add(section)
                listed += 1
        if others:
            blocks.add(_section(_listing(title, health, others, now)))
    if (
        not answer.failing_only
        and counts.total
        and counts.ready == counts.total
        and not env.troubles
    ):
        blocks.add(
            context_block(f"{clusters} cluster{'s' if clusters != 1 else ''}, every object Ready.")
        )


def _suspended_text(cluster: str, obj: FluxObject, now: dt.datetime) -> str:
    text = f"{ICONS[Health.SUSPENDED]} {object_title(obj)} on *{escape(cluster)}* is suspended"
    record = obj.suspension
    if record is not None:
        text += f" by {escape(record.by)} since {slack_date(record.at)}"
        if (aged := _age_words(obj, now)) and record.at:
            text += f" ({aged.removeprefix('suspended ')})"
        if record.until:
            text += f" until {slack_date(record.until)}"
        if record.reason:
            text += f"\n> {escape(clip(record.reason, MESSAGE_PREVIEW))}"
    return text


def _listing(
    title: str, health: Health, objects: Sequence[tuple[str, FluxObject]], now: dt.datetime
) -> str:
    lines = [f"*{title}* ({len(objects)})"]
    for cluster, obj in objects[:MAX_LISTED]:
        detail = escape(condense(obj.message, 120)) if obj.message else ""
        aged = _age_words(obj, now)
        stuck = _stuck_words(obj, now)
        line = f"{ICONS[health]} {object_title(obj)} on {escape(cluster)}"
        if stuck:
            line = f":warning: {object_title(obj)} on {escape(cluster)} · *{aged}, {stuck}*"
        elif aged:
            line += f" · {aged}"
        lines.append(line + (f": _{detail}_" if detail else ""))
    if len(objects) > MAX_LISTED:
        lines.append(f"… and {len(objects) - MAX_LISTED} more")
    return "\n".join(lines)


def _status_fallback(env: EnvironmentReport, answer: StatusAnswer) -> str:
    """The notification: the headline first, then the first root cause in words."""
    text = environment_headline(env, answer.scope, answer.now) + "."
    failing = _failure_items(env)
    if failing:
        cluster, obj, blocked = failing[0]
        aged = _age_words(obj, answer.now)
        text += f" First: {obj.kind} {obj.namespace}/{obj.name} on {cluster}"
        text += f" ({aged})" if aged else ""
        text += f": {condense(obj.message, 300)}"
        if blocked:
            text += f" (blocks {len(blocked)})"
        text += "."
    else:
        stuck = [
            (c.cluster, o)
            for c in env.clusters
            # Only what progresses can be stuck.
            for o in c.shown_in(Health.PROGRESSING)
            if c.is_stuck(o, answer.now)
        ]
        if stuck:
            cluster, obj = stuck[0]
            text += f" Stuck: {obj.kind} {obj.namespace}/{obj.name} on {cluster}"
            text += f" ({_age_words(obj, answer.now)}): {condense(obj.message, 200)}."
    return escape(text)


def _object(answer: ObjectAnswer, buttons: ButtonSource | None) -> SlackMessage:
    blocks = Blocks(reserve=2)
    now = answer.now
    troubles = [t for t in answer.troubles if t.state is not TroubleState.SYNCING]
    summary = trouble_summary(troubles, now)
    if not answer.matches:
        where = f" in namespace `{escape(answer.namespace)}`" if answer.namespace else ""
        searched = " in the clusters that could be read" if answer.unreadable else ""
        text = f"No {answer.kind} named `{escape(answer.name)}`{where} was found{searched}."
        if answer.suggestions:
            text += (
                " Did you mean " + " or ".join(f"`{escape(s)}`" for s in answer.suggestions) + "?"
            )
        blocks.add(_section(f":mag: {text}"))
    several = len(answer.matches) > 1
    for index, match in enumerate(answer.matches):
        if blocks.room < 4:
            blocks.add(context_block(f"… and {len(answer.matches) - index} more matches"))
            break
        if several and match.object.health is Health.READY:
            blocks.add(_section(_ready_line(match, now)))
            continue
        if index:
            blocks.add(DividerBlock())
        for block in _match_blocks(match, buttons, now):
            blocks.add(block)
    for cluster in answer.unreadable:
        trouble = cluster_trouble(cluster)
        assert trouble is not None
        blocks.add(
            context_block(
                f":no_entry: {escape(cluster.cluster)} not searched: {_trouble_text(trouble, now)}"
            )
        )
    fallback = _object_fallback(answer, summary)
    return SlackMessage(fallback_text(fallback), blocks.dicts())


def _object_fallback(answer: ObjectAnswer, summary: list[str]) -> str:
    """About the worst match, then how the others are; what could not be read first."""
    lead = " · ".join(summary) + ". " if summary else ""
    if not answer.matches:
        hint = f" Did you mean {' or '.join(answer.suggestions)}?" if answer.suggestions else ""
        return f"{lead}No {answer.kind} named {answer.name} was found.{hint}"
    worst = answer.matches[0]
    obj = worst.object
    aged = _age_words(obj, answer.now)
    text = (
        f"{lead}{obj.kind} {obj.namespace}/{obj.name} on {worst.cluster}: {obj.health}"
        f"{' for ' + aged.split(' for ', 1)[1] if aged else ''}"
        f"{' (' + obj.reason + ')' if obj.reason else ''}: {condense(obj.message, 200)}"
    )
    others = [f"{m.object.health} on {m.cluster}" for m in answer.matches[1:6]]
    if others:
        text += ". Also " + ", ".join(others) + "."
    return text


def _ready_line(match: ObjectMatch, now: dt.datetime) -> str:
    obj = match.object
    revision = f" at `{escape(obj.revision)}`" if obj.revision else ""
    elapsed = age(obj, now)
    return (
        f"{ICONS[obj.health]} {object_title(obj)} on *{escape(match.cluster)}* "
        f"({escape(match.environment)}): ready{revision}"
        + (f" for {duration_words(elapsed)}" if elapsed is not None else "")
        + freshness_text(match.freshness)
    )


def _match_blocks(
    match: ObjectMatch, buttons: ButtonSource | None, now: dt.datetime | None = None
) -> list[Block]:
    obj = match.object
    now = now or dt.datetime.now(dt.UTC)
    aged = _age_words(obj, now)
    stuck = _stuck_words(obj, now)
    state = f"*{aged or obj.health}*" + (f" :warning: *{stuck}*" if stuck else "")
    head = (
        f"{ICONS[obj.health]} {object_title(obj)} on *{escape(match.cluster)}* "
        f"({escape(match.environment)}): {state}{freshness_text(match.freshness)}"
    )
    facts = [
        f"*Ready* {obj.ready}"
        + (f" ({escape(obj.reason)})" if obj.reason else "")
        + (" :warning: *drift detected* (`Drifted=True`)" if obj.drifted else ""),
        f"*Revision* `{escape(obj.full_revision)}`" if obj.full_revision else "*Revision* –",
        f"*Suspended* {obj.suspended}",
    ]
    if (versions := release_versions(obj)) is not None:
        facts.insert(1, f"*Chart* {escape(str(versions))}")
    if obj.timeout is not None and obj.health is Health.PROGRESSING:
        facts.append(f"*Timeout* {duration_words(obj.timeout)}")
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
        until = f" until {slack_date(record.until)}" if record.until else ""
        facts.append(
            f"*Suspended by* {escape(record.by)} since {slack_date(record.at)}{until}: "
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
        # The full text, once: lists condense it, `get` is where it is read whole.
        blocks.append(_section(f"> {escape(clip(' '.join(obj.message.split()), 2800))}"))
    if match.blocked:
        lines = [f"*Blocks {len(match.blocked)}* (failing because of it)"]
        lines += [
            f"{ICONS[Health.FAILING]} {object_title(d)}"
            + (f" *{escape(d.reason)}*" if d.reason else "")
            + f": _{escape(condense(d.message, 160))}_"
            for d in match.blocked[:MAX_LISTED]
        ]
        if len(match.blocked) > MAX_LISTED:
            lines.append(f"… and {len(match.blocked) - MAX_LISTED} more")
        blocks += section_blocks(lines)
    details: list[str] = []
    if obj.conditions:
        details.append("*Conditions*")
        details += [
            f"• `{escape(c.type)}` {c.status}"
            + (f" *{escape(c.reason)}*" if c.reason else "")
            + f" since {slack_date(c.last_transition_time)}"
            for c in obj.conditions
        ]
    if obj.helm is not None and obj.helm.history:
        details.append(
            f"*Helm release* `{escape(obj.helm.release_namespace)}/{escape(obj.helm.release_name)}`"
            f" (storage namespace `{escape(obj.helm.storage_namespace or '-')}`)"
        )
        details += [
            f"• v{s.version} `{escape(s.chart_name)}@{escape(s.chart_version)}` "
            f"app {escape(s.app_version or '-')} *{escape(s.status)}* {slack_date(s.last_deployed)}"
            for s in obj.helm.history[:10]
        ]
    blocks += section_blocks(details)
    if match.events:
        shown = " ".join(obj.message.split())
        lines = ["*Recent events*"]
        for e in match.events:
            said = " ".join(e.message.split())
            # The controller's event usually repeats the Ready message: say so, not it again.
            text = "_the message above_" if said == shown else escape(condense(said, 200))
            # As `flux events --for`: which object (the object's sources too) and revision.
            about = (
                f" `{escape(event_object(e, obj))}`" if e.involved not in (None, obj.ref) else ""
            )
            revision = f" `{escape(e.revision)}`" if e.revision else ""
            icon = ":warning:" if e.is_warning else ":information_source:"
            lines.append(
                f"{icon} {slack_date(e.last_seen)} "
                f"*{escape(e.reason)}*{f' ×{e.count}' if e.count > 1 else ''}{about}{revision}: "
                f"{text}"
            )
        blocks += section_blocks(lines)
    if match.events_note:
        blocks.append(context_block(escape(match.events_note)))
    return blocks


# Above this many lines, a tree lists only what needs attention.
MAX_TREE_LINES: Final = 40


def _tree(answer: TreeAnswer) -> SlackMessage:
    blocks = Blocks(reserve=2)
    if not answer.matches:
        where = f" in namespace `{escape(answer.namespace)}`" if answer.namespace else ""
        text = f"No {answer.kind} named `{escape(answer.name)}`{where} was found."
        blocks.add(_section(f":mag: {text}"))
    for index, match in enumerate(answer.matches):
        if blocks.room < 3:
            blocks.add(context_block(f"… and {len(answer.matches) - index} more matches"))
            break
        for block in _tree_blocks(match)[: blocks.room - 1]:
            blocks.add(block)
    for cluster in answer.unreadable:
        assert cluster.unreadable is not None
        problem = escape(cluster.unreadable.message)
        blocks.add(context_block(f":warning: {escape(cluster.cluster)} not searched: {problem}"))
    if answer.matches:
        root = answer.matches[0].tree
        assert root.obj is not None
        fallback = f"{root.label}: {root.obj.health}, manages {root.size} objects"
    else:
        fallback = f"No {answer.kind} named {answer.name} was found."
    return SlackMessage(clip(fallback, FALLBACK_LIMIT), blocks.dicts())


def _tree_blocks(match: TreeMatch) -> list[Block]:
    """The Flux objects nested as they were applied, each with its health; other objects
    counted by kind under whoever applied them. A large tree lists only the objects that
    need attention, with the path to them."""
    root = match.tree
    assert root.obj is not None
    counts = root.counts()
    summary = " · ".join(f"{counts[h]} {h}" for h in Health if counts[h])
    head = (
        f"{ICONS[root.obj.health]} {object_title(root.obj)} on *{escape(match.cluster)}* "
        f"({escape(match.environment)}): *{root.obj.health}*{freshness_text(match.freshness)}\n"
        f"Manages {root.size} objects" + (f"; Flux objects: {summary}" if summary else "")
    )
    if root.obj.health is not Health.READY and root.obj.message:
        head += f"\n> {escape(clip(' '.join(root.obj.message.split()), MESSAGE_PREVIEW))}"
    if root.note:
        head += f"\n_{escape(root.note)}_"
    entries = _tree_entries(root, 0)
    lines = [line for line, _ in entries]
    if len(entries) > MAX_TREE_LINES:
        # Only what needs attention, and the path to it; the count above covers the rest.
        shown = [line for line, rank in entries if rank == 2]
        lines = shown[:MAX_TREE_LINES]
        hidden = len(entries) - len(lines)
        rest = "ready or not Flux objects" if len(shown) <= MAX_TREE_LINES else "more"
        lines.append(f"_… and {hidden} more lines ({rest}); `flux tree` shows them all_")
    return [_section(head), *section_blocks(lines or ["_Manages nothing._"])]


def _tree_entries(node: TreeNode, depth: int) -> list[tuple[str, int]]:
    """(line, rank) for the Flux children of `node`, then a line counting the others; rank 2
    needs attention (or leads to something that does)."""
    out: list[tuple[str, int]] = []
    indent = "\u2003" * depth + ("└ " if depth else "")
    others: Counter[str] = Counter()
    for child in node.children:
        if child.obj is None and not child.is_flux:
            others[child.entry.kind] += 1
            continue
        below = _tree_entries(child, depth + 1)
        attention = child.obj is not None and child.obj.health is not Health.READY
        if child.obj is None:
            line = f"{indent}:grey_question: `{escape(child.label)}` _not found in the cluster_"
        else:
            line = f"{indent}{ICONS[child.obj.health]} `{escape(child.label)}`"
            if attention:
                line += f" {escape(clip(' '.join(child.obj.message.split()), 150))}"
        if child.note:
            line += f" _{escape(child.note)}_"
        rank = 2 if attention or any(r == 2 for _, r in below) else 0
        out.append((line, rank))
        out += below
    if others:
        listed = ", ".join(f"{kind} ×{n}" for kind, n in sorted(others.items()))
        out.append((f"{indent}{escape(listed)}", 0))
    return out


def _incidents(answer: IncidentsAnswer) -> SlackMessage:
    scope = ", ".join(answer.environments)
    if answer.unavailable or not answer.incidents:
        text = answer.unavailable or f"No open incidents in {scope}."
        return SlackMessage(text, [_section(escape(text)).to_dict()])
    lines = []
    for record in answer.incidents:
        what = escape(incident_title(record))
        link = f"<{record.permalink}|{what}>" if record.permalink else what
        since = f"{record.failing_since:%Y-%m-%d %H:%M} UTC"
        env = escape(record.environment)
        lines.append(f":rotating_light: {link}: failing since {since} ({env})")
    blocks = Blocks(reserve=1)
    blocks.add(header_block(f"Open incidents: {len(answer.incidents)}"))
    for section in section_blocks(lines):
        blocks.add(section)
    fallback = f"{len(answer.incidents)} open incidents in {scope}"
    return SlackMessage(clip(fallback, FALLBACK_LIMIT), blocks.dicts())


def _envs(answer: EnvsAnswer) -> SlackMessage:
    lines = []
    now = answer.now
    for env in answer.layout.environments:
        channel = f"<#{env.channel}>" if env.channel else "no channel"
        clusters = ", ".join(
            _cluster_with_freshness(
                c,
                answer.trouble(ClusterTarget(env.name, c)),
                ClusterTarget(env.name, c) in answer.freshness,
                now,
            )
            for c in env.clusters
        )
        aliases = f" (also {', '.join(escape(a) for a in env.aliases)})" if env.aliases else ""
        lines.append(f"*{escape(env.name)}*{aliases} ({env.tier}) in {channel}: {clusters}")
    troubles = trouble_summary(answer.troubles, now)
    blocks = Blocks(reserve=1)
    blocks.add(header_block("Environments" + (": " + " · ".join(troubles) if troubles else "")))
    for section in section_blocks(lines):
        blocks.add(section)
    fallback = "; ".join(f"{e.name}: {', '.join(e.clusters)}" for e in answer.layout.environments)
    lead = " · ".join(troubles) + ". " if troubles else ""
    return SlackMessage(fallback_text(f"{lead}Environments: {fallback}"), blocks.dicts())


def _cluster_with_freshness(
    cluster: str, trouble: ClusterTrouble | None, known: bool, now: dt.datetime
) -> str:
    if not known:
        return escape(cluster)
    if trouble is None:
        return f":large_green_circle: {escape(cluster)} (live)"
    if trouble.state is TroubleState.SYNCING:
        return f":hourglass_flowing_sand: {escape(cluster)} (syncing)"
    icon = ":no_entry:" if trouble.state is TroubleState.UNREADABLE else ":warning:"
    return f"{icon} {escape(cluster)} ({trouble.state}: {escape(trouble.describe(now))})"


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
    message = answer.message
    if answer.suggestions:
        # The likely fix first; the full list after it.
        text += " Did you mean " + " or ".join(f"`{escape(s)}`" for s in answer.suggestions) + "?"
        message += f" Did you mean {' or '.join(answer.suggestions)}?"
    if answer.choices:
        text += "\nValid names: " + ", ".join(f"`{escape(c)}`" for c in answer.choices)
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


def _digest_preview(answer: DigestAnswer, shared: bool) -> SlackMessage:
    # Imported here: the digest renderer builds on this module's helpers.
    from bot.slack.digest_render import single_message  # noqa: PLC0415

    # The problems first, as the posted digest has them; room for the note and a share button.
    details = single_message(answer.digest, None, reserve=1)
    if shared:
        return details
    note = ContextBlock(
        elements=[MarkdownTextObject(text="Preview of the digest, only for you.")]
    ).to_dict()
    return SlackMessage(details.text, [*details.blocks[: MAX_BLOCKS - 1], note])
