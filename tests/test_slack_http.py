"""`/flux` in Slack, end to end: the real `fluxbot serve --http` process, a fake Slack Web API
and fake Kubernetes API servers, all on 127.0.0.1: what only the process shows, the answers of
a signed command and the refusal of forged or replayed ones over real HTTP. The answers
themselves are tested in-process in tests/slack/commands/test_answers.py.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bot_process import SECRET, Bot, start_bot, texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object, snapshot

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


def _command(bot: Bot, text: str, channel: str = PROD_CHANNEL, **options: Any) -> Any:
    return bot.command(text, channel, **options)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret=SECRET) as fake:
        yield fake


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet(["prod-eu-1", "prod-us-1", "staging-eu-1"])
    with fleet:
        for server in fleet:
            server.apply_many(HEALTHY)
        fleet["prod-us-1"].apply(
            _failing_release("checkout", "Helm upgrade failed: <timeout> & rollback pending")
        )
        yield fleet


@pytest.fixture
def bot(slack: FakeSlack, fleet: FakeFleet, tmp_path: Path) -> Iterator[Bot]:
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
    running = start_bot(["--config", str(config)], slack, tmp_path)
    try:
        yield running
    finally:
        running.stop()


def test_status_in_an_environment_channel_answers_for_each_of_its_clusters(bot: Bot) -> None:
    reply = _command(bot, "status")
    assert reply.status == 200
    assert reply.elapsed < 3
    payload = bot.answer(reply)
    assert payload["response_type"] == "ephemeral"
    text = texts(payload)
    assert "production: 1 failing of 5 Flux objects" in text
    assert "*prod-eu-1*" in text
    assert "*prod-us-1*" in text
    assert "staging-eu-1" not in text
    # The failure, with its message, escaped: cluster text must not become Slack markup.
    assert "`flux-apps/checkout`" in text
    assert "Helm upgrade failed: &lt;timeout&gt; &amp; rollback pending" in text
    assert payload["text"].startswith(
        "production: 1 failing of 5 Flux objects. First: HelmRelease flux-apps/checkout on "
        "prod-us-1 (failing for "
    )
    share = payload["blocks"][-1]
    assert share["type"] == "actions"
    assert share["elements"][0]["text"]["text"] == "Post to channel"


@pytest.mark.parametrize("fault", ["bad_signature", "stale"])
def test_forged_or_replayed_requests_get_401_and_cause_nothing(
    bot: Bot, slack: FakeSlack, fault: str
) -> None:
    reply = _command(bot, "status", **{fault: True})
    assert reply.status == 401
    time.sleep(0.5)  # give a wrongly accepted request the time to answer
    assert slack.responses() == []
