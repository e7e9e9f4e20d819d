"""`fluxbot status` against live clusters: fake API servers on 127.0.0.1, the real process.

Every cluster answers for itself. One that is unreachable, slow, rejects the credentials,
forbids a kind, or has no Flux is reported in words while the others still answer.
"""

from __future__ import annotations

import http.client
import http.server
import json
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client as k8s

from bot.config import ClusterConfig, KubernetesSettings
from bot.domain.kinds import FLUX_GROUPS
from bot.kube.clients import ClusterConfigError, build_api_client
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig
from tests.flux_objects import GIT_SHA, condition, flux_object, snapshot

ROOT = Path(__file__).resolve().parent.parent

HEALTHY = [
    flux_object(
        "GitRepository",
        "flux-system",
        status={
            "artifact": {
                "revision": f"main@sha1:{GIT_SHA}",
                "path": "x",
                "url": "http://source-controller/x",
                "digest": "sha256:" + "ab" * 32,
                "lastUpdateTime": "2026-11-25T08:00:00Z",
            }
        },
        conditions=[condition(message=f"stored artifact for revision 'main@sha1:{GIT_SHA}'")],
    ),
    flux_object("Kustomization", "apps", conditions=[condition()]),
    flux_object(
        "HelmRelease",
        "podinfo",
        "flux-apps",
        status={"history": [snapshot(3, "6.7.1")], "storageNamespace": "flux-apps"},
        conditions=[condition(message="Helm upgrade succeeded")],
    ),
]
BROKEN_SOURCE = flux_object(
    "GitRepository",
    "platform",
    conditions=[condition("Ready", "False", "GitOperationFailed", "authentication required")],
)


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "status", "--config", str(config), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )


