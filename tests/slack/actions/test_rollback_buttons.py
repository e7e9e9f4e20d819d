"""Rollback from Slack: the plan, typed confirmation, a second person's approval or denial,
Flux-native and helm CLI rollbacks, in-process against fake Slack, fake clusters and a fake
`helm`."""

from __future__ import annotations

import json
import time
from typing import Any

from tests.bot_process import buttons, texts
from tests.fakes import helm as fake_helm
from tests.slack.world import (
    DEV,
    HR,
    OPS,
    PROD,
    SRE1,
    SRE2,
    World,
    bump,
    failed_release,
)


def test_production_rollback_shows_a_plan_needs_typed_confirmation_and_a_second_person(
    world: World,
) -> None:
    """The default rollback is Flux-native: keep the parent Kustomization off the HelmRelease,
    pin the previous chart version, and let helm-controller upgrade to it."""
    world.start()
    world.prod.clear_requests()
    offered = buttons(world.view(SRE1, PROD, "get hr checkout -n flux-apps"))
    assert "Rollback to 1.9.0…" in offered
    plan = world.view(SRE1, PROD, "rollback hr checkout -n flux-apps")
    text = texts(plan)
    assert "Emergency rollback plan" in text
    assert "Target: revision 4 `podinfo@1.9.0`" in text
    assert "`kustomize.toolkit.fluxcd.io/reconcile: disabled`" in text
    assert "`spec.chart.spec.version` of HelmRelease flux-apps/checkout to `1.9.0`" in text
    assert "stays pinned, away from Git, until someone presses Resume" in text
    world.click(SRE1, PROD, buttons(plan)["Confirm rollback"])
    world.slack.wait_for_call("views.open")
    world.slack.wait_for_call("views.update")  # the form, filled once checked
    view = world.slack.views()[-1]
    wrong = world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkou"}}, user_id=SRE1)  # type: ignore[union-attr]
    assert wrong.json()["errors"] == {"typed": "Type the object's name, checkout, exactly."}
    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]

    # A second submission of the same form asks nothing more.
    again = world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]
    assert again.status == 200
    request = world.slack.wait_for_message(PROD, lambda m: "asks to roll back" in m["text"])
    assert "<!subteam^S0SRE>: one of you must approve" in request["text"]
    approval = buttons(request)
    assert "style" not in approval["Deny"]
    assert world.writes(world.prod) == []
    own = world.click(SRE1, PROD, approval["Approve"], ephemeral=False, message=request)
    assert "cannot approve your own request" in world.outcome(own)
    outsider = world.click(OPS, PROD, approval["Approve"], ephemeral=False, message=request)
    assert "needs the role sre" in world.outcome(outsider)
    assert world.writes(world.prod) == []

    approved = world.click(SRE2, PROD, approval["Approve"], ephemeral=False, message=request)
    result = world.outcome(approved, count=2, timeout=20)
    # The request line now says who decided.
    assert f":white_check_mark: Approved by <@{SRE2}>: <@{SRE1}> asks to roll back" in result
    asked = [
        c for c in world.slack.calls("chat.postMessage") if "asks to roll back" in str(c.params)
    ]
    assert len(asked) == 1
    assert "Rolled back HelmRelease flux-apps/checkout on prod-1 to podinfo@1.9.0" in result
    assert "helm-controller upgraded it (Helm revision 6)" in result
    assert "Git still declares 2.0.0" in result
    assert f"approved by <@{SRE2}>" in result
    assert not world.helm_log.exists() or '"rollback"' not in world.helm_log.read_text()
    release = world.prod.get(HR, "HelmRelease", "flux-apps", "checkout")
    assert release is not None
    assert release["spec"]["chart"]["spec"]["version"] == "1.9.0"
    assert "suspend" not in release["spec"]
    annotations = release["metadata"]["annotations"]
    assert annotations["kustomize.toolkit.fluxcd.io/reconcile"] == "disabled"
    assert annotations["fluxbot.io/rolled-back-from"] == "2.0.0"
    history = release["status"]["history"]
    assert (history[0]["version"], history[0]["chartVersion"]) == (6, "1.9.0")
    assert "Resume (redeploys 2.0.0)" in buttons(world.final(approved, count=2))


