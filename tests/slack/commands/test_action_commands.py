"""Actions typed as `/flux` commands: the same flow and checks as a click; in-process."""

from __future__ import annotations

from tests.bot_process import buttons, texts
from tests.flux_objects import condition, flux_object
from tests.slack.world import (
    DEV,
    OPS,
    World,
)


def test_text_commands_act_with_the_same_checks(world: World) -> None:
    world.start()
    world.dev.clear_requests()
    reply = world.bot.command("reconcile ks apps --with-source", DEV, user=OPS)  # type: ignore[union-attr]
    result = world.outcome(reply, count=2)
    assert "Reconciled Kustomization flux-system/apps on dev-1" in result
    patched = [r.path.rsplit("/", 2)[-2] for r in world.writes(world.dev)]
    assert patched == ["gitrepositories", "kustomizations"]  # the source first
    # The steps on the way reach the person, not only the outcome.
    assert any(
        "Reconciling source GitRepository flux-system/flux-system" in p
        for p in world.progress(reply)
    )

    usage = world.bot.command("suspend ks apps", DEV, user=OPS)  # type: ignore[union-attr]
    assert "suspend needs --reason TEXT" in texts(world.bot.answer(usage))  # type: ignore[union-attr]
    missing = world.bot.command("reconcile ks nope", DEV, user=OPS)  # type: ignore[union-attr]
    assert "No Kustomization named 'nope'" in texts(world.bot.answer(missing))  # type: ignore[union-attr]
    suspended = world.bot.command("reconcile ks paused", DEV, user=OPS)  # type: ignore[union-attr]
    assert "is suspended; resume it first (the Flux CLI: resource is suspended)" in texts(
        world.bot.answer(suspended)  # type: ignore[union-attr]
    )


def test_actions_are_offered_for_a_kind_only_where_flux_offers_them(world: World) -> None:
    # flux2 cmd/flux: no `reconcile alert` (Alerts are static), no reconcile/suspend/resume
    # for ExternalArtifacts; `suspend alert` and `resume alert` exist.
    world.dev.apply_many(
        [
            flux_object("Provider", "slack"),
            flux_object("Alert", "on-call", suspend=True),
            flux_object(
                "ExternalArtifact",
                "apps",
                conditions=[condition("Ready", "False", "BuildFailed", "apps build failed")],
            ),
        ]
    )
    world.start()
    world.dev.clear_requests()
    bot = world.bot
    assert bot is not None
    refused = bot.command("reconcile alert on-call", DEV, user=OPS)
    assert "Flux offers no reconcile for Alert objects" in texts(bot.answer(refused))
    refused = bot.command("suspend ea apps --reason test", DEV, user=OPS)
    assert "Flux offers no suspend for ExternalArtifact objects" in texts(bot.answer(refused))
    assert world.writes(world.dev) == []
    # The failing ExternalArtifact is shown without buttons.
    shown = bot.answer(bot.command("get ea apps", DEV, user=OPS))
    assert set(buttons(shown)) & {"Reconcile", "Suspend…", "Resume"} == set()

    # An Alert has no status to hand a reconcile token back in: resumed is done at once.
    resumed = world.outcome(bot.command("resume alert on-call", DEV, user=OPS), count=2)
    assert "Resumed Alert flux-system/on-call on dev-1 and reconciled" in resumed
    writes = world.writes(world.dev)
    assert writes
    assert {(w.method, w.path.rsplit("/", 2)[-2]) for w in writes} == {("PATCH", "alerts")}
