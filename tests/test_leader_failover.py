"""Two replicas: one leader records and posts; when it dies, the other carries on without
losing a recorded transition or posting the same digest again.

Both runtimes are the real `bot.compose.runtime.start_runtime` (watch cache, Lease election,
history in ConfigMaps) against fake API servers, posting to the fake Slack.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.compose.runtime import Runtime, start_runtime
from bot.config import FluxbotConfig
from bot.digests.scheduler import DigestScheduler
from bot.domain.history import RunState
from bot.domain.transitions import Change
from bot.slack.digest_post import SlackDigestPoster
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

SLOT = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def _until(predicate: Callable[[], Any], timeout: float = 15.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


@pytest.fixture
def world(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[FakeFleet, FakeSlack, FluxbotConfig]]:
    fleet = FakeFleet(["home", "prod-1"])
    with fleet, FakeSlack() as slack:
        fleet["prod-1"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig", current_context="home")
        # fluxbot's own cluster (Lease, ConfigMaps) is the kubeconfig's current context.
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        config = FluxbotConfig.model_validate(
            {
                "kubernetes": {"kubeconfig": str(kubeconfig)},
                "history": {
                    "backend": "configmap",
                    "namespace": "fluxbot",
                    "leader_election": True,
                    "lease_seconds": 1.5,
                },
                "environments": {
                    "production": {"channel": "C0PROD", "clusters": [{"context": "prod-1"}]}
                },
            }
        )
        yield fleet, slack, config


def _scheduler(runtime: Runtime, slack: FakeSlack) -> DigestScheduler:
    client = WebClient(slack.bot_token, base_url=slack.api_url)
    poster = SlackDigestPoster(client, runtime.runner.layout, None)
    return DigestScheduler(
        runtime.config, runtime.runner.digests, poster, runtime.history,
        is_leader=lambda: runtime.is_leader,
    )  # fmt: skip


def test_the_next_leader_keeps_the_history_and_does_not_repost(
    world: tuple[FakeFleet, FakeSlack, FluxbotConfig],
) -> None:
    fleet, slack, config = world
    first = start_runtime(config, sync_seconds=10)
    _until(lambda: first.is_leader)
    second = start_runtime(config, sync_seconds=10)
    try:
        assert not second.is_leader
        # A change while the first replica leads: it records it.
        broken = condition("Ready", "False", "BuildFailed", "broken")
        fleet["prod-1"].set_status(
            "kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system", "apps",
            {"observedGeneration": 1, "conditions": [broken]},
        )  # fmt: skip

        def recorded(runtime: Runtime) -> list[Any]:
            until = dt.datetime.now(dt.UTC)
            history = runtime.history.transitions("production", SLOT - dt.timedelta(days=1), until)
            return [t for t in history if t.change is Change.FAILING]

        _until(lambda: recorded(first))
        assert _scheduler(first, slack).run_slot("production", SLOT) is RunState.POSTED
        assert _scheduler(second, slack).run_slot("production", SLOT) is None  # a follower
        first.history.flush()  # type: ignore[attr-defined]

        # The leader dies without handing over: no release, no goodbye.
        assert first.elector is not None
        first.elector.stop(release=False)
        first.cache.stop()
        _until(lambda: second.is_leader)

        assert _until(lambda: recorded(second)), "the transition recorded by the old leader"
        assert _scheduler(second, slack).run_slot("production", SLOT) is None
        assert second.history.last_run("production", [RunState.POSTED]) is not None
        digests = [
            c for c in slack.calls("chat.postMessage") if c.ok and "thread_ts" not in c.params
        ]
        assert len(digests) == 1
    finally:
        second.stop()
        first.history.close()
