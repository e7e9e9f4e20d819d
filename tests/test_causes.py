"""Root causes through sources, dependencies, ownership and ExternalArtifacts.

Reasons and messages are kustomize-controller's (internal/controller/kustomization_controller.go:
`HealthCheckFailed` "health check failed after ...", `DependencyNotReady` "dependency '...' is
not ready") and helm-controller's; ownership is what kustomize-controller records: the
`kustomize.toolkit.fluxcd.io/name|namespace` labels on what it applied and `status.inventory`.
"""

from __future__ import annotations

from typing import Any

from bot.domain.causes import group_failures
from bot.domain.status import FluxObject, Health, parse_flux_object
from tests.flux_objects import condition, flux_object

OWNED_BY_APPS = {
    "kustomize.toolkit.fluxcd.io/name": "apps",
    "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
}


def _parse(*objects: dict[str, Any]) -> list[FluxObject]:
    return [parse_flux_object(o) for o in objects]


def _groups(objects: list[FluxObject]) -> list[tuple[str, list[str]]]:
    return [
        (f"{g.root.kind}/{g.root.name}", [f"{d.kind}/{d.name}" for d in g.dependents])
        for g in group_failures(objects)
    ]


def _failing_release(name: str = "podinfo", **kw: Any) -> dict[str, Any]:
    return flux_object(
        "HelmRelease",
        name,
        "flux-apps",
        conditions=[
            condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed: timed out"),
            condition("Stalled", "True", "RetriesExceeded", "Failed to upgrade after 3 attempts"),
        ],
        **kw,
    )


def _health_check_failed_ks(name: str = "apps", **status: Any) -> dict[str, Any]:
    return flux_object(
        "Kustomization",
        name,
        status=status,
        conditions=[
            condition(
                "Ready",
                "False",
                "HealthCheckFailed",
                "health check failed after 5m0s: timeout waiting for: "
                "[HelmRelease/flux-apps/podinfo status: 'Failed']",
            )
        ],
    )


def test_a_kustomization_failing_its_health_check_is_grouped_under_the_release_it_applied() -> None:
    objects = _parse(_health_check_failed_ks(), _failing_release(labels=OWNED_BY_APPS))
    assert _groups(objects) == [("HelmRelease/podinfo", ["Kustomization/apps"])]


def test_ownership_is_read_from_the_inventory_too() -> None:
    inventory = {
        "entries": [
            {"id": "flux-apps_podinfo_helm.toolkit.fluxcd.io_HelmRelease", "v": "v2"},
            {"id": "flux-apps_podinfo_apps_Deployment", "v": "v1"},
        ]
    }
    objects = _parse(_health_check_failed_ks(inventory=inventory), _failing_release())
    assert _groups(objects) == [("HelmRelease/podinfo", ["Kustomization/apps"])]


def test_a_kustomization_failing_for_its_own_reasons_is_not_blamed_on_what_it_applied() -> None:
    build_failed = flux_object(
        "Kustomization",
        "apps",
        conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
    )
    objects = _parse(build_failed, _failing_release(labels=OWNED_BY_APPS))
    assert sorted(_groups(objects)) == [
        ("HelmRelease/podinfo", []),
        ("Kustomization/apps", []),
    ]


def test_a_dependant_waiting_on_a_progressing_dependency_is_attached_to_it() -> None:
    infra = flux_object(
        "Kustomization",
        "infra",
        conditions=[
            condition("Reconciling", "True", "Progressing", "Running health checks"),
            condition("Ready", "Unknown", "Progressing", "Running health checks"),
        ],
    )
    apps = flux_object(
        "Kustomization",
        "apps",
        spec={"dependsOn": [{"name": "infra"}]},
        conditions=[
            condition(
                "Ready",
                "False",
                "DependencyNotReady",
                "dependency 'flux-system/infra' is not ready",
            )
        ],
    )
    tenants = flux_object(
        "Kustomization",
        "tenants",
        spec={"dependsOn": [{"name": "apps"}]},
        conditions=[
            condition(
                "Ready", "False", "DependencyNotReady", "dependency 'flux-system/apps' is not ready"
            )
        ],
    )
    objects = _parse(infra, apps, tenants)
    (group,) = group_failures(objects)
    assert group.root.name == "infra"
    assert group.root.health is Health.PROGRESSING
    assert [d.name for d in group.dependents] == ["apps", "tenants"]


