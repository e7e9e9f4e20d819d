"""The fake Slack, driven only as the real one is: through slack_sdk's WebClient,
WebhookClient and built-in SocketModeClient, and by plain signed HTTP where Slack itself is the
client.

These tests are the evidence that the fake answers the way Slack does for those clients: same
error codes, same exceptions, same limits.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import aiohttp
import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler
from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    DividerBlock,
    HeaderBlock,
    MarkdownTextObject,
    SectionBlock,
    StaticSelectElement,
)
from slack_sdk.models.blocks.basic_components import Option
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode import SocketModeClient
from slack_sdk.socket_mode.client import BaseSocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from slack_sdk.webhook import WebhookClient

from tests.fakes.slack_api import RESPONSE_URL, FakeSlack, validate_blocks, validate_view
from tests.fakes.slack_client import SlackClient

SECRET = "test-signing-secret"
# slack_sdk warns when a test leaves out the `text` fallback on purpose.
NO_TEXT_WARNING = "ignore:The top-level `text` argument is missing:UserWarning"
TOKEN = "xoxb-test"


@pytest.fixture
def fake() -> Iterator[FakeSlack]:
    with FakeSlack(signing_secret=SECRET) as server:
        yield server


@pytest.fixture
def web(fake: FakeSlack) -> WebClient:
    return WebClient(token=TOKEN, base_url=fake.api_url)


def section(text: str, **extra: Any) -> dict[str, Any]:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}, **extra}


def button(action_id: str, text: str = "Go", value: str = "v", **extra: Any) -> dict[str, Any]:
    return {
        "type": "button",
        "action_id": action_id,
        "text": {"type": "plain_text", "text": text},
        "value": value,
        **extra,
    }


def actions(*elements: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "actions", "elements": list(elements), **extra}


def modal(title: str = "Reconcile", **extra: Any) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": "reconcile",
        "title": {"type": "plain_text", "text": title},
        "submit": {"type": "plain_text", "text": "Run"},
        "blocks": [
            {
                "type": "input",
                "block_id": "target",
                "label": {"type": "plain_text", "text": "Kustomization"},
                "element": {"type": "plain_text_input", "action_id": "name"},
            }
        ],
        **extra,
    }


def api_error(excinfo: pytest.ExceptionInfo[SlackApiError]) -> str:
    return str(excinfo.value.response["error"])


# --- auth ----------------------------------------------------------------------------------


def test_auth_test_with_the_bot_token_identifies_the_bot(fake: FakeSlack, web: WebClient) -> None:
    resp = web.auth_test()
    assert resp["ok"] is True
    assert resp["team_id"] == "T0FAKE"
    assert resp["user_id"] == "U0BOT"
    assert resp["bot_id"] == fake.bot_id
    assert resp["url"].startswith("https://")
    assert fake.calls("auth.test")[0].token == TOKEN


@pytest.mark.parametrize(
    ("token", "error"),
    [("xoxb-wrong", "invalid_auth"), (None, "not_authed"), ("xapp-test", "not_allowed_token_type")],
)
def test_auth_test_with_a_bad_or_missing_token_fails_with_http_200(
    fake: FakeSlack, token: str | None, error: str
) -> None:
    client = WebClient(token=token, base_url=fake.api_url)
    with pytest.raises(SlackApiError) as excinfo:
        client.auth_test()
    assert api_error(excinfo) == error
    assert excinfo.value.response.status_code == 200


def test_unknown_method_answers_unknown_method(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.api_call("flux.reconcile")
    assert api_error(excinfo) == "unknown_method"


def test_token_may_come_as_a_form_parameter(fake: FakeSlack) -> None:
    client = WebClient(base_url=fake.api_url)
    assert client.api_call("auth.test", params={"token": TOKEN})["ok"]


# --- messages ------------------------------------------------------------------------------


def test_post_update_and_delete_round_trip(fake: FakeSlack, web: WebClient) -> None:
    posted = web.chat_postMessage(channel="C1", text="syncing", blocks=[section("*syncing*")])
    ts = posted["ts"]
    assert posted["channel"] == "C1"
    assert posted["message"]["user"] == "U0BOT"
    assert posted["message"]["blocks"][0]["text"]["text"] == "*syncing*"

    updated = web.chat_update(channel="C1", ts=ts, text="synced", blocks=[section("*synced*")])
    assert updated["ts"] == ts
    [msg] = fake.messages("C1")
    assert msg["ts"] == ts
    assert msg["text"] == "synced"
    assert msg["blocks"] == [section("*synced*")]
    assert msg["edited"]["user"] == "U0BOT"

    web.chat_delete(channel="C1", ts=ts)
    assert fake.messages("C1") == []


def test_message_ts_values_increase_monotonically(web: WebClient) -> None:
    stamps = [web.chat_postMessage(channel="C1", text=str(i))["ts"] for i in range(5)]
    assert stamps == sorted(stamps, key=float)
    assert len(set(stamps)) == 5
    assert all(len(ts.split(".")[1]) == 6 for ts in stamps)


@pytest.mark.filterwarnings(NO_TEXT_WARNING)
def test_chat_update_keeps_fields_it_was_not_given(fake: FakeSlack, web: WebClient) -> None:
    ts = web.chat_postMessage(channel="C1", text="fallback", blocks=[section("a")])["ts"]
    web.chat_update(channel="C1", ts=ts, blocks=[section("b")])
    assert fake.message("C1", ts)["text"] == "fallback"
    web.chat_update(channel="C1", ts=ts, text="new", blocks=[])
    assert fake.message("C1", ts)["blocks"] == []
    assert fake.warnings == []


def test_chat_get_permalink_links_messages_and_thread_replies_as_slack_does(
    web: WebClient,
) -> None:
    # https://api.slack.com/methods/chat.getPermalink: archives/<channel>/p<ts without the dot>,
    # with ?thread_ts=…&cid=… for a reply; message_not_found for a ts with no message.
    ts = web.chat_postMessage(channel="C1", text="parent")["ts"]
    reply = web.chat_postMessage(channel="C1", text="reply", thread_ts=ts)["ts"]
    link = web.chat_getPermalink(channel="C1", message_ts=ts)
    assert link["channel"] == "C1"
    assert link["permalink"] == f"https://fake.slack.com/archives/C1/p{ts.replace('.', '')}"
    threaded = web.chat_getPermalink(channel="C1", message_ts=reply)["permalink"]
    assert threaded == (
        f"https://fake.slack.com/archives/C1/p{reply.replace('.', '')}?thread_ts={ts}&cid=C1"
    )
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_getPermalink(channel="C1", message_ts="1700000000.999999")
    assert api_error(excinfo) == "message_not_found"


def test_chat_update_of_a_missing_message_is_message_not_found(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C1", ts="1700000000.999999", text="x")
    assert api_error(excinfo) == "message_not_found"


def test_chat_update_cannot_edit_someone_elses_message(fake: FakeSlack, web: WebClient) -> None:
    ts = fake.add_message("C1", "hello", user="U1")
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C1", ts=ts, text="x")
    assert api_error(excinfo) == "cant_update_message"


def test_ephemeral_message_is_stored_for_one_user_and_cannot_be_updated(
    fake: FakeSlack, web: WebClient
) -> None:
    resp = web.chat_postEphemeral(channel="C1", user="U1", text="only you")
    [msg] = fake.messages("C1")
    assert msg["ts"] == resp["message_ts"]
    assert msg["ephemeral_user"] == "U1"
    assert fake.messages("C1", include_ephemeral=False) == []
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C1", ts=resp["message_ts"], text="x")
    assert api_error(excinfo) == "message_not_found"


def test_ephemeral_message_requires_a_user(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.api_call("chat.postEphemeral", json={"channel": "C1", "text": "x"})
    assert api_error(excinfo) == "user_not_found"


def test_thread_replies_land_in_the_thread_and_count_on_the_parent(
    fake: FakeSlack, web: WebClient
) -> None:
    parent = web.chat_postMessage(channel="C1", text="deploy started")["ts"]
    first = web.chat_postMessage(channel="C1", text="step 1", thread_ts=parent)["ts"]
    # A reply to a reply goes to the root thread, as in Slack.
    web.chat_postMessage(channel="C1", text="done", thread_ts=first, reply_broadcast=True)
    web.chat_postMessage(channel="C1", text="unrelated")

    thread = fake.messages("C1", thread_ts=parent)
    assert [m["text"] for m in thread] == ["deploy started", "step 1", "done"]
    assert all(m["thread_ts"] == parent for m in thread)
    assert thread[0]["reply_count"] == 2
    assert thread[2]["reply_broadcast"] is True
    assert len(fake.messages("C1")) == 4


def test_any_channel_id_is_accepted_unless_strict(fake: FakeSlack, web: WebClient) -> None:
    assert web.chat_postMessage(channel="C0ANY", text="x")["ok"]
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="not-an-id", text="x")
    assert api_error(excinfo) == "channel_not_found"


def test_strict_channels_accepts_only_registered_channels() -> None:
    with FakeSlack(strict_channels=True) as fake:
        fake.add_channel("C1", "flux")
        fake.add_channel("G1", "secret", is_private=True, is_member=False)
        web = WebClient(token=TOKEN, base_url=fake.api_url)
        assert web.chat_postMessage(channel="C1", text="x")["ok"]
        for channel in ("C2", "G1"):
            with pytest.raises(SlackApiError) as excinfo:
                web.chat_postMessage(channel=channel, text="x")
            assert api_error(excinfo) == "channel_not_found"


def test_conversations_info_describes_registered_channels(fake: FakeSlack, web: WebClient) -> None:
    fake.add_channel("G1", "ops-private", is_private=True)
    channel = web.conversations_info(channel="G1")["channel"]
    assert (channel["id"], channel["name"], channel["is_private"]) == ("G1", "ops-private", True)
    with pytest.raises(SlackApiError) as excinfo:
        web.conversations_info(channel="C404")
    assert api_error(excinfo) == "channel_not_found"


# --- Block Kit validation ------------------------------------------------------------------

LONG_CONFIRM = {
    "title": {"type": "plain_text", "text": "t" * 101},
    "text": {"type": "plain_text", "text": "sure?"},
    "confirm": {"type": "plain_text", "text": "Yes"},
    "deny": {"type": "plain_text", "text": "No"},
}

INVALID_BLOCKS = {
    "51 blocks": [section(str(i)) for i in range(51)],
    "section text of 3001 chars": [section("x" * 3001)],
    "11 section fields": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f"}] * 11},
    ],
    "section field of 2001 chars": [
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2001}]},
    ],
    "section without text or fields": [{"type": "section"}],
    "header of 151 chars": [{"type": "header", "text": {"type": "plain_text", "text": "h" * 151}}],
    "mrkdwn header": [{"type": "header", "text": {"type": "mrkdwn", "text": "h"}}],
    "context of 11 elements": [
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 11},
    ],
    "actions of 26 elements": [actions(*(button(f"a{i}") for i in range(26)))],
    "block_id of 256 chars": [section("x", block_id="b" * 256)],
    "duplicate block_id": [section("x", block_id="b"), section("y", block_id="b")],
    "duplicate action_id across blocks": [actions(button("go")), actions(button("go"))],
    "button text of 76 chars": [actions(button("go", text="t" * 76))],
    "button value of 2001 chars": [actions(button("go", value="v" * 2001))],
    "action_id of 256 chars": [actions(button("a" * 256))],
    "button style other than primary/danger": [actions(button("go", style="warning"))],
    "confirm title of 101 chars": [actions(button("go", confirm=LONG_CONFIRM))],
    "confirm button of 31 chars": [
        actions(
            button(
                "go",
                confirm={**LONG_CONFIRM, "title": {"type": "plain_text", "text": "t"}}
                | {"confirm": {"type": "plain_text", "text": "c" * 31}},
            )
        )
    ],
    "unknown block type": [{"type": "table", "rows": []}],
    "text object without type": [{"type": "section", "text": {"text": "x"}}],
    "empty section text": [section("")],
}


@pytest.mark.parametrize("blocks", INVALID_BLOCKS.values(), ids=INVALID_BLOCKS.keys())
def test_blocks_past_slack_limits_are_rejected_with_invalid_blocks(
    fake: FakeSlack, web: WebClient, blocks: list[dict[str, Any]]
) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="fallback", blocks=blocks)
    assert api_error(excinfo) == "invalid_blocks"
    messages = excinfo.value.response["response_metadata"]["messages"]
    assert messages
    assert all(m.startswith("[ERROR] ") and "[json-pointer:/blocks" in m for m in messages)
    assert fake.messages("C1") == []


def test_invalid_blocks_explains_what_and_where(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="x", blocks=[section("ok"), section("x" * 3001)])
    assert excinfo.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 3001 characters [json-pointer:/blocks/1/text/text]"
    ]


@pytest.mark.parametrize("method", ["chat_update", "chat_postEphemeral"])
def test_update_and_ephemeral_are_validated_too(web: WebClient, method: str) -> None:
    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    kwargs: dict[str, Any] = {"ts": ts} if method == "chat_update" else {"user": "U1"}
    with pytest.raises(SlackApiError) as excinfo:
        getattr(web, method)(channel="C1", text="x", blocks=[section("x" * 3001)], **kwargs)
    assert api_error(excinfo) == "invalid_blocks"


def test_blocks_at_exactly_the_limits_are_accepted(fake: FakeSlack, web: WebClient) -> None:
    blocks = [
        section("x" * 3000, block_id="b" * 255),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": "f" * 2000}] * 10},
        {"type": "header", "text": {"type": "plain_text", "text": "h" * 150}},
        {"type": "context", "elements": [{"type": "mrkdwn", "text": "c"}] * 10},
        actions(
            button("a" * 255, text="t" * 75, value="v" * 2000, style="danger"),
            *(button(f"b{i}") for i in range(24)),
        ),
    ]
    blocks += [{"type": "divider"}] * (50 - len(blocks))
    assert web.chat_postMessage(channel="C1", text="x", blocks=blocks)["ok"]


def test_blocks_built_with_slack_sdk_models_are_accepted(web: WebClient) -> None:
    blocks = [
        HeaderBlock(text="apps/podinfo"),
        SectionBlock(
            text=MarkdownTextObject(text="*Ready* `main@sha1:abc`"),
            fields=[MarkdownTextObject(text="*Cluster*\nprod"), MarkdownTextObject(text="rev")],
            accessory=StaticSelectElement(
                action_id="pick",
                placeholder="cluster",
                options=[Option(text="prod", value="prod"), Option(text="dev", value="dev")],
            ),
        ),
        DividerBlock(),
        ContextBlock(elements=[MarkdownTextObject(text="updated 2m ago")]),
        ActionsBlock(
            elements=[
                ButtonElement(
                    text="Reconcile",
                    action_id="reconcile",
                    value="prod/apps",
                    style="primary",
                    confirm=ConfirmObject(title="Sure?", text="Reconcile apps", confirm="Yes"),
                ),
                ButtonElement(text="Suspend", action_id="suspend", style="danger"),
            ]
        ),
    ]
    dicts = [b.to_dict() for b in blocks]
    assert validate_blocks(dicts) == []
    assert web.chat_postMessage(channel="C1", text="podinfo", blocks=dicts)["ok"]


def test_blocks_sent_as_a_json_form_field_are_validated(fake: FakeSlack, web: WebClient) -> None:
    web.api_call("chat.postMessage", params={"channel": "C1", "text": "x", "blocks": "[]"})
    with pytest.raises(SlackApiError) as excinfo:
        web.api_call(
            "chat.postMessage",
            params={"channel": "C1", "text": "x", "blocks": json.dumps([section("x" * 3001)])},
        )
    assert api_error(excinfo) == "invalid_blocks"


def test_text_over_40000_chars_is_msg_too_long(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="x" * 40001)
    assert api_error(excinfo) == "msg_too_long"


@pytest.mark.filterwarnings(NO_TEXT_WARNING)
def test_message_without_text_or_blocks_is_no_text(web: WebClient) -> None:
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="")
    assert api_error(excinfo) == "no_text"


@pytest.mark.filterwarnings(NO_TEXT_WARNING)
def test_blocks_without_fallback_text_are_accepted_with_a_warning(
    fake: FakeSlack, web: WebClient
) -> None:
    assert web.chat_postMessage(channel="C1", blocks=[section("x")])["ok"]
    [warning] = fake.warnings
    assert "fallback" in warning
    assert "C1" in warning


# --- rate limits and faults ----------------------------------------------------------------


def test_rate_limit_answers_429_with_retry_after(fake: FakeSlack, web: WebClient) -> None:
    fake.rate_limit("chat.postMessage", times=1, retry_after=7)
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="x")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["retry-after"] == "7"
    assert api_error(excinfo) == "ratelimited"
    assert web.chat_postMessage(channel="C1", text="x")["ok"]
    assert [c.status for c in fake.calls("chat.postMessage")] == [429, 200]


def test_rate_limit_retry_handler_gets_through_on_the_second_try(fake: FakeSlack) -> None:
    fake.rate_limit("users.info", times=1, retry_after=0)
    fake.add_user("U1", "alice")
    client = WebClient(
        token=TOKEN,
        base_url=fake.api_url,
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=1)],
    )
    assert client.users_info(user="U1")["user"]["name"] == "alice"
    assert [c.status for c in fake.calls("users.info")] == [429, 200]


def test_channel_rate_allows_a_burst_then_answers_429(fake: FakeSlack, web: WebClient) -> None:
    fake.enforce_channel_rate(per_second=1.0, burst=2)
    web.chat_postMessage(channel="C1", text="1")
    web.chat_postMessage(channel="C1", text="2")
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="3")
    assert excinfo.value.response.status_code == 429
    assert excinfo.value.response.headers["retry-after"] == "1"
    # The limit is per channel.
    assert web.chat_postMessage(channel="C2", text="1")["ok"]
    fake.enforce_channel_rate(None)
    assert web.chat_postMessage(channel="C1", text="3")["ok"]


def test_fail_injects_an_error_for_the_next_calls_only(fake: FakeSlack, web: WebClient) -> None:
    fake.fail("chat.update", times=1)
    fake.fail("chat.postMessage", error="channel_not_found", status=200, times=1)
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_postMessage(channel="C1", text="x")
    assert (excinfo.value.response.status_code, api_error(excinfo)) == (200, "channel_not_found")
    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    with pytest.raises(SlackApiError) as excinfo:
        web.chat_update(channel="C1", ts=ts, text="y")
    assert (excinfo.value.response.status_code, api_error(excinfo)) == (500, "internal_error")
    assert web.chat_update(channel="C1", ts=ts, text="y")["ok"]


def test_latency_delays_only_the_chosen_method(fake: FakeSlack, web: WebClient) -> None:
    fake.latency("users.info", 0.2)
    fake.add_user("U1", "alice")
    start = time.perf_counter()
    web.users_info(user="U1")
    assert time.perf_counter() - start >= 0.2
    start = time.perf_counter()
    web.auth_test()
    assert time.perf_counter() - start < 0.2


# --- users and groups ----------------------------------------------------------------------


def test_users_info_returns_registered_users(fake: FakeSlack, web: WebClient) -> None:
    fake.add_user("U1", "alice", is_admin=True)
    fake.add_user("U2", "guest", is_restricted=True)
    fake.add_user("U3", "gone", deleted=True)
    alice = web.users_info(user="U1")["user"]
    assert (alice["id"], alice["name"], alice["is_admin"]) == ("U1", "alice", True)
    assert web.users_info(user="U2")["user"]["is_restricted"] is True
    assert web.users_info(user="U3")["user"]["deleted"] is True
    assert web.users_info(user="U0BOT")["user"]["is_bot"] is True
    with pytest.raises(SlackApiError) as excinfo:
        web.users_info(user="U404")
    assert api_error(excinfo) == "user_not_found"


def test_usergroups_list_includes_members_only_when_asked(fake: FakeSlack, web: WebClient) -> None:
    fake.add_usergroup("S1", "flux-admins", "Flux admins", ["U1", "U2"])
    fake.add_usergroup("S2", "old", "Old", ["U3"], disabled=True)
    [group] = web.usergroups_list(include_users=True)["usergroups"]
    assert (group["id"], group["handle"], group["users"]) == ("S1", "flux-admins", ["U1", "U2"])
    assert group["user_count"] == 2
    assert "users" not in web.usergroups_list()["usergroups"][0]
    assert len(web.usergroups_list(include_disabled=True)["usergroups"]) == 2


def test_usergroups_users_list_follows_membership_changes(fake: FakeSlack, web: WebClient) -> None:
    fake.add_usergroup("S1", "flux-admins", "Flux admins", ["U1"])
    assert web.usergroups_users_list(usergroup="S1")["users"] == ["U1"]
    fake.set_usergroup_users("S1", ["U2", "U3"])
    assert web.usergroups_users_list(usergroup="S1")["users"] == ["U2", "U3"]
    with pytest.raises(SlackApiError) as excinfo:
        web.usergroups_users_list(usergroup="S404")
    assert api_error(excinfo) == "no_such_subteam"


# --- views ---------------------------------------------------------------------------------


def test_views_open_stores_the_view_and_returns_its_id(fake: FakeSlack, web: WebClient) -> None:
    trigger = fake.issue_trigger_id("U1")
    view = web.views_open(trigger_id=trigger, view=modal())["view"]
    assert view["id"].startswith("V")
    assert view["callback_id"] == "reconcile"
    assert fake.view(view["id"])["title"]["text"] == "Reconcile"


def test_trigger_id_is_single_use(fake: FakeSlack, web: WebClient) -> None:
    trigger = fake.issue_trigger_id()
    web.views_open(trigger_id=trigger, view=modal())
    with pytest.raises(SlackApiError) as excinfo:
        web.views_open(trigger_id=trigger, view=modal())
    assert api_error(excinfo) == "exchanged_trigger_id"
    with pytest.raises(SlackApiError) as excinfo:
        web.views_open(trigger_id="123.456.unknown", view=modal())
    assert api_error(excinfo) == "invalid_trigger_id"


def test_trigger_id_expires() -> None:
    with FakeSlack(trigger_ttl=0.05) as fake:
        web = WebClient(token=TOKEN, base_url=fake.api_url)
        trigger = fake.issue_trigger_id()
        time.sleep(0.1)
        with pytest.raises(SlackApiError) as excinfo:
            web.views_open(trigger_id=trigger, view=modal())
        assert api_error(excinfo) == "expired_trigger_id"


def test_invalid_view_is_rejected_without_using_up_the_trigger(
    fake: FakeSlack, web: WebClient
) -> None:
    trigger = fake.issue_trigger_id()
    with pytest.raises(SlackApiError) as excinfo:
        web.views_open(trigger_id=trigger, view=modal(title="t" * 25))
    assert api_error(excinfo) == "invalid_arguments"
    assert excinfo.value.response["response_metadata"]["messages"] == [
        "[ERROR] must be less than 25 characters [json-pointer:/view/title/text]"
    ]
    assert web.views_open(trigger_id=trigger, view=modal())["ok"]


@pytest.mark.parametrize(
    ("view", "pointer"),
    [
        (modal(private_metadata="m" * 3001), "/view/private_metadata"),
        (modal(close={"type": "plain_text", "text": "c" * 25}), "/view/close/text"),
        ({**modal(), "blocks": [{"type": "divider"}] * 101}, "/view/blocks"),
        ({**modal(), "submit": None}, "/view"),
    ],
    ids=["private_metadata", "close", "101 blocks", "input without submit"],
)
def test_modal_limits(view: dict[str, Any], pointer: str) -> None:
    errors = validate_view(view)
    assert any(e.endswith(f"[json-pointer:{pointer}]") for e in errors), errors


def test_views_update_by_id_checks_the_hash(fake: FakeSlack, web: WebClient) -> None:
    view = web.views_open(trigger_id=fake.issue_trigger_id(), view=modal())["view"]
    updated = web.views_update(view_id=view["id"], hash=view["hash"], view=modal("Done"))["view"]
    assert updated["id"] == view["id"]
    assert fake.view(view["id"])["title"]["text"] == "Done"
    with pytest.raises(SlackApiError) as excinfo:
        web.views_update(view_id=view["id"], hash=view["hash"], view=modal("Again"))
    assert api_error(excinfo) == "hash_conflict"
    with pytest.raises(SlackApiError) as excinfo:
        web.views_update(view_id="V404", view=modal())
    assert api_error(excinfo) == "not_found"


def test_views_push_stacks_at_most_three_views(fake: FakeSlack, web: WebClient) -> None:
    root = web.views_open(trigger_id=fake.issue_trigger_id("U1"), view=modal())["view"]
    second = web.views_push(trigger_id=fake.issue_trigger_id("U1"), view=modal("2"))["view"]
    assert (second["root_view_id"], second["previous_view_id"]) == (root["id"], root["id"])
    web.views_push(trigger_id=fake.issue_trigger_id("U1"), view=modal("3"))
    with pytest.raises(SlackApiError) as excinfo:
        web.views_push(trigger_id=fake.issue_trigger_id("U1"), view=modal("4"))
    assert api_error(excinfo) == "push_limit_reached"


# --- response_url --------------------------------------------------------------------------


def test_response_url_defaults_to_an_ephemeral_reply(fake: FakeSlack) -> None:
    url = fake.new_response_url("C1", "U1")
    resp = WebhookClient(url).send(text="working on it")
    assert (resp.status_code, resp.body) == (200, "ok")
    [msg] = fake.messages("C1")
    assert (msg["text"], msg["ephemeral_user"]) == ("working on it", "U1")
    [record] = fake.responses(url)
    assert record.payload["text"] == "working on it"
    assert (record.channel, record.user, record.message_ts) == ("C1", "U1", msg["ts"])


def test_response_url_in_channel_posts_a_visible_message(fake: FakeSlack) -> None:
    url = fake.new_response_url("C1", "U1")
    WebhookClient(url).send(text="reconciled", response_type="in_channel")
    [msg] = fake.messages("C1")
    assert msg["ephemeral_user"] is None
    assert msg["user"] == "U0BOT"


def test_response_url_allows_five_uses_then_says_used_url(fake: FakeSlack) -> None:
    client = WebhookClient(fake.new_response_url("C1", "U1"))
    statuses = [client.send(text=f"{i}").status_code for i in range(5)]
    assert statuses == [200] * 5
    sixth = client.send(text="6")
    assert (sixth.status_code, sixth.body) == (404, "used_url")
    assert len(fake.messages("C1")) == 5


def test_response_url_expires() -> None:
    with FakeSlack(response_url_ttl=0.05) as fake:
        client = WebhookClient(fake.new_response_url("C1", "U1"))
        time.sleep(0.1)
        resp = client.send(text="late")
        assert (resp.status_code, resp.body) == (404, "expired_url")


def test_response_url_replace_original_replaces_the_clicked_message(
    fake: FakeSlack, web: WebClient
) -> None:
    ts = web.chat_postMessage(channel="C1", text="approve?", blocks=[actions(button("ok"))])["ts"]
    url = fake.new_response_url("C1", "U1", message_ts=ts)
    assert "/actions/" in url
    resp = WebhookClient(url).send(text="approved by <@U1>", replace_original=True)
    assert resp.status_code == 200
    [msg] = fake.messages("C1")
    assert (msg["ts"], msg["text"], msg["blocks"]) == (ts, "approved by <@U1>", [])


def test_response_url_delete_original_removes_the_message(fake: FakeSlack, web: WebClient) -> None:
    ts = web.chat_postMessage(channel="C1", text="x")["ts"]
    resp = WebhookClient(fake.new_response_url("C1", "U1", message_ts=ts)).send_dict(
        {"delete_original": True}
    )
    assert resp.status_code == 200
    assert fake.messages("C1") == []


def test_response_url_rejects_invalid_blocks_with_400(fake: FakeSlack) -> None:
    client = WebhookClient(fake.new_response_url("C1", "U1"))
    resp = client.send(text="x", blocks=[section(str(i)) for i in range(51)])
    assert (resp.status_code, resp.body) == (400, "invalid_blocks")
    assert (client.send(text="").status_code, client.send(text="").body) == (400, "no_text")
    assert fake.messages("C1") == []


def test_response_url_posts_into_a_thread(fake: FakeSlack, web: WebClient) -> None:
    parent = web.chat_postMessage(channel="C1", text="deploy")["ts"]
    url = fake.new_response_url("C1", "U1")
    WebhookClient(url).send_dict(
        {"text": "step", "response_type": "in_channel", "thread_ts": parent}
    )
    assert fake.messages("C1")[-1]["thread_ts"] == parent


def test_response_url_faults(fake: FakeSlack) -> None:
    client = WebhookClient(fake.new_response_url("C1", "U1"))
    fake.fail(RESPONSE_URL, error="internal_error", status=500)
    assert client.send(text="x").status_code == 500
    fake.rate_limit(RESPONSE_URL, retry_after=2)
    resp = client.send(text="x")
    assert (resp.status_code, resp.headers["Retry-After"]) == (429, "2")
    assert client.send(text="x").status_code == 200


def test_wait_for_response_returns_as_soon_as_posts_arrive(fake: FakeSlack) -> None:
    url = fake.new_response_url("C1", "U1")
    timer = threading.Timer(0.05, lambda: WebhookClient(url).send(text="late answer"))
    timer.start()
    try:
        [record] = fake.wait_for_response(count=1, timeout=5)
    finally:
        timer.join()
    assert record.payload["text"] == "late answer"
    with pytest.raises(TimeoutError):
        fake.wait_for_response(count=2, timeout=0.05)


@pytest.mark.filterwarnings(NO_TEXT_WARNING)
def test_reset_forgets_traffic_but_keeps_the_directory(fake: FakeSlack, web: WebClient) -> None:
    fake.add_user("U1", "alice")
    web.chat_postMessage(channel="C1", blocks=[section("x")])
    fake.fail("auth.test", times=None)
    fake.reset()
    assert (fake.calls(), fake.messages("C1"), fake.warnings) == ([], [], [])
    assert web.auth_test()["ok"]
    assert web.users_info(user="U1")["ok"]


def test_hundreds_of_calls_per_second(fake: FakeSlack, web: WebClient) -> None:
    urls = [fake.new_response_url("C1", f"U{i}") for i in range(100)]
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=20) as pool:
        list(pool.map(lambda u: WebhookClient(u).send(text="ok"), urls))
        list(pool.map(lambda i: web.chat_postMessage(channel="C1", text=str(i)), range(100)))
    elapsed = time.perf_counter() - start
    assert len(fake.wait_for_response(count=100)) == 100
    assert len(fake.messages("C1")) == 200
    assert elapsed < 3.0


# --- the signed-request helper -------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 resets connections when a burst of 100 commands arrives.
    request_queue_size = 256
    daemon_threads = True


class _VerifyingReceiver:
    """A stand-in for the bot's /slack/events: 200 if SignatureVerifier accepts, else 401."""

    def __init__(self, secret: str) -> None:
        verifier = SignatureVerifier(secret)
        self.bodies: list[bytes] = []
        received = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                received.append(body)
                ok = verifier.is_valid_request(body, dict(self.headers))
                self.send_response(200 if ok else 401)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = _Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/slack/events"
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[_VerifyingReceiver]:
    server = _VerifyingReceiver(SECRET)
    yield server
    server.close()


