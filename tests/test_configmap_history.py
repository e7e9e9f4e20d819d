"""Digest history in ConfigMaps, shared by replicas, against the fake API server.

What only the ConfigMap store does: its shards and their layout, buffering and flushing,
conflicts between replicas, following, the size cap, corruption and API failures. What every
history store does is tested once for both stores in test_history_contract.py.

Each store gets its own API client, as each replica would. Stores flush only when told to
(flush_seconds=0) and do not watch (follow=False) unless a test is about that.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import json
import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from bot.config import ClusterConfig, KubernetesSettings
from bot.domain.history import ActionRecord, RunState, Snooze
from bot.domain.transitions import Change, Transition
from bot.history.configmap import (
    PAYLOAD_KEY,
    STORE_LABEL,
    ConfigMapHistory,
    HistoryUnavailable,
)
from bot.kube.clients import build_api_client
from tests.fakes.kube_api import FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig

NS = "fluxbot"
UTC = dt.UTC
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
RETENTION = dt.timedelta(days=7)
NINE = dt.datetime(2026, 11, 26, 9, 0, tzinfo=UTC)


def transition(
    name: str,
    change: Change = Change.FAILING,
    at: dt.datetime = NOW,
    *,
    environment: str = "production",
    cluster: str = "prod-eu-1",
    message: str = "",
) -> Transition:
    """A transition of a Kustomization."""
    return Transition(
        environment, cluster, "Kustomization", "flux-system", name, change, at, message=message
    )


def action(name: str, at: dt.datetime = NOW, environment: str = "production") -> ActionRecord:
    """A reconcile by alice."""
    return ActionRecord(
        at=at,
        environment=environment,
        cluster="prod-eu-1",
        kind="Kustomization",
        namespace="flux-system",
        name=name,
        action="reconcile",
        user="alice",
        ok=True,
        summary="reconciled",
    )


def snooze(name: str, until: dt.datetime, environment: str = "production") -> Snooze:
    """A snooze of a Kustomization by bob."""
    return Snooze(
        environment, "prod-eu-1", "Kustomization", "flux-system", name, until, "failing", "bob"
    )


class Clock:
    """The store's notion of now, for retention; movable."""

    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def server() -> Iterator[FakeKubeApiServer]:
    """A running fake API server."""
    with FakeKubeApiServer("history") as srv:
        yield srv
        assert srv.internal_errors == []


@pytest.fixture
def clock() -> Clock:
    """The clock every store of a test shares."""
    return Clock()


@pytest.fixture
def connect(server: FakeKubeApiServer, tmp_path: Path) -> Iterator[Callable[[], Any]]:
    """Build API clients for `server` as fluxbot builds them, one per replica."""
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", {"history": (server.url, server.token)})
    clients: list[Any] = []

    def make() -> Any:
        api_client = build_api_client(
            ClusterConfig(kubeconfig=kubeconfig, context="history"), KubernetesSettings()
        )
        clients.append(api_client)
        return api_client

    yield make
    for api_client in clients:
        api_client.close()


@pytest.fixture
def make_store(
    connect: Callable[[], Any], clock: Clock
) -> Iterator[Callable[..., ConfigMapHistory]]:
    """Build stores (replicas); each is closed after the test unless a test dropped it."""
    made: list[ConfigMapHistory] = []

    def make(**options: Any) -> ConfigMapHistory:
        settings: dict[str, Any] = {
            "retention": RETENTION,
            "flush_seconds": 0,
            "clock": clock,
        }
        store = ConfigMapHistory(connect(), NS, **{**settings, **options})
        made.append(store)
        return store

    yield make
    for store in made:
        store._stop.set()  # dropped stores stay dropped: no flush after the test
        if store._listwatch is not None:
            store._listwatch.interrupt()


def stored_payload(server: FakeKubeApiServer, name: str) -> dict[str, Any]:
    """The decoded JSON document one ConfigMap holds."""
    obj = server.get("v1", "ConfigMap", NS, name)
    assert obj is not None, f"ConfigMap {name} does not exist"
    raw = base64.b64decode(obj["binaryData"][PAYLOAD_KEY])
    document: dict[str, Any] = json.loads(gzip.decompress(raw))
    return document


