"""Remediation from Slack, end to end: the real `fluxbot serve --http`, fake Slack, fake clusters
with a fake Flux controller, and a fake `helm`.

Writes are asserted at the fake API server: a refused action writes nothing there.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.actions.buttons import ButtonPayload, sign
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


def _release(name: str, versions: list[tuple[int, str, str]]) -> dict[str, Any]:
    return flux_object(
        "HelmRelease",
        name,
        "flux-apps",
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


DEV_OBJECTS = [
    flux_object("GitRepository", "flux-system", conditions=[condition()]),
    _failing_ks("apps"),
    flux_object("Kustomization", "paused", suspend=True, conditions=[condition()]),
    _release("podinfo", [(3, "6.7.1", "failed"), (2, "6.6.0", "deployed")]),
]
PROD_OBJECTS = [
    _failing_ks("apps"),
    _release("checkout", [(5, "2.0.0", "failed"), (4, "1.9.0", "superseded")]),
]


class World:
    """Fake Slack, two fake clusters with controllers, and the bot process."""

    def __init__(self, slack: FakeSlack, fleet: FakeFleet, tmp_path: Path) -> None:
        self.slack = slack
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.helm_log = tmp_path / "helm.jsonl"
        self.bot: Bot | None = None
        self.controllers: list[FakeFluxController] = []

    @property
    def dev(self) -> FakeKubeApiServer:
        return self.fleet["dev-1"]

    @property
    def prod(self) -> FakeKubeApiServer:
        return self.fleet["prod-1"]

    def start(
        self, *, helm: bool = True, helm_fail: str = "", sar: bool = False, follow: float = 10
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
            "actions": {"follow_timeout_seconds": follow},
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
        if helm:
            config["actions"]["helm_path"] = str(fake_helm.install(self.tmp_path))
        path = self.tmp_path / "fluxbot.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        env = {
            "FAKE_HELM_LOG": str(self.helm_log),
            "FAKE_HELM_STATE": str(self.tmp_path / "helm-state.json"),
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
        """Text of the `count`-th post to a click's response_url."""
        assert self.bot is not None
        return texts(self.bot.answer(reply, count=count, timeout=timeout))

    def writes(self, server: FakeKubeApiServer) -> list[Any]:
        """Writes that reached a fake API server (Events and reviews excluded)."""
        return [
            r
            for r in server.writes()
            if "/events" not in r.path and "subjectaccessreviews" not in r.path
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
    final = world.bot.answer(reply, count=2)  # type: ignore[union-attr]
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
    audit = world.slack.wait_for_message(DEV, lambda m: "Reconciled" in m["text"])
    assert f"<@{OPS}>" in audit["text"]


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
    (opened,) = world.slack.wait_for_call("views.open")
    assert opened.ok, opened.response
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

    usage = world.bot.command("suspend ks apps", DEV, user=OPS)  # type: ignore[union-attr]
    assert "suspend needs --reason TEXT" in texts(world.bot.answer(usage))  # type: ignore[union-attr]
    missing = world.bot.command("reconcile ks nope", DEV, user=OPS)  # type: ignore[union-attr]
    assert "No Kustomization named 'nope'" in texts(world.bot.answer(missing))  # type: ignore[union-attr]
    suspended = world.bot.command("reconcile ks paused", DEV, user=OPS)  # type: ignore[union-attr]
    assert "is suspended; resume it first" in texts(world.bot.answer(suspended))  # type: ignore[union-attr]


def test_production_rollback_shows_a_plan_needs_typed_confirmation_and_a_second_person(
    world: World,
) -> None:
    world.start()
    world.prod.clear_requests()
    plan = world.view(SRE1, PROD, "rollback hr checkout -n flux-apps")
    text = texts(plan)
    assert "Emergency rollback plan" in text
    assert "revision 5 `checkout@2.0.0`" not in text  # chart name comes from history
    assert "Target: revision 4" in text
    assert "stays suspended until Git is fixed" in text
    world.click(SRE1, PROD, buttons(plan)["Confirm rollback"])
    world.slack.wait_for_call("views.open")
    view = world.slack.views()[-1]
    wrong = world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkou"}}, user_id=SRE1)  # type: ignore[union-attr]
    assert wrong.json()["errors"] == {"typed": "Type the object's name, checkout, exactly."}
    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]

    request = world.slack.wait_for_message(PROD, lambda m: "asks to roll back" in m["text"])
    approval = buttons(request)
    assert world.writes(world.prod) == []
    own = world.click(SRE1, PROD, approval["Approve"], ephemeral=False, message=request)
    assert "cannot approve your own request" in world.outcome(own)
    outsider = world.click(OPS, PROD, approval["Approve"], ephemeral=False, message=request)
    assert "needs the role sre" in world.outcome(outsider)
    assert world.writes(world.prod) == []

    approved = world.click(SRE2, PROD, approval["Approve"], ephemeral=False, message=request)
    result = world.outcome(approved, count=2, timeout=20)
    assert "Rolled back HelmRelease flux-apps/checkout on prod-1 to revision 4" in result
    assert "Helm reports revision 99 deployed: Rollback to 4" in result
    assert "stays suspended until Git is fixed" in result
    assert f"approved by <@{SRE2}>" in result
    (call,) = [
        json.loads(line) for line in world.helm_log.read_text().splitlines() if '"rollback"' in line
    ]
    assert call[:8] == [
        "rollback",
        "checkout",
        "4",
        "--namespace",
        "flux-apps",
        "--wait",
        "--timeout",
        "300s",
    ]
    assert call[-2:] == ["--kube-context", "prod-1"]
    release = world.prod.get(HR, "HelmRelease", "flux-apps", "checkout")
    assert release is not None
    assert release["spec"]["suspend"] is True
    assert release["metadata"]["annotations"]["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    assert "Resume" in buttons(world.bot.answer(approved, count=2))  # type: ignore[union-attr]


def test_a_failed_helm_rollback_says_what_was_and_was_not_changed(world: World) -> None:
    world.start(helm_fail="rollback")
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


def test_without_a_helm_client_rollback_is_not_offered_and_the_command_says_why(
    world: World,
) -> None:
    world.start(helm=False)
    offered = buttons(world.view(SRE1, DEV, "get hr podinfo -n flux-apps"))
    assert "Rollback…" not in offered
    assert {"Reconcile", "Force", "Reset retries"} <= set(offered)
    answer = texts(world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps"))
    assert "no helm client is configured (actions.helm_path)" in answer


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
    from bot.state.sqlite import SqliteHistory

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
    world.start()
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
