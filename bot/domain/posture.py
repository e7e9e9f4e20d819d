"""The remediation posture audit: Flux objects whose failure handling falls short of a policy.

Important environments should roll back a failed upgrade on their own and should not call a
Kustomization Ready before its workloads are healthy; sandboxes need none of that. Each
finding names the Flux field to set, in Flux's own words, with Flux's defaults applied:

- helm-controller api/v2 (`UpgradeRemediation`, `InstallRemediation`): `retries` defaults to 0;
  upgrade `remediateLastFailure` defaults to false unless `retries` is greater than 0, install
  `remediateLastFailure` to false; upgrade remediation `strategy` defaults to `rollback`
  (install remediation always uninstalls); `spec.upgrade.strategy.name: RetryOnFailure` retries
  a failed upgrade without remediating it at all.
- kustomize-controller api/v1: `wait` defaults to false (then only `healthChecks` are
  assessed); without `timeout` an apply and its health checks may take `interval` minus 30 s
  (`GetTimeout`).

Pure: no I/O.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from bot.domain.fleet import ClusterStatus
from bot.domain.kinds import HELM_RELEASE, KUSTOMIZATION
from bot.domain.readout import duration_words
from bot.domain.status import FluxObject

# Kinds in a Kustomization's inventory whose health `wait`/`healthChecks` would assess.
WORKLOAD_KINDS: Final = frozenset(
    {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "HelmRelease", "Kustomization"}
)
SUSPENDABLE: Final = frozenset(
    {"GitRepository", "OCIRepository", "HelmRepository", "Bucket", "HelmChart"}
    | {KUSTOMIZATION.kind, HELM_RELEASE.kind}
)
_KUSTOMIZATION_MIN_TIMEOUT: Final = dt.timedelta(seconds=30)


@dataclass(frozen=True, slots=True)
class PosturePolicy:
    """What one environment requires of its Flux objects' failure handling."""

    helm_upgrade_retries: bool = False
    helm_rollback: bool = False
    helm_install_remediation: bool = False
    kustomization_health: bool = False
    kustomization_timeout: bool = False
    # Objects suspended longer than this are findings; None: suspensions are not checked.
    max_suspended: dt.timedelta | None = None

    @property
    def checks_anything(self) -> bool:
        """Whether the policy asks for anything at all (sandboxes: nothing)."""
        return any(
            (
                self.helm_upgrade_retries,
                self.helm_rollback,
                self.helm_install_remediation,
                self.kustomization_health,
                self.kustomization_timeout,
                self.max_suspended is not None,
            )
        )


STRICT: Final = PosturePolicy(True, True, True, True, True, dt.timedelta(days=3))
NONE: Final = PosturePolicy()


def default_policy(tier: str) -> PosturePolicy:
    """Strict for staging and production, nothing for development, sandboxes and the rest."""
    return STRICT if tier in ("staging", "production") else NONE


@dataclass(frozen=True, slots=True)
class Finding:
    """One object falling short of one rule: the field to set and why."""

    environment: str
    cluster: str
    object: FluxObject
    # The rule's name (`helm_rollback`, ...), as in the policy.
    rule: str
    # The Flux field concerned, e.g. `spec.upgrade.remediation.remediateLastFailure`.
    field: str
    # What to set and why, in Flux's field names.
    advice: str


# One line per rule for digests and headlines: "3 HelmReleases in production have no rollback
# on failure".
RULE_SUMMARY: Final = {
    "helm_upgrade_retries": "HelmRelease(s) with no upgrade retries",
    "helm_rollback": "HelmRelease(s) with no rollback on failure",
    "helm_install_remediation": "HelmRelease(s) with no install remediation",
    "kustomization_health": "Kustomization(s) applying workloads without health checks",
    "kustomization_timeout": "Kustomization(s) waiting on health without a timeout",
    "suspended": "object(s) suspended too long",
}


def audit(
    statuses: Iterable[ClusterStatus], policy_for: dict[str, PosturePolicy], now: dt.datetime
) -> list[Finding]:
    """Every finding in the clusters, each against its environment's policy."""
    out: list[Finding] = []
    for status in statuses:
        policy = policy_for.get(status.environment, NONE)
        for obj in sorted(status.objects, key=lambda o: (o.kind, o.namespace, o.name)):
            out += [
                Finding(status.environment, status.cluster, obj, rule, field, advice)
                for rule, field, advice in check(obj, policy, now)
            ]
    return out


