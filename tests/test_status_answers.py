"""Status answers that never mislead: unreadable and stale clusters lead every answer.

The clusters are real fake API servers read by the real watch cache: one answers 401 from the
start (its credentials were rotated), the other goes away after syncing (stale). The answers
are rendered for Slack and the terminal and checked as a reader would read them.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.cli import status_records
from bot.commands.executor import CommandRunner
from bot.config import FluxbotConfig
from bot.domain.fleet import CacheState, ClusterTarget
from bot.kube.cache import FleetCache
from bot.render.text import render as render_text
from bot.slack.render import MAX_BLOCKS, SlackMessage
from bot.slack.render import render as render_slack
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object

EU = ClusterTarget("staging", "staging-eu-1")
US = ClusterTarget("staging", "staging-us-1")


def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError(f"condition not met within {timeout} s")


def _valid(message: SlackMessage) -> None:
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert 0 < len(message.text) <= 4000


@pytest.fixture
def staging(tmp_path: Path) -> Iterator[tuple[FakeFleet, FleetCache, CommandRunner]]:
    """staging-eu-1 answers 401 from the start; staging-us-1 syncs, then goes away."""
    fleet = FakeFleet(["staging-eu-1", "staging-us-1"])
    with fleet:
        for server in fleet:
            server.apply_many(
                [
                    flux_object("GitRepository", "flux-system", conditions=[condition()]),
                    flux_object("Kustomization", "apps", conditions=[condition()]),
                ]
            )
        kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
        fleet["staging-eu-1"].token = "rotated"
        config = FluxbotConfig.model_validate(
            {
                "kubernetes": {
                    "kubeconfig": str(kubeconfig),
                    "connect_timeout_seconds": 1,
                    "request_timeout_seconds": 2,
                },
                "cache": {"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.2},
                "environments": {
                    "staging": {
                        "channel": "C0STAGE",
                        "clusters": [{"context": name} for name in fleet.servers],
                    }
                },
            }
        )
        cache = FleetCache(config)
        cache.start()
        try:
            _until(lambda: cache.freshness().get(US, None) is not None and _live(cache, US))
            fleet["staging-us-1"].stop()
            _until(lambda: cache.freshness()[US].state is CacheState.STALE)
            yield fleet, cache, CommandRunner(config.layout(), cache)
        finally:
            cache.stop()


def _live(cache: FleetCache, target: ClusterTarget) -> bool:
    return cache.freshness()[target].state is CacheState.LIVE


def test_an_environment_with_an_unreadable_and_a_stale_cluster_says_so_first(
    staging: tuple[FakeFleet, FleetCache, CommandRunner],
) -> None:
    _fleet, _cache, runner = staging
    answer = runner.handle("status staging")
    message = render_slack(answer, share_value="status staging")
    _valid(message)
    header = message.blocks[0]["text"]["text"]
    assert re.match(
        r"staging: 1 cluster unreadable \(401 for \d+ s\) · "
        r"1 cluster stale \(unreachable for \d+ s\)",
        header,
    )
    assert header.endswith("· nothing failing in staging-us-1")
    # The notification leads with the same words, never "0 failing".
    assert message.text.startswith("staging: 1 cluster unreadable (401 for")
    lines = message.blocks[1]["text"]["text"].splitlines()
    assert lines[0].startswith(":no_entry: *staging-eu-1* *unreadable*: 401 for")
    # Stale data keeps no green icon: a warning, with the last known counts.
    assert lines[1].startswith(":warning: *staging-us-1*  0 failing · 0 progressing")
    assert "*stale*: unreachable for" in lines[1]
    assert ":large_green_circle:" not in str(message.blocks)

    # `--output json` says since when each record's data is stale.
    records = status_records(answer)
    assert {r["cluster"] for r in records} == {"staging-us-1"}
    assert all(r["stale_since"] for r in records)

    text = render_text(answer)
    assert text.startswith("== staging: 1 cluster unreadable (401 for")
    assert "staging-eu-1: CANNOT READ (401 for" in text
    assert "staging-us-1: 0 failing · 0 progressing · 0 suspended · 2 ready (STALE: " in text


def test_get_and_envs_say_which_clusters_could_not_be_read(
    staging: tuple[FakeFleet, FleetCache, CommandRunner],
) -> None:
    _fleet, _cache, runner = staging
    found = render_slack(runner.handle("get ks apps"))
    _valid(found)
    assert found.text.startswith("1 cluster unreadable (401 for")
    assert "1 cluster stale (unreachable for" in found.text
    assert ":no_entry: staging-eu-1 not searched: *unreadable*: 401" in str(found.blocks)

    missing = render_slack(runner.handle("get ks nowhere"))
    assert "was found in the clusters that could be read" in str(missing.blocks)

    envs = render_slack(runner.handle("envs"))
    _valid(envs)
    assert re.match(
        r"Environments: 1 cluster unreadable \(401 for \d+ s\) · "
        r"1 cluster stale \(unreachable for \d+ s\)",
        envs.blocks[0]["text"]["text"],
    )
    assert ":no_entry: staging-eu-1 (unreadable: 401 for" in str(envs.blocks)
    assert ":warning: staging-us-1 (stale: unreachable for" in str(envs.blocks)
    assert envs.text.startswith("1 cluster unreadable (401 for")
    assert render_text(runner.handle("envs")).startswith("1 cluster unreadable (401 for")
