"""The buttons on an object (Reconcile, Reconcile with source, Suspend…, Resume): checks,
the action, its outcome in place and its audit trail, in-process against fake Slack and fake
clusters with fake Flux controllers."""

from __future__ import annotations

import http.server
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from bot.actions.buttons import ButtonPayload, sign
from bot.slack.credentials import SlackCredentials
from tests.bot_process import SECRET, buttons, texts
from tests.flux_objects import condition
from tests.slack.world import (
    DEV,
    GONE,
    GUEST,
    KS,
    NOBODY,
    OPS,
    World,
    bump,
    until,
)


def test_an_operator_reconciles_from_the_button_and_sees_the_outcome_in_place(world: World) -> None:
    world.start()
    answer = world.view(OPS, DEV, "get ks apps")
    offered = buttons(answer)
    assert {"Reconcile", "Reconcile with source", "Suspend…"} <= set(offered)
    world.dev.clear_requests()

    reply = world.click(OPS, DEV, offered["Reconcile"])
    assert reply.status == 200
    assert reply.elapsed < 3
    result = world.outcome(reply, count=2)

    assert "Reconciled Kustomization flux-system/apps on dev-1 in" in result
    assert "applied revision main@sha1:ffff" in result
    # The ephemeral answer keeps the object's view: the outcome takes its buttons' place.
    final = world.final(reply, count=2)
    assert final["replace_original"] is True
    assert "*Kustomization* `flux-system/apps` on *dev-1*" in texts(final)
    assert "*Conditions*" in result
    assert final["blocks"][1]["text"]["text"].startswith(":white_check_mark: Reconciled")
    assert not [b for b in final["blocks"] if b["type"] == "actions"]
    (patch,) = world.writes(world.dev)
    assert patch.method == "PATCH"
    assert patch.content_type == "application/merge-patch+json"
    assert patch.field_manager == "flux-client-side-apply"
    assert list(patch.body["metadata"]["annotations"]) == ["reconcile.fluxcd.io/requestedAt"]
    # The audit trail: an Event Flux's notification-controller would forward, and a reply.
    (event,) = world.events(world.dev)
    assert event["reason"] == "WebAction"
    assert event["involvedObject"]["name"] == "apps"
    assert event["metadata"]["annotations"]["event.toolkit.fluxcd.io/action"] == "reconcile"
    assert event["metadata"]["annotations"]["event.toolkit.fluxcd.io/username"] == "u0ops"
    # The reply names who, what, where, and how it went, without pinging anyone.
    audit = world.slack.wait_for_message(DEV, lambda m: "u0ops reconciled" in m["text"])
    assert audit["text"] == (
        "u0ops reconciled Kustomization flux-system/apps · development/dev-1 → :white_check_mark:"
    )


@pytest.mark.parametrize(
    ("user", "why"),
    [
        (NOBODY, "reconcile in development needs the role operators or sre"),
        (GUEST, "guest accounts cannot act"),
        (GONE, "deactivated users cannot act"),
    ],
)
def test_denied_users_are_told_why_and_nothing_is_written(
    world: World, user: str, why: str
) -> None:
    world.start()
    offered = buttons(world.view(user, DEV, "get ks apps"))
    world.dev.clear_requests()
    result = world.outcome(world.click(user, DEV, offered["Reconcile"]))
    assert why in result
    text_reply = world.bot.command("reconcile ks apps", DEV, user=user)  # type: ignore[union-attr]
    assert why in texts(world.bot.answer(text_reply))  # type: ignore[union-attr]
    time.sleep(0.3)
    assert world.writes(world.dev) == []


def test_forged_and_expired_buttons_are_refused(world: World) -> None:
    world.start()
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    world.dev.clear_requests()
    version, body, mac = offered["Reconcile"]["value"].split(".")
    forged = {**offered["Reconcile"], "value": f"{version}.{body[:-2]}AA.{mac}"}
    assert "signature does not match" in world.outcome(world.click(OPS, DEV, forged))

    key = SlackCredentials.from_env(
        http=True, env={"SLACK_BOT_TOKEN": world.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET}
    ).button_key_bytes()
    old = ButtonPayload(a="reconcile", e="development", c="dev-1", k="Kustomization",
                        ns="flux-system", n="apps", x=int(time.time()) - 1, i="n1")  # fmt: skip
    expired = {"action_id": "flux_act:n1", "value": sign(old, key)}
    assert "expired" in world.outcome(world.click(OPS, DEV, expired))
    time.sleep(0.3)
    assert world.writes(world.dev) == []


