"""The SQLite history store keeps what digests need, across threads, processes and restarts."""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.history import ActionRecord, HistoryStore, RunState, Snooze
from bot.domain.transitions import Change, Transition
from bot.state.sqlite import DEFAULT_CLAIM_TIMEOUT, SCHEMA_VERSION, HistoryError, SqliteHistory

T0 = dt.datetime(2026, 11, 16, 9, 0, tzinfo=dt.UTC)
MIN = dt.timedelta(minutes=1)
HOUR = dt.timedelta(hours=1)
PROD, STAGING = "production", "staging"


def at(minutes: float) -> dt.datetime:
    """T0 plus `minutes`."""
    return T0 + dt.timedelta(minutes=minutes)


def tr(
    change: Change,
    when: dt.datetime,
    name: str = "apps",
    *,
    environment: str = PROD,
    cluster: str = "prod-eu-1",
    kind: str = "Kustomization",
    old: str = "",
    new: str = "",
    message: str = "",
) -> Transition:
    """A transition of one object (by default production's Kustomization flux-system/apps)."""
    return Transition(
        environment, cluster, kind, "flux-system", name, change, when, old, new, message
    )


def action(when: dt.datetime, environment: str = PROD, name: str = "apps") -> ActionRecord:
    """A reconcile by alice."""
    return ActionRecord(
        when, environment, "prod-eu-1", "Kustomization", "flux-system", name, "reconcile",
        "alice", True, "reconciled by alice",
    )  # fmt: skip


def snooze(until: dt.datetime, name: str = "apps", by: str = "alice") -> Snooze:
    """A snooze of one production object."""
    return Snooze(PROD, "prod-eu-1", "Kustomization", "flux-system", name, until, "failing", by)


def file_size(path: Path) -> int:
    """The database and its WAL, in bytes."""
    wal = path.with_name(path.name + "-wal")
    return path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)


