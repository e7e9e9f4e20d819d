"""`tree ks|hr NAME`: what a Kustomization or HelmRelease manages, as `flux tree` shows it.

flux2 cmd/flux/tree_kustomization.go walks `status.inventory` (ids
`<namespace>_<name>_<group>_<kind>`), skips the Kustomization's own entry and descends into
the Kustomizations and HelmReleases it applied; HelmReleases record theirs in
`status.inventory` since Flux 2.8 (helm-controller; the CRD's `status.inventory.entries`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.cli import main
from bot.commands.answers import TreeAnswer
from bot.commands.executor import CommandRunner
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.status import parse_flux_object
from bot.domain.tree import build_tree
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.slack.render import MAX_BLOCKS, SlackMessage, render
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object

KS_GROUP = "kustomize.toolkit.fluxcd.io"
HR_GROUP = "helm.toolkit.fluxcd.io"


def _inventory(*ids: str) -> dict[str, Any]:
    return {"inventory": {"entries": [{"id": i, "v": "v1"} for i in ids]}}


def _fleet_objects() -> list[dict[str, Any]]:
    apps = flux_object(
        "Kustomization",
        "apps",
        status=_inventory(
            f"flux-system_apps_{KS_GROUP}_Kustomization",  # applies itself: not its own child
            "_flux-apps__Namespace",
            f"flux-apps_podinfo_{HR_GROUP}_HelmRelease",
            f"flux-system_tenants_{KS_GROUP}_Kustomization",
            "flux-apps_podinfo-config_v1_ConfigMap",
        ),
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
    podinfo = flux_object(
        "HelmRelease",
        "podinfo",
        "flux-apps",
        status=_inventory(
            "flux-apps_podinfo_apps_Deployment",
            "flux-apps_podinfo__Service",
            "flux-apps_podinfo_autoscaling_HorizontalPodAutoscaler",
        ),
        conditions=[condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed: timed out")],
    )
    tenants = flux_object(
        "Kustomization",
        "tenants",
        status=_inventory(
            "_team-a__Namespace", "team-a_team-a_rbac.authorization.k8s.io_RoleBinding"
        ),
        conditions=[condition()],
    )
    return [apps, podinfo, tenants]


def _runner(objects: list[dict[str, Any]]) -> CommandRunner:
    cluster = OfflineCluster(
        "production", "prod-eu-1", tuple(parse_flux_object(o) for o in objects)
    )
    layout = FleetLayout((EnvironmentLayout("production", "production", "C0PROD", ("prod-eu-1",)),))
    return CommandRunner(layout, OfflineFleetReader([cluster]))


def test_the_tree_nests_what_was_applied_with_each_flux_objects_health(
    tmp_path: Path, capsys: Any
) -> None:
    dump = tmp_path / "prod-eu-1.yaml"
    dump.write_text(yaml.safe_dump({"apiVersion": "v1", "kind": "List", "items": _fleet_objects()}))
    assert main(["shell", "--from-file", str(dump), "-x", "tree ks apps"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == [
        "✗ Kustomization/flux-system/apps (offline / prod-eu-1): failing; manages 9 objects "
        "(1 failing, 1 ready Flux objects)",
        "├── Namespace/flux-apps",
        "├── ✗ HelmRelease/flux-apps/podinfo: Helm upgrade failed: timed out",
        "│   ├── Deployment/flux-apps/podinfo",
        "│   ├── Service/flux-apps/podinfo",
        "│   └── HorizontalPodAutoscaler/flux-apps/podinfo",
        "├── ✓ Kustomization/flux-system/tenants",
        "│   ├── Namespace/team-a",
        "│   └── RoleBinding/team-a/team-a",
        "└── ConfigMap/flux-apps/podinfo-config",
    ]


def test_a_release_without_a_recorded_inventory_says_why_and_hr_works_too() -> None:
    objects = _fleet_objects()
    objects[1]["status"].pop("inventory")
    answer = _runner(objects).handle("tree hr podinfo -n flux-apps --env production")
    assert isinstance(answer, TreeAnswer)
    (match,) = answer.matches
    assert match.tree.children == ()
    assert "Flux 2.8" in match.tree.note


def test_tree_is_for_kustomizations_and_helmreleases_only() -> None:
    answer = render(_runner(_fleet_objects()).handle("tree gitrepo flux-system --env production"))
    assert "tree shows what a Kustomization or HelmRelease manages" in answer.text


def test_remote_and_circular_inventories_are_shown_without_looping() -> None:
    remote = flux_object(
        "Kustomization",
        "edge",
        spec={"kubeConfig": {"secretRef": {"name": "edge-kubeconfig"}}},
        status=_inventory(f"flux-system_apps_{KS_GROUP}_Kustomization"),
    )
    loop = flux_object(
        "Kustomization", "loop", status=_inventory(f"flux-system_loop2_{KS_GROUP}_Kustomization")
    )
    loop2 = flux_object(
        "Kustomization", "loop2", status=_inventory(f"flux-system_loop_{KS_GROUP}_Kustomization")
    )
    objects = [parse_flux_object(o) for o in [*_fleet_objects(), remote, loop, loop2]]
    edge = build_tree(objects[3], objects)
    # The remote cluster's `apps` is not this cluster's `apps`: listed, not looked up.
    assert [(c.label, c.obj) for c in edge.children] == [("Kustomization/flux-system/apps", None)]
    assert "remote cluster" in edge.note
    tree = build_tree(objects[4], objects)
    (loop2_node,) = tree.children
    (back,) = loop2_node.children
    assert back.note == "already shown above"


def _valid(message: SlackMessage) -> None:
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert 0 < len(message.text) <= 4000


def test_the_slack_tree_is_condensed_to_what_needs_attention() -> None:
    message = render(_runner(_fleet_objects()).handle("tree ks apps --env production"))
    _valid(message)
    text = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")
    assert "Manages 9 objects; Flux objects: 1 failing · 1 ready" in text
    assert ":red_circle: `HelmRelease/flux-apps/podinfo` Helm upgrade failed: timed out" in text
    # Objects that are not Flux objects are counted by kind under whoever applied them.
    assert "Deployment ×1, HorizontalPodAutoscaler ×1, Service ×1" in text
    assert "ConfigMap ×1, Namespace ×1" in text


def test_a_huge_tree_with_hostile_names_stays_within_block_kit_limits() -> None:
    children = [f"flux-system_app-{i}_{KS_GROUP}_Kustomization" for i in range(400)]
    root = flux_object("Kustomization", "flux-system", status=_inventory(*children))
    hostile = "<!channel> *bold* & `x` " * 30
    apps = [
        flux_object(
            "Kustomization",
            f"app-{i}",
            status=_inventory(*(f"apps-{i}_cm-{j}_v1_ConfigMap" for j in range(20))),
            conditions=[
                condition("Ready", "False", "BuildFailed", hostile) if i % 40 == 0 else condition()
            ],
        )
        for i in range(400)
    ]
    message = render(_runner([root, *apps]).handle("tree ks flux-system --env production"))
    _valid(message)
    text = "\n".join(b["text"]["text"] for b in message.blocks if b["type"] == "section")
    assert "<!channel>" not in text
    assert "&lt;!channel&gt;" in text
    assert text.count(":red_circle: `Kustomization/flux-system/app-") == 10
    assert "more lines (ready or not Flux objects); `flux tree` shows them all" in text


def test_slash_flux_tree_answers_from_the_watch_cache_in_slack(tmp_path: Path) -> None:
    """The real `fluxbot serve --http`, a fake cluster and fake Slack: `/flux tree ks apps`."""
    from tests.bot_process import SECRET, start_bot, texts
    from tests.fakes.kube_api import FakeFleet
    from tests.fakes.slack_api import FakeSlack

    fleet = FakeFleet(["prod-eu-1"])
    with FakeSlack(signing_secret=SECRET) as slack, fleet:
        fleet["prod-eu-1"].apply_many(_fleet_objects())
        config = tmp_path / "fluxbot.yaml"
        config.write_text(
            yaml.safe_dump(
                {
                    "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(tmp_path / "kc"))},
                    "history": {"path": str(tmp_path / "history.db")},
                    "environments": {
                        "production": {
                            "channel": "C0PROD",
                            "clusters": [{"context": "prod-eu-1"}],
                            "digest": {"enabled": False},
                        }
                    },
                }
            )
        )
        bot = start_bot(["--config", str(config)], slack, tmp_path)
        try:
            payload = bot.answer(bot.command("tree ks apps", "C0PROD"))
        finally:
            bot.stop()
    assert validate_blocks(payload["blocks"]) == []
    text = texts(payload)
    assert "*Kustomization* `flux-system/apps` on *prod-eu-1* (production): *failing*" in text
    assert ":red_circle: `HelmRelease/flux-apps/podinfo` Helm upgrade failed: timed out" in text
