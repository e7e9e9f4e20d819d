"""The action forms (the suspend form, typed confirmation): opened within the trigger's 3 s,
their own mistakes answered in the ack, the action after it; in-process."""

from __future__ import annotations

import json
import time

from tests.bot_process import buttons, texts
from tests.slack.world import (
    DEV,
    KS,
    OPS,
    World,
    until,
)


def test_suspend_asks_why_records_it_and_offers_resume(world: World) -> None:
    world.start()
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    world.dev.clear_requests()
    world.click(OPS, DEV, offered["Suspend…"])
    # The form opens at once (the trigger_id lives 3 s), then is filled once checked.
    (opened,) = world.slack.wait_for_call("views.open")
    assert opened.ok, opened.response
    world.slack.wait_for_call("views.update")
    view = world.slack.views()[-1]
    assert view["callback_id"] == "flux_suspend"
    assert world.writes(world.dev) == []

    empty = world.bot.client.submit_view(view["id"], {"reason": {"reason": " "}}, user_id=OPS)  # type: ignore[union-attr]
    assert empty.json()["response_action"] == "errors"
    assert "reason" in empty.json()["errors"]

    submitted = world.bot.client.submit_view(  # type: ignore[union-attr]
        view["id"],
        {"reason": {"reason": "database migration window"}, "expiry": {"expiry": "4h"}},
        user_id=OPS,
    )
    assert submitted.status == 200
    stored = until(lambda: (o := world.dev.get(*KS, "apps")) and o["spec"].get("suspend") and o)
    annotations = stored["metadata"]["annotations"]
    assert annotations["fluxbot.io/suspended-by"] == "u0ops"
    assert annotations["fluxcd.controlplane.io/suspendedBy"] == "u0ops"
    assert annotations["fluxbot.io/suspend-reason"] == "database migration window"
    assert "fluxbot.io/suspended-until" in annotations
    assert annotations["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"

    shown = world.slack.wait_for(
        lambda: [
            r for r in world.slack.responses() if "Suspended Kustomization" in texts(r.payload)
        ]
    )
    # Until when, as a Slack date each reader sees in their own time zone.
    assert "until <!date^" in texts(shown[-1].payload)
    resume = buttons(shown[-1].payload)["Resume"]
    result = world.outcome(world.click(OPS, DEV, resume), count=2)
    assert "Resumed Kustomization flux-system/apps on dev-1" in result
    resumed = world.dev.get(*KS, "apps")
    assert resumed is not None
    assert resumed["spec"]["suspend"] is False
    assert "fluxbot.io/suspended-by" not in resumed["metadata"].get("annotations", {})


def test_forms_open_within_the_trigger_and_submissions_are_acknowledged_before_checks(
    world: World,
) -> None:
    """The trigger_id expires 3 s after the click and a view submission must be answered
    within 3 s: the form opens before reading roles (slow here), and a submission is
    acknowledged before it is authorized."""
    world.start()
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    world.slack.latency("users.info", 2.0)
    world.slack.latency("usergroups.list", 2.0)
    world.click(OPS, DEV, offered["Suspend…"])
    (opened,) = world.slack.wait_for_call("views.open")
    assert opened.ok, opened.response
    world.slack.wait_for_call("views.update", timeout=15)
    view = world.slack.views()[-1]
    assert view["callback_id"] == "flux_suspend"
    event = {
        "type": "event_callback", "team_id": world.slack.team_id, "api_app_id": "A0FAKE",
        "event": {"type": "subteam_members_changed", "subteam_id": "S0SRE", "event_ts": "1.2"},
        "event_id": "Ev2", "event_time": int(time.time()),
    }  # fmt: skip
    world.bot.client.post(json.dumps(event), "application/json")  # type: ignore[union-attr]
    submitted = world.bot.client.submit_view(  # type: ignore[union-attr]
        view["id"], {"reason": {"reason": "freeze"}}, user_id=OPS
    )
    assert submitted.status == 200
    assert submitted.elapsed < 1.5
    until(lambda: (o := world.dev.get(*KS, "apps")) and o["spec"].get("suspend"), timeout=15)