def check(obj: FluxObject, policy: PosturePolicy, now: dt.datetime) -> list[tuple[str, str, str]]:
    """(rule, field, advice) for each rule `obj` breaks."""
    found: list[tuple[str, str, str]] = []
    guards = obj.safeguards
    if obj.kind == HELM_RELEASE.kind and guards is not None:
        retry_on_failure = guards.upgrade_strategy == "RetryOnFailure"
        if policy.helm_upgrade_retries and guards.upgrade_retries == 0 and not retry_on_failure:
            found.append(
                (
                    "helm_upgrade_retries",
                    "spec.upgrade.remediation.retries",
                    "is 0 (the default): a failed upgrade is not retried; set it, e.g. to 3, "
                    "so a transient failure is remediated and tried again",
                )
            )
        if policy.helm_rollback and (problem := _rollback_problem(obj)) is not None:
            found.append(("helm_rollback", *problem))
        if (
            policy.helm_install_remediation
            and guards.install_retries == 0
            and guards.install_strategy != "RetryOnFailure"
            and not guards.install_remediate_last_failure
        ):
            found.append(
                (
                    "helm_install_remediation",
                    "spec.install.remediation.retries",
                    "is 0 (the default) and remediateLastFailure is false: a failed install is "
                    "left in place; set retries, e.g. to 3 (each retry uninstalls first)",
                )
            )
    if obj.kind == KUSTOMIZATION.kind and guards is not None:
        checks_health = guards.wait or guards.health_checks > 0
        workloads = sorted(guards.inventory_kinds & WORKLOAD_KINDS)
        if policy.kustomization_health and workloads and not checks_health:
            found.append(
                (
                    "kustomization_health",
                    "spec.wait",
                    f"is false (the default) and there are no spec.healthChecks, though it "
                    f"applies {', '.join(workloads)}: Ready only means applied, not healthy; "
                    "set spec.wait: true",
                )
            )
        if policy.kustomization_timeout and checks_health and guards.timeout is None:
            found.append(
                (
                    "kustomization_timeout",
                    "spec.timeout",
                    f"is unset: health checks may run for {_default_timeout(guards.interval)} "
                    "(spec.interval minus 30 s) before the failure is reported; set it, e.g. "
                    "to 5m",
                )
            )
    if policy.max_suspended is not None and obj.suspended and obj.kind in SUSPENDABLE:
        since = suspended_since(obj)
        if since is not None and now - since > policy.max_suspended:
            where = "in Git" if obj.owner is not None and not obj.reconcile_disabled else ""
            found.append(
                (
                    "suspended",
                    "spec.suspend",
                    f"is true{' ' + where if where else ''} for {duration_words(now - since)} "
                    f"(more than {duration_words(policy.max_suspended)}): changes do not reach "
                    "it; resume it or remove it",
                )
            )
    return found


def _rollback_problem(obj: FluxObject) -> tuple[str, str] | None:
    guards = obj.safeguards
    assert guards is not None
    if guards.upgrade_strategy == "RetryOnFailure":
        return (
            "spec.upgrade.strategy.name",
            "is RetryOnFailure: a failed upgrade is retried but never rolled back; use "
            "RemediateOnFailure with spec.upgrade.remediation",
        )
    if guards.upgrade_remediation_strategy == "uninstall":
        return (
            "spec.upgrade.remediation.strategy",
            "is uninstall: a failed upgrade removes the release instead of rolling back; set "
            "rollback (the default)",
        )
    remediate = guards.upgrade_remediate_last_failure
    if remediate is None:
        remediate = guards.upgrade_retries > 0
    if remediate:
        return None
    if guards.upgrade_remediate_last_failure is False:
        return (
            "spec.upgrade.remediation.remediateLastFailure",
            "is false: the last failed upgrade stays in place when retries run out; set it to true",
        )
    return (
        "spec.upgrade.remediation.remediateLastFailure",
        "defaults to false while retries is 0: a failed upgrade is never rolled back; set "
        "retries above 0 (then it defaults to true) or remediateLastFailure: true",
    )


def _default_timeout(interval: dt.timedelta | None) -> str:
    if interval is None:
        return "the interval"
    return duration_words(max(interval - dt.timedelta(seconds=30), _KUSTOMIZATION_MIN_TIMEOUT))


def suspended_since(obj: FluxObject) -> dt.datetime | None:
    """Since when an object is suspended: fluxbot's record, else its last condition change
    (a suspended object's conditions stop changing, so it is suspended at least since then)."""
    if obj.suspension is not None and obj.suspension.at is not None:
        return obj.suspension.at
    times = [c.last_transition_time for c in obj.conditions if c.last_transition_time]
    return max(times) if times else None


def summary_lines(findings: Sequence[Finding], where: bool = True) -> list[str]:
    """`3 HelmRelease(s) with no rollback on failure in production`, one per rule and env
    (without ` in production` when `where` is False)."""
    counted: dict[tuple[str, str], set[tuple[str, str, str, str]]] = {}
    for f in findings:
        key = (f.environment, f.rule)
        counted.setdefault(key, set()).add((f.cluster, *f.object.key))
    return [
        f"{len(objects)} {RULE_SUMMARY[rule]}" + (f" in {env}" if where else "")
        for (env, rule), objects in counted.items()
    ]


def posture_line(findings: Sequence[Finding]) -> str | None:
    """One line for an environment's digest: `Posture: 5 HelmRelease(s) with no rollback on
    failure; …`, or None when nothing falls short."""
    lines = summary_lines(findings, where=False)
    return "Posture: " + "; ".join(lines) if lines else None