def test_signed_requests_pass_signature_verification(
    fake: FakeSlack, receiver: _VerifyingReceiver
) -> None:
    slack = SlackClient(receiver.url, SECRET, fake=fake)
    reply = slack.slash_command("/flux", "get ks prod", user_id="U1", channel_id="C1")
    assert reply.status == 200
    assert reply.elapsed > 0
    assert reply.sent["command"] == "/flux"
    assert reply.response_url is not None
    assert reply.response_url.startswith(fake.url + "/commands/")
    headers = slack.sign(receiver.bodies[-1])
    assert SignatureVerifier(SECRET).is_valid_request(receiver.bodies[-1], headers)


@pytest.mark.parametrize(
    "options",
    [{"bad_signature": True}, {"stale": True}, {"signed": False}],
    ids=["bad signature", "stale timestamp", "unsigned"],
)
def test_bad_or_stale_signatures_fail_verification(
    receiver: _VerifyingReceiver, options: dict[str, Any]
) -> None:
    slack = SlackClient(receiver.url, SECRET)
    assert slack.slash_command("/flux", "help", **options).status == 401


def test_block_action_and_view_submission_are_signed_interaction_forms(
    fake: FakeSlack, web: WebClient, receiver: _VerifyingReceiver
) -> None:
    slack = SlackClient(receiver.url, SECRET, fake=fake)
    ts = web.chat_postMessage(
        channel="C1", text="x", blocks=[actions(button("approve", value="prod"), block_id="b1")]
    )["ts"]
    reply = slack.click("C1", ts, "approve", user_id="U1")
    assert reply.status == 200
    [action] = reply.sent["actions"]
    assert (action["action_id"], action["block_id"], action["value"]) == ("approve", "b1", "prod")
    assert reply.sent["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C1",
        "is_ephemeral": False,
    }
    # The response_url of a click replaces the clicked message.
    WebhookClient(reply.response_url).send(text="approved", replace_original=True)
    assert fake.message("C1", ts)["text"] == "approved"

    view = web.views_open(trigger_id=fake.issue_trigger_id("U1"), view=modal())["view"]
    reply = slack.submit_view(view["id"], {"target": {"name": "apps"}}, user_id="U1")
    assert reply.status == 200
    assert reply.sent["view"]["state"]["values"] == {
        "target": {"name": {"type": "plain_text_input", "value": "apps"}}
    }
    body = receiver.bodies[-1].decode()
    assert body.startswith("payload=")


