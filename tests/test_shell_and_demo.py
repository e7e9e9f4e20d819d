"""The demo fleet and the terminal chat adapter, through the real `fluxbot` process."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _fluxbot(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def test_demo_status_puts_each_environments_failures_first() -> None:
    result = _fluxbot("status", "production", "--demo")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "== production: 6 failing of 42 Flux objects"
    assert lines[1].startswith("   2 clusters · 42 Flux objects")
    eu = lines.index("prod-eu-1: 5 failing · 0 progressing · 0 suspended · 16 ready")
    # The cluster line, what it has deployed, the table header, then the first row.
    assert lines[eu + 1].startswith("  deployed: flux-system production@cb83a77d")
    first_row = lines[eu + 3]
    assert "GitRepository" in first_row
    assert "platform" in first_row
    assert "authentication required" in first_row
    # The Kustomizations failing because of it follow their root cause, marked as such.
    assert lines[eu + 4].split()[1:3] == ["↳", "Kustomization"]


def test_demo_json_has_the_flux_get_columns_for_every_object() -> None:
    result = _fluxbot("status", "--demo", "--output", "json")
    records = json.loads(result.stdout)
    assert {r["environment"] for r in records} == {"development", "staging", "production"}
    assert len({r["cluster"] for r in records}) == 5
    for record in records:
        assert record["ready"] in {"True", "False", "Unknown"}
        assert isinstance(record["suspended"], bool)
        assert isinstance(record["revision"], str)
        assert isinstance(record["message"], str)
    stalled = next(r for r in records if r["stalled"] and r["kind"] == "HelmRelease")
    assert (stalled["cluster"], stalled["name"]) == ("prod-us-1", "kube-prometheus-stack")
    # The facts beyond flux get: how long, stuck, the root cause, and whether data is stale.
    apps = next(r for r in records if (r["cluster"], r["name"]) == ("prod-eu-1", "apps"))
    assert apps["root_cause"] == "GitRepository/flux-system/platform"
    assert apps["age_seconds"] > 0
    assert apps["stale_since"] is None  # one-shot status reads straight from the clusters
    platform = next(r for r in records if r["name"] == "platform" and r["health"] == "failing")
    assert platform["root_cause"] is None
    stuck = {(r["cluster"], r["name"]) for r in records if r["stuck"]}
    assert ("staging-us-1", "podinfo") in stuck


@pytest.mark.parametrize(
    "command",
    [
        ["status", "staging"],
        ["shell", "-x", "status"],
        ["digest", "staging", "--dry-run"],
        ["serve"],
        ["serve", "--http"],
    ],
)
def test_without_configuration_every_command_refuses_rather_than_show_the_demo(
    tmp_path: Path, command: list[str]
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", *command],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={
            "PATH": "/usr/bin:/bin",
            "PYTHONPATH": str(ROOT),
            "SLACK_BOT_TOKEN": "xoxb-real-workspace",
            "SLACK_APP_TOKEN": "xapp-real-workspace",
            "SLACK_SIGNING_SECRET": "real-secret",
        },
        timeout=60,
        check=False,
    )
    assert result.returncode == 2, result.stderr
    assert "no configuration: pass --config PATH" in result.stderr
    assert "--demo runs the built-in demo fleet instead" in result.stderr
    assert result.stdout == ""


def test_shell_answers_each_command_line_like_slack_would() -> None:
    result = _fluxbot(
        "shell",
        "--demo",
        stdin="help\n/flux status staging --failing\nget hr kube-prometheus-stack -n monitoring "
        "--cluster prod-us-1\nstatus nowhere\nexit\nstatus\n",
    )
    out = result.stdout
    assert "status [ENV] [--cluster CLUSTER] [--kind KIND] [--failing]" in out
    assert "== staging: 2 stuck · nothing failing (41 Flux objects)" in out
    assert "   2 clusters · 41 Flux objects (listing failing only): 0 failing" in out
    assert "HelmRelease monitoring/kube-prometheus-stack (production / prod-us-1): failing" in out
    assert any(
        line.split()[:3] == ["Stalled", "True", "RetriesExceeded"]
        for line in out.splitlines()
        if line.strip()
    )
    assert "REVISION  CHART" in out
    assert "Unknown environment 'nowhere'. Valid names: development, staging, production" in out
    # `exit` ends the session: the last `status` is never answered.
    assert "== development" not in out
    assert result.returncode == 1  # one command named an unknown environment


def test_shell_runs_one_command_with_x() -> None:
    result = _fluxbot("shell", "--demo", "-x", "envs")
    assert result.returncode == 0
    assert result.stdout.splitlines()[0].split() == ["ENVIRONMENT", "TIER", "CHANNEL", "CLUSTERS"]
