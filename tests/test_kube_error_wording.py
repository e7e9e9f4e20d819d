"""Every part of fluxbot that talks to a Kubernetes API server words a refusal the same way.

Cluster reads (`describe_error`), the leader lease and the ConfigMap history all put an API
error into one line through bot/kube/errors.py: `HTTP <code> <reason>: <the Status message>`,
the message being what kube-apiserver itself said (here, the fake's RBAC denial).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from bot.config import ClusterConfig, KubernetesSettings
from bot.domain.fleet import ProblemKind
from bot.history.configmap import ConfigMapHistory, HistoryUnavailable
from bot.kube.clients import build_api_client
from bot.kube.errors import describe_error, error_detail
from bot.kube.lease import LeaderElector
from tests.fakes.kube_api import DEFAULT_USER, FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig

NS = "fluxbot"


@pytest.fixture
def server() -> Iterator[FakeKubeApiServer]:
    """A fake API server that forbids fluxbot every ConfigMap and Lease."""
    with FakeKubeApiServer("home") as srv:
        srv.deny("*", "configmaps")
        srv.deny("*", "leases")
        yield srv


@pytest.fixture
def api_client(server: FakeKubeApiServer, tmp_path: Path) -> Iterator[Any]:
    """An API client for the server, built as fluxbot builds them."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"home": (server.url, server.token)})
    api = build_api_client(
        ClusterConfig(kubeconfig=kubeconfig, context="home"), KubernetesSettings()
    )
    yield api
    api.close()


def forbidden(verb: str, resource: str, name: str = "") -> str:
    """The line for kube-apiserver's 403 on `verb` of `resource` in fluxbot's namespace."""
    group = "coordination.k8s.io" if resource == "leases" else ""
    qualified = f"{resource}.{group}" if group else resource
    named = f' "{name}"' if name else ""
    return (
        f'HTTP 403 Forbidden: {qualified}{named} is forbidden: User "{DEFAULT_USER}" cannot '
        f'{verb} resource "{resource}" in API group "{group}" in the namespace "{NS}"'
    )


def test_a_cluster_problem_carries_the_one_wording_as_its_detail(api_client: Any) -> None:
    with pytest.raises(ApiException) as caught:
        client.CoreV1Api(api_client).list_namespaced_config_map(NS)
    problem = describe_error(caught.value, "https://home", 5.0)
    assert problem.kind is ProblemKind.FORBIDDEN
    assert problem.detail == error_detail(caught.value) == forbidden("list", "configmaps")


def test_the_configmap_history_says_what_it_could_not_do_in_the_same_words(
    api_client: Any,
) -> None:
    with pytest.raises(HistoryUnavailable) as caught:
        ConfigMapHistory(api_client, NS, retention=dt.timedelta(days=8), flush_seconds=0)
    assert str(caught.value) == (
        f"cannot list ConfigMaps in namespace {NS}: {forbidden('list', 'configmaps')}"
    )


def test_the_lease_logs_a_refused_renewal_in_the_same_words(
    api_client: Any, caplog: pytest.LogCaptureFixture
) -> None:
    elector = LeaderElector(
        api_client, NS, "fluxbot-leader", "pod-a", lease_seconds=1, renew_seconds=0.2,
        retry_seconds=0.1,
    )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="bot.kube.lease"):
        elector.start()
        try:
            deadline = time.monotonic() + 5
            while not any("forbidden" in r.getMessage() for r in caplog.records):
                assert time.monotonic() < deadline, "the lease never said it was refused"
                time.sleep(0.01)
        finally:
            elector.stop()
    line = next(r.getMessage() for r in caplog.records if "forbidden" in r.getMessage())
    assert line.endswith(forbidden("get", "leases", "fluxbot-leader"))
    assert not elector.is_leader
