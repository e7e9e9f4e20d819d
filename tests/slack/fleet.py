"""A read-only fleet for answers: production (prod-eu-1, prod-us-1, where one HelmRelease
fails) and staging (staging-eu-1), with the bot in this process (tests/slack/harness.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bot_process import SECRET
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object, snapshot
from tests.slack.harness import InProcessBot, start_in_process

PROD_CHANNEL = "C0PROD"
STAGING_CHANNEL = "C0STAGE"


def _failing_release(name: str, message: str) -> dict[str, Any]:
    return flux_object(
        "HelmRelease",
        name,
        "flux-apps",
        status={"history": [snapshot(2, "6.7.1", "failed")], "storageNamespace": "flux-apps"},
        conditions=[condition("Ready", "False", "UpgradeFailed", message)],
    )


HEALTHY = [
    flux_object("Kustomization", "apps", conditions=[condition()]),
    flux_object("HelmRelease", "podinfo", "flux-apps", conditions=[condition()]),
]


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    """The fake Slack Web API."""
    with FakeSlack(signing_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    """Three fake clusters; `checkout` on prod-us-1 fails (with markup in its message)."""
    fleet = FakeFleet(["prod-eu-1", "prod-us-1", "staging-eu-1"])
    with fleet:
        for server in fleet:
            server.apply_many(HEALTHY)
        fleet["prod-us-1"].apply(
            _failing_release("checkout", "Helm upgrade failed: <timeout> & rollback pending")
        )
        yield fleet


def write_config(fleet: FakeFleet, tmp_path: Path) -> Path:
    """The configuration: production and staging, each with its channel."""
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    config = tmp_path / "fluxbot.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "kubernetes": {"kubeconfig": str(kubeconfig)},
                "history": {"path": str(tmp_path / "history.db")},
                "environments": {
                    "production": {
                        "channel": PROD_CHANNEL,
                        "clusters": [{"context": "prod-eu-1"}, {"context": "prod-us-1"}],
                        "digest": {"enabled": False},
                    },
                    "staging": {
                        "channel": STAGING_CHANNEL,
                        "clusters": [{"context": "staging-eu-1"}],
                        "digest": {"enabled": False},
                    },
                },
            },
            sort_keys=False,
        )
    )
    return config


@pytest.fixture
def bot(slack: FakeSlack, fleet: FakeFleet, tmp_path: Path) -> Iterator[InProcessBot]:
    """The bot for the fleet, in this process."""
    running = start_in_process(write_config(fleet, tmp_path), slack)
    try:
        yield running
    finally:
        running.stop()
