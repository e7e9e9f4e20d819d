"""`/flux` in Slack, end to end: the real `fluxbot serve --http` process, a fake Slack Web API
and fake Kubernetes API servers, all on 127.0.0.1.

Slack's side is played by tests/fakes/slack_client.py (signed requests, as Slack sends them)
and tests/fakes/slack_api.py (Web API and response_url, enforcing Block Kit limits).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_client import SlackClient
from tests.flux_objects import condition, flux_object, snapshot

ROOT = Path(__file__).resolve().parent.parent
SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
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


class Bot:
    """A running `fluxbot serve --http` and the Slack it talks to."""

    def __init__(self, process: subprocess.Popen[str], url: str, slack: FakeSlack) -> None:
        self.process = process
        self.url = url
        self.slack = slack
        self.client = SlackClient(url, SECRET, fake=slack)

    def command(self, text: str, channel: str = PROD_CHANNEL, **options: Any) -> Any:
        return self.client.slash_command("/flux", text, channel_id=channel, **options)

    def answer(self, reply: Any, timeout: float = 10.0) -> dict[str, Any]:
        (record,) = self.slack.wait_for_response(1, timeout=timeout, url=reply.response_url)
        assert record.status == 200, record.body
        payload: dict[str, Any] = record.payload
        return payload


def _start(args: list[str], slack: FakeSlack, tmp_path: Path) -> Bot:
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
    }
    env.pop("SLACK_APP_TOKEN", None)
    log = (tmp_path / "bot.log").open("w+")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "bot.cli",
            "serve",
            "--http",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            *args,
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
        text=True,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        log.seek(0)
        found = re.search(r"serving /flux on (http://\S+)", log.read())
        if found:
            return Bot(process, found.group(1), slack)
        if process.poll() is not None:
            log.seek(0)
            raise AssertionError(f"fluxbot serve exited: {log.read()}")
        time.sleep(0.05)
    process.kill()
    raise AssertionError("fluxbot serve did not start listening")


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
    running = _start(["--config", str(config)], slack, tmp_path)
    try:
        yield running
    finally:
        running.process.terminate()
        running.process.wait(timeout=10)


def _texts(payload: dict[str, Any]) -> str:
    """Every piece of text in a message's blocks, joined."""
    out: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("text"), str):
                out.append(node["text"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(payload.get("blocks", []))
    return "\n".join(out)


def test_status_in_an_environment_channel_answers_for_each_of_its_clusters(bot: Bot) -> None:
    reply = bot.command("status")
    assert reply.status == 200
    assert reply.elapsed < 3
    payload = bot.answer(reply)
    assert payload["response_type"] == "ephemeral"
    text = _texts(payload)
    assert "production: 1 failing of 5 Flux objects" in text
    assert "*prod-eu-1*" in text
    assert "*prod-us-1*" in text
    assert "staging-eu-1" not in text
    # The failure, with its message, escaped: cluster text must not become Slack markup.
    assert "`flux-apps/checkout`" in text
    assert "Helm upgrade failed: &lt;timeout&gt; &amp; rollback pending" in text
    assert payload["text"].startswith("production: 1 failing, 0 progressing, 0 suspended, 4 ready")
    share = payload["blocks"][-1]
    assert share["type"] == "actions"
    assert share["elements"][0]["text"]["text"] == "Post to channel"


def test_get_shows_one_object_in_detail(bot: Bot) -> None:
    payload = bot.answer(bot.command("get hr checkout -n flux-apps"))
    text = _texts(payload)
    assert "*HelmRelease* `flux-apps/checkout` on *prod-us-1* (production): *failing*" in text
    assert "`podinfo@6.7.1`" in text
    assert "*failed*" in text


def test_share_posts_the_answer_for_the_whole_channel(bot: Bot, slack: FakeSlack) -> None:
    payload = bot.answer(bot.command("status --failing"))
    button = payload["blocks"][-1]["elements"][0]
    reply = bot.client.block_action(
        {"type": "button", "action_id": button["action_id"], "value": button["value"]},
        channel_id=PROD_CHANNEL,
        user_id="U0ALICE",
        is_ephemeral=True,
    )
    assert reply.status == 200
    (shared,) = slack.wait_for_response(1, url=reply.response_url)
    assert shared.payload["response_type"] == "in_channel"
    assert "Shared by <@U0ALICE>: `/flux status --failing`" in _texts(shared.payload)

    direct = bot.answer(bot.command("status --share"))
    assert direct["response_type"] == "in_channel"


def test_outside_an_environment_channel_the_environment_must_be_named(bot: Bot) -> None:
    text = _texts(bot.answer(bot.command("status", channel="C0RANDOM")))
    assert "This channel is not mapped to an environment; name one." in text
    assert "`production`, `staging`" in text
    named = _texts(bot.answer(bot.command("status staging", channel="C0RANDOM")))
    assert "staging: all 2 Flux objects healthy" in named


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("deploy everything", "unknown command &#x27;deploy&#x27;"),
        ("status --bogus", "unknown option"),
        ("", "/flux status [ENV]"),
    ],
)
def test_bad_input_gets_usage_help(bot: Bot, text: str, expected: str) -> None:
    answer = _texts(bot.answer(bot.command(text)))
    assert "/flux status [ENV] [--cluster CLUSTER]" in answer
    assert expected.replace("&#x27;", "'") in answer


@pytest.mark.parametrize("fault", ["bad_signature", "stale"])
def test_forged_or_replayed_requests_get_401_and_cause_nothing(
    bot: Bot, slack: FakeSlack, fault: str
) -> None:
    reply = bot.command("status", **{fault: True})
    assert reply.status == 401
    time.sleep(0.5)  # give a wrongly accepted request the time to answer
    assert slack.responses() == []


def test_an_unreachable_cluster_is_reported_while_the_others_answer(
    bot: Bot, fleet: FakeFleet
) -> None:
    fleet["prod-eu-1"].stop()
    deadline = time.monotonic() + 15
    while True:
        text = _texts(bot.answer(bot.command("status")))
        if "stale" in text or time.monotonic() > deadline:
            break
        bot.slack.reset()
    assert "*prod-eu-1*" in text
    assert "stale since" in text
    assert "cannot reach the API server" in text
    assert "`flux-apps/checkout`" in text


def test_digest_preview_is_shown_only_to_whoever_asked(bot: Bot) -> None:
    payload = bot.answer(bot.command("digest"))
    assert payload["response_type"] == "ephemeral"
    text = _texts(payload)
    assert "production digest" in text
    assert "`flux-apps/checkout`" in text
    assert "Preview of the digest, only for you." in text
