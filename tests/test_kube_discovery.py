"""Which Flux versions a cluster serves, discovered over HTTP from fake API servers.

A server with aggregated discovery (Kubernetes >= 1.26) answers in one request; an older one,
or one whose aggregated answer is mangled, through the legacy per-group requests, with the
same result. What client-go does, and so what we copy: kubernetes/client-go
`discovery/discovery_client.go` (`downloadAPIs`: the Accept header, and the answer told apart
by its Content-Type, `ContentTypeIsGVK`) and `discovery/aggregated_discovery.go`
(`convertAPIGroup`: a Stale version is left out, the first version that is not Stale is the
preferred one, a resource without responseKind is skipped).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import config
from kubernetes.client.exceptions import ApiException

from bot.kube.discovery import ServedKinds, discover
from tests.fakes.kube_api import FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig

SOURCE = "source.toolkit.fluxcd.io"
HELM = "helm.toolkit.fluxcd.io"
TIMEOUT = (5.0, 5.0)
GROUP_LIST = "/apis/"  # the path ApisApi.get_api_versions requests
# As in tests/test_status_live_clusters.py: a cluster still on Flux 2.0-2.2 era API versions.
OLDER_FLUX = {
    SOURCE: ["v1beta2"],
    "kustomize.toolkit.fluxcd.io": ["v1beta2"],
    HELM: ["v2beta2", "v2beta1"],
    "image.toolkit.fluxcd.io": ["v1beta2"],
    "notification.toolkit.fluxcd.io": ["v1beta2"],
}


def discover_on(server: FakeKubeApiServer, tmp_path: Path) -> tuple[ServedKinds, list[str]]:
    """Discover through the official client; the served kinds and the paths requested."""
    clusters = {server.name: (server.url, server.token)}
    path = write_kubeconfig(tmp_path / f"kubeconfig-{server.name}", clusters)
    server.clear_requests()
    with config.new_client_from_config(config_file=str(path), context=server.name) as api:
        served = discover(api, TIMEOUT)
    return served, [r.path for r in server.requests()]


@pytest.fixture
def servers(request: Any) -> Iterator[tuple[FakeKubeApiServer, FakeKubeApiServer]]:
    """The same cluster twice: with aggregated discovery, and as a server older than 1.26."""
    versions = getattr(request, "param", None)
    with (
        FakeKubeApiServer("aggregated", versions=versions) as new,
        FakeKubeApiServer("legacy", versions=versions, aggregated_discovery=False) as old,
    ):
        yield new, old


@pytest.mark.parametrize("servers", [None, OLDER_FLUX], ids=["current", "older"], indirect=True)
def test_a_cluster_with_aggregated_discovery_is_discovered_in_one_request_with_the_same_versions(
    servers: tuple[FakeKubeApiServer, FakeKubeApiServer], tmp_path: Path
) -> None:
    new, old = servers

    aggregated, aggregated_paths = discover_on(new, tmp_path)
    legacy, legacy_paths = discover_on(old, tmp_path)

    assert aggregated_paths == [GROUP_LIST]
    assert aggregated == legacy
    assert legacy_paths[0] == GROUP_LIST
    assert len(legacy_paths) > 1
    assert all(p.startswith("/apis/") and p.count("/") == 3 for p in legacy_paths[1:])


def test_current_flux_kinds_are_read_through_their_newest_versions(tmp_path: Path) -> None:
    with FakeKubeApiServer("current") as server:
        served, _ = discover_on(server, tmp_path)

    assert served.versions["HelmRelease"] == "v2"
    assert served.versions["GitRepository"] == "v1"
    assert served.versions["Receiver"] == "v1"
    # Not in notification.toolkit.fluxcd.io/v1, the group's preferred version.
    assert served.versions["Alert"] == "v1beta3"
    assert served.versions["ArtifactGenerator"] == "v1beta1"


def test_older_flux_kinds_are_read_through_the_versions_the_cluster_serves(
    tmp_path: Path,
) -> None:
    with FakeKubeApiServer("older", versions=OLDER_FLUX) as server:
        served, paths = discover_on(server, tmp_path)

    assert paths == [GROUP_LIST]
    assert served.versions["HelmRelease"] == "v2beta2"
    assert served.versions["GitRepository"] == "v1beta2"
    assert served.versions["ImageRepository"] == "v1beta2"
    assert "ExternalArtifact" not in served.versions  # no v1beta2 of it exists


def test_kubernetes_1_27_to_1_29_is_discovered_in_one_request_through_v2beta1(
    tmp_path: Path,
) -> None:
    with FakeKubeApiServer("k129", kube_version="v1.29.4") as server:
        served, paths = discover_on(server, tmp_path)

    assert paths == [GROUP_LIST]
    assert server.requests()[0].status == 200
    assert served.versions["HelmRelease"] == "v2"


def test_a_server_without_aggregated_discovery_is_asked_group_by_group(tmp_path: Path) -> None:
    with FakeKubeApiServer("old", aggregated_discovery=False) as server:
        served, paths = discover_on(server, tmp_path)

    # Its APIGroupList answers the first request, so the group list is not asked for again.
    assert paths.count(GROUP_LIST) == 1
    assert f"/apis/{HELM}/v2" in paths
    assert served.versions["HelmRelease"] == "v2"


@pytest.mark.parametrize(
    "body",
    [
        b'{"kind":"APIGroupDiscoveryList","items":[{"metadata":{"name":"helm.tool',
        b'{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/v2","items":{}}',
        b'{"kind":"APIGroupDiscoveryList","items":[{"metadata":{"name":"'
        + HELM.encode()
        + b'"},"versions":[{"version":"v2","resources":"helmreleases"}]}]}',
        b"<html>502 Bad Gateway</html>",
    ],
    ids=["truncated", "items-not-a-list", "resources-not-a-list", "not-json"],
)
def test_a_malformed_aggregated_answer_falls_back_to_the_legacy_requests(
    tmp_path: Path, body: bytes
) -> None:
    with FakeKubeApiServer("mangled") as server:
        expected, _ = discover_on(server, tmp_path)
        server.malformed_aggregated_discovery = body
        served, paths = discover_on(server, tmp_path)

    assert served == expected
    assert paths[:2] == [GROUP_LIST, GROUP_LIST]
    assert f"/apis/{HELM}/v2" in paths


def test_a_stale_version_is_not_used_and_the_next_served_one_is(tmp_path: Path) -> None:
    with FakeKubeApiServer("stale", versions={HELM: ["v2", "v2beta2"]}) as server:
        server.stale_discovery.add(f"{HELM}/v2")
        served, paths = discover_on(server, tmp_path)

    assert paths == [GROUP_LIST]
    assert served.versions["HelmRelease"] == "v2beta2"
    assert served.versions["GitRepository"] == "v1"


def test_a_cluster_without_flux_is_discovered_in_one_request(tmp_path: Path) -> None:
    groups = [SOURCE, HELM, "kustomize.toolkit.fluxcd.io", "image.toolkit.fluxcd.io",
              "notification.toolkit.fluxcd.io", "source.extensions.fluxcd.io"]  # fmt: skip
    with FakeKubeApiServer("bare", omit_groups=groups) as server:
        served, paths = discover_on(server, tmp_path)

    assert paths == [GROUP_LIST]
    assert not served.flux_installed


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated", "legacy"])
@pytest.mark.parametrize("status", [401, 403, 404, 500, 503])
def test_an_error_answer_to_the_group_list_is_raised_as_the_client_raises_it(
    tmp_path: Path, status: int, aggregated: bool
) -> None:
    with FakeKubeApiServer("failing", aggregated_discovery=aggregated) as server:
        server.inject("GET", r"^/apis/?$", status=status)
        with pytest.raises(ApiException) as err:
            discover_on(server, tmp_path)

    assert err.value.status == status
    assert '"kind":"Status"' in err.value.body
