"""`/flux` answers in Slack, in-process: the bot behind the same verification front and Bolt
app as `fluxbot serve --http`, a fake Slack Web API and fake Kubernetes API servers, all on
127.0.0.1 (tests/slack/harness.py). Signed requests as Slack sends them come from
tests/fakes/slack_client.py; tests/fakes/slack_api/ enforces Block Kit limits.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from tests.bot_process import texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object
from tests.slack.fleet import PROD_CHANNEL
from tests.slack.harness import InProcessBot as Bot


def _command(bot: Bot, text: str, channel: str = PROD_CHANNEL, **options: Any) -> Any:
    return bot.command(text, channel, **options)


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


def test_get_shows_one_object_in_detail(bot: Bot) -> None:
    payload = bot.answer(_command(bot, "get hr checkout -n flux-apps"))
    text = texts(payload)
    assert "*HelmRelease* `flux-apps/checkout` on *prod-us-1* (production): *failing for " in text
    assert "*Chart* 6.7.1 failed, nothing running" in text
    assert "`podinfo@6.7.1`" in text
    assert "*failed*" in text


def test_share_posts_the_answer_for_the_whole_channel(bot: Bot, slack: FakeSlack) -> None:
    payload = bot.answer(_command(bot, "status --failing"))
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
    assert "Shared by <@U0ALICE>: `/flux status --failing`" in texts(shared.payload)

    direct = bot.answer(_command(bot, "status --share"))
    assert direct["response_type"] == "in_channel"


def test_outside_an_environment_channel_the_environment_must_be_named(bot: Bot) -> None:
    text = texts(bot.answer(_command(bot, "status", channel="C0RANDOM")))
    assert "This channel is not mapped to an environment; name one." in text
    assert "`production`, `staging`" in text
    named = texts(bot.answer(_command(bot, "status staging", channel="C0RANDOM")))
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
    answer = texts(bot.answer(_command(bot, text)))
    assert "/flux status [ENV] [--cluster CLUSTER]" in answer
    assert expected.replace("&#x27;", "'") in answer


def test_an_unreachable_cluster_is_reported_while_the_others_answer(
    bot: Bot, fleet: FakeFleet
) -> None:
    fleet["prod-eu-1"].stop()
    deadline = time.monotonic() + 15
    while True:
        text = texts(bot.answer(_command(bot, "status")))
        if "stale" in text or time.monotonic() > deadline:
            break
        bot.slack.reset()
    assert "*prod-eu-1*" in text
    assert text.startswith("production: 1 cluster stale (unreachable for ")
    assert ":warning: *prod-eu-1*" in text
    assert "*stale*: unreachable for" in text
    assert "cannot reach the API server" in text
    assert "`flux-apps/checkout`" in text


def test_digest_preview_is_shown_only_to_whoever_asked(bot: Bot) -> None:
    payload = bot.answer(_command(bot, "digest"))
    assert payload["response_type"] == "ephemeral"
    text = texts(payload)
    assert "production digest" in text
    assert "`flux-apps/checkout`" in text
    assert "Preview of the digest, only for you." in text

    # Posted for the channel, the digest no longer says it is only for you.
    button = payload["blocks"][-1]["elements"][0]
    reply = bot.client.block_action(
        {"type": "button", "action_id": button["action_id"], "value": button["value"]},
        channel_id=PROD_CHANNEL,
        user_id="U0ALICE",
        is_ephemeral=True,
    )
    (shared,) = bot.slack.wait_for_response(1, url=reply.response_url)
    assert shared.payload["response_type"] == "in_channel"
    assert "production digest" in texts(shared.payload)
    assert "only for you" not in texts(shared.payload)


def _fleet_repo(sha: str) -> dict[str, Any]:
    revision = f"main@sha1:{sha}"
    return flux_object(
        "GitRepository",
        "flux-system",
        status={
            "artifact": {
                "revision": revision,
                "digest": "sha256:" + "0" * 64,
                "lastUpdateTime": "2026-11-26T09:00:00Z",
                "path": f"gitrepository/flux-system/flux-system/{sha}.tar.gz",
                "url": f"http://source-controller/{sha}.tar.gz",
            }
        },
        conditions=[condition(message=f"stored artifact for revision '{revision}'")],
    )


def test_rollout_answers_in_slack_with_each_environment_in_promotion_order(
    bot: Bot, fleet: FakeFleet
) -> None:
    fleet["staging-eu-1"].apply(_fleet_repo("b" * 40))
    for name in ("prod-eu-1", "prod-us-1"):
        fleet[name].apply(_fleet_repo("a" * 40))
    # The watch cache sees the new repositories shortly after they are applied.
    deadline = time.monotonic() + 30
    while True:
        payload = bot.answer(_command(bot, "rollout flux-system"))
        text = texts(payload)
        settled = "production 0/2" in text and "staging 0/1" in text
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert payload["blocks"][0]["type"] == "header"
    # Staging's tier comes before production's, though the configuration names it second; the
    # fleet's Kustomization `apps` has applied nothing yet (no lastAppliedRevision).
    assert text.index("staging 0/1 on main@bbbbbbbb: staging-eu-1 apps still on nothing yet") < (
        text.index("production 0/2 on main@aaaaaaaa")
    )
    assert "production is behind staging" in text
    # Each revision links to its commit on the forge the GitRepository's URL names.
    blocks = json.dumps(payload["blocks"], ensure_ascii=False)
    assert f"<https://github.com/acme/fleet/commit/{'b' * 40}|main@bbbbbbbb>" in blocks


def test_audit_in_an_environment_channel_audits_that_environment(bot: Bot) -> None:
    payload = bot.answer(_command(bot, "audit"))
    assert payload["blocks"][0]["type"] == "header"
    text = texts(payload)
    assert "production (production tier): " in text
    assert "staging (staging tier)" not in text


def test_report_answers_from_the_history_store(bot: Bot) -> None:
    payload = bot.answer(_command(bot, "report --since 7d"))
    assert payload["blocks"][0]["type"] == "header"
    assert payload["blocks"][0]["text"]["text"].startswith("production change health, 7 d: ")
    assert "fluxbot report ENV -o png" in texts(payload)