def test_a_click_on_stale_information_shows_the_fresh_state_instead(world: World) -> None:
    world.start()
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    world.dev.set_status(*KS, "apps", {"observedGeneration": 1, "conditions": [condition()]})
    time.sleep(0.3)  # let the watch cache see the recovery
    world.dev.clear_requests()
    result = world.outcome(world.click(OPS, DEV, offered["Reconcile"]))
    assert "changed since that message: it is now ready" in result
    assert "Nothing was done" in result
    assert world.writes(world.dev) == []


def test_double_clicks_and_retries_run_the_action_once(world: World) -> None:
    world.start()
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    world.dev.clear_requests()
    with ThreadPoolExecutor(4) as pool:
        replies = list(pool.map(lambda _: world.click(OPS, DEV, offered["Reconcile"]), range(4)))
    assert all(r.status == 200 for r in replies)
    until(lambda: world.writes(world.dev))
    time.sleep(1)
    assert len(world.writes(world.dev)) == 1


def test_kubernetes_rbac_of_the_slack_user_is_checked_when_configured(world: World) -> None:
    world.start(sar=True)
    world.dev.clear_requests()
    denied = texts(world.view(OPS, DEV, "reconcile ks apps"))
    assert (
        "Not allowed by Kubernetes RBAC: slack:U0OPS may not reconcile "
        "Kustomization flux-system/apps" in denied
    )
    assert world.writes(world.dev) == []
    world.dev.grant_review(user="slack:U0OPS", verb="reconcile", resource="kustomizations")
    reply = world.bot.command("reconcile ks apps", DEV, user=OPS)  # type: ignore[union-attr]
    assert "Reconciled Kustomization flux-system/apps" in world.outcome(reply, count=2)


def test_status_lines_offer_the_actions_of_each_failing_and_suspended_object(world: World) -> None:
    world.start()
    status = world.view(OPS, DEV, "status")
    menus = [b for b in buttons(status).values() if b["action_id"].startswith("flux_menu:")]
    assert menus, "each failing line carries an Actions… button"
    answer = world.outcome(world.click(OPS, DEV, menus[0]))
    assert "Reconcile" in answer or "Resume" in answer


def test_a_failed_attempt_at_a_new_generation_is_reported_at_once(world: World) -> None:
    """kustomize-controller keeps status.observedGeneration behind after a failure; the Ready
    condition's own observedGeneration says the new generation failed (cmd/flux/readiness.go)."""
    world.controllers[0].failures[("Kustomization", "flux-system", "apps")] = "build failed: x"
    world.start(follow=30)
    bump(world.dev, KS, "apps", path="./apps/v2")
    until(lambda: (o := world.dev.get(*KS, "apps")) and o["status"]["conditions"][0]
           ["observedGeneration"] == 2)  # fmt: skip
    started = time.monotonic()
    reply = world.bot.command("reconcile ks apps", DEV, user=OPS)  # type: ignore[union-attr]
    result = world.outcome(reply)
    assert "Reconcile of Kustomization flux-system/apps on dev-1 failed after" in result
    assert "build failed: x" in result
    assert time.monotonic() - started < 10


def test_a_reconcile_not_done_in_time_is_still_progressing_never_a_success(world: World) -> None:
    world.controllers[0].delay = 30
    world.start(follow=1)
    reply = world.bot.command("reconcile ks apps", DEV, user=OPS)  # type: ignore[union-attr]
    result = world.outcome(reply)
    assert result.startswith(":hourglass: Reconcile of Kustomization flux-system/apps on dev-1 "
                             "is still progressing after")  # fmt: skip
    assert ":white_check_mark:" not in result


def test_with_source_stops_when_the_source_is_not_ready_in_the_cli_words(world: World) -> None:
    world.controllers[0].failures[("GitRepository", "flux-system", "flux-system")] = (
        "auth failed: revoked deploy key"
    )
    world.start()
    world.dev.clear_requests()
    reply = world.bot.command("reconcile ks apps --with-source", DEV, user=OPS)  # type: ignore[union-attr]
    result = world.outcome(reply)
    assert (
        "GitRepository reconciliation failed: 'auth failed: revoked deploy key'; Kustomization "
        "flux-system/apps on dev-1 was not reconciled." in result
    )
    patched = [r.path.rsplit("/", 2)[-2] for r in world.writes(world.dev)]
    assert patched == ["gitrepositories"]