def _write_config(
    path: Path, kubeconfig: Path, environments: dict[str, list[str]], **kubernetes: Any
) -> Path:
    config = {
        "kubernetes": {"kubeconfig": str(kubeconfig), **kubernetes},
        "environments": {
            env: {
                "channel": f"C0{env.upper().replace('-', '')}",
                "clusters": [{"context": c} for c in clusters],
            }
            for env, clusters in environments.items()
        },
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet(["prod-eu-1", "prod-us-1", "staging-eu-1"])
    with fleet:
        for server in fleet:
            server.apply_many(HEALTHY)
        yield fleet


def test_status_reads_every_cluster_of_every_environment(fleet: FakeFleet, tmp_path: Path) -> None:
    fleet["prod-us-1"].apply(BROKEN_SOURCE)
    config = _write_config(
        tmp_path / "fluxbot.yaml",
        fleet.write_kubeconfig(tmp_path / "kubeconfig"),
        {"staging": ["staging-eu-1"], "production": ["prod-eu-1", "prod-us-1"]},
    )

    result = _run(config, "--output", "json")

    assert result.returncode == 0, result.stderr
    records = json.loads(result.stdout)
    assert len(records) == 10
    assert records[0] == records[0] | {
        "environment": "staging",
        "cluster": "staging-eu-1",
        "kind": "GitRepository",
        "namespace": "flux-system",
        "name": "flux-system",
        "ready": "True",
        "suspended": False,
        "revision": "main@sha1:696f056d",
        "message": "stored artifact for revision 'main@sha1:696f056d'",
    }
    us = [r for r in records if r["cluster"] == "prod-us-1"]
    assert (us[0]["name"], us[0]["ready"], us[0]["health"]) == ("platform", "False", "failing")
    assert [r["revision"] for r in records if r["kind"] == "HelmRelease"] == ["6.7.1"] * 3
    # Reading is all fluxbot did.
    assert all(not server.writes() for server in fleet)


def test_each_broken_cluster_is_reported_while_the_healthy_one_answers(
    tmp_path: Path,
) -> None:
    fleet = FakeFleet(["healthy", "down", "expired", "forbidden", "no-flux", "slow"])
    fleet.servers["no-flux"] = FakeKubeApiServer(
        "no-flux",
        omit_groups=FLUX_GROUPS,
    )
    with fleet:
        for name in ("healthy", "forbidden", "slow"):
            fleet[name].apply_many(HEALTHY)
        kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
        fleet["down"].stop()
        fleet["expired"].token = "rotated"
        fleet["forbidden"].deny("list", "gitrepositories")
        fleet["slow"].inject(
            "GET", r"/apis/kustomize\.toolkit\.fluxcd\.io/v1/kustomizations", hang=True
        )
        config = _write_config(
            tmp_path / "fluxbot.yaml",
            kubeconfig,
            {"production": [*fleet.servers, "missing-context"]},
            connect_timeout_seconds=1,
            request_timeout_seconds=1,
        )

        result = _run(config)

    assert result.returncode == 1
    out = result.stdout
    # Unreadable is not healthy: the headline says so first, then names who answered.
    assert out.startswith(
        "== production: 5 clusters unreadable (unreachable, 401, no Flux, timed out, "
        "configuration) · nothing failing in healthy and forbidden\n"
    )
    assert "healthy: 0 failing · 0 progressing · 0 suspended · 3 ready" in out
    assert (
        f"down: CANNOT READ (unreachable): cannot reach the API server at {fleet['down'].url}: "
        "connection refused" in out
    )
    assert (
        "expired: CANNOT READ (401): the cluster rejected fluxbot's credentials "
        "(401 Unauthorized)" in out
    )
    # A forbidden kind costs only that kind.
    assert "forbidden: 0 failing · 0 progressing · 0 suspended · 2 ready" in out
    assert (
        "! GitRepository: fluxbot lacks permission (403 Forbidden): "
        "gitrepositories.source.toolkit.fluxcd.io is forbidden: User "
        '"system:serviceaccount:flux-system:fluxbot" cannot list resource "gitrepositories"' in out
    )
    assert "no-flux: CANNOT READ (no Flux): Flux is not installed" in out
    assert (
        f"slow: CANNOT READ (timed out): the API server at {fleet['slow'].url} did not answer "
        "within 1 s" in out
    )
    assert (
        "missing-context: CANNOT READ (configuration): kubeconfig context 'missing-context' "
        f"does not exist in {kubeconfig} "
        "(available: down, expired, forbidden, healthy, no-flux, slow)"
    ) in out
    assert "Traceback" not in result.stderr
    assert "cannot read production/down" in result.stderr


def test_clusters_on_older_flux_are_read_through_the_versions_they_serve(tmp_path: Path) -> None:
    legacy = FakeKubeApiServer(
        "legacy",
        versions={
            "source.toolkit.fluxcd.io": ["v1beta2"],
            "kustomize.toolkit.fluxcd.io": ["v1beta2"],
            "helm.toolkit.fluxcd.io": ["v2beta2", "v2beta1"],
            # image-reflector-controller < 1.0 and notification-controller < 1.1.
            "image.toolkit.fluxcd.io": ["v1beta2"],
            "notification.toolkit.fluxcd.io": ["v1beta2"],
        },
    )
    fleet = FakeFleet()
    fleet.servers["legacy"] = legacy
    old_versions = {
        "source": "v1beta2",
        "kustomize": "v1beta2",
        "helm": "v2beta2",
        "image": "v1beta2",
        "notification": "v1beta2",
    }
    broken_image = flux_object(
        "ImageRepository",
        "payments-api",
        conditions=[
            condition("Ready", "False", "ReadOperationFailed", "scan failed: UNAUTHORIZED")
        ],
    )
    with fleet:
        for obj in [*HEALTHY, BROKEN_SOURCE, broken_image, flux_object("Receiver", "github")]:
            group = obj["apiVersion"].split("/")[0]
            legacy.apply({**obj, "apiVersion": f"{group}/{old_versions[group.split('.')[0]]}"})
        config = _write_config(
            tmp_path / "fluxbot.yaml",
            fleet.write_kubeconfig(tmp_path / "kubeconfig"),
            {"development": ["legacy"]},
        )
        result = _run(config, "--output", "json", "--failing")
        listed = {r.path for r in legacy.requests("GET") if "namespaces" not in r.path}

    assert result.returncode == 0, result.stderr
    assert [(r["kind"], r["name"]) for r in json.loads(result.stdout)] == [
        ("GitRepository", "platform"),
        ("ImageRepository", "payments-api"),
    ]
    assert "/apis/helm.toolkit.fluxcd.io/v2beta2/helmreleases" in listed
    assert "/apis/image.toolkit.fluxcd.io/v1beta2/imagerepositories" in listed
    assert "/apis/notification.toolkit.fluxcd.io/v1beta2/receivers" in listed
    assert "/apis/source.toolkit.fluxcd.io/v1beta2/gitrepositories" in listed


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (500, "the API server answered 500 Internal Server Error: Internal error occurred"),
        (404, "the HelmRelease API disappeared while reading"),
        (429, "the API server is throttling requests (429); retry after 7 s"),
        (503, "the API server answered 503 Service Unavailable"),
    ],
)
def test_api_errors_are_worded_for_people(
    fleet: FakeFleet, tmp_path: Path, status: int, words: str
) -> None:
    fleet["prod-eu-1"].inject("GET", r".*/helmreleases$", status=status, retry_after=7)
    config = _write_config(
        tmp_path / "fluxbot.yaml",
        fleet.write_kubeconfig(tmp_path / "kubeconfig"),
        {"production": ["prod-eu-1", "prod-us-1"]},
    )
    result = _run(config)
    assert words in result.stdout
    assert "prod-us-1: 0 failing · 0 progressing · 0 suspended · 3 ready" in result.stdout