# --- end to end with a real Bolt app -------------------------------------------------------


def test_a_bolt_app_answers_a_burst_of_signed_commands_through_the_fake(fake: FakeSlack) -> None:
    from slack_bolt import App, BoltRequest

    app = App(
        token=TOKEN,
        signing_secret=SECRET,
        client=WebClient(token=TOKEN, base_url=fake.api_url),
    )

    @app.command("/flux")
    def flux(ack: Any, respond: Any, command: dict[str, Any]) -> None:
        ack()
        respond(text=f"you said {command['text']}")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            resp = app.dispatch(BoltRequest(body=body, headers=dict(self.headers)))
            self.send_response(resp.status)
            self.end_headers()
            self.wfile.write(resp.body.encode())

        def log_message(self, *args: Any) -> None:
            pass

    server = _Server(("127.0.0.1", 0), Handler)
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    ).start()
    try:
        slack = SlackClient(
            f"http://127.0.0.1:{server.server_address[1]}/slack/events", SECRET, fake=fake
        )
        assert slack.slash_command("/flux", "x", bad_signature=True).status == 401
        replies = slack.slash_commands(
            [{"command": "/flux", "text": str(i), "user_id": f"U{i}"} for i in range(100)]
        )
        assert [r.status for r in replies] == [200] * 100
        records = fake.wait_for_response(count=100, timeout=10)
        assert sorted(r.payload["text"] for r in records) == sorted(
            f"you said {i}" for i in range(100)
        )
        assert fake.calls("auth.test")
    finally:
        server.shutdown()
        server.server_close()


