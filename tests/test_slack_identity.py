"""Who may act when Slack is unsure: the real `fluxbot serve --http`, fake Slack and a fake
cluster on 127.0.0.1.

Roles granted through user groups rest on `usergroups.list`. When it fails, membership read
earlier is used for at most `actions.group_max_stale_seconds`, then dropped (fail closed),
and failed calls are retried with backoff, not on every click. A Slack Connect user from
another organisation is never one of "anyone" (`users: ["*"]`).
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
from tests.flux_objects import condition, flux_object

DEV, SANDBOX = "C0DEV", "C0SAND"
SRE, LOCAL, EXTERNAL = "U0SRE", "U0LOCAL", "U0EXT"
REFRESH, MAX_STALE = 10, 20
# A suspended object: an allowed user is told to resume it first, a denied one which role
# is needed. Either way nothing is written, so the answer shows the role check alone.
ALLOWED = "is suspended; resume it first"
DENIED = "needs the role"


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with FakeSlack(signing_secret=SECRET) as slack, FakeFleet(["dev-1", "sand-1"]) as fleet:
        slack.add_usergroup("S0SRE", "sre", users=[SRE])
        slack.add_user(SRE, "sre")
        slack.add_user(LOCAL, "local")
        slack.add_user(EXTERNAL, "partner", team_id="T0PARTNER")
        for server in fleet:
            server.apply(
                flux_object("Kustomization", "paused", suspend=True, conditions=[condition()])
            )
        config: dict[str, Any] = {
            "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
            "roles": {"sre": {"groups": ["@sre"]}, "everyone": {"users": ["*"]}},
            "actions": {
                "group_refresh_seconds": REFRESH,
                "group_max_stale_seconds": MAX_STALE,
            },
            "history": {"path": str(tmp_path / "history.db")},
            "environments": {
                "development": {
                    "channel": DEV,
                    "clusters": [{"context": "dev-1"}],
                    "actions": {"reconcile": ["sre"], "confirmation": "none"},
                    "digest": {"enabled": False},
                },
                "sandbox": {
                    "channel": SANDBOX,
                    "clusters": [{"context": "sand-1"}],
                    "actions": {"reconcile": ["everyone"], "confirmation": "none"},
                    "digest": {"enabled": False},
                },
            },
        }
        path = tmp_path / "fluxbot.yaml"
        path.write_text(yaml.safe_dump(config))
        running = start_bot(["--config", str(path)], slack, tmp_path)
        try:
            yield running
        finally:
            running.stop()


def _say(bot: Bot, user: str, text: str, channel: str = DEV) -> str:
    return texts(bot.answer(bot.command(text, channel, user=user)))


def test_group_roles_survive_a_blip_then_are_dropped_past_the_staleness_cap(bot: Bot) -> None:
    slack = bot.slack
    assert ALLOWED in _say(bot, SRE, "reconcile ks paused")
    read_at = time.monotonic()
    slack.fail("usergroups.list", "internal_error", status=200, times=None)
    time.sleep(REFRESH + 0.5)
    before = len(slack.calls("usergroups.list"))
    # Past the refresh, Slack fails: the membership read earlier still counts...
    for _ in range(4):
        assert ALLOWED in _say(bot, SRE, "reconcile ks paused")
    # ...and one failed call is not retried on every click, but after a backoff.
    assert len(slack.calls("usergroups.list")) == before + 1
    time.sleep(max(0.0, read_at + MAX_STALE + 1 - time.monotonic()))
    # Past the cap, roles granted through groups are withheld until Slack answers again.
    assert DENIED in _say(bot, SRE, "reconcile ks paused")
    slack.clear_faults()
    deadline = time.monotonic() + REFRESH + 5
    while DENIED in (answer := _say(bot, SRE, "reconcile ks paused")):
        assert time.monotonic() < deadline, "membership was not read again"
        time.sleep(1)
    assert ALLOWED in answer


def test_a_slack_connect_user_is_not_anyone(bot: Bot) -> None:
    assert ALLOWED in _say(bot, LOCAL, "reconcile ks paused", SANDBOX)
    refused = _say(bot, EXTERNAL, "reconcile ks paused", SANDBOX)
    assert "reconcile in sandbox needs the role everyone" in refused
