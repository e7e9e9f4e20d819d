"""The ValidatingAdmissionPolicy in deploy/rbac/remediation lets fluxbot's ServiceAccount make
exactly the changes its actions make, evaluated with a CEL interpreter (cel-python) on objects
patched the way the API server merges fluxbot's own patches (RFC 7386, tests/fakes/kube_api).

Kubernetes binds `object`, `oldObject`, `request` and `variables` (evaluated in order) for a
ValidatingAdmissionPolicy (kubernetes.io/docs/reference/access-authn-authz/
validating-admission-policy/); the expressions use only standard CEL macros and operators.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import celpy
import pytest
import yaml

from bot.domain.action_lease import ActionLease, claim_patch, lease_patch
from bot.domain.remediation import (
    ReconcileOptions,
    reconcile_patch,
    resume_patch,
    suspend_patch,
)
from bot.domain.rollback import hold_patch, release_patch, rollback_plan
from bot.domain.status import parse_flux_object
from tests.fakes.kube_api import merge_patch
from tests.flux_objects import condition, flux_object, snapshot

POLICY_FILE = Path(__file__).resolve().parents[1] / "deploy/rbac/remediation/admission-policy.yaml"
FLUXBOT = "system:serviceaccount:fluxbot:fluxbot"
NOW = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)


def _policy() -> dict[str, Any]:
    docs = list(yaml.safe_load_all(POLICY_FILE.read_text()))
    (policy,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy"]
    (binding,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["validationActions"] == ["Deny"]
    return policy


POLICY = _policy()
ENV = celpy.Environment()


def _run(expression: str, activation: dict[str, Any]) -> Any:
    return ENV.program(ENV.compile(expression)).evaluate(activation)


def denied(old: dict[str, Any], patch: dict[str, Any], user: str = FLUXBOT) -> list[str]:
    """The messages of the policy's validations that fail for this merge patch by `user`;
    empty when the API server would admit it (or the policy does not apply)."""
    new = merge_patch(copy.deepcopy(old), patch)
    request = {
        "kind": {"group": old["apiVersion"].split("/")[0], "kind": old["kind"]},
        "operation": "UPDATE",
        "userInfo": {"username": user},
    }
    activation: dict[str, Any] = {
        "object": celpy.json_to_cel(new),
        "oldObject": celpy.json_to_cel(old),
        "request": celpy.json_to_cel(request),
    }
    spec = POLICY["spec"]
    if not all(_run(c["expression"], activation) for c in spec["matchConditions"]):
        return []
    variables: dict[str, Any] = {}
    for variable in [*spec["variables"], None]:  # each sees the ones before it
        activation["variables"] = celpy.celtypes.MapType(
            {celpy.celtypes.StringType(k): v for k, v in variables.items()}
        )
        if variable is not None:
            variables[variable["name"]] = _run(variable["expression"], activation)
    return [v["message"] for v in spec["validations"] if not _run(v["expression"], activation)]


def _release(**spec: Any) -> dict[str, Any]:
    obj = flux_object(
        "HelmRelease",
        "podinfo",
        "flux-apps",
        labels={"kustomize.toolkit.fluxcd.io/name": "apps"},
        status={
            "history": [snapshot(3, "6.7.1", "failed"), snapshot(2, "6.6.0", "deployed")],
            "storageNamespace": "flux-apps",
        },
        conditions=[condition("Ready", "False", "UpgradeFailed", "timed out")],
    )
    obj["spec"].update(spec)
    obj["metadata"]["annotations"] = {"team": "payments"}
    return obj


KUSTOMIZATION = flux_object("Kustomization", "apps", conditions=[condition()])
GIT = flux_object("GitRepository", "flux-system", conditions=[condition()])
OCI = flux_object("OCIRepository", "charts", spec={"ref": {"semver": ">=1.0.0"}})


def test_every_patch_fluxbot_makes_is_admitted() -> None:
    release = _release()
    plan = rollback_plan(parse_flux_object(release), method="flux")
    assert plan.pin is not None
    token = "2026-11-30T10:00:00.000000000Z"
    reconcile = reconcile_patch(
        token, parse_flux_object(release), ReconcileOptions(force=True, reset=True)
    )
    suspended = merge_patch(copy.deepcopy(release), suspend_patch("alice", "incident 42", NOW, NOW))
    lease = ActionLease.start("n1", "rollback", NOW)
    claim = claim_patch("7", "n1", lease)
    leased = merge_patch(copy.deepcopy(release), claim)
    for old, patch in [
        (release, reconcile),
        (release, claim),
        (release, claim_patch("7", "", lease)),  # a typed command: no button
        (leased, lease_patch("8", lease.renewed(NOW))),
        (leased, lease_patch("8", None)),
        (release, suspend_patch("alice", "incident 42", NOW, NOW)),
        (suspended, resume_patch(token)),
        (release, hold_patch("alice", plan)),
        (release, plan.pin.body),
        (release, release_patch()),
        (KUSTOMIZATION, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        (GIT, {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": token}}}),
        (OCI, {"spec": {"ref": {"tag": "1.2.0", "semver": None, "semverFilter": None,
                                "digest": None}}}),
    ]:  # fmt: skip
        assert denied(old, patch) == [], patch


@pytest.mark.parametrize(
    ("old", "patch", "message"),
    [
        (GIT, {"spec": {"url": "https://evil.example/repo"}}, "only spec.suspend"),
        (KUSTOMIZATION, {"spec": {"path": "./evil"}}, "only spec.suspend"),
        (KUSTOMIZATION, {"spec": {"postBuild": {"substitute": {"a": "b"}}}}, "only spec.suspend"),
        (KUSTOMIZATION, {"spec": {"prune": None}}, "only spec.suspend"),
        (_release(), {"spec": {"values": {"image": "evil"}}}, "only spec.suspend"),
        (_release(), {"spec": {"chart": {"spec": {"chart": "evil"}}}}, "spec.chart.spec.version"),
        (_release(), {"spec": {"chart": {"spec": {"sourceRef": {"name": "evil"}}}}},
         "spec.chart.spec.version"),
        (OCI, {"spec": {"url": "oci://evil.example/charts"}}, "only spec.suspend"),
        (GIT, {"spec": {"ref": {"branch": "evil"}}}, "only spec.suspend"),
        (_release(), {"metadata": {"labels": {"kustomize.toolkit.fluxcd.io/name": None}}},
         "labels"),
        (_release(), {"metadata": {"finalizers": ["evil"]}}, "labels, finalizers"),
        (_release(), {"metadata": {"annotations": {"team": None}}}, "annotations"),
        (_release(), {"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/reconcile":
                                                   "enabled"}}}, "annotations"),
        (_release(), {"metadata": {"annotations": {"kustomize.toolkit.fluxcd.io/ssa":
                                                   "Override"}}}, "annotations"),
    ],
)  # fmt: skip
def test_changes_fluxbot_never_makes_are_denied(
    old: dict[str, Any], patch: dict[str, Any], message: str
) -> None:
    problems = denied(old, patch)
    assert problems, f"{patch} was admitted"
    assert any(message in p for p in problems), problems


def test_the_policy_covers_every_kind_fluxbot_may_patch() -> None:
    """Every resource rbac/remediation lets fluxbot patch is bounded by the policy."""
    role = yaml.safe_load_all((POLICY_FILE.parent / "clusterrole.yaml").read_text())
    (cluster_role,) = [d for d in role if d["kind"] == "ClusterRole"]
    patched = {
        (group, resource)
        for rule in cluster_role["rules"]
        if "patch" in rule["verbs"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    covered = {
        (group, resource)
        for rule in POLICY["spec"]["matchConstraints"]["resourceRules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
    }
    assert patched <= covered


def test_other_users_are_not_restricted_by_this_policy() -> None:
    assert denied(GIT, {"spec": {"url": "https://example.com/r"}}, user="alice") == []
