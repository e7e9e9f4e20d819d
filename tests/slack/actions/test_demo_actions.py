"""`fluxbot serve --demo`, in-process (tests/slack/harness.py): the demo fleet can be acted on,
and a simulated Flux answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.demo import demo_channel
from bot.slack.action_views import WORKING
from tests.bot_process import SECRET, buttons, texts
from tests.fakes.slack_api import FakeSlack
from tests.slack.harness import InProcessBot as Bot
from tests.slack.harness import start_demo_in_process

STAGING = demo_channel("staging")
PRODUCTION = demo_channel("production")


@pytest.fixture
def bot() -> Iterator[Bot]:
    with FakeSlack(signing_secret=SECRET) as slack:
        slack.add_user("U0ALICE", "alice")
        slack.add_user("U0GUEST", "guest", is_restricted=True)
        running = start_demo_in_process(slack)
        try:
            yield running
        finally:
            running.stop()


def _click(bot: Bot, channel: str, button: dict[str, str], user: str = "U0ALICE") -> str:
    action = {"type": "button", "action_id": button["action_id"], "value": button["value"]}
    reply = bot.client.block_action(action, user_id=user, channel_id=channel, is_ephemeral=True)
    record = bot.slack.wait_for(
        lambda: [
            r
            for r in bot.slack.responses(reply.response_url)
            # serve --demo labels every message "[demo]" (bot/slack/labels.py).
            if not texts(r.payload).removeprefix("[demo] ").startswith(WORKING)
        ],
        timeout=15,
    )
    return texts(record[0].payload)


def test_reconciling_a_progressing_demo_object_succeeds_in_place(bot: Bot) -> None:
    answer = bot.answer(bot.command("get ks apps --cluster staging-us-1", STAGING, user="U0ALICE"))
    result = _click(bot, STAGING, buttons(answer)["Reconcile"])
    assert "Reconciled Kustomization flux-system/apps on staging-us-1" in result
    after = bot.answer(bot.command("get ks apps --cluster staging-us-1", STAGING, user="U0ALICE"))
    assert "*ready for " in texts(after)
    assert "WebAction" in texts(after)  # the audit Event shows in the object's events


def test_reconciling_a_demo_failure_fails_again_with_its_message(bot: Bot) -> None:
    answer = bot.answer(
        bot.command("get gitrepo platform --cluster prod-eu-1", PRODUCTION, user="U0ALICE")
    )
    result = _click(bot, PRODUCTION, buttons(answer)["Reconcile"])
    assert "Reconcile of GitRepository flux-system/platform on prod-eu-1 failed" in result
    assert "authentication required" in result


def test_the_demo_offers_every_action_and_still_refuses_guests(bot: Bot) -> None:
    answer = bot.answer(
        bot.command("get hr kube-prometheus-stack -n monitoring", PRODUCTION, user="U0ALICE")
    )
    offered = buttons(answer)
    assert {"Reconcile", "Force", "Reset retries", "Rollback to 65.1.0…", "Suspend…"} <= set(
        offered
    )
    refused = _click(bot, PRODUCTION, offered["Reconcile"], user="U0GUEST")
    assert "guest accounts cannot act" in refused


def test_every_demo_message_says_it_is_the_demo(bot: Bot) -> None:
    answer = bot.answer(bot.command("status production", PRODUCTION, user="U0ALICE"))
    assert answer["text"].startswith("[demo] ")
    assert "Demo fleet: made-up clusters" in answer["blocks"][0]["elements"][0]["text"]
    # Messages posted through the Web API too: the audit reply of an action.
    detail = bot.answer(bot.command("get ks apps --cluster staging-us-1", STAGING, user="U0ALICE"))
    _click(bot, STAGING, buttons(detail)["Reconcile"])
    posted = bot.slack.wait_for(lambda: bot.slack.messages(STAGING), timeout=15)
    for message in posted:
        assert str(message.get("text") or "").startswith("[demo] "), message
    # And forms: the suspend form opened by a button.
    detail = bot.answer(bot.command("get ks apps --cluster staging-us-1", STAGING, user="U0ALICE"))
    suspend = buttons(detail)["Suspend…"]
    bot.client.block_action(
        {"type": "button", "action_id": suspend["action_id"], "value": suspend["value"]},
        user_id="U0ALICE",
        channel_id=STAGING,
        is_ephemeral=True,
    )
    (view,) = bot.slack.wait_for(bot.slack.views, timeout=15)
    assert "Demo fleet: made-up clusters" in view["blocks"][0]["elements"][0]["text"]


def test_a_demo_rollback_goes_back_to_the_release_that_worked(bot: Bot) -> None:
    """The demo's failed upgrade fails at its chart version only: the Flux-native rollback pins
    the previous version and the simulated helm-controller upgrades to it."""
    answer = bot.answer(
        bot.command("get hr kube-prometheus-stack -n monitoring", PRODUCTION, user="U0ALICE")
    )
    rollback = buttons(answer)["Rollback to 65.1.0…"]
    action = {"type": "button", "action_id": rollback["action_id"], "value": rollback["value"]}
    reply = bot.client.block_action(
        action, user_id="U0ALICE", channel_id=PRODUCTION, is_ephemeral=True
    )
    plan = bot.answer(reply)
    result = _click(bot, PRODUCTION, buttons(plan)["Confirm rollback"])
    assert "Rolled back HelmRelease monitoring/kube-prometheus-stack on prod-us-1 to" in result
    assert "@65.1.0" in result
    assert "Resume (redeploys 66.3.0)" in result
