"""Both history stores keep what digests, incidents and restarts need, in the same way.

Every test here runs twice: against `SqliteHistory` on a file, and against `ConfigMapHistory`
talking to a fake API server over HTTP (tests/fakes/kube_api). `reopen` plays a restart (the
next process on the same file) or the next leader (another replica loading the ConfigMaps),
after the current store closed. What only one store does (SQLite's files and processes, the
ConfigMaps' shards, sizes, conflicts and followers) is tested in test_history_sqlite.py and
test_configmap_history.py.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from bot.config import ClusterConfig, KubernetesSettings
from bot.domain.change_window import ChangeWindow, fold
from bot.domain.history import ActionRecord, HistoryStore, ObjectKey, RunState
from bot.domain.incidents import IncidentRecord, IncidentState
from bot.domain.transitions import Change, KnownState
from bot.history.configmap import DEFAULT_CLAIM_TIMEOUT, ConfigMapHistory
from bot.history.sqlite import DEFAULT_CLAIM_TIMEOUT as SQLITE_CLAIM_TIMEOUT
from bot.history.sqlite import SqliteHistory
from bot.kube.clients import build_api_client
from tests.fakes.kube_api import FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig
from tests.history_records import HOUR, MIN, PROD, STAGING, T0, action, at, snooze, tr

APPS = ("prod-eu-1", "Kustomization", "flux-system", "apps")

Open = Callable[[], HistoryStore]


@pytest.fixture(params=["sqlite", "configmap"])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Open]:
    """Opens the store under test on one history; every store opened is closed afterwards."""
    opened: list[HistoryStore] = []
    cleanup: list[Callable[[], None]] = []
    if request.param == "sqlite":

        def make() -> HistoryStore:
            return SqliteHistory(tmp_path / "history.db")

    else:
        server = FakeKubeApiServer("history").start()
        cleanup.append(server.stop)
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", {"history": (server.url, server.token)}
        )

        def make() -> HistoryStore:
            api_client = build_api_client(
                ClusterConfig(kubeconfig=kubeconfig, context="history"), KubernetesSettings()
            )
            cleanup.append(api_client.close)
            # Retention pruning on write follows the store's clock: keep it beside the records.
            return ConfigMapHistory(
                api_client,
                "fluxbot",
                retention=dt.timedelta(days=8),
                flush_seconds=0,
                clock=lambda: T0 + HOUR,
            )

    def open_one() -> HistoryStore:
        store = make()
        opened.append(store)
        return store

    yield open_one
    for store in opened:
        store.close()
    for step in reversed(cleanup):
        step()


@pytest.fixture
def store(open_store: Open) -> HistoryStore:
    """One open store."""
    return open_store()


def reopen(store: HistoryStore, open_store: Open) -> HistoryStore:
    """Close `store` and open the history again, as a restarted process or the next leader."""
    store.close()
    return open_store()


def before_and_after_restart(store: HistoryStore, open_store: Open) -> Iterator[HistoryStore]:
    """`store`, then (once the caller checked it) the history reopened after closing it."""
    yield store
    yield reopen(store, open_store)


# --- transitions ----------------------------------------------------------------------------


def test_transitions_round_trip_with_every_field_and_aware_utc_times(
    store: HistoryStore, open_store: Open
) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    recorded = [
        tr(Change.ADDED, at(0), new="main@sha1:" + "a" * 40),
        tr(Change.REVISION, at(1).replace(microsecond=123456), old="1.0.0", new="1.0.1"),
        tr(Change.FAILING, at(2).astimezone(cet), message="health check failed after 5m0s"),
        tr(Change.SUSPENDED, at(3), kind="HelmRelease", cluster="prod-us-1", name="podinfo"),
    ]
    store.record_transitions(recorded)
    for current in before_and_after_restart(store, open_store):
        got = current.transitions(PROD, at(-1), at(10))
        assert got == recorded
        assert all(t.at.tzinfo == dt.UTC for t in got)
        assert got[1].at.microsecond == 123456
        assert got[2].change is Change.FAILING


def test_transitions_window_excludes_since_and_includes_until(store: HistoryStore) -> None:
    store.record_transitions([tr(Change.REVISION, at(m), new=str(m)) for m in range(5)])
    assert [t.new for t in store.transitions(PROD, at(1), at(3))] == ["2", "3"]
    assert store.transitions(PROD, at(4), at(9)) == []
    assert [t.new for t in store.transitions(PROD, at(-1), at(0))] == ["0"]


def test_transitions_are_per_environment_and_oldest_first(store: HistoryStore) -> None:
    store.record_transitions([tr(Change.REVISION, at(5), new="late")])
    store.record_transitions(
        [
            tr(Change.REVISION, at(1), new="early"),
            tr(Change.FAILING, at(3), environment=STAGING, cluster="stg-1"),
        ]
    )
    assert [t.new for t in store.transitions(PROD, at(0), at(9))] == ["early", "late"]
    assert [t.cluster for t in store.transitions(STAGING, at(0), at(9))] == ["stg-1"]
    assert store.transitions("nowhere", at(0), at(9)) == []


def test_recording_nothing_is_fine(store: HistoryStore) -> None:
    store.record_transitions([])
    assert store.transitions(PROD, at(-10), at(10)) == []


def test_the_change_window_is_the_transitions_folded_per_object(
    store: HistoryStore, open_store: Open
) -> None:
    """What a digest reads of a window (HistoryStore.change_window): each store folds its rows
    its own way, and must give exactly `fold` of its transitions, order included."""
    sha = "main@sha1:{}".format
    recorded = [
        tr(Change.FAILING, at(0), "before-the-window"),
        tr(Change.REVISION, at(1), "apps", old=sha("a"), new=sha("b")),
        # Two objects failing at the same moment (one listing): ties keep first-seen order.
        tr(Change.FAILING, at(2), "zeta", message="first"),
        tr(Change.FAILING, at(2), "mu", message="first"),
        tr(Change.FAILING, at(2), "alpha", message="first"),
        tr(Change.ADDED, at(3), "new-one", new=sha("c")),
        tr(Change.FAILING, at(4), "zeta", message="again"),
        tr(Change.RECOVERED, at(5), "alpha"),
        tr(Change.FAILING, at(6), "zeta", message="flapping"),
        dataclasses.replace(
            tr(Change.REVISION, at(7), "apps", old=sha("b"), new=sha("d")),
            down_since=at(6.5),
        ),
        tr(Change.REVISION, at(8), "podinfo", kind="HelmRelease", old="6.0.0", new="6.1.0"),
        tr(Change.REVISION, at(8), "infra", old=sha("x"), new=sha("d")),
        tr(Change.FAILING, at(9), "alpha", message="second", environment=STAGING),
        tr(Change.SUSPENDED, at(9), "infra"),
        tr(Change.REVISION, at(30), "apps", old=sha("d"), new=sha("e")),
    ]
    store.record_transitions(recorded)
    window = (at(0), at(10))
    for current in before_and_after_restart(store, open_store):
        got = current.change_window(PROD, *window)
        assert got.same_as(fold(current.transitions(PROD, *window)))
        assert got.failures == {_key("zeta"): 3, _key("mu"): 1, _key("alpha"): 1}
        assert [(t.name, t.message) for t in got.failing] == [
            ("mu", "first"),
            ("alpha", "first"),
            ("zeta", "flapping"),
        ]
        assert [t.name for t in got.recovered] == ["alpha"]
        assert list(got.revisions.items()) == [
            (_key("apps"), (sha("a"), sha("d"), at(7), at(6.5), PROD)),
            (_key("podinfo", "HelmRelease"), ("6.0.0", "6.1.0", at(8), None, PROD)),
            (_key("infra"), (sha("x"), sha("d"), at(8), None, PROD)),
        ]
        assert current.change_window("nowhere", *window).same_as(ChangeWindow())


def _key(name: str, kind: str = "Kustomization") -> ObjectKey:
    return ("prod-eu-1", kind, "flux-system", name)


# --- actions --------------------------------------------------------------------------------


def test_actions_round_trip_within_the_window(store: HistoryStore, open_store: Open) -> None:
    records = [action(at(m), name=f"app-{m}") for m in range(4)]
    failed = ActionRecord(
        at(4), PROD, "prod-us-1", "HelmRelease", "team", "podinfo", "rollback", "bob", False,
        "rollback failed: no earlier successful release",
    )  # fmt: skip
    for record in [*records, failed, action(at(2), environment=STAGING)]:
        store.record_action(record)
    for current in before_and_after_restart(store, open_store):
        assert current.actions(PROD, at(-1), at(9)) == [*records, failed]
        assert [a.name for a in current.actions(PROD, at(1), at(3))] == ["app-2", "app-3"]
        assert current.actions(STAGING, at(0), at(9)) == [action(at(2), environment=STAGING)]


# --- failing_since --------------------------------------------------------------------------


def test_failing_since_gives_the_later_time_after_failing_recovered_failing(
    store: HistoryStore,
) -> None:
    store.record_transitions([tr(Change.FAILING, at(0)), tr(Change.RECOVERED, at(5))])
    assert store.failing_since(PROD) == {}
    store.record_transitions([tr(Change.FAILING, at(9))])
    assert store.failing_since(PROD) == {APPS: at(9)}


def test_removed_clears_failing_since(store: HistoryStore) -> None:
    store.record_transitions(
        [tr(Change.FAILING, at(0), name="gone"), tr(Change.FAILING, at(1), name="kept")]
    )
    store.record_transitions([tr(Change.REMOVED, at(2), name="gone")])
    assert list(store.failing_since(PROD)) == [
        ("prod-eu-1", "Kustomization", "flux-system", "kept")
    ]
    # Added back and failing again: a new streak.
    store.record_transitions(
        [tr(Change.ADDED, at(3), name="gone"), tr(Change.FAILING, at(3), name="gone")]
    )
    assert store.failing_since(PROD)[("prod-eu-1", "Kustomization", "flux-system", "gone")] == at(3)


def test_failing_again_without_recovering_keeps_the_first_time(
    store: HistoryStore, open_store: Open
) -> None:
    # A restarted watch cache reports every failing object as failing once more.
    store.record_transitions([tr(Change.FAILING, at(0))])
    store.record_transitions([tr(Change.ADDED, at(30)), tr(Change.FAILING, at(30))])
    assert list(store.failing_since(PROD).values()) == [at(0)]
    assert list(reopen(store, open_store).failing_since(PROD).values()) == [at(0)]


def test_failing_since_ignores_other_transitions_and_environments(store: HistoryStore) -> None:
    store.record_transitions(
        [
            tr(Change.FAILING, at(0)),
            tr(Change.REVISION, at(1), new="x"),
            tr(Change.SUSPENDED, at(2)),
            tr(Change.FAILING, at(0), environment=STAGING, cluster="stg-1"),
        ]
    )
    assert list(store.failing_since(PROD).values()) == [at(0)]
    assert list(store.failing_since(STAGING)) == [("stg-1", "Kustomization", "flux-system", "apps")]


def test_an_older_failing_recorded_late_does_not_undo_a_recovery(store: HistoryStore) -> None:
    store.record_transitions([tr(Change.RECOVERED, at(5))])
    store.record_transitions([tr(Change.FAILING, at(1))])
    assert store.failing_since(PROD) == {}


def test_an_object_failing_for_longer_than_the_retention_keeps_its_time(
    store: HistoryStore,
) -> None:
    store.record_transitions([tr(Change.FAILING, at(0)), tr(Change.FAILING, at(0), name="fixed")])
    store.record_transitions([tr(Change.RECOVERED, at(1), name="fixed")])
    store.prune(at(60 * 24 * 10))
    assert store.transitions(PROD, at(-1), at(9)) == []
    assert store.failing_since(PROD) == {APPS: at(0)}


# --- what fluxbot last knew -----------------------------------------------------------------


def test_a_listing_replaces_what_is_known_of_its_kind_and_survives_a_restart(
    store: HistoryStore, open_store: Open
) -> None:
    ks = ("prod-eu-1", "Kustomization", "flux-system", "apps")
    gone = ("prod-eu-1", "Kustomization", "flux-system", "gone")
    hr = ("prod-eu-1", "HelmRelease", "flux-system", "podinfo")
    store.record_listing(PROD, "prod-eu-1", "Kustomization", {gone: KnownState(False, "v1", False)})
    store.record_listing(PROD, "prod-eu-1", "HelmRelease", {hr: KnownState(False, "6.7.1", True)})
    store.record_listing(PROD, "prod-eu-1", "Kustomization", {ks: KnownState(True, "v2", False)})
    expected = {ks: KnownState(True, "v2", False), hr: KnownState(False, "6.7.1", True)}
    assert store.known_states(PROD, "prod-eu-1") == expected
    assert reopen(store, open_store).known_states(PROD, "prod-eu-1") == expected


def test_the_last_time_each_cluster_was_read_survives_a_restart(
    store: HistoryStore, open_store: Open
) -> None:
    store.mark_seen(PROD, ["prod-eu-1", "prod-us-1"], at(0))
    store.mark_seen(PROD, ["prod-eu-1"], at(5))
    store.mark_seen(STAGING, ["stg-1"], at(1))
    for current in before_and_after_restart(store, open_store):
        assert current.last_seen(PROD) == {"prod-eu-1": at(5), "prod-us-1": at(0)}
        assert current.last_seen(STAGING) == {"stg-1": at(1)}
        assert current.last_seen("nowhere") == {}


# --- snoozes --------------------------------------------------------------------------------


def test_snoozes_expire_at_their_until(store: HistoryStore) -> None:
    store.save_snooze(snooze(at(60), name="short"))
    store.save_snooze(snooze(at(600), name="long"))
    assert [s.name for s in store.snoozes(PROD, at(0))] == ["short", "long"]
    assert [s.name for s in store.snoozes(PROD, at(60))] == ["long"]
    assert store.snoozes(PROD, at(600)) == []
    assert store.snoozes(STAGING, at(0)) == []


def test_saving_a_snooze_replaces_the_objects_snooze(store: HistoryStore) -> None:
    store.save_snooze(snooze(at(60)))
    store.save_snooze(snooze(at(120), by="bob"))
    assert store.snoozes(PROD, at(0)) == [snooze(at(120), by="bob")]
    assert store.snoozes(PROD, at(0))[0].until.tzinfo == dt.UTC


# --- digest runs ----------------------------------------------------------------------------


def test_a_run_is_claimed_once_then_refused_once_posted_or_skipped(store: HistoryStore) -> None:
    assert store.claim_run(PROD, T0, T0)
    assert not store.claim_run(PROD, T0, T0 + MIN)  # being posted, by a live poster
    store.finish_run(PROD, T0, RunState.POSTED, T0 + MIN, message_ts="1700000000.000100")
    assert not store.claim_run(PROD, T0, T0 + 10 * HOUR)
    assert store.claim_run(STAGING, T0, T0)  # another environment
    assert store.claim_run(PROD, T0 + 6 * HOUR, T0 + 6 * HOUR)  # another schedule
    store.finish_run(PROD, T0 + 6 * HOUR, RunState.SKIPPED, T0 + 6 * HOUR)
    assert not store.claim_run(PROD, T0 + 6 * HOUR, T0 + 10 * HOUR)


def test_a_failed_run_is_claimed_again_and_counts_attempts(store: HistoryStore) -> None:
    assert store.claim_run(PROD, T0, T0)
    store.finish_run(PROD, T0, RunState.FAILED, T0 + MIN, error="channel_not_found")
    assert store.claim_run(PROD, T0, T0 + 2 * MIN)
    run = store.last_run(PROD, [RunState.POSTING])
    assert run is not None
    assert run.attempts == 2
    assert run.updated_at == T0 + 2 * MIN


def test_a_run_left_posting_by_a_crash_is_claimed_again_after_the_claim_timeout(
    store: HistoryStore, open_store: Open
) -> None:
    assert DEFAULT_CLAIM_TIMEOUT == SQLITE_CLAIM_TIMEOUT
    assert store.claim_run(PROD, T0, T0)  # and never finished: the process dies
    restarted = reopen(store, open_store)
    assert not restarted.claim_run(PROD, T0, T0 + DEFAULT_CLAIM_TIMEOUT - MIN)
    assert restarted.claim_run(PROD, T0, T0 + DEFAULT_CLAIM_TIMEOUT)
    restarted.finish_run(PROD, T0, RunState.POSTED, T0 + DEFAULT_CLAIM_TIMEOUT, message_ts="1.2")
    assert not restarted.claim_run(PROD, T0, T0 + 10 * DEFAULT_CLAIM_TIMEOUT)
    run = restarted.last_run(PROD, [RunState.POSTED])
    assert run is not None
    assert (run.attempts, run.message_ts) == (2, "1.2")


def test_finish_run_and_last_run(store: HistoryStore) -> None:
    assert store.last_run(PROD, list(RunState)) is None
    for hours, state in ((0, RunState.POSTED), (6, RunState.SKIPPED), (12, RunState.FAILED)):
        scheduled = T0 + hours * HOUR
        assert store.claim_run(PROD, scheduled, scheduled)
        store.finish_run(
            PROD, scheduled, state, scheduled + MIN,
            message_ts="1.1" if state is RunState.POSTED else "",
            error="ratelimited" if state is RunState.FAILED else "",
        )  # fmt: skip
    posted = store.last_run(PROD, [RunState.POSTED])
    assert posted is not None
    assert (posted.scheduled_for, posted.state, posted.message_ts) == (T0, RunState.POSTED, "1.1")
    assert posted.updated_at == T0 + MIN
    assert posted.attempts == 1
    latest = store.last_run(PROD, [RunState.POSTED, RunState.SKIPPED])
    assert latest is not None
    assert latest.scheduled_for == T0 + 6 * HOUR
    failed = store.last_run(PROD, list(RunState))
    assert failed is not None
    assert (failed.state, failed.error) == (RunState.FAILED, "ratelimited")
    assert store.last_run(PROD, []) is None
    assert store.last_run(STAGING, list(RunState)) is None


def test_a_run_can_be_finished_without_a_claim(store: HistoryStore) -> None:
    store.finish_run(PROD, T0, RunState.SKIPPED, T0)
    assert not store.claim_run(PROD, T0, T0 + HOUR)
    run = store.last_run(PROD, [RunState.SKIPPED])
    assert run is not None
    assert run.attempts == 0


# --- restarts -------------------------------------------------------------------------------


def test_everything_is_still_there_after_close_and_reopen(
    store: HistoryStore, open_store: Open
) -> None:
    store.record_transitions([tr(Change.FAILING, at(0)), tr(Change.REVISION, at(1), new="v2")])
    store.record_action(action(at(2)))
    store.save_snooze(snooze(at(600)))
    assert store.claim_run(PROD, T0, T0)
    store.finish_run(PROD, T0, RunState.POSTED, T0 + MIN, message_ts="9.9")
    store.close()
    store.close()  # idempotent

    second = open_store()
    assert [t.change for t in second.transitions(PROD, at(-1), at(9))] == [
        Change.FAILING,
        Change.REVISION,
    ]
    assert second.actions(PROD, at(-1), at(9)) == [action(at(2))]
    assert second.snoozes(PROD, at(0)) == [snooze(at(600))]
    assert list(second.failing_since(PROD).values()) == [at(0)]
    run = second.last_run(PROD, [RunState.POSTED])
    assert run is not None
    assert run.message_ts == "9.9"
    assert not second.claim_run(PROD, T0, T0 + HOUR)


# --- incidents ------------------------------------------------------------------------------


def test_incidents_are_kept_across_a_restart_and_resolved_ones_pruned(
    store: HistoryStore, open_store: Open
) -> None:
    open_one = IncidentRecord(
        PROD, "prod-1", "cluster-unreadable", "", "", IncidentState.OPEN, T0 - HOUR,
        channel="C0PROD", message_ts="1700000000.000100", posted_at=T0, announced_at=T0,
    )  # fmt: skip
    resolved = IncidentRecord(
        PROD, "prod-1", "GitRepository", "flux-system", "flux-system",
        IncidentState.RESOLVED, T0 - 4 * HOUR, resolved_at=T0 - 3 * HOUR, outcome="x",
    )  # fmt: skip
    store.save_incident(open_one)
    store.save_incident(resolved)
    store.save_incident(dataclasses.replace(open_one, flaps=2))  # replaced, not added
    restarted = reopen(store, open_store)
    by_id = sorted([dataclasses.replace(open_one, flaps=2), resolved], key=lambda r: r.id)
    assert restarted.incidents(PROD) == by_id
    assert restarted.incidents(STAGING) == []
    assert restarted.prune(T0 - 2 * HOUR) >= 1
    assert restarted.incidents(PROD) == [dataclasses.replace(open_one, flaps=2)]
    assert [i.id for i in reopen(restarted, open_store).incidents(PROD)] == [open_one.id]


# --- prune ----------------------------------------------------------------------------------


def test_prune_forgets_older_records_counts_them_and_keeps_what_digests_need(
    store: HistoryStore, open_store: Open
) -> None:
    now = T0 + HOUR
    store.record_transitions(
        [
            tr(Change.FAILING, now - 3 * HOUR, name="a"),
            tr(Change.FAILING, now - 2 * HOUR, name="b"),
            tr(Change.FAILING, now - 2 * HOUR, name="c", environment=STAGING),
        ]
    )
    store.record_action(action(now - 3 * HOUR, name="a"))
    store.save_snooze(snooze(now - 3 * HOUR, name="a"))
    store.save_snooze(snooze(now + HOUR, name="b"))
    for scheduled in (now - 5 * HOUR, now - 4 * HOUR):
        assert store.claim_run(PROD, scheduled, now)
        store.finish_run(PROD, scheduled, RunState.POSTED, now)

    # a, its action, its snooze, the older of the two runs (the newest of a state stays)
    assert store.prune(now - 2 * HOUR - MIN) == 4

    week = (now - dt.timedelta(days=7), now)
    for current in before_and_after_restart(store, open_store):
        assert [t.name for t in current.transitions(PROD, *week)] == ["b"]
        assert [t.name for t in current.transitions(STAGING, *week)] == ["c"]
        assert current.actions(PROD, *week) == []
        assert [s.name for s in current.snoozes(PROD, now - 5 * HOUR)] == ["b"]
        last = current.last_run(PROD, list(RunState))
        assert last is not None
        assert last.scheduled_for == now - 4 * HOUR
        # Pruning forgets transitions, not that an object is failing ("a" still is).
        assert current.failing_since(PROD) == {
            ("prod-eu-1", "Kustomization", "flux-system", "a"): now - 3 * HOUR,
            ("prod-eu-1", "Kustomization", "flux-system", "b"): now - 2 * HOUR,
        }
        assert current.prune(now - 2 * HOUR - MIN) == 0
