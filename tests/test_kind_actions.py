"""Which actions each kind gets: what the flux CLI offers for it (flux2 cmd/flux/reconcile_*.go,
suspend_*.go, resume_*.go, reconcile_with_source.go)."""

from __future__ import annotations

import pytest

from bot.domain.action_rules import (
    Refused,
    applicable_actions,
    check_offered,
    index_objects,
    with_source_plan,
)
from bot.domain.policy import Action
from bot.domain.status import parse_flux_object
from tests.flux_objects import condition, flux_object

FAILING = [condition("Ready", "False", "Failed", "it failed")]


@pytest.mark.parametrize(
    ("kind", "offered"),
    [
        ("ImageRepository", ["reconcile", "suspend"]),
        ("ImagePolicy", ["reconcile", "suspend"]),
        ("ImageUpdateAutomation", ["reconcile", "suspend"]),
        ("Receiver", ["reconcile", "suspend"]),
        ("ExternalArtifact", []),
        ("ArtifactGenerator", []),
    ],
)
def test_failing_objects_get_the_actions_flux_has_for_their_kind(
    kind: str, offered: list[str]
) -> None:
    obj = parse_flux_object(flux_object(kind, "x", conditions=FAILING))
    assert [a.value for a, _ in applicable_actions(obj, None)] == offered


def test_a_suspended_alert_or_provider_can_be_resumed_but_not_reconciled() -> None:
    for kind in ("Alert", "Provider"):
        obj = parse_flux_object(flux_object(kind, "x", suspend=True))
        assert applicable_actions(obj, None) == [(Action.RESUME, "")]
        with pytest.raises(Refused, match=f"Flux offers no reconcile for {kind} objects"):
            check_offered(obj, "reconcile")


def test_with_source_is_refused_for_an_external_artifact_source_as_flux_does() -> None:
    ks = parse_flux_object(
        flux_object(
            "Kustomization",
            "frontend",
            spec={"sourceRef": {"kind": "ExternalArtifact", "name": "frontend"}},
            conditions=FAILING,
        )
    )
    assert (Action.RECONCILE, "with-source") not in applicable_actions(ks, None)
    artifact = parse_flux_object(flux_object("ExternalArtifact", "frontend"))
    with pytest.raises(Refused, match="cannot reconcile source of kind ExternalArtifact"):
        with_source_plan(ks, index_objects([ks, artifact]))
    automation = parse_flux_object(flux_object("ImageUpdateAutomation", "apps", conditions=FAILING))
    # `flux reconcile image update` has no --with-source, though its GitRepository could be.
    assert (Action.RECONCILE, "with-source") not in applicable_actions(automation, None)
    with pytest.raises(Refused, match="has no source to reconcile first"):
        check_offered(automation, "reconcile", "with-source")
