"""fluxbot shows each Flux object exactly as `flux get` would: READY, SUSPENDED, REVISION, MESSAGE.

The rules are flux2's cmd/flux/get_*.go (see ../shared/notes/flux.md). Each test builds the
smallest CRD-valid object that exercises one rule.
"""

from __future__ import annotations

import pytest

from bot.domain.status import Health, KStatus, ObjectRef, parse_flux_object, truncate_hex
from tests.flux_objects import DIGEST, GIT_SHA, OTHER_SHA, condition, flux_object, snapshot


def test_ready_and_message_come_from_the_ready_condition() -> None:
    obj = parse_flux_object(
        flux_object(
            "GitRepository",
            "flux-system",
            conditions=[
                condition("Reconciling", "True", "Progressing", "fetching"),
                condition("Ready", "False", "GitOperationFailed", "authentication required"),
            ],
        )
    )
    assert (obj.ready, obj.message, obj.reason) == (
        "False",
        "authentication required",
        "GitOperationFailed",
    )


def test_missing_ready_condition_reads_false_waiting_to_be_reconciled() -> None:
    obj = parse_flux_object(flux_object("Kustomization", "apps", conditions=[]))
    assert (obj.ready, obj.message) == ("False", "waiting to be reconciled")
    # Nobody has failed it yet: it is waiting, not failing.
    assert obj.health is Health.PROGRESSING


def test_unknown_ready_status_is_shown_as_unknown_and_progressing() -> None:
    obj = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            conditions=[
                condition("Reconciling", "True", "Progressing", "running upgrade"),
                condition("Ready", "Unknown", "Progressing", "Running 'upgrade' action"),
            ],
        )
    )
    assert obj.ready == "Unknown"
    assert obj.health is Health.PROGRESSING


@pytest.mark.parametrize(("suspend", "shown"), [(True, True), (False, False), (None, False)])
def test_suspended_is_spec_suspend(suspend: bool | None, shown: bool) -> None:
    obj = parse_flux_object(flux_object("Kustomization", "apps", suspend=suspend, conditions=[]))
    assert obj.suspended is shown


def test_suspended_object_keeps_its_stale_conditions_but_is_grouped_as_suspended() -> None:
    obj = parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            suspend=True,
            conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
        )
    )
    assert (obj.ready, obj.message) == ("False", "kustomize build failed")
    assert obj.health is Health.SUSPENDED


def test_kustomization_revision_is_last_applied_revision_shortened() -> None:
    obj = parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            status={"lastAppliedRevision": f"main@sha1:{GIT_SHA}"},
            conditions=[condition(message=f"Applied revision: main@sha1:{GIT_SHA}")],
        )
    )
    assert obj.revision == "main@sha1:696f056d"
    assert obj.message == "Applied revision: main@sha1:696f056d"
    assert obj.full_revision == f"main@sha1:{GIT_SHA}"


@pytest.mark.parametrize("kind", ["GitRepository", "OCIRepository", "HelmRepository", "Bucket"])
def test_source_revision_is_artifact_revision_with_hex_shortened(kind: str) -> None:
    revision = f"sha256:{DIGEST}"
    obj = parse_flux_object(
        flux_object(
            kind,
            "src",
            status={
                "artifact": {
                    "revision": revision,
                    "path": "x",
                    "url": "http://source-controller/x",
                    "digest": f"sha256:{DIGEST}",
                    "lastUpdateTime": "2026-11-25T08:00:00Z",
                }
            },
            conditions=[condition(message=f"stored artifact for revision '{revision}'")],
        )
    )
    assert obj.revision == "sha256:d4f3c2b1"
    assert obj.message == "stored artifact for revision 'sha256:d4f3c2b1'"


def test_helmchart_revision_is_semver_and_kept_but_its_message_is_shortened() -> None:
    obj = parse_flux_object(
        flux_object(
            "HelmChart",
            "flux-apps-podinfo",
            status={
                "artifact": {
                    "revision": "6.7.1+" + GIT_SHA,
                    "path": "x",
                    "url": "http://source-controller/x",
                    "digest": f"sha256:{DIGEST}",
                    "lastUpdateTime": "2026-11-25T08:00:00Z",
                }
            },
            conditions=[
                condition(message=f"packaged 'podinfo' chart with version '6.7.1+{GIT_SHA}'")
            ],
        )
    )
    assert obj.revision == "6.7.1+" + GIT_SHA
    assert obj.message == "packaged 'podinfo' chart with version '6.7.1+696f056d'"


def test_helmrelease_revision_is_newest_history_chart_version_and_message_is_unshortened() -> None:
    message = f"Helm upgrade failed: digest sha256:{DIGEST} mismatch"
    obj = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            status={
                "history": [snapshot(5, "6.7.1", "failed"), snapshot(4, "6.6.0", "superseded")],
                "lastAttemptedRevision": "6.7.1",
                "storageNamespace": "flux-apps",
            },
            conditions=[condition("Ready", "False", "UpgradeFailed", message)],
        )
    )
    assert obj.revision == "6.7.1"
    assert obj.message == message
    assert obj.helm is not None
    assert [s.version for s in obj.helm.history] == [5, 4]
    assert (obj.helm.release_name, obj.helm.storage_namespace) == ("podinfo", "flux-apps")


