"""Run the Helm 4 client for emergency rollbacks, against the right cluster."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from bot.config import ClusterConfig, KubernetesSettings

log = logging.getLogger(__name__)

# Helm's own output can be long; people need its last lines.
OUTPUT_TAIL: Final = 600
# HelmRelease spec.rollback options and the `helm rollback` flags they mean.
_ROLLBACK_FLAGS: Final = {
    "disableHooks": "--no-hooks",
    "force": "--force",
    "recreate": "--recreate-pods",
    "cleanupOnFail": "--cleanup-on-fail",
}


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
    """`helm rollback` and `helm history` for one configured cluster at a time.

    Arguments are ours (validated release and namespace names), always as flags first, then
    `--`, then positionals, so nothing from a cluster can be read as a flag. A rollback is
    never killed: a helm killed while it waits leaves the release `pending-rollback`, which
    blocks every later Helm operation; helm's own `--timeout` ends it.
    """

    def __init__(self, helm: Path, timeout_seconds: int, kubernetes: KubernetesSettings) -> None:
        self.helm = helm
        self.timeout_seconds = timeout_seconds
        self._kubernetes = kubernetes

    def major_version(self) -> int:
        """The client's major version (`helm version`); 0 when it cannot be read."""
        out = self._run(None, ["version", "--template", "{{.Version}}"], 30)
        found = re.match(r"^v?(\d+)\.", out.strip())
        return int(found.group(1)) if found else 0

    def rollback(
        self,
        cluster: ClusterConfig,
        release: str,
        revision: int,
        namespace: str,
        *,
        timeout: float = 0,
        options: Mapping[str, str] | None = None,
        service_account: str = "",
    ) -> str:
        """`helm rollback RELEASE REVISION -n NAMESPACE --wait` with helm-controller's rollback
        options and service account; returns helm's output."""
        major = self.major_version()
        if major != 4:
            raise HelmFailed(
                f"{self.helm} is Helm {major or 'of an unknown version'}; Flux 2.8+ writes "
                "releases with Helm 4, so only a Helm 4 client may roll them back"
            )
        seconds = int(timeout or self.timeout_seconds)
        flags = ["--namespace", namespace, "--timeout", f"{seconds}s"]
        opts = dict(options or {})
        if opts.get("disableWait") != "True":
            flags.append("--wait")
        for option, flag in _ROLLBACK_FLAGS.items():
            if opts.get(option) == "True":
                flags.append(flag)
        if service_account:
            flags += ["--kube-as-user", service_account]
        args = ["rollback", *flags, "--", release, str(revision)]
        # helm's --timeout bounds the wait; give it ample room rather than kill it.
        return self._run(cluster, args, None, grace=seconds + 300)

    def history(self, cluster: ClusterConfig, release: str, namespace: str) -> ReleaseRevision:
        """The newest revision of the release, from `helm history -o json`."""
        return self.revisions(cluster, release, namespace, newest=1)[0]

    def revisions(
        self, cluster: ClusterConfig, release: str, namespace: str, newest: int = 20
    ) -> list[ReleaseRevision]:
        """The newest revisions of the release, newest first, from `helm history -o json`."""
        out = self._run(
            cluster,
            ["history", "--namespace", namespace, "--max", str(newest), "--output", "json",
             "--", release],
            60,
        )  # fmt: skip
        try:
            entries: Any = json.loads(out)
            revisions = [
                ReleaseRevision(
                    revision=int(e["revision"]),
                    status=str(e.get("status", "")),
                    chart=str(e.get("chart", "")),
                    description=str(e.get("description", "")),
                )
                for e in entries
            ]
        except (ValueError, KeyError, TypeError) as err:
            raise HelmFailed(f"could not read `helm history` output: {out[:OUTPUT_TAIL]}") from err
        if not revisions:
            raise HelmFailed(f"`helm history` shows no revision of {release}")
        return sorted(revisions, key=lambda r: r.revision, reverse=True)

    def _run(
        self,
        cluster: ClusterConfig | None,
        args: list[str],
        timeout: float | None,
        grace: float | None = None,
    ) -> str:
        """Run helm; `timeout` kills it (reads only), `grace` only stops waiting for it."""
        flags = self._cluster_flags(cluster) if cluster is not None else []
        if "--" in args:
            split = args.index("--")
            command = [str(self.helm), *args[:split], *flags, *args[split:]]
        else:
            command = [str(self.helm), *args, *flags]
        log.info("running %s", " ".join(command))
        try:
            process = subprocess.Popen(  # noqa: S603 - fixed executable, arguments are ours
                command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                start_new_session=timeout is None,
            )  # fmt: skip
        except OSError as err:
            raise HelmFailed(f"could not run {self.helm}: {err}") from err
        try:
            stdout, stderr = process.communicate(timeout=timeout if timeout else grace)
        except subprocess.TimeoutExpired as err:
            if timeout is not None:
                process.kill()
                process.communicate()
                raise HelmFailed(f"helm {args[0]} did not finish in {timeout:g} s") from err
            raise HelmFailed(
                f"helm {args[0]} is still running after {grace:g} s; it was not stopped (that "
                "would leave the release pending-rollback). Check `helm history`."
            ) from err
        if process.returncode != 0:
            detail = (stderr or stdout).strip()[-OUTPUT_TAIL:]
            raise HelmFailed(f"helm {args[0]} exited {process.returncode}: {detail}")
        return stdout

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
