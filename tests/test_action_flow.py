"""The remediation decision table, in-process: who gets which next step, in milliseconds.

Roles x confirmation modes x approvals x stale / busy / refused x Kubernetes RBAC, through
`ActionFlow` with the real `ActionService` and `ActionRunner`. The cluster is an in-memory
object store that answers like the watch cache; the end-to-end tests (test_remediation.py) run
the same flow through `fluxbot serve` against fake Slack and fake API servers.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import pytest

from bot.actions.flow import ActionFlow
from bot.actions.model import (
    Abandoned,
    ActionEvent,
    ActionRequest,
    ActionResult,
    AlreadyDone,
    AskReason,
    AskTypedName,
    AwaitApproval,
    Busy,
    Decided,
    Denied,
    Finished,
    Refused,
    ShowPlan,
    Snoozed,
    Stale,
    Started,
)
from bot.actions.runner import ActionRunner
from bot.actions.service import ActionService
from bot.config import FluxbotConfig
from bot.domain.action_lease import ActionLease, Claim, ClaimState
from bot.domain.action_rules import material_state
from bot.domain.fleet import ClusterTarget
from bot.domain.policy import Action, Actor
from bot.domain.status import FluxObject, ObjectRef, parse_flux_object
from bot.history.sqlite import SqliteHistory
from tests.flux_objects import condition, flux_object, snapshot

DEV = ClusterTarget("development", "dev-1")
PROD = ClusterTarget("production", "prod-1")
SRE = Actor("U0SRE", "sre1", groups=frozenset({"S0SRE"}), group_handles=frozenset({"sre"}))
SRE2 = Actor("U0SRE2", "sre2", groups=frozenset({"S0SRE"}), group_handles=frozenset({"sre"}))
OPS = Actor("U0OPS", "ops")
NOBODY = Actor("U0NOBODY", "nobody")
GUEST = Actor("U0GUEST", "guest", is_guest=True)
GONE = Actor("U0GONE", "gone", is_deleted=True)
APPS = ObjectRef("Kustomization", "flux-system", "apps")
PAUSED = ObjectRef("Kustomization", "flux-system", "paused")
CHECKOUT = ObjectRef("HelmRelease", "flux-apps", "checkout")


def _objects() -> list[dict[str, Any]]:
    failing = [condition("Ready", "False", "BuildFailed", "kustomize build failed")]
    release = flux_object(
        "HelmRelease",
        "checkout",
        "flux-apps",
        status={
            "history": [
                snapshot(5, "2.0.0", "failed", name="checkout"),
                snapshot(4, "1.9.0", "superseded", name="checkout"),
            ],
            "storageNamespace": "flux-apps",
        },
        conditions=[
            condition("Ready", "False", "UpgradeFailed", "Helm upgrade failed"),
            condition("Stalled", "True", "RetriesExceeded", "Failed after 3 attempt(s)"),
        ],
    )
    return [
        flux_object("GitRepository", "flux-system", conditions=[condition()]),
        flux_object("Kustomization", "apps", conditions=failing),
        flux_object("Kustomization", "paused", suspend=True, conditions=[condition()]),
        release,
    ]


class MemoryCluster:
    """Objects as the watch cache holds them, plus what a writer was asked to do."""

    def __init__(self) -> None:
        self.objects: dict[tuple[ClusterTarget, ObjectRef], FluxObject] = {}
        for target in (DEV, PROD):
            for raw in _objects():
                obj = parse_flux_object(raw)
                self.objects[(target, obj.ref)] = obj
        self.patches: list[tuple[ObjectRef, dict[str, object]]] = []
        self.events: list[tuple[ObjectRef, str, str]] = []
        self.rbac: set[tuple[str, str]] = set()  # (user, verb) the cluster allows

    def object(self, target: ClusterTarget, ref: ObjectRef) -> FluxObject | None:
        return self.objects.get((target, ref))

    def cluster_objects(self, target: ClusterTarget) -> Sequence[FluxObject]:
        return [o for (t, _), o in self.objects.items() if t == target]

    def wait_for(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        predicate: Callable[[FluxObject], bool],
        timeout: float,
    ) -> FluxObject | None:
        obj = self.object(target, ref)
        return obj if obj is not None and predicate(obj) else None

    def patch(self, target: ClusterTarget, ref: ObjectRef, body: dict[str, object]) -> None:
        self.patches.append((ref, body))

    def record_event(
        self,
        target: ClusterTarget,
        ref: ObjectRef,
        action: str,
        username: str,
        groups: Sequence[str],
        message: str,
        *,
        warning: bool = False,
    ) -> None:
        self.events.append((ref, action, username))

    def may(
        self, target: ClusterTarget, ref: ObjectRef, verb: str, user: str, groups: Sequence[str]
    ) -> tuple[bool, str]:
        return (user, verb) in self.rbac, "no RBAC rule"

    def claim(
        self, target: ClusterTarget, ref: ObjectRef, action_id: str, lease: ActionLease
    ) -> Claim:
        return Claim(ClaimState.CLAIMED)  # one process: claims across replicas are tested
        # through the real process in tests/test_action_hardening.py

    def hold(
        self, target: ClusterTarget, ref: ObjectRef, lease: ActionLease, renewed: object
    ) -> bool:
        return True


class Recorder:
    """An ActionSink that keeps what it was told."""

    def __init__(self) -> None:
        self.events: list[ActionEvent] = []
        self.done = threading.Event()

    def report(self, event: ActionEvent) -> None:
        self.events.append(event)
        if isinstance(event, Finished | Abandoned):
            self.done.set()


def _config(confirmation: str | None, approval: bool | None, sar: bool) -> FluxbotConfig:
    def actions(extra: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"suspend": ["sre"], "rollback": ["sre"]}
        if confirmation is not None:
            out["confirmation"] = confirmation
        if approval is not None:
            out["rollback_approval"] = approval
        if sar:
            out["kubernetes_authorization"] = {"mode": "subject-access-review"}
        return {**out, **extra}

    return FluxbotConfig.model_validate(
        {
            "roles": {"sre": {"groups": ["sre"]}, "operators": {"users": [OPS.id]}},
            "environments": {
                "development": {
                    "channel": "C0DEV",
                    "clusters": [{"context": "dev-1"}],
                    "actions": actions({"reconcile": ["operators", "sre"]}),
                },
                "production": {
                    "channel": "C0PROD",
                    "clusters": [{"context": "prod-1"}],
                    "actions": actions({"reconcile": ["sre"]}),
                },
            },
        }
    )


class Table:
    """One flow over one in-memory fleet; `gate` holds running actions until set."""

    def __init__(
        self, confirmation: str | None = None, approval: bool | None = None, sar: bool = False
    ) -> None:
        self.cluster = MemoryCluster()
        self.history = SqliteHistory(":memory:")
        self.service = ActionService(
            _config(confirmation, approval, sar), self.cluster, self.cluster, helm=_NoHelm()
        )
        self.gate = threading.Event()
        self.gate.set()
        self.ran: list[tuple[str, ActionRequest]] = []
        self.runner = ActionRunner(self._execute, workers=2)
        self.flow = ActionFlow(self.service, self.runner, self.history)

    def _execute(
        self, actor: Actor, request: ActionRequest, progress: Callable[[str], None]
    ) -> ActionResult:
        self.gate.wait(5)
        progress("working")
        self.ran.append((actor.id, request))
        return ActionResult(True, f"did {request.describe()}")

    def ask(
        self, actor: Actor, action: Action, ref: ObjectRef = APPS, target: ClusterTarget = DEV,
        nonce: str = "", **fields: Any,
    ) -> Any:  # fmt: skip
        request = ActionRequest(action, target, ref, **fields)
        return self.flow.next(actor, request, nonce, Recorder())

    def close(self) -> None:
        self.runner.shutdown(1)
        self.history.close()


class _NoHelm:
    def rollback(self, cluster: object, release: str, revision: int, namespace: str) -> str:
        raise AssertionError("the decision table never runs helm")

    def history(self, cluster: object, release: str, namespace: str) -> object:
        raise AssertionError("the decision table never runs helm")


@pytest.fixture
def table() -> Iterator[Table]:
    t = Table()
    yield t
    t.close()


ROLES = [
    (SRE, "development", True),
    (OPS, "development", True),
    (NOBODY, "development", False),
    (GUEST, "development", False),
    (GONE, "development", False),
    (OPS, "production", False),
]


@pytest.mark.parametrize(("actor", "environment", "allowed"), ROLES)
@pytest.mark.parametrize("confirmation", ["none", "dialog", "typed"])
def test_reconcile_by_role_and_confirmation_mode(
    actor: Actor, environment: str, allowed: bool, confirmation: str
) -> None:
    table = Table(confirmation)
    try:
        target = DEV if environment == "development" else PROD
        step = table.ask(actor, Action.RECONCILE, target=target, nonce="n1")
        if not allowed:
            assert isinstance(step, Denied)
        elif confirmation == "typed":
            assert isinstance(step, AskTypedName)
            confirmed = table.ask(actor, Action.RECONCILE, target=target, confirmed=True)
            assert isinstance(confirmed, Started)
        else:
            # A dialog confirms in the client, before the click reaches fluxbot.
            assert isinstance(step, Started)
    finally:
        table.close()


@pytest.mark.parametrize(("confirmation", "typed"), [("none", False), ("dialog", False),
                                                     ("typed", True)])  # fmt: skip
def test_suspend_always_asks_for_a_reason_and_the_name_when_typed(
    confirmation: str, typed: bool
) -> None:
    table = Table(confirmation)
    try:
        step = table.ask(SRE, Action.SUSPEND)
        assert isinstance(step, AskReason)
        assert step.typed is typed
        given = table.ask(SRE, Action.SUSPEND, reason="freeze", confirmed=True)
        assert isinstance(given, Started)
        assert isinstance(table.ask(OPS, Action.SUSPEND), Denied)
    finally:
        table.close()


@pytest.mark.parametrize("approval", [True, False])
@pytest.mark.parametrize("confirmation", ["dialog", "typed"])
def test_rollback_plan_then_confirmation_then_approval(approval: bool, confirmation: str) -> None:
    table = Table(confirmation, approval)
    try:
        plan = table.ask(SRE, Action.ROLLBACK, ref=CHECKOUT, target=PROD)
        assert isinstance(plan, ShowPlan)
        assert plan.plan.target.version == 4
        assert plan.needs_approval is approval
        planned = plan.request.but(planned=True)
        step = table.flow.next(SRE, planned, "p1", Recorder())
        if confirmation == "typed":
            assert isinstance(step, AskTypedName)
            step = table.flow.next(SRE, planned.but(confirmed=True), "p1", Recorder())
        if approval:
            assert isinstance(step, AwaitApproval)
            assert step.request.requester == SRE.id
            assert table.ran == []
        else:
            assert isinstance(step, Started)
    finally:
        table.close()


def test_approval_needs_a_second_person_who_may_roll_back(table: Table) -> None:
    request = ActionRequest(
        Action.ROLLBACK, PROD, CHECKOUT, rollback_to=4, planned=True, confirmed=True,
        requester=SRE.id,
    )  # fmt: skip
    own = table.flow.approve(SRE, SRE, request, "a1", Recorder())
    assert isinstance(own, Refused)
    assert "cannot approve your own request" in own.message
    outsider = table.flow.approve(OPS, SRE, request, "a1", Recorder())
    assert isinstance(outsider, Denied)
    assert "rollback in production needs the role sre" in outsider.message
    sink = Recorder()
    approved = table.flow.approve(SRE2, SRE, request, "a1", sink)
    assert isinstance(approved, Started)
    assert sink.done.wait(5)
    ((who, ran),) = table.ran
    assert (who, ran.approved_by, ran.requester) == (SRE.id, SRE2.id, SRE.id)
    again = table.flow.approve(SRE2, SRE, request, "a1", Recorder())
    assert isinstance(again, AlreadyDone)


def test_deny_is_decided_once_and_only_by_someone_who_may(table: Table) -> None:
    request = ActionRequest(Action.ROLLBACK, PROD, CHECKOUT, requester=SRE.id, planned=True)
    assert isinstance(table.flow.deny(OPS, request, "d1"), Denied)
    decided = table.flow.deny(SRE2, request, "d1")
    assert isinstance(decided, Decided)
    assert decided.by == SRE2.id
    assert isinstance(table.flow.deny(SRE2, request, "d1"), AlreadyDone)
    # A denied request cannot be approved afterwards.
    assert isinstance(table.flow.approve(SRE2, SRE, request, "d1", Recorder()), AlreadyDone)


def test_stale_refused_and_gone_stop_before_anything_runs(table: Table) -> None:
    apps = table.cluster.object(DEV, APPS)
    assert apps is not None
    stale = table.ask(OPS, Action.RECONCILE, state="0000000000")
    assert isinstance(stale, Stale)
    assert "changed since that message" in stale.message
    fresh = table.ask(OPS, Action.RECONCILE, state=material_state(apps))
    assert isinstance(fresh, Started)

    suspended = table.ask(OPS, Action.RECONCILE, ref=PAUSED)
    assert isinstance(suspended, Refused)
    assert "is suspended; resume it first" in suspended.message
    not_suspended = table.ask(SRE, Action.RESUME)
    assert isinstance(not_suspended, Refused)
    assert "it is neither suspended nor rolled back" in not_suspended.message
    gone = table.ask(OPS, Action.RECONCILE, ref=ObjectRef("Kustomization", "flux-system", "x"))
    assert isinstance(gone, Refused)
    assert "is not on dev-1" in gone.message
    table.gate.wait()
    assert table.cluster.patches == []


def test_one_action_per_object_and_each_button_once(table: Table) -> None:
    table.gate.clear()
    first = table.ask(OPS, Action.RECONCILE, nonce="b1")
    assert isinstance(first, Started)
    busy = table.ask(SRE, Action.RECONCILE, nonce="b2")
    assert isinstance(busy, Busy)
    assert "already running (reconcile by <@U0OPS>)" in busy.message
    other = table.ask(OPS, Action.RECONCILE, ref=CHECKOUT, nonce="b3")
    assert isinstance(other, Started)  # another object is not held up
    table.gate.set()
    deadline = time.monotonic() + 5
    while table.runner.holder(DEV, APPS) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert isinstance(table.ask(OPS, Action.RECONCILE, nonce="b1"), AlreadyDone)


@pytest.mark.parametrize(("granted", "expected"), [(True, Started), (False, Denied)])
def test_kubernetes_rbac_is_asked_after_the_role(granted: bool, expected: type) -> None:
    table = Table("none", sar=True)
    try:
        if granted:
            table.cluster.rbac.add(("slack:U0OPS", "reconcile"))
        step = table.ask(OPS, Action.RECONCILE)
        assert isinstance(step, expected)
        if not granted:
            assert "Not allowed by Kubernetes RBAC: slack:U0OPS may not reconcile" in step.message
        # The role is checked first: no review for someone without a role.
        assert isinstance(table.ask(NOBODY, Action.RECONCILE), Denied)
    finally:
        table.close()


def test_snooze_passes_the_same_gate_and_is_audited(table: Table) -> None:
    request = ActionRequest(Action.RECONCILE, DEV, APPS)
    denied = table.flow.snooze(NOBODY, request, dt.timedelta(hours=4))
    assert isinstance(denied, Denied)
    assert "Not allowed to snooze: reconcile in development needs the role" in denied.message
    snoozed = table.flow.snooze(OPS, request, dt.timedelta(hours=4))
    assert isinstance(snoozed, Snoozed)
    assert table.cluster.events == [(APPS, "snooze", "ops")]
    (saved,) = table.history.snoozes("development", dt.datetime.now(dt.UTC))
    assert saved.by == "ops"


def test_the_runner_reports_progress_and_the_outcome_to_its_sink(table: Table) -> None:
    sink = Recorder()
    step = table.flow.next(OPS, ActionRequest(Action.RECONCILE, DEV, APPS), "s1", sink)
    assert isinstance(step, Started)
    assert sink.done.wait(5)
    kinds = [type(e).__name__ for e in sink.events]
    assert kinds == ["Running", "Progress", "Finished"]


def test_an_action_waiting_for_a_worker_says_queued_at_once(table: Table) -> None:
    """Both workers are writing (held here): a third action says it is queued right away,
    then runs when one is free."""
    table.gate.clear()
    for ref in (APPS, CHECKOUT):
        table.runner.start(OPS, ActionRequest(Action.RECONCILE, DEV, ref), "", Recorder())
    waiting = Recorder()
    table.runner.start(OPS, ActionRequest(Action.RECONCILE, DEV, PAUSED), "", waiting)
    deadline = time.monotonic() + 5
    while not waiting.events and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [type(e).__name__ for e in waiting.events] == ["Queued"]
    table.gate.set()
    assert waiting.done.wait(5)
    assert [type(e).__name__ for e in waiting.events] == [
        "Queued",
        "Running",
        "Progress",
        "Finished",
    ]


def test_shutdown_tells_each_sink_its_action_was_abandoned(table: Table) -> None:
    table.gate.clear()
    sink = Recorder()
    table.flow.next(OPS, ActionRequest(Action.RECONCILE, DEV, APPS), "s2", sink)
    table.runner.shutdown(0.05)
    assert any(isinstance(e, Abandoned) for e in sink.events)
    refused = table.ask(OPS, Action.RECONCILE, ref=CHECKOUT, nonce="s3")
    assert isinstance(refused, Busy)
    assert "restarting" in refused.message
    table.gate.set()


def test_a_suspension_made_by_the_flux_operator_shows_who() -> None:
    """The Flux Operator writes fluxcd.controlplane.io/suspendedBy; fluxbot reads it too."""
    raw = flux_object("Kustomization", "infra", suspend=True, conditions=[condition()])
    raw["metadata"]["annotations"] = {"fluxcd.controlplane.io/suspendedBy": "jane@example.com"}
    obj = parse_flux_object(raw)
    assert obj.suspension is not None
    assert obj.suspension.by == "jane@example.com"


def test_with_source_skips_static_sources_and_refuses_what_the_cli_cannot_reconcile() -> None:
    """cmd/flux/reconcile_with_source.go and reconcile_source_helm.go (isStatic)."""
    from bot.domain.action_rules import Refused as Refusal
    from bot.domain.action_rules import index_objects, with_source_plan

    repo = flux_object("HelmRepository", "charts",
                       spec={"type": "oci", "url": "oci://ghcr.io/acme/charts"})  # fmt: skip
    chart = flux_object("HelmChart", "flux-apps-podinfo",
                        spec={"sourceRef": {"kind": "HelmRepository", "name": "charts"}},
                        conditions=[condition()])  # fmt: skip
    release = flux_object(
        "HelmRelease", "podinfo", "flux-apps",
        spec={"chart": {"spec": {"chart": "podinfo", "sourceRef": {
            "kind": "HelmRepository", "name": "charts", "namespace": "flux-system"}}}},
        conditions=[condition()],
    )  # fmt: skip
    objects = index_objects(parse_flux_object(o) for o in (repo, chart, release))
    todo, skipped = with_source_plan(parse_flux_object(release), objects)
    assert [r.kind for r in todo] == ["HelmChart"]
    assert [r.kind for r in skipped] == ["HelmRepository"]
    static = parse_flux_object(repo)
    with pytest.raises(Refusal, match="reconciliation not supported by the object"):
        with_source_plan(static, objects)

    source = {"sourceRef": {"kind": "ExternalArtifact", "name": "x"}}
    external = flux_object("Kustomization", "gen", conditions=[condition()], spec=source)
    with pytest.raises(Refusal, match="cannot reconcile source of kind ExternalArtifact"):
        with_source_plan(parse_flux_object(external), objects)


@pytest.mark.parametrize(("target", "typed"), [(PROD, True), (DEV, False)])
def test_resume_after_a_rollback_needs_the_typed_name_in_production(
    target: ClusterTarget, typed: bool
) -> None:
    table = Table("dialog")
    try:
        raw = _objects()[3]
        raw["metadata"]["annotations"] = {
            "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
            "fluxbot.io/rolled-back-from": "2.0.0",
        }
        table.cluster.objects[(target, CHECKOUT)] = parse_flux_object(raw)
        step = table.ask(SRE, Action.RESUME, ref=CHECKOUT, target=target)
        if typed:
            assert isinstance(step, AskTypedName)
            assert "it was 2.0.0 when rolled back" in step.warning
        else:
            assert isinstance(step, Started)
    finally:
        table.close()
