"""`audit`: the remediation posture, strict where it matters, with Flux's own defaults.

Defaults as helm-controller api/v2 defines them (fluxcd/helm-controller api/v2/helmrelease_types.go:
`UpgradeRemediation.MustRemediateLastFailure` is `Retries > 0` when unset, `GetStrategy` is
rollback when unset; `InstallRemediation.MustRemediateLastFailure` is false when unset; retries
default to 0) and kustomize-controller api/v1 (`wait` false; `GetTimeout` is `interval` minus
30 s when `timeout` is unset).
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk import WebClient

from bot.commands.answers import AuditAnswer
from bot.commands.executor import CommandRunner
from bot.config import DigestConfig, load_config
from bot.demo import load_demo
from bot.digests.composer import DigestComposer
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.posture import STRICT, check, default_policy
from bot.domain.status import parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.render.text import render
from bot.slack.digest_post import SlackDigestPoster
from bot.slack.digest_render import details_message, summary_message
from bot.slack.render import MAX_BLOCKS
from bot.slack.render import render as slack_render
from tests.fakes.slack_api import FakeSlack, validate_blocks
from tests.flux_objects import condition, flux_object

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 26, 10, 0, tzinfo=dt.UTC)


def _release(upgrade: dict[str, Any] | None = None, install: dict[str, Any] | None = None) -> Any:
    spec: dict[str, Any] = {}
    if upgrade is not None:
        spec["upgrade"] = upgrade
    if install is not None:
        spec["install"] = install
    return parse_flux_object(
        flux_object("HelmRelease", "podinfo", "flux-apps", spec=spec, conditions=[condition()])
    )


def _rules(obj: Any) -> dict[str, str]:
    return {rule: f"{field} {advice}" for rule, field, advice in check(obj, STRICT, NOW)}


def test_a_release_without_remediation_falls_short_three_ways() -> None:
    rules = _rules(_release())
    assert rules["helm_upgrade_retries"].startswith("spec.upgrade.remediation.retries is 0")
    assert rules["helm_rollback"].startswith(
        "spec.upgrade.remediation.remediateLastFailure defaults to false while retries is 0"
    )
    assert rules["helm_install_remediation"].startswith("spec.install.remediation.retries is 0")


def test_upgrade_retries_imply_a_rollback_of_the_last_failure() -> None:
    # remediateLastFailure unset defaults to true when retries > 0; strategy defaults to rollback.
    rules = _rules(
        _release(upgrade={"remediation": {"retries": 3}}, install={"remediation": {"retries": 3}})
    )
    assert rules == {}


@pytest.mark.parametrize(
    ("upgrade", "field"),
    [
        (
            {"remediation": {"retries": 2, "remediateLastFailure": False}},
            "spec.upgrade.remediation.remediateLastFailure is false",
        ),
        (
            {"remediation": {"retries": 2, "strategy": "uninstall"}},
            "spec.upgrade.remediation.strategy is uninstall",
        ),
        ({"strategy": {"name": "RetryOnFailure"}}, "spec.upgrade.strategy.name is RetryOnFailure"),
    ],
)
def test_what_keeps_a_failed_upgrade_from_being_rolled_back(
    upgrade: dict[str, Any], field: str
) -> None:
    rules = _rules(_release(upgrade=upgrade, install={"remediation": {"retries": 1}}))
    assert rules["helm_rollback"].startswith(field)
    # Retries are there in each case (RetryOnFailure retries the upgrade itself).
    assert "helm_upgrade_retries" not in rules


def _kustomization(inventory: list[str], **spec: Any) -> Any:
    return parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            spec={"interval": "1h", **spec},
            status={"inventory": {"entries": [{"id": i, "v": "v1"} for i in inventory]}},
            conditions=[condition()],
        )
    )


def test_a_kustomization_applying_workloads_must_wait_or_check_health() -> None:
    deployment = ["flux-apps_podinfo_apps_Deployment"]
    assert "kustomization_health" in _rules(_kustomization(deployment))
    assert "kustomization_health" not in _rules(_kustomization(deployment, wait=True, timeout="5m"))
    checks = [{"kind": "Deployment", "name": "podinfo", "namespace": "flux-apps"}]
    assert _rules(_kustomization(deployment, healthChecks=checks, timeout="5m")) == {}
    # Only configuration (no workloads, or an inventory never written): nothing to wait for.
    assert _rules(_kustomization(["flux-apps_settings__ConfigMap"])) == {}
    assert _rules(_kustomization([])) == {}


def test_waiting_without_a_timeout_says_how_long_flux_would_wait() -> None:
    rules = _rules(_kustomization(["a_b_apps_Deployment"], wait=True))
    assert rules["kustomization_timeout"].startswith(
        "spec.timeout is unset: health checks may run for 59 min (spec.interval minus 30 s)"
    )


def test_an_object_suspended_in_git_too_long_is_a_finding() -> None:
    labels = {
        "kustomize.toolkit.fluxcd.io/name": "flux-system",
        "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
    }
    old = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            suspend=True,
            labels=labels,
            conditions=[condition(at="2026-11-20T10:00:00Z")],
            spec={
                "upgrade": {"remediation": {"retries": 3}},
                "install": {"remediation": {"retries": 3}},
            },
        )
    )
    assert _rules(old)["suspended"] == (
        "spec.suspend is true in Git for 6 d (more than 3 d): changes do not reach it; resume it "
        "or remove it"
    )
    recent = parse_flux_object(
        flux_object(
            "GitRepository",
            "fleet",
            suspend=True,
            conditions=[condition(at="2026-11-26T08:00:00Z")],
        )
    )
    assert _rules(recent) == {}


def test_sandboxes_and_development_have_no_policy_by_default() -> None:
    assert not default_policy("sandbox").checks_anything
    assert not default_policy("development").checks_anything
    assert default_policy("production") == STRICT


def test_policy_comes_from_the_tier_then_the_environment(tmp_path: Path) -> None:
    path = tmp_path / "fluxbot.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "environments": {
                    "production": {
                        "channel": "C0PROD",
                        "clusters": [{"context": "prod"}],
                        "posture": {"kustomization_timeout": False},
                    },
                    "sandbox-a": {"channel": "C0SANDBOX", "clusters": [{"context": "sb"}]},
                },
                "posture": {
                    "production": {"max_suspended_hours": 0, "kustomization_timeout": True},
                    "sandbox": {"helm_rollback": True},
                },
            }
        )
    )
    config = load_config(path)
    production = config.posture_policy("production")
    assert production.helm_rollback
    assert production.max_suspended is None  # 0 turns the check off
    assert not production.kustomization_timeout  # the environment wins over its tier
    sandbox = config.posture_policy("sandbox-a")
    assert sandbox.helm_rollback
    assert not sandbox.helm_upgrade_retries


def test_the_demo_audit_finds_the_stalled_release_that_cannot_roll_back() -> None:
    answer = CommandRunner(*load_demo(), clock=lambda: NOW).handle("audit")
    assert isinstance(answer, AuditAnswer)
    text = render(answer)
    assert text.splitlines()[0] == "Posture: 33 findings in staging, production"
    assert "== development (development tier): no posture policy" in text
    assert (
        "  prod-us-1: HelmRelease monitoring/kube-prometheus-stack\n"
        "    - spec.upgrade.remediation.remediateLastFailure is false: the last failed upgrade "
        "stays in place when retries run out; set it to true"
    ) in text
    assert "5 HelmRelease(s) with no rollback on failure in production" in text
    # payments in staging was suspended 2 d 20 h before the dump: under the 3 d limit.
    assert [f.object.name for f in answer.findings if f.rule == "suspended"] == []
    later = CommandRunner(*load_demo(), clock=lambda: NOW + dt.timedelta(days=1)).handle("audit")
    assert isinstance(later, AuditAnswer)
    assert [f.object.name for f in later.findings if f.rule == "suspended"] == ["payments"]


def _fluxbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_findings_are_an_answer_not_an_error() -> None:
    result = _fluxbot("audit", "production", "--demo", "--output", "json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    (production,) = data["environments"]
    assert production["policy"]["helm_rollback"] is True
    assert production["policy"]["max_suspended_hours"] == 72.0
    stalled = [
        f
        for f in production["findings"]
        if f["name"] == "kube-prometheus-stack" and f["cluster"] == "prod-us-1"
    ]
    assert {f["field"] for f in stalled} == {
        "spec.upgrade.remediation.remediateLastFailure",
        "spec.install.remediation.retries",
    }
    text = _fluxbot("shell", "--demo", "-x", "audit development")
    assert text.returncode == 0
    assert "Posture: no policy applies to development" in text.stdout


def test_audit_in_slack_stays_within_block_kit_limits() -> None:
    objects = [
        parse_flux_object(flux_object("HelmRelease", f"app-{i}", "apps", conditions=[condition()]))
        for i in range(200)
    ]
    layout = FleetLayout((EnvironmentLayout("production", "production", "C0PROD", ("prod",)),))
    runner = CommandRunner(
        layout, OfflineFleetReader([OfflineCluster("production", "prod", tuple(objects))])
    )
    message = slack_render(runner.handle("audit production"))
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert "… and 188 more objects" in json.dumps(message.blocks, ensure_ascii=False)
    demo = slack_render(CommandRunner(*load_demo()).handle("audit"))
    assert validate_blocks(demo.blocks) == []


def test_the_digest_has_one_posture_line_and_the_list_in_its_thread() -> None:
    layout, reader = load_demo()
    digest = DigestComposer(layout, reader, None, clock=lambda: NOW).compose("production")
    summary = json.dumps(summary_message(digest, details_in_thread=True).blocks, ensure_ascii=False)
    assert (
        ":shield: Posture: 4 HelmRelease(s) with no upgrade retries; 5 HelmRelease(s) with no "
        "rollback on failure; 4 HelmRelease(s) with no install remediation; 4 Kustomization(s) "
        "applying workloads without health checks"
    ) in summary
    details = json.dumps(details_message(digest, None).blocks, ensure_ascii=False)
    assert "*Posture* (17): `/flux audit production` says why" in details
    assert (
        "HelmRelease `monitoring/kube-prometheus-stack` on prod-us-1: "
        "`spec.upgrade.remediation.remediateLastFailure`"
    ) in details
    assert validate_blocks(details_message(digest, None).blocks) == []
    # Development has no policy: no posture line.
    development = DigestComposer(layout, reader, None, clock=lambda: NOW).compose("development")
    assert development.posture == ()


def test_a_healthy_digest_with_findings_keeps_the_list_in_its_thread() -> None:
    release = flux_object("HelmRelease", "podinfo", "apps", conditions=[condition()])
    layout = FleetLayout((EnvironmentLayout("production", "production", "C0PROD", ("prod",)),))
    reader = OfflineFleetReader(
        [OfflineCluster("production", "prod", (parse_flux_object(release),))]
    )
    digest = DigestComposer(layout, reader, None, clock=lambda: NOW).compose("production")
    assert digest.healthy  # advice does not make a digest unhealthy
    with FakeSlack() as slack:
        client = WebClient(slack.bot_token, base_url=slack.api_url)
        ts = SlackDigestPoster(client, layout, None).post(digest, DigestConfig())
        parent, reply = slack.messages("C0PROD", thread_ts=ts)
    assert ":shield: Posture: 1 HelmRelease(s) with no upgrade retries" in json.dumps(
        parent["blocks"]
    )
    assert "*Posture* (3)" in json.dumps(reply["blocks"])
