"""`HistoryStore` in one SQLite file: transitions, actions, snoozes, digest runs, incidents.

For a single replica. The file survives restarts; several threads (one shared connection
behind a lock) and several processes (SQLite's file locks, WAL mode) may use it at once.

Layout, chosen to stay small at fleet scale (10,000 objects, a week of churn: see
benchmarks/history_bench.py):

- `environments` and `objects` name things once; `transitions`, `actions`, `snoozes` and
  `health` refer to them by integer id. Object rows no longer referenced are pruned.
- Times are integer microseconds since the Unix epoch, UTC (`at_us`): exact, 8 bytes, ordered.
  Naive datetimes given to the store are taken as UTC; every datetime returned is aware UTC.
- `transitions` is stored in (environment, at_us) order (a WITHOUT ROWID table): a digest
  reads an environment's window as consecutive pages, however the rows were written.
- `health` holds, per object, its latest failing/recovered/removed transition, kept up to date
  in the same transaction as the transitions themselves, so `failing_since` neither scans the
  history nor forgets an object that has been failing for longer than the retention.
- `known` holds, per object, what fluxbot last knew of it (failing, revision, suspended), kept
  up to date with the transitions and replaced by the first listing after a start; `seen`, per
  cluster, when fluxbot last read it fine. Together they tell what changed while it was down.
- `digest_runs` is keyed by (environment, scheduled_for); claiming is one UPSERT statement,
  so exactly one claimer wins.

Schema changes are numbered migrations recorded in `schema_version`.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import sqlite3
import threading
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

from bot.domain.change_window import ChangeWindow, oldest_first
from bot.domain.history import (
    ActionRecord,
    DigestRun,
    ObjectKey,
    RunState,
    Snooze,
)
from bot.domain.incidents import IncidentRecord, IncidentState
from bot.domain.transitions import Change, KnownState, Transition

log = logging.getLogger(__name__)

DEFAULT_RETENTION: Final = dt.timedelta(days=8)
"""How long history is worth keeping: the caller prunes what is older than `now - retention`.

The same 8 days as `history.retention_days` in the configuration: a digest normally looks
back one day, at most a week (a Monday digest after a long weekend), plus a day of margin.
`failing_since` needs no old transitions (see the `health` table). A 10,000-object fleet's
8 days take ~35 MB (benchmarks/history_bench.py).
"""

DEFAULT_CLAIM_TIMEOUT: Final = dt.timedelta(minutes=5)
"""A run POSTING for this long is taken to be abandoned (its poster crashed) and may be claimed.

