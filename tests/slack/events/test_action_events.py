"""Events around actions: a mention asking for one, a user group's members changing;
in-process."""

from __future__ import annotations

import json
import time

from tests.bot_process import buttons, texts
from tests.slack.world import (
    DEV,
    NOBODY,
    OPS,
    SRE1,
    World,
)


def test_a_user_group_change_event_refreshes_membership_at_once(world: World) -> None:
    world.start()
    world.view(SRE1, DEV, "reconcile ks paused")  # any role check reads the groups
    world.view(SRE1, DEV, "reconcile ks paused")
    before = len(world.slack.calls("usergroups.list"))
    assert before == 1, "membership is cached between checks"
    event = {
        "type": "event_callback",
        "team_id": world.slack.team_id,
        "api_app_id": "A0FAKE",
        "event": {"type": "subteam_members_changed", "subteam_id": "S0SRE", "event_ts": "1.2"},
        "event_id": "Ev1",
        "event_time": int(time.time()),
    }
    reply = world.bot.client.post(json.dumps(event), "application/json")  # type: ignore[union-attr]
    assert reply.status == 200
    world.view(SRE1, DEV, "reconcile ks paused")
    assert len(world.slack.calls("usergroups.list")) == before + 1


def test_an_action_asked_for_by_mention_is_offered_in_the_thread_and_runs_on_click(
    world: World,
) -> None:
    world.start()
    assert world.bot is not None
    incident = world.slack.add_message(DEV, "apps looks stuck", user=OPS)
    world.bot.client.app_mention(
        "reconcile ks apps", channel_id=DEV, user_id=OPS, thread_ts=incident
    )
    offer = world.slack.wait_for_message(
        DEV, lambda m: m.get("user") == world.slack.bot_user_id and m.get("thread_ts") == incident
    )
    # Nothing is written by the mention itself: the object comes with its buttons.
    assert world.writes(world.dev) == []
    assert "press the button" in texts(offer)
    reply = world.click(OPS, DEV, buttons(offer)["Reconcile"], ephemeral=False, message=offer)
    result = world.outcome(reply, count=2)
    assert "Reconciled Kustomization flux-system/apps on dev-1 in" in result
    (patch,) = world.writes(world.dev)
    assert list(patch.body["metadata"]["annotations"]) == ["reconcile.fluxcd.io/requestedAt"]
    # Someone without the role is refused on click, as for a command.
    world.bot.client.app_mention("reconcile ks apps", channel_id=DEV, user_id=NOBODY)
    denied_offer = world.slack.wait_for_message(
        DEV,
        lambda m: (
            m.get("user") == world.slack.bot_user_id and m.get("thread_ts") not in (None, incident)
        ),
    )
    denied = world.click(
        NOBODY, DEV, buttons(denied_offer)["Reconcile"], ephemeral=False, message=denied_offer
    )
    assert "needs the role" in world.outcome(denied)
    assert len(world.writes(world.dev)) == 1
