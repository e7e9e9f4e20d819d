"""The transition recorder while the history store cannot take writes.

What the store refuses is kept for the next flush, but only up to a bound: a store that stays
down for hours costs the oldest history, not the process's memory. Here another process holds
SQLite's write lock (as a backup or `sqlite3` shell would), then lets go.
"""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest

from bot.digests.recorder import TransitionRecorder
from bot.domain.transitions import Change, Transition
from bot.history import sqlite as sqlite_store
from bot.history.sqlite import SqliteHistory

T0 = dt.datetime(2026, 11, 26, 9, 0, tzinfo=dt.UTC)


def _revision(n: int) -> Transition:
    """The n-th revision apps moved to, n minutes after T0."""
    return Transition(
        "production", "prod-1", "Kustomization", "flux-system", "apps", Change.REVISION,
        T0 + dt.timedelta(minutes=n), old=f"main@sha1:{n - 1:07x}", new=f"main@sha1:{n:07x}",
    )  # fmt: skip


def test_a_locked_store_keeps_only_the_newest_transitions_and_writes_them_once_free(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # Give up on the lock at once instead of after the store's 30 s.
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_S", 0.05)
    history = SqliteHistory(tmp_path / "history.db")
    recorder = TransitionRecorder(history, max_buffered=5)
    holder = sqlite3.connect(tmp_path / "history.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process takes the write lock

    for n in range(1, 4):
        recorder(_revision(n))
    assert recorder.flush() == 0
    assert recorder.buffered() == 3  # refused, kept for the next try
    for n in range(4, 9):
        recorder(_revision(n))
    assert recorder.flush() == 0
    assert recorder.buffered() == 5  # the bound: the three oldest went
    assert "dropped the 3 oldest" in caplog.text

    holder.execute("COMMIT")  # the lock is released
    assert recorder.flush() == 5
    assert recorder.buffered() == 0
    written = history.transitions("production", T0, T0 + dt.timedelta(hours=1))
    assert [t.new for t in written] == [f"main@sha1:{n:07x}" for n in range(4, 9)]
    holder.close()
    history.close()
