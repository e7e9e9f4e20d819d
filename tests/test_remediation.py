"""Remediation from Slack, end to end: the real `fluxbot serve --http`, fake Slack, fake clusters
with a fake Flux controller, and a fake `helm`.

Writes are asserted at the fake API server: a refused action writes nothing there.
"""

from __future__ import annotations

import datetime as dt
import http.server
import json
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.actions.buttons import ButtonPayload, sign
from bot.slack.action_views import WORKING
from bot.slack.credentials import SlackCredentials
from tests.bot_process import SECRET, Bot, buttons, start_bot, texts
from tests.fakes import helm as fake_helm
from tests.fakes.flux_controller import FakeFluxController
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object, snapshot

DEV, PROD = "C0DEV", "C0PROD"
SRE1, SRE2, OPS, NOBODY, GUEST, GONE = "U0SRE1", "U0SRE2", "U0OPS", "U0NOBODY", "U0GUEST", "U0GONE"
KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system")
HR = "helm.toolkit.fluxcd.io/v2"


def _failing_ks(name: str) -> dict[str, Any]:
    return flux_object(
        "Kustomization",
        name,
        conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
    )


def _release(
    name: str, versions: list[tuple[int, str, str]], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return flux_object(
        "HelmRelease",
        name,
        "flux-apps",
        labels=labels,
        status={
            "history": [snapshot(v, chart, status, name=name) for v, chart, status in versions],
            "storageNamespace": "flux-apps",
            "failures": 3,
        },
        conditions=[
            condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed: timed out"),
            condition("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 3 attempt(s)"),
        ],
    )


APPLIED = "main@sha1:" + "f" * 40
GIT_ARTIFACT = {
    "artifact": {
        "digest": "sha256:" + "a" * 64,
        "lastUpdateTime": "2026-11-26T11:00:00Z",
        "path": "gitrepository/flux-system/flux-system/ffffffff.tar.gz",
        "revision": APPLIED,
        "url": "http://source-controller.flux-system.svc/gitrepository/flux-system/flux-system/ffffffff.tar.gz",
    }
}
DEV_OBJECTS = [
    flux_object("GitRepository", "flux-system", status=GIT_ARTIFACT, conditions=[condition()]),
    _failing_ks("apps"),
    flux_object("Kustomization", "paused", suspend=True, conditions=[condition()]),
    _release(
        "podinfo",
        [(3, "6.7.1", "failed"), (2, "6.6.0", "deployed")],
        labels={
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
    ),
]
PROD_OBJECTS = [
    _failing_ks("apps"),
    _release("checkout", [(5, "2.0.0", "failed"), (4, "1.9.0", "superseded")]),
]


def is_claim(body: Any) -> bool:
    """Whether a patch only claims a button (the fluxbot.io/action-id annotation)."""
    metadata = body.get("metadata") if isinstance(body, dict) else None
    return (
        isinstance(metadata, dict)
        and set(body) == {"metadata"}
        and set(metadata) == {"resourceVersion", "annotations"}
        and set(metadata["annotations"]) == {"fluxbot.io/action-id"}
    )


class World:
    """Fake Slack, two fake clusters with controllers, and the bot process."""

    def __init__(self, slack: FakeSlack, fleet: FakeFleet, tmp_path: Path) -> None:
        self.slack = slack
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.helm_log = tmp_path / "helm.jsonl"
        self.helm_state = tmp_path / "helm-releases.json"
        self.bot: Bot | None = None
        self.controllers: list[FakeFluxController] = []

    @property
    def dev(self) -> FakeKubeApiServer:
        return self.fleet["dev-1"]

    @property
    def prod(self) -> FakeKubeApiServer:
        return self.fleet["prod-1"]

    def start(
        self,
        *,
        helm: bool = True,
        helm_fail: str = "",
        sar: bool = False,
        follow: float = 10,
        rollback: str = "flux",
        events: str = "",
        helm_remote: list[dict[str, str]] | None = None,
    ) -> Bot:
        kubeconfig = self.fleet.write_kubeconfig(self.tmp_path / "kubeconfig")
        dev_actions: dict[str, Any] = {
            "reconcile": ["operators", "sre"],
            "suspend": ["operators", "sre"],
            "rollback": ["sre"],
            "confirmation": "none",
        }
        if sar:
            dev_actions["kubernetes_authorization"] = {"mode": "subject-access-review"}
        config: dict[str, Any] = {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "roles": {"sre": {"groups": ["@sre"], "users": [SRE2]}, "operators": {"users": [OPS]}},
            "actions": {"follow_timeout_seconds": follow, "rollback": rollback},
            "history": {"path": str(self.tmp_path / "history.db")},
            "environments": {
                "development": {
                    "channel": DEV,
                    "clusters": [{"context": "dev-1"}],
                    "actions": dev_actions,
                    "digest": {"enabled": False},
                },
                "production": {
                    "channel": PROD,
                    "clusters": [{"context": "prod-1"}],
                    "actions": {"reconcile": ["sre"], "suspend": ["sre"], "rollback": ["sre"]},
                    "digest": {"enabled": False},
                },
            },
        }
        if events:
            config["actions"]["events_address"] = events
        if helm_remote:
            config["actions"]["helm_remote_clusters"] = helm_remote
        if helm:
            config["actions"]["helm_path"] = str(fake_helm.install(self.tmp_path))
            fake_helm.seed(self.helm_state, "flux-apps", "podinfo", [
                {"revision": 2, "status": "deployed", "chart": "podinfo-6.6.0"},
                {"revision": 3, "status": "failed", "chart": "podinfo-6.7.1"},
            ], cluster="dev-1")  # fmt: skip
            fake_helm.seed(self.helm_state, "flux-apps", "checkout", [
                {"revision": 4, "status": "superseded", "chart": "checkout-1.9.0"},
                {"revision": 5, "status": "failed", "chart": "checkout-2.0.0"},
            ], cluster="prod-1")  # fmt: skip
        path = self.tmp_path / "fluxbot.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {
            "FAKE_HELM_LOG": str(self.helm_log),
            "FAKE_HELM_STATE": str(self.helm_state),
            "FAKE_HELM_FAIL": helm_fail,
        }
        self.bot = start_bot(["--config", str(path)], self.slack, self.tmp_path, env)
        self._wait_synced()
        return self.bot

    def _wait_synced(self) -> None:
        assert self.bot is not None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            reply = self.bot.command("envs", DEV, user=OPS)
            if "(syncing)" not in texts(self.bot.answer(reply)):
                return
            time.sleep(0.1)
        raise AssertionError("the fleet did not sync")

    def view(self, user: str, channel: str, text: str) -> dict[str, Any]:
        """The answer to a command."""
        assert self.bot is not None
        return self.bot.answer(self.bot.command(text, channel, user=user))

    def click(
        self, user: str, channel: str, button: dict[str, Any], *, ephemeral: bool = True, **kw: Any
    ) -> Any:
        """Click a button (from an ephemeral answer unless told otherwise)."""
        assert self.bot is not None
        action = {
            "type": "button",
            "action_id": button["action_id"],
            "block_id": button.get("block_id") or "b",
            "value": button["value"],
        }
        return self.bot.client.block_action(
            action, user_id=user, channel_id=channel, is_ephemeral=ephemeral, **kw
        )

    def outcome(self, reply: Any, count: int = 1, timeout: float = 15.0) -> str:
        """Text of the first post to a click's response_url, from the `count`-th on, that is not
        a "working…" progress update (an action's outcome, or an immediate answer)."""
        return texts(self.final(reply, count, timeout))

    def final(self, reply: Any, count: int = 1, timeout: float = 15.0) -> dict[str, Any]:
        """The payload `outcome` reads."""

        def settled() -> dict[str, Any] | None:
            posted = self.slack.responses(reply.response_url)[count - 1 :]
            done = [r.payload for r in posted if not texts(r.payload).startswith(WORKING)]
            return done[0] if done else None

        payload: dict[str, Any] = self.slack.wait_for(settled, timeout, "an outcome")
        return payload

    def progress(self, reply: Any) -> list[str]:
        """The "working…" updates a click's message went through."""
        return [
            texts(r.payload)
            for r in self.slack.responses(reply.response_url)
            if texts(r.payload).startswith(WORKING)
        ]

    def writes(self, server: FakeKubeApiServer) -> list[Any]:
        """Writes that reached a fake API server (Events, reviews and the claims of buttons,
        tested in tests/test_action_hardening.py, excluded)."""
        return [
            r
            for r in server.writes()
            if "/events" not in r.path
            and "subjectaccessreviews" not in r.path
            and not is_claim(r.body)
        ]

    def events(self, server: FakeKubeApiServer) -> list[dict[str, Any]]:
        return [e for e in server.objects() if e.get("kind") == "Event"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    fleet = FakeFleet(["dev-1", "prod-1"])
    with FakeSlack(signing_secret=SECRET) as slack, fleet:
        slack.add_usergroup("S0SRE", "sre", users=[SRE1])
        for user in (SRE1, SRE2, OPS, NOBODY):
            slack.add_user(user, user.lower())
        slack.add_user(GUEST, "guest", is_restricted=True)
        slack.add_user(GONE, "gone", deleted=True)
        fleet["dev-1"].apply_many(DEV_OBJECTS)
        fleet["prod-1"].apply_many(PROD_OBJECTS)
        w = World(slack, fleet, tmp_path)
        w.controllers = [FakeFluxController(fleet["dev-1"]), FakeFluxController(fleet["prod-1"])]
        with w.controllers[0], w.controllers[1]:
            try:
                yield w
            finally:
                if w.bot is not None:
                    w.bot.stop()


def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


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
    _until(lambda: world.writes(world.dev))
    time.sleep(1)
    assert len(world.writes(world.dev)) == 1


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
    stored = _until(lambda: (o := world.dev.get(*KS, "apps")) and o["spec"].get("suspend") and o)
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


def test_production_rollback_shows_a_plan_needs_typed_confirmation_and_a_second_person(
    world: World,
) -> None:
    """The default rollback is Flux-native: keep the parent Kustomization off the HelmRelease,
    pin the previous chart version, and let helm-controller upgrade to it."""
    world.start()
    world.prod.clear_requests()
    offered = buttons(world.view(SRE1, PROD, "get hr checkout -n flux-apps"))
    assert "Rollback to 1.9.0…" in offered
    plan = world.view(SRE1, PROD, "rollback hr checkout -n flux-apps")
    text = texts(plan)
    assert "Emergency rollback plan" in text
    assert "Target: revision 4 `podinfo@1.9.0`" in text
    assert "`kustomize.toolkit.fluxcd.io/reconcile: disabled`" in text
    assert "`spec.chart.spec.version` of HelmRelease flux-apps/checkout to `1.9.0`" in text
    assert "stays pinned, away from Git, until someone presses Resume" in text
    world.click(SRE1, PROD, buttons(plan)["Confirm rollback"])
    world.slack.wait_for_call("views.open")
    world.slack.wait_for_call("views.update")  # the form, filled once checked
    view = world.slack.views()[-1]
    wrong = world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkou"}}, user_id=SRE1)  # type: ignore[union-attr]
    assert wrong.json()["errors"] == {"typed": "Type the object's name, checkout, exactly."}
    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]

    # A second submission of the same form asks nothing more.
    again = world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]
    assert again.status == 200
    request = world.slack.wait_for_message(PROD, lambda m: "asks to roll back" in m["text"])
    assert "<!subteam^S0SRE>: one of you must approve" in request["text"]
    approval = buttons(request)
    assert "style" not in approval["Deny"]
    assert world.writes(world.prod) == []
    own = world.click(SRE1, PROD, approval["Approve"], ephemeral=False, message=request)
    assert "cannot approve your own request" in world.outcome(own)
    outsider = world.click(OPS, PROD, approval["Approve"], ephemeral=False, message=request)
    assert "needs the role sre" in world.outcome(outsider)
    assert world.writes(world.prod) == []

    approved = world.click(SRE2, PROD, approval["Approve"], ephemeral=False, message=request)
    result = world.outcome(approved, count=2, timeout=20)
    # The request line now says who decided.
    assert f":white_check_mark: Approved by <@{SRE2}>: <@{SRE1}> asks to roll back" in result
    asked = [
        c for c in world.slack.calls("chat.postMessage") if "asks to roll back" in str(c.params)
    ]
    assert len(asked) == 1
    assert "Rolled back HelmRelease flux-apps/checkout on prod-1 to podinfo@1.9.0" in result
    assert "helm-controller upgraded it (Helm revision 6)" in result
    assert "Git still declares 2.0.0" in result
    assert f"approved by <@{SRE2}>" in result
    assert not world.helm_log.exists() or '"rollback"' not in world.helm_log.read_text()
    release = world.prod.get(HR, "HelmRelease", "flux-apps", "checkout")
    assert release is not None
    assert release["spec"]["chart"]["spec"]["version"] == "1.9.0"
    assert "suspend" not in release["spec"]
    annotations = release["metadata"]["annotations"]
    assert annotations["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    assert annotations["fluxbot.io/rolled-back-from"] == "2.0.0"
    history = release["status"]["history"]
    assert (history[0]["version"], history[0]["chartVersion"]) == (6, "1.9.0")
    assert "Resume (redeploys 2.0.0)" in buttons(world.final(approved, count=2))


def test_the_helm_cli_rollback_runs_helm_4_with_flags_before_the_release(world: World) -> None:
    world.start(rollback="helm")
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    assert "`helm rollback podinfo 2 -n flux-apps --wait`" in texts(plan)
    result = world.outcome(world.click(SRE1, DEV, buttons(plan)["Confirm rollback"]), count=2)
    assert "Rolled back HelmRelease flux-apps/podinfo on dev-1 to revision 2" in result
    assert "Helm reports revision 4 deployed: Rollback to 2" in result
    calls = [json.loads(line) for line in world.helm_log.read_text().splitlines()]
    assert ["version", "--template", "{{.Version}}"] in calls
    (call,) = [c for c in calls if c[0] == "rollback"]
    assert call[:6] == ["rollback", "--namespace", "flux-apps", "--timeout", "300s", "--wait"]
    assert call[-3:] == ["--", "podinfo", "2"]
    assert "--kube-context" in call
    release = world.dev.get(HR, "HelmRelease", "flux-apps", "podinfo")
    assert release is not None
    assert release["spec"]["suspend"] is True


def test_a_failed_helm_rollback_says_what_was_and_was_not_changed(world: World) -> None:
    world.start(helm_fail="rollback", rollback="helm")
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    result = world.outcome(world.click(SRE1, DEV, buttons(plan)["Confirm rollback"]), count=2)
    assert (
        "Rollback of HelmRelease flux-apps/podinfo on dev-1 failed: helm rollback exited 1"
        in result
    )
    assert (
        "Changed: parent Kustomization kept from re-applying the HelmRelease; HelmRelease suspended"
        in result
    )
    assert "Not changed: Helm release rolled back to revision 2" in result


def _remote_release(name: str, secret_ref: dict[str, str]) -> dict[str, Any]:
    """A failed HelmRelease on dev-1 whose release helm-controller installs, and stores, in
    the cluster its kubeConfig Secret reaches (helm-controller
    internal/controller/helmrelease_controller.go buildRESTClientGetter)."""
    release = _release(name, [(3, "6.7.1", "failed"), (2, "6.6.0", "deployed")])
    release["spec"]["kubeConfig"] = {"secretRef": secret_ref}
    return release


def test_a_helm_cli_rollback_of_a_remote_release_runs_in_the_cluster_its_kubeconfig_maps_to(
    world: World,
) -> None:
    """spec.kubeConfig: the release and its storage live in the remote cluster. Mapped in
    actions.helm_remote_clusters, helm runs with that cluster's context; the HelmRelease is
    suspended where it lives. Not mapped (another Secret or key), the rollback is refused."""
    world.dev.apply_many([
        _remote_release("edge", {"name": "edge-kubeconfig"}),
        _remote_release("elsewhere", {"name": "edge-kubeconfig", "key": "other.yaml"}),
    ])  # fmt: skip
    world.start(rollback="helm", helm_remote=[
        {"cluster": "dev-1", "namespace": "flux-apps", "secret": "edge-kubeconfig",
         "runs_on": "prod-1"},
    ])  # fmt: skip
    for cluster in ("prod-1", "dev-1"):  # the same release name in both clusters' storage
        fake_helm.seed(world.helm_state, "flux-apps", "edge", [
            {"revision": 2, "status": "deployed", "chart": "podinfo-6.6.0"},
            {"revision": 3, "status": "failed", "chart": "podinfo-6.7.1"},
        ], cluster=cluster)  # fmt: skip

    refused = texts(world.view(SRE1, DEV, "rollback hr elsewhere -n flux-apps"))
    assert (
        "spec.kubeConfig: Secret flux-apps/edge-kubeconfig key other.yaml) that is not mapped"
        in refused
    )

    plan = texts(world.view(SRE1, DEV, "rollback hr edge -n flux-apps"))
    assert "`helm rollback edge 2 -n flux-apps --wait` on prod-1" in plan
    plan_view = world.view(SRE1, DEV, "rollback hr edge -n flux-apps")
    result = world.outcome(world.click(SRE1, DEV, buttons(plan_view)["Confirm rollback"]), count=2)
    assert "Rolled back HelmRelease flux-apps/edge on dev-1 to revision 2" in result
    calls = [json.loads(line) for line in world.helm_log.read_text().splitlines()]
    (call,) = [c for c in calls if c[0] == "rollback"]
    assert call[call.index("--kube-context") + 1] == "prod-1"
    assert fake_helm.stored(world.helm_state, "flux-apps", "edge", "prod-1")[-1]["status"] == (
        "deployed"
    )
    assert [r["revision"] for r in fake_helm.stored(world.helm_state, "flux-apps", "edge",
                                                    "dev-1")] == [2, 3]  # fmt: skip
    release = world.dev.get(HR, "HelmRelease", "flux-apps", "edge")
    assert release is not None
    assert release["spec"]["suspend"] is True
    assert all(w.path.split("/")[-1] != "edge" for w in world.writes(world.prod))


def test_the_helm_path_is_refused_without_a_client_and_flux_needs_none(world: World) -> None:
    world.start(helm=False, rollback="helm")
    offered = buttons(world.view(SRE1, DEV, "get hr podinfo -n flux-apps"))
    assert not any(label.startswith("Rollback") for label in offered)
    assert {"Reconcile", "Force", "Reset retries"} <= set(offered)
    answer = texts(world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps"))
    assert "actions.rollback is helm but no helm client is configured (actions.helm_path)" in answer


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


def test_snoozing_hides_an_object_from_digests_and_needs_the_reconcile_role(world: World) -> None:
    from bot.domain.remediation import material_state
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


def test_on_sigterm_a_running_action_is_finished_or_clearly_abandoned(world: World) -> None:
    bot = world.start(follow=120)
    world.controllers[0].delay = 60  # the controller will not answer before shutdown
    offered = buttons(world.view(OPS, DEV, "get ks apps"))
    reply = world.click(OPS, DEV, offered["Reconcile"])
    _until(lambda: world.writes(world.dev))
    started = time.monotonic()
    bot.stop()
    assert bot.process.returncode == 0
    assert time.monotonic() - started < 25
    abandoned = world.slack.wait_for(
        lambda: [
            r for r in world.slack.responses(reply.response_url) if "restarting" in texts(r.payload)
        ]
    )
    assert "outcome is no longer being followed" in texts(abandoned[0].payload)
    world.bot = None


def test_helm_runs_without_the_slack_secrets_in_its_environment(world: World) -> None:
    env_dump = world.tmp_path / "helm-env.txt"
    world.start(rollback="helm")
    wrapper = world.tmp_path / "helm"  # installed by start(); record what helm is given
    wrapper.write_text(wrapper.read_text().replace("exec ", f'env > "{env_dump}"\nexec ', 1))
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    world.outcome(world.click(SRE1, DEV, buttons(plan)["Confirm rollback"]), count=2)
    seen = env_dump.read_text()
    assert "SLACK_BOT_TOKEN" not in seen
    assert SECRET not in seen
    assert world.slack.bot_token not in seen


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


def _bump(server: FakeKubeApiServer, kind: tuple[str, str, str], name: str, **spec: Any) -> None:
    """Change an object's spec, as a commit reaching the cluster would (new generation)."""
    stored = server.get(*kind, name)
    assert stored is not None
    stored["spec"].update(spec)
    stored["metadata"].pop("generation")
    server.apply(stored)


def test_a_failed_attempt_at_a_new_generation_is_reported_at_once(world: World) -> None:
    """kustomize-controller keeps status.observedGeneration behind after a failure; the Ready
    condition's own observedGeneration says the new generation failed (cmd/flux/readiness.go)."""
    world.controllers[0].failures[("Kustomization", "flux-system", "apps")] = "build failed: x"
    world.start(follow=30)
    _bump(world.dev, KS, "apps", path="./apps/v2")
    _until(lambda: (o := world.dev.get(*KS, "apps")) and o["status"]["conditions"][0]
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
    _bump(world.dev, git, "flux-system", suspend=True)
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


def test_resume_after_a_rollback_applies_git_first_then_says_what_it_deploys(
    world: World,
) -> None:
    """Resume removes the hold, reconciles the parent Kustomization with its source so Git's
    current spec is applied, and says what the HelmRelease now deploys."""
    world.controllers[0].git.specs[("HelmRelease", "flux-apps", "podinfo")] = {
        "chart": {"spec": {"version": "6.8.0"}}  # Git was fixed
    }
    world.start(follow=20)
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    clicked = world.click(SRE1, DEV, buttons(plan)["Confirm rollback"])
    rolled = world.final(clicked, count=2, timeout=20)
    assert "Rolled back HelmRelease flux-apps/podinfo on dev-1 to podinfo@6.6.0" in texts(rolled)
    resume = buttons(rolled)["Resume (redeploys 6.7.1)"]
    assert "style" not in resume  # neutral: it redeploys whatever Git declares
    world.dev.clear_requests()
    result = world.outcome(world.click(SRE1, DEV, resume), count=2, timeout=30)
    assert "Resumed HelmRelease flux-apps/podinfo on dev-1 and reconciled." in result
    assert "It now deploys podinfo@6.8.0, as Git declares." in result
    release = world.dev.get(HR, "HelmRelease", "flux-apps", "podinfo")
    assert release is not None
    assert "kustomize.toolkit.fluxcd.io/reconcile" not in release["metadata"].get("annotations", {})
    assert release["status"]["history"][0]["chartVersion"] == "6.8.0"
    order = [r.path.rsplit("/", 2)[-2] for r in world.writes(world.dev) if r.method == "PATCH"]
    # The hold goes first, then Git is applied (source, Kustomization), then the reconcile.
    assert order[:3] == ["helmreleases", "gitrepositories", "kustomizations"]


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
        event = _until(lambda: received and received[0])
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


def test_deny_rewrites_the_request_line_and_runs_nothing(world: World) -> None:
    world.start()
    plan = world.view(SRE1, PROD, "rollback hr checkout -n flux-apps")
    world.click(SRE1, PROD, buttons(plan)["Confirm rollback"])
    world.slack.wait_for_call("views.update")
    view = world.slack.views()[-1]
    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]
    request = world.slack.wait_for_message(PROD, lambda m: "asks to roll back" in m["text"])
    world.prod.clear_requests()
    denied = world.click(SRE2, PROD, buttons(request)["Deny"], ephemeral=False, message=request)
    result = world.outcome(denied)
    assert f":no_entry_sign: Denied by <@{SRE2}>: <@{SRE1}> asks to roll back" in result
    assert "was not run" in result
    again = world.click(SRE2, PROD, buttons(request)["Approve"], ephemeral=False, message=request)
    assert "already" in world.outcome(again)
    assert world.writes(world.prod) == []


def test_a_suspended_release_is_planned_from_helm_history(world: World) -> None:
    """While suspended, a HelmRelease's status.history is not kept: Helm's storage is asked."""
    world.start(rollback="helm")
    _bump(world.dev, (HR, "HelmRelease", "flux-apps"), "podinfo", suspend=True)
    fake_helm.seed(world.helm_state, "flux-apps", "podinfo", [
        {"revision": 2, "status": "superseded", "chart": "podinfo-6.6.0"},
        {"revision": 3, "status": "superseded", "chart": "podinfo-6.7.1"},
        {"revision": 4, "status": "failed", "chart": "podinfo-6.7.2"},
    ], cluster="dev-1")  # fmt: skip
    time.sleep(0.3)
    plan = texts(world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps"))
    assert "Now: revision 4 `podinfo@6.7.2` (failed)" in plan
    assert "Target: revision 3 `podinfo@6.7.1`" in plan
    calls = [json.loads(line) for line in world.helm_log.read_text().splitlines()]
    assert any(c[0] == "history" and c[-2:] == ["--", "podinfo"] for c in calls)


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
    _until(lambda: (o := world.dev.get(*KS, "apps")) and o["spec"].get("suspend"), timeout=15)


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