def test_shell_on_a_configured_fleet_answers_from_the_watch_cache(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    config = _write_config(
        tmp_path / "fluxbot.yaml",
        fleet.write_kubeconfig(tmp_path / "kubeconfig"),
        {"production": ["prod-eu-1", "prod-us-1"]},
    )
    # What helm-controller records on the object; `get` reads it live from the cluster.
    fleet["prod-us-1"].apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": "podinfo.1",
                "namespace": "flux-apps",
                "annotations": {"helm.toolkit.fluxcd.io/revision": "6.7.1"},
            },
            "involvedObject": {
                "apiVersion": "helm.toolkit.fluxcd.io/v2",
                "kind": "HelmRelease",
                "name": "podinfo",
                "namespace": "flux-apps",
            },
            "type": "Normal",
            "reason": "UpgradeSucceeded",
            "message": "Helm upgrade succeeded for release flux-apps/podinfo.v3",
            "lastTimestamp": "2026-11-26T08:00:00Z",
            "count": 1,
            "source": {"component": "helm-controller"},
        }
    )
    # And what source-controller records on the release's HelmChart: `get` shows the
    # object's and its sources' Events, as `flux events --for HelmRelease/podinfo` does.
    fleet["prod-us-1"].apply(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {
                "name": "flux-apps-podinfo.1",
                "namespace": "flux-system",
                "annotations": {"source.toolkit.fluxcd.io/revision": "6.7.1"},
            },
            "involvedObject": {
                "apiVersion": "source.toolkit.fluxcd.io/v1",
                "kind": "HelmChart",
                "name": "flux-apps-podinfo",
                "namespace": "flux-system",
            },
            "type": "Normal",
            "reason": "ChartPullSucceeded",
            "message": "pulled 'podinfo' chart with version '6.7.1'",
            "lastTimestamp": "2026-11-26T07:59:00Z",
            "count": 1,
            "source": {"component": "source-controller"},
        }
    )
    result = subprocess.run(
        [sys.executable, "-m", "bot.cli", "shell", "--config", str(config)],
        input="status production\nget hr podinfo -n flux-apps --cluster prod-us-1\nenvs\n",
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "prod-eu-1: 0 failing · 0 progressing · 0 suspended · 3 ready\n" in result.stdout
    assert "HelmRelease flux-apps/podinfo (production / prod-us-1): ready" in result.stdout
    assert "prod-eu-1 (live), prod-us-1 (live)" in result.stdout
    assert "Recent events:" in result.stdout
    events = result.stdout.split("Recent events:")[1].splitlines()
    assert [line.split()[3:6] for line in events[2:4]] == [
        ["UpgradeSucceeded", "HelmRelease/podinfo", "6.7.1"],
        ["ChartPullSucceeded", "HelmChart/flux-system/flux-apps-podinfo", "6.7.1"],
    ]
    assert "Helm upgrade succeeded for release flux-apps/podinfo.v3" in events[2]
    # Listed once per kind and then watched, never listed again per command.
    lists = [
        r
        for r in fleet["prod-eu-1"].requests("GET")
        if r.path.endswith("/helmreleases") and "watch" not in r.query
    ]
    assert len(lists) == 1


def test_each_cluster_is_connected_from_the_kubeconfig_as_it_is_now(tmp_path: Path) -> None:
    # Parsed once for the whole fleet, and read again when the file changes (a rotated Secret).
    path = tmp_path / "kubeconfig"
    write_kubeconfig(path, {"eu": ("http://127.0.0.1:1", "t1"), "us": ("http://127.0.0.1:2", "t2")})
    settings = KubernetesSettings(kubeconfig=path)
    assert build_api_client(ClusterConfig(context="eu"), settings).configuration.host == (
        "http://127.0.0.1:1"
    )
    assert build_api_client(ClusterConfig(context="us"), settings).configuration.host == (
        "http://127.0.0.1:2"
    )
    write_kubeconfig(path, {"eu": ("http://127.0.0.1:3", "t3"), "asia": ("http://127.0.0.1:4", "")})
    assert build_api_client(ClusterConfig(context="eu"), settings).configuration.host == (
        "http://127.0.0.1:3"
    )
    with pytest.raises(ClusterConfigError, match="context 'us' does not exist"):
        build_api_client(ClusterConfig(context="us"), settings)


class _ForwardProxy(http.server.ThreadingHTTPServer):
    """A plain-http forward proxy on 127.0.0.1 that records the absolute URLs it carries."""

    def __init__(self) -> None:
        self.carried: list[str] = []
        proxy = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                proxy.carried.append(self.path)
                target = urllib.parse.urlsplit(self.path)
                upstream = http.client.HTTPConnection(target.netloc, timeout=10)
                headers = {k: v for k, v in self.headers.items() if k.lower() != "proxy-connection"}
                upstream.request("GET", target.path + "?" + target.query, headers=headers)
                answer = upstream.getresponse()
                body = answer.read()
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.getheader("Content-Type", ""))
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
                upstream.close()

            def log_message(self, *args: Any) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)


