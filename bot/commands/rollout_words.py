"""Rollout answers in words, for every renderer: one line per environment when its clusters
agree, details where they do not. Each renderer quotes and links in its own `Style`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

from bot.commands.answers import RolloutAnswer
from bot.commands.headline import trouble_summary
from bot.domain.condense import condense
from bot.domain.fleet import TroubleState
from bot.domain.readout import duration_words
from bot.domain.rollout import (
    Applied,
    ClusterRollout,
    Deployed,
    EnvironmentRollout,
    PromotionStep,
    Revision,
    SourceRollout,
    matches_revision,
)
from bot.domain.status import Health

# Room for a controller's message in a rollout line.
MESSAGE_ROOM = 120


@dataclass(frozen=True, slots=True)
class Style:
    """How a renderer quotes revisions, escapes cluster text and shows links."""

    code: Callable[[str], str]
    escape: Callable[[str], str]
    link: Callable[[str, str], str]
    # Whether commit URLs get a line of their own (a terminal cannot hide them behind text).
    url_lines: bool = False


PLAIN = Style(code=lambda s: s, escape=lambda s: s, link=lambda text, _url: text, url_lines=True)


def ago(now: dt.datetime, since: dt.datetime | None) -> str:
    """`12 min`, or empty when unknown."""
    return duration_words(max(now - since, dt.timedelta(0))) if since is not None else ""


def revision_words(revision: Revision, style: Style, link: str | None = None) -> str:
    """The short revision, quoted, linked to its commit when known."""
    text = style.code(style.escape(revision.short))
    return style.link(text, link) if link else text


def environment_line(
    env: EnvironmentRollout, now: dt.datetime, style: Style, query: str | None = None
) -> str:
    """`staging 2/2 on main@cb83a77d · 12 min`, or where and why clusters differ."""
    name = style.escape(env.name)
    total = len(env.clusters)
    if query is not None:
        having = [c for c in env.clusters if c.has(query)]
        line = f"{name} {len(having)}/{total} have {style.code(style.escape(query))}"
        missing = [
            _cluster_words(c, now, style, c.revision if _fetched(c, query) else None)
            for c in env.clusters
            if c not in having
        ]
        return line + (": " + "; ".join(missing) if missing else "")
    revision = env.revision
    if revision is None:
        return f"{name}: " + "; ".join(_cluster_words(c, now, style) for c in env.clusters)
    lead = next(c for c in env.present if c.revision is not None and c.revision.same(revision))
    on = f"on {revision_words(revision, style, lead.link)}"
    if lead.origin is not None:
        on += f" (built from {style.code(style.escape(lead.origin.short))})"
    if env.agree:
        when = ago(now, env.since)
        return f"{name} {total}/{total} {on}" + (f" · {when}" if when else "")
    settled = len(env.on_revision)
    others = [
        _cluster_words(c, now, style, revision) for c in env.clusters if c not in env.on_revision
    ]
    return f"{name} {settled}/{total} {on}: " + "; ".join(others)


def _fetched(cluster: ClusterRollout, query: str) -> bool:
    """The source holds the revision asked about, though not everything applied it yet."""
    return cluster.revision is not None and matches_revision(
        query, cluster.revision, cluster.origin
    )


def _cluster_words(
    cluster: ClusterRollout, now: dt.datetime, style: Style, expected: Revision | None = None
) -> str:
    name = style.escape(cluster.cluster)
    trouble = cluster.trouble
    if trouble is not None and trouble.state is TroubleState.UNREADABLE:
        return f"{name} unreadable ({style.escape(trouble.describe(now))})"
    stale = (
        f" (stale: {style.escape(trouble.describe(now))})"
        if trouble is not None and trouble.state is TroubleState.STALE
        else ""
    )
    if cluster.source is None or cluster.revision is None:
        return f"{name} does not have it{stale}"
    parts = []
    if expected is None or not cluster.revision.same(expected):
        parts.append(f"still on {revision_words(cluster.revision, style, cluster.link)}")
    if cluster.source_failing:
        message = condense(cluster.source.message, MESSAGE_ROOM)
        parts.append(f"source failing: {style.escape(message)}")
    elif cluster.source.suspended:
        parts.append("source suspended")
    behind = cluster.behind
    if behind:
        parts.append(_behind_words(behind, style))
    unready = [a for a in cluster.consumers if a.current and a.object.health is not Health.READY]
    if unready:
        parts.append(
            ", ".join(f"{style.escape(a.object.name)} {a.object.health}" for a in unready[:3])
        )
    if not parts:
        parts.append("settling")
    return f"{name} " + ", ".join(parts) + stale


def _behind_words(behind: tuple[Applied, ...], style: Style) -> str:
    """`apps still on main@601572ff (failing: dependency … is not ready)`."""
    first = behind[0]
    obj = first.object
    state = "" if obj.health is Health.READY else f" ({obj.health}"
    if obj.health is Health.SUSPENDED:
        state += ")"
    elif state:
        message = condense(obj.message, MESSAGE_ROOM)
        state += f": {style.escape(message)})" if message else ")"
    on = revision_words(first.revision, style) if first.revision.raw else "nothing yet"
    more = f" and {len(behind) - 1} more" if len(behind) > 1 else ""
    return f"{style.escape(obj.name)}{more} still on {on}{state}"


def step_line(step: PromotionStep, style: Style) -> str:
    """`production is behind staging: on X; staging has had Y for 23 min`, or in step."""
    ahead, behind = style.escape(step.ahead), style.escape(step.behind)
    if step.in_step:
        return f"{behind} is in step with {ahead} ({style.code(step.ahead_revision.short)})"
    held = (
        f"on {style.code(style.escape(step.behind_revision.short))}"
        if step.behind_revision is not None
        else "nothing yet"
    )
    waiting = f" for {duration_words(step.waiting)}" if step.waiting is not None else ""
    return (
        f"{behind} is behind {ahead}: {held}; {ahead} has had "
        f"{style.code(style.escape(step.ahead_revision.short))}{waiting}"
    )


def cluster_detail(
    cluster: ClusterRollout, now: dt.datetime, style: Style, every: bool = True
) -> list[str]:
    """A cluster's source revision and each object built from it (for `rollout SOURCE`);
    with `every` False only the objects behind or not ready (the count covers the rest)."""
    name = style.escape(cluster.cluster)
    if cluster.source is None or cluster.revision is None:
        return [_cluster_words(cluster, now, style)]
    fetched = ago(now, cluster.arrived)
    head = (
        f"{name}: {revision_words(cluster.revision, style, cluster.link)}"
        f" · {cluster.applied}/{len(cluster.consumers)} applied"
        + (f" · fetched {fetched} ago" if fetched else "")
    )
    if cluster.source_failing:
        head += f" · source failing: {style.escape(condense(cluster.source.message, MESSAGE_ROOM))}"
    lines = [head]
    if cluster.link and style.url_lines:
        lines.append(f"  commit {cluster.link}")
    for applied in cluster.consumers:
        obj = applied.object
        if not every and applied.current and obj.health is Health.READY:
            continue
        mark = "=" if applied.current else "<"
        when = ago(now, applied.since)
        state = "" if obj.health is Health.READY else f" {obj.health}"
        rev = revision_words(applied.revision, style) if applied.revision.raw else "nothing"
        lines.append(
            f"  {mark} {obj.kind} {style.escape(obj.namespace)}/{style.escape(obj.name)} {rev}"
            + (f" · {when}" if when else "")
            + state
        )
    return lines


def deployed_line(deployed: Deployed, now: dt.datetime, style: Style) -> str:
    """`deployed: flux-system main@cb83a77d · 5/5 applied · 40 min ago`."""
    when = ago(now, deployed.since)
    return (
        f"deployed: {style.escape(deployed.source.name)} "
        f"{revision_words(deployed.revision, style, deployed.link)}"
        f" · {deployed.applied}/{deployed.total} applied" + (f" · {when} ago" if when else "")
    )


def headline(answer: RolloutAnswer) -> str:
    """The answer's first line: unreadable clusters first, then what was asked."""
    troubles = trouble_summary(
        [t for t in answer.troubles if t.state is not TroubleState.SYNCING], answer.now
    )
    if answer.revision is not None:
        asked = f"Where revision {answer.revision} is"
    elif answer.detailed and answer.sources:
        asked = f"Rollout of {answer.sources[0].name}"
    else:
        asked = "Rollouts"
    return " · ".join([*troubles, asked])


def source_title(source: SourceRollout) -> str:
    """`GitRepository flux-system`, with the URL of its first copy when known."""
    for env in source.environments:
        for cluster in env.present:
            delivery = cluster.source.delivery if cluster.source is not None else None
            if delivery is not None and delivery.url:
                return f"{source.label} ({delivery.url})"
    return source.label


def rollout_text(answer: RolloutAnswer, style: Style = PLAIN) -> str:
    """The whole answer as text in `style` (the terminal's answer, Slack's notification text)."""
    lines = [headline(answer)]
    if not answer.sources:
        lines.append("No GitRepository or OCIRepository found.")
    for source in answer.sources:
        lines += ["", style.escape(source_title(source))]
        for env in source.environments:
            lines.append("  " + environment_line(env, answer.now, style, answer.revision))
            if answer.detailed:
                for cluster in env.clusters:
                    lines += [
                        "      " + line for line in cluster_detail(cluster, answer.now, style)
                    ]
        for step in source.steps:
            lines.append("  promotion: " + step_line(step, style))
    return "\n".join(lines)