# --- Socket Mode, through slack_sdk's built-in SocketModeClient -----------------------------


class _SocketApp:
    """A Socket Mode app: slack_sdk's built-in client, recording what it gets and acking it."""

    def __init__(self, fake: FakeSlack, ack_payload: dict[str, Any] | None = None) -> None:
        self.client = SocketModeClient(
            app_token=fake.app_token, web_client=WebClient(base_url=fake.api_url)
        )
        self.ack_payload = ack_payload
        self.messages: list[dict[str, Any]] = []
        self.requests: list[SocketModeRequest] = []
        # Every text frame, even `disconnect`, which the client handles without its listeners.
        self.client.on_message_listeners.append(lambda raw: self.messages.append(json.loads(raw)))
        self.client.socket_mode_request_listeners.append(self._on_request)

    def close(self) -> None:
        # The client's message loop polls its queue once a second: stop it and wake it now.
        self.client.closed = True
        self.client.message_queue.put(None)
        self.client.close()

    def _on_request(self, client: BaseSocketModeClient, request: SocketModeRequest) -> None:
        self.requests.append(request)
        client.send_socket_mode_response(
            SocketModeResponse(envelope_id=request.envelope_id, payload=self.ack_payload)
        )


@pytest.fixture
def socket_app(fake: FakeSlack) -> Iterator[Any]:
    """Makes connected _SocketApps; all are closed after the test."""
    apps: list[_SocketApp] = []

    def connect(ack_payload: dict[str, Any] | None = None) -> _SocketApp:
        app = _SocketApp(fake, ack_payload)
        apps.append(app)
        app.client.connect()
        return app

    yield connect
    # Closing from Slack's side first spares each client a blocked 3 s socket read.
    fake.close_sockets()
    with ThreadPoolExecutor() as pool:
        list(pool.map(_SocketApp.close, apps))


