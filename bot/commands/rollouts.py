"""`rollout`: read every cluster once and answer where a source's revisions are deployed."""

from __future__ import annotations

import datetime as dt

from bot.commands.answers import ErrorAnswer, RolloutAnswer
from bot.commands.grammar import RolloutCommand
from bot.domain.fleet import FleetLayout, FleetReader, cluster_trouble
from bot.domain.rollout import revision_query_problem, rollouts, source_names
from bot.domain.suggest import closest


def answer_rollout(
    command: RolloutCommand, layout: FleetLayout, reader: FleetReader, now: dt.datetime
) -> RolloutAnswer | ErrorAnswer:
    """Each matching source across the fleet, environments in promotion order."""
    if command.revision is not None and (problem := revision_query_problem(command.revision)):
        return ErrorAnswer(problem)
    statuses = reader.read(layout.targets())
    names = source_names(statuses)
    if command.source is not None:
        chosen = [k for k in names if k[1] == command.source]
        if not chosen:
            known = sorted({n for _, n in names})
            return ErrorAnswer(
                f"No GitRepository or OCIRepository named {command.source!r} was found.",
                tuple(known),
                closest(command.source, known),
            )
        names = chosen
    found = rollouts(layout, statuses, names, now)
    if command.revision is not None:
        wanted = command.revision
        holding = [
            s for s in found if any(c.has(wanted) for e in s.environments for c in e.clusters)
        ]
        if not holding:
            where = f" of {command.source}" if command.source else ""
            return ErrorAnswer(
                f"No cluster has revision {wanted!r}{where}; the revisions deployed now:",
                tuple(
                    f"{s.name} in {e.name}: {e.revision.short}"
                    for s in found
                    for e in s.environments
                    if e.revision is not None
                )[:12],
            )
        found = holding
    troubles = tuple(t for s in statuses if (t := cluster_trouble(s)) is not None)
    return RolloutAnswer(tuple(found), command.revision, command.source is not None, troubles, now)