def run_threads(count: int, target: Callable[[int], None]) -> None:
    """Run target(0..count-1) on threads; re-raise the first failure."""
    errors: list[BaseException] = []

    def guarded(i: int) -> None:
        try:
            target(i)
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            errors.append(err)

    threads = [threading.Thread(target=guarded, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    if errors:
        raise errors[0]


@pytest.fixture
def store() -> Iterator[SqliteHistory]:
    history = SqliteHistory(":memory:")
    yield history
    history.close()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "state" / "history.db"


# --- transitions ----------------------------------------------------------------------------


def test_sqlite_history_is_a_history_store(store: SqliteHistory) -> None:
    history: HistoryStore = store
    assert history.transitions(PROD, T0, at(1)) == []


def test_transitions_round_trip_with_every_field_and_aware_utc_times(
    store: SqliteHistory,
) -> None:
    cet = dt.timezone(dt.timedelta(hours=1))
    recorded = [
        tr(Change.ADDED, at(0), new="main@sha1:" + "a" * 40),
        tr(Change.REVISION, at(1).replace(microsecond=123456), old="1.0.0", new="1.0.1"),
        tr(Change.FAILING, at(2).astimezone(cet), message="health check failed after 5m0s"),
        tr(Change.SUSPENDED, at(3), kind="HelmRelease", cluster="prod-us-1", name="podinfo"),
    ]
    store.record_transitions(recorded)
    got = store.transitions(PROD, at(-1), at(10))
    assert got == recorded
    assert all(t.at.tzinfo == dt.UTC for t in got)
    assert got[1].at.microsecond == 123456
    assert got[2].change is Change.FAILING


def test_transitions_window_excludes_since_and_includes_until(store: SqliteHistory) -> None:
    store.record_transitions([tr(Change.REVISION, at(m), new=str(m)) for m in range(5)])
    assert [t.new for t in store.transitions(PROD, at(1), at(3))] == ["2", "3"]
    assert store.transitions(PROD, at(4), at(9)) == []
    assert [t.new for t in store.transitions(PROD, at(-1), at(0))] == ["0"]


def test_transitions_are_per_environment_and_oldest_first(store: SqliteHistory) -> None:
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


def test_recording_nothing_is_fine(store: SqliteHistory) -> None:
    store.record_transitions([])
    assert store.transitions(PROD, at(-10), at(10)) == []


def test_a_failing_batch_records_none_of_it(store: SqliteHistory) -> None:
    bad = Transition(PROD, "c", "Kustomization", "ns", "x", Change.REVISION, "no time")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.record_transitions([tr(Change.REVISION, at(1), name="first"), bad])
    assert store.transitions(PROD, at(-10), at(10)) == []
    store.record_transitions([tr(Change.REVISION, at(1), name="first")])
    assert [t.name for t in store.transitions(PROD, at(-10), at(10))] == ["first"]


# --- actions --------------------------------------------------------------------------------


def test_actions_round_trip_within_the_window(store: SqliteHistory) -> None:
    records = [action(at(m), name=f"app-{m}") for m in range(4)]
    failed = ActionRecord(
        at(4), PROD, "prod-us-1", "HelmRelease", "team", "podinfo", "rollback", "bob", False,
        "rollback failed: no earlier successful release",
    )  # fmt: skip
    for record in [*records, failed, action(at(2), environment=STAGING)]:
        store.record_action(record)
    assert store.actions(PROD, at(-1), at(9)) == [*records, failed]
    assert [a.name for a in store.actions(PROD, at(1), at(3))] == ["app-2", "app-3"]
    assert store.actions(STAGING, at(0), at(9)) == [action(at(2), environment=STAGING)]
    assert store.actions(PROD, at(-1), at(9))[-1].ok is False


# --- failing_since --------------------------------------------------------------------------


def test_failing_since_gives_the_later_time_after_failing_recovered_failing(
    store: SqliteHistory,
) -> None:
    store.record_transitions([tr(Change.FAILING, at(0)), tr(Change.RECOVERED, at(5))])
    assert store.failing_since(PROD) == {}
    store.record_transitions([tr(Change.FAILING, at(9))])
    assert store.failing_since(PROD) == {
        ("prod-eu-1", "Kustomization", "flux-system", "apps"): at(9)
    }


def test_removed_clears_failing_since(store: SqliteHistory) -> None:
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


def test_failing_again_without_recovering_keeps_the_first_time(store: SqliteHistory) -> None:
    # A restarted watch cache reports every failing object as failing once more.
    store.record_transitions([tr(Change.FAILING, at(0))])
    store.record_transitions([tr(Change.ADDED, at(30)), tr(Change.FAILING, at(30))])
    assert list(store.failing_since(PROD).values()) == [at(0)]


def test_failing_since_ignores_other_transitions_and_environments(store: SqliteHistory) -> None:
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


def test_an_older_failing_recorded_late_does_not_undo_a_recovery(store: SqliteHistory) -> None:
    store.record_transitions([tr(Change.RECOVERED, at(5))])
    store.record_transitions([tr(Change.FAILING, at(1))])
    assert store.failing_since(PROD) == {}


def test_an_object_failing_for_longer_than_the_retention_keeps_its_time(
    store: SqliteHistory,
) -> None:
    store.record_transitions([tr(Change.FAILING, at(0)), tr(Change.FAILING, at(0), name="fixed")])
    store.record_transitions([tr(Change.RECOVERED, at(1), name="fixed")])
    store.prune(at(60 * 24 * 10))
    assert store.transitions(PROD, at(-1), at(9)) == []
    assert store.failing_since(PROD) == {
        ("prod-eu-1", "Kustomization", "flux-system", "apps"): at(0)
    }


# --- snoozes --------------------------------------------------------------------------------


def test_snoozes_expire_at_their_until(store: SqliteHistory) -> None:
    store.save_snooze(snooze(at(60), name="short"))
    store.save_snooze(snooze(at(600), name="long"))
    assert [s.name for s in store.snoozes(PROD, at(0))] == ["short", "long"]
    assert [s.name for s in store.snoozes(PROD, at(60))] == ["long"]
    assert store.snoozes(PROD, at(600)) == []
    assert store.snoozes(STAGING, at(0)) == []


def test_saving_a_snooze_replaces_the_objects_snooze(store: SqliteHistory) -> None:
    store.save_snooze(snooze(at(60)))
    store.save_snooze(snooze(at(120), by="bob"))
    assert store.snoozes(PROD, at(0)) == [snooze(at(120), by="bob")]
    assert store.snoozes(PROD, at(0))[0].until.tzinfo == dt.UTC


# --- digest runs ----------------------------------------------------------------------------


def test_a_run_is_claimed_once_then_refused_once_posted_or_skipped(store: SqliteHistory) -> None:
    assert store.claim_run(PROD, T0, T0)
    assert not store.claim_run(PROD, T0, T0 + MIN)  # being posted, by a live poster
    store.finish_run(PROD, T0, RunState.POSTED, T0 + MIN, message_ts="1700000000.000100")
    assert not store.claim_run(PROD, T0, T0 + 10 * HOUR)
    assert store.claim_run(STAGING, T0, T0)  # another environment
    assert store.claim_run(PROD, T0 + 6 * HOUR, T0 + 6 * HOUR)  # another schedule
    store.finish_run(PROD, T0 + 6 * HOUR, RunState.SKIPPED, T0 + 6 * HOUR)
    assert not store.claim_run(PROD, T0 + 6 * HOUR, T0 + 10 * HOUR)


def test_a_failed_run_is_claimed_again_and_counts_attempts(store: SqliteHistory) -> None:
    assert store.claim_run(PROD, T0, T0)
    store.finish_run(PROD, T0, RunState.FAILED, T0 + MIN, error="channel_not_found")
    assert store.claim_run(PROD, T0, T0 + 2 * MIN)
    run = store.last_run(PROD, [RunState.POSTING])
    assert run is not None
    assert run.attempts == 2
    assert run.updated_at == T0 + 2 * MIN


def test_a_run_left_posting_by_a_crash_is_claimed_again_after_the_claim_timeout(
    db_path: Path,
) -> None:
    crashed = SqliteHistory(db_path)
    assert crashed.claim_run(PROD, T0, T0)
    crashed.close()  # and never finished
    restarted = SqliteHistory(db_path)
    assert not restarted.claim_run(PROD, T0, T0 + DEFAULT_CLAIM_TIMEOUT - MIN)
    assert restarted.claim_run(PROD, T0, T0 + DEFAULT_CLAIM_TIMEOUT)
    restarted.finish_run(PROD, T0, RunState.POSTED, T0 + DEFAULT_CLAIM_TIMEOUT, message_ts="1.2")
    assert not restarted.claim_run(PROD, T0, T0 + 10 * DEFAULT_CLAIM_TIMEOUT)
    run = restarted.last_run(PROD, [RunState.POSTED])
    assert run is not None
    assert (run.attempts, run.message_ts) == (2, "1.2")
    restarted.close()


def test_the_claim_timeout_is_configurable(tmp_path: Path) -> None:
    with SqliteHistory(tmp_path / "h.db", claim_timeout=dt.timedelta(0)) as history:
        assert history.claim_run(PROD, T0, T0)
        assert history.claim_run(PROD, T0, T0 + dt.timedelta(microseconds=1))


def test_claim_run_is_exclusive_across_threads(db_path: Path) -> None:
    history = SqliteHistory(db_path)
    for round_ in range(5):
        scheduled = T0 + round_ * HOUR
        start = threading.Barrier(16)
        won: list[bool] = []

        def claim(
            _: int, scheduled: dt.datetime = scheduled, start: Any = start, won: Any = won
        ) -> None:
            start.wait()
            won.append(history.claim_run(PROD, scheduled, scheduled))

        run_threads(16, claim)
        assert won.count(True) == 1, round_
    history.close()


def test_claim_run_is_exclusive_across_two_stores_on_the_same_file(db_path: Path) -> None:
    stores = [SqliteHistory(db_path), SqliteHistory(db_path)]
    for round_ in range(5):
        scheduled = T0 + round_ * HOUR
        start = threading.Barrier(16)
        won: list[bool] = []

        def claim(
            i: int, scheduled: dt.datetime = scheduled, start: Any = start, won: Any = won
        ) -> None:
            start.wait()
            won.append(stores[i % 2].claim_run(PROD, scheduled, scheduled + i * MIN // 10))

        run_threads(16, claim)
        assert won.count(True) == 1, round_
    for history in stores:
        history.close()


def _claim_in_process(path: str, start: Any, results: Any) -> None:
    history = SqliteHistory(path)
    start.wait(timeout=60)
    results.put(history.claim_run(PROD, T0, T0))
    history.close()


def test_claim_run_is_exclusive_across_processes(db_path: Path) -> None:
    SqliteHistory(db_path).close()  # created once, as a deployment would
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(4), context.Queue()
    processes = [
        context.Process(target=_claim_in_process, args=(str(db_path), start, results))
        for _ in range(4)
    ]
    for process in processes:
        process.start()
    won = [results.get(timeout=60) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    assert won.count(True) == 1


def test_finish_run_and_last_run(store: SqliteHistory) -> None:
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


def test_a_run_can_be_finished_without_a_claim(store: SqliteHistory) -> None:
    store.finish_run(PROD, T0, RunState.SKIPPED, T0)
    assert not store.claim_run(PROD, T0, T0 + HOUR)
    run = store.last_run(PROD, [RunState.SKIPPED])
    assert run is not None
    assert run.attempts == 0


# --- restart, prune, concurrency ------------------------------------------------------------


def test_everything_is_still_there_after_close_and_reopen(db_path: Path) -> None:
    first = SqliteHistory(db_path)
    first.record_transitions([tr(Change.FAILING, at(0)), tr(Change.REVISION, at(1), new="v2")])
    first.record_action(action(at(2)))
    first.save_snooze(snooze(at(600)))
    assert first.claim_run(PROD, T0, T0)
    first.finish_run(PROD, T0, RunState.POSTED, T0 + MIN, message_ts="9.9")
    first.close()
    first.close()  # idempotent

    second = SqliteHistory(db_path)
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
    second.close()


def test_a_closed_store_refuses_calls(store: SqliteHistory) -> None:
    store.close()
    with pytest.raises(sqlite3.ProgrammingError):
        store.transitions(PROD, at(0), at(1))
    with pytest.raises(sqlite3.ProgrammingError):
        store.record_transitions([tr(Change.FAILING, at(0))])


def test_the_parent_directory_is_created_and_the_file_set_up(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "history.db"
    with SqliteHistory(str(path)):
        pass
    assert path.exists()
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2  # incremental
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == SCHEMA_VERSION
    con.close()


def test_a_file_from_a_newer_fluxbot_is_refused(db_path: Path) -> None:
    SqliteHistory(db_path).close()
    con = sqlite3.connect(db_path)
    con.execute("INSERT INTO schema_version VALUES (?, 0)", (SCHEMA_VERSION + 1,))
    con.commit()
    con.close()
    with pytest.raises(HistoryError, match="newer fluxbot"):
        SqliteHistory(db_path)


def test_prune_forgets_old_rows_counts_them_and_shrinks_the_file(db_path: Path) -> None:
    history = SqliteHistory(db_path)
    message = "health check failed after 5m0.012345s: timeout waiting for: " * 4
    for batch in range(20):
        history.record_transitions(
            [
                tr(Change.REVISION, at(batch), name=f"app-{i}", old="a" * 50, new="b" * 50,
                   message=message)
                for i in range(500)
            ]
        )  # fmt: skip
    history.record_transitions([tr(Change.REVISION, at(1000), new="recent")])
    history.record_action(action(at(1)))
    history.record_action(action(at(1000)))
    history.save_snooze(snooze(at(5), name="expired"))
    history.save_snooze(snooze(at(5000), name="current"))
    big = file_size(db_path)

    assert history.prune(at(999)) == 20 * 500 + 1 + 1
    assert [t.new for t in history.transitions(PROD, at(-1), at(2000))] == ["recent"]
    assert history.actions(PROD, at(-1), at(2000)) == [action(at(1000))]
    assert [s.name for s in history.snoozes(PROD, at(0))] == ["current"]
    small = file_size(db_path)
    assert small < big / 4, (big, small)
    assert history.prune(at(999)) == 0
    history.close()


def test_prune_keeps_each_environments_latest_run_in_each_state(store: SqliteHistory) -> None:
    for day in range(10):
        scheduled = T0 + day * 24 * HOUR
        store.claim_run(PROD, scheduled, scheduled)
        state = RunState.FAILED if day == 2 else RunState.POSTED
        store.finish_run(PROD, scheduled, state, scheduled + MIN)
    assert store.prune(T0 + 100 * 24 * HOUR) == 8  # 10 runs, the latest posted and failed kept
    posted = store.last_run(PROD, [RunState.POSTED])
    assert posted is not None
    assert posted.scheduled_for == T0 + 9 * 24 * HOUR
    assert store.last_run(PROD, [RunState.FAILED]) is not None


def test_a_store_that_remembers_pruned_object_ids_still_records_correctly(db_path: Path) -> None:
    writer, pruner = SqliteHistory(db_path), SqliteHistory(db_path)
    writer.record_transitions([tr(Change.REVISION, at(0), name="old")])
    pruner.prune(at(1))  # the object row goes: nothing refers to it any more
    pruner.record_transitions([tr(Change.REVISION, at(2), name="newcomer")])
    writer.record_transitions([tr(Change.REVISION, at(3), name="old")])
    assert [t.name for t in pruner.transitions(PROD, at(1), at(9))] == ["newcomer", "old"]
    writer.close()
    pruner.close()


def test_concurrent_writers_and_a_reader_do_not_corrupt_the_file(db_path: Path) -> None:
    stores = [SqliteHistory(db_path), SqliteHistory(db_path)]  # threads share each store
    writers, batches, size = 4, 40, 25
    done = threading.Event()
    reads: list[int] = []
    reader_errors: list[BaseException] = []

    def read() -> None:
        try:
            while not done.is_set():
                got = stores[0].transitions(PROD, at(-1), at(10_000))
                assert [t.at for t in got] == sorted(t.at for t in got)
                assert len(got) % size == 0  # whole batches only
                stores[1].failing_since(PROD)
                reads.append(len(got))
        except BaseException as err:  # noqa: BLE001 - handed back to the test
            reader_errors.append(err)

    def write(i: int) -> None:
        history = stores[i % 2]
        for b in range(batches):
            history.record_transitions(
                [
                    tr(Change.FAILING if k % 2 else Change.RECOVERED, at(b + k / 100),
                       name=f"w{i}-{k % 7}", message=f"writer {i}")
                    for k in range(size)
                ]
            )  # fmt: skip
            history.record_action(action(at(b), name=f"w{i}"))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        run_threads(writers, write)
    finally:
        done.set()
        reader.join(timeout=60)
    assert not reader_errors
    assert reads

    assert len(stores[1].transitions(PROD, at(-1), at(10_000))) == writers * batches * size
    assert len(stores[0].actions(PROD, at(-1), at(10_000))) == writers * batches
    for history in stores:
        history.close()
    con = sqlite3.connect(db_path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()


def test_incidents_are_kept_across_reopening_and_resolved_ones_pruned(db_path: Path) -> None:
    from bot.domain.incidents import IncidentRecord, IncidentState

    hour = dt.timedelta(hours=1)
    now = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
    open_one = IncidentRecord(
        "production", "prod-1", "cluster-unreadable", "", "", IncidentState.OPEN, now - hour,
        channel="C0PROD", message_ts="1700000000.000100", posted_at=now, announced_at=now,
    )  # fmt: skip
    resolved = IncidentRecord(
        "production", "prod-1", "GitRepository", "flux-system", "flux-system",
        IncidentState.RESOLVED, now - 4 * hour, resolved_at=now - 3 * hour,
    )  # fmt: skip
    with SqliteHistory(db_path) as history:
        history.save_incident(open_one)
        history.save_incident(resolved)
    with SqliteHistory(db_path) as history:
        assert history.incidents("production") == [resolved, open_one]  # by id
        assert history.prune(now - 2 * hour) >= 1
        assert history.incidents("production") == [open_one]
        assert history.incidents("staging") == []
