"""`audit`: read the clusters and check each object against its environment's posture policy."""

from __future__ import annotations

import datetime as dt

from bot.commands.answers import AuditAnswer, AuditedEnvironment
from bot.domain.fleet import FleetLayout, FleetReader, cluster_trouble
from bot.domain.posture import audit, default_policy
from bot.domain.rollout import promotion_order


def answer_audit(
    environment: str | None, layout: FleetLayout, reader: FleetReader, now: dt.datetime
) -> AuditAnswer:
    """Findings per environment (promotion order), each against its own policy."""
    envs = [e for e in promotion_order(layout) if environment is None or e.name == environment]
    policies = {e.name: e.posture or default_policy(e.tier) for e in envs}
    statuses = reader.read([t for e in envs for t in layout.targets(e.name)])
    findings = audit(statuses, policies, now)
    return AuditAnswer(
        tuple(
            AuditedEnvironment(
                e.name,
                e.tier,
                policies[e.name],
                tuple(f for f in findings if f.environment == e.name),
            )
            for e in envs
        ),
        tuple(t for s in statuses if (t := cluster_trouble(s)) is not None),
        now,
    )
