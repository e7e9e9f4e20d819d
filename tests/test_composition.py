"""One composition root: commands load only the clients their mode uses.

`bot/compose` is the only place that knows which adapter implements which port; the CLI parses
arguments and calls it. A command that needs neither Slack, Kubernetes nor a scheduler must not
pay for importing them (they are most of fluxbot's start-up time), nor fail where they are
missing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml

from tests.flux_objects import condition, flux_object

CLIENTS = ("slack_bolt", "slack_sdk", "waitress", "kubernetes", "urllib3", "apscheduler")

# Runs a fluxbot command (argv after the client list) in a fresh interpreter, then prints which
# of the clients it imported.
PROBE = """
import json, sys
import bot.cli
clients, argv = sys.argv[1].split(","), sys.argv[2:]
code = bot.cli.main(argv) if argv else 0
print(json.dumps({"code": code, "loaded": [m for m in clients if m in sys.modules]}))
"""


def _loaded(*argv: str) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(CLIENTS), *argv],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def test_importing_the_cli_loads_no_slack_kubernetes_or_scheduler() -> None:
    assert _loaded() == {"code": 0, "loaded": []}


def test_status_from_a_yaml_dump_loads_no_slack_kubernetes_or_scheduler(tmp_path: Path) -> None:
    dump = tmp_path / "prod-eu-1.yaml"
    dump.write_text(
        yaml.safe_dump(flux_object("GitRepository", "platform", conditions=[condition()]))
    )

    assert _loaded("status", "--output", "json", "--from-file", str(dump)) == {
        "code": 0,
        "loaded": [],
    }


def test_status_of_the_demo_fleet_loads_no_slack_kubernetes_or_scheduler() -> None:
    result = _loaded("status", "--output", "json", "--demo")

    assert result["loaded"] == []
