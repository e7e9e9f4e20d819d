"""Attacks and faults on remediation through the real `fluxbot serve` (issue 11, items 4-8):
fake Slack, fake API servers with a fake Flux controller, and a fake `helm`."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bot.actions.buttons import ButtonPayload, sign
from bot.domain.remediation import material_state
from bot.domain.status import parse_flux_object
from bot.slack.action_views import WORKING
from bot.slack.credentials import SlackCredentials
from tests.bot_process import SECRET, Bot, buttons, start_bot, texts
from tests.fakes.kube_api import FakeKubeApiServer
from tests.flux_objects import condition, flux_object, snapshot
from tests.slack.world import DEV, KS, OPS, SRE1, World

# The `world` fixture (the real process) is shared with tests/test_remediation.py; test
# parameters name it.
# ruff: noqa: F811
from tests.test_remediation import world  # noqa: F401

INJECTED = "--kube-apiserver=http://127.0.0.1:9"


def _crafted_release(name: str, suspend: bool) -> dict[str, Any]:
    """A failed HelmRelease whose status claims a release name that is a helm flag (status is
    written by whoever can patch the status subresource, not validated by the CRD)."""
    history = [
        {**snapshot(3, "6.7.1", "failed"), "name": INJECTED},
        {**snapshot(2, "6.6.0", "deployed"), "name": INJECTED},
    ]
    return flux_object(
        "HelmRelease",
        name,
        "flux-apps",
        suspend=suspend,
        status={"history": history, "storageNamespace": "flux-apps", "failures": 3},
        conditions=[
            condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed: timed out"),
            condition("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 3 attempts"),
        ],
    )


def _helm_calls(world: World) -> list[list[str]]:
    log = world.helm_log
    return [json.loads(line) for line in log.read_text().splitlines()] if log.exists() else []


def test_a_release_name_crafted_as_a_helm_flag_never_reaches_helm(world: World) -> None:
    """Issue 11 item 8: names from a HelmRelease's status are checked with Helm's own rules
    (helm pkg/chartutil ValidateReleaseName) before helm runs, suspended or not, and helm
    gets its flags first, then `--`, then positionals."""
    world.dev.apply_many([_crafted_release("evil", False), _crafted_release("evil-held", True)])
    world.start(rollback="helm")
    for name in ("evil", "evil-held"):
        answer = texts(world.view(SRE1, DEV, f"rollback hr {name} -n flux-apps"))
        assert f"'{INJECTED}' is not a valid Helm release name" in answer
    assert not any(INJECTED in " ".join(call) for call in _helm_calls(world))
    assert _writes(world.dev) == []


def _writes(server: FakeKubeApiServer) -> list[Any]:
    """Writes to Flux objects, button claims included."""
    return [
        r
        for r in server.writes()
        if "/events" not in r.path and "subjectaccessreviews" not in r.path
    ]


def test_reconcile_with_source_is_reviewed_for_each_object_it_patches(world: World) -> None:
    """Issue 11 item 7: with Kubernetes authorization on, the source a with-source reconcile
    patches (here in another namespace) is reviewed too, before anything is written."""
    world.dev.apply(
        flux_object(
            "Kustomization",
            "tenant",
            "team-a",
            spec={"sourceRef": {"kind": "GitRepository", "name": "flux-system",
                                "namespace": "flux-system"}},
            conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
        )
    )  # fmt: skip
    world.start(sar=True)
    world.dev.grant_review(user="slack:U0OPS", verb="reconcile", resource="kustomizations")
    world.dev.grant_review(
        user="slack:U0OPS", verb="reconcile", resource="gitrepositories", namespace="team-a"
    )
    world.dev.clear_requests()
    denied = texts(world.view(OPS, DEV, "reconcile ks tenant -n team-a --with-source"))
    assert (
        "Not allowed by Kubernetes RBAC: slack:U0OPS may not reconcile GitRepository "
        "flux-system/flux-system, which this reconcile writes." in denied
    )
    assert _writes(world.dev) == []
    world.dev.grant_review(
        user="slack:U0OPS", verb="reconcile", resource="gitrepositories", namespace="flux-system"
    )
    reply = world.bot.command(  # type: ignore[union-attr]
        "reconcile ks tenant -n team-a --with-source", DEV, user=OPS
    )
    assert "Kustomization team-a/tenant" in world.outcome(reply, count=2)
    patched = [w.path for w in _writes(world.dev)]
    assert any(p.endswith("/gitrepositories/flux-system") for p in patched)
    assert any(p.endswith("/kustomizations/tenant") for p in patched)


def test_a_snooze_is_reviewed_by_kubernetes_too(world: World) -> None:
    """Issue 11 item 7: a snooze records an Event on the object and changes what digests show:
    with Kubernetes authorization on, it needs the reconcile verb on that object."""
    world.start(sar=True)
    key = SlackCredentials.from_env(
        http=True, env={"SLACK_BOT_TOKEN": world.slack.bot_token, "SLACK_SIGNING_SECRET": SECRET}
    ).button_key_bytes()
    stored = world.dev.get(*KS, "apps")
    assert stored is not None
    payload = ButtonPayload(
        a="snooze", e="development", c="dev-1", k="Kustomization", ns="flux-system", n="apps",
        s=material_state(parse_flux_object(stored)), x=int(time.time()) + 600, i="z7",
    )  # fmt: skip
    snooze = {"action_id": "flux_snooze:z7", "value": sign(payload, key)}
    denied = world.outcome(world.click(OPS, DEV, snooze))
    assert (
        "Not allowed by Kubernetes RBAC: slack:U0OPS may not reconcile Kustomization "
        "flux-system/apps" in denied
    )
    reviews = [r for r in world.dev.writes() if "subjectaccessreviews" in r.path]
    assert reviews
    world.dev.grant_review(user="slack:U0OPS", verb="reconcile", resource="kustomizations")
    offered = buttons(world.bot.answer(world.click(OPS, DEV, snooze)))  # type: ignore[union-attr]
    assert "1 day" in offered


def _requested(world: World, name: str) -> list[Any]:
    """Patches that asked for a reconcile of Kustomization flux-system/`name`."""
    return [
        w
        for w in _writes(world.dev)
        if w.path.endswith(f"/kustomizations/{name}")
        and "reconcile.fluxcd.io/requestedAt" in json.dumps(w.body)
    ]


def test_a_double_click_split_across_two_replicas_acts_once(world: World) -> None:
    """Issue 11 item 4: the two halves of a double click reach two `fluxbot serve` replicas
    (a rolling update always runs two). The first write of an action is a conditional
    action-id annotation carrying the resourceVersion just read, so the API server lets
    exactly one replica through (409 Conflict for the other, as a real API server answers
    a merge patch whose metadata.resourceVersion is stale)."""
    first = world.start()
    config = world.tmp_path / "fluxbot.yaml"
    other_dir = world.tmp_path / "replica-b"
    other_dir.mkdir()
    second: Bot = start_bot(["--config", str(config)], world.slack, other_dir)
    try:
        offered = buttons(world.view(OPS, DEV, "get ks apps"))
        world.dev.clear_requests()
        action = {"type": "button", "action_id": offered["Reconcile"]["action_id"],
                  "block_id": "b", "value": offered["Reconcile"]["value"]}  # fmt: skip
        with ThreadPoolExecutor(2) as pool:
            replies = list(
                pool.map(
                    lambda bot: bot.client.block_action(
                        action, user_id=OPS, channel_id=DEV, is_ephemeral=True
                    ),
                    (first, second),
                )
            )
        outcomes = [world.outcome(reply, timeout=20) for reply in replies]
        assert sum("Reconciled Kustomization flux-system/apps" in o for o in outcomes) == 1
        assert sum("another fluxbot replica took it" in o for o in outcomes) == 1
        assert len(_requested(world, "apps")) == 1
        stored = world.dev.get(*KS, "apps")
        assert stored is not None
        assert stored["metadata"]["annotations"]["fluxbot.io/action-id"]
    finally:
        second.stop()


def _reconcile_button(world: World) -> dict[str, Any]:
    button: dict[str, Any] = buttons(world.view(OPS, DEV, "get ks apps"))["Reconcile"]
    return button


def test_a_hanging_response_url_neither_delays_the_write_nor_loses_the_outcome(
    world: World,
) -> None:
    """Issue 11 item 5: reports go to Slack on their own threads, so a response_url that hangs
    (slack_sdk's WebhookClient gives up after 10 s) does not hold the action before its first
    write; the outcome then goes around it through the Web API (the ephemeral view cannot be
    edited, so it reaches the person directly)."""
    world.start()
    button = _reconcile_button(world)
    world.dev.clear_requests()
    world.slack.latency("response_url", 30)
    clicked = time.monotonic()
    world.click(OPS, DEV, button)
    world.slack.wait_for(lambda: _requested(world, "apps"), 5, "the reconcile annotation")
    assert time.monotonic() - clicked < 3
    (outcome,) = world.slack.wait_for(
        lambda: [c for c in world.slack.calls("chat.postMessage")
                 if c.params.get("channel") == OPS and "Reconciled" in str(c.params)],
        40,
        "the outcome, posted around the response_url",
    )  # fmt: skip
    assert "Reconciled Kustomization flux-system/apps on dev-1" in str(outcome.params)


def test_a_click_that_wrote_nothing_can_be_clicked_again(world: World) -> None:
    """Issue 11 item 5: a button is used up only by the first cluster write. When the cluster
    fails before that (here the claim's read answers 500), the person is told and the same
    button works once the cluster is back."""
    world.start()
    button = _reconcile_button(world)
    world.dev.inject("GET", r"/kustomizations/apps$", 500, times=1)
    failed = world.outcome(world.click(OPS, DEV, button), count=1)
    assert "Could not start reconcile of Kustomization flux-system/apps" in failed
    assert _requested(world, "apps") == []
    again = world.outcome(world.click(OPS, DEV, button), count=2)
    assert "Reconciled Kustomization flux-system/apps on dev-1" in again
    assert len(_requested(world, "apps")) == 1


def test_eight_slow_follows_do_not_delay_a_ninth_actions_first_feedback(world: World) -> None:
    """Issue 11 item 6: a follow waits on the watch cache's change notifications, not on a
    worker thread, so eight reconciles whose controller is slow (8 s here) leave the ninth
    action free to write and say so at once (fluxbot runs eight action workers)."""
    world.dev.apply_many([_failing(f"slow-{i}") for i in range(8)])
    world.start(follow=20)
    assert world.bot is not None
    world.controllers[0].delay = 8
    slow = [world.bot.command(f"reconcile ks slow-{i}", DEV, user=OPS) for i in range(8)]
    world.slack.wait_for(
        lambda: all(world.progress(reply) for reply in slow), 10, "the slow ones to start"
    )
    asked = time.monotonic()
    ninth = world.bot.command("reconcile ks apps", DEV, user=OPS)
    world.slack.wait_for(lambda: world.progress(ninth), 5, "the ninth action's first feedback")
    assert time.monotonic() - asked < 2.5
    world.slack.wait_for(lambda: _requested(world, "apps"), 5, "the ninth action's write")
    assert time.monotonic() - asked < 3
    assert "Reconciled Kustomization flux-system/apps" in world.outcome(ninth, timeout=30)
    for reply in slow:
        assert "Reconciled Kustomization flux-system/slow-" in world.outcome(reply, timeout=30)


def _failing(name: str) -> dict[str, Any]:
    return flux_object(
        "Kustomization",
        name,
        conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
    )


def test_an_audit_post_that_times_out_leaves_the_outcome_as_reported(world: World) -> None:
    """Issue 11 item 5: the audit reply is posted after the outcome and is best-effort; when
    chat.postMessage times out (slack_sdk gives up after 10 s) the person still sees the
    success, and nothing later turns it into a failure."""
    world.start()
    button = _reconcile_button(world)
    world.slack.latency("chat.postMessage", 12)
    reply = world.click(OPS, DEV, button)
    assert "Reconciled Kustomization flux-system/apps" in world.outcome(reply, count=2)
    log = world.tmp_path / "bot.log"
    world.slack.wait_for(
        lambda: "could not post the audit reply" in log.read_text(), 40, "the audit to give up"
    )
    posted = [texts(r.payload) for r in world.slack.responses(reply.response_url)]
    outcomes = [p for p in posted if not p.startswith(WORKING)]
    assert outcomes
    assert all(":white_check_mark: Reconciled" in p for p in outcomes), outcomes


def test_a_slack_error_on_a_form_writes_nothing(world: World) -> None:
    """Issue 11 item 5: when Slack refuses to open the suspend form, the person is told and
    nothing is suspended."""
    world.start()
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    world.dev.clear_requests()
    world.slack.fail("views.open", "internal_error", status=200, times=None)
    reply = world.click(OPS, DEV, offered["Suspend…"])
    answer = world.outcome(reply)
    assert "Could not open the form: internal_error" in answer
    assert _writes(world.dev) == []
    stored = world.dev.get(*KS, "apps")
    assert stored is not None
    assert not stored["spec"].get("suspend")
