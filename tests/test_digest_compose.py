"""What a digest says: root causes, suspensions, changes, and silence when all is well."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.domain.action_rules import material_state
from bot.domain.digest import compose
from bot.domain.digest_words import headline
from bot.domain.fleet import CacheState, ClusterProblem, ClusterStatus, Freshness, ProblemKind
from bot.domain.history import ActionRecord, Snooze
from bot.domain.status import parse_flux_object
from bot.domain.transitions import Change, Transition
from bot.render.digest_text import digest_record, render_digest
from tests.flux_objects import condition, flux_object

NOW = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)
SINCE = NOW - dt.timedelta(days=1)
FAIL = condition("Ready", "False", "GitOperationFailed", "authentication required")


def _ks(name: str, source: str = "platform", **spec: Any) -> dict[str, Any]:
    ready = spec.pop("ready", True)
    conditions = [condition()] if ready else [condition("Ready", "False", "ArtifactFailed", "x")]
    return flux_object(
        "Kustomization",
        name,
        spec={"sourceRef": {"kind": "GitRepository", "name": source}, **spec},
        conditions=conditions,
    )


def _cluster(name: str, *objects: dict[str, Any], **kw: Any) -> ClusterStatus:
    return ClusterStatus("production", name, tuple(parse_flux_object(o) for o in objects), **kw)


def _t(
    change: Change,
    name: str,
    at_hours: float,
    old: str = "",
    new: str = "",
    kind: str = "Kustomization",
) -> Transition:
    return Transition(
        "production", "prod-eu-1", kind, "flux-system", name, change,
        SINCE + dt.timedelta(hours=at_hours), old, new, "msg",
    )  # fmt: skip


BROKEN_FLEET = _cluster(
    "prod-eu-1",
    flux_object("GitRepository", "platform", conditions=[FAIL]),
    flux_object("GitRepository", "fleet", conditions=[condition()]),
    _ks("infra", ready=False),
    _ks("configs", ready=False, dependsOn=[{"name": "infra"}]),
    _ks("apps", source="fleet", ready=False, dependsOn=[{"name": "configs"}]),
    _ks("healthy", source="fleet"),
    flux_object(
        "HelmRepository", "charts", conditions=[condition("Ready", "False", "Failed", "404")]
    ),
    flux_object(
        "HelmChart",
        "flux-apps-podinfo",
        spec={"sourceRef": {"kind": "HelmRepository", "name": "charts"}},
        conditions=[condition()],
    ),
    flux_object(
        "HelmRelease",
        "podinfo",
        "flux-apps",
        spec={
            "chart": {
                "spec": {
                    "chart": "podinfo",
                    "sourceRef": {
                        "kind": "HelmRepository",
                        "name": "charts",
                        "namespace": "flux-system",
                    },
                }
            }
        },
        conditions=[condition("Ready", "False", "ArtifactFailed", "chart not ready")],
    ),
)


def test_failures_are_grouped_by_root_cause_with_their_dependents() -> None:
    digest = compose("production", [BROKEN_FLEET], [], [], [], {}, NOW, SINCE)
    items = [(i.root.kind, i.root.name, [d.name for d in i.dependents]) for i in digest.attention]
    assert items == [
        # The broken Git source, and everything failing because of it, directly or not.
        ("GitRepository", "platform", ["apps", "configs", "infra"]),
        # A HelmRelease whose chart is fine but whose chart's repository is not.
        ("HelmRepository", "charts", ["podinfo"]),
    ]
    text = render_digest(digest)
    assert (
        "GitRepository flux-system/platform on prod-eu-1: authentication required -> 3 dependents"
        in text
    )


def test_failing_since_comes_from_history_else_from_the_ready_condition() -> None:
    since = NOW - dt.timedelta(hours=30)
    key = ("prod-eu-1", "GitRepository", "flux-system", "platform")
    digest = compose("production", [BROKEN_FLEET], [], [], [], {key: since}, NOW, SINCE)
    assert digest.attention[0].since == since
    assert digest.attention[1].since == dt.datetime(2026, 11, 25, 8, tzinfo=dt.UTC)


def test_a_snoozed_root_is_hidden_until_its_state_changes() -> None:
    platform = next(o for o in BROKEN_FLEET.objects if o.name == "platform")
    snooze = Snooze("production", "prod-eu-1", "GitRepository", "flux-system", "platform",
                    NOW + dt.timedelta(hours=4), material_state(platform), "alice")  # fmt: skip
    digest = compose("production", [BROKEN_FLEET], [], [], [snooze], {}, NOW, SINCE)
    assert [i.root.name for i in digest.attention] == ["charts"]
    assert digest.snoozed == 4
    stale_snooze = Snooze(
        "production", "prod-eu-1", "GitRepository", "flux-system", "platform",
        NOW + dt.timedelta(hours=4), "other", "alice",
    )  # fmt: skip
    changed = compose("production", [BROKEN_FLEET], [], [], [stale_snooze], {}, NOW, SINCE)
    assert [i.root.name for i in changed.attention] == ["platform", "charts"]
    expired = Snooze("production", "prod-eu-1", "GitRepository", "flux-system", "platform",
                     NOW - dt.timedelta(minutes=1), material_state(platform), "alice")  # fmt: skip
    assert (
        len(compose("production", [BROKEN_FLEET], [], [], [expired], {}, NOW, SINCE).attention) == 2
    )


def test_suspensions_say_who_why_until_when_and_when_overdue() -> None:
    suspended = flux_object("Kustomization", "payments", suspend=True, conditions=[condition()])
    suspended["metadata"]["annotations"] = {
        "fluxbot.io/suspended-by": "alice",
        "fluxbot.io/suspended-at": "2026-11-25T10:00:00Z",
        "fluxbot.io/suspend-reason": "release freeze",
        "fluxbot.io/suspended-until": "2026-11-26T08:00:00Z",
    }
    digest = compose("production", [_cluster("prod-eu-1", suspended)], [], [], [], {}, NOW, SINCE)
    (item,) = digest.suspended
    assert item.overdue
    assert not digest.healthy
    text = render_digest(digest)
    assert (
        "Kustomization flux-system/payments on prod-eu-1 by alice since 2026-11-25 10:00 UTC: "
        "release freeze" in text
    )
    assert "OVERDUE" in text


def test_changes_group_revisions_and_separate_flapping_from_news() -> None:
    rev = "main@sha1:" + "a" * 40
    transitions = [
        *[_t(Change.REVISION, f"app-{i}", 1, "main@sha1:" + "b" * 40, rev) for i in range(12)],
        _t(Change.REVISION, "app-0", 2, rev, "main@sha1:" + "c" * 40),
        _t(Change.REVISION, "podinfo", 3, "6.6.0", "6.7.1", kind="HelmRelease"),
        _t(Change.FAILING, "infra", 4),
        _t(Change.RECOVERED, "monitoring", 5),
        *[_t(Change.FAILING, "flappy", h) for h in (6, 7, 8)],
        *[_t(Change.RECOVERED, "flappy", h + 0.5) for h in (6, 7, 8)],
        _t(Change.FAILING, "too-old", -1),
    ]
    action = ActionRecord(
        NOW - dt.timedelta(hours=1), "production", "prod-eu-1", "Kustomization",
        "flux-system", "infra", "reconcile", "alice", True, "Reconciled",
    )  # fmt: skip
    digest = compose("production", [], transitions, [action], [], {}, NOW, SINCE)
    changes = digest.changes
    assert [(g.new[-4:], len(g.objects)) for g in changes.revisions] == [("aaaa", 11), ("cccc", 1)]
    assert [(u.name, u.old, u.new) for u in changes.chart_upgrades] == [
        ("podinfo", "6.6.0", "6.7.1")
    ]
    assert [i.root.name for i in changes.new_failures] == ["infra"]
    assert [i.root.name for i in changes.recoveries] == ["monitoring"]
    assert changes.flapping == ((("prod-eu-1", "Kustomization", "flux-system", "flappy"), 3),)
    assert [a.user for a in changes.actions] == ["alice"]
    record = digest_record(digest)
    assert record["changes"]["chart_upgrades"][0]["new"] == "6.7.1"
    assert "alice ran reconcile on Kustomization flux-system/infra (prod-eu-1)" in render_digest(
        digest
    )


def test_an_all_well_environment_is_one_line() -> None:
    digest = compose("production", [_cluster("prod-eu-1", _ks("apps"))], [], [], [], {}, NOW, SINCE)
    assert digest.healthy
    assert (
        headline(digest) == "production: all 1 objects ready, no changes since 2026-11-25 09:00 UTC"
    )


def test_clusters_that_could_not_be_read_are_listed_with_since_when() -> None:
    down = ClusterStatus(
        "production", "prod-us-1", (),
        (ClusterProblem(ProblemKind.UNREACHABLE, "cannot reach the API server"),),
    )  # fmt: skip
    stale = _cluster(
        "prod-eu-1", _ks("apps"),
        freshness=Freshness(CacheState.STALE, NOW - dt.timedelta(hours=2), "timed out"),
    )  # fmt: skip
    digest = compose("production", [stale, down], [], [], [], {}, NOW, SINCE)
    assert [c.cluster for c in digest.unreadable] == ["prod-eu-1", "prod-us-1"]
    assert not digest.healthy
    text = render_digest(digest)
    assert "prod-us-1: cannot read (never read by fluxbot): cannot reach the API server" in text
    assert "(stale since 2026-11-26 07:00 UTC: timed out)" in text


def test_a_drifted_release_is_ready_and_counted_as_drifted() -> None:
    # helm-controller, drift detection in `warn` mode: Ready stays True, Drifted=True says the
    # cluster no longer matches the release (reason DriftDetected).
    drifted = flux_object(
        "HelmRelease",
        "podinfo",
        "flux-apps",
        conditions=[
            condition("Ready", "True", "UpgradeSucceeded", "Helm upgrade succeeded"),
            condition(
                "Drifted",
                "True",
                "DriftDetected",
                "Cluster state of release flux-apps/podinfo.v3 has drifted from the desired "
                "state: Deployment/flux-apps/podinfo changed (1 change)",
            ),
        ],
    )
    cluster = _cluster("prod-eu-1", drifted, _ks("apps"))
    (release, _) = cluster.objects
    assert release.health.value == "ready"
    assert release.drifted
    digest = compose("production", [cluster], [], [], [], {}, NOW, SINCE)
    assert not digest.attention
    assert [(d.cluster, d.obj.name) for d in digest.drifted] == [("prod-eu-1", "podinfo")]
    assert not digest.healthy
    assert "1 drifted" in headline(digest)
    assert "  - HelmRelease flux-apps/podinfo on prod-eu-1" in render_digest(digest)
    assert digest_record(digest)["drifted"] == [
        {"cluster": "prod-eu-1", "namespace": "flux-apps", "name": "podinfo"}
    ]
