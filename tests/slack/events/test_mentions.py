"""Mentions: `@fluxbot <command>` answered in the thread, with the same grammar and checks as
`/flux`; in-process."""

from __future__ import annotations

from typing import Any

from tests.bot_process import texts
from tests.fakes.slack_api import FakeSlack
from tests.slack.fleet import PROD_CHANNEL
from tests.slack.harness import InProcessBot as Bot


def _command(bot: Bot, text: str, channel: str = PROD_CHANNEL, **options: Any) -> Any:
    return bot.command(text, channel, **options)


def test_a_mention_in_a_thread_is_answered_in_that_thread(bot: Bot, slack: FakeSlack) -> None:
    incident = slack.add_message(PROD_CHANNEL, "checkout is down, anyone?", user="U0ALICE")
    reply = bot.client.app_mention(
        "status --failing", channel_id=PROD_CHANNEL, user_id="U0ALICE", thread_ts=incident
    )
    assert reply.status == 200
    answer = slack.wait_for_message(
        PROD_CHANNEL, lambda m: m.get("user") == slack.bot_user_id and m.get("thread_ts")
    )
    # The same grammar and channel default as /flux: production, failing objects, in the thread.
    assert answer["thread_ts"] == incident
    assert answer["text"].startswith("production: 1 failing of 5 Flux objects.")
    assert "`flux-apps/checkout`" in texts(answer)
    assert "only for you" not in texts(answer)


def test_a_mention_outside_a_thread_starts_one_and_gets_the_same_checks(
    bot: Bot, slack: FakeSlack
) -> None:
    reply = bot.client.app_mention("status prodution", channel_id="C0RANDOM", user_id="U0ALICE")
    assert reply.status == 200
    answer = slack.wait_for_message("C0RANDOM", lambda m: m.get("user") == slack.bot_user_id)
    mention = next(m for m in slack.messages("C0RANDOM") if m.get("user") == "U0ALICE")
    assert answer["thread_ts"] == mention["ts"]
    assert "Unknown environment 'prodution'. Did you mean production?" in answer["text"]
    # Unsigned events are refused like any other request.
    forged = bot.client.app_mention("status production", channel_id="C0RANDOM", bad_signature=True)
    assert forged.status == 401
