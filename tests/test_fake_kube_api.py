"""The fake Kubernetes API server, driven only through the official `kubernetes` client.

These tests are the evidence that the fake answers the way a real kube-apiserver does for that
client: same paths, same bodies, same exceptions.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import urllib3
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig, write_unreachable_kubeconfig

SOURCE = "source.toolkit.fluxcd.io"
HELM = "helm.toolkit.fluxcd.io"
NS = "flux-system"
MERGE = "application/merge-patch+json"


def git_repository(name: str, namespace: str = NS, **labels: str) -> dict[str, Any]:
    """A valid GitRepository."""
    return {
        "apiVersion": f"{SOURCE}/v1",
        "kind": "GitRepository",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {"url": f"https://github.com/example/{name}", "interval": "1m"},
    }


def helm_release(name: str, version: str = "v2") -> dict[str, Any]:
    """A valid HelmRelease in the given helm.toolkit.fluxcd.io version."""
    return {
        "apiVersion": f"{HELM}/{version}",
        "kind": "HelmRelease",
        "metadata": {"name": name, "namespace": NS},
        "spec": {
            "interval": "5m",
            "chart": {
                "spec": {
                    "chart": name,
                    "sourceRef": {"kind": "HelmRepository", "name": "charts"},
                }
            },
        },
    }


def ready(generation: int = 1) -> dict[str, Any]:
    """A Ready=True status as a Flux controller writes it."""
    return {
        "observedGeneration": generation,
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Succeeded",
                "message": "stored artifact",
                "lastTransitionTime": "2025-01-01T00:00:00Z",
                "observedGeneration": generation,
            }
        ],
    }


def connect(server: FakeKubeApiServer, tmp_path: Path, token: str | None = None) -> Any:
    """An ApiClient built from a kubeconfig file, as the bot builds its clients."""
    path = write_kubeconfig(
        tmp_path / f"kubeconfig-{server.name}", {server.name: (server.url, token or server.token)}
    )
    return config.new_client_from_config(config_file=str(path), context=server.name)


def raw_get(api: Any, path: str, timeout: float | None = None) -> dict[str, Any]:
    """GET an arbitrary path through ApiClient.call_api and decode the JSON."""
    params = api.param_serialize(
        method="GET",
        resource_path=path,
        header_params={"Accept": "application/json"},
        auth_settings=["BearerToken"],
    )
    response = api.call_api(*params, _request_timeout=timeout)
    response.read()
    if not 200 <= response.status < 300:
        api.response_deserialize(response, {})
    return json.loads(response.data)


@pytest.fixture
def server() -> Iterator[FakeKubeApiServer]:
    """A running fake with two GitRepositories in flux-system and one elsewhere."""
    with FakeKubeApiServer("test") as srv:
        srv.apply({**git_repository("podinfo", team="a"), "status": ready()})
        srv.apply(git_repository("infra", team="b"))
        srv.apply(git_repository("apps", namespace="apps", team="a"))
        yield srv
        assert srv.internal_errors == []


@pytest.fixture
def api(server: FakeKubeApiServer, tmp_path: Path) -> Iterator[Any]:
    """An ApiClient for `server`."""
    with connect(server, tmp_path) as api_client:
        yield api_client


@pytest.fixture
def custom(api: Any) -> client.CustomObjectsApi:
    """CustomObjectsApi for `server`."""
    return client.CustomObjectsApi(api)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll briefly for something the server finishes just after the client has moved on."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.005)


def get_repo(custom: client.CustomObjectsApi, name: str, namespace: str = NS) -> Any:
    """GET one GitRepository."""
    return custom.get_namespaced_custom_object(SOURCE, "v1", namespace, "gitrepositories", name)


def patch_repo(custom: client.CustomObjectsApi, name: str, body: Any, **kwargs: Any) -> Any:
    """PATCH one GitRepository in flux-system (merge patch unless told otherwise)."""
    kwargs.setdefault("_content_type", MERGE)
    return custom.patch_namespaced_custom_object(
        SOURCE, "v1", NS, "gitrepositories", name, body, **kwargs
    )


def watch_repos(custom: client.CustomObjectsApi, **kwargs: Any) -> tuple[Any, Iterator[Any]]:
    """A Watch and its event stream over GitRepositories in flux-system."""
    kwargs.setdefault("timeout_seconds", 10)
    w = watch.Watch()
    stream = w.stream(
        custom.list_namespaced_custom_object, SOURCE, "v1", NS, "gitrepositories", **kwargs
    )
    return w, stream


# --- discovery ---------------------------------------------------------------------------


def test_discovery_lists_flux_groups_with_preferred_versions(api: Any) -> None:
    groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}

    assert set(groups) == {
        SOURCE,
        "kustomize.toolkit.fluxcd.io",
        HELM,
        "notification.toolkit.fluxcd.io",
        "image.toolkit.fluxcd.io",
        "source.extensions.fluxcd.io",
        "coordination.k8s.io",
    }
    assert groups[HELM].preferred_version.group_version == f"{HELM}/v2"
    notification = groups["notification.toolkit.fluxcd.io"]
    assert notification.preferred_version.version == "v1"
    assert [v.version for v in notification.versions] == ["v1", "v1beta3"]
    assert groups["source.extensions.fluxcd.io"].preferred_version.version == "v1beta1"


def test_group_version_discovery_lists_kinds_verbs_short_names_and_status(api: Any) -> None:
    body = raw_get(api, f"/apis/{SOURCE}/v1")

    assert body["kind"] == "APIResourceList"
    assert body["groupVersion"] == f"{SOURCE}/v1"
    by_name = {r["name"]: r for r in body["resources"]}
    repo = by_name["gitrepositories"]
    assert repo["kind"] == "GitRepository"
    assert repo["singularName"] == "gitrepository"
    assert repo["namespaced"] is True
    assert repo["shortNames"] == ["gitrepo"]
    assert {"get", "list", "watch", "patch"} <= set(repo["verbs"])
    assert by_name["gitrepositories/status"]["verbs"] == ["get", "patch", "update"]


def test_discovery_of_core_v1_group_and_version(api: Any) -> None:
    resources = client.CoreV1Api(api).get_api_resources().resources
    assert "events" in {r.name for r in resources}
    group = raw_get(api, "/apis/coordination.k8s.io")
    assert group["preferredVersion"]["version"] == "v1"
    assert client.VersionApi(api).get_code().git_version.startswith("v1.")


def test_omitted_group_is_missing_from_discovery_and_its_paths_are_404(tmp_path: Path) -> None:
    with (
        FakeKubeApiServer("noflux", omit_groups={HELM}) as srv,
        connect(srv, tmp_path) as api,
    ):
        names = {g.name for g in client.ApisApi(api).get_api_versions().groups}
        assert HELM not in names
        assert SOURCE in names
        with pytest.raises(ApiException) as err:
            client.CustomObjectsApi(api).list_namespaced_custom_object(
                HELM, "v2", NS, "helmreleases"
            )
        assert err.value.status == 404
        with pytest.raises(ApiException) as err:
            raw_get(api, f"/apis/{HELM}/v2")
        assert err.value.status == 404


def test_legacy_versions_are_discovered_and_objects_carry_that_api_version(
    tmp_path: Path,
) -> None:
    versions = {HELM: ["v2beta2"], SOURCE: ["v1beta2"]}
    with FakeKubeApiServer("old", versions=versions) as srv, connect(srv, tmp_path) as api:
        srv.apply(helm_release("podinfo", version="v2beta2"))
        with pytest.raises(ValueError, match="no matches for kind"):
            srv.apply(helm_release("other", version="v2"))

        groups = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
        assert groups[HELM].preferred_version.version == "v2beta2"
        assert [v.version for v in groups[SOURCE].versions] == ["v1beta2"]
        custom = client.CustomObjectsApi(api)
        items = custom.list_namespaced_custom_object(HELM, "v2beta2", NS, "helmreleases")["items"]
        assert [i["apiVersion"] for i in items] == [f"{HELM}/v2beta2"]
        with pytest.raises(ApiException) as err:
            custom.list_namespaced_custom_object(HELM, "v2", NS, "helmreleases")
        assert err.value.status == 404


# Aggregated discovery, as kube-apiserver serves it on /apis (Kubernetes >= 1.26). Upstream:
# kubernetes/kubernetes staging/src/k8s.io/apiserver/pkg/endpoints/discovery/aggregated/
# (wrapper.go, negotiation.go, handler.go, etag.go), .../handlers/negotiation/negotiate.go,
# .../handlers/responsewriters/writers.go (the Content-Type), staging/src/k8s.io/api/
# apidiscovery/v2/types.go and staging/src/k8s.io/apiextensions-apiserver/pkg/apiserver/
# customresource_discovery_controller.go (what a CRD contributes).
V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
# What client-go's discovery client sends (discovery/discovery_client.go, acceptDiscoveryFormats).
CLIENT_GO_ACCEPT = f"{V2},application/json"


def discovery_answer(api: Any, accept: str, **headers: str) -> tuple[int, Any, dict[str, Any]]:
    """GET /apis with this Accept header through the official client: status, headers, body."""
    response = client.ApisApi(api).get_api_versions(
        _preload_content=False, _headers={"Accept": accept, **headers}
    )
    return response.status, response.headers, json.loads(response.data or b"null")


def test_aggregated_discovery_lists_every_group_version_and_resource_in_one_answer(
    api: Any,
) -> None:
    status, headers, body = discovery_answer(api, CLIENT_GO_ACCEPT)

    assert status == 200
    assert headers["Content-Type"] == V2
    assert headers["Vary"] == "Accept"
    assert headers["ETag"].startswith('"')
    assert len(headers["ETag"]) == 130  # SHA-512 in hex, quoted
    assert body["kind"] == "APIGroupDiscoveryList"
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2"
    groups = {g["metadata"]["name"]: g for g in body["items"]}
    # Built-in groups outrank CRD groups; CRD groups are ordered by name.
    assert [g["metadata"]["name"] for g in body["items"]][:2] == [
        "coordination.k8s.io",
        "helm.toolkit.fluxcd.io",
    ]
    notification = groups["notification.toolkit.fluxcd.io"]["versions"]
    assert [(v["version"], v["freshness"]) for v in notification] == [
        ("v1", "Current"),
        ("v1beta3", "Current"),
    ]
    source_v1 = groups[SOURCE]["versions"][0]
    assert source_v1["version"] == "v1"
    repo = next(r for r in source_v1["resources"] if r["resource"] == "gitrepositories")
    assert repo == {
        "resource": "gitrepositories",
        "responseKind": {"group": SOURCE, "version": "v1", "kind": "GitRepository"},
        "scope": "Namespaced",
        "singularResource": "gitrepository",
        "verbs": [
            "delete",
            "deletecollection",
            "get",
            "list",
            "patch",
            "create",
            "update",
            "watch",
        ],
        "shortNames": ["gitrepo"],
        "categories": ["all", "fluxcd", "fluxcd-sources"],
        "subresources": [
            {
                "subresource": "status",
                "responseKind": {"group": SOURCE, "version": "v1", "kind": "GitRepository"},
                "verbs": ["get", "patch", "update"],
            }
        ],
    }
    names = [r["resource"] for r in source_v1["resources"]]
    assert names == sorted(names)
    lease = groups["coordination.k8s.io"]["versions"][0]["resources"][0]
    assert lease["responseKind"] == {"group": "", "version": "", "kind": "Lease"}


def test_aggregated_discovery_lists_the_versions_the_legacy_discovery_lists(
    tmp_path: Path,
) -> None:
    versions = {HELM: ["v2beta2", "v2beta1"], SOURCE: ["v1beta2"]}
    with FakeKubeApiServer("old", versions=versions) as srv, connect(srv, tmp_path) as api:
        legacy = {g.name: g for g in client.ApisApi(api).get_api_versions().groups}
        _, _, body = discovery_answer(api, CLIENT_GO_ACCEPT)

    for item in body["items"]:
        group = legacy[item["metadata"]["name"]]
        assert [v["version"] for v in item["versions"]] == [v.version for v in group.versions]
        assert item["versions"][0]["version"] == group.preferred_version.version
    helm = next(i for i in body["items"] if i["metadata"]["name"] == HELM)
    assert helm["versions"][0]["resources"][0]["responseKind"]["version"] == "v2beta2"


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/json", "application/json"),
        ("*/*", "application/json"),
        (V2BETA1, V2BETA1),
        (f"{V2},{V2BETA1},application/json", V2),
        # Higher quality first, whatever the order in the header.
        (f"application/json;q=0.5,{V2}", V2),
        # A conversion discovery does not allow is skipped; the next clause decides.
        (f"application/json;as=Table;g=meta.k8s.io;v=v1,{V2BETA1}", V2BETA1),
        (
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList",
            "application/json",
        ),
        # Parameters in any order, unknown ones (profile) ignored.
        ("application/json;as=APIGroupDiscoveryList;v=v2;g=apidiscovery.k8s.io;profile=nopeer", V2),
    ],
)
def test_the_accept_header_chooses_aggregated_or_legacy_discovery_as_kube_apiserver_does(
    api: Any, accept: str, content_type: str
) -> None:
    status, headers, body = discovery_answer(api, accept)

    assert status == 200
    assert headers["Content-Type"] == content_type
    if content_type == "application/json":
        assert body["kind"] == "APIGroupList"
        assert "ETag" not in headers
    else:
        assert body["kind"] == "APIGroupDiscoveryList"
        version = "v2beta1" if content_type == V2BETA1 else "v2"
        assert body["apiVersion"] == f"apidiscovery.k8s.io/{version}"


def test_a_server_older_than_1_26_answers_the_legacy_group_list_whatever_the_accept(
    tmp_path: Path,
) -> None:
    with (
        FakeKubeApiServer("old", aggregated_discovery=False) as srv,
        connect(srv, tmp_path) as api,
    ):
        status, headers, body = discovery_answer(api, CLIENT_GO_ACCEPT)

    assert status == 200
    assert headers["Content-Type"] == "application/json"
    assert body["kind"] == "APIGroupList"


def test_kubernetes_before_1_30_serves_aggregated_discovery_only_as_v2beta1(
    tmp_path: Path,
) -> None:
    with (
        FakeKubeApiServer("k129", kube_version="v1.29.4") as srv,
        connect(srv, tmp_path) as api,
    ):
        _, only_v2, _ = discovery_answer(api, CLIENT_GO_ACCEPT)
        _, both, body = discovery_answer(api, f"{V2},{V2BETA1},application/json")

    assert only_v2["Content-Type"] == "application/json"
    assert both["Content-Type"] == V2BETA1
    assert body["apiVersion"] == "apidiscovery.k8s.io/v2beta1"


def test_aggregated_discovery_answers_not_modified_to_its_own_etag(api: Any) -> None:
    _, headers, _ = discovery_answer(api, CLIENT_GO_ACCEPT)
    with pytest.raises(ApiException) as err:  # the client treats any non-2xx as an error
        client.ApisApi(api).get_api_versions(
            _preload_content=False,
            _headers={"Accept": CLIENT_GO_ACCEPT, "If-None-Match": headers["ETag"]},
        )

    assert err.value.status == 304
    assert err.value.headers["ETag"] == headers["ETag"]
    assert not err.value.body


def test_a_group_version_the_aggregator_cannot_reach_is_marked_stale(
    server: FakeKubeApiServer, api: Any
) -> None:
    server.stale_discovery.add(f"{HELM}/v2")

    _, _, body = discovery_answer(api, CLIENT_GO_ACCEPT)

    freshness = {
        f"{g['metadata']['name']}/{v['version']}": v["freshness"]
        for g in body["items"]
        for v in g["versions"]
    }
    assert freshness[f"{HELM}/v2"] == "Stale"
    assert freshness[f"{SOURCE}/v1"] == "Current"


def test_a_group_served_in_two_versions_returns_the_requested_one(tmp_path: Path) -> None:
    with (
        FakeKubeApiServer("mixed", versions={HELM: ["v2", "v2beta2"]}) as srv,
        connect(srv, tmp_path) as api,
    ):
        srv.apply(helm_release("podinfo"))
        custom = client.CustomObjectsApi(api)
        old = custom.get_namespaced_custom_object(HELM, "v2beta2", NS, "helmreleases", "podinfo")
        new = custom.get_namespaced_custom_object(HELM, "v2", NS, "helmreleases", "podinfo")
        assert old["apiVersion"] == f"{HELM}/v2beta2"
        assert new["apiVersion"] == f"{HELM}/v2"
        assert old["metadata"]["uid"] == new["metadata"]["uid"]


# --- reads -------------------------------------------------------------------------------


def test_get_returns_the_object_with_server_set_metadata(custom: client.CustomObjectsApi) -> None:
    repo = get_repo(custom, "podinfo")

    meta = repo["metadata"]
    assert repo["kind"] == "GitRepository"
    assert meta["generation"] == 1
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert repo["status"]["conditions"][0]["type"] == "Ready"


def test_get_of_a_missing_object_is_404_with_the_real_message(
    custom: client.CustomObjectsApi,
) -> None:
    with pytest.raises(ApiException) as err:
        get_repo(custom, "nope")

    assert err.value.status == 404
    body = json.loads(err.value.body)
    assert body["kind"] == "Status"
    assert body["reason"] == "NotFound"
    assert body["message"] == f'gitrepositories.{SOURCE} "nope" not found'
    assert body["details"] == {"name": "nope", "group": SOURCE, "kind": "gitrepositories"}


def test_list_with_label_selector_returns_matching_items_sorted(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    listed = custom.list_cluster_custom_object(
        SOURCE, "v1", "gitrepositories", label_selector="team in (a,c),!missing"
    )

    assert listed["kind"] == "GitRepositoryList"
    assert listed["metadata"]["resourceVersion"] == server.resource_version
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listed["items"]] == [
        ("apps", "apps"),
        (NS, "podinfo"),
    ]
    only_b = custom.list_namespaced_custom_object(
        SOURCE, "v1", NS, "gitrepositories", label_selector="team!=a"
    )
    assert [i["metadata"]["name"] for i in only_b["items"]] == ["infra"]


def test_list_with_field_selector_and_pagination(custom: client.CustomObjectsApi) -> None:
    by_name = custom.list_cluster_custom_object(
        SOURCE, "v1", "gitrepositories", field_selector="metadata.name=infra"
    )
    assert [i["metadata"]["name"] for i in by_name["items"]] == ["infra"]

    first = custom.list_cluster_custom_object(SOURCE, "v1", "gitrepositories", limit=2)
    assert len(first["items"]) == 2
    assert first["metadata"]["remainingItemCount"] == 1
    rest = custom.list_cluster_custom_object(
        SOURCE, "v1", "gitrepositories", limit=2, _continue=first["metadata"]["continue"]
    )
    assert [i["metadata"]["name"] for i in rest["items"]] == ["podinfo"]
    assert "continue" not in rest["metadata"]


def test_events_are_filtered_by_involved_object(server: FakeKubeApiServer, api: Any) -> None:
    for name, target in (("a.1", "podinfo"), ("b.1", "infra")):
        server.apply(
            {
                "apiVersion": "v1",
                "kind": "Event",
                "metadata": {"name": name, "namespace": NS},
                "involvedObject": {"kind": "GitRepository", "name": target, "namespace": NS},
                "reason": "Progressing",
                "message": "fetching",
                "type": "Normal",
            }
        )

    events = client.CoreV1Api(api).list_namespaced_event(
        NS, field_selector="involvedObject.name=podinfo,involvedObject.kind=GitRepository"
    )

    assert [e.metadata.name for e in events.items] == ["a.1"]
    assert events.items[0].involved_object.name == "podinfo"


def test_leases_can_be_created_and_read(api: Any) -> None:
    leases = client.CoordinationV1Api(api)
    body = client.V1Lease(
        metadata=client.V1ObjectMeta(name="fluxbot-leader", namespace=NS),
        spec=client.V1LeaseSpec(holder_identity="pod-a", lease_duration_seconds=15),
    )
    leases.create_namespaced_lease(NS, body)

    got = leases.read_namespaced_lease("fluxbot-leader", NS)
    assert got.spec.holder_identity == "pod-a"
    with pytest.raises(ApiException) as err:
        leases.create_namespaced_lease(NS, body)
    assert err.value.status == 409


# --- writes ------------------------------------------------------------------------------


def test_create_returns_201_and_a_duplicate_is_409_already_exists(
    custom: client.CustomObjectsApi,
) -> None:
    created = custom.create_namespaced_custom_object(
        SOURCE, "v1", NS, "gitrepositories", git_repository("new")
    )
    assert created["metadata"]["generation"] == 1

    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            SOURCE, "v1", NS, "gitrepositories", git_repository("new")
        )
    assert err.value.status == 409
    assert json.loads(err.value.body)["reason"] == "AlreadyExists"


def test_creating_an_invalid_object_is_422_invalid_listing_the_fields(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    bad = git_repository("bad")
    del bad["spec"]["url"]
    bad["spec"]["bogus"] = True

    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(SOURCE, "v1", NS, "gitrepositories", bad)

    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert (body["reason"], body["code"]) == ("Invalid", 422)
    assert body["message"].startswith(f'GitRepository.{SOURCE} "bad" is invalid: ')
    assert "url" in body["message"]
    assert "bogus" in body["message"]
    assert server.get(f"{SOURCE}/v1", "GitRepository", NS, "bad") is None


def test_seeding_an_invalid_object_raises_value_error(server: FakeKubeApiServer) -> None:
    bad = git_repository("bad")
    bad["spec"]["interval"] = 5
    with pytest.raises(ValueError, match="is invalid"):
        server.apply(bad)
    with pytest.raises(ValueError, match="RFC 1123"):
        server.apply(git_repository("Bad_Name"))


def test_merge_patch_of_annotations_bumps_resource_version_but_not_generation(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    before = get_repo(custom, "podinfo")

    after = patch_repo(
        custom,
        "podinfo",
        {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}},
        field_manager="fluxbot",
    )

    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])
    assert after["metadata"]["generation"] == before["metadata"]["generation"] == 1
    assert after["metadata"]["annotations"] == {"reconcile.fluxcd.io/requestedAt": "now"}
    assert after["status"] == before["status"]
    [write] = server.writes()
    assert (write.method, write.content_type, write.field_manager) == ("PATCH", MERGE, "fluxbot")
    assert write.body == {"metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": "now"}}}


def test_merge_patch_of_spec_bumps_generation(custom: client.CustomObjectsApi) -> None:
    after = patch_repo(custom, "podinfo", {"spec": {"suspend": True}})

    assert after["metadata"]["generation"] == 2
    assert after["spec"]["suspend"] is True


def test_a_patch_that_changes_nothing_keeps_the_resource_version(
    custom: client.CustomObjectsApi,
) -> None:
    before = get_repo(custom, "podinfo")
    after = patch_repo(custom, "podinfo", {"spec": {"interval": "1m"}})
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_json_patch_is_applied_and_a_failed_test_op_is_422(
    custom: client.CustomObjectsApi,
) -> None:
    ops = [
        {"op": "test", "path": "/spec/interval", "value": "1m"},
        {"op": "replace", "path": "/spec/interval", "value": "10m"},
    ]
    after = patch_repo(custom, "podinfo", ops, _content_type="application/json-patch+json")
    assert after["spec"]["interval"] == "10m"

    with pytest.raises(ApiException) as err:
        patch_repo(custom, "podinfo", ops, _content_type="application/json-patch+json")
    assert err.value.status == 422


def test_server_side_apply_creates_then_updates_and_needs_a_field_manager(
    custom: client.CustomObjectsApi,
) -> None:
    apply = "application/apply-patch+yaml"
    body = git_repository("applied")

    # kube-apiserver answers an apply that creates with 201, which this client maps to None.
    assert patch_repo(custom, "applied", body, _content_type=apply, field_manager="fb") is None
    created = get_repo(custom, "applied")
    body["spec"]["interval"] = "5m"
    updated = patch_repo(custom, "applied", body, _content_type=apply, field_manager="fb")

    assert created["metadata"]["managedFields"][0]["operation"] == "Apply"
    assert (updated["spec"]["interval"], updated["metadata"]["generation"]) == ("5m", 2)
    with pytest.raises(ApiException) as err:
        patch_repo(custom, "applied", body, _content_type=apply)
    assert err.value.status == 422


def test_strategic_merge_patch_of_a_custom_resource_is_415(
    custom: client.CustomObjectsApi,
) -> None:
    with pytest.raises(ApiException) as err:
        patch_repo(
            custom,
            "podinfo",
            {"spec": {"suspend": True}},
            _content_type="application/strategic-merge-patch+json",
        )
    assert err.value.status == 415
    assert json.loads(err.value.body)["reason"] == "UnsupportedMediaType"


def test_status_subresource_changes_only_status(custom: client.CustomObjectsApi) -> None:
    new_status = {**ready(), "artifact": None}
    del new_status["artifact"]
    new_status["conditions"][0]["reason"] = "Refreshed"

    after = custom.patch_namespaced_custom_object_status(
        SOURCE,
        "v1",
        NS,
        "gitrepositories",
        "podinfo",
        {"spec": {"suspend": True}, "status": new_status},
        _content_type=MERGE,
    )

    assert after["status"]["conditions"][0]["reason"] == "Refreshed"
    assert "suspend" not in after["spec"]
    assert after["metadata"]["generation"] == 1
    got = custom.get_namespaced_custom_object_status(SOURCE, "v1", NS, "gitrepositories", "podinfo")
    assert got["status"]["conditions"][0]["reason"] == "Refreshed"


def test_replacing_status_keeps_spec_and_labels(custom: client.CustomObjectsApi) -> None:
    current = get_repo(custom, "podinfo")
    current["status"] = ready(1) | {"observedGeneration": 1}
    current["status"]["conditions"][0]["status"] = "False"
    current["metadata"]["labels"] = {"changed": "yes"}

    after = custom.replace_namespaced_custom_object_status(
        SOURCE, "v1", NS, "gitrepositories", "podinfo", current
    )

    assert after["status"]["conditions"][0]["status"] == "False"
    assert after["metadata"]["labels"] == {"team": "a"}


def test_writes_to_the_main_resource_ignore_status(custom: client.CustomObjectsApi) -> None:
    current = get_repo(custom, "podinfo")
    current["status"] = {"observedGeneration": 99}
    current["spec"]["interval"] = "2m"

    after = custom.replace_namespaced_custom_object(
        SOURCE, "v1", NS, "gitrepositories", "podinfo", current
    )

    assert after["spec"]["interval"] == "2m"
    assert after["status"]["observedGeneration"] == 1
    assert after["metadata"]["generation"] == 2


def test_replace_with_a_stale_resource_version_is_409_conflict(
    custom: client.CustomObjectsApi,
) -> None:
    stale = get_repo(custom, "podinfo")
    patch_repo(custom, "podinfo", {"metadata": {"labels": {"touched": "yes"}}})
    stale["spec"]["interval"] = "2m"

    with pytest.raises(ApiException) as err:
        custom.replace_namespaced_custom_object(
            SOURCE, "v1", NS, "gitrepositories", "podinfo", stale
        )

    assert err.value.status == 409
    body = json.loads(err.value.body)
    assert body["reason"] == "Conflict"
    assert body["message"] == (
        f'Operation cannot be fulfilled on gitrepositories.{SOURCE} "podinfo": the object has '
        "been modified; please apply your changes to the latest version and try again"
    )


def test_delete_waits_for_finalizers(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    patch_repo(custom, "infra", {"metadata": {"finalizers": ["finalizers.fluxcd.io"]}})

    custom.delete_namespaced_custom_object(SOURCE, "v1", NS, "gitrepositories", "infra")
    terminating = get_repo(custom, "infra")
    assert terminating["metadata"]["deletionTimestamp"]

    patch_repo(custom, "infra", {"metadata": {"finalizers": None}})
    with pytest.raises(ApiException) as err:
        get_repo(custom, "infra")
    assert err.value.status == 404
    assert server.get(f"{SOURCE}/v1", "GitRepository", NS, "infra") is None


def test_reads_are_not_writes_in_the_request_log(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    get_repo(custom, "podinfo")
    custom.list_cluster_custom_object(SOURCE, "v1", "gitrepositories")

    assert server.writes() == []
    [record] = server.requests("GET", path_contains="/podinfo")
    assert record.status == 200
    assert record.path == f"/apis/{SOURCE}/v1/namespaces/{NS}/gitrepositories/podinfo"


# --- auth and faults ---------------------------------------------------------------------


def test_a_wrong_token_is_401_unauthorized(server: FakeKubeApiServer, tmp_path: Path) -> None:
    with connect(server, tmp_path, token="wrong") as api, pytest.raises(ApiException) as err:
        client.ApisApi(api).get_api_versions()
    assert err.value.status == 401
    assert json.loads(err.value.body)["reason"] == "Unauthorized"


def test_denied_verbs_are_403_with_rbac_wording(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    server.deny(verb="list", resource="gitrepositories")
    server.deny(verb="patch", resource="gitrepositories", namespace="apps")
    user = 'User "system:serviceaccount:flux-system:fluxbot"'

    with pytest.raises(ApiException) as err:
        custom.list_cluster_custom_object(SOURCE, "v1", "gitrepositories")
    assert err.value.status == 403
    assert json.loads(err.value.body)["message"] == (
        f"gitrepositories.{SOURCE} is forbidden: {user} cannot list resource "
        f'"gitrepositories" in API group "{SOURCE}" at the cluster scope'
    )
    with pytest.raises(ApiException) as err:
        custom.patch_namespaced_custom_object(
            SOURCE, "v1", "apps", "gitrepositories", "apps", {"spec": {"suspend": True}}
        )
    assert json.loads(err.value.body)["message"] == (
        f'gitrepositories.{SOURCE} "apps" is forbidden: {user} cannot patch resource '
        f'"gitrepositories" in API group "{SOURCE}" in the namespace "apps"'
    )
    assert get_repo(custom, "podinfo")["metadata"]["name"] == "podinfo"


def test_injected_429_carries_retry_after_to_the_client(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    # A POST, because urllib3 itself would sleep out Retry-After and retry an idempotent GET.
    fault = server.inject(method="POST", status=429, times=1, retry_after=3)

    with pytest.raises(ApiException) as err:
        custom.create_namespaced_custom_object(
            SOURCE, "v1", NS, "gitrepositories", git_repository("new")
        )

    assert err.value.status == 429
    assert err.value.headers["Retry-After"] == "3"
    assert json.loads(err.value.body)["details"]["retryAfterSeconds"] == 3
    assert fault.hits == 1
    custom.create_namespaced_custom_object(
        SOURCE, "v1", NS, "gitrepositories", git_repository("new")
    )


@pytest.mark.parametrize(
    ("status", "reason"),
    [(500, "InternalError"), (503, "ServiceUnavailable"), (410, "Expired"), (403, "Forbidden")],
)
def test_injected_statuses_come_back_as_status_bodies(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer, status: int, reason: str
) -> None:
    server.inject(path_regex="gitrepositories", status=status)
    with pytest.raises(ApiException) as err:
        custom.list_cluster_custom_object(SOURCE, "v1", "gitrepositories")
    assert err.value.status == status
    assert json.loads(err.value.body)["reason"] == reason

    server.clear_faults()
    assert custom.list_cluster_custom_object(SOURCE, "v1", "gitrepositories")["items"]


def test_latency_beyond_the_request_timeout_is_a_client_timeout(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    server.inject(method="PATCH", latency=2.0)
    started = time.monotonic()

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        patch_repo(custom, "podinfo", {"spec": {"suspend": True}}, _request_timeout=0.2)

    assert time.monotonic() - started < 1.5


def test_a_hanging_request_holds_until_the_client_gives_up(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    server.inject(method="POST", hang=True, times=1)

    with pytest.raises(urllib3.exceptions.ReadTimeoutError):
        custom.create_namespaced_custom_object(
            SOURCE, "v1", NS, "gitrepositories", git_repository("late"), _request_timeout=0.2
        )

    assert server.get(f"{SOURCE}/v1", "GitRepository", NS, "late") is None
    assert get_repo(custom, "podinfo")["metadata"]["name"] == "podinfo"


def test_stopped_server_refuses_and_restart_serves_the_same_state(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    port = server.port
    patch_repo(custom, "podinfo", {"spec": {"suspend": True}})
    server.stop()

    with pytest.raises(urllib3.exceptions.MaxRetryError):
        get_repo(custom, "podinfo")

    server.start()
    assert server.port == port
    assert get_repo(custom, "podinfo")["spec"]["suspend"] is True


def test_an_unreachable_context_is_a_connection_error(tmp_path: Path) -> None:
    path = write_unreachable_kubeconfig(tmp_path / "kubeconfig")
    with config.new_client_from_config(config_file=str(path), context="unreachable") as api:
        api.configuration.retries = 0
        with pytest.raises(urllib3.exceptions.MaxRetryError):
            client.VersionApi(api).get_code()


# --- watch -------------------------------------------------------------------------------


def test_watch_starts_with_added_for_existing_objects(custom: client.CustomObjectsApi) -> None:
    w, stream = watch_repos(custom)
    events = [next(stream) for _ in range(2)]
    w.stop()

    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [
        ("ADDED", "infra"),
        ("ADDED", "podinfo"),
    ]


def test_watch_sees_modified_after_a_patch_and_seeded_changes(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    w, stream = watch_repos(custom)
    assert [next(stream)["type"] for _ in range(2)] == ["ADDED", "ADDED"]

    patch_repo(custom, "podinfo", {"spec": {"suspend": True}})
    modified = next(stream)
    server.set_status(f"{SOURCE}/v1", "GitRepository", NS, "podinfo", ready(2))
    status_event = next(stream)
    server.delete(f"{SOURCE}/v1", "GitRepository", NS, "infra")
    deleted = next(stream)
    w.stop()

    assert (modified["type"], modified["object"]["spec"]["suspend"]) == ("MODIFIED", True)
    assert status_event["object"]["status"]["observedGeneration"] == 2
    assert (deleted["type"], deleted["object"]["metadata"]["name"]) == ("DELETED", "infra")


def test_watch_resumes_from_a_resource_version_without_missing_events(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    listed = custom.list_namespaced_custom_object(SOURCE, "v1", NS, "gitrepositories")
    rv = listed["metadata"]["resourceVersion"]
    for interval in ("2m", "3m", "4m"):
        patch_repo(custom, "podinfo", {"spec": {"interval": interval}})
    server.apply(git_repository("late"))

    w, stream = watch_repos(custom, resource_version=rv)
    events = [next(stream) for _ in range(4)]
    w.stop()

    assert [(e["type"], e["object"]["spec"]["interval"]) for e in events] == [
        ("MODIFIED", "2m"),
        ("MODIFIED", "3m"),
        ("MODIFIED", "4m"),
        ("ADDED", "1m"),
    ]
    rvs = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert rvs == sorted(rvs)
    assert rvs[0] > int(rv)


def test_watch_from_a_too_old_resource_version_raises_410(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    old = server.resource_version
    patch_repo(custom, "podinfo", {"spec": {"interval": "2m"}})
    server.compact()

    _w, stream = watch_repos(custom, resource_version=old)
    with pytest.raises(ApiException) as err:
        next(stream)

    assert err.value.status == 410
    assert f"too old resource version: {old} ({server.resource_version})" in err.value.reason


def test_history_window_expires_old_resource_versions(tmp_path: Path) -> None:
    with FakeKubeApiServer("small", history_size=3) as srv, connect(srv, tmp_path) as api:
        first = srv.apply(git_repository("a"))["metadata"]["resourceVersion"]
        for name in ("b", "c", "d", "e"):
            srv.apply(git_repository(name))
        custom = client.CustomObjectsApi(api)

        _w, stream = watch_repos(custom, resource_version=first)
        with pytest.raises(ApiException) as err:
            next(stream)
        assert err.value.status == 410

        w, stream = watch_repos(custom, resource_version=str(int(srv.resource_version) - 3))
        assert [next(stream)["object"]["metadata"]["name"] for _ in range(3)] == ["c", "d", "e"]
        w.stop()


def test_watch_with_label_selector_sees_objects_enter_and_leave(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    w, stream = watch_repos(custom, label_selector="team=a")
    assert next(stream)["object"]["metadata"]["name"] == "podinfo"

    patch_repo(custom, "infra", {"metadata": {"labels": {"team": "a"}}})
    entered = next(stream)
    patch_repo(custom, "podinfo", {"metadata": {"labels": {"team": "z"}}})
    left = next(stream)
    w.stop()

    assert (entered["type"], entered["object"]["metadata"]["name"]) == ("ADDED", "infra")
    assert (left["type"], left["object"]["metadata"]["name"]) == ("DELETED", "podinfo")


def test_a_dropped_watch_stream_ends_the_iteration(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    server.drop_watches_after(2)
    _w, stream = watch_repos(custom)

    events = list(stream)

    assert [e["type"] for e in events] == ["ADDED", "ADDED"]
    wait_until(lambda: server.open_watches == 0)


def test_an_aborted_watch_stream_is_a_protocol_error(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    _w, stream = watch_repos(custom)
    next(stream)

    server.drop_watches(abort=True)

    with pytest.raises(urllib3.exceptions.ProtocolError):
        list(stream)


def test_faults_can_target_watches_only(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    server.inject(status=500, watch=True)

    _w, stream = watch_repos(custom)
    with pytest.raises(ApiException) as err:
        next(stream)

    assert err.value.status == 500
    assert custom.list_namespaced_custom_object(SOURCE, "v1", NS, "gitrepositories")["items"]


def test_drop_watches_cuts_an_idle_stream(
    custom: client.CustomObjectsApi, server: FakeKubeApiServer
) -> None:
    _w, stream = watch_repos(custom, resource_version=server.resource_version)
    result: list[Any] = []
    reader = threading.Thread(target=lambda: result.extend(stream))
    reader.start()
    server.wait_for_watches(1)

    assert server.drop_watches() == 1
    reader.join(timeout=5)

    assert not reader.is_alive()
    assert result == []


def test_watch_ends_cleanly_at_timeout_seconds_with_bookmarks(tmp_path: Path) -> None:
    with (
        FakeKubeApiServer("bm", bookmark_interval=0.1) as srv,
        connect(srv, tmp_path) as api,
    ):
        srv.apply(git_repository("a"))
        custom = client.CustomObjectsApi(api)
        started = time.monotonic()
        events = list(
            watch.Watch().stream(
                custom.list_namespaced_custom_object,
                SOURCE,
                "v1",
                NS,
                "gitrepositories",
                resource_version=srv.resource_version,
                allow_watch_bookmarks=True,
                timeout_seconds=1,
            )
        )

    assert 0.9 < time.monotonic() - started < 3
    assert events
    assert {e["type"] for e in events} == {"BOOKMARK"}
    assert events[-1]["object"]["metadata"]["resourceVersion"] == srv.resource_version


# --- fleets ------------------------------------------------------------------------------


def test_a_fleet_serves_each_context_its_own_cluster(tmp_path: Path) -> None:
    with FakeFleet(["prod", "staging", "dev"]) as fleet:
        for srv in fleet:
            srv.apply(git_repository(f"repo-{srv.name}"))
        path = fleet.write_kubeconfig(tmp_path / "kubeconfig", current_context="staging")

        contexts, current = config.list_kube_config_contexts(str(path))
        assert current["name"] == "staging"
        for context in (c["name"] for c in contexts):
            with config.new_client_from_config(config_file=str(path), context=context) as api:
                items = client.CustomObjectsApi(api).list_cluster_custom_object(
                    SOURCE, "v1", "gitrepositories"
                )["items"]
                assert [i["metadata"]["name"] for i in items] == [f"repo-{context}"]
        assert len({srv.port for srv in fleet}) == 3


def test_load_yaml_seeds_multi_document_and_list_yaml(server: FakeKubeApiServer) -> None:
    text = """
apiVersion: v1
kind: List
items:
  - apiVersion: kustomize.toolkit.fluxcd.io/v1
    kind: Kustomization
    metadata: {name: apps, namespace: flux-system}
    spec: {interval: 10m, path: ./apps, prune: true, sourceRef: {kind: GitRepository, name: infra}}
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: HelmRepository
metadata: {name: charts, namespace: flux-system}
spec: {url: https://charts.example.com, interval: 1h}
"""
    loaded = server.load_yaml(text)

    assert [o["kind"] for o in loaded] == ["Kustomization", "HelmRepository"]
    assert [o["metadata"]["name"] for o in server.objects(kind="Kustomization")] == ["apps"]
