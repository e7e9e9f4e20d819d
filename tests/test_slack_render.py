"""Slack rendering stays within Block Kit's limits however large or strange the fleet is."""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.executor import CommandContext, CommandRunner
from bot.demo import load_demo
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.status import parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.slack.render import MAX_BLOCKS, SlackMessage, render
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object


@cache
def _demo_runner() -> CommandRunner:
    return CommandRunner(*load_demo())


HOSTILE = "<!channel> *bold* & `code` <https://evil.example|click> " * 40


def _valid(message: SlackMessage) -> None:
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert 0 < len(message.text) <= 4000


def _huge_fleet(clusters: int, failing_per_cluster: int) -> CommandRunner:
    """Every cluster full of failing objects whose messages are long and full of markup."""
    offline = []
    for c in range(clusters):
        objects = [
            parse_flux_object(
                flux_object(
                    "Kustomization",
                    f"app-{i}",
                    conditions=[condition("Ready", "False", "BuildFailed", HOSTILE)],
                )
            )
            for i in range(failing_per_cluster)
        ]
        objects += [
            parse_flux_object(
                flux_object("Kustomization", f"paused-{i}", suspend=True, conditions=[])
            )
            for i in range(30)
        ]
        offline.append(OfflineCluster("production", f"cluster-{c:02d}", tuple(objects)))
    layout = FleetLayout(
        (EnvironmentLayout("production", "production", "C0PROD", tuple(c.name for c in offline)),)
    )
    return CommandRunner(layout, OfflineFleetReader(offline))


def test_a_huge_environment_is_condensed_never_rejected() -> None:
    runner = _huge_fleet(clusters=30, failing_per_cluster=40)
    message = render(runner.handle("status production"), share_value="status production")
    _valid(message)
    texts = str(message.blocks)
    assert "and 1185 more failing; narrow with `--kind` or `--cluster`" in texts
    # Cluster-provided text is escaped: no mention, link or markup gets through.
    assert "<!channel>" not in texts
    assert "&lt;!channel&gt;" in texts
    assert message.blocks[-1]["type"] == "actions"


def test_get_of_an_object_in_many_clusters_stays_within_limits() -> None:
    runner = _huge_fleet(clusters=30, failing_per_cluster=1)
    _valid(render(runner.handle("get ks app-0")))


@pytest.mark.parametrize("environment", ["development", "staging", "production"])
def test_the_demo_fleet_renders_as_valid_block_kit(environment: str) -> None:
    runner = _demo_runner()
    for command in (
        f"status {environment}",
        f"status {environment} --failing",
        "envs",
        "help",
        "help get",
        "status nowhere",
        "get hr kube-prometheus-stack -n monitoring",
        "get gitrepo platform",
    ):
        _valid(render(runner.handle(command, CommandContext(prefix="/flux "))))


@settings(max_examples=200, deadline=None)
@given(
    st.one_of(
        st.text(max_size=60),
        st.lists(
            st.sampled_from(
                [
                    "status", "get", "envs", "help", "production", "staging", "hr", "ks",
                    "gitrepo", "podinfo", "--cluster", "prod-eu-1", "--kind", "--failing",
                    "-n", "monitoring", "--share", "<", "&", "*", '"',
                ]
            ),
            max_size=7,
        ).map(" ".join),
    )
)  # fmt: skip
def test_any_command_text_renders_as_valid_block_kit(text: str) -> None:
    answer = _demo_runner().handle(
        text, CommandContext(default_environment="production", prefix="/flux ")
    )
    _valid(render(answer, share_value=text[:2000] or None))
