"""Digests a reader can trust, through the real `fluxbot digest` and `fluxbot serve` processes.

Against fake Kubernetes API servers and the fake Slack: a re-run posts nothing, a forced run
posts once more, quiet environments stay quiet, what changed while fluxbot was down is in the
next digest (SQLite and ConfigMap history alike), and an unreadable cluster makes the exit
code 1 and is reported as unreadable, with since when.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.digests.recorder import TransitionRecorder
from bot.domain.status import parse_flux_object
from bot.domain.transitions import Change, Listing
from bot.history.sqlite import SqliteHistory
from tests.bot_process import start_bot, texts
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

ROOT = Path(__file__).resolve().parent.parent
KS = "kustomize.toolkit.fluxcd.io/v1"
# A GitRepository's artifact as source-controller writes it (api/v1 Artifact: all required).
ARTIFACT = {
    "revision": "main@sha1:696f056df216eea4f9401adbee0ff744d4df390f",
    "path": "gitrepository/flux-system/platform/696f056d.tar.gz",
    "url": "http://source-controller.flux-system.svc/platform.tar.gz",
    "digest": "sha256:" + "c" * 64,
    "lastUpdateTime": "2026-11-26T08:00:00Z",
}
FAILED = condition("Ready", "False", "ReconciliationFailed", "Deployment/apps/web dry-run failed")


class World:
    """Fake clusters, a fake Slack, and a configuration file for them."""

    def __init__(self, fleet: FakeFleet, slack: FakeSlack, tmp_path: Path, backend: str) -> None:
        self.fleet = fleet
        self.slack = slack
        self.tmp_path = tmp_path
        self.backend = backend
        self.kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig", current_context="home")
        self.config = tmp_path / "fluxbot.yaml"
        self.write_config()

    def write_config(self, **digest: Any) -> None:
        history: dict[str, Any] = (
            {"backend": "configmap", "namespace": "fluxbot"}
            if self.backend == "configmap"
            else {"path": str(self.tmp_path / "history.db")}
        )
        self.config.write_text(
            yaml.safe_dump(
                {
                    "kubernetes": {"kubeconfig": str(self.kubeconfig)},
                    "history": history,
                    "environments": {
                        "production": {
                            "channel": "C0PROD",
                            "clusters": [{"context": "prod-1"}, {"context": "prod-2"}],
                            # Daily at midnight: every run today belongs to today's slot.
                            "digest": {"schedule": "0 0 * * *", **digest},
                        }
                    },
                }
            )
        )

    @property
    def env(self) -> dict[str, str]:
        return {
            "SLACK_BOT_TOKEN": self.slack.bot_token,
            "SLACK_API_URL": self.slack.api_url,
            # fluxbot's own cluster (ConfigMap history) is the kubeconfig's current context.
            "KUBECONFIG": str(self.kubeconfig),
        }

    def digest(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run `fluxbot digest production ARGS`."""
        return subprocess.run(
            [sys.executable, "-m", "bot.cli", "digest", "production", "--config",
             str(self.config), *args],
            capture_output=True, text=True, cwd=ROOT, env={**os.environ, **self.env},
            timeout=60, check=False,
        )  # fmt: skip

    def posts(self) -> list[dict[str, Any]]:
        """Top-level messages posted (thread replies left out)."""
        return [
            c.params
            for c in self.slack.calls("chat.postMessage")
            if c.ok and not c.params.get("thread_ts")
        ]