def test_a_failure_of_its_own_is_not_attached_to_a_progressing_dependency() -> None:
    infra = flux_object(
        "Kustomization",
        "infra",
        conditions=[condition("Ready", "Unknown", "Progressing", "Reconciliation in progress")],
    )
    apps = flux_object(
        "Kustomization",
        "apps",
        spec={"dependsOn": [{"name": "infra"}]},
        conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
    )
    assert _groups(_parse(infra, apps)) == [("Kustomization/apps", [])]


def _external_chain(git_ready: bool, generator_ready: bool) -> list[FluxObject]:
    git = flux_object(
        "GitRepository",
        "flux-system",
        conditions=[
            condition()
            if git_ready
            else condition("Ready", "False", "GitOperationFailed", "authentication required")
        ],
    )
    generator = flux_object(
        "ArtifactGenerator",
        "apps",
        conditions=[
            condition()
            if generator_ready
            else condition("Ready", "False", "BuildFailed", "frontend build failed: no files")
        ],
    )
    # source-watcher keeps an ExternalArtifact Ready with its last artifact while it fails.
    artifact = flux_object("ExternalArtifact", "frontend", conditions=[condition()])
    frontend = flux_object(
        "Kustomization",
        "frontend",
        spec={"sourceRef": {"kind": "ExternalArtifact", "name": "frontend"}},
        conditions=[condition("Ready", "False", "ReconciliationFailed", "apply failed")],
    )
    return _parse(git, generator, artifact, frontend)


def test_external_artifacts_are_followed_to_their_failing_generator() -> None:
    assert _groups(_external_chain(git_ready=True, generator_ready=False)) == [
        ("ArtifactGenerator/apps", ["Kustomization/frontend"])
    ]


def test_external_artifacts_are_followed_to_the_generators_failing_source() -> None:
    assert _groups(_external_chain(git_ready=False, generator_ready=False)) == [
        ("GitRepository/flux-system", ["ArtifactGenerator/apps", "Kustomization/frontend"])
    ]


def test_image_policies_are_grouped_under_their_failing_image_repository() -> None:
    repository = flux_object(
        "ImageRepository",
        "podinfo",
        conditions=[
            condition("Ready", "False", "ReadOperationFailed", "scan failed: UNAUTHORIZED")
        ],
    )
    policy = flux_object(
        "ImagePolicy",
        "podinfo",
        conditions=[
            condition(
                "Ready", "False", "DependencyNotReady", "retrying in 30s error: no tags in database"
            )
        ],
    )
    assert _groups(_parse(repository, policy)) == [
        ("ImageRepository/podinfo", ["ImagePolicy/podinfo"])
    ]


def test_an_image_policy_waiting_on_a_scanning_repository_is_attached_to_it() -> None:
    repository = flux_object(
        "ImageRepository",
        "podinfo",
        conditions=[
            condition("Reconciling", "True", "Progressing", "scanning: empty database"),
            condition("Ready", "Unknown", "Progressing", "scanning: empty database"),
        ],
    )
    policy = flux_object(
        "ImagePolicy",
        "podinfo",
        conditions=[
            condition(
                "Ready", "False", "DependencyNotReady", "retrying in 30s error: no tags in database"
            )
        ],
    )
    assert _groups(_parse(repository, policy)) == [
        ("ImageRepository/podinfo", ["ImagePolicy/podinfo"])
    ]
