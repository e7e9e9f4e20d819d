"""The first line of an answer, in words: what cannot be read comes before what is healthy.

A status headed "nothing failing" while a cluster answers 401 misleads; so every headline (the
Slack header, the notification text, the terminal's first line) leads with the clusters that
could not be read or are stale, then says what the others report, naming them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

from bot.commands.answers import EnvironmentReport
from bot.domain.fleet import ClusterTrouble, TroubleState

_WORDS = {
    TroubleState.UNREADABLE: "unreadable",
    TroubleState.STALE: "stale",
    TroubleState.SYNCING: "still syncing",
}


def plural(count: int, word: str) -> str:
    """`1 cluster`, `2 clusters`."""
    return f"{count} {word}{'' if count == 1 else 's'}"


def trouble_summary(troubles: Sequence[ClusterTrouble], now: dt.datetime) -> list[str]:
    """`1 cluster unreadable (401 for 7 h)`, `1 cluster stale (timed out for 12 min)`, ..."""
    parts = []
    for state in TroubleState:
        of_state = [t for t in troubles if t.state is state]
        if not of_state:
            continue
        text = f"{plural(len(of_state), 'cluster')} {_WORDS[state]}"
        if state is not TroubleState.SYNCING:
            text += f" ({', '.join(t.describe(now) for t in of_state)})"
        parts.append(text)
    return parts


def environment_headline(env: EnvironmentReport, scope: str, now: dt.datetime) -> str:
    """`staging: 1 cluster unreadable (401 for 7 h) · nothing failing in staging-eu-1`."""
    troubles = env.troubles
    counts = env.counts
    parts = trouble_summary(troubles, now)
    with_data = [c.cluster for c in env.clusters if c.status.unreadable is None]
    if not troubles:
        if counts.failing:
            parts.append(f"{counts.failing} failing of {counts.total} {scope}")
        elif counts.total == counts.ready:
            parts.append(f"all {counts.total} {scope} healthy")
        else:
            parts.append(f"nothing failing ({counts.total} {scope})")
    elif with_data:
        where = (
            f" in {' and '.join(with_data)}"
            if len(with_data) <= 2
            else f" in {plural(len(with_data), 'cluster')}"
        )
        if counts.failing:
            parts.append(f"{counts.failing} failing of {counts.total} {scope}{where}")
        else:
            parts.append(f"nothing failing{where}")
    stuck = stuck_count(env, now)
    if stuck:
        # Stuck reconciles will not finish on their own: they come before "nothing failing".
        parts.insert(len(trouble_summary(troubles, now)), f"{stuck} stuck")
    return f"{env.name}: {' · '.join(parts)}"


def stuck_count(env: EnvironmentReport, now: dt.datetime) -> int:
    """Progressing objects past their controller's timeout, across the environment."""
    return sum(c.stuck_count(now) for c in env.clusters)
