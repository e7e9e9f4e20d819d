"""The remediation world: fake Slack, two fake clusters with fake Flux controllers, a fake
`helm`, and the bot, in this process (tests/slack/harness.py) or as the real
`fluxbot serve --http` (tests/bot_process.py) where the process is what is tested.

Writes are asserted at the fake API server: a refused action writes nothing there.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.slack.action_views import WORKING
from tests.bot_process import SECRET, Bot, start_bot, texts
from tests.fakes import helm as fake_helm
from tests.fakes.flux_controller import FakeFluxController
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object, snapshot
from tests.slack.harness import InProcessBot, start_in_process

DEV, PROD = "C0DEV", "C0PROD"
SRE1, SRE2, OPS, NOBODY, GUEST, GONE = "U0SRE1", "U0SRE2", "U0OPS", "U0NOBODY", "U0GUEST", "U0GONE"
KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system")
HR = "helm.toolkit.fluxcd.io/v2"


def failing_kustomization(name: str) -> dict[str, Any]:
    return flux_object(
        "Kustomization",
        name,
        conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
    )


def failed_release(
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
    failing_kustomization("apps"),
    flux_object("Kustomization", "paused", suspend=True, conditions=[condition()]),
    failed_release(
        "podinfo",
        [(3, "6.7.1", "failed"), (2, "6.6.0", "deployed")],
        labels={
            "kustomize.toolkit.fluxcd.io/name": "apps",
            "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
        },
    ),
]
PROD_OBJECTS = [
    failing_kustomization("apps"),
    failed_release("checkout", [(5, "2.0.0", "failed"), (4, "1.9.0", "superseded")]),
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
    """Fake Slack, two fake clusters with controllers, and the bot (in this process, or the
    real process when `process`)."""

    def __init__(
        self,
        slack: FakeSlack,
        fleet: FakeFleet,
        tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch,
        *,
        process: bool,
    ) -> None:
        self.slack = slack
        self.fleet = fleet
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch
        self.process = process
        self.helm_log = tmp_path / "helm.jsonl"
        self.helm_state = tmp_path / "helm-releases.json"
        self.bot: Bot | InProcessBot | None = None
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
        if self.process:
            self.bot = start_bot(["--config", str(path)], self.slack, self.tmp_path, env)
        else:
            # The fake helm reads these from the environment fluxbot runs it with: this one.
            for name, value in env.items():
                self.monkeypatch.setenv(name, value)
            self.bot = start_in_process(path, self.slack)
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


@contextlib.contextmanager
def open_world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, *, process: bool
) -> Iterator[World]:
    """The world with its users, groups and objects; the bot starts with `World.start`."""
    fleet = FakeFleet(["dev-1", "prod-1"])
    with FakeSlack(signing_secret=SECRET) as slack, fleet:
        slack.add_usergroup("S0SRE", "sre", users=[SRE1])
        for user in (SRE1, SRE2, OPS, NOBODY):
            slack.add_user(user, user.lower())
        slack.add_user(GUEST, "guest", is_restricted=True)
        slack.add_user(GONE, "gone", deleted=True)
        fleet["dev-1"].apply_many(DEV_OBJECTS)
        fleet["prod-1"].apply_many(PROD_OBJECTS)
        w = World(slack, fleet, tmp_path, monkeypatch, process=process)
        w.controllers = [FakeFluxController(fleet["dev-1"]), FakeFluxController(fleet["prod-1"])]
        with w.controllers[0], w.controllers[1]:
            try:
                yield w
            finally:
                if w.bot is not None:
                    w.bot.stop()


def until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    """Wait until `predicate` returns something truthy, and return it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def bump(server: FakeKubeApiServer, kind: tuple[str, str, str], name: str, **spec: Any) -> None:
    """Change an object's spec, as a commit reaching the cluster would (new generation)."""
    stored = server.get(*kind, name)
    assert stored is not None
    stored["spec"].update(spec)
    stored["metadata"].pop("generation")
    server.apply(stored)
