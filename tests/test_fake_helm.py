"""The fake `helm` keeps Helm's release storage semantics (helm/helm pkg/action/rollback.go,
pkg/cmd/history.go, pkg/cli EnvSettings): tests of the Helm path are only as good as it is."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

from tests.fakes import helm as fake_helm


def _run(helm: Path, state: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=30,
        env={**os.environ, "FAKE_HELM_STATE": str(state), **env},
    )  # fmt: skip


def _seeded(tmp_path: Path) -> tuple[Path, Path]:
    helm = fake_helm.install(tmp_path)
    state = tmp_path / "releases.json"
    fake_helm.seed(state, "monitoring", "kps", [
        {"revision": 4, "status": "superseded", "chart": "kps-65.1.0"},
        {"revision": 5, "status": "failed", "chart": "kps-66.3.0"},
    ])  # fmt: skip
    return helm, state


def test_one_namespace_holds_the_release_storage(tmp_path: Path) -> None:
    """pkg/cli: --namespace is the storage namespace too: elsewhere the release is not found."""
    helm, state = _seeded(tmp_path)
    elsewhere = _run(helm, state, "history", "kps", "--namespace", "flux-system", "-o", "json")
    assert elsewhere.returncode == 1
    assert "release: not found" in elsewhere.stderr
    found = _run(helm, state, "history", "kps", "-n", "monitoring", "-o", "json", "--max", "1")
    assert [r["revision"] for r in json.loads(found.stdout)] == [5]


def test_rollback_writes_a_new_revision_and_supersedes_the_deployed_one(tmp_path: Path) -> None:
    """pkg/action/rollback.go: the new revision copies the target, "Rollback to N"."""
    helm, state = _seeded(tmp_path)
    done = _run(helm, state, "rollback", "--namespace", "monitoring", "--", "kps", "4")
    assert done.returncode == 0, done.stderr
    revisions = fake_helm.stored(state, "monitoring", "kps")
    assert [(r["revision"], r["status"], r["chart"]) for r in revisions] == [
        (4, "superseded", "kps-65.1.0"), (5, "failed", "kps-66.3.0"),
        (6, "deployed", "kps-65.1.0"),
    ]  # fmt: skip
    assert revisions[-1]["description"] == "Rollback to 4"


def test_a_helm_killed_while_waiting_leaves_pending_rollback(tmp_path: Path) -> None:
    """pkg/action/rollback.go creates the release as pending-rollback before waiting; killed
    there, it stays, and Helm refuses the next operation."""
    helm, state = _seeded(tmp_path)
    process = subprocess.Popen(
        [str(helm), "rollback", "kps", "4", "-n", "monitoring", "--wait"],
        env={**os.environ, "FAKE_HELM_STATE": str(state), "FAKE_HELM_WAIT": "30"},
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 10
    while len(fake_helm.stored(state, "monitoring", "kps")) < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert fake_helm.stored(state, "monitoring", "kps")[-1]["status"] == "pending-rollback"
    again = _run(helm, state, "rollback", "kps", "4", "-n", "monitoring")
    assert "another operation (install/upgrade/rollback) is in progress" in again.stderr


def test_version_reports_the_major(tmp_path: Path) -> None:
    helm, state = _seeded(tmp_path)
    assert _run(helm, state, "version", "--template", "{{.Version}}").stdout.strip() == "v4.0.1"
    old = _run(helm, state, "version", "--short", FAKE_HELM_VERSION="v3.17.2")
    assert old.stdout.startswith("v3.17.2")