def test_the_helm_cli_rollback_runs_helm_4_with_flags_before_the_release(world: World) -> None:
    world.start(rollback="helm")
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    assert "`helm rollback podinfo 2 -n flux-apps --wait`" in texts(plan)
    result = world.outcome(world.click(SRE1, DEV, buttons(plan)["Confirm rollback"]), count=2)
    assert "Rolled back HelmRelease flux-apps/podinfo on dev-1 to revision 2" in result
    assert "Helm reports revision 4 deployed: Rollback to 2" in result
    calls = [json.loads(line) for line in world.helm_log.read_text().splitlines()]
    assert ["version", "--template", "{{.Version}}"] in calls
    (call,) = [c for c in calls if c[0] == "rollback"]
    assert call[:6] == ["rollback", "--namespace", "flux-apps", "--timeout", "300s", "--wait"]
    assert call[-3:] == ["--", "podinfo", "2"]
    assert "--kube-context" in call
    release = world.dev.get(HR, "HelmRelease", "flux-apps", "podinfo")
    assert release is not None
    assert release["spec"]["suspend"] is True


def test_a_failed_helm_rollback_says_what_was_and_was_not_changed(world: World) -> None:
    world.start(helm_fail="rollback", rollback="helm")
    plan = world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps")
    result = world.outcome(world.click(SRE1, DEV, buttons(plan)["Confirm rollback"]), count=2)
    assert (
        "Rollback of HelmRelease flux-apps/podinfo on dev-1 failed: helm rollback exited 1"
        in result
    )
    assert (
        "Changed: parent Kustomization kept from re-applying the HelmRelease; HelmRelease suspended"
        in result
    )
    assert "Not changed: Helm release rolled back to revision 2" in result


def _remote_release(name: str, secret_ref: dict[str, str]) -> dict[str, Any]:
    """A failed HelmRelease on dev-1 whose release helm-controller installs, and stores, in
    the cluster its kubeConfig Secret reaches (helm-controller
    internal/controller/helmrelease_controller.go buildRESTClientGetter)."""
    release = failed_release(name, [(3, "6.7.1", "failed"), (2, "6.6.0", "deployed")])
    release["spec"]["kubeConfig"] = {"secretRef": secret_ref}
    return release


def test_a_helm_cli_rollback_of_a_remote_release_runs_in_the_cluster_its_kubeconfig_maps_to(
    world: World,
) -> None:
    """spec.kubeConfig: the release and its storage live in the remote cluster. Mapped in
    actions.helm_remote_clusters, helm runs with that cluster's context; the HelmRelease is
    suspended where it lives. Not mapped (another Secret or key), the rollback is refused."""
    world.dev.apply_many([
        _remote_release("edge", {"name": "edge-kubeconfig"}),
        _remote_release("elsewhere", {"name": "edge-kubeconfig", "key": "other.yaml"}),
    ])  # fmt: skip
    world.start(rollback="helm", helm_remote=[
        {"cluster": "dev-1", "namespace": "flux-apps", "secret": "edge-kubeconfig",
         "runs_on": "prod-1"},
    ])  # fmt: skip
    for cluster in ("prod-1", "dev-1"):  # the same release name in both clusters' storage
        fake_helm.seed(world.helm_state, "flux-apps", "edge", [
            {"revision": 2, "status": "deployed", "chart": "podinfo-6.6.0"},
            {"revision": 3, "status": "failed", "chart": "podinfo-6.7.1"},
        ], cluster=cluster)  # fmt: skip

    refused = texts(world.view(SRE1, DEV, "rollback hr elsewhere -n flux-apps"))
    assert (
        "spec.kubeConfig: Secret flux-apps/edge-kubeconfig key other.yaml) that is not mapped"
        in refused
    )

    plan = texts(world.view(SRE1, DEV, "rollback hr edge -n flux-apps"))
    assert "`helm rollback edge 2 -n flux-apps --wait` on prod-1" in plan
    plan_view = world.view(SRE1, DEV, "rollback hr edge -n flux-apps")
    result = world.outcome(world.click(SRE1, DEV, buttons(plan_view)["Confirm rollback"]), count=2)
    assert "Rolled back HelmRelease flux-apps/edge on dev-1 to revision 2" in result
    calls = [json.loads(line) for line in world.helm_log.read_text().splitlines()]
    (call,) = [c for c in calls if c[0] == "rollback"]
    assert call[call.index("--kube-context") + 1] == "prod-1"
    assert fake_helm.stored(world.helm_state, "flux-apps", "edge", "prod-1")[-1]["status"] == (
        "deployed"
    )
    assert [r["revision"] for r in fake_helm.stored(world.helm_state, "flux-apps", "edge",
                                                    "dev-1")] == [2, 3]  # fmt: skip
    release = world.dev.get(HR, "HelmRelease", "flux-apps", "edge")
    assert release is not None
    assert release["spec"]["suspend"] is True
    assert all(w.path.split("/")[-1] != "edge" for w in world.writes(world.prod))


