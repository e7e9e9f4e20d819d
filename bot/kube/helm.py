"""Run the Helm 4 client for emergency rollbacks, against the right cluster."""

from __future__ import annotations

import json
import logging
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bot.config import ClusterConfig, KubernetesSettings

log = logging.getLogger(__name__)

# Helm's own output can be long; people need its last lines.
OUTPUT_TAIL: Final = 600


class HelmFailed(Exception):
    """helm exited non-zero or could not be run; the message carries its error output."""


@dataclass(frozen=True, slots=True)
class ReleaseRevision:
    """One line of `helm history`."""

    revision: int
    status: str
    chart: str
    description: str


class HelmRunner:
    """`helm rollback` and `helm history` for one configured cluster at a time."""

    def __init__(self, helm: Path, timeout_seconds: int, kubernetes: KubernetesSettings) -> None:
        self.helm = helm
        self.timeout_seconds = timeout_seconds
        self._kubernetes = kubernetes

    def rollback(self, cluster: ClusterConfig, release: str, revision: int, namespace: str) -> str:
        """`helm rollback RELEASE REVISION -n NAMESPACE --wait`; returns helm's output."""
        args = [
            "rollback", release, str(revision), "--namespace", namespace,
            "--wait", "--timeout", f"{self.timeout_seconds}s",
        ]  # fmt: skip
        return self._run(cluster, args, self.timeout_seconds + 30)

    def history(self, cluster: ClusterConfig, release: str, namespace: str) -> ReleaseRevision:
        """The newest revision of the release, from `helm history -o json`."""
        out = self._run(
            cluster,
            ["history", release, "--namespace", namespace, "--max", "1", "--output", "json"],
            60,
        )
        try:
            entries: Any = json.loads(out)
            newest = max(entries, key=lambda e: int(e["revision"]))
            return ReleaseRevision(
                revision=int(newest["revision"]),
                status=str(newest.get("status", "")),
                chart=str(newest.get("chart", "")),
                description=str(newest.get("description", "")),
            )
        except (ValueError, KeyError, TypeError) as err:
            raise HelmFailed(f"could not read `helm history` output: {out[:OUTPUT_TAIL]}") from err

    def _run(self, cluster: ClusterConfig, args: list[str], timeout: float) -> str:
        command = [str(self.helm), *args, *self._cluster_flags(cluster)]
        log.info("running %s", " ".join(command))
        try:
            result = subprocess.run(  # noqa: S603 - fixed executable, arguments are ours
                command, capture_output=True, text=True, timeout=timeout, check=False
            )
        except (OSError, subprocess.TimeoutExpired) as err:
            raise HelmFailed(f"could not run {self.helm}: {err}") from err
        if result.returncode != 0:
            detail = (result.stderr or result.stdout).strip()[-OUTPUT_TAIL:]
            raise HelmFailed(f"helm {args[0]} exited {result.returncode}: {detail}")
        return result.stdout

    def _cluster_flags(self, cluster: ClusterConfig) -> list[str]:
        if cluster.in_cluster:
            return []
        flags = []
        kubeconfig = cluster.kubeconfig or self._kubernetes.kubeconfig
        if kubeconfig is not None:
            flags += ["--kubeconfig", str(kubeconfig.expanduser())]
        if cluster.context:
            flags += ["--kube-context", cluster.context]
        return flags


def usable_helm(path: Path | None) -> Path | None:
    """`path` if it is an executable file, else None (rollback is then not offered)."""
    if path is None:
        return None
    resolved = path.expanduser()
    return resolved if resolved.is_file() and os.access(resolved, os.X_OK) else None