def test_with_source_is_refused_when_the_source_is_suspended(world: World) -> None:
    world.start()
    git = ("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system")
    bump(world.dev, git, "flux-system", suspend=True)
    time.sleep(0.3)
    world.dev.clear_requests()
    answer = texts(world.view(OPS, DEV, "reconcile ks apps --with-source"))
    assert "source GitRepository flux-system/flux-system is suspended; resume it first" in answer
    assert world.writes(world.dev) == []


def test_an_outcome_past_the_response_url_lifetime_still_reaches_the_person(
    world: World,
) -> None:
    """response_url works 30 minutes (here: 1 s); the outcome of a long action comes directly."""
    world.controllers[0].delay = 2
    world.start(follow=20)
    world.slack.response_url_ttl = 1.0
    world.bot.command("reconcile ks apps", DEV, user=OPS)  # type: ignore[union-attr]
    direct = world.slack.wait_for_message(OPS, lambda m: "Reconciled" in m["text"], timeout=15)
    assert "Reconciled Kustomization flux-system/apps on dev-1" in direct["text"]


def test_an_expired_button_shows_the_current_state_it_promised(world: World) -> None:
    world.start()
    key = SlackCredentials.from_env(
        http=True, env={"SLACK_BOT_TOKEN": world.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET}
    ).button_key_bytes()
    old = ButtonPayload(a="reconcile", e="development", c="dev-1", k="Kustomization",
                        ns="flux-system", n="apps", x=int(time.time()) - 1, i="x1")  # fmt: skip
    shown = world.final(
        world.click(OPS, DEV, {"action_id": "flux_act:x1", "value": sign(old, key)})
    )
    assert "this button has expired; here is the current state" in texts(shown)
    assert "kustomize build failed" in texts(shown)
    assert "Reconcile" in buttons(shown)  # fresh buttons, usable


def test_a_failed_action_on_a_channel_message_keeps_buttons_to_retry(world: World) -> None:
    world.controllers[0].failures[("Kustomization", "flux-system", "apps")] = "build failed: y"
    world.start()
    answer = world.view(OPS, DEV, "get ks apps")
    # The answer, shared in the channel (as the Share button does).
    ts = world.slack.add_message(
        DEV, answer["text"], user=world.slack.bot_user_id, blocks=answer["blocks"]
    )
    posted = {"ts": ts, "type": "message", "text": answer["text"], "blocks": answer["blocks"]}
    offered = buttons(posted)
    reply = world.click(OPS, DEV, offered["Reconcile"], ephemeral=False, message=posted)
    failed = world.final(reply, count=2)
    assert "build failed: y" in texts(failed)
    retry = buttons(failed)["Reconcile"]
    assert retry["value"] != offered["Reconcile"]["value"]  # a fresh button, not the used one
    again = world.final(world.click(OPS, DEV, retry, ephemeral=False, message=posted), count=2)
    assert "build failed: y" in texts(again)


def test_audit_events_are_forwarded_to_notification_controller(
    world: World, tmp_path: Path
) -> None:
    """Kubernetes Events never reach Flux Alerts; the event is POSTed like the controllers'."""
    received: list[dict[str, Any]] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            received.append(json.loads(self.rfile.read(length)))
            self.send_response(202)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        world.start(events=f"http://127.0.0.1:{server.server_port}/")
        reply = world.bot.command("reconcile ks apps", DEV, user=OPS)  # type: ignore[union-attr]
        assert "Reconciled" in world.outcome(reply)
        event = until(lambda: received and received[0])
    finally:
        server.shutdown()
    assert event["involvedObject"]["kind"] == "Kustomization"
    assert event["involvedObject"]["name"] == "apps"
    assert event["severity"] == "info"
    assert event["reason"] == "WebAction"
    assert event["reportingController"] == "fluxbot"
    assert event["metadata"]["event.toolkit.fluxcd.io/username"] == "u0ops"


def test_an_outcome_past_the_response_url_updates_the_channel_message(world: World) -> None:
    """On a channel message, chat.update has no 30-minute or 5-use cap."""
    world.controllers[0].delay = 2
    world.start(follow=20)
    answer = world.view(OPS, DEV, "get ks apps")
    ts = world.slack.add_message(
        DEV, answer["text"], user=world.slack.bot_user_id, blocks=answer["blocks"]
    )
    posted = {"ts": ts, "type": "message", "text": answer["text"], "blocks": answer["blocks"]}
    world.slack.response_url_ttl = 1.0
    world.click(OPS, DEV, buttons(posted)["Reconcile"], ephemeral=False, message=posted)
    updated = world.slack.wait_for(
        lambda: [c for c in world.slack.calls("chat.update") if "Reconciled" in str(c.params)],
        timeout=15,
    )
    assert updated[0].params["ts"] == ts