Posting a digest takes seconds (a few Slack calls, rate-limit waits included), so a run still
POSTING after five minutes has no live poster; claiming a younger one could post the digest
twice. A caller whose claim is refused because of a young POSTING run (see `last_run`) should
try again once it is this old.
"""

SCHEMA_VERSION: Final = 4
BUSY_TIMEOUT_S: Final = 30.0
WAL_LIMIT_BYTES: Final = 16 * 1024 * 1024

_EPOCH: Final = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND: Final = dt.timedelta(microseconds=1)
_HEALTH_CHANGES: Final = frozenset({Change.FAILING, Change.RECOVERED, Change.REMOVED})

# (version, statements). Append, never edit: a file records the versions it has.
MIGRATIONS: Final[tuple[tuple[int, tuple[str, ...]], ...]] = (
    (
        1,
        (
            """CREATE TABLE IF NOT EXISTS environments (
                id INTEGER PRIMARY KEY,
                name TEXT NOT NULL UNIQUE
            )""",
            """CREATE TABLE IF NOT EXISTS objects (
                id INTEGER PRIMARY KEY,
                environment INTEGER NOT NULL,
                cluster TEXT NOT NULL,
                kind TEXT NOT NULL,
                namespace TEXT NOT NULL,
                name TEXT NOT NULL,
                UNIQUE (environment, cluster, kind, namespace, name)
            )""",
            """CREATE TABLE IF NOT EXISTS transitions (
                id INTEGER PRIMARY KEY,
                environment INTEGER NOT NULL,
                object INTEGER NOT NULL,
                change TEXT NOT NULL,
                at_us INTEGER NOT NULL,
                old TEXT NOT NULL,
                new TEXT NOT NULL,
                message TEXT NOT NULL
            )""",
            """CREATE INDEX IF NOT EXISTS transitions_by_environment_at
                ON transitions (environment, at_us)""",
            """CREATE TABLE IF NOT EXISTS actions (
                id INTEGER PRIMARY KEY,
                environment INTEGER NOT NULL,
                object INTEGER NOT NULL,
                at_us INTEGER NOT NULL,
                action TEXT NOT NULL,
                user_name TEXT NOT NULL,
                ok INTEGER NOT NULL,
                summary TEXT NOT NULL
            )""",
            """CREATE INDEX IF NOT EXISTS actions_by_environment_at
                ON actions (environment, at_us)""",
            """CREATE TABLE IF NOT EXISTS snoozes (
                object INTEGER PRIMARY KEY,
                environment INTEGER NOT NULL,
                until_us INTEGER NOT NULL,
                state TEXT NOT NULL,
                snoozed_by TEXT NOT NULL
            )""",
            # Per object, its latest failing/recovered/removed transition. For `failing`,
            # at_us is when the current failing streak began.
            """CREATE TABLE IF NOT EXISTS health (
                object INTEGER PRIMARY KEY,
                environment INTEGER NOT NULL,
                change TEXT NOT NULL,
                at_us INTEGER NOT NULL
            )""",
            """CREATE INDEX IF NOT EXISTS health_by_environment
                ON health (environment, change)""",
            """CREATE TABLE IF NOT EXISTS digest_runs (
                environment TEXT NOT NULL,
                scheduled_us INTEGER NOT NULL,
                state TEXT NOT NULL,
                updated_us INTEGER NOT NULL,
                message_ts TEXT NOT NULL DEFAULT '',
                error TEXT NOT NULL DEFAULT '',
                attempts INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (environment, scheduled_us)
            ) WITHOUT ROWID""",
            # prune_epoch changes whenever prune deletes object rows: every connection then
            # forgets the object ids it remembers.
            """CREATE TABLE IF NOT EXISTS meta (
                key TEXT PRIMARY KEY,
                value INTEGER NOT NULL
            ) WITHOUT ROWID""",
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('prune_epoch', 0)",
        ),
    ),
    (
        2,
        (
            # When a transition was found by the first listing after a start: when fluxbot
            # last saw the cluster (0: seen as it happened).
            "ALTER TABLE transitions ADD COLUMN down_us INTEGER NOT NULL DEFAULT 0",
            # Per object, what fluxbot last knew of it (KnownState): compared with the first
            # listing after a start to find what changed while it was down.
            """CREATE TABLE IF NOT EXISTS known (
                object INTEGER PRIMARY KEY,
                environment INTEGER NOT NULL,
                failing INTEGER NOT NULL,
                revision TEXT NOT NULL,
                suspended INTEGER NOT NULL
            )""",
            # Per cluster, the last time fluxbot read it fine (a heartbeat while it watches).
            """CREATE TABLE IF NOT EXISTS seen (
                environment INTEGER NOT NULL,
                cluster TEXT NOT NULL,
                at_us INTEGER NOT NULL,
                PRIMARY KEY (environment, cluster)
            ) WITHOUT ROWID""",
        ),
    ),
    (
        3,
        (
            # Live incidents, one row per root cause; the record is a small JSON document
            # (see IncidentRecord.to_json), the columns are what queries select on.
            """CREATE TABLE IF NOT EXISTS incidents (
                id TEXT PRIMARY KEY,
                environment TEXT NOT NULL,
                state TEXT NOT NULL,
                resolved_us INTEGER,
                document TEXT NOT NULL
            ) WITHOUT ROWID""",
            """CREATE INDEX IF NOT EXISTS incidents_by_environment
                ON incidents (environment)""",
        ),
    ),
    (
        4,
        (
            # Transitions kept in the order digests read them: an environment's window is
            # one run of consecutive pages, not a row looked up per index entry wherever it
            # was written (a day of a 100,000-object fleet: 75,000 rows per environment).
            # `id` orders transitions recorded at the same moment; it is handed out from
            # meta's transition_seq, as a WITHOUT ROWID table has no rowid to count with.
            """CREATE TABLE transitions_by_time (
                environment INTEGER NOT NULL,
                at_us INTEGER NOT NULL,
                id INTEGER NOT NULL,
                object INTEGER NOT NULL,
                change TEXT NOT NULL,
                old TEXT NOT NULL,
                new TEXT NOT NULL,
                message TEXT NOT NULL,
                down_us INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (environment, at_us, id)
            ) WITHOUT ROWID""",
            """INSERT INTO transitions_by_time
                (environment, at_us, id, object, change, old, new, message, down_us)
                SELECT environment, at_us, id, object, change, old, new, message, down_us
                FROM transitions""",
            """INSERT OR REPLACE INTO meta (key, value)
                VALUES ('transition_seq', (SELECT coalesce(max(id), 0) FROM transitions))""",
            "DROP TABLE transitions",
            "ALTER TABLE transitions_by_time RENAME TO transitions",
        ),
    ),
)

_INSERT_TRANSITION: Final = """
    INSERT INTO transitions (environment, object, change, at_us, old, new, message, down_us, id)
    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
