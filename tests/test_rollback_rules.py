"""When a rollback is offered, to which release, and how it is done (bot/domain/rollback.py),
checked against helm-controller's own rules (api/v2/snapshot_types.go Previous,
internal/reconcile/rollback_remediation.go, internal/controller/helmrelease_controller.go)."""

from __future__ import annotations

from typing import Any

import pytest

from bot.actions.offers import offered
from bot.domain.rollback import CannotRollBack, check_helm_cli, rollback_plan
from bot.domain.status import FluxObject, parse_flux_object
from tests.flux_objects import condition, flux_object, snapshot


def _hr(
    history: list[dict[str, Any]],
    ready: tuple[str, str] = ("False", "UpgradeFailed"),
    stalled: bool = False,
    name: str = "kps",
    **spec: Any,
) -> FluxObject:
    conditions = [condition("Ready", ready[0], ready[1], "message from helm-controller")]
    if stalled:
        conditions.append(condition("Stalled", "True", "RetriesExceeded", "Failed 3 times"))
    status: dict[str, Any] = {"history": history, "storageNamespace": "flux-apps"}
    return parse_flux_object(
        flux_object(
            "HelmRelease",
            name,
            "flux-apps",
            spec=spec or None,
            status=status,
            conditions=conditions,
        )
    )


def _labels(obj: FluxObject) -> list[str]:
    return [o.label for o in offered(obj, "flux")]


def test_a_failed_upgrade_offers_the_previous_release_by_name() -> None:
    obj = _hr([snapshot(5, "66.3.0", "failed"), snapshot(4, "65.1.0", "superseded")])
    assert "Rollback to 65.1.0…" in _labels(obj)
    assert rollback_plan(obj).target.version == 4


def test_a_healthy_release_is_never_offered_a_rollback() -> None:
    obj = _hr([snapshot(5, "66.3.0"), snapshot(4, "65.1.0", "superseded")], ("True", "Succeeded"))
    assert not any(label.startswith("Rollback") for label in _labels(obj))
    with pytest.raises(CannotRollBack, match="did not fail"):
        rollback_plan(obj)


def test_a_chart_that_cannot_be_fetched_says_why_instead() -> None:
    obj = _hr([snapshot(5, "66.3.0", "failed"), snapshot(4, "65.1.0", "superseded")],
              ("False", "ArtifactFailed"))  # fmt: skip
    with pytest.raises(CannotRollBack, match="its chart cannot be fetched"):
        rollback_plan(obj)
    assert not any(label.startswith("Rollback") for label in _labels(obj))


def test_nothing_is_offered_after_helm_controllers_own_rollback() -> None:
    """rollback_remediation.go observeRollback prepends the rollback release."""
    rolled = {**snapshot(6, "65.1.0"), "action": "rollback"}
    obj = _hr([rolled, snapshot(5, "66.3.0", "superseded"), snapshot(4, "65.1.0", "superseded")],
              ("False", "RollbackSucceeded"))  # fmt: skip
    with pytest.raises(CannotRollBack, match="already rolled it back"):
        rollback_plan(obj)


def test_the_target_skips_releases_whose_tests_failed() -> None:
    """snapshot_types.go Previous(ignoreTests=false)."""
    tested = {**snapshot(4, "65.2.0", "superseded"),
              "testHooks": {"kps-test": {"phase": "Failed"}}}  # fmt: skip
    obj = _hr([snapshot(5, "66.3.0", "failed"), tested, snapshot(3, "65.1.0", "superseded")])
    assert rollback_plan(obj).target.chart_version == "65.1.0"


def test_failed_tests_on_the_newest_release_offer_a_rollback() -> None:
    tested = {**snapshot(5, "66.3.0"), "testHooks": {"kps-test": {"phase": "Failed"}}}
    obj = _hr([tested, snapshot(4, "65.1.0", "superseded")], ("False", "TestFailed"))
    assert "Rollback to 65.1.0…" in _labels(obj)


def test_flux_native_rollback_pins_the_chart_and_says_when_values_changed() -> None:
    changed = {**snapshot(4, "65.1.0", "superseded"), "configDigest": "sha256:" + "e" * 64}
    obj = _hr([snapshot(5, "66.3.0", "failed"), changed])
    plan = rollback_plan(obj)
    assert plan.pin is not None
    assert plan.pin.body == {"spec": {"chart": {"spec": {"version": "65.1.0"}}}}
    assert plan.values_changed


def test_a_shared_oci_repository_is_not_pinned() -> None:
    chart_ref = {"kind": "OCIRepository", "name": "charts"}
    mine = _hr([snapshot(5, "66.3.0", "failed"), snapshot(4, "65.1.0", "superseded")],
               chart=None, chartRef=chart_ref)  # fmt: skip
    alone = rollback_plan(mine, {mine.key: mine})
    assert alone.pin is not None
    assert alone.pin.ref.kind == "OCIRepository"
    assert alone.pin.body["spec"]["ref"]["tag"] == "65.1.0"
    other = _hr([snapshot(1, "1.0.0")], ("True", "Succeeded"), name="other", chart=None,
                chartRef=chart_ref)  # fmt: skip
    with pytest.raises(CannotRollBack, match="HelmRelease flux-apps/other also uses"):
        rollback_plan(mine, {mine.key: mine, other.key: other})


def test_the_helm_cli_is_refused_where_it_cannot_do_it_right() -> None:
    other_storage = _hr([snapshot(5, "66.3.0", "failed"), snapshot(4, "65.1.0", "superseded")],
                        targetNamespace="monitoring")  # fmt: skip
    history = [{**snapshot(5, "66.3.0", "failed"), "namespace": "monitoring"},
               {**snapshot(4, "65.1.0", "superseded"), "namespace": "monitoring"}]  # fmt: skip
    obj = _hr(history, targetNamespace="monitoring")
    with pytest.raises(CannotRollBack, match=r"storage namespace \(flux-apps\) differs"):
        check_helm_cli(obj, rollback_plan(obj, method="helm"), mapped_remote=False)
    remote = _hr([snapshot(5, "66.3.0", "failed"), snapshot(4, "65.1.0", "superseded")],
                 kubeConfig={"secretRef": {"name": "remote"}})  # fmt: skip
    with pytest.raises(CannotRollBack, match="another cluster"):
        check_helm_cli(remote, rollback_plan(remote, method="helm"), mapped_remote=False)
    check_helm_cli(remote, rollback_plan(remote, method="helm"), mapped_remote=True)
    check_helm_cli(other_storage, rollback_plan(other_storage, method="helm"), False)
