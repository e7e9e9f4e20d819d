"""`fluxbot digest ENV`: prints with --dry-run, posts (once) without it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[tuple[Path, FakeSlack]]:
    fleet = FakeFleet(["prod-1"])
    with fleet, FakeSlack() as slack:
        fleet["prod-1"].apply_many(
            [
                flux_object(
                    "GitRepository",
                    "platform",
                    conditions=[condition("Ready", "False", "GitOperationFailed", "auth required")],
                ),
                flux_object(
                    "Kustomization",
                    "apps",
                    spec={"sourceRef": {"kind": "GitRepository", "name": "platform"}},
                    conditions=[condition("Ready", "False", "ArtifactFailed", "source not ready")],
                ),
            ]
        )
        config = tmp_path / "fluxbot.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
                    "history": {"path": str(tmp_path / "history.db")},
                    "environments": {
                        "production": {"channel": "C0PROD", "clusters": [{"context": "prod-1"}]}
                    },
                }
            )
        )
        yield config, slack


def _digest(config: Path, slack: FakeSlack, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SLACK_BOT_TOKEN": slack.bot_token, "SLACK_API_URL": slack.api_url}
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "digest", "production", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=60,
        check=False,
    )


def test_dry_run_prints_the_digest_and_posts_nothing(setup: tuple[Path, FakeSlack]) -> None:
    config, slack = setup
    result = _digest(config, slack, "--dry-run", "--output", "json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    (item,) = record["attention"]
    assert (item["name"], item["dependents"]) == ("platform", ["Kustomization/flux-system/apps"])
    assert slack.calls("chat.postMessage") == []


def test_without_dry_run_it_posts_to_the_environment_channel(setup: tuple[Path, FakeSlack]) -> None:
    config, slack = setup
    result = _digest(config, slack)
    assert result.returncode == 0, result.stderr
    assert "posted the production digest" in result.stderr
    top, details = [c.params for c in slack.calls("chat.postMessage") if c.ok]
    assert top["channel"] == "C0PROD"
    # The notification names the problem, not a count.
    assert top["text"] == "production: platform on prod-1: auth required"
    assert details["thread_ts"]
    # The next digest covers what happened after this one.
    again = _digest(config, slack, "--dry-run")
    assert "Changes since" not in again.stdout


def test_posting_needs_a_bot_token(setup: tuple[Path, FakeSlack]) -> None:
    config, _slack = setup
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLACK_")}
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "digest", "production", "--config", str(config)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert "SLACK_BOT_TOKEN" in result.stderr
    assert "--dry-run" in result.stderr
    assert "Traceback" not in result.stderr
