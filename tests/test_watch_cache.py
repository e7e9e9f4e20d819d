"""The watch cache: answers from memory, stays current, survives dropped watches and outages.

Every test runs real fake API servers on 127.0.0.1 and the official client; faults are
injected in the fakes. Waiting is done by polling with a deadline, never by fixed sleeps.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from bot.commands.executor import CommandRunner
from bot.config import FluxbotConfig
from bot.domain.fleet import (
    CacheState,
    ClusterStatus,
    ClusterTarget,
    EnvironmentLayout,
    FleetLayout,
    HealthCounts,
    ProblemKind,
    StatusViews,
)
from bot.domain.kinds import FLUX_GROUPS
from bot.domain.transitions import Change, Transition
from bot.kube.cache import FleetCache
from bot.render.text import render
from bot.slack.render import render as render_slack
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig
from tests.fakes.tls import loopback_tls
from tests.flux_objects import GIT_SHA, OTHER_SHA, condition, flux_object

GIT = "source.toolkit.fluxcd.io/v1"
KS = "kustomize.toolkit.fluxcd.io/v1"
PROD_EU = ClusterTarget("production", "prod-eu-1")
PROD_US = ClusterTarget("production", "prod-us-1")


def _git(name: str, sha: str = GIT_SHA, ready: str = "True", message: str = "") -> dict[str, Any]:
    return flux_object(
        "GitRepository",
        name,
        status={
            "artifact": {
                "revision": f"main@sha1:{sha}",
                "path": "x",
                "url": "http://source-controller/x",
                "digest": "sha256:" + "ab" * 32,
                "lastUpdateTime": "2026-11-25T08:00:00Z",
            }
        },
        conditions=[
            condition(
                "Ready", ready, "Succeeded" if ready == "True" else "GitOperationFailed", message
            )
        ],
    )


def _ks(name: str) -> dict[str, Any]:
    return flux_object("Kustomization", name, conditions=[condition()])


def _until(predicate: Callable[[], Any], timeout: float = 10.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"condition not met within {timeout} s")


class Recorder:
    """Collects transitions from the cache's watcher threads."""

    def __init__(self) -> None:
        self.items: list[Transition] = []
        self._lock = threading.Lock()

    def __call__(self, transition: Transition) -> None:
        with self._lock:
            self.items.append(transition)

    def of(self, change: Change, name: str | None = None) -> list[Transition]:
        with self._lock:
            return [
                t for t in self.items if t.change is change and (name is None or t.name == name)
            ]


@pytest.fixture
def fleet() -> Iterator[FakeFleet]:
    fleet = FakeFleet(["prod-eu-1", "prod-us-1"])
    with fleet:
        for server in fleet:
            server.apply_many([_git("flux-system"), _ks("apps"), _ks("infra")])
        yield fleet