def compressed_size(server: FakeKubeApiServer, name: str) -> int:
    """Bytes of the gzip payload one ConfigMap holds."""
    obj = server.get("v1", "ConfigMap", NS, name)
    assert obj is not None
    return len(base64.b64decode(obj["binaryData"][PAYLOAD_KEY]))


def wait_until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll until `predicate` holds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {predicate}"
        time.sleep(0.01)


# --- round trips --------------------------------------------------------------------------


def test_every_record_round_trips_through_the_cluster(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store()
    early, late = NOW - dt.timedelta(hours=3), NOW - dt.timedelta(hours=1)
    recorded = [
        transition("apps", Change.FAILING, early, message="kustomize build failed"),
        Transition(
            "production",
            "prod-us-1",
            "GitRepository",
            "flux-system",
            "infra",
            Change.REVISION,
            late,
            "main@sha1:aaa",
            "main@sha1:bbb",
        ),
        transition("web", Change.ADDED, late, environment="staging", cluster="stg-1"),
    ]
    a.record_transitions(recorded)
    a.record_action(action("apps", late))
    a.save_snooze(snooze("apps", NOW + dt.timedelta(days=1)))
    assert a.claim_run("production", NINE, NOW)
    a.finish_run("production", NINE, RunState.POSTED, NOW, message_ts="1732611600.000100")
    a.flush()

    b = make_store()  # another replica, loading what is in the cluster
    for store in (a, b):
        week_ago = NOW - dt.timedelta(days=7)
        assert store.transitions("production", week_ago, NOW) == recorded[:2]
        assert store.transitions("staging", week_ago, NOW) == recorded[2:]
        assert store.transitions("production", early, NOW) == recorded[1:2]  # since < at
        assert store.transitions("production", week_ago, early) == recorded[:1]  # at <= until
        assert store.actions("production", week_ago, NOW) == [action("apps", late)]
        assert store.failing_since("production") == {
            ("prod-eu-1", "Kustomization", "flux-system", "apps"): early
        }
        assert store.snoozes("production", NOW) == [snooze("apps", NOW + dt.timedelta(days=1))]
        assert store.snoozes("production", NOW + dt.timedelta(days=2)) == []
        assert store.snoozes("staging", NOW) == []
        run = store.last_run("production", [RunState.POSTED])
        assert run is not None
        assert (run.scheduled_for, run.state, run.message_ts, run.attempts) == (
            NINE,
            RunState.POSTED,
            "1732611600.000100",
            1,
        )
        assert store.last_run("production", [RunState.FAILED]) is None
        assert store.last_run("staging", list(RunState)) is None

    # One ConfigMap per environment, one for runs and snoozes; gzip JSON in binaryData.
    names = sorted(o["metadata"]["name"] for o in server.objects("ConfigMap", NS))
    assert names == [
        "fluxbot-history-env-production",
        "fluxbot-history-env-staging",
        "fluxbot-history-state",
    ]
    prod = server.get("v1", "ConfigMap", NS, "fluxbot-history-env-production")
    assert prod is not None
    assert prod["metadata"]["labels"][STORE_LABEL] == "fluxbot-history"
    assert "data" not in prod
    document = stored_payload(server, "fluxbot-history-env-production")
    assert [t["name"] for t in document["transitions"]] == ["apps", "infra"]
    assert document["actions"][0]["user"] == "alice"


def test_reads_include_what_is_recorded_but_not_yet_written(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store()
    a.record_transitions([transition("apps", at=NOW - dt.timedelta(minutes=5))])

    assert a.transitions("production", NOW - dt.timedelta(hours=1), NOW) == [
        transition("apps", at=NOW - dt.timedelta(minutes=5))
    ]
    assert server.objects("ConfigMap", NS) == []  # buffered: no write per transition
    a.flush()
    a.flush()  # nothing new: no write either
    assert len(server.writes()) == 1


def test_buffered_records_are_written_by_the_background_thread(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store(flush_seconds=0.1)
    for i in range(50):  # one at a time, as the watch cache hands them over
        a.record_transitions([transition(f"ks-{i}", at=NOW - dt.timedelta(seconds=50 - i))])

    name = "fluxbot-history-env-production"
    wait_until(lambda: server.get("v1", "ConfigMap", NS, name) is not None)
    wait_until(lambda: len(stored_payload(server, name)["transitions"]) == 50)
    assert len(server.writes()) <= 3  # batched, not one write per transition
    a.close()


def test_close_writes_the_buffer_and_then_refuses_records(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store(flush_seconds=3600)
    a.record_transitions([transition("apps", at=NOW)])

    a.close()
    a.close()  # idempotent

    assert [t.name for t in make_store().transitions("production", NOW - dt.timedelta(1), NOW)] == [
        "apps"
    ]
    with pytest.raises(HistoryUnavailable, match="closed"):
        a.record_transitions([transition("late", at=NOW)])
    with pytest.raises(HistoryUnavailable, match="closed"):
        a.record_action(action("late"))


def test_naive_datetimes_are_taken_as_utc(make_store: Callable[..., ConfigMapHistory]) -> None:
    a = make_store()
    a.record_transitions([transition("apps", at=NOW.replace(tzinfo=None))])
    a.flush()

    assert make_store().transitions("production", NOW - dt.timedelta(hours=1), NOW) == [
        transition("apps", at=NOW)
    ]


# --- several replicas ---------------------------------------------------------------------


def test_a_killed_leader_loses_nothing_it_flushed_and_the_next_does_not_repost(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store(flush_seconds=3600)  # the leader; its flush thread never fires here
    b = make_store()  # a follower, loaded before a wrote anything
    morning = [
        transition(f"ks-{i}", Change.FAILING, NOW - dt.timedelta(minutes=60 - i)) for i in range(20)
    ]
    a.record_transitions(morning)
    a.record_action(action("ks-3", NOW - dt.timedelta(minutes=30)))
    a.flush()
    assert a.claim_run("production", NINE, NOW)
    a.finish_run("production", NINE, RunState.POSTED, NOW, message_ts="1.2")
    a.record_transitions([transition("after-the-last-flush", at=NOW)])
    # a is killed here: no close(), no flush; b becomes leader and reloads.

    b.reload()

    day = (NOW - dt.timedelta(days=1), NOW)
    assert b.transitions("production", *day) == morning
    assert b.actions("production", *day) == [action("ks-3", NOW - dt.timedelta(minutes=30))]
    assert len(b.failing_since("production")) == 20
    assert not b.claim_run("production", NINE, NOW + dt.timedelta(hours=1))  # no repost
    posted = b.last_run("production", [RunState.POSTED])
    assert posted is not None
    assert posted.message_ts == "1.2"
    # What a recorded after its last flush is the documented loss (at most flush_seconds).
    assert transition("after-the-last-flush", at=NOW) not in b.transitions("production", *day)


def test_claim_run_is_exclusive_between_replicas(
    make_store: Callable[..., ConfigMapHistory],
) -> None:
    a, b = make_store(), make_store()  # both loaded before any claim

    assert a.claim_run("production", NINE, NOW)
    assert not b.claim_run("production", NINE, NOW)  # a is posting it
    assert not a.claim_run("production", NINE, NOW)
    assert b.claim_run("staging", NINE, NOW)  # other environments are other runs

    a.finish_run("production", NINE, RunState.FAILED, NOW, error="channel_not_found")
    assert b.claim_run("production", NINE, NOW + dt.timedelta(minutes=1))  # FAILED: retry
    b.finish_run("production", NINE, RunState.POSTED, NOW, message_ts="9.9")
    assert not a.claim_run("production", NINE, NOW + dt.timedelta(hours=1))
    a.reload()
    run = a.last_run("production", [RunState.POSTED])
    assert run is not None
    assert (run.attempts, run.message_ts) == (2, "9.9")


def test_a_claim_left_posting_by_a_crash_can_be_taken_after_the_claim_timeout(
    make_store: Callable[..., ConfigMapHistory],
) -> None:
    a = make_store(claim_timeout=dt.timedelta(minutes=2))
    b = make_store(claim_timeout=dt.timedelta(minutes=2))
    assert a.claim_run("production", NINE, NOW)
    # a crashes while posting.

    assert not b.claim_run("production", NINE, NOW + dt.timedelta(seconds=119))
    assert b.claim_run("production", NINE, NOW + dt.timedelta(seconds=120))
    run = b.last_run("production", [RunState.POSTING])
    assert run is not None
    assert run.attempts == 2


def test_racing_claims_of_two_leaders_give_exactly_one_winner(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    stores = [make_store() for _ in range(4)]
    start = threading.Barrier(len(stores))
    results: list[bool] = []

    def claim(store: ConfigMapHistory) -> None:
        start.wait()
        results.append(store.claim_run("production", NINE, NOW))

    threads = [threading.Thread(target=claim, args=(s,)) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)

    assert sorted(results) == [False, False, False, True]
    document = stored_payload(server, "fluxbot-history-state")
    assert [r["state"] for r in document["runs"]] == ["posting"]
    assert document["runs"][0]["attempts"] == 1


def test_two_writers_merge_on_conflict_instead_of_overwriting(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    """During a handover old and new leader may both write: nothing either wrote is lost."""
    a, b = make_store(), make_store()
    minute = dt.timedelta(minutes=1)
    a.record_transitions([transition("from-a", at=NOW - 4 * minute)])
    b.record_transitions([transition("from-b", at=NOW - 3 * minute)])
    a.flush()
    b.flush()  # b thought the ConfigMap absent: its create conflicts, it re-reads and merges
    a.record_transitions([transition("from-a-2", at=NOW - 2 * minute)])
    a.save_snooze(snooze("from-a", NOW + dt.timedelta(hours=1)))
    b.record_transitions([transition("from-b-2", at=NOW - minute)])
    b.save_snooze(snooze("from-b", NOW + dt.timedelta(hours=2)))
    b.flush()
    a.flush()  # a's resourceVersion is stale now: 409, re-read, merge

    conflicts = [r for r in server.writes() if r.status == 409]
    assert len(conflicts) >= 3
    c = make_store()
    names = [t.name for t in c.transitions("production", NOW - dt.timedelta(days=1), NOW)]
    assert names == ["from-a", "from-b", "from-a-2", "from-b-2"]
    assert [s.name for s in c.snoozes("production", NOW)] == ["from-a", "from-b"]


def test_following_replicas_see_each_others_writes_without_reloading(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    leader, follower = make_store(follow=True), make_store(follow=True)
    server.wait_for_watches(2)
    day = (NOW - dt.timedelta(days=1), NOW)

    leader.record_transitions([transition("apps", at=NOW - dt.timedelta(minutes=1))])
    leader.flush()
    wait_until(lambda: len(follower.transitions("production", *day)) == 1)
    # A person snoozes through the follower, which handled the Slack interaction.
    follower.save_snooze(snooze("apps", NOW + dt.timedelta(hours=1)))
    follower.record_action(action("apps", NOW - dt.timedelta(seconds=30)))
    follower.flush()
    wait_until(lambda: leader.snoozes("production", NOW) != [])
    wait_until(lambda: leader.actions("production", *day) != [])
    assert leader.transitions("production", *day) == follower.transitions("production", *day)

    # The watch recovers from an API server restart (relist, then watch again).
    server.stop()
    server.start()
    leader.record_transitions([transition("web", at=NOW)])
    leader.flush()
    wait_until(lambda: len(follower.transitions("production", *day)) == 2, timeout=10)

    begun = time.monotonic()
    follower.close()
    assert time.monotonic() - begun < 1


# --- size and retention -------------------------------------------------------------------


def test_an_oversized_shard_drops_its_oldest_transitions_and_says_so(
    server: FakeKubeApiServer,
    make_store: Callable[..., ConfigMapHistory],
    caplog: pytest.LogCaptureFixture,
) -> None:
    a = make_store(max_shard_bytes=16 * 1024)
    start = NOW - dt.timedelta(days=2)
    still_failing = transition("broken-since-long", Change.FAILING, start)
    noise = [
        transition(
            f"ks-{i}",
            Change.REVISION,
            start + dt.timedelta(seconds=i + 1),
            message=secrets.token_hex(40),  # incompressible
        )
        for i in range(2000)
    ]
    a.record_transitions([still_failing, *noise])
    a.record_action(action("ks-1", start + dt.timedelta(seconds=3)))

    with caplog.at_level(logging.WARNING, logger="bot.history.configmap"):
        a.flush()

    name = "fluxbot-history-env-production"
    assert compressed_size(server, name) <= 16 * 1024
    kept = a.transitions("production", start - dt.timedelta(days=1), NOW)
    assert 100 < len(kept) < 2000
    assert kept == noise[-len(kept) :]  # the newest survive, the oldest went first
    # Actions are rarer and worth more: they go only after every droppable transition.
    assert a.actions("production", start, NOW) == [action("ks-1", start + dt.timedelta(seconds=3))]
    # Its FAILING transition is gone, but not the fact that it is failing, and since when.
    broken = {("prod-eu-1", "Kustomization", "flux-system", "broken-since-long"): start}
    assert a.failing_since("production") == broken
    b = make_store()
    assert b.transitions("production", start - dt.timedelta(days=1), NOW) == kept
    assert b.failing_since("production") == broken
    warning = next(r.getMessage() for r in caplog.records if "over the 16 KiB" in r.getMessage())
    assert f"dropped the {2001 - len(kept)} oldest transitions and 0 oldest actions" in warning


def test_a_full_day_of_churn_stays_under_the_configmap_limit(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    """With the default 900 KiB cap the shard is always accepted (the fake enforces 1 MiB)."""
    a = make_store()
    start = NOW - dt.timedelta(days=1)
    a.record_transitions(
        [
            transition(
                f"ks-{i}",
                Change.REVISION,
                start + dt.timedelta(seconds=i),
                message=secrets.token_hex(64),
            )
            for i in range(12_000)
        ]
    )
    begun = time.monotonic()
    a.flush()

    assert time.monotonic() - begun < 5
    size = compressed_size(server, "fluxbot-history-env-production")
    assert 800 * 1024 < size <= 900 * 1024
    kept = a.transitions("production", start - dt.timedelta(seconds=1), NOW)
    assert 1000 < len(kept) < 12_000
    assert kept[-1].name == "ks-11999"


def test_records_older_than_the_retention_are_pruned_on_write(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory], clock: Clock
) -> None:
    a = make_store()
    day = dt.timedelta(days=1)
    a.record_transitions([transition("old", at=NOW - 8 * day), transition("new", at=NOW - day)])
    a.record_action(action("old", NOW - 8 * day))
    a.save_snooze(snooze("long-expired", NOW - 8 * day))
    a.save_snooze(snooze("expired-yesterday", NOW - day))
    for days_ago in (10, 9, 1):  # daily digests; the oldest two are past retention
        assert a.claim_run("production", NINE - days_ago * day, NOW)
        a.finish_run("production", NINE - days_ago * day, RunState.POSTED, NOW)
    # Past retention too, but the newest skipped run: last_run() must still find it.
    a.finish_run("production", NINE - 12 * day, RunState.SKIPPED, NOW)
    a.flush()

    prod = stored_payload(server, "fluxbot-history-env-production")
    assert [t["name"] for t in prod["transitions"]] == ["new"]
    assert prod["actions"] == []
    # Still failing (no recovery seen), for longer than the retention: not forgotten.
    assert a.failing_since("production") == {
        ("prod-eu-1", "Kustomization", "flux-system", "old"): NOW - 8 * day,
        ("prod-eu-1", "Kustomization", "flux-system", "new"): NOW - day,
    }
    state = stored_payload(server, "fluxbot-history-state")
    assert [s["name"] for s in state["snoozes"]] == ["expired-yesterday"]
    kept_runs = sorted((r["scheduled_for"][:10], r["state"]) for r in state["runs"])
    assert kept_runs == [("2026-11-14", "skipped"), ("2026-11-25", "posted")]

    clock.now = NOW + 2 * day  # two days later "new" is still within seven days
    a.record_transitions([transition("later", at=NOW + 2 * day)])
    a.flush()
    names = [
        t["name"] for t in stored_payload(server, "fluxbot-history-env-production")["transitions"]
    ]
    assert names == ["new", "later"]


# --- failures -----------------------------------------------------------------------------


def test_while_the_api_server_is_down_records_wait_in_memory(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store()
    a.record_transitions([transition("apps", at=NOW)])
    server.stop()
    try:
        with pytest.raises(HistoryUnavailable, match="cannot write fluxbot-history-env"):
            a.flush()
        with pytest.raises(HistoryUnavailable):
            a.claim_run("production", NINE, NOW)
        with pytest.raises(HistoryUnavailable):
            make_store()  # a new replica cannot load
        assert a.transitions("production", NOW - dt.timedelta(hours=1), NOW) == [
            transition("apps", at=NOW)
        ]
    finally:
        server.start()

    a.flush()
    assert [
        t["name"] for t in stored_payload(server, "fluxbot-history-env-production")["transitions"]
    ] == ["apps"]
    assert a.claim_run("production", NINE, NOW)


def test_forbidden_is_reported_in_words(
    server: FakeKubeApiServer, make_store: Callable[..., ConfigMapHistory]
) -> None:
    a = make_store()
    server.deny("create", "configmaps")

    with pytest.raises(
        HistoryUnavailable, match=r"HTTP 403 Forbidden: configmaps is forbidden: .* cannot create"
    ):
        a.save_snooze(snooze("apps", NOW))


def test_an_unreadable_shard_is_logged_and_ignored(
    server: FakeKubeApiServer,
    make_store: Callable[..., ConfigMapHistory],
    caplog: pytest.LogCaptureFixture,
) -> None:
    server.apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "fluxbot-history-state",
                "namespace": NS,
                "labels": {STORE_LABEL: "fluxbot-history", "fluxbot.io/history-shard": "state"},
            },
            "binaryData": {PAYLOAD_KEY: base64.b64encode(b"not gzip").decode()},
        }
    )
    with caplog.at_level(logging.ERROR, logger="bot.history.configmap"):
        a = make_store()
    assert "fluxbot-history-state is unreadable" in caplog.text

    assert a.claim_run("production", NINE, NOW)  # and it is overwritten with good data
    assert make_store().last_run("production", [RunState.POSTING]) is not None


# --- the fake API server's ConfigMaps -----------------------------------------------------


def test_the_fake_serves_configmaps_as_kube_apiserver_does(
    server: FakeKubeApiServer, connect: Callable[[], Any]
) -> None:
    core = client.CoreV1Api(connect())
    body = {"metadata": {"name": "cm", "labels": {"a": "b"}}, "data": {"k": "v"}}
    created = core.create_namespaced_config_map(NS, body)
    assert created.data == {"k": "v"}
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(NS, body)
    assert (err.value.status, json.loads(err.value.body)["reason"]) == (409, "AlreadyExists")

    patched = core.patch_namespaced_config_map(
        "cm", NS, {"data": {"k2": "v2"}}, _content_type="application/merge-patch+json"
    )
    assert patched.data == {"k": "v", "k2": "v2"}
    stale = {
        "metadata": {"name": "cm", "resourceVersion": created.metadata.resource_version},
        "data": {},
    }
    with pytest.raises(ApiException) as err:
        core.replace_namespaced_config_map("cm", NS, stale)
    assert err.value.status == 409
    assert [
        c.metadata.name for c in core.list_namespaced_config_map(NS, label_selector="a=b").items
    ] == ["cm"]

    too_big = base64.b64encode(b"x" * (1024 * 1024 + 1)).decode()
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": "big"}, "binaryData": {"blob": too_big}}
        )
    assert err.value.status == 422
    assert "may not be more than 1048576 bytes" in json.loads(err.value.body)["message"]
    with pytest.raises(ApiException) as err:
        core.create_namespaced_config_map(
            NS, {"metadata": {"name": "bad"}, "binaryData": {"blob": "%%%"}}
        )
    assert err.value.status == 422

    events = watch.Watch().stream(
        core.list_namespaced_config_map,
        NS,
        resource_version=created.metadata.resource_version,
        timeout_seconds=2,
    )
    first = next(events)
    assert (first["type"], first["object"].data) == ("MODIFIED", {"k": "v", "k2": "v2"})
    core.delete_namespaced_config_map("cm", NS)
    assert next(events)["type"] == "DELETED"