@pytest.fixture(params=["sqlite", "configmap"])
def world(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[World]:
    fleet = FakeFleet(["home", "prod-1", "prod-2"])
    with fleet, FakeSlack() as slack:
        fleet["prod-1"].apply_many(
            [
                flux_object("GitRepository", "platform", conditions=[condition()]),
                flux_object("Kustomization", "apps", conditions=[condition()]),
                flux_object("Kustomization", "infra", conditions=[FAILED]),
            ]
        )
        fleet["prod-2"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        yield World(fleet, slack, tmp_path, request.param)


@pytest.fixture
def sqlite_world(tmp_path: Path) -> Iterator[World]:
    fleet = FakeFleet(["home", "prod-1", "prod-2"])
    with fleet, FakeSlack() as slack:
        fleet["prod-1"].apply(flux_object("Kustomization", "infra", conditions=[FAILED]))
        fleet["prod-2"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        yield World(fleet, slack, tmp_path, "sqlite")


def test_a_rerun_posts_nothing_and_force_posts_once_more(sqlite_world: World) -> None:
    world = sqlite_world
    first = world.digest()
    assert first.returncode == 0, first.stderr
    assert "posted the production digest" in first.stderr
    again = world.digest()
    assert again.returncode == 0, again.stderr
    assert "was already posted" in again.stderr
    assert "--force" in again.stderr
    assert len(world.posts()) == 1
    forced = world.digest("--force")
    assert forced.returncode == 0, forced.stderr
    assert "posted the production digest" in forced.stderr
    assert len(world.posts()) == 2


def test_quiet_when_healthy_skip_posts_nothing_when_all_is_well(sqlite_world: World) -> None:
    world = sqlite_world
    world.fleet["prod-1"].set_status(
        KS, "Kustomization", "flux-system", "infra", {"conditions": [condition()]}
    )
    world.write_config(quiet_when_healthy="skip")
    result = world.digest()
    assert result.returncode == 0, result.stderr
    assert "nothing posted" in result.stderr
    assert world.posts() == []
    dry = world.digest("--dry-run")
    assert "a real run posts nothing" in dry.stderr


def test_an_unreadable_cluster_is_reported_as_such_with_exit_code_1(sqlite_world: World) -> None:
    world = sqlite_world
    world.fleet["prod-2"].stop()
    result = world.digest("--dry-run", "--output", "json")
    assert result.returncode == 1, result.stderr
    clusters = {c["cluster"]: c for c in json.loads(result.stdout)["clusters"]}
    assert clusters["prod-2"]["state"] == "unreadable"
    assert clusters["prod-2"]["error"]
    assert clusters["prod-1"]["state"] == "live"
    assert "cannot read production/prod-2" in result.stderr
    text = world.digest("--dry-run")
    assert text.returncode == 1
    assert "prod-2: cannot read (never read by fluxbot)" in text.stdout


def _serve_until(world: World, pattern: str) -> str:
    """Run `fluxbot serve` until its log shows `pattern`, then stop it (SIGTERM); the log."""
    bot = start_bot(
        ["--config", str(world.config)],
        world.slack,
        world.tmp_path,
        env={**world.env, "FLUXBOT_LOG_LEVEL": "info"},
    )
    try:
        deadline = time.monotonic() + 30
        while not re.search(pattern, bot.log.read_text()):
            assert time.monotonic() < deadline, bot.log.read_text()
            time.sleep(0.1)
    finally:
        bot.stop()
    assert bot.process.returncode == 0, bot.log.read_text()
    return bot.log.read_text()


def test_what_changed_while_fluxbot_was_down_is_in_the_next_digest(world: World) -> None:
    world.write_config(schedule="0 0 1 1 *")  # no scheduled slot while the test runs
    _serve_until(world, r"serving /flux")
    # While fluxbot is stopped: apps breaks, infra recovers.
    world.fleet["prod-1"].set_status(
        KS, "Kustomization", "flux-system", "apps", {"conditions": [FAILED]}
    )
    world.fleet["prod-1"].set_status(
        KS, "Kustomization", "flux-system", "infra", {"conditions": [condition()]}
    )
    world.fleet["prod-1"].set_status(
        "source.toolkit.fluxcd.io/v1", "GitRepository", "flux-system", "platform",
        {"conditions": [condition()], "artifact": ARTIFACT},
    )  # fmt: skip
    # One line per kind listed: the Kustomizations and the GitRepository.
    log = _serve_until(world, r"(change\(s\) while fluxbot was not watching[\s\S]*){2}")
    assert "prod-1: 2 change(s) while fluxbot was not watching" in log
    assert "prod-1: 1 change(s) while fluxbot was not watching" in log

    result = world.digest("--dry-run", "--output", "json")
    assert result.returncode == 0, result.stderr
    changes = json.loads(result.stdout)["changes"]
    assert [f["object"] for f in changes["new_failures"]] == [
        "prod-1/Kustomization/flux-system/apps"
    ]
    assert [r["object"] for r in changes["recoveries"]] == [
        "prod-1/Kustomization/flux-system/infra"
    ]
    assert changes["new_failures"][0]["while_down"]
    (revision,) = changes["revisions"]
    assert (revision["short"], revision["while_down"] is not None) == ("main@sha1:696f056d", True)
    text = world.digest("--dry-run").stdout
    assert re.search(r"while fluxbot was down, \d\d:\d\d–\d\d:\d\d", text), text

    # A cluster that cannot be read now says when fluxbot last read it.
    world.fleet["prod-2"].stop()
    down = world.digest("--dry-run", "--output", "json")
    assert down.returncode == 1
    prod2 = next(c for c in json.loads(down.stdout)["clusters"] if c["cluster"] == "prod-2")
    assert prod2["state"] == "unreadable"
    assert prod2["last_read"] is not None
    assert prod2["since"] == prod2["last_read"]


def test_a_cut_section_says_how_many_more_and_where_to_see_them(tmp_path: Path) -> None:
    fleet = FakeFleet(["home", "prod-1", "prod-2"])
    with fleet, FakeSlack() as slack:
        fleet["prod-1"].apply_many(
            [
                flux_object("Kustomization", f"app-{i:03}", conditions=[condition()])
                for i in range(225)
            ]
            + [
                flux_object(
                    "Kustomization", f"paused-{i:02}", suspend=True, conditions=[condition()]
                )
                for i in range(40)
            ]
        )
        fleet["prod-2"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        world = World(fleet, slack, tmp_path, "sqlite")
        world.write_config(schedule="0 0 1 1 *")
        bot = start_bot(["--config", str(world.config)], slack, tmp_path, env=world.env)
        try:
            for i in range(225):
                fleet["prod-1"].set_status(
                    KS, "Kustomization", "flux-system", f"app-{i:03}", {"conditions": [FAILED]}
                )
            history = SqliteHistory(tmp_path / "history.db")
            deadline = time.monotonic() + 30
            while len(history.failing_since("production")) < 225:
                assert time.monotonic() < deadline, bot.log.read_text()
                time.sleep(0.2)
            history.close()
        finally:
            bot.stop()

        # The terminal prints every one of them.
        printed = world.digest("--dry-run").stdout
        assert printed.count("- new failure: Kustomization") == 225
        result = world.digest("--force")
        assert result.returncode == 0, result.stderr
        (details,) = [
            c.params for c in slack.calls("chat.postMessage") if c.params.get("thread_ts")
        ]
        text = texts(details)
        assert "… and 213 more root cause(s); `/flux status --failing` lists them" in text
        assert "… and 15 more suspended; `/flux status`" in text
        assert (
            "… and 215 more new failure(s); `/flux status --failing` lists what still fails" in text
        )


def test_a_new_leader_records_what_changed_while_no_one_was_recording(tmp_path: Path) -> None:
    """The old leader recorded `apps` as ready; it failed during the handover, when only a
    follower (which records nothing) saw it. Becoming leader, the follower compares its cache
    with the store and records the failure."""
    history = SqliteHistory(tmp_path / "history.db")
    ready = parse_flux_object(flux_object("Kustomization", "apps", conditions=[condition()]))
    broken = parse_flux_object(flux_object("Kustomization", "apps", conditions=[FAILED]))
    at = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
    old_leader = TransitionRecorder(history, live_clusters=lambda: [("production", "prod-1")])
    old_leader.listing(Listing("production", "prod-1", "Kustomization", (ready,), at))
    old_leader.flush()
    old_leader.beat()
    leading = False
    follower = TransitionRecorder(
        history,
        is_leader=lambda: leading,
        snapshot=lambda: [Listing("production", "prod-1", "Kustomization", (broken,), at)],
    )
    follower.flush()  # a follower: nothing recorded
    assert history.transitions("production", at - dt.timedelta(days=1), at) == []
    leading = True
    assert follower.flush() == 1
    (failing,) = history.transitions("production", at - dt.timedelta(days=1), at)
    assert (failing.name, failing.change, failing.down_since is not None) == (
        "apps",
        Change.FAILING,
        True,
    )
    history.close()
