"""Snooze…: hiding an object from digests from its buttons, in-process."""

from __future__ import annotations

import datetime as dt
import time

from bot.actions.signing import ButtonPayload, sign
from bot.slack.credentials import SlackCredentials
from tests.bot_process import SECRET, buttons
from tests.slack.world import (
    DEV,
    KS,
    NOBODY,
    OPS,
    World,
)


def test_snoozing_hides_an_object_from_digests_and_needs_the_reconcile_role(world: World) -> None:
    from bot.domain.action_rules import material_state
    from bot.domain.status import parse_flux_object
    from bot.history.sqlite import SqliteHistory

    world.start()
    key = SlackCredentials.from_env(
        http=True, env={"SLACK_BOT_TOKEN": world.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET}
    ).button_key_bytes()
    stored = world.dev.get(*KS, "apps")
    assert stored is not None
    state = material_state(parse_flux_object(stored))
    payload = ButtonPayload(
        a="snooze", e="development", c="dev-1", k="Kustomization", ns="flux-system", n="apps",
        s=state, x=int(time.time()) + 600, i="z1",
    )  # fmt: skip
    snooze = {"action_id": "flux_snooze:z1", "value": sign(payload, key)}

    denied = world.outcome(world.click(NOBODY, DEV, snooze))
    assert (
        "Not allowed to snooze: reconcile in development needs the role operators or sre" in denied
    )

    choices = world.bot.answer(world.click(OPS, DEV, snooze))  # type: ignore[union-attr]
    offered = buttons(choices)
    assert set(offered) == {"1 hour", "4 hours", "1 day", "3 days", "1 week"}
    done = world.outcome(world.click(OPS, DEV, offered["1 day"]))
    assert "is hidden from digests until <!date^" in done
    history = SqliteHistory(world.tmp_path / "history.db")
    try:
        (saved,) = history.snoozes("development", dt.datetime.now(dt.UTC))
    finally:
        history.close()
    assert (saved.name, saved.by, saved.state) == ("apps", "u0ops", state)
    assert saved.until - dt.datetime.now(dt.UTC) > dt.timedelta(hours=23)
    assert world.writes(world.dev) == []
