"""What only the SQLite history store does: one file shared by threads, stores and processes.

What every history store does (records, windows, failing_since, snoozes, runs, incidents,
prune, restarts) is tested once for both stores in test_history_contract.py.
"""

from __future__ import annotations

import datetime as dt
import multiprocessing
import sqlite3
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.domain.change_window import fold
from bot.domain.history import RunState
from bot.domain.transitions import Change, Transition
from bot.history.sqlite import MIGRATIONS, SCHEMA_VERSION, HistoryError, SqliteHistory, to_us
from tests.history_records import HOUR, MIN, PROD, T0, action, at, snooze, tr


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


# --- atomic batches ----------------------------------------------------------------------------


def test_a_failing_batch_records_none_of_it(store: SqliteHistory) -> None:
    bad = Transition(PROD, "c", "Kustomization", "ns", "x", Change.REVISION, "no time")  # type: ignore[arg-type]
    with pytest.raises(AttributeError):
        store.record_transitions([tr(Change.REVISION, at(1), name="first"), bad])
    assert store.transitions(PROD, at(-10), at(10)) == []
    store.record_transitions([tr(Change.REVISION, at(1), name="first")])
    assert [t.name for t in store.transitions(PROD, at(-10), at(10))] == ["first"]


# --- digest runs ----------------------------------------------------------------------------


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


# --- restart, prune, concurrency ------------------------------------------------------------


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


def test_a_version_3_file_keeps_its_transitions_in_order_after_the_upgrade(
    db_path: Path,
) -> None:
    """Version 4 keeps transitions in (environment, time) order; a file written before keeps
    every row, and what is recorded afterwards sorts after what was (same moment included)."""
    db_path.parent.mkdir(parents=True)
    con = sqlite3.connect(db_path)
    con.execute("PRAGMA auto_vacuum = INCREMENTAL")  # as SqliteHistory makes its files
    con.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied_us INTEGER)")
    for version, statements in MIGRATIONS:
        if version <= 3:
            for statement in statements:
                con.execute(statement)
            con.execute("INSERT INTO schema_version VALUES (?, 0)", (version,))
    con.execute("INSERT INTO environments (id, name) VALUES (1, ?)", (PROD,))
    for obj, name in enumerate(("apps", "infra"), start=1):
        con.execute(
            "INSERT INTO objects VALUES (?, 1, 'prod-eu-1', 'Kustomization', 'flux-system', ?)",
            (obj, name),
        )
    # Written out of time order, as a version-3 file may be: the read sorts by time, then id.
    for row_id, obj, minute, new in [(1, 1, 5, "late"), (2, 2, 1, "early"), (3, 1, 1, "tie")]:
        con.execute(
            "INSERT INTO transitions (id, environment, object, change, at_us, old, new, message)"
            " VALUES (?, 1, ?, 'revision', ?, '', ?, '')",
            (row_id, obj, to_us(at(minute)), new),
        )
    con.commit()
    con.close()

    with SqliteHistory(db_path) as history:
        history.record_transitions([tr(Change.REVISION, at(1), name="infra", new="recorded")])
        got = history.transitions(PROD, at(0), at(9))
        window = history.change_window(PROD, at(0), at(9))
    assert [(t.name, t.new) for t in got] == [
        ("infra", "early"),
        ("apps", "tie"),
        ("infra", "recorded"),
        ("apps", "late"),
    ]
    assert window.same_as(fold(got))
    con = sqlite3.connect(db_path)
    assert con.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 4
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA freelist_count").fetchone()[0] == 0  # the old table's pages
    assert con.execute("PRAGMA auto_vacuum").fetchone()[0] == 2
    con.close()


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
