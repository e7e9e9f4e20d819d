"""The rollout answer as JSON (`fluxbot rollout --output json`)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.commands.answers import RolloutAnswer
from bot.domain.rollout import Applied, ClusterRollout, Revision


def rollout_record(answer: RolloutAnswer) -> dict[str, Any]:
    """Sources, their environments in promotion order, clusters and objects; promotion steps."""
    return {
        "revision_query": answer.revision,
        "troubles": [
            {
                "environment": t.environment,
                "cluster": t.cluster,
                "state": str(t.state),
                "cause": t.cause,
                "message": t.message,
            }
            for t in answer.troubles
        ],
        "sources": [
            {
                "kind": source.kind,
                "name": source.name,
                "environments": [
                    {
                        "environment": env.name,
                        "tier": env.tier,
                        "revision": _revision(env.revision),
                        "agree": env.agree,
                        "clusters_on_revision": len(env.on_revision),
                        "clusters": [_cluster(c, answer.revision) for c in env.clusters],
                    }
                    for env in source.environments
                ],
                "promotion": [
                    {
                        "ahead": step.ahead,
                        "behind": step.behind,
                        "ahead_revision": step.ahead_revision.raw,
                        "behind_revision": _revision(step.behind_revision),
                        "in_step": step.in_step,
                        "waiting_seconds": int(step.waiting.total_seconds())
                        if step.waiting is not None
                        else None,
                    }
                    for step in source.steps
                ],
            }
            for source in answer.sources
        ],
    }


def _cluster(cluster: ClusterRollout, query: str | None) -> dict[str, Any]:
    source = cluster.source
    return {
        "cluster": cluster.cluster,
        "unreadable": cluster.trouble.message or cluster.trouble.cause
        if cluster.trouble is not None
        else None,
        "namespace": source.namespace if source else None,
        "revision": _revision(cluster.revision),
        "origin_revision": _revision(cluster.origin),
        "commit_url": cluster.link,
        "source_ready": source.ready if source else None,
        "source_message": source.message if source else None,
        "fetched_at": _time(cluster.arrived),
        "applied": cluster.applied,
        "total": len(cluster.consumers),
        "has_revision": cluster.has(query) if query is not None else None,
        "objects": [_applied(a) for a in cluster.consumers],
    }


def _applied(applied: Applied) -> dict[str, Any]:
    obj = applied.object
    return {
        "kind": obj.kind,
        "namespace": obj.namespace,
        "name": obj.name,
        "revision": applied.revision.raw,
        "origin_revision": _revision(applied.origin),
        "current": applied.current,
        "health": obj.health.value,
        "since": _time(applied.since),
        "message": obj.message,
    }


def _revision(revision: Revision | None) -> str | None:
    return revision.raw if revision is not None else None


def _time(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