def _cache(fleet: FakeFleet, tmp_path: Path, **cache: Any) -> FleetCache:
    kubeconfig = fleet.write_kubeconfig(tmp_path / "kubeconfig")
    config = FluxbotConfig.model_validate(
        {
            "kubernetes": {
                "kubeconfig": str(kubeconfig),
                "connect_timeout_seconds": 1,
                "request_timeout_seconds": 2,
            },
            "cache": {"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.2, **cache},
            "environments": {
                "production": {
                    "channel": "C0PROD",
                    "clusters": [{"context": name} for name in fleet.servers],
                }
            },
        }
    )
    return FleetCache(config)


@contextlib.contextmanager
def _running(fleet_cache: FleetCache) -> Iterator[tuple[FleetCache, Recorder]]:
    """`fleet_cache` started with a Recorder subscribed and synced; stopped afterwards."""
    recorder = Recorder()
    fleet_cache.subscribe(recorder)
    fleet_cache.start()
    try:
        assert fleet_cache.wait_synced(10)
        yield fleet_cache, recorder
    finally:
        fleet_cache.stop()


@pytest.fixture
def cache(fleet: FakeFleet, tmp_path: Path) -> Iterator[tuple[FleetCache, Recorder]]:
    with _running(_cache(fleet, tmp_path)) as running:
        yield running


def _status(cache: FleetCache, target: ClusterTarget = PROD_EU) -> ClusterStatus:
    (status,) = cache.read([target])
    return status


def _names(status: ClusterStatus) -> list[str]:
    return sorted(o.name for o in status.objects)


def test_cold_sync_answers_from_memory_without_touching_the_api(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    fleet["prod-eu-1"].clear_requests()
    status = _status(fleet_cache)
    assert _names(status) == ["apps", "flux-system", "infra"]
    assert status.freshness is not None
    assert status.freshness.state is CacheState.LIVE
    assert not fleet["prod-eu-1"].requests()
    # The initial listing is not news.
    assert recorder.items == []


def _discovery_paths(server: FakeKubeApiServer) -> list[str]:
    """The discovery requests a server received: the group list and group versions."""
    return [
        r.path for r in server.requests("GET") if re.fullmatch(r"/apis(/[^/]+/[^/]+)?/?", r.path)
    ]


@pytest.mark.parametrize("aggregated", [True, False], ids=["aggregated", "kubernetes<1.26"])
def test_connecting_a_cluster_discovers_its_flux_versions_in_one_request_when_it_can(
    fleet: FakeFleet, tmp_path: Path, aggregated: bool
) -> None:
    for server in fleet:
        server.aggregated_discovery = aggregated
        server.clear_requests()
    fleet_cache = _cache(fleet, tmp_path)
    fleet_cache.start()
    try:
        assert fleet_cache.wait_synced(10)
        status = _status(fleet_cache)
    finally:
        fleet_cache.stop()

    assert _names(status) == ["apps", "flux-system", "infra"]
    paths = _discovery_paths(fleet["prod-eu-1"])
    if aggregated:
        assert paths == ["/apis/"]
    else:
        assert paths[0] == "/apis/"
        assert "/apis/kustomize.toolkit.fluxcd.io/v1" in paths[1:]


def test_a_listing_with_an_escape_the_fast_decoder_refuses_is_read_like_the_client_reads_it(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    # A lone surrogate escape is valid JSON to Python's json (and the client), not to orjson.
    odd = "clone failed: \ud800 in a path"
    fleet["prod-eu-1"].apply(_git("odd", ready="False", message=odd))
    fleet_cache = _cache(fleet, tmp_path)
    fleet_cache.start()
    try:
        assert fleet_cache.wait_synced(10)
        status = _status(fleet_cache)
        assert _names(status) == ["apps", "flux-system", "infra", "odd"]
        (failing,) = [o for o in status.objects if o.name == "odd"]
        assert failing.message == odd
    finally:
        fleet_cache.stop()


def test_a_change_on_the_server_becomes_a_transition_and_fresh_status(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    fleet["prod-eu-1"].apply(_git("flux-system", ready="False", message="authentication required"))

    (failing,) = _until(lambda: recorder.of(Change.FAILING))
    assert (failing.cluster, failing.kind, failing.name) == (
        "prod-eu-1",
        "GitRepository",
        "flux-system",
    )
    assert failing.message == "authentication required"
    git = next(o for o in _status(fleet_cache).objects if o.kind == "GitRepository")
    assert git.ready == "False"

    fleet["prod-eu-1"].apply(_git("flux-system", sha=OTHER_SHA))
    (recovered,) = _until(lambda: recorder.of(Change.RECOVERED))
    (revision,) = _until(lambda: recorder.of(Change.REVISION))
    assert recovered.name == "flux-system"
    assert (revision.old, revision.new) == (f"main@sha1:{GIT_SHA}", f"main@sha1:{OTHER_SHA}")

    fleet["prod-eu-1"].delete(KS, "Kustomization", "flux-system", "infra")
    _until(lambda: recorder.of(Change.REMOVED, "infra"))
    assert _names(_status(fleet_cache)) == ["apps", "flux-system"]


def test_suspend_and_resume_are_transitions(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    _, recorder = cache
    suspended = _ks("apps")
    suspended["spec"]["suspend"] = True
    fleet["prod-us-1"].apply(suspended)
    (event,) = _until(lambda: recorder.of(Change.SUSPENDED))
    assert (event.cluster, event.name) == ("prod-us-1", "apps")
    fleet["prod-us-1"].apply(_ks("apps"))
    _until(lambda: recorder.of(Change.RESUMED))


def test_the_new_kinds_are_watched_and_their_changes_are_transitions(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    automation = flux_object("ImageUpdateAutomation", "flux-system", conditions=[condition()])
    generator = flux_object("ArtifactGenerator", "apps", conditions=[condition()])
    fleet["prod-eu-1"].apply_many([automation, generator])
    _until(lambda: len(recorder.of(Change.ADDED)) == 2)
    # image-automation-controller cannot push: Ready=False GitOperationFailed.
    fleet["prod-eu-1"].apply(
        flux_object(
            "ImageUpdateAutomation",
            "flux-system",
            conditions=[
                condition(
                    "Ready", "False", "GitOperationFailed", "failed to update source: push failed"
                )
            ],
        )
    )
    (failing,) = _until(lambda: recorder.of(Change.FAILING))
    assert (failing.kind, failing.name) == ("ImageUpdateAutomation", "flux-system")
    # An ArtifactGenerator is suspended through its annotation, not spec.suspend.
    fleet["prod-eu-1"].apply(
        flux_object(
            "ArtifactGenerator",
            "apps",
            annotations={"source.extensions.fluxcd.io/reconcile": "disabled"},
            conditions=[condition()],
        )
    )
    (suspended,) = _until(lambda: recorder.of(Change.SUSPENDED))
    assert (suspended.kind, suspended.name) == ("ArtifactGenerator", "apps")
    kinds = {o.kind for o in _status(fleet_cache).objects}
    assert {"ImageUpdateAutomation", "ArtifactGenerator"} <= kinds


@pytest.mark.parametrize("abort", [False, True], ids=["closed", "cut"])
def test_a_dropped_watch_resumes_without_losing_a_change(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder], abort: bool
) -> None:
    fleet_cache, recorder = cache
    server = fleet["prod-eu-1"]
    lists_before = _list_requests(server)
    assert server.drop_watches(abort=abort) > 0
    server.apply(_ks("new-app"))
    _until(lambda: recorder.of(Change.ADDED, "new-app"))
    assert "new-app" in _names(_status(fleet_cache))
    # Resumed from the last resourceVersion: no relist was needed.
    assert _list_requests(server) == lists_before
    assert _status(fleet_cache).freshness.state is CacheState.LIVE  # type: ignore[union-attr]


def test_410_gone_triggers_a_relist_and_the_cache_converges(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    server = fleet["prod-eu-1"]
    # Changes the watch will never see as events: the server forgets its history.
    server.inject(path_regex=r".*/kustomizations$", watch=True, hang=True)
    server.drop_watches()
    server.wait_for_watches(count=3)  # the other kinds resumed; kustomizations hangs
    server.apply(_ks("late"))
    server.delete(KS, "Kustomization", "flux-system", "apps")
    server.compact()
    lists_before = _list_requests(server, "kustomizations")
    server.clear_faults()

    _until(
        lambda: (
            "late" in _names(_status(fleet_cache)) and "apps" not in _names(_status(fleet_cache))
        )
    )
    assert _list_requests(server, "kustomizations") > lists_before
    # The relist found the differences and reported them as transitions.
    assert recorder.of(Change.ADDED, "late")
    assert recorder.of(Change.REMOVED, "apps")


def test_an_expired_watch_relists_at_once_and_reports_no_failure(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    # kube-apiserver answers a watch from a compacted resourceVersion with 200 and one ERROR
    # event carrying a 410 Status (staging/src/k8s.io/apiserver/pkg/storage/cacher/cacher.go:
    # Watch returns newErrWatcher; the fake does the same). That is not a failure: the watcher
    # relists at once. A failure would wait out the backoff, 30 s here.
    server = fleet["prod-eu-1"]
    slow_backoff = _cache(fleet, tmp_path, backoff_initial_seconds=30, backoff_max_seconds=30)
    with _running(slow_backoff) as (fleet_cache, recorder):
        server.inject(path_regex=r".*/kustomizations$", watch=True, hang=True, times=1)
        server.drop_watches()
        server.wait_for_watches(count=3)  # the other kinds resumed; kustomizations hangs
        server.apply(_ks("late"))
        server.compact()
        lists_before = _list_requests(server, "kustomizations")
        server.clear_faults()

        _until(lambda: "late" in _names(_status(fleet_cache)), timeout=10)
        assert _list_requests(server, "kustomizations") == lists_before + 1
        assert recorder.of(Change.ADDED, "late")
        status = _status(fleet_cache)
        assert not status.problems
        assert status.freshness is not None
        assert status.freshness.state is CacheState.LIVE


def test_every_flux_kind_of_a_cluster_is_followed_by_one_thread(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    # 15 watches per cluster, one thread: a thread per watch cost 40-60 KB each, 90 MB for a
    # fleet of 100 clusters (docs/scaling.md).
    _fleet_cache, recorder = cache
    threads = [t.name for t in threading.enumerate()]
    assert sorted(n for n in threads if n.startswith("cache-")) == [
        "cache-prod-eu-1",
        "cache-prod-us-1",
    ]
    assert not [n for n in threads if n.startswith("watch-")]
    # Changes to different kinds of both clusters still arrive.
    fleet["prod-eu-1"].apply(_git("flux-system", ready="False", message="auth failed"))
    fleet["prod-us-1"].delete(KS, "Kustomization", "flux-system", "apps")
    _until(lambda: recorder.of(Change.FAILING, "flux-system"))
    _until(lambda: recorder.of(Change.REMOVED, "apps"))


def test_watch_events_that_arrive_in_pieces_are_read_whole(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    # Each event comes in 5-byte HTTP chunks, each its own TCP segment: chunk size lines and
    # the JSON of an event straddle reads.
    fleet_cache, recorder = cache
    server = fleet["prod-eu-1"]
    server.event_piece_bytes = 5
    server.drop_watches()
    server.wait_for_watches(count=3)
    server.apply(_git("flux-system", ready="False", message="authentication required: ✗"))
    server.apply(_ks("pieces"))

    (failed,) = _until(lambda: recorder.of(Change.FAILING, "flux-system"))
    assert failed.message == "authentication required: ✗"
    _until(lambda: recorder.of(Change.ADDED, "pieces"))
    assert not _status(fleet_cache).problems


def test_a_cluster_served_over_https_is_watched_and_survives_a_dropped_watch(
    tmp_path: Path,
) -> None:
    # Watch streams are read off the TLS socket without blocking: a TLS record can arrive in
    # parts, and bytes already decrypted are invisible to select().
    tls = loopback_tls()
    with FakeKubeApiServer("tls-1", ssl_context=tls.server_context) as server:
        server.apply_many([_git("flux-system"), _ks("apps")])
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig",
            {"tls-1": (server.url, server.token)},
            certificate_authorities={"tls-1": tls.ca_pem},
        )
        config = FluxbotConfig.model_validate(
            {
                "kubernetes": {"kubeconfig": str(kubeconfig), "request_timeout_seconds": 2},
                "cache": {"backoff_initial_seconds": 0.05, "backoff_max_seconds": 0.2},
                "environments": {
                    "production": {"channel": "C0PROD", "clusters": [{"context": "tls-1"}]}
                },
            }
        )
        with _running(FleetCache(config)) as (fleet_cache, recorder):
            target = ClusterTarget("production", "tls-1")
            assert server.url.startswith("https://")
            assert _names(_status(fleet_cache, target)) == ["apps", "flux-system"]
            server.event_piece_bytes = 7
            server.apply(_ks("over-tls"))
            _until(lambda: recorder.of(Change.ADDED, "over-tls"))
            server.event_piece_bytes = None
            server.drop_watches(abort=True)
            server.apply(_git("flux-system", ready="False", message="after the drop"))
            (failed,) = _until(lambda: recorder.of(Change.FAILING, "flux-system"))
            assert failed.message == "after the drop"
            assert not _status(fleet_cache, target).problems


def test_a_cluster_that_goes_away_is_stale_with_its_error_and_recovers_by_itself(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    server = fleet["prod-eu-1"]
    server.stop()
    stale = _until(lambda: _stale(_status(fleet_cache)))
    assert stale.freshness.since is not None
    assert "cannot reach the API server" in stale.freshness.error
    # Last known objects are still shown, marked stale; the other cluster stays live.
    assert _names(stale) == ["apps", "flux-system", "infra"]
    assert _status(fleet_cache, PROD_US).freshness.state is CacheState.LIVE  # type: ignore[union-attr]
    # People see it too: the answer says the data is stale, since when, and why.
    runner = CommandRunner(
        FleetLayout(
            (EnvironmentLayout("production", "production", "C0PROD", ("prod-eu-1", "prod-us-1")),)
        ),
        fleet_cache,
    )
    text = render(runner.handle("status production"))
    assert text.startswith("== production: 1 cluster stale (unreachable for ")
    assert (
        "prod-eu-1: 0 failing · 0 progressing · 0 suspended · 3 ready (STALE: unreachable " in text
    )
    assert "cannot reach the API server" in text
    assert "prod-us-1: 0 failing · 0 progressing · 0 suspended · 3 ready\n" in text

    server.start()
    server.apply(_ks("while-you-were-away"))
    _until(lambda: _status(fleet_cache).freshness.state is CacheState.LIVE)  # type: ignore[union-attr]
    _until(lambda: "while-you-were-away" in _names(_status(fleet_cache)))
    assert recorder.of(Change.ADDED, "while-you-were-away")


def test_a_flapping_cluster_does_not_grow_threads_or_memory(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, _ = cache
    server = fleet["prod-eu-1"]
    threads_before = threading.active_count()
    for _ in range(8):
        server.stop()
        _until(lambda: _stale(_status(fleet_cache)))
        server.start()
        _until(lambda: _status(fleet_cache).freshness.state is CacheState.LIVE)  # type: ignore[union-attr]
    assert threading.active_count() <= threads_before
    assert _names(_status(fleet_cache)) == ["apps", "flux-system", "infra"]


def test_a_cluster_down_from_the_start_is_unreadable_until_it_comes_up(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    fleet["prod-us-1"].stop()
    fleet_cache = _cache(fleet, tmp_path)
    fleet_cache.start()
    try:
        assert not fleet_cache.wait_synced(10)
        down = _status(fleet_cache, PROD_US)
        assert down.unreadable is not None
        assert down.unreadable.kind is ProblemKind.UNREACHABLE
        assert _names(_status(fleet_cache)) == ["apps", "flux-system", "infra"]
        fleet["prod-us-1"].start()
        _until(lambda: _names(_status(fleet_cache, PROD_US)) == ["apps", "flux-system", "infra"])
    finally:
        fleet_cache.stop()


def test_a_forbidden_kind_is_reported_and_the_rest_is_live(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    fleet["prod-eu-1"].deny("list", "gitrepositories")
    fleet_cache = _cache(fleet, tmp_path)
    fleet_cache.start()
    try:
        fleet_cache.wait_synced(10)
        status = _until(lambda: _with_problem(_status(fleet_cache)))
        assert status.freshness.state is CacheState.LIVE
        (problem,) = status.problems
        assert (problem.kind, problem.kinds) == (ProblemKind.FORBIDDEN, ("GitRepository",))
        assert _names(status) == ["apps", "infra"]
    finally:
        fleet_cache.stop()


def test_a_watch_refused_after_its_listing_is_reported_for_its_kind_and_recovers(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    # RBAC that grants list but not watch: the watch request itself answers 403, which the
    # client's watch stream raises as an ApiException like any other answer (watch.py).
    fleet_cache, recorder = cache
    server = fleet["prod-eu-1"]
    server.deny("watch", "kustomizations")
    server.drop_watches()
    status = _until(lambda: _with_problem(_status(fleet_cache)))
    (problem,) = status.problems
    assert (problem.kind, problem.kinds) == (ProblemKind.FORBIDDEN, ("Kustomization",))
    server.clear_denies()
    server.apply(_ks("after"))
    _until(lambda: recorder.of(Change.ADDED, "after"))
    assert _until(lambda: not _status(fleet_cache).problems)


def test_each_kind_is_relisted_periodically_to_catch_anything_missed(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    server = fleet["prod-eu-1"]
    fleet_cache = _cache(fleet, tmp_path, resync_seconds=0.3, watch_timeout_seconds=5)
    fleet_cache.start()
    try:
        assert fleet_cache.wait_synced(10)
        before = _list_requests(server, "kustomizations")
        _until(lambda: _list_requests(server, "kustomizations") >= before + 2)
    finally:
        fleet_cache.stop()


def test_stop_ends_every_thread(fleet: FakeFleet, tmp_path: Path) -> None:
    before = {t.name for t in threading.enumerate()}
    fleet_cache = _cache(fleet, tmp_path).start()
    assert fleet_cache.wait_synced(10)
    fleet_cache.stop()
    _until(lambda: not ({t.name for t in threading.enumerate()} - before), timeout=5)


def _list_requests(server: FakeKubeApiServer, plural: str = "") -> int:
    return sum(
        1
        for r in server.requests("GET")
        if r.path.endswith(plural or "s")
        and "watch" not in r.query
        and "/apis/" in r.path
        and r.path.count("/") == 4
    )


def _stale(status: ClusterStatus) -> ClusterStatus | None:
    fresh = status.freshness
    return status if fresh is not None and fresh.state is CacheState.STALE else None


def _with_problem(status: ClusterStatus) -> ClusterStatus | None:
    return status if status.problems else None


def test_a_cluster_without_flux_is_watched_once_flux_is_installed(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    # prod-us-1 first serves no Flux API at all; later the same API server has Flux.
    port, token = fleet["prod-us-1"].port, fleet["prod-us-1"].token
    fleet["prod-us-1"].stop()
    bare = FakeKubeApiServer(
        "bare",
        token=token,
        port=port,
        omit_groups=FLUX_GROUPS,
    ).start()
    fleet_cache = _cache(fleet, tmp_path)
    fleet_cache.start()
    try:
        down = _until(lambda: _status(fleet_cache, PROD_US).unreadable)
        assert down.kind is ProblemKind.FLUX_MISSING
        bare.stop()
        fleet["prod-us-1"].start()  # the same address, now with Flux and its objects
        _until(lambda: _names(_status(fleet_cache, PROD_US)) == ["apps", "flux-system", "infra"])
    finally:
        fleet_cache.stop()
        bare.stop()


def test_an_unchanged_cluster_is_counted_and_ordered_once_and_a_change_refreshes_it(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    first, again = _status(fleet_cache), _status(fleet_cache)
    # Questions about an unchanged cluster share what they derive (order, causes, counts).
    assert again.views is first.views
    assert first.counts == HealthCounts(ready=3)
    (gits,) = fleet_cache.read([PROD_EU], frozenset({"GitRepository"}))
    assert gits.counts == HealthCounts(ready=1)

    fleet["prod-eu-1"].apply(_git("flux-system", ready="False", message="authentication required"))
    _until(lambda: recorder.of(Change.FAILING))
    changed = _status(fleet_cache)
    assert changed.views is not first.views
    # Counts kept as the transition arrived agree with counting the objects afresh.
    assert changed.counts == HealthCounts(failing=1, ready=2) == HealthCounts.of(changed.objects)
    (gits,) = fleet_cache.read([PROD_EU], frozenset({"GitRepository"}))
    assert gits.counts == HealthCounts(failing=1)

    fleet["prod-eu-1"].delete(KS, "Kustomization", "flux-system", "infra")
    _until(lambda: recorder.of(Change.REMOVED, "infra"))
    assert _status(fleet_cache).counts == HealthCounts(failing=1, ready=1)
    # The other cluster never changed: its views are the ones it had.
    assert _status(fleet_cache, PROD_US).counts == HealthCounts(ready=3)


def test_listings_are_read_a_bounded_number_at_a_time_fleet_wide(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    # One listing at a time in the whole fleet: while the first one hangs, no other starts.
    fleet_cache = _cache(fleet, tmp_path, max_parallel_lists=1)
    hangs = [
        server.inject("GET", r"^/apis/[^/]+/[^/]+/[^/]+$", hang=True, watch=False, times=1)
        for server in fleet
    ]
    fleet_cache.start()
    try:
        _until(lambda: sum(h.hits for h in hangs) == 1)
        time.sleep(0.5)
        assert sum(h.hits for h in hangs) == 1
        assert sum(_list_requests(server) for server in fleet) == 1
        for server in fleet:
            server.clear_faults()
        # Once the hung listing answers, the rest of the fleet syncs.
        assert fleet_cache.wait_synced(15)
        assert _names(_status(fleet_cache)) == ["apps", "flux-system", "infra"]
        assert _names(_status(fleet_cache, PROD_US)) == ["apps", "flux-system", "infra"]
    finally:
        fleet_cache.stop()


class _Unshared:
    """The cache read without its kept views, as any other reader answers."""

    def __init__(self, cache: FleetCache) -> None:
        self.cache = cache

    def read(
        self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
    ) -> list[ClusterStatus]:
        return [
            dataclasses.replace(s, views=StatusViews()) for s in self.cache.read(targets, kinds)
        ]


def test_answers_from_kept_views_read_exactly_like_fresh_ones_at_every_moment(
    fleet: FakeFleet, cache: tuple[FleetCache, Recorder]
) -> None:
    fleet_cache, recorder = cache
    fleet["prod-eu-1"].apply(_git("flux-system", ready="False", message="authentication required"))
    _until(lambda: recorder.of(Change.FAILING))
    layout = FleetLayout(
        (EnvironmentLayout("production", "production", "C0PROD", ("prod-eu-1", "prod-us-1")),)
    )
    now = [dt.datetime(2026, 11, 25, 8, 0, 30, tzinfo=dt.UTC)]
    kept = CommandRunner(layout, fleet_cache, clock=lambda: now[0])
    fresh = CommandRunner(layout, _Unshared(fleet_cache), clock=lambda: now[0])
    ages = []
    for later in (dt.timedelta(0), dt.timedelta(hours=3), dt.timedelta(days=4)):
        now[0] += later
        for command in ("status production --failing", "status production"):
            text = render(kept.handle(command))
            assert text == render(fresh.handle(command))
            assert render_slack(kept.handle(command)) == render_slack(fresh.handle(command))
        ages += re.findall(r"Kustomization +flux-system +apps .* True +(\d+ \w+)", text)
    # The AGE column follows the clock although the rows were laid out once: the
    # Kustomizations (one per cluster) have been Ready since T0.
    assert ages == ["30 s", "30 s", "3 h", "3 h", "4 d", "4 d"]


def test_the_garbage_collector_is_off_during_the_cold_sync_and_back_once_live_or_failed(
    fleet: FakeFleet, tmp_path: Path
) -> None:
    # bot/collector.py: the cold sync allocates only the cache and listings freed by
    # reference counting, so the cyclic collector stays off until each cluster is live or has
    # failed. One cluster's Kustomizations list slowly; the other is down from the start.
    assert gc.isenabled()
    fleet["prod-eu-1"].inject("GET", "kustomizations$", latency=1.5, watch=False, times=1)
    fleet["prod-us-1"].stop()
    fleet_cache = _cache(fleet, tmp_path)
    fleet_cache.start()
    try:
        _until(lambda: fleet_cache.freshness()[PROD_US].state is CacheState.STALE)
        during_the_slow_list = gc.isenabled()
        assert not fleet_cache.wait_synced(10)
        assert fleet_cache.freshness()[PROD_EU].state is CacheState.LIVE
        assert (during_the_slow_list, gc.isenabled()) == (False, True)
    finally:
        fleet_cache.stop()
    assert gc.isenabled()
