"""Leader election: two replicas, one fake API server, the official client in between.

Leases are short (about a second) so takeovers happen within the test; waiting is done by
polling with deadlines, never by fixed sleeps.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.config import ClusterConfig, KubernetesSettings
from bot.kube.clients import build_api_client
from bot.kube.lease import LeaderElector, micro_time
from tests.fakes.kube_api import FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig

NS = "fluxbot"
LEASE = "fluxbot-leader"
LEASE_API = "coordination.k8s.io/v1"
MICRO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}(Z|\+00:00)$")


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0, what: str = "") -> float:
    """Poll until `predicate` holds; returns the seconds it took."""
    start = time.monotonic()
    while not predicate():
        if time.monotonic() - start > timeout:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or predicate}")
        time.sleep(0.01)
    return time.monotonic() - start


@dataclass
class Replica:
    """One elector and what its callbacks saw."""

    elector: LeaderElector
    events: list[str] = field(default_factory=list)


@pytest.fixture
def server() -> Iterator[FakeKubeApiServer]:
    """A running fake API server."""
    with FakeKubeApiServer("lease") as srv:
        yield srv
        assert srv.internal_errors == []


@pytest.fixture
def make_replica(server: FakeKubeApiServer, tmp_path: Path) -> Iterator[Callable[..., Replica]]:
    """Build electors, each with its own API client, as separate pods would have."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"lease": (server.url, server.token)})
    made: list[tuple[LeaderElector, Any]] = []

    def make(identity: str, start: bool = True, **options: Any) -> Replica:
        api_client = build_api_client(
            ClusterConfig(kubeconfig=kubeconfig, context="lease"), KubernetesSettings()
        )
        settings: dict[str, Any] = {
            "lease_seconds": 1,
            "renew_seconds": 0.2,
            "retry_seconds": 0.1,
            **options,
        }
        elector = LeaderElector(api_client, NS, LEASE, identity, **settings)
        replica = Replica(elector)
        elector.on_started_leading = lambda: replica.events.append("started")
        elector.on_stopped_leading = lambda: replica.events.append("stopped")
        made.append((elector, api_client))
        if start:
            elector.start()
        return replica

    yield make
    for elector, api_client in made:
        elector.stop(release=False, timeout=2)
        api_client.close()


def leader_of(*replicas: Replica) -> list[str]:
    """Identities of the replicas that consider themselves leader now."""
    return [r.elector.identity for r in replicas if r.elector.is_leader]


def lease_spec(server: FakeKubeApiServer) -> dict[str, Any]:
    """The Lease's spec as stored."""
    lease = server.get(LEASE_API, "Lease", NS, LEASE)
    assert lease is not None
    spec: dict[str, Any] = lease["spec"]
    return spec


