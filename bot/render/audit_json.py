"""The posture audit as JSON (`fluxbot audit --output json`)."""

from __future__ import annotations

from typing import Any

from bot.commands.answers import AuditAnswer
from bot.domain.posture import PosturePolicy


def audit_record(answer: AuditAnswer) -> dict[str, Any]:
    """Per environment: its policy and each finding with the field to set and why."""
    return {
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
        "environments": [
            {
                "environment": env.name,
                "tier": env.tier,
                "policy": _policy(env.policy),
                "findings": [
                    {
                        "cluster": f.cluster,
                        "kind": f.object.kind,
                        "namespace": f.object.namespace,
                        "name": f.object.name,
                        "rule": f.rule,
                        "field": f.field,
                        "advice": f.advice,
                    }
                    for f in env.findings
                ],
            }
            for env in answer.environments
        ],
    }


def _policy(policy: PosturePolicy) -> dict[str, Any]:
    hours = policy.max_suspended.total_seconds() / 3600 if policy.max_suspended else None
    return {
        "helm_upgrade_retries": policy.helm_upgrade_retries,
        "helm_rollback": policy.helm_rollback,
        "helm_install_remediation": policy.helm_install_remediation,
        "kustomization_health": policy.kustomization_health,
        "kustomization_timeout": policy.kustomization_timeout,
        "max_suspended_hours": hours,
    }