"""
# How each change moves an object's known state (bot.domain.history.fold_known, in SQL):
# parameters (object, environment, revision).
_KNOWN_UPSERT: Final = """
    INSERT INTO known (object, environment, failing, revision, suspended) VALUES (?, ?, {}, ?, {})
    ON CONFLICT (object) DO UPDATE SET {}
"""
_KNOWN: Final = {
    Change.ADDED: _KNOWN_UPSERT.format(
        0, 0, "failing = 0, revision = excluded.revision, suspended = 0"
    ),
    Change.FAILING: _KNOWN_UPSERT.format(1, 0, "failing = 1"),
    Change.RECOVERED: _KNOWN_UPSERT.format(0, 0, "failing = 0"),
    Change.SUSPENDED: _KNOWN_UPSERT.format(0, 1, "failing = 0, suspended = 1"),
    Change.RESUMED: _KNOWN_UPSERT.format(0, 0, "suspended = 0"),
    Change.REVISION: _KNOWN_UPSERT.format(0, 0, "revision = excluded.revision"),
}
# A later failing/recovered/removed replaces an earlier one; failing while already failing
# keeps the earlier start (a restarted watch cache reports every failing object again).
_UPSERT_HEALTH: Final = """
    INSERT INTO health (object, environment, change, at_us) VALUES (?, ?, ?, ?)
    ON CONFLICT (object) DO UPDATE SET
        at_us = CASE
            WHEN excluded.change = 'failing' AND health.change = 'failing'
            THEN min(health.at_us, excluded.at_us)
            ELSE excluded.at_us
        END,
        change = excluded.change
    WHERE excluded.at_us >= health.at_us
        OR (excluded.change = 'failing' AND health.change = 'failing')
"""
_CLAIM_RUN: Final = """
    INSERT INTO digest_runs (environment, scheduled_us, state, updated_us, attempts)
    VALUES (?, ?, 'posting', ?, 1)
    ON CONFLICT (environment, scheduled_us) DO UPDATE SET
        state = 'posting',
        updated_us = excluded.updated_us,
        attempts = digest_runs.attempts + 1
    WHERE digest_runs.state = 'failed'
        OR (digest_runs.state = 'posting' AND digest_runs.updated_us <= ?)
"""
_FINISH_RUN: Final = """
    INSERT INTO digest_runs (environment, scheduled_us, state, updated_us, message_ts, error)
    VALUES (?, ?, ?, ?, ?, ?)
    ON CONFLICT (environment, scheduled_us) DO UPDATE SET
        state = excluded.state,
        updated_us = excluded.updated_us,
        message_ts = excluded.message_ts,
        error = excluded.error
"""


# Reads: the environment by name, then its rows through the (environment, at) indexes.
_SELECT_TRANSITIONS: Final = """
    SELECT o.cluster, o.kind, o.namespace, o.name, t.change, t.at_us, t.old, t.new, t.message,
        t.down_us
    FROM transitions t JOIN objects o ON o.id = t.object
    WHERE t.environment = (SELECT id FROM environments WHERE name = ?)
        AND t.at_us > ? AND t.at_us <= ?
    ORDER BY t.at_us, t.id
"""
# What a digest folds (bot.domain.change_window): the object by id, named once per read.
_SELECT_WINDOW: Final = """
    SELECT object, change, at_us, old, new, message, down_us
    FROM transitions
    WHERE environment = ? AND at_us > ? AND at_us <= ?
        AND change IN ('failing', 'recovered', 'revision')
    ORDER BY at_us, id
"""
_SELECT_OBJECT_KEYS: Final = """
    SELECT id, cluster, kind, namespace, name FROM objects WHERE environment = ?
"""
_SELECT_ACTIONS: Final = """
    SELECT a.at_us, o.cluster, o.kind, o.namespace, o.name, a.action, a.user_name, a.ok,
        a.summary
    FROM actions a JOIN objects o ON o.id = a.object
    WHERE a.environment = (SELECT id FROM environments WHERE name = ?)
        AND a.at_us > ? AND a.at_us <= ?
    ORDER BY a.at_us, a.id
"""
_SELECT_FAILING: Final = """
    SELECT o.cluster, o.kind, o.namespace, o.name, h.at_us
    FROM health h JOIN objects o ON o.id = h.object
    WHERE h.environment = (SELECT id FROM environments WHERE name = ?) AND h.change = 'failing'
