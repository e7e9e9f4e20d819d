"""What a digest tells its reader first: the problems by name, what changed grouped by cause.

One realistic fleet after a bad day: a revoked deploy key (a GitRepository and the two
Kustomizations built from it), a HelmRelease whose chart upgrade failed while the old release
still runs, another that upgraded fine, a fixed repository and what recovered with it, a
commit rolled out to many objects, a cluster that cannot be read, and an overdue suspension.
Both Slack messages are checked against Block Kit's limits by the fake Slack's validator.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
from pathlib import Path
from typing import Any

from bot.domain.digest import Digest, compose
from bot.domain.digest_words import headline
from bot.domain.fleet import ClusterProblem, ClusterStatus, ProblemKind
from bot.domain.status import Suspension, parse_flux_object
from bot.domain.transitions import Change, Transition
from bot.render.digest_text import digest_record, render_digest
from bot.slack.digest_render import details_message, single_message, summary_message
from tests.bot_process import texts
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object, snapshot

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
SINCE = NOW - dt.timedelta(days=1)
SHA = "696f056df216eea4f9401adbee0ff744d4df390f"
AUTH = condition(
    "Ready", "False", "GitOperationFailed",
    "failed to checkout and determine revision: unable to clone "
    "'ssh://git@github.com/acme/platform': ssh: handshake failed: ssh: unable to authenticate, "
    "attempted methods [none publickey], no supported methods remain",
)  # fmt: skip
# helm-controller's message for a failed upgrade (internal/reconcile/upgrade.go
# fmtUpgradeFailure), with the Kubernetes error Helm passes on.
UPGRADE_FAILED = condition(
    "Ready", "False", "UpgradeFailed",
    "Helm upgrade failed for release monitoring/kube-prometheus-stack with chart "
    "kube-prometheus-stack@66.3.0: cannot patch \"kube-prometheus-stack-grafana\" with kind "
    "Deployment: Deployment.apps \"kube-prometheus-stack-grafana\" is invalid: spec.selector: "
    "Invalid value: v1.LabelSelector{MatchLabels:map[string]string{\"app.kubernetes.io/name\":"
    "\"grafana\"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: field is immutable",
)  # fmt: skip


def _ks(name: str, source: str, ready: bool = True) -> dict[str, Any]:
    ready_condition = (
        condition()
        if ready
        else condition("Ready", "False", "ArtifactFailed", "Source artifact not found")
    )
    return flux_object(
        "Kustomization",
        name,
        spec={"sourceRef": {"kind": "GitRepository", "name": source}},
        conditions=[ready_condition],
        status={"lastAppliedRevision": f"main@sha1:{SHA}"},
    )


def _hr(name: str, history: list[dict[str, Any]], ready: dict[str, Any]) -> dict[str, Any]:
    return flux_object(
        "HelmRelease", name, "monitoring", conditions=[ready], status={"history": history}
    )


def _t(change: Change, kind: str, name: str, hours: float, **kw: Any) -> Transition:
    namespace = "monitoring" if kind == "HelmRelease" else "flux-system"
    return Transition(
        "production", "prod-eu-1", kind, namespace, name, change,
        SINCE + dt.timedelta(hours=hours), **kw,
    )  # fmt: skip


def _fleet() -> list[ClusterStatus]:
    objects = [
        flux_object(
            "GitRepository", "platform", spec={"url": "ssh://git@github.com/acme/platform"},
            conditions=[AUTH],
        ),
        _ks("infra", "platform", ready=False),
        _ks("configs", "platform", ready=False),
        flux_object(
            "GitRepository", "fleet", spec={"url": "https://github.com/acme/fleet.git"},
            conditions=[condition()],
            status={
                "artifact": {
                    "revision": f"main@sha1:{SHA}",
                    "path": "gitrepository/flux-system/fleet/696f056d.tar.gz",
                    "url": "http://source-controller.flux-system.svc/fleet.tar.gz",
                    "digest": "sha256:" + "c" * 64,
                    "lastUpdateTime": "2026-11-26T08:00:00Z",
                }
            },
        ),
        *[_ks(f"app-{i}", "fleet") for i in range(11)],
        _hr(
            "kube-prometheus-stack",
            [
                snapshot(4, "66.3.0", "failed", name="kube-prometheus-stack"),
                snapshot(3, "65.1.0", "deployed", name="kube-prometheus-stack"),
            ],
            UPGRADE_FAILED,
        ),
        _hr(
            "podinfo",
            [snapshot(2, "6.7.1", "deployed"), snapshot(1, "6.6.0", "superseded")],
            condition(),
        ),
        flux_object(
            "Kustomization", "legacy", suspend=True, conditions=[condition()],
        ),
    ]  # fmt: skip
    parsed = [parse_flux_object(o) for o in objects]
    # Suspended by alice through fluxbot until yesterday: overdue.
    parsed[-1] = dataclasses.replace(
        parsed[-1], suspension=Suspension("alice", NOW - dt.timedelta(days=3), "freeze", SINCE)
    )
    down = ClusterStatus(
        "production", "prod-us-1", (),
        (ClusterProblem(ProblemKind.UNREACHABLE, "cannot reach the API server: refused"),),
    )  # fmt: skip
    return [ClusterStatus("production", "prod-eu-1", tuple(parsed)), down]


def _transitions() -> list[Transition]:
    moved = [
        _t(Change.REVISION, "Kustomization", f"app-{i}", 2, old="main@sha1:" + "a" * 40,
           new=f"main@sha1:{SHA}")
        for i in range(11)
    ]  # fmt: skip
    return [
        *moved,
        _t(Change.REVISION, "GitRepository", "fleet", 1.5, old="main@sha1:" + "a" * 40,
           new=f"main@sha1:{SHA}"),
        _t(Change.FAILING, "GitRepository", "platform", 21, message=AUTH["message"]),
        _t(Change.FAILING, "Kustomization", "infra", 21.1, message="Source artifact not found"),
        _t(Change.FAILING, "Kustomization", "configs", 21.1, message="Source artifact not found"),
        _t(Change.REVISION, "HelmRelease", "kube-prometheus-stack", 5, old="65.1.0", new="66.3.0"),
        _t(Change.FAILING, "HelmRelease", "kube-prometheus-stack", 5, message="upgrade failed"),
        _t(Change.REVISION, "HelmRelease", "podinfo", 4, old="6.6.0", new="6.7.1"),
        # A fixed source: fleet recovered, and the Kustomizations built from it with it.
        _t(Change.FAILING, "GitRepository", "fleet", 0.5, message="auth"),
        _t(Change.FAILING, "Kustomization", "app-0", 0.6, message="x"),
        _t(Change.FAILING, "Kustomization", "app-1", 0.6, message="x"),
        _t(Change.RECOVERED, "GitRepository", "fleet", 1.4),
        _t(Change.RECOVERED, "Kustomization", "app-0", 1.6),
        _t(Change.RECOVERED, "Kustomization", "app-1", 1.6),
    ]  # fmt: skip


def _digest() -> Digest:
    since = {("prod-eu-1", "GitRepository", "flux-system", "platform"): NOW - dt.timedelta(hours=3)}
    return compose("production", _fleet(), _transitions(), [], [], since, NOW, SINCE)


def _preview(name: str, payload: dict[str, Any]) -> None:
    """With FLUXBOT_PREVIEW_DIR set, keep the message for /work/shared/tools/blockkit-preview."""
    where = os.environ.get("FLUXBOT_PREVIEW_DIR")
    if where:
        Path(where, f"{name}.json").write_text(json.dumps(payload, indent=2))


def test_the_top_level_message_names_the_problems_most_urgent_first() -> None:
    digest = _digest()
    summary = summary_message(digest, details_in_thread=True)
    _preview("digest-summary", {"text": summary.text, "blocks": summary.blocks})
    assert validate_blocks(summary.blocks) == []
    shown = texts({"text": "", "blocks": summary.blocks})
    lines = [line for line in shown.splitlines() if line.startswith(":")]
    # The unreadable cluster first, then root causes, the biggest first; three, then a count.
    assert lines[1].startswith(":warning: *prod-us-1* cannot be read")
    assert "GitRepository `flux-system/platform` on *prod-eu-1*" in lines[2]
    assert "unable to authenticate" in lines[2]
    assert "(+2 failing because of it) · failing 3h, *new*" in lines[2]
    assert "HelmRelease `monitoring/kube-prometheus-stack`" in lines[3]
    assert "field is immutable" in lines[3]
    assert "_… and 1 more problem(s); all in the thread_" in shown
    # What was applied, shortened as flux get does, with the commit one click away.
    assert (
        f"`main@sha1:696f056d` (<https://github.com/acme/fleet/commit/{SHA}|commit>) applied to "
        "12 object(s) on prod-eu-1: GitRepository `fleet`, Kustomization `app-0`, "
        "Kustomization `app-1` and 9 more"
    ) in shown
    assert "Upgraded `podinfo` 6.7.1" in shown
    # Zero counts are dropped.
    assert " 0 " not in shown
    # The notification says the same in one line.
    assert summary.text == (
        "production: prod-us-1 cannot be read; platform on prod-eu-1: unable to authenticate, "
        "attempted methods [none publickey],…; kube-prometheus-stack on prod-eu-1: "
        'Deployment.apps "kube-prometheus-stack-grafana": spec.selec… and 1 more · '
        "applied main@sha1:696f056d to 12 objects on prod-eu-1 (+1) · 23 changes"
    )
    assert "\n" not in summary.text


def test_a_failed_upgrade_is_a_failure_and_changes_are_grouped_by_cause() -> None:
    digest = _digest()
    changes = digest.changes
    assert [(u.name, u.old, u.new) for u in changes.chart_upgrades] == [
        ("podinfo", "6.6.0", "6.7.1")
    ]
    failures = {i.root.name: i for i in changes.new_failures}
    assert failures["kube-prometheus-stack"].failed_upgrade == "66.3.0 failed, 65.1.0 still running"
    assert [d.name for d in failures["platform"].dependents] == ["configs", "infra"]
    (recovered,) = changes.recoveries
    assert (recovered.root.name, [d.name for d in recovered.dependents]) == (
        "fleet",
        ["app-0", "app-1"],
    )
    details = details_message(digest, None)
    _preview("digest-details", {"text": details.text, "blocks": details.blocks, "thread_ts": "1"})
    assert validate_blocks(details.blocks) == []
    text = texts({"text": "", "blocks": details.blocks})
    assert (
        "new failure: HelmRelease `monitoring/kube-prometheus-stack` on prod-eu-1: "
        "*66.3.0 failed, 65.1.0 still running*"
    ) in text
    assert "upgraded HelmRelease `monitoring/podinfo` on prod-eu-1: chart 6.6.0 → 6.7.1" in text
    assert (
        "recovered: GitRepository `flux-system/fleet` on prod-eu-1\n"
        "      → 2 recovered with it: Kustomization `app-0`, Kustomization `app-1`"
    ) in text
    # A long Kubernetes error leads with its cause and object; the struct literal is gone.
    assert (
        "HelmRelease* `monitoring/kube-prometheus-stack` on *prod-eu-1*: Deployment.apps "
        '"kube-prometheus-stack-grafana": spec.selector: field is immutable'
    ) in text
    assert "MatchLabels" not in text


def test_the_terminal_and_json_say_the_same_without_cutting() -> None:
    digest = _digest()
    printed = render_digest(digest)
    assert printed.splitlines()[0] == headline(digest)
    assert (
        "  ! prod-us-1 cannot be read (since unknown): cannot reach the API server: refused"
        in printed
    )
    assert "66.3.0 failed, 65.1.0 still running" in printed
    record = digest_record(digest)
    assert [p["kind"] for p in record["problems"]] == [
        "unreadable", "failing", "failing", "overdue",
    ]  # fmt: skip
    (group,) = record["changes"]["revisions"]
    assert group["link"] == f"https://github.com/acme/fleet/commit/{SHA}"
    assert group["short"] == "main@sha1:696f056d"


def test_in_one_message_the_problems_come_first_and_it_fits_slack() -> None:
    digest = _digest()
    message = single_message(digest, None)
    _preview("digest-single", {"text": message.text, "blocks": message.blocks})
    assert validate_blocks(message.blocks) == []
    shown = texts({"text": "", "blocks": message.blocks})
    assert shown.index("prod-us-1* cannot be read") < shown.index("*Needs attention*")
    assert "_… and 1 more problem(s); all below_" in shown


def test_a_huge_digest_is_cut_with_counts_and_stays_within_block_kit_limits() -> None:
    failing = condition("Ready", "False", "ReconciliationFailed", "apply failed: " + "x" * 400)
    objects = tuple(
        parse_flux_object(flux_object("Kustomization", f"app-{i:03}", conditions=[failing]))
        for i in range(300)
    )
    transitions = [
        _t(Change.FAILING, "Kustomization", f"app-{i:03}", 1 + i / 100, message="y" * 300)
        for i in range(300)
    ]
    digest = compose(
        "production", [ClusterStatus("production", "prod-eu-1", objects)], transitions,
        [], [], {}, NOW, SINCE,
    )  # fmt: skip
    for message in (details_message(digest, None), single_message(digest, None)):
        assert validate_blocks(message.blocks) == []
        assert len(message.blocks) <= 49  # one left for the preview's note
        shown = texts({"text": "", "blocks": message.blocks})
        assert "more root cause(s); `/flux status --failing` lists them" in shown
        assert "more new failure(s); `/flux status --failing` lists what still fails" in shown