def test_the_helm_path_is_refused_without_a_client_and_flux_needs_none(world: World) -> None:
    world.start(helm=False, rollback="helm")
    offered = buttons(world.view(SRE1, DEV, "get hr podinfo -n flux-apps"))
    assert not any(label.startswith("Rollback") for label in offered)
    assert {"Reconcile", "Force", "Reset retries"} <= set(offered)
    answer = texts(world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps"))
    assert "actions.rollback is helm but no helm client is configured (actions.helm_path)" in answer


def test_deny_rewrites_the_request_line_and_runs_nothing(world: World) -> None:
    world.start()
    plan = world.view(SRE1, PROD, "rollback hr checkout -n flux-apps")
    world.click(SRE1, PROD, buttons(plan)["Confirm rollback"])
    world.slack.wait_for_call("views.update")
    view = world.slack.views()[-1]
    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]
    request = world.slack.wait_for_message(PROD, lambda m: "asks to roll back" in m["text"])
    world.prod.clear_requests()
    denied = world.click(SRE2, PROD, buttons(request)["Deny"], ephemeral=False, message=request)
    result = world.outcome(denied)
    assert f":no_entry_sign: Denied by <@{SRE2}>: <@{SRE1}> asks to roll back" in result
    assert "was not run" in result
    again = world.click(SRE2, PROD, buttons(request)["Approve"], ephemeral=False, message=request)
    assert "already" in world.outcome(again)
    assert world.writes(world.prod) == []


def test_a_suspended_release_is_planned_from_helm_history(world: World) -> None:
    """While suspended, a HelmRelease's status.history is not kept: Helm's storage is asked."""
    world.start(rollback="helm")
    bump(world.dev, (HR, "HelmRelease", "flux-apps"), "podinfo", suspend=True)
    fake_helm.seed(world.helm_state, "flux-apps", "podinfo", [
        {"revision": 2, "status": "superseded", "chart": "podinfo-6.6.0"},
        {"revision": 3, "status": "superseded", "chart": "podinfo-6.7.1"},
        {"revision": 4, "status": "failed", "chart": "podinfo-6.7.2"},
    ], cluster="dev-1")  # fmt: skip
    time.sleep(0.3)
    plan = texts(world.view(SRE1, DEV, "rollback hr podinfo -n flux-apps"))
    assert "Now: revision 4 `podinfo@6.7.2` (failed)" in plan
    assert "Target: revision 3 `podinfo@6.7.1`" in plan
    calls = [json.loads(line) for line in world.helm_log.read_text().splitlines()]
    assert any(c[0] == "history" and c[-2:] == ["--", "podinfo"] for c in calls)


def test_an_approval_request_slack_refused_can_be_asked_for_again(world: World) -> None:
    """The approval request uses up its confirmation only once it is posted: when Slack
    refuses the post, the person is told why and the same form can be submitted again."""
    world.start()
    plan = world.view(SRE1, PROD, "rollback hr checkout -n flux-apps")
    confirm = world.click(SRE1, PROD, buttons(plan)["Confirm rollback"])
    world.slack.wait_for_call("views.update")  # the typed confirmation, filled once checked
    view = world.slack.views()[-1]
    world.slack.fail("chat.postMessage", "channel_not_found", status=200, times=1)
    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]
    refused = world.outcome(confirm)
    assert "Could not post the approval request: channel_not_found" in refused

    world.bot.client.submit_view(view["id"], {"typed": {"typed": "checkout"}}, user_id=SRE1)  # type: ignore[union-attr]
    request = world.slack.wait_for_message(PROD, lambda m: "asks to roll back" in m["text"])
    assert "<!subteam^S0SRE>: one of you must approve" in request["text"]
    assert world.writes(world.prod) == []
