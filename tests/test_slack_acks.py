"""Every kind of Slack request is acknowledged within Slack's 3 s while Slack itself hangs.

The real `fluxbot serve --http` process, fake Slack and a fake cluster. Slack's interaction
requests (slash commands, block_actions, view_submission) must be acknowledged within three
seconds (https://docs.slack.dev/interactivity/handling-user-interaction#acknowledgment_response);
fluxbot acks each on the request's own thread before anything that waits on Slack or a
cluster, so a response_url, views.open or views.update that hangs can hold the threads that
answer, never the acks of the requests that follow.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bot_process import SECRET, Bot, buttons, start_bot
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import RESPONSE_URL, FakeSlack
from tests.fakes.slack_client import SlackReply
from tests.flux_objects import condition, flux_object

CHANNEL = "C0DEV"
OPS = "U0OPS"
# Longer than Slack's 3 s: before acks had a path of their own, clicks past the 16th waited
# this long for a listener thread.
HANG = 5.0
REQUESTS = 24


@pytest.fixture
def bot(tmp_path: Path) -> Iterator[Bot]:
    with FakeSlack(signing_secret=SECRET) as slack, FakeFleet(["dev-1"]) as fleet:
        slack.add_user(OPS, "ops")
        fleet["dev-1"].apply(
            flux_object(
                "Kustomization",
                "apps",
                conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
            )
        )
        config = tmp_path / "fluxbot.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
                    "history": {"path": str(tmp_path / "history.db")},
                    "roles": {"operators": {"users": [OPS]}},
                    "environments": {
                        "development": {
                            "channel": CHANNEL,
                            "clusters": [{"context": "dev-1"}],
                            "actions": {
                                "reconcile": ["operators"],
                                "suspend": ["operators"],
                                "confirmation": "none",
                            },
                            "digest": {"enabled": False},
                        }
                    },
                }
            )
        )
        running = start_bot(["--config", str(config)], slack, tmp_path)
        try:
            yield running
        finally:
            slack.clear_faults()
            # Its threads are still waiting on the hung Slack: how it drains is not tested here.
            running.stop(timeout=2)


def _at_once(requests: list[Any]) -> list[SlackReply]:
    with ThreadPoolExecutor(max_workers=len(requests)) as pool:
        return list(pool.map(lambda send: send(), requests))


def test_clicks_and_form_submissions_are_acked_in_time_while_slack_hangs(bot: Bot) -> None:
    answer = bot.answer(bot.command("get ks apps", CHANNEL, user=OPS), timeout=20)
    offered = buttons(answer)
    # A suspend form, opened while Slack still answered, to submit once it hangs.
    bot.client.block_action(_action(offered["Suspend…"]), user_id=OPS, channel_id=CHANNEL)
    form = bot.slack.wait_for(
        lambda: next((v for v in bot.slack.views() if v.get("callback_id")), None),
        10,
        "the suspend form",
    )

    for method in (RESPONSE_URL, "views.open", "views.update", "chat.postMessage"):
        bot.slack.latency(method, HANG)
    clicks = [
        lambda b=offered[label]: bot.client.block_action(
            _action(b), user_id=OPS, channel_id=CHANNEL, is_ephemeral=True
        )
        for label in ("Reconcile", "Suspend…")
        for _ in range(REQUESTS // 2)
    ]
    submissions = [
        lambda: bot.client.view_submission(form, {"reason": {"reason": "freeze"}}, user_id=OPS)
        for _ in range(REQUESTS // 2)
    ]
    # A form's own mistake comes back in the ack, at once, whatever Slack is doing.
    mistaken = bot.client.view_submission(form, {"reason": {"reason": " "}}, user_id=OPS)
    replies = _at_once([*clicks, *submissions])
    command = bot.command("status", CHANNEL, user=OPS)

    assert [r.status for r in replies] == [200] * len(replies)
    slowest = max(r.elapsed for r in replies)
    assert slowest < 3, f"the slowest ack took {slowest:.1f} s"
    assert command.status == 200
    assert command.elapsed < 3
    assert mistaken.status == 200
    assert mistaken.elapsed < 3
    assert mistaken.json()["response_action"] == "errors"
    assert "Say why" in mistaken.json()["errors"]["reason"]


def _action(button: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": button["action_id"],
        "block_id": button.get("block_id") or "b",
        "value": button["value"],
    }