"""
_SELECT_KNOWN: Final = """
    SELECT o.cluster, o.kind, o.namespace, o.name, k.failing, k.revision, k.suspended
    FROM known k JOIN objects o ON o.id = k.object
    WHERE k.environment = (SELECT id FROM environments WHERE name = ?) AND o.cluster = ?
"""
_SELECT_SNOOZES: Final = """
    SELECT o.cluster, o.kind, o.namespace, o.name, s.until_us, s.state, s.snoozed_by
    FROM snoozes s JOIN objects o ON o.id = s.object
    WHERE s.environment = (SELECT id FROM environments WHERE name = ?) AND s.until_us > ?
    ORDER BY s.until_us, o.cluster, o.kind, o.namespace, o.name
"""


class HistoryError(RuntimeError):
    """The history file cannot be used (written by a newer fluxbot, say)."""


def _is_corrupt(path: Path) -> bool:
    """Whether SQLite itself says the file at `path` is not a usable database."""
    try:
        con = sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return False
    try:
        row = con.execute("PRAGMA quick_check").fetchone()
        return row is None or row[0] != "ok"
    except sqlite3.DatabaseError:
        return True
    finally:
        con.close()


def to_us(moment: dt.datetime) -> int:
    """Microseconds since the Unix epoch; a naive datetime is taken as UTC."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return (moment - _EPOCH) // _MICROSECOND


# A row of _SELECT_WINDOW: object, change, at_us, old, new, message, down_us.
_Row = tuple[int, str, int, str, str, str, int]

# By value: a day of a large fleet's history is ~100,000 rows, and Change(value) is slow.
_CHANGES: Final = {change.value: change for change in Change}


def from_us(us: int) -> dt.datetime:
    """The aware UTC datetime `us` microseconds after the Unix epoch."""
    return _EPOCH + dt.timedelta(microseconds=us)