def test_the_proxy_named_at_start_carries_every_request_to_a_cluster(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Taken when the client is built (kubernetes/client/rest.py makes its pool with it), as
    # client-go takes it once per process (net/http ProxyFromEnvironment): a later change of
    # the environment changes nothing, and it is not re-read before each request.
    proxy = _ForwardProxy()
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    try:
        with FakeKubeApiServer() as server:
            server.apply_many(HEALTHY)
            path = tmp_path / "kubeconfig"
            write_kubeconfig(path, {"eu": (server.url, server.token)})
            for name in ("NO_PROXY", "no_proxy", "HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
                monkeypatch.delenv(name, raising=False)
            monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{proxy.server_address[1]}")
            api_client = build_api_client(
                ClusterConfig(context="eu"), KubernetesSettings(kubeconfig=path)
            )
            monkeypatch.delenv("HTTP_PROXY")
            custom = k8s.CustomObjectsApi(api_client)
            for _ in range(2):
                listed = custom.list_cluster_custom_object(
                    "kustomize.toolkit.fluxcd.io", "v1", "kustomizations", _request_timeout=10
                )
                assert [o["metadata"]["name"] for o in listed["items"]] == ["apps"]
            api_client.close()
    finally:
        proxy.shutdown()
        proxy.server_close()
    assert proxy.carried == [
        f"{server.url}/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
        f"{server.url}/apis/kustomize.toolkit.fluxcd.io/v1/kustomizations",
    ]
