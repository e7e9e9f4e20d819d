"""A fake `helm` (v4) keeping Helm's release storage semantics, in a JSON file.

Run through a wrapper script (see `install`). What it does follows helm/helm:
- One `--namespace` (`-n`) for everything: release storage is looked up there (pkg/cli
  EnvSettings.Namespace feeds both the storage driver and the Kubernetes client), so a release
  stored in another namespace is "not found".
- `rollback NAME [REVISION]` (pkg/action/rollback.go): REVISION defaults to the current one
  minus one; a new revision is created as `pending-rollback` first, then `deployed` while the
  previous deployed one becomes `superseded`; its description is "Rollback to N". A helm killed
  while waiting leaves the `pending-rollback` revision in storage, and every later operation
  then fails with "another operation (install/upgrade/rollback) is in progress".
- `history NAME -o json [--max N]`: the newest N revisions, oldest first (pkg/cmd/history.go).
- `version --template '{{.Version}}'` / `--short`: e.g. v4.0.1 (FAKE_HELM_VERSION).
- Flags and positionals may mix; `--` ends the flags (cobra).
- Release storage lives in a cluster: the one `--kube-context` selects (pkg/cli EnvSettings
  builds the client from --kubeconfig/--kube-context), so a release stored in another cluster
  is "not found" too. Releases seeded without a cluster are in the cluster of no context.

Environment: FAKE_HELM_STATE (the storage file), FAKE_HELM_LOG (one JSON argv per call),
FAKE_HELM_FAIL (a subcommand that fails), FAKE_HELM_WAIT (seconds `--wait` takes),
FAKE_HELM_VERSION.
"""

from __future__ import annotations

import json
import os
import stat
import sys
import time
from pathlib import Path
from typing import Any

VALUE_FLAGS = {
    "-n", "--namespace", "--timeout", "--kubeconfig", "--kube-context", "--kube-as-user",
    "--kube-as-group", "--max", "-o", "--output", "--template", "--history-max",
    "--wait-retries",
}  # fmt: skip
NOW = "2026-11-30T10:00:00Z"


def _key(cluster: str, namespace: str, name: str) -> str:
    return f"{cluster}:{namespace}/{name}" if cluster else f"{namespace}/{name}"


def seed(
    state: Path, namespace: str, name: str, revisions: list[dict[str, Any]], cluster: str = ""
) -> None:
    """Store a release's revisions (each: revision, status, chart, app_version, description)
    in `cluster` (a kubeconfig context)."""
    data = json.loads(state.read_text()) if state.exists() else {}
    data[_key(cluster, namespace, name)] = [{"updated": NOW, **r} for r in revisions]
    state.write_text(json.dumps(data))


def stored(state: Path, namespace: str, name: str, cluster: str = "") -> list[dict[str, Any]]:
    """A release's revisions as stored in `cluster`, oldest first."""
    data = json.loads(state.read_text()) if state.exists() else {}
    revisions: list[dict[str, Any]] = data.get(_key(cluster, namespace, name), [])
    return revisions


def parse(argv: list[str]) -> tuple[list[str], dict[str, str]]:
    """Positionals and flags, as cobra reads them (the last value of a repeated flag wins)."""
    positionals: list[str] = []
    flags: dict[str, str] = {}
    rest = iter(argv)
    for arg in rest:
        if arg == "--":
            positionals.extend(rest)
            break
        if arg.startswith("-"):
            name, _, value = arg.partition("=")
            if name in VALUE_FLAGS and not value:
                value = next(rest, "")
            flags["--namespace" if name == "-n" else name] = value or "true"
        else:
            positionals.append(arg)
    return positionals, flags


def main(argv: list[str]) -> int:
    log = os.environ.get("FAKE_HELM_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps(argv) + "\n")
    positionals, flags = parse(argv)
    command = positionals[0] if positionals else ""
    if command == "version":
        version = os.environ.get("FAKE_HELM_VERSION", "v4.0.1")
        print(version if "--template" in flags else f"{version}+g0d5b6f1")
        return 0
    state = Path(os.environ.get("FAKE_HELM_STATE", "/nonexistent"))
    namespace = flags.get("--namespace", "default")
    cluster = flags.get("--kube-context", "")
    if len(positionals) < 2:
        return _error(f'"helm {command}" requires a release name')
    name = positionals[1]
    revisions = stored(state, namespace, name, cluster)
    if not revisions:
        return _error("release: not found")
    if command == "history":
        newest = revisions[-int(flags.get("--max", "256")) :]
        print(json.dumps([_shown(r) for r in newest]))
        return 0
    if command == "rollback":
        return _rollback(state, (cluster, namespace, name), revisions, positionals, flags)
    return _error(f'unknown command {command!r} for "helm"')


def _rollback(
    state: Path,
    release: tuple[str, str, str],
    revisions: list[dict[str, Any]],
    positionals: list[str],
    flags: dict[str, str],
) -> int:
    cluster, namespace, name = release
    current = revisions[-1]
    if str(current["status"]).startswith("pending"):
        return _error("another operation (install/upgrade/rollback) is in progress")
    target_number = int(positionals[2]) if len(positionals) > 2 else current["revision"] - 1
    target = next((r for r in revisions if r["revision"] == target_number), None)
    if target is None:
        return _error(f"release has no {target_number} version")
    new = {
        **target,
        "revision": current["revision"] + 1,
        "status": "pending-rollback",
        "description": f"Rollback to {target_number}",
        "updated": NOW,
    }
    revisions.append(new)
    seed(state, namespace, name, revisions, cluster)
    if "--wait" in flags:
        time.sleep(float(os.environ.get("FAKE_HELM_WAIT", "0")))
    if os.environ.get("FAKE_HELM_FAIL") == "rollback":
        current["status"] = "superseded"
        new["status"] = "failed"
        new["description"] = f'Rollback "{name}" failed: context deadline exceeded'
        seed(state, namespace, name, revisions, cluster)
        return _error(f'Rollback "{name}" failed: context deadline exceeded')
    for revision in revisions:
        if revision["status"] == "deployed":
            revision["status"] = "superseded"
    new["status"] = "deployed"
    seed(state, namespace, name, revisions, cluster)
    print("Rollback was a success! Happy Helming!")
    return 0


def _shown(revision: dict[str, Any]) -> dict[str, Any]:
    return {
        "revision": revision["revision"],
        "updated": revision.get("updated", NOW),
        "status": revision["status"],
        "chart": revision["chart"],
        "app_version": revision.get("app_version", ""),
        "description": revision.get("description", ""),
    }


def _error(message: str) -> int:
    sys.stderr.write(f"Error: {message}\n")
    return 1


def install(directory: Path) -> Path:
    """Write an executable `helm` wrapper in `directory` that runs this fake."""
    wrapper = directory / "helm"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
