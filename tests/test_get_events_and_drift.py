"""`get` shows the object's Events and its sources', as `flux events --for KIND/NAME` does
(flux2 cmd/flux/events.go: a HelmRelease's chart source and its HelmChart `<ns>-<name>`, a
Kustomization's sourceRef), with their revision annotations; a drifted HelmRelease is ready
with drift. Rendered for the terminal and for Slack, within Block Kit's limits."""

from __future__ import annotations

from typing import Any

from bot.commands.executor import CommandRunner
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.status import ObjectRef, parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader, event_of
from bot.render.text import render as render_text
from bot.slack.render import render
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object

RELEASE = flux_object(
    "HelmRelease",
    "podinfo",
    "flux-apps",
    conditions=[
        condition("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded"),
        condition(
            "Drifted",
            "True",
            "DriftDetected",
            "Cluster state of release flux-apps/podinfo.v3 has drifted from the desired state",
        ),
    ],
)
CHART = flux_object(
    "HelmChart",
    "flux-apps-podinfo",
    conditions=[condition("Ready", "True", "ChartPullSucceeded", "pulled 'podinfo' chart")],
)


def _event(kind: str, namespace: str, name: str, reason: str, at: str, **annotations: str) -> Any:
    return event_of(
        {
            "kind": "Event",
            "metadata": {
                "name": f"{name}.{reason}",
                "namespace": namespace,
                "annotations": annotations,
            },
            "involvedObject": {"kind": kind, "namespace": namespace, "name": name},
            "type": "Warning" if "Failed" in reason else "Normal",
            "reason": reason,
            "message": f"{reason} <for> {name} & co",
            "lastTimestamp": at,
            "count": 1,
        }
    )


def _runner() -> CommandRunner:
    events = (
        _event("HelmRelease", "flux-apps", "podinfo", "UpgradeSucceeded", "2026-11-26T08:00:00Z",
               **{"helm.toolkit.fluxcd.io/revision": "6.7.1"}),
        _event("HelmChart", "flux-system", "flux-apps-podinfo", "ChartPullSucceeded",
               "2026-11-26T07:59:00Z", **{"source.toolkit.fluxcd.io/revision": "6.7.1"}),
        _event("HelmRepository", "flux-system", "podinfo", "NewArtifact", "2026-11-26T07:58:00Z",
               **{"source.toolkit.fluxcd.io/revision": "sha256:1234"}),
        _event("HelmRelease", "other", "podinfo", "UpgradeFailed", "2026-11-26T09:00:00Z"),
    )  # fmt: skip
    cluster = OfflineCluster(
        "production",
        "prod-eu-1",
        tuple(parse_flux_object(o) for o in (RELEASE, CHART)),
        events=events,
    )
    layout = FleetLayout((EnvironmentLayout("production", "production", "C0PROD", ("prod-eu-1",)),))
    return CommandRunner(layout, OfflineFleetReader([cluster]))


def test_get_lists_the_objects_and_its_sources_events_newest_first() -> None:
    answer = _runner().handle("get hr podinfo --env production")
    (match,) = answer.matches  # type: ignore[union-attr]
    assert [(e.involved, e.reason, e.revision) for e in match.events] == [
        (ObjectRef("HelmRelease", "flux-apps", "podinfo"), "UpgradeSucceeded", "6.7.1"),
        (ObjectRef("HelmChart", "flux-system", "flux-apps-podinfo"), "ChartPullSucceeded", "6.7.1"),
        (ObjectRef("HelmRepository", "flux-system", "podinfo"), "NewArtifact", "sha256:1234"),
    ]
    text = render_text(answer)
    assert "Ready:      True (UpgradeSucceeded), drift detected (Drifted=True)" in text
    assert "HelmChart/flux-system/flux-apps-podinfo" in text


def test_the_slack_answer_names_each_events_object_and_revision_and_the_drift() -> None:
    message = render(_runner().handle("get hr podinfo --env production"))
    assert validate_blocks(message.blocks) == []
    text = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")
    assert ":warning: *drift detected* (`Drifted=True`)" in text
    assert "*ChartPullSucceeded* `HelmChart/flux-system/flux-apps-podinfo` `6.7.1`" in text
    assert "&lt;for&gt;" in text
    assert "<for>" not in text
