"""An action's lease on its object, written through the real Kubernetes client to a fake API
server: claimed once, refused while another is live, free once expired, renewed while the
action runs and given up after, never touching a lease another replica took over.

The cross-replica behaviour through two `fluxbot serve` processes is in
tests/test_action_hardening.py; this file covers the writer and the renewals they rely on.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.actions.leases import LeaseKeeper
from bot.config import FluxbotConfig
from bot.domain.action_lease import ACTION_LEASE, ActionLease, ClaimState
from bot.domain.fleet import ClusterTarget
from bot.domain.status import ACTION_ID, ObjectRef
from bot.kube.cache import FleetCache
from bot.kube.writer import KubeWriter
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.flux_objects import condition, flux_object

TARGET = ClusterTarget("production", "prod-1")
APPS = ObjectRef("Kustomization", "flux-system", "apps")
KS = ("kustomize.toolkit.fluxcd.io/v1", "Kustomization", "flux-system", "apps")


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet(["prod-1"])
    with fleet:
        fleet["prod-1"].apply(flux_object("Kustomization", "apps", conditions=[condition()]))
        yield fleet


@pytest.fixture
def server(fleet: FakeFleet) -> FakeKubeApiServer:
    return fleet["prod-1"]


@pytest.fixture
def writer(fleet: FakeFleet, tmp_path: Path) -> Iterator[KubeWriter]:
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    config = FluxbotConfig.model_validate(
        {
            "kubernetes": {"kubeconfig": str(kubeconfig)},
            "environments": {
                "production": {"channel": "C0PROD", "clusters": [{"context": "prod-1"}]}
            },
        }
    )
    cache = FleetCache(config).start()
    try:
        assert cache.wait_synced(10)
        yield KubeWriter(cache)
    finally:
        cache.stop()


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _annotations(server: FakeKubeApiServer) -> dict[str, str]:
    stored = server.get(*KS)
    assert stored is not None
    return dict(stored["metadata"].get("annotations") or {})


def _stored_lease(server: FakeKubeApiServer) -> dict[str, Any] | None:
    value = _annotations(server).get(ACTION_LEASE)
    return json.loads(value) if value else None


def _leave(server: FakeKubeApiServer, lease: ActionLease) -> None:
    stored = server.get(*KS)
    assert stored is not None
    stored["metadata"].setdefault("annotations", {})[ACTION_LEASE] = lease.encode()
    server.apply(stored)


def _until(predicate: Callable[[], Any], timeout: float = 5.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := predicate():
            return value
        time.sleep(0.02)
    raise AssertionError("condition not met in time")


def test_a_claim_writes_the_lease_and_the_button_conditionally(
    server: FakeKubeApiServer, writer: KubeWriter
) -> None:
    lease = ActionLease.start("n1", "reconcile", _now())
    server.clear_requests()
    assert writer.claim(TARGET, APPS, "n1", lease).state is ClaimState.CLAIMED
    (patch,) = [r for r in server.writes() if r.method == "PATCH"]
    assert patch.body["metadata"]["resourceVersion"]  # conditional: 409 if it changed
    assert _annotations(server)[ACTION_ID] == "n1"
    assert _stored_lease(server) == json.loads(lease.encode())
    # The same button again (the other half of a double click): used, whatever the lease.
    again = ActionLease.start("n1", "reconcile", _now())
    assert writer.claim(TARGET, APPS, "n1", again).state is ClaimState.USED


def test_a_live_lease_makes_the_object_busy_and_an_expired_one_does_not(
    server: FakeKubeApiServer, writer: KubeWriter
) -> None:
    now = _now()
    _leave(server, ActionLease("dead-replica", "rollback", now, now + dt.timedelta(seconds=60)))
    claim = writer.claim(TARGET, APPS, "n2", ActionLease.start("n2", "suspend", now))
    assert claim.state is ClaimState.BUSY
    assert claim.holder is not None
    assert claim.holder.action == "rollback"
    assert ACTION_ID not in _annotations(server)  # nothing written: the button stays usable
    _leave(server, ActionLease("dead-replica", "rollback", now, now - dt.timedelta(seconds=1)))
    assert writer.claim(TARGET, APPS, "n2", ActionLease.start("n2", "suspend", now)).state is (
        ClaimState.CLAIMED
    )


def test_an_unreadable_lease_does_not_lock_the_object(
    server: FakeKubeApiServer, writer: KubeWriter
) -> None:
    stored = server.get(*KS)
    assert stored is not None
    stored["metadata"]["annotations"] = {ACTION_LEASE: "someone was here"}
    server.apply(stored)
    lease = ActionLease.start("n3", "reconcile", _now())
    assert writer.claim(TARGET, APPS, "n3", lease).state is ClaimState.CLAIMED


def test_a_conflict_reads_the_object_again_before_claiming(
    server: FakeKubeApiServer, writer: KubeWriter
) -> None:
    """A 409 (the object changed between read and write, e.g. a controller's status update)
    is not taken for another replica's claim: the claim reads again and decides afresh."""
    conflict = server.inject("PATCH", r"/kustomizations/apps$", 409, times=1, reason="Conflict")
    lease = ActionLease.start("n4", "reconcile", _now())
    assert writer.claim(TARGET, APPS, "n4", lease).state is ClaimState.CLAIMED
    assert conflict.hits == 1
    assert _annotations(server)[ACTION_ID] == "n4"


def test_the_keeper_renews_a_lease_while_the_action_runs_then_gives_it_up(
    server: FakeKubeApiServer, writer: KubeWriter
) -> None:
    lease = ActionLease.start("n5", "reconcile", _now() - dt.timedelta(seconds=30))
    assert writer.claim(TARGET, APPS, "n5", lease).state is ClaimState.CLAIMED
    keeper = LeaseKeeper(writer, _now, every=0.1)
    keeper.keep(TARGET, APPS, lease)
    first_until = lease.until.isoformat(timespec="seconds")
    _until(lambda: (_stored_lease(server) or {}).get("until", first_until) > first_until)
    keeper.release(lease)
    assert _stored_lease(server) is None
    assert _annotations(server)[ACTION_ID] == "n5"  # the button stays used


def test_a_lease_taken_over_after_it_expired_is_neither_renewed_nor_removed(
    server: FakeKubeApiServer, writer: KubeWriter
) -> None:
    now = _now()
    lease = ActionLease.start("n6", "reconcile", now)
    assert writer.claim(TARGET, APPS, "n6", lease).state is ClaimState.CLAIMED
    keeper = LeaseKeeper(writer, _now, every=0.1)
    keeper.keep(TARGET, APPS, lease)
    other = ActionLease.start("other-replica", "rollback", now)
    _leave(server, other)
    time.sleep(0.4)  # a few renewal rounds
    keeper.release(lease)
    assert _stored_lease(server) == json.loads(other.encode())
