"""`fluxbot check-config`: a valid file gets a one-line summary, a bad one every problem by path."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.config import ConfigError, Tier, parse_config

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "config" / "fluxbot.example.yaml"


def _fluxbot(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )


def test_example_config_is_valid_and_summarised_in_one_line() -> None:
    result = _fluxbot("check-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        f"{EXAMPLE}: valid: 4 environments (sandbox-a, development, staging, production), "
        "4 clusters"
    ]


def test_example_config_mirrors_a_real_fleet() -> None:
    config = parse_config(EXAMPLE.read_text())
    contexts = {
        name: [c.context for c in env.clusters] for name, env in config.environments.items()
    }
    assert contexts == {
        "sandbox-a": ["kind-sandbox-a"],
        "development": ["kind-development"],
        "staging": ["kind-staging"],
        "production": ["kind-production"],
    }
    assert [config.tier_of(n) for n in config.environments] == list(Tier)


def test_invalid_config_exits_2_with_one_line_per_problem_naming_the_field(tmp_path: Path) -> None:
    bad = tmp_path / "fluxbot.yaml"
    bad.write_text(
        "environments:\n"
        "  production:\n"
        "    channel: '#prod'\n"
        "    clusters:\n"
        "      - context: ''\n"
        "      - name: prod-us-1\n"
        "  qa-1:\n"
        "    channel: C0QA\n"
        "    clusters: []\n"
        "kubernetes:\n"
        "  request_timeout_seconds: 0\n"
    )
    result = _fluxbot("check-config", str(bad))
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"fluxbot: {bad}: environments.production.channel: must be a Slack channel ID such as "
        "C0123ABCDEF (not a #name) (got '#prod')",
        f"fluxbot: {bad}: environments.production.clusters[0].context: String should have at "
        "least 1 character",
        f"fluxbot: {bad}: environments.production.clusters[1]: set one of: context, kubeconfig, "
        "or in_cluster: true",
        f"fluxbot: {bad}: environments.qa-1.clusters: List should have at least 1 item after "
        "validation, not 0",
        f"fluxbot: {bad}: kubernetes.request_timeout_seconds: Input should be greater than 0",
    ]


def test_secrets_in_the_file_are_refused_with_where_they_belong() -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(
            "slack_bot_token: xoxb-1\nenvironments:\n  dev:\n    channel: C0DEV1\n"
            "    clusters: [{context: kind-dev}]\n"
        )
    (problem,) = err.value.problems
    assert problem.startswith("slack_bot_token: secrets do not belong in the config file")
    assert "xoxb-1" not in problem


@pytest.mark.parametrize(
    ("yaml_text", "problem"),
    [
        ("environments: [\n", "line 2, column 1: not valid YAML"),
        ("- a\n", "the file must be a YAML mapping with `environments:`"),
        ("environments: {}\n", "environments: Dictionary should have at least 1 item"),
        (
            "environments:\n  qa:\n    channel: C0DEV1\n    clusters: [{context: a}]\n",
            "environments.qa.tier: cannot be inferred from the name",
        ),
        (
            "environments:\n  dev:\n    channel: C0DEV1\n"
            "    clusters: [{context: a}, {context: a}]\n",
            "environments.dev: cluster name 'a' is used twice",
        ),
        (
            "environments:\n"
            "  dev:\n    channel: C0DEV1\n    clusters: [{context: a}]\n"
            "  prod:\n    channel: C0PROD2\n    clusters: [{context: a}]\n",
            "cluster 'a' is in both 'dev' and 'prod'",
        ),
        (
            "environments:\n  dev:\n    channel: C0DEV1\n"
            "    clusters: [{in_cluster: true, context: a}]\n",
            "environments.dev.clusters[0]: in_cluster: true cannot be combined",
        ),
        (
            "environments:\n  dev:\n    channel: C0DEV1\n"
            "    clusters: [{context: a, colour: red}]\n",
            "environments.dev.clusters[0].colour: unknown field",
        ),
        (
            "environments:\n"
            "  dev:\n    channel: C0DEV1\n    clusters: [{context: a}]\n"
            "  prod:\n    channel: C0PROD2\n    aliases: [dev]\n    clusters: [{context: b}]\n",
            "environments.prod.aliases: 'dev' already names 'dev'",
        ),
        (
            "environments:\n"
            "  dev:\n    channel: C0DEV1\n    aliases: [d]\n    clusters: [{context: a}]\n"
            "  prod:\n    channel: C0PROD2\n    aliases: [d]\n    clusters: [{context: b}]\n",
            "environments.prod.aliases: 'd' already names 'dev'",
        ),
        (
            "actions:\n  helm_remote_clusters:\n"
            "    - {cluster: a, namespace: apps, secret: edge, runs_on: edge-1}\n"
            "environments:\n  dev:\n    channel: C0DEV1\n    clusters: [{context: a}]\n",
            "actions.helm_remote_clusters.0.runs_on: unknown cluster 'edge-1' (clusters: a)",
        ),
    ],
)
def test_each_kind_of_mistake_is_explained(yaml_text: str, problem: str) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(yaml_text)
    assert any(p.startswith(problem) for p in err.value.problems), err.value.problems


def test_missing_file_is_reported_not_raised(tmp_path: Path) -> None:
    result = _fluxbot("check-config", str(tmp_path / "missing.yaml"))
    assert result.returncode == 2
    assert "cannot read the file: No such file or directory" in result.stderr
    assert "Traceback" not in result.stderr


def test_incidents_default_by_tier_and_can_be_tuned_or_turned_off() -> None:
    config = parse_config(
        """
environments:
  sandbox-a: {channel: C0SBX, clusters: [{context: s}]}
  sandbox-b:
    channel: C0SBY
    clusters: [{context: t}]
    incidents: {wait_seconds: 0}
  development: {channel: C0DEV, clusters: [{context: d}]}
  staging:
    channel: C0STG
    clusters: [{context: g}]
    incidents: {enabled: false}
  production:
    channel: C0PRD
    clusters: [{context: p}]
    incidents: {wait_seconds: 60, repeat_seconds: 3600, mention: S0ONCALL}
"""
    )
    assert config.incidents("sandbox-a") is None
    sandbox_b = config.incidents("sandbox-b")
    assert sandbox_b is not None
    assert sandbox_b.wait_seconds == 0
    development = config.incidents("development")
    assert development is not None
    assert (development.wait_seconds, development.repeat_seconds) == (180, 14400)
    assert development.mention is None
    assert config.incidents("staging") is None
    production = config.incidents("production")
    assert production is not None
    assert (production.wait_seconds, production.mention) == (60, "S0ONCALL")


def test_an_incident_mention_must_be_a_user_group_id() -> None:
    with pytest.raises(ConfigError) as excinfo:
        parse_config(
            "environments:\n  production:\n    channel: C0PRD\n    clusters: [{context: p}]\n"
            "    incidents: {mention: '@oncall', wait_seconds: -1}\n"
        )
    problems = "\n".join(excinfo.value.problems)
    assert "environments.production.incidents.mention" in problems
    assert "environments.production.incidents.wait_seconds" in problems


def test_an_alias_names_its_environment_in_commands() -> None:
    config = parse_config(EXAMPLE.read_text())
    layout = config.layout()
    production = layout.resolve("prod")
    assert production is not None
    assert production.name == "production"
    assert layout.resolve("PROD") is production
    assert layout.resolve("prd") is None
