"""Live incidents: the bot in this process (tests/slack/harness.py; real `fluxbot serve --http`
processes for restarts and failovers), fake clusters, fake Slack.

The statuses below are what Flux's controllers write: source-controller marks a GitRepository
that cannot authenticate Ready=False, reason GitOperationFailed ("authentication required",
fluxcd/source-controller internal/controller/gitrepository_controller.go), and
kustomize-controller marks each Kustomization whose source has no artifact Ready=False, reason
ArtifactFailed, "Source artifact not found, retrying in 30s"
(fluxcd/kustomize-controller internal/controller/kustomization_controller.go).

Waits are compressed to a second or two; the incident loop ticks every second.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.bot_process import SECRET, Bot, buttons, start_bot, texts
from tests.fakes.flux_controller import FakeFluxController
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.slack_api import FakeSlack, validate_blocks
from tests.flux_objects import GIT_SHA, condition, flux_object
from tests.slack.harness import InProcessBot, start_in_process

PROD, SBX = "C0PROD", "C0SBX"
OPS = "U0OPS"
GIT = ("source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "flux-system")
KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system")
APPS = ("apps", "infra", "web", "jobs")


def _ready_source() -> dict[str, Any]:
    return {
        "observedGeneration": 1,
        "conditions": [
            condition(
                "Ready", "True", "Succeeded", f"stored artifact for revision 'main@sha1:{GIT_SHA}'"
            )
        ],
        "artifact": {
            "path": "gitrepository/flux-system/flux-system/x.tar.gz",
            "url": "http://source-controller/x.tar.gz",
            "revision": f"main@sha1:{GIT_SHA}",
            "digest": "sha256:" + "a" * 64,
            "lastUpdateTime": "2026-11-25T08:00:00Z",
        },
    }


FAILING_SOURCE = {
    "observedGeneration": 1,
    "conditions": [condition("Ready", "False", "GitOperationFailed", "authentication required")],
}
NO_ARTIFACT = {
    "observedGeneration": 1,
    "conditions": [
        condition("Ready", "False", "ArtifactFailed", "Source artifact not found, retrying in 30s")
    ],
}
APPLIED = {
    "observedGeneration": 1,
    "lastAppliedRevision": f"main@sha1:{GIT_SHA}",
    "conditions": [condition("Ready", "True", "ReconciliationSucceeded", "Applied revision")],
}


def _healthy_cluster() -> list[dict[str, Any]]:
    return [
        flux_object("GitRepository", "flux-system", status=_ready_source()),
        *(flux_object("Kustomization", name, status=APPLIED) for name in APPS),
    ]


def _until(predicate: Callable[[], Any], timeout: float = 15.0, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"not in time: {what or predicate}")


class World:
    """Fake Slack, fake clusters, and the bot(s) configured for incidents: in this process
    (tests/slack/harness.py), or real processes where restarts and failovers are tested."""

    def __init__(
        self, slack: FakeSlack, fleet: FakeFleet, tmp_path: Path, *, process: bool
    ) -> None:
        self.slack = slack
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.process = process
        self.bots: list[Bot | InProcessBot] = []

    @property
    def prod(self) -> FakeKubeApiServer:
        return self.fleet["prod-1"]

    def config(self, wait: int, *, replicas: bool = False) -> Path:
        kubeconfig = self.fleet.write_kubeconfig(self.tmp_path / "kubeconfig", "home")
        history: dict[str, Any] = {"path": str(self.tmp_path / "history.db")}
        if replicas:
            history = {"backend": "configmap", "leader_election": True, "lease_seconds": 2}
        config = {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "cache": {"backoff_initial_seconds": 0.1, "backoff_max_seconds": 0.5},
            "roles": {"ops": {"users": [OPS]}},
            "history": history,
            "environments": {
                "production": {
                    "channel": PROD,
                    "clusters": [{"context": "prod-1"}],
                    "actions": {"reconcile": ["ops"], "confirmation": "none"},
                    "digest": {"enabled": False},
                    "incidents": {"wait_seconds": wait, "repeat_seconds": 3600},
                },
                "sandbox-a": {"channel": SBX, "clusters": [{"context": "sbx-1"}]},
            },
        }
        path = self.tmp_path / "fluxbot.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    def start(self, wait: int = 1, *, replicas: bool = False) -> Bot | InProcessBot:
        path = self.config(wait, replicas=replicas)
        bot: Bot | InProcessBot
        if self.process:
            env = {"KUBECONFIG": str(self.tmp_path / "kubeconfig"), "FLUXBOT_LOG_LEVEL": "info"}
            bot = start_bot(
                ["--config", str(path)], self.slack, self.tmp_path / f"b{len(self.bots)}", env
            )
        else:
            assert not replicas, "replicas are processes: use process_world"
            bot = start_in_process(path, self.slack)
        self.bots.append(bot)
        return bot

    def set(self, server: FakeKubeApiServer, kind: str, name: str, status: dict[str, Any]) -> None:
        api = GIT[0] if kind == "GitRepository" else KS[0]
        server.set_status(api, kind, "flux-system", name, status)

    def break_source(self, server: FakeKubeApiServer, *dependents: str) -> None:
        self.set(server, "GitRepository", "flux-system", FAILING_SOURCE)
        for name in dependents:
            self.set(server, "Kustomization", name, NO_ARTIFACT)

    def heal(self, server: FakeKubeApiServer) -> None:
        # Dependents first: with the source healed first they would fail on their own for a
        # moment, which (with waits compressed to a second) could be a root cause of its own.
        for name in APPS:
            self.set(server, "Kustomization", name, APPLIED)
        self.set(server, "GitRepository", "flux-system", _ready_source())

    def incidents(self, channel: str = PROD) -> list[dict[str, Any]]:
        """Top-level messages in the channel (incident messages)."""
        return [
            m
            for m in self.slack.messages(channel, include_ephemeral=False)
            if not m["thread_ts"] or m["thread_ts"] == m["ts"]
        ]

    def thread(self, ts: str, channel: str = PROD) -> list[str]:
        return [
            texts(m)
            for m in self.slack.messages(channel, thread_ts=ts, include_ephemeral=False)
            if m["ts"] != ts
        ]

    def one_incident(
        self, predicate: Callable[[str], bool], timeout: float = 15.0
    ) -> dict[str, Any]:
        """The only incident message, once its text satisfies `predicate`."""

        def check() -> dict[str, Any] | None:
            found = self.incidents()
            assert len(found) <= 1, [texts(m) for m in found]
            return found[0] if found and predicate(texts(found[0])) else None

        return _until(check, timeout, "the incident message")


@contextlib.contextmanager
def _world(tmp_path: Path, *, process: bool) -> Iterator[World]:
    fleet = FakeFleet(["home", "prod-1", "sbx-1"])
    with FakeSlack(signing_secret=SECRET) as slack, fleet:
        slack.add_user(OPS, "alice")
        fleet["prod-1"].apply_many(_healthy_cluster())
        fleet["sbx-1"].apply_many(_healthy_cluster())
        w = World(slack, fleet, tmp_path, process=process)
        for name in ("b0", "b1", "b2"):
            (tmp_path / name).mkdir()
        try:
            yield w
        finally:
            for bot in w.bots:
                if not isinstance(bot, Bot) or bot.process.poll() is None:
                    bot.stop()


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    """The bot in this process: incidents are the same whatever runs them."""
    with _world(tmp_path, process=False) as w:
        yield w


@pytest.fixture
def process_world(tmp_path: Path) -> Iterator[World]:
    """Real processes, for what only processes show: a restart, a replica killed."""
    with _world(tmp_path, process=True) as w:
        yield w


def _check_blocks(message: dict[str, Any]) -> None:
    assert validate_blocks(message["blocks"]) == []


def test_a_flap_within_the_wait_posts_nothing(world: World) -> None:
    world.start(wait=3)
    time.sleep(1.5)  # synced
    world.break_source(world.prod, "apps")
    time.sleep(1.0)
    world.heal(world.prod)
    time.sleep(4.0)  # past the wait, and past another tick or two
    assert world.incidents() == []
    assert world.slack.calls("chat.postMessage") == []


def test_a_root_cause_is_one_message_and_late_dependents_update_it(world: World) -> None:
    bot = world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    first = world.one_incident(lambda t: "1 failing because of it" in t)
    text = texts(first)
    assert text.startswith("GitRepository flux-system/flux-system on prod-1 (production) failing")
    assert "authentication required" in text
    assert "Kustomization `flux-system/apps`" in text
    assert {"Reconcile", "Suspend…", "Snooze…"} <= set(buttons(first))
    _check_blocks(first)

    world.break_source(world.prod, "apps", "infra", "web")
    updated = world.one_incident(lambda t: "3 failing because of it" in t, timeout=25)
    assert updated["ts"] == first["ts"]
    assert world.slack.calls("chat.update")
    _check_blocks(updated)

    answer = bot.answer(bot.command("incidents", PROD))
    link = f"https://fake.slack.com/archives/{PROD}/p{first['ts'].replace('.', '')}"
    assert link in texts(answer)
    assert "GitRepository flux-system/flux-system on prod-1" in texts(answer)


def test_recovery_resolves_the_message_in_place_and_removes_its_buttons(world: World) -> None:
    world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps", "infra")
    first = world.one_incident(lambda t: "2 failing because of it" in t)

    world.heal(world.prod)
    resolved = world.one_incident(lambda t: "Resolved after" in t)
    assert resolved["ts"] == first["ts"]
    assert f"by revision main@sha1:{GIT_SHA[:8]}" in texts(resolved)
    assert buttons(resolved) == {}
    _check_blocks(resolved)
    replies = _until(lambda: world.thread(first["ts"]))
    assert any("Resolved after" in r for r in replies)


def test_an_action_from_the_incident_reports_in_its_thread_and_resolves_it(world: World) -> None:
    bot = world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod)
    incident = world.one_incident(lambda t: "authentication required" in t)
    with FakeFluxController(world.prod):
        click = buttons(incident)["Reconcile"]
        action = {
            "type": "button",
            "action_id": click["action_id"],
            "block_id": click["block_id"],
            "value": click["value"],
        }
        reply = bot.client.block_action(action, user_id=OPS, channel_id=PROD, message=incident)
        assert reply.status == 200
        resolved = world.one_incident(lambda t: "by alice's reconcile" in t, timeout=20)
    assert texts(resolved).startswith("Resolved after")
    assert buttons(resolved) == {}
    replies = _until(lambda: [r for r in world.thread(incident["ts"]) if "reconciled" in r])
    assert "alice reconciled GitRepository flux-system/flux-system" in replies[0]


def test_a_restart_while_an_incident_is_open_updates_the_same_message(process_world: World) -> None:
    world = process_world
    bot = world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    first = world.one_incident(lambda t: "1 failing because of it" in t)
    bot.stop()

    world.start(wait=1)
    world.break_source(world.prod, "apps", "infra")
    updated = world.one_incident(lambda t: "2 failing because of it" in t)
    assert updated["ts"] == first["ts"]
    world.heal(world.prod)
    resolved = world.one_incident(lambda t: "Resolved after" in t)
    assert resolved["ts"] == first["ts"]


def test_after_a_leader_failover_the_new_leader_updates_the_same_message(
    process_world: World,
) -> None:
    world = process_world
    world.start(wait=1, replicas=True)
    time.sleep(1.0)
    world.start(wait=1, replicas=True)
    world.break_source(world.prod, "apps")
    first = world.one_incident(lambda t: "1 failing because of it" in t)
    time.sleep(1.0)  # both replicas see the incident in the ConfigMap

    # Kill the replica that holds the Lease, without handing over.
    lease = world.fleet["home"].get("coordination.k8s.io/v1", "Lease", "fluxbot", "fluxbot-leader")
    assert lease is not None
    holder_pid = int(lease["spec"]["holderIdentity"].rsplit("-", 2)[1])
    leader = next(b for b in world.bots if b.process.pid == holder_pid)
    os.kill(leader.process.pid, signal.SIGKILL)
    leader.process.wait()

    world.break_source(world.prod, "apps", "infra")
    updated = world.one_incident(lambda t: "2 failing because of it" in t, timeout=20)
    assert updated["ts"] == first["ts"]
    world.heal(world.prod)
    resolved = world.one_incident(lambda t: "Resolved after" in t)
    assert resolved["ts"] == first["ts"]


def test_a_sandbox_raises_no_incidents(world: World) -> None:
    world.start(wait=0)
    time.sleep(1.0)
    world.break_source(world.fleet["sbx-1"], *APPS)
    time.sleep(3.0)
    assert world.slack.messages(SBX) == []
    assert world.incidents() == []


def test_an_unreadable_cluster_is_one_incident_not_one_per_object(world: World) -> None:
    world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, *APPS)
    world.one_incident(lambda t: "4 failing because of it" in t)
    world.prod.stop()
    unreadable = _until(
        lambda: [m for m in world.incidents() if "cannot be read" in texts(m)], what="unreadable"
    )
    assert len(unreadable) == 1
    assert "Cluster prod-1 (production) cannot be read" in texts(unreadable[0])
    time.sleep(2.0)
    assert len(world.incidents()) == 2  # the source's incident, and the cluster's
    world.prod.start()
    _until(
        lambda: "Resolved after" in texts(world.slack.message(PROD, unreadable[0]["ts"]) or {}),
        what="the cluster incident resolved",
    )
    assert len(world.incidents()) == 2


def _click(bot: Bot | InProcessBot, button: dict[str, Any], message: dict[str, Any] | None) -> Any:
    action = {
        "type": "button",
        "action_id": button["action_id"],
        "block_id": button.get("block_id") or "b",
        "value": button["value"],
    }
    return bot.client.block_action(
        action, user_id=OPS, channel_id=PROD, message=message, is_ephemeral=message is None
    )


def test_a_snooze_from_the_incident_closes_it_and_is_recorded_in_its_thread(world: World) -> None:
    bot = world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    incident = world.one_incident(lambda t: "1 failing because of it" in t)
    choices = bot.answer(_click(bot, buttons(incident)["Snooze…"], incident))
    done = bot.answer(_click(bot, buttons(choices)["1 day"], None))
    assert "hidden from digests until" in texts(done)

    snoozed = world.one_incident(lambda t: "snoozed by alice until" in t)
    assert snoozed["ts"] == incident["ts"]
    assert buttons(snoozed) == {}
    replies = _until(lambda: [r for r in world.thread(incident["ts"]) if "Snoozed by alice" in r])
    assert "no more reminders" in replies[0]


def test_a_rate_limited_update_is_retried_after_retry_after(world: World) -> None:
    world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    first = world.one_incident(lambda t: "1 failing because of it" in t)
    world.slack.rate_limit("chat.update", times=4, retry_after=1)
    world.heal(world.prod)
    resolved = world.one_incident(lambda t: "Resolved after" in t, timeout=20)
    assert resolved["ts"] == first["ts"]
    limited = [c for c in world.slack.calls("chat.update") if c.status == 429]
    assert len(limited) == 4


def test_a_typed_action_on_an_incident_object_reports_in_the_incident_thread(
    world: World,
) -> None:
    bot = world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    incident = world.one_incident(lambda t: "1 failing because of it" in t)
    with FakeFluxController(world.prod):
        world.prod.clear_requests()
        reply = bot.command("reconcile ks apps", PROD, user=OPS)
        assert reply.status == 200
        replies = _until(
            lambda: [r for r in world.thread(incident["ts"]) if "reconciled" in r], timeout=20
        )
    assert "alice reconciled Kustomization flux-system/apps" in replies[0]
    assert len(world.incidents()) == 1


def test_an_incident_whose_message_was_deleted_is_posted_again(world: World) -> None:
    from slack_sdk import WebClient

    world.start(wait=1)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    first = world.one_incident(lambda t: "1 failing because of it" in t)
    WebClient(world.slack.bot_token, base_url=world.slack.api_url).chat_delete(
        channel=PROD, ts=first["ts"]
    )
    world.break_source(world.prod, "apps", "infra")  # a change to show: the update fails
    again = world.one_incident(lambda t: "2 failing because of it" in t, timeout=25)
    assert again["ts"] != first["ts"]


def test_a_channel_slack_refuses_is_retried_now_and_then_not_hammered(world: World) -> None:
    world.slack.add_channel(PROD, "prod", is_archived=True)
    world.start(wait=0)
    time.sleep(1.0)
    world.break_source(world.prod, "apps")
    _until(lambda: world.slack.calls("chat.postMessage"), what="a first attempt")
    time.sleep(5.0)
    refused = world.slack.calls("chat.postMessage")
    assert len(refused) == 1
    assert refused[0].response["error"] == "is_archived"
