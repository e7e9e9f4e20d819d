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

from tests.bot_process import Bot, start_bot, texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.slack.fleet import PROD_CHANNEL, fleet, slack, write_config

# The fake Slack and the fleet (prod-eu-1, prod-us-1 where `checkout` fails, staging-eu-1) are
# the in-process tests' own, so the process and in-process answers are checked on one fleet.
__all__ = ["fleet", "slack"]


def _command(bot: Bot, text: str, channel: str = PROD_CHANNEL, **options: Any) -> Any:
    return bot.command(text, channel, **options)


@pytest.fixture
def bot(slack: FakeSlack, fleet: FakeFleet, tmp_path: Path) -> Iterator[Bot]:
    """The real `fluxbot serve --http` process for the fleet of tests/slack/fleet.py."""
    config = write_config(fleet, tmp_path)
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