def test_apps_connections_open_takes_only_the_app_token(fake: FakeSlack) -> None:
    resp = WebClient(base_url=fake.api_url).apps_connections_open(app_token=fake.app_token)
    assert resp["url"].startswith(f"ws://127.0.0.1:{fake.port}/link/?ticket=")
    assert fake.calls("apps.connections.open")[0].token == fake.app_token
    for token, error in [(TOKEN, "not_allowed_token_type"), ("xapp-wrong", "invalid_auth")]:
        with pytest.raises(SlackApiError) as excinfo:
            WebClient(base_url=fake.api_url).apps_connections_open(app_token=token)
        assert api_error(excinfo) == error
    with pytest.raises(SlackApiError) as excinfo:
        WebClient(base_url=fake.api_url).api_call("apps.connections.open")
    assert api_error(excinfo) == "not_authed"


def test_socket_mode_client_gets_hello_then_a_command_and_its_ack_is_recorded(
    fake: FakeSlack, socket_app: Any
) -> None:
    app = socket_app()
    [connection] = fake.wait_for_socket()
    assert fake.socket_connections() == 1
    envelope_id = fake.send_slash_command(
        "/flux", "status production", user_id="U1", channel_id="C1"
    )
    ack = fake.wait_for_ack(envelope_id)
    assert (ack.type, ack.socket, ack.payload) == ("slash_commands", connection.id, None)
    assert ack.in_time
    assert 0 <= ack.seconds < 3

    hello = app.messages[0]
    assert hello["type"] == "hello"
    assert hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": fake.app_id}
    [request] = app.requests
    assert (request.type, request.envelope_id) == ("slash_commands", envelope_id)
    assert request.accepts_response_payload is True
    payload = request.payload
    assert (payload["command"], payload["text"]) == ("/flux", "status production")
    assert (payload["user_id"], payload["channel_id"], payload["team_id"]) == ("U1", "C1", "T0FAKE")
    # The response_url and trigger_id in the payload are live.
    WebhookClient(payload["response_url"]).send(text="on it")
    assert fake.responses(payload["response_url"])[0].ok
    WebClient(token=TOKEN, base_url=fake.api_url).views_open(
        trigger_id=payload["trigger_id"], view=modal()
    )
    envelope = fake.envelope(envelope_id)
    assert envelope is not None
    assert envelope.response_url == payload["response_url"]
    assert fake.warnings == []


