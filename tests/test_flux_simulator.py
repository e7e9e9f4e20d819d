"""The simulated Flux (bot/simulation/flux.py) does what the controllers' source does.

One simulator runs in the live demo and behind the tests' fake API servers, so each rule here
names the upstream file it follows (Flux v2.9: source-controller 1.9, kustomize-controller 1.9,
helm-controller 1.6, fluxcd/pkg). Every status it writes is validated against the Flux CRDs.
"""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from bot.config import ClusterConfig, KubernetesSettings
from bot.demo import demo_directory
from bot.demo.live import LiveDemo
from bot.domain.action_rules import resume_patch, suspend_patch
from bot.domain.fleet import ClusterTarget
from bot.domain.status import ObjectRef, parse_flux_object
from bot.kube.clients import build_api_client
from bot.simulation.flux import (
    MISSING,
    TESTS_FAIL,
    UPGRADE_FAILS,
    FluxSimulator,
    previous_snapshot,
)
from tests.fakes import crds
from tests.fakes.kube_api import FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig
from tests.flux_objects import condition, flux_object, snapshot

TOKEN = "2026-11-30T10:00:00.000000000Z"
NOW = dt.datetime(2026, 11, 30, 10, 0, 1, tzinfo=dt.UTC)
OWNED = {
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
}