def test_exactly_one_of_two_replicas_leads(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    a, b = make_replica("pod-a"), make_replica("pod-b")

    wait_until(lambda: len(leader_of(a, b)) == 1, what="a leader")
    leader = leader_of(a, b)[0]
    # Several renewals later there is still exactly one leader, and it is the same one.
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        assert leader_of(a, b) in ([leader], [])
        time.sleep(0.01)
    assert leader_of(a, b) == [leader]

    spec = lease_spec(server)
    assert spec["holderIdentity"] == leader
    assert spec["leaseDurationSeconds"] == 1
    assert spec["leaseTransitions"] == 0
    assert MICRO_TIME.match(spec["renewTime"]), spec["renewTime"]
    assert MICRO_TIME.match(spec["acquireTime"]), spec["acquireTime"]
    assert spec["renewTime"] > spec["acquireTime"]  # renewed since it was acquired
    winner, loser = (a, b) if leader == "pod-a" else (b, a)
    wait_until(lambda: winner.events == ["started"], what="on_started_leading")
    assert loser.events == []


def test_a_crashed_leader_is_replaced_once_its_lease_expires(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    a = make_replica("pod-a")
    wait_until(lambda: a.elector.is_leader, what="pod-a to lead")
    b = make_replica("pod-b")
    wait_until(lambda: server.requests("GET", "/leases/") != [], what="pod-b to look")
    time.sleep(0.3)  # pod-b watches pod-a renew a few times
    assert not b.elector.is_leader

    a.elector.stop(release=False)  # a crash: the Lease is left as it was
    crashed = time.monotonic()
    wait_until(lambda: b.elector.is_leader, timeout=5, what="pod-b to take over")
    waited = time.monotonic() - crashed

    # Not before the lease (1 s) has run out since pod-a's last renewal (at most 0.2 s ago).
    assert waited >= 0.7, waited
    spec = lease_spec(server)
    assert spec["holderIdentity"] == "pod-b"
    assert spec["leaseTransitions"] == 1
    wait_until(lambda: b.events == ["started"], what="on_started_leading")  # on its own thread
    assert a.events == ["started", "stopped"]


def test_a_graceful_stop_hands_over_at_once(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    a = make_replica("pod-a", lease_seconds=5, renew_seconds=1)
    wait_until(lambda: a.elector.is_leader, what="pod-a to lead")
    b = make_replica("pod-b", lease_seconds=5, renew_seconds=1)
    holder_when_stopping: list[str] = []
    a.elector.on_stopped_leading = lambda: holder_when_stopping.append(
        lease_spec(server).get("holderIdentity", "")
    )
    wait_until(lambda: len(server.requests("GET", "/leases/")) >= 3, what="pod-b to look")

    a.elector.stop(release=True)
    released = time.monotonic()
    wait_until(lambda: b.elector.is_leader, timeout=3, what="pod-b to take over")

    assert time.monotonic() - released < 1.5  # far less than the 5 s lease
    # pod-a stopped acting as leader before it let go of the Lease, so they never overlapped.
    assert holder_when_stopping == ["pod-a"]
    assert not a.elector.is_leader
    spec = lease_spec(server)
    assert spec["holderIdentity"] == "pod-b"
    assert spec["leaseDurationSeconds"] == 5
    assert spec["leaseTransitions"] == 1


def test_a_release_leaves_no_holder_and_a_one_second_lease(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    a = make_replica("pod-a", lease_seconds=5, renew_seconds=1)
    wait_until(lambda: a.elector.is_leader, what="pod-a to lead")

    a.elector.stop(release=True)

    spec = lease_spec(server)
    assert "holderIdentity" not in spec
    assert spec["leaseDurationSeconds"] == 1
    assert a.events == ["started", "stopped"]


def test_a_conflict_on_renew_means_someone_else_won(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    a = make_replica("pod-a")
    wait_until(lambda: a.elector.is_leader, what="pod-a to lead")
    # Hold pod-a's next renewal in flight while another holder writes the Lease.
    fault = server.inject("PUT", f"/leases/{LEASE}$", latency=0.3, times=1)
    wait_until(lambda: fault.hits == 1, what="a renewal in flight")
    server.apply(
        {
            "apiVersion": LEASE_API,
            "kind": "Lease",
            "metadata": {"name": LEASE, "namespace": NS},
            "spec": {
                "holderIdentity": "pod-z",
                "leaseDurationSeconds": 60,
                "acquireTime": micro_time(time.time()),
                "renewTime": micro_time(time.time()),
                "leaseTransitions": 1,
            },
        }
    )

    wait_until(lambda: not a.elector.is_leader, timeout=2, what="pod-a to step down")

    conflicts = [r for r in server.requests("PUT", "/leases/") if r.status == 409]
    assert len(conflicts) == 1
    wait_until(lambda: a.events == ["started", "stopped"], what="on_stopped_leading")
    time.sleep(0.3)  # several retries: pod-z's lease is alive, pod-a stays a follower
    assert not a.elector.is_leader
    assert lease_spec(server)["holderIdentity"] == "pod-z"


def test_a_leader_cut_off_from_the_api_server_steps_down_when_its_lease_runs_out(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    a = make_replica("pod-a")
    wait_until(lambda: a.elector.is_leader, what="pod-a to lead")
    b = make_replica("pod-b")

    server.stop()
    down = time.monotonic()
    wait_until(lambda: not a.elector.is_leader, timeout=3, what="pod-a to step down")
    waited = time.monotonic() - down

    # It kept leading until its lease ran out (1 s after its last renewal), then no longer.
    assert 0.6 <= waited <= 1.6, waited
    wait_until(lambda: a.events == ["started", "stopped"], what="on_stopped_leading")
    assert not b.elector.is_leader

    server.start()  # the API server is back: someone leads again
    wait_until(lambda: len(leader_of(a, b)) == 1, timeout=5, what="a new leader")


class ManualClock:
    """A clock that only moves when told to."""

    def __init__(self) -> None:
        self.wall = time.time()
        self.mono = 1000.0
        self.lock = threading.Lock()

    def time(self) -> float:
        return self.wall

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.wall += seconds
        self.mono += seconds


def test_is_leader_turns_false_on_local_expiry_even_without_the_loop(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    clock = ManualClock()
    a = make_replica("pod-a", start=False, lease_seconds=15, renew_seconds=5, clock=clock)

    assert a.elector.try_acquire_or_renew()
    assert a.elector.is_leader
    clock.advance(14.9)
    assert a.elector.is_leader
    clock.advance(0.2)  # nothing renewed: the lease has run out by pod-a's own clock
    assert not a.elector.is_leader


def test_an_expired_lease_that_is_still_being_renewed_is_not_taken_over(
    server: FakeKubeApiServer, make_replica: Callable[..., Replica]
) -> None:
    """A holder whose clock runs behind still renews: a follower that sees it do so waits."""
    clock = ManualClock()
    c = make_replica("pod-c", start=False, lease_seconds=15, renew_seconds=5, clock=clock)

    def renewal_by_pod_slow(renew_time: float) -> None:
        server.apply(
            {
                "apiVersion": LEASE_API,
                "kind": "Lease",
                "metadata": {"name": LEASE, "namespace": NS},
                "spec": {
                    "holderIdentity": "pod-slow",
                    "leaseDurationSeconds": 15,
                    "acquireTime": micro_time(clock.wall - 100),
                    "renewTime": micro_time(renew_time),
                    "leaseTransitions": 0,
                },
            }
        )

    renewal_by_pod_slow(clock.wall - 5)
    assert not c.elector.try_acquire_or_renew()  # a fresh lease
    clock.advance(20)
    renewal_by_pod_slow(clock.wall - 20)  # renewed just now, by a clock 20 s behind
    # By the timestamps it expired 5 s ago, but pod-c saw it change: pod-slow is alive.
    assert not c.elector.try_acquire_or_renew()
    clock.advance(14)
    assert not c.elector.try_acquire_or_renew()
    assert lease_spec(server)["holderIdentity"] == "pod-slow"

    clock.advance(2)  # no change for a whole lease duration: now it really has expired
    assert c.elector.try_acquire_or_renew()
    assert lease_spec(server)["holderIdentity"] == "pod-c"
    assert lease_spec(server)["leaseTransitions"] == 1


def test_micro_time_always_has_six_fraction_digits() -> None:
    assert micro_time(1_700_000_000.0) == "2023-11-14T22:13:20.000001Z"
    assert micro_time(1_700_000_000.25) == "2023-11-14T22:13:20.250000Z"
