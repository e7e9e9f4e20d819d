"""Remediation through the real `fluxbot serve --http` process, where the process is what is
tested: SIGTERM during an action, the environment helm runs with, and a resume after a
rollback end to end. Everything else about remediation from Slack is tested in-process in
tests/slack/ (the same world, tests/slack/world.py).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.bot_process import SECRET, buttons, texts
from tests.slack.world import DEV, HR, OPS, SRE1, World, open_world
from tests.slack.world import until as _until


@pytest.fixture
def world(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[World]:
    with open_world(tmp_path, monkeypatch, process=True) as w:
        yield w


def test_on_sigterm_a_running_action_is_finished_or_clearly_abandoned(world: World) -> None:
    bot = world.start(follow=120)
    world.controllers[0].delay = 60  # the controller will not answer before shutdown
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    reply = world.click(OPS, DEV, offered["Reconcile"])
    _until(lambda: world.writes(world.dev))
    started = time.monotonic()
    bot.stop()
    assert bot.process.returncode == 0
    assert time.monotonic() - started < 25
    abandoned = world.slack.wait_for(
        lambda: [
            r for r in world.slack.responses(reply.response_url) if "restarting" in texts(r.payload)
        ]
    )
    assert "outcome is no longer being followed" in texts(abandoned[0].payload)
    world.bot = None


def test_helm_runs_without_the_slack_secrets_in_its_environment(world: World) -> None:
    env_dump = world.tmp_path / "helm-env.txt"
    world.start(rollback="helm")
    wrapper = world.tmp_path / "helm"  # installed by start(); record what helm is given
    wrapper.write_text(wrapper.read_text().replace("exec ", f'env > "{env_dump}"\nexec ', 1))
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    world.outcome(world.click(SRE1, DEV, buttons(plan)["Confirm rollback"]), count=2)
    seen = env_dump.read_text()
    assert "SLACK_BOT_TOKEN" not in seen
    assert SECRET not in seen
    assert world.slack.bot_token not in seen


def test_resume_after_a_rollback_applies_git_first_then_says_what_it_deploys(
    world: World,
) -> None:
    """Resume removes the hold, reconciles the parent Kustomization with its source so Git's
    current spec is applied, and says what the HelmRelease now deploys."""
    world.controllers[0].git.specs[("HelmRelease", "flux-apps", "podinfo")] = {
        "chart": {"spec": {"version": "6.8.0"}}  # Git was fixed
    }
    world.start(follow=20)
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    clicked = world.click(SRE1, DEV, buttons(plan)["Confirm rollback"])
    rolled = world.final(clicked, count=2, timeout=20)
    assert "Rolled back HelmRelease flux-apps/podinfo on dev-1 to podinfo@6.6.0" in texts(rolled)
    resume = buttons(rolled)["Resume (redeploys 6.7.1)"]
    assert "style" not in resume  # neutral: it redeploys whatever Git declares
    world.dev.clear_requests()
    result = world.outcome(world.click(SRE1, DEV, resume), count=2, timeout=30)
    assert "Resumed HelmRelease flux-apps/podinfo on dev-1 and reconciled." in result
    assert "It now deploys podinfo@6.8.0, as Git declares." in result
    release = world.dev.get(HR, "HelmRelease", "flux-apps", "podinfo")
    assert release is not None
    assert "kustomize.toolkit.fluxcd.io/reconcile" not in release["metadata"].get("annotations", {})
    assert release["status"]["history"][0]["chartVersion"] == "6.8.0"
    order = [r.path.rsplit("/", 2)[-2] for r in world.writes(world.dev) if r.method == "PATCH"]
    # The hold goes first, then Git is applied (source, Kustomization), then the reconcile.
    assert order[:3] == ["helmreleases", "gitrepositories", "kustomizations"]