def test_helmrelease_without_history_shows_last_attempted_revision() -> None:
    obj = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            status={"lastAttemptedRevision": "6.7.1"},
            conditions=[condition("Ready", "False", "InstallFailed", "install failed")],
        )
    )
    assert obj.revision == "6.7.1"


def test_oci_helm_repository_is_always_ready() -> None:
    raw = flux_object("HelmRepository", "podinfo", spec={"type": "oci", "url": "oci://ghcr.io/x"})
    raw.pop("status")
    obj = parse_flux_object(raw)
    assert (obj.ready, obj.message, obj.revision) == ("True", "Helm repository is Ready", "")
    assert obj.health is Health.READY


def test_hex_shortening_matches_flux_word_rule() -> None:
    sha512 = "a" * 64 + "b" * 64
    assert truncate_hex(f"main@sha1:{GIT_SHA}") == "main@sha1:696f056d"
    assert truncate_hex(f"x {sha512} y") == "x aaaaaaaa y"
    # Fewer than 40, upper case, or glued to word characters: left alone.
    assert truncate_hex("abc123") == "abc123"
    assert truncate_hex(GIT_SHA.upper()) == GIT_SHA.upper()
    assert truncate_hex(f"v{GIT_SHA}") == f"v{GIT_SHA}"
    assert truncate_hex(f"{GIT_SHA} and {OTHER_SHA}") == "696f056d and 1c7d2ab0"


def test_stalled_is_failing_even_while_reconciling() -> None:
    obj = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            conditions=[
                condition("Ready", "False", "UpgradeFailed", "upgrade failed"),
                condition(
                    "Stalled", "True", "RetriesExceeded", "Failed to upgrade after 3 attempt(s)"
                ),
            ],
        )
    )
    assert obj.stalled
    assert obj.health is Health.FAILING
    assert obj.kstatus is KStatus.FAILED


def test_kstatus_follows_flux_reconcile_order() -> None:
    lagging = parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            generation=3,
            status={"observedGeneration": 2},
            conditions=[condition()],
        )
    )
    assert lagging.generation_lag
    assert lagging.kstatus is KStatus.IN_PROGRESS
    assert lagging.health is Health.PROGRESSING
    retrying = parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            conditions=[
                condition("Reconciling", "True", "ProgressingWithRetry", "retrying"),
                condition("Ready", "False", "BuildFailed", "kustomize build failed"),
            ],
        )
    )
    # kstatus calls it in progress, but a person should see it as failing.
    assert retrying.kstatus is KStatus.IN_PROGRESS
    assert retrying.health is Health.FAILING
    current = parse_flux_object(flux_object("Kustomization", "apps", conditions=[condition()]))
    assert current.kstatus is KStatus.CURRENT
    assert current.health is Health.READY


def test_references_ownership_and_dependencies_are_kept() -> None:
    ks = parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            spec={
                "dependsOn": [{"name": "infra-configs"}, {"name": "crds", "namespace": "platform"}]
            },
            labels={
                "kustomize.toolkit.fluxcd.io/name": "flux-system",
                "kustomize.toolkit.fluxcd.io/namespace": "flux-system",
            },
            conditions=[condition()],
        )
    )
    assert ks.source_ref == ObjectRef("GitRepository", "flux-system", "flux-system")
    assert ks.depends_on == (
        ObjectRef("Kustomization", "flux-system", "infra-configs"),
        ObjectRef("Kustomization", "platform", "crds"),
    )
    assert ks.owner == ObjectRef("Kustomization", "flux-system", "flux-system")


def test_helmrelease_chart_template_points_at_the_generated_helmchart() -> None:
    hr = parse_flux_object(
        flux_object("HelmRelease", "podinfo", "flux-apps", conditions=[condition()])
    )
    assert hr.source_ref == ObjectRef("HelmChart", "flux-system", "flux-apps-podinfo")
    chart_ref = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            spec={"chart": None, "chartRef": {"kind": "OCIRepository", "name": "podinfo"}},
            conditions=[condition()],
        )
    )
    assert chart_ref.source_ref == ObjectRef("OCIRepository", "flux-apps", "podinfo")


def test_odd_input_reads_as_absent_rather_than_crashing() -> None:
    obj = parse_flux_object(
        {
            "kind": "GitRepository",
            "metadata": {"name": "x", "namespace": "y", "generation": "seven"},
            "spec": ["not", "a", "map"],
            "status": {"conditions": ["junk", {"type": "Ready"}], "artifact": 5},
        }
    )
    assert (obj.ready, obj.revision, obj.generation) == ("Unknown", "", 0)
    with pytest.raises(ValueError, match="not a Flux kind"):
        parse_flux_object({"kind": "Deployment"})