class MemoryStore:
    """Objects by (kind, namespace, name), as an API server keeps them (CRD-validated)."""

    def __init__(self, *objects: dict[str, Any]) -> None:
        self.items = {_key(o): copy.deepcopy(o) for o in objects}

    def objects(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(o) for o in self.items.values()]

    def find(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        found = self.items.get((kind, namespace, name))
        return copy.deepcopy(found) if found else None

    def write_status(self, obj: dict[str, Any], status: dict[str, Any]) -> None:
        stored = self.items[_key(obj)]
        stored["status"] = copy.deepcopy(status)
        assert crds.validate(stored) == [], crds.validate(stored)

    def write_spec(self, obj: dict[str, Any], spec: dict[str, Any]) -> None:
        stored = self.items[_key(obj)]
        stored["spec"] = copy.deepcopy(spec)
        stored["metadata"]["generation"] = stored["metadata"].get("generation", 1) + 1

    def get(self, kind: str, name: str, namespace: str = "flux-system") -> dict[str, Any]:
        return self.items[(kind, namespace, name)]

    def request(self, kind: str, name: str, namespace: str = "flux-system", **extra: str) -> None:
        annotations = self.get(kind, name, namespace)["metadata"].setdefault("annotations", {})
        annotations["reconcile.fluxcd.io/requestedAt"] = TOKEN
        annotations.update(extra)

    def change_spec(
        self, kind: str, name: str, namespace: str = "flux-system", **spec: Any
    ) -> None:
        obj = self.get(kind, name, namespace)
        obj["spec"].update(spec)
        obj["metadata"]["generation"] += 1


def _key(obj: dict[str, Any]) -> tuple[str, str, str]:
    return (obj["kind"], obj["metadata"]["namespace"], obj["metadata"]["name"])


def _ready(obj: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in obj["status"]["conditions"] if c["type"] == "Ready")


def _sim(store: MemoryStore) -> FluxSimulator:
    return FluxSimulator(store, clock=lambda: NOW)


GIT = flux_object(
    "GitRepository",
    "flux-system",
    status={
        "artifact": {
            "digest": "sha256:" + "a" * 64,
            "lastUpdateTime": "2026-11-30T09:00:00Z",
            "path": "gitrepository/flux-system/flux-system/abc.tar.gz",
            "revision": "main@sha1:" + "b" * 40,
            "url": "http://source-controller/gitrepository/flux-system/flux-system/abc.tar.gz",
        }
    },
    conditions=[condition()],
)


def _release(history: list[dict[str, Any]], **spec: Any) -> dict[str, Any]:
    chart = {"spec": {"chart": "podinfo", "version": "6.7.1",
                      "sourceRef": {"kind": "HelmRepository", "name": "podinfo",
                                    "namespace": "flux-system"}}}  # fmt: skip
    return flux_object(
        "HelmRelease",
        "podinfo",
        "flux-apps",
        spec={"chart": chart, **spec},
        status={"history": history, "storageNamespace": "flux-apps"},
        conditions=[condition("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded")],
        labels=OWNED,
    )


def test_kustomization_failure_at_a_new_generation_keeps_observed_generation_behind() -> None:
    """kustomize-controller internal/controller/kustomization_controller.go finalizeStatus:
    observedGeneration only when Ready is True; Reconciling becomes ProgressingWithRetry; the
    Ready condition carries the generation it judged (fluxcd/pkg runtime/conditions/setter.go)."""
    store = MemoryStore(GIT, flux_object("Kustomization", "apps", conditions=[condition()]))
    sim = _sim(store)
    sim.failures[("Kustomization", "flux-system", "apps")] = "kustomize build failed"
    store.change_spec("Kustomization", "apps", path="./apps/v2")
    store.request("Kustomization", "apps")
    sim.step()
    ks = store.get("Kustomization", "apps")
    assert ks["metadata"]["generation"] == 2
    assert ks["status"]["observedGeneration"] == 1
    assert _ready(ks)["status"] == "False"
    assert _ready(ks)["observedGeneration"] == 2
    reconciling = next(c for c in ks["status"]["conditions"] if c["type"] == "Reconciling")
    assert reconciling["reason"] == "ProgressingWithRetry"

    del sim.failures[("Kustomization", "flux-system", "apps")]
    store.request("Kustomization", "apps")
    store.get("Kustomization", "apps")["metadata"]["annotations"][
        "reconcile.fluxcd.io/requestedAt"
    ] = TOKEN + "2"
    sim.step()
    ks = store.get("Kustomization", "apps")
    assert ks["status"]["observedGeneration"] == 2
    assert ks["status"]["lastAppliedRevision"] == "main@sha1:" + "b" * 40
    assert _ready(ks)["message"] == "Applied revision: main@sha1:" + "b" * 40


@pytest.mark.parametrize("kind", ["Kustomization", "HelmRelease", "GitRepository"])
def test_a_suspended_object_handles_the_token_and_does_nothing(kind: str) -> None:
    """Every controller records lastHandledReconcileAt in its deferred patch, before the
    suspend check returns (kustomization_controller.go finalizeStatus, helmrelease_controller.go
    Reconcile, source-controller internal/reconcile/summarize RecordReconcileReq)."""
    failing = [condition("Ready", "False", "Failed", "it was broken before")]
    namespace = "flux-apps" if kind == "HelmRelease" else "flux-system"
    obj = _release([snapshot(2, "6.7.1")]) if kind == "HelmRelease" else flux_object(kind, "x")
    obj["metadata"]["name"] = "x"
    obj["spec"]["suspend"] = True
    obj["status"]["conditions"] = failing
    store = MemoryStore(obj)
    sim = _sim(store)
    store.request(kind, "x", namespace)
    sim.step()
    handled = store.get(kind, "x", namespace)
    assert handled["status"]["lastHandledReconcileAt"] == TOKEN
    assert handled["status"]["conditions"] == failing


def test_helm_controller_advances_observed_generation_only_without_an_error() -> None:
    """helmrelease_controller.go: WithStatusObservedGeneration only when Reconcile returned no
    error; a failed upgrade leaves it behind while Ready says the new generation failed."""
    store = MemoryStore(_release([snapshot(2, "6.7.1")]))
    sim = _sim(store)
    sim.charts["6.8.0"] = UPGRADE_FAILS
    store.change_spec("HelmRelease", "podinfo", "flux-apps",
                      chart={"spec": {"chart": "podinfo", "version": "6.8.0",
                                      "sourceRef": {"kind": "HelmRepository",
                                                    "name": "podinfo"}}})  # fmt: skip
    sim.step()
    hr = store.get("HelmRelease", "podinfo", "flux-apps")
    assert hr["status"]["observedGeneration"] == 1
    assert _ready(hr)["observedGeneration"] == 2
    assert _ready(hr)["reason"] == "UpgradeFailed"
    assert [(s["version"], s["status"]) for s in hr["status"]["history"]] == [
        (3, "failed"), (2, "deployed"),
    ]  # fmt: skip


def test_oci_helm_repositories_are_static() -> None:
    """source-controller internal/controller/helmrepository_controller.go: an OCI
    HelmRepository is migrated to static and never reconciled, so it never records a token."""
    repo = flux_object(
        "HelmRepository", "ghcr", spec={"type": "oci", "url": "oci://ghcr.io/acme/charts"}
    )
    store = MemoryStore(repo)
    sim = _sim(store)
    store.request("HelmRepository", "ghcr")
    assert sim.step() == []
    assert "lastHandledReconcileAt" not in store.get("HelmRepository", "ghcr")["status"]


def test_failed_tests_are_recorded_and_previous_skips_them() -> None:
    """api/v2/snapshot_types.go Previous(ignoreTests): deployed/superseded snapshots after
    the latest, skipping those with a test hook in phase Failed; internal/reconcile/test.go
    records test hooks on the deployed snapshot and Ready False TestFailed."""
    store = MemoryStore(_release([snapshot(2, "6.7.1")]))
    sim = _sim(store)
    sim.charts["6.8.0"] = TESTS_FAIL
    store.change_spec("HelmRelease", "podinfo", "flux-apps",
                      chart={"spec": {"chart": "podinfo", "version": "6.8.0",
                                      "sourceRef": {"kind": "HelmRepository",
                                                    "name": "podinfo"}}})  # fmt: skip
    sim.step()
    hr = store.get("HelmRelease", "podinfo", "flux-apps")
    history = hr["status"]["history"]
    assert [(s["version"], s["status"]) for s in history] == [(3, "deployed"), (2, "superseded")]
    assert history[0]["testHooks"]["podinfo-test"]["phase"] == "Failed"
    assert _ready(hr)["reason"] == "TestFailed"
    with_failed_tests = [snapshot(4, "6.9.0", "failed"), history[0], history[1]]
    assert previous_snapshot(with_failed_tests)["version"] == 2  # type: ignore[index]
    assert previous_snapshot(with_failed_tests, ignore_tests=True)["version"] == 3  # type: ignore[index]


def test_automatic_rollback_prepends_a_snapshot_of_the_rollback_release() -> None:
    """internal/reconcile/rollback_remediation.go: with upgrade.remediation.retries the
    controller rolls back to Previous; observeRollback prepends the new release (Helm marks the
    failed one superseded) and Ready becomes False, reason RollbackSucceeded."""
    release = _release(
        [snapshot(2, "6.7.1")], upgrade={"remediation": {"retries": 1, "strategy": "rollback"}}
    )
    store = MemoryStore(release)
    sim = _sim(store)
    sim.charts["6.8.0"] = UPGRADE_FAILS
    store.change_spec("HelmRelease", "podinfo", "flux-apps",
                      chart={"spec": {"chart": "podinfo", "version": "6.8.0",
                                      "sourceRef": {"kind": "HelmRepository",
                                                    "name": "podinfo"}}})  # fmt: skip
    sim.step()
    hr = store.get("HelmRelease", "podinfo", "flux-apps")
    history = hr["status"]["history"]
    assert [(s["version"], s["chartVersion"], s["status"]) for s in history] == [
        (4, "6.7.1", "deployed"), (3, "6.8.0", "superseded"), (2, "6.7.1", "deployed"),
    ]  # fmt: skip
    assert history[0]["action"] == "rollback"
    assert _ready(hr)["reason"] == "RollbackSucceeded"
    remediated = next(c for c in hr["status"]["conditions"] if c["type"] == "Remediated")
    assert remediated["status"] == "True"


def test_a_chart_version_that_cannot_be_fetched_changes_no_history() -> None:
    """helmrelease_controller.go: the chart is loaded before any Helm action; when it cannot
    be, Ready is False with reason ArtifactFailed and no release is made."""
    store = MemoryStore(_release([snapshot(2, "6.7.1")]))
    sim = _sim(store)
    sim.charts["9.9.9"] = MISSING
    store.change_spec("HelmRelease", "podinfo", "flux-apps",
                      chart={"spec": {"chart": "podinfo", "version": "9.9.9",
                                      "sourceRef": {"kind": "HelmRepository",
                                                    "name": "podinfo"}}})  # fmt: skip
    sim.step()
    hr = store.get("HelmRelease", "podinfo", "flux-apps")
    assert _ready(hr)["reason"] == "ArtifactFailed"
    assert [s["version"] for s in hr["status"]["history"]] == [2]


def test_a_kustomization_applies_git_except_to_objects_that_opt_out() -> None:
    """fluxcd/pkg ssa: objects annotated kustomize.toolkit.fluxcd.io/reconcile: disabled are
    skipped when a Kustomization applies; others get what Git declares."""
    store = MemoryStore(
        GIT,
        flux_object("Kustomization", "apps", conditions=[condition()]),
        _release([snapshot(2, "6.7.1")], suspend=True),
    )
    sim = _sim(store)
    key = ("HelmRelease", "flux-apps", "podinfo")
    sim.git.specs[key] = {"suspend": False}
    store.get(*key[:1], "podinfo", "flux-apps")["metadata"]["annotations"] = {
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled"
    }
    store.request("Kustomization", "apps")
    sim.step()
    assert store.get("HelmRelease", "podinfo", "flux-apps")["spec"]["suspend"] is True
    del store.get("HelmRelease", "podinfo", "flux-apps")["metadata"]["annotations"][
        "kustomize.toolkit.fluxcd.io/reconcile"
    ]
    store.get("Kustomization", "apps")["metadata"]["annotations"][
        "reconcile.fluxcd.io/requestedAt"
    ] = TOKEN + "2"
    sim.step()
    assert store.get("HelmRelease", "podinfo", "flux-apps")["spec"]["suspend"] is False


def test_the_demo_and_the_fake_api_server_apply_a_merge_patch_alike(tmp_path: Path) -> None:
    """The live demo (bot/demo/live.py) and the tests' fake API server write through the same
    rules (bot/simulation/apiserver.py): RFC 7386 merge patch, `null` deleting a key, and a
    generation bump when the spec changes (apiextensions-apiserver customresource/strategy.go).
    The same suspend and resume patches leave the same object in both."""
    path = demo_directory() / "production" / "prod-eu-1.yaml"
    demo = LiveDemo()
    target = ClusterTarget("production", "prod-eu-1")
    release = next(o for o in demo.cluster_objects(target) if o.kind == "HelmRelease")
    ref = ObjectRef(release.kind, release.namespace, release.name)
    now = dt.datetime(2026, 11, 30, 10, 0, tzinfo=dt.UTC)
    patches = [suspend_patch("alice", "incident 42", now, None), resume_patch(TOKEN)]
    with FakeKubeApiServer("prod-eu-1") as server:
        server.load_yaml(path)
        stored = next(
            o for o in server.objects("HelmRelease", ref.namespace)
            if o["metadata"]["name"] == ref.name
        )  # fmt: skip
        group, version = stored["apiVersion"].split("/")
        kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"c": (server.url, server.token)})
        api_client = build_api_client(
            ClusterConfig(kubeconfig=kubeconfig, context="c"), KubernetesSettings()
        )
        try:
            custom = client.CustomObjectsApi(api_client)
            for body in patches:
                demo.patch(target, ref, copy.deepcopy(body))
                served = custom.patch_namespaced_custom_object(
                    group, version, ref.namespace, "helmreleases", ref.name, copy.deepcopy(body)
                )
                in_demo = demo.object(target, ref)
                assert in_demo is not None
                assert parse_flux_object(served) == in_demo
        finally:
            api_client.close()
            demo.close()
    assert in_demo.generation == release.generation + 2
    assert not in_demo.suspended
