"""Benchmark the watch cache against the naive reader on a fake fleet; prints its figures.

The driver (this process) starts one fake Kubernetes API server per cluster, seeds each with a
realistic mix of Flux objects, writes a kubeconfig and a fluxbot config, and runs the bot side
(`benchmarks.bot_probe`) in a separate process so that the bot's peak RSS is its own. The two
talk JSON lines over the probe's stdin/stdout. See benchmarks/README.md for what is measured.

Run `scripts/bench.sh` (20 clusters x 500 objects) or, for a quick run,
`scripts/bench.sh --clusters 2 --objects-per-cluster 50 --queries 20`. The last line of output
is one JSON object with the figures. Exit status 0 means the run completed (whether or not the
targets were met); non-zero means the run itself failed.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import gc
import json
import math
import os
import platform
import queue
import random
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final

import yaml

from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer

# --- the fleet ------------------------------------------------------------------------------

# Objects per cluster by kind at 500 objects; other sizes scale this mix.
KIND_MIX: Final = {
    "GitRepository": 40,
    "OCIRepository": 10,
    "HelmRepository": 30,
    "HelmChart": 80,
    "Bucket": 10,
    "Kustomization": 135,
    "HelmRelease": 165,
    # The other kinds `flux get all` shows, and ArtifactGenerators.
    "ImageRepository": 8,
    "ImagePolicy": 8,
    "ImageUpdateAutomation": 3,
    "Receiver": 3,
    "Provider": 2,
    "Alert": 3,
    "ArtifactGenerator": 3,
    "ExternalArtifact": 3,
}
API_VERSIONS: Final = {
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1",
    "HelmRepository": "source.toolkit.fluxcd.io/v1",
    "HelmChart": "source.toolkit.fluxcd.io/v1",
    "Bucket": "source.toolkit.fluxcd.io/v1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    "ImageRepository": "image.toolkit.fluxcd.io/v1",
    "ImagePolicy": "image.toolkit.fluxcd.io/v1",
    "ImageUpdateAutomation": "image.toolkit.fluxcd.io/v1",
    "Receiver": "notification.toolkit.fluxcd.io/v1",
    "Provider": "notification.toolkit.fluxcd.io/v1beta3",
    "Alert": "notification.toolkit.fluxcd.io/v1beta3",
    "ArtifactGenerator": "source.extensions.fluxcd.io/v1beta1",
    "ExternalArtifact": "source.toolkit.fluxcd.io/v1",
}
# (name, short name used in cluster names, Slack channel)
ENVIRONMENTS: Final = (
    ("production", "prod", "C0PROD"),
    ("staging", "stg", "C0STAGING"),
    ("development", "dev", "C0DEV"),
    ("sandbox", "sbx", "C0SANDBOX"),
)
READY, FAILING, PROGRESSING, SUSPENDED = "ready", "failing", "progressing", "suspended"
# Cumulative shares: ~88% ready, ~6% failing, ~3% progressing, ~3% suspended.
HEALTH_SHARES: Final = ((0.88, READY), (0.94, FAILING), (0.97, PROGRESSING), (1.0, SUSPENDED))

TEAMS: Final = (
    "payments", "checkout", "search", "identity", "catalog",
    "orders", "billing", "notifications", "analytics", "platform",
)  # fmt: skip
APPS: Final = (
    "podinfo", "cert-manager", "ingress-nginx", "external-dns", "kube-prometheus-stack",
    "loki", "tempo", "grafana", "redis", "postgresql", "kafka", "vault", "keycloak",
    "argo-rollouts", "metrics-server", "velero", "sealed-secrets", "kyverno",
    "trivy-operator", "opentelemetry-collector",
)  # fmt: skip
LAYERS: Final = (
    "apps", "infra", "configs", "crds", "policies", "monitoring", "secrets", "rbac",
    "network", "jobs", "storage", "ingress", "dashboards", "alerts", "tenants",
)  # fmt: skip
REPO_PURPOSES: Final = ("fleet", "platform", "apps", "infra")
HELM_REPOS: Final = (
    ("bitnami", "https://charts.bitnami.com/bitnami"),
    ("jetstack", "https://charts.jetstack.io"),
    ("prometheus-community", "https://prometheus-community.github.io/helm-charts"),
    ("grafana", "https://grafana.github.io/helm-charts"),
    ("ingress-nginx", "https://kubernetes.github.io/ingress-nginx"),
    ("external-dns", "https://kubernetes-sigs.github.io/external-dns"),
    ("hashicorp", "https://helm.releases.hashicorp.com"),
    ("kyverno", "https://kyverno.github.io/kyverno"),
    ("aqua", "https://aquasecurity.github.io/helm-charts"),
    ("open-telemetry", "https://open-telemetry.github.io/opentelemetry-helm-charts"),
)
SOURCE_CONTROLLER: Final = "http://source-controller.flux-system.svc.cluster.local."
OWNER_NAME: Final = "kustomize.toolkit.fluxcd.io/name"
OWNER_NAMESPACE: Final = "kustomize.toolkit.fluxcd.io/namespace"
FLUX_SYSTEM: Final = "flux-system"
BOOKMARK_INTERVAL_S: Final = 60.0
EPOCH: Final = dt.datetime(2026, 11, 19, 8, 0, tzinfo=dt.UTC)


def kind_counts(per_cluster: int) -> dict[str, int]:
    """KIND_MIX scaled to `per_cluster` objects (largest remainder, so they add up)."""
    total = sum(KIND_MIX.values())
    exact = {k: v * per_cluster / total for k, v in KIND_MIX.items()}
    counts = {k: int(v) for k, v in exact.items()}
    by_remainder = sorted(exact, key=lambda k: exact[k] - counts[k], reverse=True)
    for kind in by_remainder[: per_cluster - sum(counts.values())]:
        counts[kind] += 1
    return counts


def fleet_layout(clusters: int) -> dict[str, list[str]]:
    """Cluster names per environment, dealt round-robin over (up to) four environments."""
    layout: dict[str, list[str]] = {}
    for i in range(clusters):
        env, short, _channel = ENVIRONMENTS[i % len(ENVIRONMENTS)]
        names = layout.setdefault(env, [])
        names.append(f"{short}-{len(names) + 1:02d}")
    return layout


def _unique(pool: Sequence[str], i: int) -> str:
    base, lap = pool[i % len(pool)], i // len(pool)
    return base if lap == 0 else f"{base}-{lap + 1}"


def _condition(type_: str, status: str, reason: str, message: str, at: str) -> dict[str, Any]:
    return {
        "lastTransitionTime": at,
        "message": message,
        "observedGeneration": 1,
        "reason": reason,
        "status": status,
        "type": type_,
    }


@dataclass
class ClusterObjects:
    """What one fake cluster is seeded with, and which objects the change phase may touch."""

    objects: list[dict[str, Any]] = field(default_factory=list)
    health: dict[str, int] = field(default_factory=dict)
    # (kind, namespace, name) of Ready objects the change phase can flip or bump.
    ready_kustomizations: list[tuple[str, str]] = field(default_factory=list)
    ready_git_repositories: list[tuple[str, str]] = field(default_factory=list)


class ClusterBuilder:
    """Builds one cluster's Flux objects: CRD-valid, with realistic statuses and messages."""

    def __init__(self, cluster: str, environment: str, per_cluster: int, seed: int) -> None:
        self.cluster = cluster
        self.environment = environment
        self.counts = kind_counts(per_cluster)
        # Seeded per cluster: the same fleet on every run, whatever the cluster count.
        self.rng = random.Random(f"{seed}/{cluster}")
        self.out = ClusterObjects()

    # -- random bits --

    def sha1(self) -> str:
        """40 hex digits, as in a git commit."""
        return f"{self.rng.getrandbits(160):040x}"

    def sha256(self) -> str:
        """64 hex digits, as in an OCI digest."""
        return f"{self.rng.getrandbits(256):064x}"

    def when(self, within_days: float = 7.0) -> str:
        """An RFC 3339 time within `within_days` after EPOCH."""
        moment = EPOCH + dt.timedelta(seconds=self.rng.randrange(int(within_days * 86400)))
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

    def semver(self) -> str:
        """A chart-like version."""
        rng = self.rng
        return f"{rng.randrange(0, 70)}.{rng.randrange(0, 30)}.{rng.randrange(0, 12)}"

    def health(self) -> str:
        """A health drawn from HEALTH_SHARES."""
        draw = self.rng.random()
        return next(h for limit, h in HEALTH_SHARES if draw < limit)

    # -- objects --

    def build(self) -> ClusterObjects:
        """Every object of the cluster."""
        n = self.counts
        releases = [self._release_identity(i) for i in range(n["HelmRelease"])]
        git_names = [self._git_name(i) for i in range(n["GitRepository"])]
        oci_names = [_unique(APPS, i) for i in range(n["OCIRepository"])]
        repo_names = [_unique([r for r, _url in HELM_REPOS], i) for i in range(n["HelmRepository"])]
        repo_names = repo_names or ["bitnami"]
        for i, name in enumerate(git_names):
            self._add(self.git_repository(i, name))
        for i, name in enumerate(oci_names):
            self._add(self.oci_repository(i, name))
        for i, name in enumerate(repo_names[: n["HelmRepository"]]):
            self._add(self.helm_repository(i, name))
        charted = releases[: n["HelmChart"]]
        for i in range(n["HelmChart"]):
            ns, name, app = charted[i] if i < len(charted) else ("extra", f"chart-{i}", "podinfo")
            self._add(self.helm_chart(f"{ns}-{name}", app, repo_names[i % len(repo_names)]))
        for i in range(n["Bucket"]):
            self._add(self.bucket(i))
        for i in range(n["Kustomization"]):
            self._add(self.kustomization(i, git_names or ["flux-system"]))
        for i, (ns, name, app) in enumerate(releases):
            if i < n["HelmChart"] or not oci_names:
                chart = ("HelmRepository", repo_names[i % len(repo_names)])
            else:
                chart = ("OCIRepository", oci_names[i % len(oci_names)])
            self._add(self.helm_release(ns, name, app, chart))
        for kind in (
            "ImageRepository", "ImagePolicy", "ImageUpdateAutomation", "Receiver", "Provider",
            "Alert", "ArtifactGenerator", "ExternalArtifact",
        ):  # fmt: skip
            for i in range(n[kind]):
                self._add(self.other_kind(kind, i, git_names or ["flux-system"]))
        return self.out

    def other_kind(self, kind: str, i: int, git_names: Sequence[str]) -> dict[str, Any]:
        """An image automation, notification or generated-artifact object, in the states
        their controllers write (image-reflector/automation-controller, notification-
        controller, source-watcher)."""
        health = self.health()
        at = self.when()
        app = _unique(APPS, i)
        image = f"ghcr.io/acme/{app}"
        status: dict[str, Any] = {"observedGeneration": 1}
        ready: tuple[str, str] = ("Succeeded", "")
        failure: tuple[str, str] = ("", "")
        spec: dict[str, Any]
        annotations: dict[str, str] = {}
        if kind == "ImageRepository":
            spec = {"image": image, "interval": "5m0s"}
            checksum = f"sha256:{self.sha256()}"
            tags = self.rng.randrange(5, 300)
            status["lastScanResult"] = {"revision": checksum, "scanTime": at, "tagCount": tags}
            ready = ("Succeeded", f"successful scan: found {tags} tags with checksum {checksum}")
            failure = (
                "ReadOperationFailed",
                f"scan failed: GET https://ghcr.io/token?scope=repository%3Aacme%2F{app}"
                "%3Apull&service=ghcr.io: UNAUTHORIZED: authentication required",
            )
        elif kind == "ImagePolicy":
            spec = {"imageRepositoryRef": {"name": app}, "policy": {"semver": {"range": ">=1.0.0"}}}
            tag = self.semver()
            status["latestRef"] = {"name": image, "tag": tag}
            ready = ("Succeeded", f"Latest image tag for {image} resolved to {tag}")
            failure = ("DependencyNotReady", "retrying in 30s error: no tags in database")
        elif kind == "ImageUpdateAutomation":
            spec = {
                "git": {"commit": {"author": {"email": "flux@acme.dev", "name": "flux"}}},
                "interval": "30m0s",
                "sourceRef": {"kind": "GitRepository", "name": git_names[i % len(git_names)]},
                "update": {"path": f"./{self.environment}", "strategy": "Setters"},
            }
            status["lastAutomationRunTime"] = at
            ready = ("Succeeded", "repository up-to-date")
            failure = ("GitOperationFailed", "failed to push to remote: authentication required")
        elif kind == "Receiver":
            spec = {
                "resources": [{"kind": "GitRepository", "name": git_names[i % len(git_names)]}],
                "secretRef": {"name": f"receiver-{i}"},
                "type": "github",
            }
            ready = ("Succeeded", f"Receiver initialized for path: /hook/{self.sha256()}")
            failure = ("TokenNotFound", f"unable to read token from secret 'receiver-{i}'")
        elif kind in ("Provider", "Alert"):
            # Static since v1beta3: no status, always Ready unless suspended.
            health = SUSPENDED if health == SUSPENDED else READY
            status = {}
            spec = (
                {"channel": "flux", "secretRef": {"name": "slack"}, "type": "slack"}
                if kind == "Provider"
                else {
                    "eventSources": [{"kind": "Kustomization", "name": "*"}],
                    "providerRef": {"name": "slack-0"},
                }
            )
        elif kind == "ArtifactGenerator":
            spec = {
                "artifacts": [{"copy": [{"from": "@repo/**", "to": "@artifact/"}], "name": app}],
                "sources": [{"alias": "repo", "kind": "GitRepository", "name": git_names[0]}],
            }
            status = {}
            ready = ("Succeeded", "reconciliation succeeded, generated 1 artifact(s)")
            failure = ("SourceFetchFailed", "fetch sources failed: artifact not found")
            if health == SUSPENDED:
                annotations["source.extensions.fluxcd.io/reconcile"] = "disabled"
        else:  # ExternalArtifact: written by source-watcher, never suspended, never failing
            health = READY if health in (SUSPENDED, FAILING) else health
            spec = {"sourceRef": {"kind": "ArtifactGenerator", "name": f"gen-{i}"}}
            status = {}
            if health == READY:
                digest = self.sha256()
                path = f"externalartifact/{FLUX_SYSTEM}/{app}/{digest}.tar.gz"
                status["artifact"] = {
                    "digest": f"sha256:{digest}",
                    "lastUpdateTime": at,
                    "path": path,
                    "revision": f"latest@sha256:{digest}",
                    "size": 20480,
                    "url": f"{SOURCE_CONTROLLER}/{path}",
                }
            ready = ("Succeeded", "Artifact is ready")
        if kind not in ("Provider", "Alert"):
            if health == FAILING:
                status["conditions"] = [_condition("Ready", "False", *failure, at)]
            elif health == PROGRESSING:
                message = "reconciliation in progress"
                status["conditions"] = (
                    []
                    if kind == "ExternalArtifact"  # not written yet: "waiting to be reconciled"
                    else [
                        _condition("Reconciling", "True", "Progressing", message, at),
                        _condition("Ready", "Unknown", "Progressing", message, at),
                    ]
                )
            else:
                status["conditions"] = [_condition("Ready", "True", *ready, at)]
        name = f"{app}-{i}" if kind != "Provider" else f"slack-{i}"
        suspend_in_spec = kind not in ("ArtifactGenerator", "ExternalArtifact")
        obj = self._object(
            kind, name, FLUX_SYSTEM, spec, status, health, suspend_in_spec=suspend_in_spec
        )
        if annotations:
            obj["metadata"]["annotations"] = annotations
        if not status:
            del obj["status"]
        return obj

    def _add(self, obj: dict[str, Any]) -> None:
        self.out.objects.append(obj)

    def _object(
        self,
        kind: str,
        name: str,
        namespace: str,
        spec: dict[str, Any],
        status: dict[str, Any],
        health: str,
        owner: str = FLUX_SYSTEM,
        suspend_in_spec: bool = True,
    ) -> dict[str, Any]:
        if health == SUSPENDED and suspend_in_spec:
            spec["suspend"] = True
        self.out.health[health] = self.out.health.get(health, 0) + 1
        return {
            "apiVersion": API_VERSIONS[kind],
            "kind": kind,
            "metadata": {
                "name": name,
                "namespace": namespace,
                "generation": 1,
                "finalizers": ["finalizers.fluxcd.io"],
                "creationTimestamp": self.when(1),
                "labels": {OWNER_NAME: owner, OWNER_NAMESPACE: FLUX_SYSTEM},
            },
            "spec": spec,
            "status": status,
        }

    def _git_name(self, i: int) -> str:
        team = TEAMS[i % len(TEAMS)]
        purpose = REPO_PURPOSES[(i // len(TEAMS)) % len(REPO_PURPOSES)]
        lap = i // (len(TEAMS) * len(REPO_PURPOSES))
        return f"{team}-{purpose}" + (f"-{lap + 1}" if lap else "")

    def _release_identity(self, i: int) -> tuple[str, str, str]:
        team = TEAMS[i % len(TEAMS)]
        app = APPS[(i // len(TEAMS)) % len(APPS)]
        lap = i // (len(TEAMS) * len(APPS))
        return team, app + (f"-{lap + 1}" if lap else ""), app

    def artifact(self, kind_path: str, name: str, revision: str, file: str) -> dict[str, Any]:
        """A source artifact as source-controller stores it."""
        path = f"{kind_path}/{FLUX_SYSTEM}/{name}/{file}"
        return {
            "digest": f"sha256:{self.sha256()}",
            "lastUpdateTime": self.when(),
            "path": path,
            "revision": revision,
            "size": self.rng.randrange(8_000, 900_000),
            "url": f"{SOURCE_CONTROLLER}/{path}",
        }

    def git_repository(self, i: int, name: str) -> dict[str, Any]:
        """A GitRepository."""
        health = self.health()
        url = f"ssh://git@github.com/acme/{name}"
        sha = self.sha1()
        revision = f"main@sha1:{sha}"
        at = self.when()
        stored = f"stored artifact for revision '{revision}'"
        conditions = [_condition("Ready", "True", "Succeeded", stored, at)]
        if health == FAILING:
            message = self.rng.choice(
                (
                    f"failed to checkout and determine revision: unable to list remote for "
                    f"'{url}': authentication required",
                    f"failed to checkout and determine revision: unable to clone '{url}': "
                    "context deadline exceeded",
                )
            )
            conditions = [
                _condition("Reconciling", "True", "ProgressingWithRetry", "reconciliation in "
                           "progress", at),
                _condition("Ready", "False", "GitOperationFailed", message, at),
                _condition("FetchFailed", "True", "GitOperationFailed", message, at),
            ]  # fmt: skip
        elif health == PROGRESSING:
            message = f"building artifact: new upstream revision 'main@sha1:{self.sha1()}'"
            conditions = [
                _condition("Reconciling", "True", "Progressing", message, at),
                _condition("Ready", "Unknown", "Progressing", message, at),
            ]
        else:
            self.out.ready_git_repositories.append((FLUX_SYSTEM, name))
        conditions.append(_condition("ArtifactInStorage", "True", "Succeeded", stored, at))
        spec = {
            "interval": self.rng.choice(("1m0s", "5m0s")),
            "ref": {"branch": "main"},
            "secretRef": {"name": f"{name}-deploy-key"},
            "timeout": "60s",
            "url": url,
        }
        status = {
            "artifact": self.artifact("gitrepository", name, revision, f"{sha}.tar.gz"),
            "conditions": conditions,
            "observedGeneration": 1,
        }
        return self._object("GitRepository", name, FLUX_SYSTEM, spec, status, health)

    def oci_repository(self, i: int, name: str) -> dict[str, Any]:
        """An OCIRepository holding a Helm chart."""
        health = self.health()
        url = f"oci://ghcr.io/acme/charts/{name}"
        digest = self.sha256()
        revision = f"{self.semver()}@sha256:{digest}"
        at = self.when()
        stored = f"stored artifact for digest '{revision}'"
        conditions = [_condition("Ready", "True", "Succeeded", stored, at)]
        if health == FAILING:
            message = (
                f"failed to determine artifact digest: GET https://ghcr.io/token?scope="
                f"repository%3Aacme%2Fcharts%2F{name}%3Apull: UNAUTHORIZED: authentication required"
            )
            conditions = [
                _condition("Ready", "False", "OCIArtifactPullFailed", message, at),
                _condition("FetchFailed", "True", "OCIArtifactPullFailed", message, at),
            ]
        elif health == PROGRESSING:
            message = f"building artifact: new revision '{self.semver()}@sha256:{self.sha256()}'"
            conditions = [
                _condition("Reconciling", "True", "Progressing", message, at),
                _condition("Ready", "Unknown", "Progressing", message, at),
            ]
        conditions.append(_condition("ArtifactInStorage", "True", "Succeeded", stored, at))
        spec = {
            "interval": "10m0s",
            "layerSelector": {
                "mediaType": "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
                "operation": "copy",
            },
            "provider": "generic",
            "ref": {"semver": f"{self.rng.randrange(1, 9)}.x"},
            "timeout": "60s",
            "url": url,
        }
        status = {
            "artifact": self.artifact("ocirepository", name, revision, f"{digest}.tgz"),
            "conditions": conditions,
            "observedGeneration": 1,
            "url": f"{SOURCE_CONTROLLER}/ocirepository/{FLUX_SYSTEM}/{name}/latest.tar.gz",
        }
        return self._object("OCIRepository", name, FLUX_SYSTEM, spec, status, health)

    def helm_repository(self, i: int, name: str) -> dict[str, Any]:
        """A HelmRepository; every third is `type: oci`, which has no status of its own."""
        health = self.health()
        base_url = HELM_REPOS[i % len(HELM_REPOS)][1]
        if i % 3 == 2:
            # OCI Helm repositories are not reconciled: flux get reports them Ready.
            health = SUSPENDED if health == SUSPENDED else READY
            spec = {
                "interval": "24h0m0s",
                "provider": "generic",
                "type": "oci",
                "url": f"oci://ghcr.io/acme/{name}",
            }
            return self._object("HelmRepository", name, FLUX_SYSTEM, spec, {}, health)
        digest = self.sha256()
        revision = f"sha256:{digest}"
        at = self.when()
        stored = f"stored artifact: revision '{revision}'"
        conditions = [_condition("Ready", "True", "Succeeded", stored, at)]
        if health == FAILING:
            message = (
                "failed to fetch Helm repository index: failed to cache index to temporary "
                f"file: failed to fetch {base_url}/index.yaml : 404 Not Found"
            )
            conditions = [
                _condition("Ready", "False", "IndexationFailed", message, at),
                _condition("FetchFailed", "True", "IndexationFailed", message, at),
            ]
        elif health == PROGRESSING:
            message = "building artifact: fetching index"
            conditions = [
                _condition("Reconciling", "True", "Progressing", message, at),
                _condition("Ready", "Unknown", "Progressing", message, at),
            ]
        conditions.append(_condition("ArtifactInStorage", "True", "Succeeded", stored, at))
        spec = {"interval": "1h0m0s", "provider": "generic", "url": base_url}
        status = {
            "artifact": self.artifact("helmrepository", name, revision, f"index-{digest}.yaml"),
            "conditions": conditions,
            "observedGeneration": 1,
            "url": f"{SOURCE_CONTROLLER}/helmrepository/{FLUX_SYSTEM}/{name}/index.yaml",
        }
        return self._object("HelmRepository", name, FLUX_SYSTEM, spec, status, health)

    def helm_chart(self, name: str, chart: str, repository: str) -> dict[str, Any]:
        """A HelmChart, as helm-controller templates it from a HelmRelease."""
        health = self.health()
        version = self.semver()
        at = self.when()
        pulled = f"pulled '{chart}' chart with version '{version}'"
        conditions = [_condition("Ready", "True", "ChartPullSucceeded", pulled, at)]
        if health == FAILING:
            message = (
                "invalid chart reference: failed to get chart version for remote reference: "
                f"no '{chart}' chart with version matching '{version.split('.')[0]}.x' found"
            )
            conditions = [
                _condition("Ready", "False", "InvalidChartReference", message, at),
                _condition("FetchFailed", "True", "InvalidChartReference", message, at),
            ]
        elif health == PROGRESSING:
            message = f"building artifact: pulling '{chart}' chart with version '{version}'"
            conditions = [
                _condition("Reconciling", "True", "Progressing", message, at),
                _condition("Ready", "Unknown", "Progressing", message, at),
            ]
        conditions.append(_condition("ArtifactInStorage", "True", "ChartPullSucceeded", pulled, at))
        spec = {
            "chart": chart,
            "interval": "1h0m0s",
            "reconcileStrategy": "ChartVersion",
            "sourceRef": {"kind": "HelmRepository", "name": repository},
            "version": f"{version.split('.')[0]}.x",
        }
        status = {
            "artifact": self.artifact("helmchart", name, version, f"{chart}-{version}.tgz"),
            "conditions": conditions,
            "observedChartName": chart,
            "observedGeneration": 1,
            "url": f"{SOURCE_CONTROLLER}/helmchart/{FLUX_SYSTEM}/{name}/latest.tar.gz",
        }
        return self._object("HelmChart", name, FLUX_SYSTEM, spec, status, health)

    def bucket(self, i: int) -> dict[str, Any]:
        """A Bucket."""
        health = self.health()
        name = _unique([f"{team}-manifests" for team in TEAMS], i)
        digest = self.sha256()
        revision = f"sha256:{digest}"
        at = self.when()
        stored = f"stored artifact for revision '{revision}'"
        conditions = [_condition("Ready", "True", "Succeeded", stored, at)]
        if health == FAILING:
            message = f"bucket '{name}' not found"
            conditions = [
                _condition("Ready", "False", "BucketOperationFailed", message, at),
                _condition("FetchFailed", "True", "BucketOperationFailed", message, at),
            ]
        elif health == PROGRESSING:
            message = f"building artifact: new upstream revision 'sha256:{self.sha256()}'"
            conditions = [
                _condition("Reconciling", "True", "Progressing", message, at),
                _condition("Ready", "Unknown", "Progressing", message, at),
            ]
        conditions.append(_condition("ArtifactInStorage", "True", "Succeeded", stored, at))
        spec = {
            "bucketName": f"{self.environment}-{name}",
            "endpoint": "minio.minio.svc.cluster.local:9000",
            "insecure": True,
            "interval": "5m0s",
            "provider": "generic",
            "secretRef": {"name": "minio-credentials"},
            "timeout": "60s",
        }
        status = {
            "artifact": self.artifact("bucket", name, revision, f"{digest}.tar.gz"),
            "conditions": conditions,
            "observedGeneration": 1,
        }
        return self._object("Bucket", name, FLUX_SYSTEM, spec, status, health)

    def kustomization(self, i: int, git_names: Sequence[str]) -> dict[str, Any]:
        """A Kustomization with a short history and inventory."""
        health = self.health()
        team = TEAMS[i % len(TEAMS)]
        layer_index = (i // len(TEAMS)) % len(LAYERS)
        lap = i // (len(TEAMS) * len(LAYERS))
        name = f"{team}-{LAYERS[layer_index]}" + (f"-{lap + 1}" if lap else "")
        revision = f"main@sha1:{self.sha1()}"
        at = self.when()
        applied = f"Applied revision: {revision}"
        attempted = revision
        conditions = [_condition("Ready", "True", "ReconciliationSucceeded", applied, at)]
        dependency = f"{team}-{LAYERS[layer_index - 1]}" if layer_index else None
        if health == FAILING:
            attempted = f"main@sha1:{self.sha1()}"
            choice = self.rng.randrange(3)
            if choice == 0 and dependency:
                reason = "DependencyNotReady"
                message = f"dependency '{FLUX_SYSTEM}/{dependency}' is not ready"
            elif choice == 1:
                reason = "HealthCheckFailed"
                message = (
                    "health check failed after 5m0.012345s: timeout waiting for: "
                    f"[Deployment/{team}/{team}-api status: 'InProgress']"
                )
            else:
                reason = "BuildFailed"
                message = (
                    "kustomize build failed: accumulating resources: accumulation err='"
                    f"accumulating resources from './{LAYERS[layer_index]}': open "
                    f"/tmp/kustomization-{self.sha1()[:10]}/{team}/{LAYERS[layer_index]}: "
                    "no such file or directory'"
                )
            conditions = [_condition("Ready", "False", reason, message, at)]
        elif health == PROGRESSING:
            conditions = [
                _condition("Reconciling", "True", "Progressing", "Reconciliation in progress", at),
                _condition("Ready", "Unknown", "Progressing", "Reconciliation in progress", at),
            ]
        elif health == READY:
            self.out.ready_kustomizations.append((FLUX_SYSTEM, name))
        spec: dict[str, Any] = {
            "force": False,
            "interval": "10m0s",
            "path": f"./{team}/{LAYERS[layer_index]}/{self.environment}",
            "prune": True,
            "retryInterval": "1m0s",
            "sourceRef": {"kind": "GitRepository", "name": git_names[i % len(git_names)]},
            "timeout": "5m0s",
            "wait": False,
        }
        if dependency:
            spec["dependsOn"] = [{"name": dependency}]
        history: list[dict[str, Any]] = [
            {
                "digest": f"sha256:{self.sha256()}",
                "firstReconciled": self.when(),
                "lastReconciled": at,
                "lastReconciledDuration": f"{self.rng.uniform(0.3, 9):.6f}s",
                "lastReconciledStatus": "ReconciliationSucceeded",
                "metadata": {"revision": f"main@sha1:{self.sha1()}"},
                "totalReconciliations": self.rng.randrange(1, 400),
            }
            for _ in range(self.rng.randrange(1, 3))
        ]
        history[0]["metadata"]["revision"] = revision
        entries = [
            {"id": f"{team}_{team}-{LAYERS[layer_index]}-{k}_apps_Deployment", "v": "v1"}
            for k in range(self.rng.randrange(3, 13))
        ]
        status = {
            "conditions": conditions,
            "history": history,
            "inventory": {"entries": entries},
            "lastAppliedRevision": revision,
            "lastAttemptedRevision": attempted,
            "observedGeneration": 1,
        }
        return self._object("Kustomization", name, FLUX_SYSTEM, spec, status, health)

    def helm_release(
        self, namespace: str, name: str, app: str, chart: tuple[str, str]
    ) -> dict[str, Any]:
        """A HelmRelease with 2-5 history entries, newest first."""
        health = self.health()
        depth = self.rng.randrange(2, 6)
        versions = sorted((self.semver() for _ in range(depth)), reverse=True)
        latest = versions[0]
        release = depth + self.rng.randrange(0, 20)
        at = self.when()
        done = (
            f"Helm upgrade succeeded for release {namespace}/{name}.v{release} with chart "
            f"{app}@{latest}"
        )
        conditions = [
            _condition("Ready", "True", "UpgradeSucceeded", done, at),
            _condition("Released", "True", "UpgradeSucceeded", done, at),
        ]
        top_status = "deployed"
        extra: dict[str, Any] = {}
        if health == FAILING:
            failed = (
                f"Helm upgrade failed for release {namespace}/{name} with chart {app}@{latest}: "
                f'cannot patch "{name}" with kind Deployment: Deployment.apps "{name}" is '
                "invalid: spec.selector: Invalid value: v1.LabelSelector{MatchLabels:"
                f'map[string]string{{"app.kubernetes.io/name":"{app}"}}}}: field is immutable'
            )
            top_status = "failed"
            if self.rng.random() < 0.5:
                retries = "Failed to upgrade after 3 attempt(s)"
                conditions = [
                    _condition("Stalled", "True", "RetriesExceeded", retries, at),
                    _condition("Ready", "False", "RetriesExceeded", retries, at),
                    _condition("Released", "False", "UpgradeFailed", failed, at),
                ]
                extra = {"failures": 3, "upgradeFailures": 3}
            else:
                conditions = [
                    _condition("Ready", "False", "UpgradeFailed", failed, at),
                    _condition("Released", "False", "UpgradeFailed", failed, at),
                ]
                extra = {"failures": 1, "upgradeFailures": 1}
        elif health == PROGRESSING:
            running = "Running 'upgrade' action with timeout of 5m0s"
            conditions = [
                _condition("Reconciling", "True", "Progressing", running, at),
                _condition("Ready", "Unknown", "Progressing", running, at),
                conditions[1],
            ]
        history = []
        for k, version in enumerate(versions):
            history.append(
                {
                    "appVersion": version,
                    "chartName": app,
                    "chartVersion": version,
                    "configDigest": f"sha256:{self.sha256()}",
                    "digest": f"sha256:{self.sha256()}",
                    "firstDeployed": "2026-11-01T08:00:00Z",
                    "lastDeployed": at if k == 0 else self.when(3),
                    "name": name,
                    "namespace": namespace,
                    "status": top_status if k == 0 else "superseded",
                    "version": release - k,
                }
            )
        spec: dict[str, Any] = {
            "install": {"remediation": {"retries": 3}},
            "interval": self.rng.choice(("10m0s", "30m0s", "1h0m0s")),
            "upgrade": {"remediation": {"retries": 3}},
            "values": {"replicaCount": self.rng.randrange(1, 6), "fullnameOverride": name},
        }
        chart_kind, chart_name = chart
        status: dict[str, Any] = {
            "conditions": conditions,
            "history": history,
            "lastAttemptedConfigDigest": history[0]["configDigest"],
            "lastAttemptedGeneration": 1,
            "lastAttemptedReleaseAction": "upgrade",
            "lastAttemptedRevision": latest,
            "observedGeneration": 1,
            "storageNamespace": namespace,
            **extra,
        }
        if chart_kind == "HelmRepository":
            spec["chart"] = {
                "spec": {
                    "chart": app,
                    "reconcileStrategy": "ChartVersion",
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": chart_name,
                        "namespace": FLUX_SYSTEM,
                    },
                    "version": f"{latest.split('.')[0]}.x",
                }
            }
            status["helmChart"] = f"{FLUX_SYSTEM}/{namespace}-{name}"
        else:
            spec["chartRef"] = {
                "kind": "OCIRepository",
                "name": chart_name,
                "namespace": FLUX_SYSTEM,
            }
        owner = f"{namespace}-apps"
        return self._object("HelmRelease", name, namespace, spec, status, health, owner)


# --- changes --------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One status change the driver makes on a fake API server."""

    cluster: str
    kind: str
    namespace: str
    name: str
    status: dict[str, Any]

    @property
    def key(self) -> tuple[str, str, str, str]:
        """(cluster, kind, namespace, name), how transitions are matched to changes."""
        return (self.cluster, self.kind, self.namespace, self.name)


def _now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def failed_kustomization_status(old: dict[str, Any], name: str) -> dict[str, Any]:
    """A Ready Kustomization's status after a health check starts failing."""
    team = name.split("-", 1)[0]
    message = (
        "health check failed after 5m0.009876s: timeout waiting for: "
        f"[Deployment/{team}/{name}-worker status: 'InProgress']"
    )
    status = dict(old)
    status["conditions"] = [_condition("Ready", "False", "HealthCheckFailed", message, _now())]
    return status


def bumped_git_status(old: dict[str, Any], name: str, rng: random.Random) -> dict[str, Any]:
    """A GitRepository's status after it fetched a new commit."""
    sha = f"{rng.getrandbits(160):040x}"
    revision = f"main@sha1:{sha}"
    stored = f"stored artifact for revision '{revision}'"
    at = _now()
    path = f"gitrepository/{FLUX_SYSTEM}/{name}/{sha}.tar.gz"
    status = dict(old)
    status["artifact"] = {
        **old["artifact"],
        "digest": f"sha256:{rng.getrandbits(256):064x}",
        "lastUpdateTime": at,
        "path": path,
        "revision": revision,
        "url": f"{SOURCE_CONTROLLER}/{path}",
    }
    status["conditions"] = [
        _condition("Ready", "True", "Succeeded", stored, at),
        _condition("ArtifactInStorage", "True", "Succeeded", stored, at),
    ]
    return status


def plan_changes(
    fleet: FakeFleet, seeded: dict[str, ClusterObjects], wanted: int, seed: int
) -> list[Change]:
    """Up to `wanted` changes, round-robin over clusters, alternating flip and bump."""
    rng = random.Random(f"{seed}/changes")
    pools: dict[str, list[tuple[str, str, str]]] = {}
    for cluster, objs in seeded.items():
        kustomizations = [("Kustomization", ns, n) for ns, n in objs.ready_kustomizations]
        repositories = [("GitRepository", ns, n) for ns, n in objs.ready_git_repositories]
        rng.shuffle(kustomizations)
        rng.shuffle(repositories)
        # Interleave so that each cluster's changes alternate between the two kinds.
        mixed: list[tuple[str, str, str]] = []
        for k in range(max(len(kustomizations), len(repositories))):
            mixed += [*kustomizations[k : k + 1], *repositories[k : k + 1]]
        pools[cluster] = mixed
    changes: list[Change] = []
    round_ = 0
    while len(changes) < wanted and any(len(p) > round_ for p in pools.values()):
        for cluster, pool in pools.items():
            if len(changes) >= wanted or round_ >= len(pool):
                continue
            kind, namespace, name = pool[round_]
            stored = fleet[cluster].get(API_VERSIONS[kind], kind, namespace, name)
            assert stored is not None
            if kind == "Kustomization":
                status = failed_kustomization_status(stored["status"], name)
            else:
                status = bumped_git_status(stored["status"], name, rng)
            changes.append(Change(cluster, kind, namespace, name, status))
        round_ += 1
    return changes


# --- the probe process ----------------------------------------------------------------------


class RunFailed(Exception):
    """The benchmark could not complete; the figures would be meaningless."""


class ProbeProcess:
    """The bot side, as a child process spoken to in JSON lines."""

    def __init__(self, config: Path, stderr: IO[str]) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.bot_probe", str(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            bufsize=1,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self._replies: queue.Queue[str | None] = queue.Queue()
        # A reader thread lets every request have a deadline, so a hung probe cannot hang us.
        threading.Thread(target=self._read, name="probe-reader", daemon=True).start()

    def _read(self) -> None:
        assert self._proc.stdout is not None
        for line in self._proc.stdout:
            self._replies.put(line)
        self._replies.put(None)

    def request(self, cmd: str, timeout: float, **args: Any) -> dict[str, Any]:
        """Send one request and wait for its reply; RunFailed on error, death or timeout."""
        assert self._proc.stdin is not None
        try:
            self._proc.stdin.write(json.dumps({"cmd": cmd, **args}) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError) as err:
            raise RunFailed(f"the bot probe is gone ({err}); see its stderr above") from err
        try:
            line = self._replies.get(timeout=timeout)
        except queue.Empty:
            raise RunFailed(
                f"the bot probe did not answer {cmd!r} within {timeout:.0f} s"
            ) from None
        if line is None:
            code = self._proc.wait(5)
            raise RunFailed(f"the bot probe exited (status {code}) during {cmd!r}")
        try:
            reply: dict[str, Any] = json.loads(line)
        except ValueError as err:
            raise RunFailed(f"the bot probe answered {cmd!r} with non-JSON: {line!r}") from err
        if not reply.get("ok"):
            raise RunFailed(f"the bot probe failed {cmd!r}:\n{reply.get('error')}")
        return reply

    def close(self, timeout: float = 10.0) -> None:
        """Let the probe exit; kill it if it does not."""
        if self._proc.stdin is not None:
            with contextlib.suppress(OSError):
                self._proc.stdin.close()
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


# --- figures --------------------------------------------------------------------------------


def percentile(samples: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (p95 of 200 samples is the 190th smallest)."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


def machine() -> str:
    """CPU model, CPU count and Python version, for the report."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (
        f"{cpu} · {cpus} CPUs (nproc) · Python {platform.python_version()} "
        f"({platform.python_implementation()}) · {platform.system()} {platform.release()}"
    )


@dataclass(frozen=True)
class Target:
    """A figure, its target and whether it met it."""

    label: str
    value: str
    target: str
    met: bool | None


def print_report(header: Sequence[str], rows: Sequence[Target], notes: Sequence[str]) -> None:
    """The human-readable table."""
    for line in header:
        print(line)
    print()
    width = max(len(r.label) for r in rows)
    value_width = max(len(r.value) for r in rows)
    target_width = max(len(r.target) for r in rows)
    print(f"{'figure'.ljust(width)}  {'value'.rjust(value_width)}  target")
    for r in rows:
        verdict = "" if r.met is None else ("met" if r.met else "NOT MET")
        print(
            f"{r.label.ljust(width)}  {r.value.rjust(value_width)}  "
            f"{r.target.ljust(target_width)}  {verdict}".rstrip()
        )
    if notes:
        print()
        for note in notes:
            print(note)


# --- the run --------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(
        prog="scripts/bench.sh", description="Benchmark fluxbot's watch cache on a fake fleet."
    )
    parser.add_argument("--clusters", type=int, default=20, help="fake clusters (default 20)")
    parser.add_argument(
        "--objects-per-cluster", type=int, default=500, help="Flux objects each (default 500)"
    )
    parser.add_argument(
        "--queries", type=int, default=200, help="status queries from the cache (default 200)"
    )
    parser.add_argument(
        "--naive-queries", type=int, default=30, help="naive status queries (default 30)"
    )
    parser.add_argument(
        "--changes", type=int, default=100, help="status changes to time (default 100)"
    )
    parser.add_argument(
        "--change-interval",
        type=float,
        default=0.02,
        help="seconds between changes (default 0.02: a busy fleet, not one burst)",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed of the fleet")
    args = parser.parse_args(argv)
    if args.clusters < 1 or args.objects_per_cluster < 1 or args.queries < 1:
        parser.error("--clusters, --objects-per-cluster and --queries must be at least 1")
    if args.naive_queries < 1:
        parser.error("--naive-queries must be at least 1")
    return args


def write_config(path: Path, kubeconfig: Path, layout: dict[str, list[str]]) -> Path:
    """The fluxbot config the probe loads, one environment per layout entry."""
    channels = {env: channel for env, _short, channel in ENVIRONMENTS}
    config = {
        "kubernetes": {
            "kubeconfig": str(kubeconfig),
            # One round reads the whole fleet, as the naive reader would be configured.
            "max_parallel_clusters": min(256, sum(len(c) for c in layout.values())),
            # Generous: a timeout would make a cluster unreadable and the naive reader faster.
            "request_timeout_seconds": 60,
        },
        "history": {"path": str(path.parent / "history.db")},
        "environments": {
            env: {
                "channel": channels[env],
                "clusters": [{"context": c} for c in clusters],
                "digest": {"enabled": False},
            }
            for env, clusters in layout.items()
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def _step(label: str) -> Callable[[], None]:
    """Print a progress line to stderr; call the result when the step is done."""
    started = time.perf_counter()
    print(f"... {label}", file=sys.stderr, flush=True)

    def done() -> None:
        print(f"    done in {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)

    return done


def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Seed the fleet, drive the probe, and return every figure."""
    layout = fleet_layout(args.clusters)
    env_of = {c: env for env, clusters in layout.items() for c in clusters}
    figures: dict[str, Any] = {"layout": layout}

    done = _step(f"building {args.clusters} x {args.objects_per_cluster} Flux objects")
    seeded = {
        cluster: ClusterBuilder(cluster, env, args.objects_per_cluster, args.seed).build()
        for cluster, env in env_of.items()
    }
    done()
    # kube-apiserver sends a watch bookmark about once a minute; the fake's default of once a
    # second would have 140 watcher threads wake up every second during the queries.
    fleet = FakeFleet(list(env_of), bookmark_interval=BOOKMARK_INTERVAL_S)
    fleet.start()
    try:
        done = _step("seeding the fake API servers (each object is checked against its CRD)")
        started = time.perf_counter()
        for cluster, objs in seeded.items():
            fleet[cluster].apply_many(objs.objects)
        figures["seed_s"] = time.perf_counter() - started
        # The fleet's objects live as long as the run. Left to the cyclic collector, a full
        # collection of this process (0.3 s with 30 clusters seeded, about 1 s with 100)
        # stalls every fake API server at once mid-sync, which no kube-apiserver does.
        gc.collect()
        gc.freeze()
        done()
        objects = sum(len(o.objects) for o in seeded.values())
        figures["objects"] = objects
        health: dict[str, int] = {}
        for objs in seeded.values():
            for key, count in objs.health.items():
                health[key] = health.get(key, 0) + count
        figures["health"] = health
        expected_per_env = {
            env: sum(len(seeded[c].objects) for c in clusters) for env, clusters in layout.items()
        }
        figures["per_env_objects"] = expected_per_env
        kubeconfig = fleet.write_kubeconfig(workdir / "kubeconfig")
        config = write_config(workdir / "fluxbot.yaml", kubeconfig, layout)
        changes = plan_changes(fleet, seeded, args.changes, args.seed)
        with (workdir / "probe.stderr").open("w+") as probe_err:
            probe = ProbeProcess(config, probe_err)
            try:
                drive(probe, fleet, args, figures, expected_per_env, changes)
            finally:
                probe.close()
                probe_err.seek(0)
                figures["probe_stderr"] = probe_err.read()
    finally:
        fleet.stop()
    return figures


def drive(
    probe: ProbeProcess,
    fleet: FakeFleet,
    args: argparse.Namespace,
    figures: dict[str, Any],
    expected_per_env: dict[str, int],
    changes: Sequence[Change],
) -> None:
    """The probe's part of the run, in order: sync, cache queries, naive queries, changes."""
    objects = figures["objects"]
    # The probe has imported everything and is ready: its RSS before any Flux object.
    reply = probe.request("stats", timeout=60)
    figures["rss_before_sync_mb"] = reply["rss_mb"]
    figures["load_before"] = os.getloadavg()
    done = _step("cold sync of the watch cache")
    # Generous: a run on a loaded machine should report its (slow) figures, not fail.
    reply = probe.request("sync", timeout=660, wait_s=600)
    done()
    if not reply["live"]:
        raise RunFailed(f"the cache did not get every cluster live: {reply['not_live']}")
    if reply["objects"] != objects:
        raise RunFailed(f"the cache holds {reply['objects']} objects, the fleet {objects}")
    figures["cold_sync_s"] = reply["cold_sync_s"]
    figures["cold_sync_cpu_s"] = reply["cold_sync_cpu_s"]
    figures["rss_after_sync_mb"] = reply["rss_mb"]
    figures["threads"] = reply["threads"]

    done = _step(f"{args.queries} status queries from the cache")
    reply = probe.request(
        "cache_queries", timeout=600, n=args.queries, warmup=len(expected_per_env)
    )
    done()
    check_answers("cache", reply, expected_per_env)
    figures["cache_samples"] = reply["samples_ms"]
    figures["slack_samples"] = reply["slack_samples_ms"]
    figures["cpu_samples"] = reply["cpu_samples_ms"]
    figures["slack_cpu_samples"] = reply["slack_cpu_samples_ms"]
    figures["answer_chars"] = reply["max_chars"]

    done = _step(f"{args.naive_queries} naive status queries (list every kind, every cluster)")
    reply = probe.request(
        "naive_queries", timeout=900, n=args.naive_queries, warmup=len(expected_per_env)
    )
    done()
    check_answers("naive", reply, expected_per_env)
    figures["naive_samples"] = reply["samples_ms"]

    done = _step(f"{len(changes)} status changes, one every {args.change_interval * 1000:.0f} ms")
    probe.request("arm", timeout=30)
    changed_at: dict[tuple[str, str, str, str], float] = {}
    for change in changes:
        server: FakeKubeApiServer = fleet[change.cluster]
        changed_at[change.key] = time.time()
        server.set_status(
            API_VERSIONS[change.kind], change.kind, change.namespace, change.name, change.status
        )
        time.sleep(args.change_interval)
    reply = probe.request("collect", timeout=60, keys=[list(k) for k in changed_at], wait_s=30)
    done()
    if reply["missing"]:
        raise RunFailed(
            f"{len(reply['missing'])} of {len(changes)} changes never arrived as transitions "
            f"within 30 s, e.g. {reply['missing'][:3]}"
        )
    latencies = [
        (at - changed_at[(cluster, kind, ns, name)]) * 1000
        for cluster, kind, ns, name, at, _change in reply["seen"]
    ]
    figures["change_samples"] = latencies
    figures["changes"] = len(changes)

    figures["rss_mb"] = reply["peak_rss_mb"]
    figures["rss_now_mb"] = reply["rss_mb"]
    figures["load_after"] = os.getloadavg()
    reply = probe.request("stop", timeout=120)
    figures["stop_s"] = reply["stop_s"]
    figures["threads_after_stop"] = reply["threads"]
    probe.request("quit", timeout=30)


def check_answers(label: str, reply: dict[str, Any], expected: dict[str, int]) -> None:
    """Fail the run when queries did not see the whole environment or hit problems."""
    if reply["problems"]:
        raise RunFailed(f"{label} queries reported {reply['problems']} cluster problems")
    for env, count in reply["objects"].items():
        if count != expected[env]:
            raise RunFailed(f"{label} query of {env} saw {count} objects, expected {expected[env]}")


def report(args: argparse.Namespace, figures: dict[str, Any]) -> dict[str, Any]:
    """Print the table and return the JSON summary."""
    cache = figures["cache_samples"]
    slack = figures["slack_samples"]
    naive = figures["naive_samples"]
    change = figures["change_samples"]
    cache_p50, cache_p95 = percentile(cache, 50), percentile(cache, 95)
    slack_p50, slack_p95 = percentile(slack, 50), percentile(slack, 95)
    naive_p50, naive_p95 = percentile(naive, 50), percentile(naive, 95)
    speedup = naive_p95 / cache_p95 if cache_p95 > 0 else math.inf
    change_p50, change_p95 = percentile(change, 50), percentile(change, 95)
    objects = figures["objects"]
    health = figures["health"]
    shares = " · ".join(
        f"{health.get(h, 0) / objects:.1%} {h}" for h in (READY, FAILING, PROGRESSING, SUSPENDED)
    )
    envs = " · ".join(f"{env} ({len(c)})" for env, c in figures["layout"].items())
    header = [
        "fluxbot watch-cache benchmark",
        f"machine: {machine()}",
        f"fleet:   {args.clusters} clusters x {args.objects_per_cluster} Flux objects = "
        f"{objects} objects; {envs}",
        f"         {shares}; seeded in {figures['seed_s']:.1f} s",
        f"bot:     separate process, {figures['threads']} threads once synced",
        "load:    1/5/15-min load average {} before the cold sync, {} after the changes".format(
            *(" ".join(f"{x:.2f}" for x in figures[k]) for k in ("load_before", "load_after"))
        ),
    ]
    peak_target, after_sync_target = rss_targets(objects)
    per_env = max(figures["per_env_objects"].values(), default=0)
    rows = [
        Target("cold sync (start -> every cluster live)", f"{figures['cold_sync_s']:.2f} s",
               "< 10 s", figures["cold_sync_s"] < 10),
        Target(f"Slack answer from the cache, p50 (n={len(slack)})", f"{slack_p50:.1f} ms", "",
               None),
        Target(f"Slack answer from the cache, p95 (n={len(slack)})", f"{slack_p95:.1f} ms",
               "< 50 ms", slack_p95 < 50),
        Target(f"full listing from the cache, p50 (n={len(cache)})", f"{cache_p50:.1f} ms", "",
               None),
        Target(f"full listing from the cache, p95 (n={len(cache)})", f"{cache_p95:.1f} ms",
               "< 100 ms", cache_p95 < 100),
        Target(f"status query, naive reader, p50 (n={len(naive)})", f"{naive_p50:.0f} ms", "",
               None),
        Target(f"status query, naive reader, p95 (n={len(naive)})", f"{naive_p95:.0f} ms", "",
               None),
        Target("speedup (naive p95 / cache p95)", f"{speedup:.1f}x", ">= 20x", speedup >= 20),
        Target("RSS right after the cold sync", f"{figures['rss_after_sync_mb']:.0f} MB",
               f"< {after_sync_target} MB" if after_sync_target else "",
               figures["rss_after_sync_mb"] < after_sync_target if after_sync_target else None),
        Target("peak RSS of the bot process", f"{figures['rss_mb']:.0f} MB",
               f"< {peak_target} MB", figures["rss_mb"] < peak_target),
        Target("threads once synced", str(figures["threads"]), "reported", None),
        Target(f"change -> transition, p50 (n={len(change)})", f"{change_p50:.0f} ms", "", None),
        Target(f"change -> transition, p95 (n={len(change)})", f"{change_p95:.0f} ms", "< 1 s",
               change_p95 < 1000),
    ]  # fmt: skip
    grown = figures["rss_after_sync_mb"] - figures["rss_before_sync_mb"]
    clusters = args.clusters
    notes = [
        f"CPU time (not wall time; less sensitive to other jobs on the machine): cold sync "
        f"{figures['cold_sync_cpu_s']:.1f} s for the whole bot process; per query, p50/p95, "
        f"Slack answer {percentile(figures['slack_cpu_samples'], 50):.1f}/"
        f"{percentile(figures['slack_cpu_samples'], 95):.1f} ms, full listing "
        f"{percentile(figures['cpu_samples'], 50):.1f}/"
        f"{percentile(figures['cpu_samples'], 95):.1f} ms.",
        f"RSS {figures['rss_before_sync_mb']:.0f} MB before the cold sync, "
        f"{figures['rss_after_sync_mb']:.0f} MB after it, {figures['rss_now_mb']:.0f} MB at "
        "the end (the peak includes the naive queries' listings).",
        f"Per object (RSS grown by the cold sync / objects): {grown * 1024 / objects:.2f} KB; "
        f"per cluster: {grown / clusters:.2f} MB and "
        f"{(figures['threads'] - 1) / clusters:.0f} threads.",
        f"Each answer covers up to {per_env:,} objects. The Slack answer (counts, the first "
        "failures) and the full terminal listing of every object (up to "
        f"{figures['answer_chars']:,} characters) are each timed from handle() to rendered "
        f"message/text, after {len(figures['layout'])} warm-up queries.",
        f"Stopping the cache (FleetCache.stop) took {figures['stop_s']:.1f} s; "
        f"threads left: {figures['threads_after_stop']}.",
    ]
    print_report(header, rows, notes)
    return {
        "clusters": args.clusters,
        "objects": objects,
        "cold_sync_s": round(figures["cold_sync_s"], 3),
        "cache_p50_ms": round(cache_p50, 2),
        "cache_p95_ms": round(cache_p95, 2),
        "slack_p95_ms": round(slack_p95, 2),
        "naive_p95_ms": round(naive_p95, 1),
        "speedup": round(speedup, 1),
        "rss_mb": round(figures["rss_mb"], 1),
        "rss_after_sync_mb": round(figures["rss_after_sync_mb"], 1),
        "threads": figures["threads"],
        "change_to_event_p95_ms": round(change_p95, 1),
    }


def rss_targets(objects: int) -> tuple[int, int | None]:
    """(peak RSS, RSS after the cold sync) targets in MB: the 10,000-object targets up to
    that size, the 100,000-object ones (issue 18) above it."""
    if objects <= 10_000:
        return 200, None
    return 400, 250


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; 0 when it completed, 1 when the run itself failed."""
    args = parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fluxbot-bench-") as tmp:
        try:
            figures = run(args, Path(tmp))
        except RunFailed as err:
            stderr_path = Path(tmp) / "probe.stderr"
            if stderr_path.exists() and (text := stderr_path.read_text().strip()):
                print("--- bot probe stderr ---\n" + text[-20_000:], file=sys.stderr)
            print(f"benchmark failed: {err}", file=sys.stderr)
            return 1
    if figures["probe_stderr"].strip():
        print("--- bot probe stderr ---", file=sys.stderr)
        print(figures["probe_stderr"].strip()[-5000:], file=sys.stderr)
    summary = report(args, figures)
    sys.stdout.flush()
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