def test_an_ack_with_a_payload_answers_the_command_as_an_ephemeral(
    fake: FakeSlack, socket_app: Any
) -> None:
    socket_app(ack_payload={"text": "working on it"})
    fake.wait_for_socket()
    envelope_id = fake.send_slash_command("/flux", "status", user_id="U1", channel_id="C1")
    assert fake.wait_for_ack(envelope_id).payload == {"text": "working on it"}
    [msg] = fake.messages("C1")
    assert (msg["text"], msg["ephemeral_user"]) == ("working on it", "U1")


def test_interactions_arrive_as_interactive_envelopes(fake: FakeSlack, socket_app: Any) -> None:
    app = socket_app()
    fake.wait_for_socket()
    slack = SlackClient.socket_mode(fake)
    click = slack.block_action({"type": "button", "action_id": "share", "value": "x"})
    assert (click.status, click.body) == (200, "")
    submit = slack.view_submission(modal(), {"target": {"name": "apps"}})
    assert submit.status == 200
    with pytest.raises(TypeError, match="not signed"):
        slack.slash_command("/flux", bad_signature=True)

    assert [(r.type, r.payload["type"], r.accepts_response_payload) for r in app.requests] == [
        ("interactive", "block_actions", False),
        ("interactive", "view_submission", True),
    ]
    assert app.requests[0].envelope_id == click.envelope_id
    assert app.requests[0].payload["actions"][0]["action_id"] == "share"
    assert [a.envelope_id for a in fake.acks()] == [click.envelope_id, submit.envelope_id]