class SqliteHistory:
    """A `HistoryStore` in the SQLite file at `path` (":memory:" for a private in-memory one).

    The parent directory is created if missing. Every method is safe to call from several
    threads; several processes may open the same file.
    """

    def __init__(
        self, path: Path | str, *, claim_timeout: dt.timedelta = DEFAULT_CLAIM_TIMEOUT
    ) -> None:
        self.path = str(path)
        self.claim_timeout = claim_timeout
        self._memory = self.path == ":memory:"
        if not self._memory:
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._closed = False
        self._environment_ids: dict[str, int] = {}
        self._object_ids: dict[tuple[int, str, str, str, str], int] = {}
        self._epoch = -1
        self._con = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
        )
        try:
            self._configure()
            self._migrate()
        except BaseException:
            self._con.close()
            raise

    # Set by open_or_recover when the configured file could not be used as it was.
    notice: str | None = None

    @classmethod
    def open_or_recover(cls, path: Path | str) -> SqliteHistory:
        """The history at `path`; a corrupt file is moved aside and a fresh one started, and
        an unusable location falls back to memory, rather than stopping fluxbot. `notice`
        then says what happened (it is logged, and shown by /readyz)."""
        try:
            return cls(path)
        except HistoryError:
            raise  # written by a newer fluxbot: not ours to discard
        except (sqlite3.Error, OSError) as err:
            problem = f"{type(err).__name__}: {err}"
        target = Path(path)
        if target.is_file() and _is_corrupt(target):
            aside = target.with_name(
                f"{target.name}.corrupt-{dt.datetime.now(dt.UTC):%Y%m%dT%H%M%SZ}"
            )
            try:
                for suffix in ("", "-wal", "-shm"):
                    part = Path(f"{target}{suffix}")
                    if part.exists():
                        part.rename(Path(f"{aside}{suffix}"))
                store = cls(target)
            except (sqlite3.Error, OSError) as again:
                problem = f"{problem}; moving it aside failed: {again}"
            else:
                store.notice = (
                    f"history: {target} was unreadable ({problem}); moved aside to {aside}, "
                    "started a fresh history"
                )
                log.error("%s", store.notice)
                return store
        store = cls(":memory:")
        store.notice = (
            f"history: {target} cannot be used ({problem}); history is kept in memory "
            "until fluxbot restarts"
        )
        log.error("%s", store.notice)
        return store

    # -- set-up --

    def _configure(self) -> None:
        con = self._con
        # Takes effect only on a new file (before its first table); _migrate converts others.
        con.execute("PRAGMA auto_vacuum = INCREMENTAL")
        con.execute("PRAGMA journal_mode = WAL")
        con.execute("PRAGMA synchronous = NORMAL")
        con.execute(f"PRAGMA journal_size_limit = {WAL_LIMIT_BYTES}")

    def _migrate(self) -> None:
        with self._transaction() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_version ("
                "version INTEGER PRIMARY KEY, applied_us INTEGER NOT NULL)"
            )
            current = con.execute("SELECT max(version) FROM schema_version").fetchone()[0] or 0
            if current > SCHEMA_VERSION:
                raise HistoryError(
                    f"{self.path} has history schema version {current}; this fluxbot knows "
                    f"versions up to {SCHEMA_VERSION} (was it written by a newer fluxbot?)"
                )
            now = to_us(dt.datetime.now(dt.UTC))
            for version, statements in MIGRATIONS:
                if version > current:
                    for statement in statements:
                        con.execute(statement)
                    con.execute("INSERT INTO schema_version VALUES (?, ?)", (version, now))
        if not self._memory and self._con.execute("PRAGMA auto_vacuum").fetchone()[0] != 2:
            # A file made without incremental auto-vacuum: a full VACUUM switches it over, once.
            with self._lock:
                self._con.execute("PRAGMA auto_vacuum = INCREMENTAL")
                self._con.execute("VACUUM")
        elif 0 < current < SCHEMA_VERSION:
            # An upgrade that rewrote a table (version 4) left the old one's pages free: give
            # them back now rather than at the next prune (see prune for executescript).
            with self._lock:
                self._con.executescript("PRAGMA incremental_vacuum;")

    # -- transactions and ids --

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction, taking the database's write lock up front."""
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the history store is closed")
            con = self._con
            con.execute("BEGIN IMMEDIATE")
            try:
                yield con
                con.execute("COMMIT")
            except BaseException:
                if con.in_transaction:  # SQLite may have rolled back already (disk full)
                    con.execute("ROLLBACK")
                # Ids handed out in the rolled-back transaction do not exist.
                self._forget_ids()
                raise

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction in which the remembered ids are valid."""
        with self._transaction() as con:
            epoch = int(
                con.execute("SELECT value FROM meta WHERE key = 'prune_epoch'").fetchone()[0]
            )
            if epoch != self._epoch:
                # Another connection pruned object rows: the ids may be gone.
                self._forget_ids()
                self._epoch = epoch
            yield con

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            if self._closed:
                raise sqlite3.ProgrammingError("the history store is closed")
            yield self._con

    def _forget_ids(self) -> None:
        self._environment_ids.clear()
        self._object_ids.clear()

    def _environment_id(self, con: sqlite3.Connection, name: str) -> int:
        known = self._environment_ids.get(name)
        if known is not None:
            return known
        con.execute("INSERT OR IGNORE INTO environments (name) VALUES (?)", (name,))
        found = int(
            con.execute("SELECT id FROM environments WHERE name = ?", (name,)).fetchone()[0]
        )
        self._environment_ids[name] = found
        return found

    def _object_id(self, con: sqlite3.Connection, environment: int, key: ObjectKey) -> int:
        full = (environment, *key)
        known = self._object_ids.get(full)
        if known is not None:
            return known
        con.execute(
            "INSERT OR IGNORE INTO objects (environment, cluster, kind, namespace, name) "
            "VALUES (?, ?, ?, ?, ?)",
            full,
        )
        found = int(
            con.execute(
                "SELECT id FROM objects WHERE environment = ? AND cluster = ? AND kind = ? "
                "AND namespace = ? AND name = ?",
                full,
            ).fetchone()[0]
        )
        self._object_ids[full] = found
        return found

    # -- transitions --

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """Append transitions (as the watch cache emits them), all in one transaction."""
        if not transitions:
            return
        with self._write() as con:
            # Ids in recording order, from the counter (the write lock is held: no one else
            # takes the same ones).
            con.execute(
                "UPDATE meta SET value = value + ? WHERE key = 'transition_seq'",
                (len(transitions),),
            )
            seq = con.execute("SELECT value FROM meta WHERE key = 'transition_seq'").fetchone()[0]
            seq -= len(transitions)
            rows = []
            health = []
            for t in transitions:
                seq += 1
                environment = self._environment_id(con, t.environment)
                obj = self._object_id(con, environment, (t.cluster, t.kind, t.namespace, t.name))
                at = to_us(t.at)
                change = Change(t.change)
                down = to_us(t.down_since) if t.down_since is not None else 0
                rows.append(
                    (environment, obj, change.value, at, t.old, t.new, t.message, down, seq)
                )
                if change in _HEALTH_CHANGES:
                    health.append((obj, environment, change.value, at))
                # In order: each change moves the known state from where the last one left it.
                if change is Change.REMOVED:
                    con.execute("DELETE FROM known WHERE object = ?", (obj,))
                else:
                    con.execute(_KNOWN[change], (obj, environment, t.new))
            con.executemany(_INSERT_TRANSITION, rows)
            if health:
                con.executemany(_UPSERT_HEALTH, health)

    def transitions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[Transition]:
        """Transitions of `environment` with since < at <= until, oldest first."""
        with self._read() as con:
            rows = con.execute(
                _SELECT_TRANSITIONS,
                (environment, to_us(since), to_us(until)),
            ).fetchall()
        return [
            Transition(
                environment, cluster, kind, namespace, name, _CHANGES[change], from_us(at),
                old, new, message, from_us(down) if down else None,
            )
            for cluster, kind, namespace, name, change, at, old, new, message, down in rows
        ]  # fmt: skip

    def change_window(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> ChangeWindow:
        """The transitions of `environment` with since < at <= until, folded per object.

        Equal to `fold(self.transitions(...))`, but folded from the rows: a `Transition` is
        built only for each object's latest failure and recovery, and each object's name
        is read once rather than once per row.
        """
        with self._read() as con:
            found = con.execute(
                "SELECT id FROM environments WHERE name = ?", (environment,)
            ).fetchone()
            if found is None:
                return ChangeWindow()
            env = found[0]
            rows = con.execute(_SELECT_WINDOW, (env, to_us(since), to_us(until))).fetchall()
            keys: dict[int, ObjectKey] = {
                obj: (cluster, kind, namespace, name)
                for obj, cluster, kind, namespace, name in con.execute(_SELECT_OBJECT_KEYS, (env,))
            }
        # As bot.domain.change_window.fold does, on the rows, by object id: an int hashes
        # at once where an ObjectKey hashes four strings, and there are 75,000 rows to fold.
        failures: dict[int, int] = {}
        failing: dict[int, _Row] = {}
        recovered: dict[int, _Row] = {}
        moved: dict[int, _Row] = {}
        first_old: dict[int, str] = {}
        for row in rows:
            obj = row[0]
            change = row[1]
            if change == "revision":
                # Popped and put back: the object moves to its latest revision's place.
                if moved.pop(obj, None) is None:
                    first_old[obj] = row[3]
                moved[obj] = row
            elif change == "failing":
                failures[obj] = failures.get(obj, 0) + 1
                failing[obj] = row
            else:
                recovered[obj] = row

        def latest(rows: Mapping[int, _Row], change: Change) -> tuple[Transition, ...]:
            out: dict[ObjectKey, Transition] = {}
            for obj, (_, _, at, old, new, message, down) in rows.items():
                key = keys[obj]
                out[key] = Transition(
                    environment, *key, change, from_us(at), old, new, message,
                    from_us(down) if down else None,
                )  # fmt: skip
            return oldest_first(out)

        return ChangeWindow(
            {keys[obj]: n for obj, n in failures.items()},
            latest(failing, Change.FAILING),
            latest(recovered, Change.RECOVERED),
            {
                keys[obj]: (
                    first_old[obj], new, from_us(at), from_us(down) if down else None,
                    environment,
                )
                for obj, (_, _, at, _, new, _, down) in moved.items()
            },
        )  # fmt: skip

    # -- what fluxbot last knew, and when it last saw each cluster --

    def known_states(self, environment: str, cluster: str) -> dict[ObjectKey, KnownState]:
        """What the store last knew of every object of one cluster."""
        with self._read() as con:
            rows = con.execute(_SELECT_KNOWN, (environment, cluster)).fetchall()
        return {
            (c, k, ns, n): KnownState(bool(failing), revision, bool(suspended))
            for c, k, ns, n, failing, revision, suspended in rows
        }

    def record_listing(
        self, environment: str, cluster: str, kind: str, states: Mapping[ObjectKey, KnownState]
    ) -> None:
        """Replace what the store knows of one kind in one cluster with a complete listing."""
        with self._write() as con:
            env = self._environment_id(con, environment)
            con.execute(
                "DELETE FROM known WHERE object IN (SELECT id FROM objects "
                "WHERE environment = ? AND cluster = ? AND kind = ?)",
                (env, cluster, kind),
            )
            con.executemany(
                "INSERT OR REPLACE INTO known (object, environment, failing, revision, "
                "suspended) VALUES (?, ?, ?, ?, ?)",
                [
                    (self._object_id(con, env, key), env, int(s.failing), s.revision,
                     int(s.suspended))
                    for key, s in states.items()
                ],
            )  # fmt: skip

    def mark_seen(self, environment: str, clusters: Sequence[str], at: dt.datetime) -> None:
        """Record that fluxbot read `clusters` fine at `at`."""
        if not clusters:
            return
        with self._write() as con:
            env = self._environment_id(con, environment)
            con.executemany(
                "INSERT INTO seen (environment, cluster, at_us) VALUES (?, ?, ?) "
                "ON CONFLICT (environment, cluster) DO UPDATE SET "
                "at_us = max(seen.at_us, excluded.at_us)",
                [(env, cluster, to_us(at)) for cluster in clusters],
            )

    def last_seen(self, environment: str) -> dict[str, dt.datetime]:
        """Per cluster, the last time fluxbot read it fine."""
        with self._read() as con:
            rows = con.execute(
                "SELECT cluster, at_us FROM seen "
                "WHERE environment = (SELECT id FROM environments WHERE name = ?)",
                (environment,),
            ).fetchall()
        return {cluster: from_us(at) for cluster, at in rows}

    def failing_since(self, environment: str) -> dict[ObjectKey, dt.datetime]:
        """For each object whose latest failing/recovered transition is `failing`: since when.

        A removed object is not failing. Failing again without having recovered (a restarted
        watch cache reports every failing object anew) keeps the earlier time.
        """
        with self._read() as con:
            rows = con.execute(
                _SELECT_FAILING,
                (environment,),
            ).fetchall()
        return {(c, k, ns, n): from_us(at) for c, k, ns, n, at in rows}

    # -- actions --

    def record_action(self, record: ActionRecord) -> None:
        """Append one remediation action."""
        with self._write() as con:
            environment = self._environment_id(con, record.environment)
            key = (record.cluster, record.kind, record.namespace, record.name)
            con.execute(
                "INSERT INTO actions (environment, object, at_us, action, user_name, ok, "
                "summary) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    environment,
                    self._object_id(con, environment, key),
                    to_us(record.at),
                    record.action,
                    record.user,
                    int(record.ok),
                    record.summary,
                ),
            )

    def actions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[ActionRecord]:
        """Actions of `environment` with since < at <= until, oldest first."""
        with self._read() as con:
            rows = con.execute(
                _SELECT_ACTIONS,
                (environment, to_us(since), to_us(until)),
            ).fetchall()
        return [
            ActionRecord(
                from_us(at), environment, cluster, kind, namespace, name, action, user,
                bool(ok), summary,
            )
            for at, cluster, kind, namespace, name, action, user, ok, summary in rows
        ]  # fmt: skip

    # -- snoozes --

    def save_snooze(self, snooze: Snooze) -> None:
        """Add or replace the snooze of one object."""
        with self._write() as con:
            environment = self._environment_id(con, snooze.environment)
            con.execute(
                "INSERT OR REPLACE INTO snoozes (object, environment, until_us, state, "
                "snoozed_by) VALUES (?, ?, ?, ?, ?)",
                (
                    self._object_id(con, environment, snooze.key),
                    environment,
                    to_us(snooze.until),
                    snooze.state,
                    snooze.by,
                ),
            )

    def snoozes(self, environment: str, now: dt.datetime) -> list[Snooze]:
        """Snoozes of `environment` that have not expired at `now` (until > now)."""
        with self._read() as con:
            rows = con.execute(
                _SELECT_SNOOZES,
                (environment, to_us(now)),
            ).fetchall()
        return [
            Snooze(environment, cluster, kind, namespace, name, from_us(until), state, by)
            for cluster, kind, namespace, name, until, state, by in rows
        ]

    # -- digest runs --

    def claim_run(self, environment: str, scheduled_for: dt.datetime, now: dt.datetime) -> bool:
        """Mark a digest as being posted; False when it was already posted or skipped.

        A FAILED run may be claimed again, and so may a POSTING one last claimed at least
        `claim_timeout` before `now` (its poster crashed); a younger POSTING run has a live
        poster and is not. One atomic statement: of concurrent claimers, in this process or
        another, exactly one wins. Each claim counts an attempt.
        """
        stale = to_us(now - self.claim_timeout)
        with self._write() as con:
            cursor = con.execute(_CLAIM_RUN, (environment, to_us(scheduled_for), to_us(now), stale))
            return cursor.rowcount == 1

    def finish_run(
        self,
        environment: str,
        scheduled_for: dt.datetime,
        state: RunState,
        now: dt.datetime,
        message_ts: str = "",
        error: str = "",
    ) -> None:
        """Record how a claimed run ended (a run never claimed is recorded too: SKIPPED)."""
        with self._write() as con:
            con.execute(
                _FINISH_RUN,
                (
                    environment,
                    to_us(scheduled_for),
                    RunState(state).value,
                    to_us(now),
                    message_ts,
                    error,
                ),
            )

    def last_run(self, environment: str, states: Sequence[RunState]) -> DigestRun | None:
        """The latest run (by scheduled time) of `environment` in one of `states`, if any."""
        wanted = sorted({RunState(s).value for s in states})
        if not wanted:
            return None
        # One placeholder per RunState, the wanted ones repeated to fill them.
        wanted += wanted[:1] * (len(RunState) - len(wanted))
        with self._read() as con:
            row = con.execute(
                "SELECT scheduled_us, state, updated_us, message_ts, error, attempts "
                "FROM digest_runs WHERE environment = ? AND state IN (?, ?, ?, ?) "
                "ORDER BY scheduled_us DESC LIMIT 1",
                (environment, *wanted),
            ).fetchone()
        if row is None:
            return None
        scheduled, state, updated, message_ts, error, attempts = row
        return DigestRun(
            environment, from_us(scheduled), RunState(state), from_us(updated), message_ts,
            error, attempts,
        )  # fmt: skip

    # -- incidents --

    def save_incident(self, record: IncidentRecord) -> None:
        """Add or replace one incident (keyed by `record.id`)."""
        resolved = to_us(record.resolved_at) if record.resolved_at else None
        with self._write() as con:
            con.execute(
                "INSERT OR REPLACE INTO incidents (id, environment, state, resolved_us, "
                "document) VALUES (?, ?, ?, ?, ?)",
                (
                    record.id,
                    record.environment,
                    record.state.value,
                    resolved,
                    json.dumps(record.to_json(), sort_keys=True),
                ),
            )

    def incidents(self, environment: str) -> list[IncidentRecord]:
        """Every incident of `environment` still kept, unreadable rows skipped."""
        with self._read() as con:
            rows = con.execute(
                "SELECT document FROM incidents WHERE environment = ? ORDER BY id",
                (environment,),
            ).fetchall()
        out = []
        for (document,) in rows:
            try:
                out.append(IncidentRecord.from_json(json.loads(document)))
            except (ValueError, KeyError, TypeError):
                continue
        return out

    # -- housekeeping --

    def prune(self, before: dt.datetime) -> int:
        """Forget transitions, actions, expired snoozes and runs older than `before`; count.

        Snoozes go when they expired before `before`; runs when scheduled before it, except
        each environment's latest run in each state (so `last_run` still answers). An object
        still failing keeps its failing-since time. The freed pages are returned to the file
        system (incremental vacuum, then a WAL checkpoint).
        """
        cutoff = to_us(before)
        with self._write() as con:
            # Per environment: each one's old transitions are the start of its run of pages.
            deleted = con.execute(
                "DELETE FROM transitions "
                "WHERE environment IN (SELECT id FROM environments) AND at_us < ?",
                (cutoff,),
            ).rowcount
            deleted += con.execute("DELETE FROM actions WHERE at_us < ?", (cutoff,)).rowcount
            deleted += con.execute("DELETE FROM snoozes WHERE until_us < ?", (cutoff,)).rowcount
            deleted += con.execute(
                "DELETE FROM digest_runs WHERE scheduled_us < ? AND scheduled_us < ("
                "SELECT max(r.scheduled_us) FROM digest_runs r "
                "WHERE r.environment = digest_runs.environment AND r.state = digest_runs.state)",
                (cutoff,),
            ).rowcount
            deleted += con.execute(
                "DELETE FROM incidents WHERE state = ? AND resolved_us < ?",
                (IncidentState.RESOLVED.value, cutoff),
            ).rowcount
            settled = con.execute(
                "DELETE FROM health WHERE change != 'failing' AND at_us < ?", (cutoff,)
            ).rowcount
            orphans = 0
            if deleted or settled:  # only then can an object row have lost its last reference
                orphans = con.execute(
                    "DELETE FROM objects WHERE id NOT IN (SELECT object FROM transitions) "
                    "AND id NOT IN (SELECT object FROM actions) "
                    "AND id NOT IN (SELECT object FROM snoozes) "
                    "AND id NOT IN (SELECT object FROM health) "
                    "AND id NOT IN (SELECT object FROM known)"
                ).rowcount
            if orphans:
                con.execute("UPDATE meta SET value = value + 1 WHERE key = 'prune_epoch'")
        if deleted or settled:
            with self._lock:
                if self._closed:
                    return deleted
                # Each step of the pragma frees one page and execute() takes only the first
                # step (its rows have no columns); executescript() steps it to completion.
                self._con.executescript("PRAGMA incremental_vacuum;")
                self._con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        return deleted

    def close(self) -> None:
        """Release the connection (the WAL is checkpointed into the file). Idempotent."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            with contextlib.suppress(sqlite3.Error):
                self._con.execute("PRAGMA optimize")
            self._con.close()

    def __enter__(self) -> SqliteHistory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