def test_each_envelope_goes_to_exactly_one_connection_round_robin(
    fake: FakeSlack, socket_app: Any
) -> None:
    first, second = socket_app(), socket_app()
    fake.wait_for_socket(2)
    sent = [fake.send_slash_command("/flux", str(i)) for i in range(6)]
    for envelope_id in sent:
        fake.wait_for_ack(envelope_id)
    assert len(first.requests) == len(second.requests) == 3
    assert sorted(r.envelope_id for r in first.requests + second.requests) == sorted(sent)
    assert [s.envelopes for s in fake.sockets()] == [3, 3]
    assert len(fake.acks()) == 6


def test_disconnect_makes_the_client_reconnect_and_the_old_connection_closes(
    fake: FakeSlack, socket_app: Any
) -> None:
    app = socket_app()
    [old] = fake.wait_for_socket()
    assert fake.disconnect_sockets(close_after=0.2) == 1
    assert fake.socket_connections() == 0  # a connection told to go gets no more envelopes
    [new] = fake.wait_for_socket()
    assert new.id != old.id
    fake.wait_for(lambda: not fake.sockets()[0].open, what="the old connection to close")
    assert fake.sockets()[0].disconnect_reason == "refresh_requested"
    assert len(fake.calls("apps.connections.open")) == 2

    envelope_id = fake.send_slash_command("/flux", "status")
    assert fake.wait_for_ack(envelope_id).socket == new.id
    assert [m["type"] for m in app.messages if "envelope_id" not in m] == [
        "hello",
        "disconnect",
        "hello",
    ]


def test_a_socket_url_works_once(fake: FakeSlack) -> None:
    url = WebClient(base_url=fake.api_url).apps_connections_open(app_token=fake.app_token)["url"]

    async def connect() -> dict[str, Any]:
        async with aiohttp.ClientSession() as session, session.ws_connect(url) as ws:
            hello: dict[str, Any] = await ws.receive_json(timeout=5)
            with pytest.raises(aiohttp.WSServerHandshakeError) as excinfo:
                await session.ws_connect(url)
            assert excinfo.value.status == 401
            return hello

    assert asyncio.run(connect())["type"] == "hello"
    fake.wait_for(lambda: not fake.sockets()[0].open, what="the connection to close")
    assert any("used ticket" in w for w in fake.warnings)


def test_sending_an_envelope_needs_a_connection(fake: FakeSlack) -> None:
    with pytest.raises(RuntimeError, match="no Socket Mode connection"):
        fake.send_slash_command("/flux", "status")
    assert fake.envelopes() == []
