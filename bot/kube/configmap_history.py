"""Digest history shared by several replicas, kept in ConfigMaps in fluxbot's namespace.

`ConfigMapHistory` implements `HistoryStore` for a fleet of fluxbot replicas of which one, the
leader (`bot.kube.lease`), writes. Every replica can read the ConfigMaps, so whichever replica
becomes leader next picks up where the last one stopped: `reload()` on becoming leader.

Layout (all in `namespace`, labelled `fluxbot.io/history=<name_prefix>`):

- `<name_prefix>-env-<environment>`: the transitions and actions of one environment within
  the retention window, what fluxbot last knew of each object (`known`) and when it last saw
  each cluster (`seen`), to find what changed while it was down (SqliteHistory's tables of
  the same names);
- `<name_prefix>-state`: digest runs, snoozes and live incidents of every environment.

Each holds one key in `binaryData`, `history.json.gz`: gzip-compressed JSON. Every write is a
read-modify-write guarded by the resourceVersion that was read: on 409 Conflict the shard is
read again, the change merged into what is there now, and written again. Transitions and
actions merge as sets, so two writers (a leader and its successor during a handover) never
erase each other's records, and `claim_run` is decided on the freshest copy with the same
guard, so two leaders can never both claim one run.

Trade-offs of keeping state in the cluster, rather than in a database:

- **Size.** A ConfigMap holds at most 1 MiB. Anything older than `retention` is pruned on each
  write, and a shard whose compressed payload would still exceed `max_shard_bytes` (900 KiB
  by default: roughly 10,000-40,000 transitions, depending on how alike their messages are)
  loses its oldest transitions first, then its oldest actions, with a warning in the log: a
  very noisy environment keeps less than `retention` of history. Each shard also keeps, per
  object, its latest failing/recovered/removed transition (as SqliteHistory's `health`
  table), so `failing_since` survives both retention and the size cap.
- **Batched writes.** `record_transitions` only buffers: the buffer is written every
  `flush_seconds` (2 s by default) by a background thread, and by `flush()` and `close()`. A
  leader killed without `close()` loses what it recorded in its last `flush_seconds`, and
  nothing it had flushed. `record_action` is buffered the same way. Snoozes, digest runs and
  incidents are written at once, since a person or a posted message depends on them.
- **Reads come from memory**: the copy loaded at start (or by the last `reload()`) plus what
  this replica wrote and buffered since. Without `follow`, others' writes appear at the next
  `reload()`: a snooze or an action saved by a follower (which handled that Slack request)
  reaches the leader's digests only then. With `follow=True` (which needs `watch` on
  configmaps) a background watch keeps the copy current within a moment, at the cost of one
  decode of the changed shard per change on every replica. `claim_run` always reads the
  cluster first either way.
- **Clock.** Retention pruning uses `clock()` (the real UTC time by default), not the `now`
  given to the methods; records older than `retention` by that clock are dropped on write.

Datetimes are stored in UTC; a naive datetime is taken to be UTC already.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import datetime as dt
import gzip
import hashlib
import json
import logging
import math
import re
import threading
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final, TypeVar

from kubernetes import client as k8s
from kubernetes import watch as k8s_watch
from kubernetes.client.exceptions import ApiException

from bot.domain.history import ActionRecord, DigestRun, ObjectKey, RunState, Snooze, fold_known
from bot.domain.incidents import IncidentRecord, IncidentState
from bot.domain.transitions import Change, KnownState, Transition

if TYPE_CHECKING:
    from bot.domain.history import HistoryStore

log = logging.getLogger(__name__)

T = TypeVar("T")
# Transitions and actions: both are records with an `at` time.
_Timed = TypeVar("_Timed", Transition, ActionRecord)

PAYLOAD_KEY: Final = "history.json.gz"
STORE_LABEL: Final = "fluxbot.io/history"
SHARD_LABEL: Final = "fluxbot.io/history-shard"
ENVIRONMENT_ANNOTATION: Final = "fluxbot.io/environment"
FORMAT_VERSION: Final = 1
DEFAULT_MAX_SHARD_BYTES: Final = 900 * 1024
DEFAULT_CLAIM_TIMEOUT: Final = dt.timedelta(minutes=5)
"""How long a POSTING run belongs to its claimer: as SqliteHistory, posting takes seconds."""
_MAX_ATTEMPTS: Final = 8
_MAX_PENDING: Final = 100_000
_WATCH_SECONDS: Final = 300
_FOLLOW_BACKOFF: Final = (0.5, 30.0)
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_ENV_SHARD = "environment"
_STATE_SHARD = "state"
_FINAL_STATES: Final = frozenset({RunState.POSTED, RunState.SKIPPED})


class HistoryUnavailable(Exception):
    """The history ConfigMaps cannot be read or written now; the message says why."""


class _Conflict(Exception):
    """Someone else wrote the shard since we read it (409), or deleted it (404)."""


def _json(response: Any) -> dict[str, Any]:
    """The JSON body of a response read with `_preload_content=False`."""
    document = json.loads(response.data)
    if not isinstance(document, dict):
        raise ValueError("the API server answered with something other than an object")
    return document


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _utc(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def _iso(moment: dt.datetime) -> str:
    return _utc(moment).isoformat()


def _parse(text: str) -> dt.datetime:
    return _utc(dt.datetime.fromisoformat(text))


HealthChanges = dict[ObjectKey, tuple[Change, dt.datetime]]
"""Per object, its latest failing/recovered/removed transition (SqliteHistory's `health`)."""

_HEALTH_CHANGES: Final = frozenset({Change.FAILING, Change.RECOVERED, Change.REMOVED})

Known = dict[ObjectKey, KnownState]
"""Per object, what fluxbot last knew of it (SqliteHistory's `known`)."""
Seen = dict[str, dt.datetime]
"""Per cluster, when fluxbot last read it fine (SqliteHistory's `seen`)."""


@dataclass
class _EnvShard:
    """What one environment's ConfigMap holds, and the resourceVersion it was read at."""

    environment: str
    resource_version: str | None = None  # None: the ConfigMap does not exist yet
    transitions: list[Transition] = field(default_factory=list)  # oldest first
    actions: list[ActionRecord] = field(default_factory=list)  # oldest first
    health: HealthChanges = field(default_factory=dict)
    known: Known = field(default_factory=dict)
    seen: dict[str, dt.datetime] = field(default_factory=dict)

    def content(self) -> tuple[list[Transition], list[ActionRecord], HealthChanges, Known, Seen]:
        return self.transitions, self.actions, self.health, self.known, self.seen


@dataclass
class _StateShard:
    """Digest runs, snoozes and incidents of every environment."""

    resource_version: str | None = None
    runs: dict[tuple[str, dt.datetime], DigestRun] = field(default_factory=dict)
    snoozes: dict[tuple[str, ObjectKey], Snooze] = field(default_factory=dict)
    incidents: dict[str, IncidentRecord] = field(default_factory=dict)

    def copy(self) -> _StateShard:
        return _StateShard(
            self.resource_version, dict(self.runs), dict(self.snoozes), dict(self.incidents)
        )


@dataclass
class _Pending:
    """Transitions and actions recorded but not written yet."""

    transitions: list[Transition] = field(default_factory=list)
    actions: list[ActionRecord] = field(default_factory=list)
    # Complete listings (cluster, kind, states), applied before the transitions.
    listings: list[tuple[str, str, Known]] = field(default_factory=list)
    seen: Seen = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.transitions or self.actions or self.listings or self.seen)


# --- encoding -----------------------------------------------------------------------------


def _compress(document: dict[str, Any]) -> bytes:
    raw = json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode()
    # mtime=0: the same content gives the same bytes, so an unchanged shard is no write at all.
    return gzip.compress(raw, compresslevel=6, mtime=0)


def _decompress(payload: bytes) -> dict[str, Any]:
    document = json.loads(gzip.decompress(payload))
    if not isinstance(document, dict):
        raise ValueError("the payload is not a JSON object")
    return document


def _transition_to_json(t: Transition) -> dict[str, Any]:
    out: dict[str, Any] = {
        "at": _iso(t.at),
        "cluster": t.cluster,
        "kind": t.kind,
        "namespace": t.namespace,
        "name": t.name,
        "change": t.change.value,
    }
    for key in ("old", "new", "message"):
        if value := getattr(t, key):
            out[key] = value
    if t.down_since is not None:
        out["down_since"] = _iso(t.down_since)
    return out


def _transition_from_json(environment: str, d: dict[str, Any]) -> Transition:
    return Transition(
        environment=environment,
        cluster=d["cluster"],
        kind=d["kind"],
        namespace=d["namespace"],
        name=d["name"],
        change=Change(d["change"]),
        at=_parse(d["at"]),
        old=d.get("old", ""),
        new=d.get("new", ""),
        message=d.get("message", ""),
        down_since=_parse(d["down_since"]) if d.get("down_since") else None,
    )


def _action_to_json(a: ActionRecord) -> dict[str, Any]:
    return {
        "at": _iso(a.at),
        "cluster": a.cluster,
        "kind": a.kind,
        "namespace": a.namespace,
        "name": a.name,
        "action": a.action,
        "user": a.user,
        "ok": a.ok,
        "summary": a.summary,
    }


def _action_from_json(environment: str, d: dict[str, Any]) -> ActionRecord:
    return ActionRecord(
        at=_parse(d["at"]),
        environment=environment,
        cluster=d["cluster"],
        kind=d["kind"],
        namespace=d["namespace"],
        name=d["name"],
        action=d["action"],
        user=d["user"],
        ok=bool(d["ok"]),
        summary=d.get("summary", ""),
    )


def _encode_env(
    environment: str,
    ts: Sequence[Transition],
    acts: Sequence[ActionRecord],
    health: HealthChanges,
    known: Known,
    seen: Seen,
) -> bytes:
    return _compress(
        {
            "version": FORMAT_VERSION,
            "environment": environment,
            "transitions": [_transition_to_json(t) for t in ts],
            "actions": [_action_to_json(a) for a in acts],
            "health": [
                {
                    "cluster": key[0],
                    "kind": key[1],
                    "namespace": key[2],
                    "name": key[3],
                    "change": change.value,
                    "at": _iso(at),
                }
                for key, (change, at) in sorted(health.items())
            ],
            "known": [
                [*key, int(state.failing), state.revision, int(state.suspended)]
                for key, state in sorted(known.items())
            ],
            "seen": {cluster: _iso(at) for cluster, at in sorted(seen.items())},
        }
    )


def _decode_env(environment: str, payload: bytes) -> _EnvShard:
    document = _decompress(payload)
    env = document.get("environment") or environment
    ts = [_transition_from_json(env, d) for d in document.get("transitions", [])]
    acts = [_action_from_json(env, d) for d in document.get("actions", [])]
    ts.sort(key=lambda t: t.at)
    acts.sort(key=lambda a: a.at)
    health: HealthChanges = {
        (d["cluster"], d["kind"], d["namespace"], d["name"]): (Change(d["change"]), _parse(d["at"]))
        for d in document.get("health", [])
    }
    known: Known = {
        (c, k, ns, n): KnownState(bool(failing), revision, bool(suspended))
        for c, k, ns, n, failing, revision, suspended in document.get("known", [])
    }
    seen = {cluster: _parse(at) for cluster, at in (document.get("seen") or {}).items()}
    return _EnvShard(env, None, ts, acts, health, known, seen)


def _run_to_json(r: DigestRun) -> dict[str, Any]:
    return {
        "environment": r.environment,
        "scheduled_for": _iso(r.scheduled_for),
        "state": r.state.value,
        "updated_at": _iso(r.updated_at),
        "message_ts": r.message_ts,
        "error": r.error,
        "attempts": r.attempts,
    }


def _run_from_json(d: dict[str, Any]) -> DigestRun:
    return DigestRun(
        environment=d["environment"],
        scheduled_for=_parse(d["scheduled_for"]),
        state=RunState(d["state"]),
        updated_at=_parse(d["updated_at"]),
        message_ts=d.get("message_ts", ""),
        error=d.get("error", ""),
        attempts=int(d.get("attempts", 0)),
    )


def _snooze_to_json(s: Snooze) -> dict[str, Any]:
    return {
        "environment": s.environment,
        "cluster": s.cluster,
        "kind": s.kind,
        "namespace": s.namespace,
        "name": s.name,
        "until": _iso(s.until),
        "state": s.state,
        "by": s.by,
    }


def _snooze_from_json(d: dict[str, Any]) -> Snooze:
    return Snooze(
        environment=d["environment"],
        cluster=d["cluster"],
        kind=d["kind"],
        namespace=d["namespace"],
        name=d["name"],
        until=_parse(d["until"]),
        state=d.get("state", ""),
        by=d.get("by", ""),
    )


def _encode_state(
    runs: Iterable[DigestRun],
    snoozes: Iterable[Snooze],
    incidents: Iterable[IncidentRecord] = (),
) -> bytes:
    return _compress(
        {
            "version": FORMAT_VERSION,
            "runs": [_run_to_json(r) for r in runs],
            "snoozes": [_snooze_to_json(s) for s in snoozes],
            "incidents": [i.to_json() for i in incidents],
        }
    )


def _decode_state(payload: bytes) -> _StateShard:
    document = _decompress(payload)
    shard = _StateShard()
    for d in document.get("runs", []):
        run = _run_from_json(d)
        shard.runs[(run.environment, run.scheduled_for)] = run
    for d in document.get("snoozes", []):
        snooze = _snooze_from_json(d)
        shard.snoozes[(snooze.environment, snooze.key)] = snooze
    for d in document.get("incidents", []):
        # An older fluxbot wrote no incidents; a damaged record is dropped, not fatal.
        try:
            incident = IncidentRecord.from_json(d)
        except (ValueError, KeyError, TypeError):
            continue
        shard.incidents[incident.id] = incident
    return shard


# --- pure helpers -------------------------------------------------------------------------


def _key(t: Transition) -> ObjectKey:
    return (t.cluster, t.kind, t.namespace, t.name)


def _fold_health(health: HealthChanges, transitions: Iterable[Transition]) -> HealthChanges:
    """`health` updated with `transitions` (in any order), as SqliteHistory's upsert does.

    The latest failing/recovered/removed transition of an object wins, except that failing
    again without having recovered keeps the earlier failing time (a restarted watch cache,
    on this replica or the next leader, reports every failing object anew).
    """
    out = dict(health)
    for t in transitions:
        if t.change not in _HEALTH_CHANGES:
            continue
        key = _key(t)
        known = out.get(key)
        if known is None:
            out[key] = (t.change, t.at)
        elif known[0] is Change.FAILING and t.change is Change.FAILING:
            out[key] = (Change.FAILING, min(known[1], t.at))
        elif t.at >= known[1]:
            out[key] = (t.change, t.at)
    return out


def _fold_pending(known: Known, seen: Seen, pending: _Pending | None) -> tuple[Known, Seen]:
    """`known` and `seen` with the buffered listings, transitions and heartbeats applied."""
    if not pending:
        return known, seen
    out = dict(known)
    for cluster, kind, states in pending.listings:
        out = {k: v for k, v in out.items() if (k[0], k[1]) != (cluster, kind)}
        out.update(states)
    seen = dict(seen)
    for cluster, at in pending.seen.items():
        seen[cluster] = max(at, seen.get(cluster, at))
    return fold_known(out, pending.transitions), seen


def _settle(health: HealthChanges, before: dt.datetime) -> HealthChanges:
    """`health` without the recoveries and removals older than `before`.

    Failing entries stay however old they are: an object failing for longer than the
    retention is still failing, and since when.
    """
    return {
        key: (change, at)
        for key, (change, at) in health.items()
        if change is Change.FAILING or at >= before
    }


def _merge(old: Sequence[T], new: Iterable[T], at: Callable[[T], dt.datetime]) -> list[T]:
    """`old` plus whatever of `new` it lacks, oldest first (records are equal by value)."""
    seen = set(old)
    merged = list(old)
    for item in new:
        if item not in seen:
            seen.add(item)
            merged.append(item)
    merged.sort(key=at)
    return merged


def _window(
    stored: Sequence[_Timed], pending: Iterable[_Timed], since: dt.datetime, until: dt.datetime
) -> list[_Timed]:
    """Records with since < at <= until: a slice of the sorted `stored`, plus `pending`."""
    since, until = _utc(since), _utc(until)
    lo = bisect_right(stored, since, key=lambda r: r.at)
    hi = bisect_right(stored, until, key=lambda r: r.at)
    out = list(stored[lo:hi])
    fresh = [r for r in pending if since < r.at <= until]
    return _merge(out, fresh, lambda r: r.at) if fresh else out


def _since(
    ts: list[Transition], acts: list[ActionRecord], cutoff: dt.datetime
) -> tuple[list[Transition], list[ActionRecord]]:
    """The transitions and actions at or after `cutoff` (both lists are oldest first)."""
    return (
        ts[bisect_left(ts, cutoff, key=lambda t: t.at) :],
        acts[bisect_left(acts, cutoff, key=lambda a: a.at) :],
    )


def _prune_state(state: _StateShard, before: dt.datetime) -> int:
    """Forget snoozes that expired and runs scheduled before `before`; how many.

    The latest run of each environment in each state is kept whatever its age, so that
    last_run() still knows when a weekly digest was last posted (as SqliteHistory does).
    """
    latest: dict[tuple[str, RunState], dt.datetime] = {}
    for run in state.runs.values():
        slot = (run.environment, run.state)
        if slot not in latest or run.scheduled_for > latest[slot]:
            latest[slot] = run.scheduled_for
    count = 0
    for key, run in list(state.runs.items()):
        if run.scheduled_for < min(before, latest[(run.environment, run.state)]):
            del state.runs[key]
            count += 1
    for snooze_key, snooze in list(state.snoozes.items()):
        if snooze.until < before:
            del state.snoozes[snooze_key]
            count += 1
    for incident_key, incident in list(state.incidents.items()):
        if (
            incident.state is IncidentState.RESOLVED
            and incident.resolved_at is not None
            and incident.resolved_at < before
        ):
            del state.incidents[incident_key]
            count += 1
    return count


def _shard_name(prefix: str, environment: str) -> str:
    name = f"{prefix}-env-{environment}"
    if _DNS_LABEL.match(environment) and len(name) <= 253:
        return name
    digest = hashlib.sha256(environment.encode()).hexdigest()[:16]
    return f"{prefix}-env-{digest}"


# --- the store ----------------------------------------------------------------------------


class ConfigMapHistory:
    """`HistoryStore` in ConfigMaps: shared by replicas, written by the leader (see module doc).

    `api_client` is a `kubernetes.client.ApiClient` for the cluster fluxbot runs in (the
    caller owns it and closes it). Needs get, list, create and update on `configmaps` in
    `namespace` (and watch, with `follow`).
    """

    def __init__(
        self,
        api_client: Any,
        namespace: str,
        name_prefix: str = "fluxbot-history",
        *,
        retention: dt.timedelta,
        flush_seconds: float = 2.0,
        max_shard_bytes: int = DEFAULT_MAX_SHARD_BYTES,
        claim_timeout: dt.timedelta = DEFAULT_CLAIM_TIMEOUT,
        request_timeout: float = 10.0,
        clock: Callable[[], dt.datetime] = _utcnow,
        load: bool = True,
        follow: bool = False,
    ) -> None:
        """Load the history now (unless `load` is false), start the flush and watch threads.

        `flush_seconds`: how often buffered transitions and actions are written; 0 writes
        them only on flush() and close(). `claim_timeout`: how long a run being posted
        (POSTING) belongs to the replica that claimed it; after that another may claim it,
        as after a crash. `follow`: watch the ConfigMaps and keep the in-memory copy current
        (RBAC: `watch` on configmaps). Raises HistoryUnavailable when the initial load fails.
        """
        if not _DNS_LABEL.match(name_prefix) or len(name_prefix) > 63:
            raise ValueError(f"name_prefix {name_prefix!r} must be a DNS label of 63 characters")
        if retention <= dt.timedelta(0):
            raise ValueError("retention must be positive")
        self._api = k8s.CoreV1Api(api_client)
        self.namespace = namespace
        self.name_prefix = name_prefix
        self.retention = retention
        self.flush_seconds = flush_seconds
        self.max_shard_bytes = max_shard_bytes
        self.claim_timeout = claim_timeout
        self._timeout = request_timeout
        self._clock = clock
        self._lock = threading.RLock()  # guards the in-memory copy below
        self._write_lock = threading.Lock()  # one read-modify-write at a time
        self._envs: dict[str, _EnvShard] = {}
        self._state = _StateShard()
        self._pending: dict[str, _Pending] = {}
        self._closed = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._listed_version: str | None = None  # resourceVersion of the last list
        self._watch: Any = None
        if load:
            self.reload()
        if flush_seconds > 0:
            self._flusher = threading.Thread(
                target=self._flush_loop, name=f"history-flush-{name_prefix}", daemon=True
            )
            self._flusher.start()
        if follow:
            threading.Thread(
                target=self._follow_loop, name=f"history-watch-{name_prefix}", daemon=True
            ).start()

    @property
    def state_name(self) -> str:
        """The ConfigMap holding runs and snoozes."""
        return f"{self.name_prefix}-state"

    def environment_name(self, environment: str) -> str:
        """The ConfigMap holding one environment's transitions and actions."""
        return _shard_name(self.name_prefix, environment)

    # -- loading --

    def reload(self) -> None:
        """Replace the in-memory copy with what the cluster holds; buffered records are kept.

        Call it when this replica becomes leader. Raises HistoryUnavailable on API errors.
        """
        with self._write_lock:  # not in the middle of a write of ours
            try:
                listed: Any = self._api.list_namespaced_config_map(
                    self.namespace,
                    label_selector=f"{STORE_LABEL}={self.name_prefix}",
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
                document = _json(listed)
            except Exception as err:
                raise HistoryUnavailable(self._describe("list ConfigMaps", err)) from err
            self._load(document.get("items") or [])
            self._listed_version = (document.get("metadata") or {}).get("resourceVersion")

    def _load(self, items: list[dict[str, Any]]) -> None:
        envs: dict[str, _EnvShard] = {}
        state = _StateShard()
        for item in items:
            meta = item.get("metadata") or {}
            shard = (meta.get("labels") or {}).get(SHARD_LABEL)
            if shard == _ENV_SHARD:
                env = (meta.get("annotations") or {}).get(ENVIRONMENT_ANNOTATION, "")
                loaded = self._env_from_object(env, item)
                if loaded is not None:
                    envs[loaded.environment] = loaded
            elif shard == _STATE_SHARD:
                state = self._state_from_object(item)
        with self._lock:
            self._envs = envs
            self._state = state
        log.info("history loaded from %d ConfigMaps in %s", len(items), self.namespace or "default")

    # -- transitions and actions --

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """Buffer transitions, all or none; written within `flush_seconds` (see the module doc)."""
        if not transitions:
            return
        batch = [
            t if t.at.tzinfo is dt.UTC else dataclasses.replace(t, at=_utc(t.at))
            for t in transitions
        ]
        with self._lock:
            self._check_open()
            for t in batch:
                self._pending_of(t.environment).transitions.append(t)
            self._cap_pending()

    def record_action(self, record: ActionRecord) -> None:
        """Buffer one remediation action; written with the transitions."""
        if record.at.tzinfo is not dt.UTC:
            record = dataclasses.replace(record, at=_utc(record.at))
        with self._lock:
            self._check_open()
            self._pending_of(record.environment).actions.append(record)

    def transitions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[Transition]:
        """Transitions of `environment` with since < at <= until, oldest first."""
        with self._lock:
            stored = self._envs.get(environment)
            pending = self._pending.get(environment)
            return _window(
                stored.transitions if stored else [],
                pending.transitions if pending else [],
                since,
                until,
            )

    def actions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[ActionRecord]:
        """Actions of `environment` with since < at <= until, oldest first."""
        with self._lock:
            stored = self._envs.get(environment)
            pending = self._pending.get(environment)
            return _window(
                stored.actions if stored else [],
                pending.actions if pending else [],
                since,
                until,
            )

    def failing_since(self, environment: str) -> dict[ObjectKey, dt.datetime]:
        """For each object whose latest failing/recovered transition is `failing`: since when.

        A removed object is not failing. Failing again without having recovered keeps the
        earlier time. Kept apart from the transitions, so neither retention nor the size cap
        makes a long-failing object forgotten.
        """
        with self._lock:
            stored = self._envs.get(environment)
            health = stored.health if stored else {}
            pending = self._pending.get(environment)
            if pending:
                health = _fold_health(health, pending.transitions)
        return {key: at for key, (change, at) in health.items() if change is Change.FAILING}

    # -- what fluxbot last knew, and when it last saw each cluster --

    def known_states(self, environment: str, cluster: str) -> dict[ObjectKey, KnownState]:
        """What the store last knew of every object of one cluster (buffered changes included)."""
        with self._lock:
            stored = self._envs.get(environment)
            known, _seen = _fold_pending(
                stored.known if stored else {}, {}, self._pending.get(environment)
            )
        return {key: state for key, state in known.items() if key[0] == cluster}

    def record_listing(
        self, environment: str, cluster: str, kind: str, states: Mapping[ObjectKey, KnownState]
    ) -> None:
        """Buffer a complete listing of one kind in one cluster; written with the transitions."""
        with self._lock:
            self._check_open()
            # Applied before the buffered transitions: those of this cluster and kind are the
            # ones that led to this listing, so applying them again changes nothing.
            self._pending_of(environment).listings.append((cluster, kind, dict(states)))

    def mark_seen(self, environment: str, clusters: Sequence[str], at: dt.datetime) -> None:
        """Buffer a heartbeat: fluxbot read `clusters` fine at `at`."""
        at = _utc(at)
        with self._lock:
            self._check_open()
            seen = self._pending_of(environment).seen
            for cluster in clusters:
                seen[cluster] = max(at, seen.get(cluster, at))

    def last_seen(self, environment: str) -> dict[str, dt.datetime]:
        """Per cluster, the last time fluxbot read it fine."""
        with self._lock:
            stored = self._envs.get(environment)
            _known, seen = _fold_pending(
                {}, stored.seen if stored else {}, self._pending.get(environment)
            )
        return seen

    # -- snoozes and runs --

    def save_snooze(self, snooze: Snooze) -> None:
        """Add or replace the snooze of one object; written at once."""
        snooze = dataclasses.replace(snooze, until=_utc(snooze.until))

        def change(state: _StateShard) -> None:
            state.snoozes[(snooze.environment, snooze.key)] = snooze

        self._update_state(change)

    def snoozes(self, environment: str, now: dt.datetime) -> list[Snooze]:
        """Snoozes of `environment` that have not expired at `now`."""
        now = _utc(now)
        with self._lock:
            found = [
                s
                for (env, _key), s in self._state.snoozes.items()
                if env == environment and s.until > now
            ]
        return sorted(found, key=lambda s: (s.until, s.key))

    def claim_run(self, environment: str, scheduled_for: dt.datetime, now: dt.datetime) -> bool:
        """Mark a digest as being posted; False when it was already posted or skipped.

        Also False while another claim is fresh (POSTING for less than `claim_timeout`): a
        replica that claimed it may still be posting. A run left in POSTING longer than that
        (a crash) or FAILED (a Slack error) may be claimed again. Decided on a fresh read of
        the cluster and written with its resourceVersion, so of two leaders racing for one
        run exactly one gets True.
        """
        key = (environment, _utc(scheduled_for))
        now = _utc(now)

        def change(state: _StateShard) -> bool:
            run = state.runs.get(key)
            if run is not None:
                if run.state in _FINAL_STATES:
                    return False
                if run.state is RunState.POSTING and now - run.updated_at < self.claim_timeout:
                    return False
            state.runs[key] = DigestRun(
                environment=environment,
                scheduled_for=key[1],
                state=RunState.POSTING,
                updated_at=now,
                attempts=(run.attempts if run else 0) + 1,
            )
            return True

        return self._update_state(change, fresh=True, write_if=lambda claimed: claimed)

    def finish_run(
        self,
        environment: str,
        scheduled_for: dt.datetime,
        state: RunState,
        now: dt.datetime,
        message_ts: str = "",
        error: str = "",
    ) -> None:
        """Record how a claimed run ended; written at once."""
        key = (environment, _utc(scheduled_for))

        def change(shard: _StateShard) -> None:
            run = shard.runs.get(key)
            shard.runs[key] = DigestRun(
                environment=environment,
                scheduled_for=key[1],
                state=state,
                updated_at=_utc(now),
                message_ts=message_ts,
                error=error,
                attempts=run.attempts if run else 0,
            )

        self._update_state(change)

    def last_run(self, environment: str, states: Sequence[RunState]) -> DigestRun | None:
        """The latest run of `environment` in one of `states`, if any."""
        wanted = set(states)
        with self._lock:
            runs = [
                r
                for (env, _when), r in self._state.runs.items()
                if env == environment and r.state in wanted
            ]
        return max(runs, key=lambda r: (r.scheduled_for, r.updated_at), default=None)

    # -- incidents --

    def save_incident(self, record: IncidentRecord) -> None:
        """Add or replace one incident; written at once."""

        def change(state: _StateShard) -> None:
            state.incidents[record.id] = record

        self._update_state(change)

    def incidents(self, environment: str) -> list[IncidentRecord]:
        """Every incident of `environment` still kept."""
        with self._lock:
            found = [i for i in self._state.incidents.values() if i.environment == environment]
        return sorted(found, key=lambda i: i.id)

    # -- pruning, flushing, closing --

    def prune(self, before: dt.datetime) -> int:
        """Forget transitions, actions, expired snoozes and runs older than `before`; count.

        Buffered records are written first. Raises HistoryUnavailable on API errors.
        """
        before = _utc(before)
        self.flush()
        removed = 0
        with self._lock:
            environments = list(self._envs)
        for env in environments:
            removed += self._update_env(env, prune_before=before)

        def change(state: _StateShard) -> int:
            return _prune_state(state, before)

        removed += self._update_state(change, write_if=lambda count: count > 0)
        return removed

    def flush(self) -> None:
        """Write every buffered transition and action now; HistoryUnavailable on failure."""
        with self._lock:
            environments = [env for env, p in self._pending.items() if p]
        problems = []
        for env in environments:
            try:
                self._update_env(env, None)
            except HistoryUnavailable as err:
                problems.append(str(err))
        if problems:
            raise HistoryUnavailable("; ".join(problems))

    def close(self) -> None:
        """Stop the flush thread and write what is buffered (logged if that fails).

        Idempotent. Recording afterwards raises HistoryUnavailable (it would be lost); the
        API client is the caller's to close.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._stop.set()
        watch = self._watch
        if watch is not None:
            watch.stop()  # the watch thread ends at the next event; it only updates memory
        if self._flusher is not None:
            self._flusher.join(self._timeout * 2)
        try:
            self.flush()
        except HistoryUnavailable as err:
            with self._lock:
                lost = sum(len(p.transitions) + len(p.actions) for p in self._pending.values())
            log.error("history: %d buffered records could not be written: %s", lost, err)

    # -- internals: buffering --

    def _check_open(self) -> None:
        if self._closed:
            raise HistoryUnavailable("the history store is closed: nothing more can be recorded")

    def _pending_of(self, environment: str) -> _Pending:
        pending = self._pending.get(environment)
        if pending is None:
            pending = self._pending[environment] = _Pending()
        return pending

    def _cap_pending(self) -> None:
        """Bound memory while the API server is away for long: drop the oldest buffered."""
        for env, pending in self._pending.items():
            extra = len(pending.transitions) - _MAX_PENDING
            if extra > 0:
                del pending.transitions[:extra]
                log.warning(
                    "history: %d unwritten transitions of %s dropped (buffer full)", extra, env
                )

    def _flush_loop(self) -> None:
        while not self._stop.wait(self.flush_seconds):
            try:
                self.flush()
            except HistoryUnavailable as err:
                log.warning("history: flush failed, will retry: %s", err)
            except Exception:
                log.exception("history: flush failed unexpectedly")

    # -- internals: following the other replicas' writes --

    def _follow_loop(self) -> None:
        """Watch the ConfigMaps and apply every change to memory; relist after any failure."""
        backoff = _FOLLOW_BACKOFF[0]
        resource_version = self._listed_version
        while not self._stop.is_set():
            try:
                if resource_version is None:
                    self.reload()
                    resource_version = self._listed_version
                if resource_version is not None:
                    resource_version = self._watch_from(resource_version)
                backoff = _FOLLOW_BACKOFF[0]
            except Exception as err:  # noqa: BLE001 - whatever it was, relist and carry on
                if self._stop.is_set():
                    return
                log.warning(
                    "history: watching ConfigMaps failed (%s); relisting in %g s",
                    err if isinstance(err, HistoryUnavailable) else self._describe("watch", err),
                    backoff,
                )
                resource_version = None
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, _FOLLOW_BACKOFF[1])

    def _watch_from(self, resource_version: str) -> str:
        self._watch = watch = k8s_watch.Watch()
        stream = watch.stream(
            self._api.list_namespaced_config_map,
            self.namespace,
            label_selector=f"{STORE_LABEL}={self.name_prefix}",
            resource_version=resource_version,
            timeout_seconds=_WATCH_SECONDS,
            allow_watch_bookmarks=True,
            deserialize=False,
            _request_timeout=(self._timeout, _WATCH_SECONDS + 30),
        )
        for event in stream:
            if self._stop.is_set():
                watch.stop()
                break
            resource_version = self._apply_event(event, resource_version)
        return resource_version

    def _apply_event(self, event: Any, resource_version: str) -> str:
        obj = event.get("object") if isinstance(event, dict) else None
        if not isinstance(obj, dict):
            return resource_version
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion") or resource_version)
        kind = event.get("type")
        shard = (meta.get("labels") or {}).get(SHARD_LABEL)
        if kind not in ("ADDED", "MODIFIED", "DELETED") or shard not in (_ENV_SHARD, _STATE_SHARD):
            return version  # a BOOKMARK, or not ours
        if shard == _STATE_SHARD:
            state = _StateShard() if kind == "DELETED" else self._state_from_object(obj)
            with self._lock:
                if self._state.resource_version != version:
                    self._state = state
            return version
        environment = (meta.get("annotations") or {}).get(ENVIRONMENT_ANNOTATION, "")
        if kind == "DELETED":
            with self._lock:
                self._envs.pop(environment, None)
            return version
        loaded = self._env_from_object(environment, obj)
        if loaded is not None:
            with self._lock:
                known = self._envs.get(loaded.environment)
                if known is None or known.resource_version != version:
                    self._envs[loaded.environment] = loaded
        return version

    # -- internals: environment shards --

    def _update_env(self, environment: str, prune_before: dt.datetime | None = None) -> int:
        """Write the buffer of one environment; with `prune_before`, also forget what is
        older (returns how many transitions and actions that forgot).

        Read-modify-write: starts from the in-memory copy and its resourceVersion, and on a
        conflict reads the shard again and merges once more.
        """
        name = self.environment_name(environment)
        with self._write_lock:
            with self._lock:
                pending = self._pending.get(environment) or _Pending()
                new_ts, new_acts = list(pending.transitions), list(pending.actions)
                new_listings, new_seen = list(pending.listings), dict(pending.seen)
                base = self._envs.get(environment) or _EnvShard(environment)
            for _attempt in range(_MAX_ATTEMPTS):
                known = set(base.transitions)
                fresh = []  # what the shard lacks (after a lost response, it may have it all)
                for t in new_ts:
                    if t not in known:
                        known.add(t)
                        fresh.append(t)
                ts = sorted([*base.transitions, *fresh], key=lambda t: t.at)
                acts = _merge(base.actions, new_acts, lambda a: a.at)
                health = _fold_health(base.health, fresh)
                states, seen = _fold_pending(
                    base.known, base.seen, _Pending(fresh, [], new_listings, new_seen)
                )
                removed = 0
                if prune_before is not None:
                    kept_ts, kept_acts = _since(ts, acts, prune_before)
                    removed = len(ts) + len(acts) - len(kept_ts) - len(kept_acts)
                    ts, acts, health = kept_ts, kept_acts, _settle(health, prune_before)
                cutoff = _utc(self._clock()) - self.retention
                ts, acts = _since(ts, acts, cutoff)
                health = _settle(health, cutoff)
                payload, ts, acts = self._fit(name, environment, ts, acts, health, states, seen)
                if base.resource_version is not None and (
                    (ts, acts, health, states, seen) == base.content()
                ):
                    written = base.resource_version  # nothing changes: no write
                else:
                    try:
                        written = self._write(
                            name,
                            base.resource_version,
                            payload,
                            _ENV_SHARD,
                            {ENVIRONMENT_ANNOTATION: environment},
                        )
                    except _Conflict:
                        base = self._read_env(environment)
                        continue
                with self._lock:
                    self._envs[environment] = _EnvShard(
                        environment, written, ts, acts, health, states, seen
                    )
                    left = self._pending.get(environment)
                    if left is not None:
                        del left.transitions[: len(new_ts)]
                        del left.actions[: len(new_acts)]
                        del left.listings[: len(new_listings)]
                        for cluster, at in new_seen.items():
                            if left.seen.get(cluster) == at:
                                del left.seen[cluster]
                        if not left:
                            del self._pending[environment]
                return removed
        raise HistoryUnavailable(f"ConfigMap {name}: still conflicting after {_MAX_ATTEMPTS} tries")

    def _fit(
        self,
        name: str,
        environment: str,
        ts: list[Transition],
        acts: list[ActionRecord],
        health: HealthChanges,
        known: Known,
        seen: Seen,
    ) -> tuple[bytes, list[Transition], list[ActionRecord]]:
        """The payload, after dropping the oldest records if it is over `max_shard_bytes`.

        Transitions go first, oldest first, then actions (rarer, and worth more). The health
        map stays whole: it is one entry per object that ever failed within the retention.
        """
        payload = _encode_env(environment, ts, acts, health, known, seen)
        if len(payload) <= self.max_shard_bytes:
            return payload, ts, acts
        total, cut = len(ts) + len(acts), 0
        original = len(payload)
        kept_ts, kept_acts = ts, acts
        while len(payload) > self.max_shard_bytes and cut < total:
            # Drop a share of the records proportional to the excess, plus a little headroom.
            share = 1 - self.max_shard_bytes / len(payload) + 0.02
            cut = min(total, cut + max(1, math.ceil(share * (total - cut))))
            kept_ts = ts[min(cut, len(ts)) :]
            kept_acts = acts[max(0, cut - len(ts)) :]
            payload = _encode_env(environment, kept_ts, kept_acts, health, known, seen)
        log.warning(
            "history: ConfigMap %s would hold %d KiB compressed, over the %d KiB limit; "
            "dropped the %d oldest transitions and %d oldest actions (kept since %s)",
            name,
            original // 1024,
            self.max_shard_bytes // 1024,
            len(ts) - len(kept_ts),
            len(acts) - len(kept_acts),
            kept_ts[0].at.isoformat() if kept_ts else "-",
        )
        return payload, kept_ts, kept_acts

    def _read_env(self, environment: str) -> _EnvShard:
        obj = self._read(self.environment_name(environment))
        if obj is None:
            return _EnvShard(environment)
        loaded = self._env_from_object(environment, obj)
        if loaded is None:  # unreadable: overwrite it, keeping its resourceVersion
            return _EnvShard(environment, obj["metadata"].get("resourceVersion"))
        return loaded

    def _env_from_object(self, environment: str, obj: dict[str, Any]) -> _EnvShard | None:
        meta = obj.get("metadata") or {}
        try:
            payload = self._payload(obj)
            shard = _decode_env(environment, payload) if payload else _EnvShard(environment)
        except (ValueError, KeyError, TypeError, OSError, EOFError) as err:
            log.error("history: ConfigMap %s is unreadable, ignoring it: %s", meta.get("name"), err)
            return None
        shard.resource_version = meta.get("resourceVersion")
        return shard

    # -- internals: the state shard --

    def _update_state(
        self,
        change: Callable[[_StateShard], T],
        *,
        fresh: bool = False,
        write_if: Callable[[T], bool] | None = None,
    ) -> T:
        """Apply `change` to runs and snoozes and write them; returns what `change` returned.

        `fresh` reads the shard from the cluster first instead of trusting memory; `write_if`
        skips the write when it says the change changed nothing.
        """
        with self._write_lock:
            if fresh:
                base = self._read_state()
            else:
                with self._lock:
                    base = self._state.copy()
            for _attempt in range(_MAX_ATTEMPTS):
                work = base.copy()
                result = change(work)
                if write_if is not None and not write_if(result):
                    with self._lock:
                        self._state = base
                    return result
                self._retain_state(work)
                payload = _encode_state(
                    work.runs.values(), work.snoozes.values(), work.incidents.values()
                )
                if len(payload) > self.max_shard_bytes:
                    log.error(
                        "history: ConfigMap %s holds %d KiB compressed, over the %d KiB limit",
                        self.state_name,
                        len(payload) // 1024,
                        self.max_shard_bytes // 1024,
                    )
                try:
                    work.resource_version = self._write(
                        self.state_name, base.resource_version, payload, _STATE_SHARD, {}
                    )
                except _Conflict:
                    base = self._read_state()
                    continue
                with self._lock:
                    self._state = work
                return result
        raise HistoryUnavailable(
            f"ConfigMap {self.state_name}: still conflicting after {_MAX_ATTEMPTS} tries"
        )

    def _retain_state(self, state: _StateShard) -> None:
        """Drop runs and snoozes older than the retention window (see _prune_state)."""
        _prune_state(state, _utc(self._clock()) - self.retention)

    def _read_state(self) -> _StateShard:
        obj = self._read(self.state_name)
        return _StateShard() if obj is None else self._state_from_object(obj)

    def _state_from_object(self, obj: dict[str, Any]) -> _StateShard:
        meta = obj.get("metadata") or {}
        try:
            payload = self._payload(obj)
            state = _decode_state(payload) if payload else _StateShard()
        except (ValueError, KeyError, TypeError, OSError, EOFError) as err:
            log.error("history: ConfigMap %s is unreadable, ignoring it: %s", meta.get("name"), err)
            state = _StateShard()
        state.resource_version = meta.get("resourceVersion")
        return state

    # -- internals: the API --

    @staticmethod
    def _payload(obj: dict[str, Any]) -> bytes | None:
        encoded = (obj.get("binaryData") or {}).get(PAYLOAD_KEY)
        if not encoded:
            return None
        try:
            return base64.b64decode(encoded, validate=True)
        except binascii.Error as err:
            raise ValueError(f"binaryData.{PAYLOAD_KEY} is not base64: {err}") from err

    def _read(self, name: str) -> dict[str, Any] | None:
        """The ConfigMap as JSON, or None when it does not exist."""
        try:
            response: Any = self._api.read_namespaced_config_map(
                name, self.namespace, _preload_content=False, _request_timeout=self._timeout
            )
            obj = _json(response)
        except ApiException as err:
            if err.status == 404:
                return None
            raise HistoryUnavailable(self._describe(f"read {name}", err)) from err
        except Exception as err:
            raise HistoryUnavailable(self._describe(f"read {name}", err)) from err
        return obj

    def _write(
        self,
        name: str,
        resource_version: str | None,
        payload: bytes,
        shard: str,
        annotations: dict[str, str],
    ) -> str:
        """Create or replace one shard; its new resourceVersion. _Conflict when overtaken."""
        metadata: dict[str, Any] = {
            "name": name,
            "namespace": self.namespace,
            "labels": {
                "app.kubernetes.io/name": "fluxbot",
                "app.kubernetes.io/part-of": "fluxbot",
                "app.kubernetes.io/component": "history",
                STORE_LABEL: self.name_prefix,
                SHARD_LABEL: shard,
            },
            "annotations": annotations,
        }
        if resource_version is not None:
            metadata["resourceVersion"] = resource_version
        # A plain dict: the client sends it as it is (binaryData values are base64 strings).
        body: Any = {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": metadata,
            "binaryData": {PAYLOAD_KEY: base64.b64encode(payload).decode()},
        }
        response: Any
        try:
            if resource_version is None:
                response = self._api.create_namespaced_config_map(
                    self.namespace, body, _preload_content=False, _request_timeout=self._timeout
                )
            else:
                response = self._api.replace_namespaced_config_map(
                    name,
                    self.namespace,
                    body,
                    _preload_content=False,
                    _request_timeout=self._timeout,
                )
            written = _json(response)
        except ApiException as err:
            if err.status == 409 or (err.status == 404 and resource_version is not None):
                raise _Conflict(name) from err
            raise HistoryUnavailable(self._describe(f"write {name}", err)) from err
        except Exception as err:
            raise HistoryUnavailable(self._describe(f"write {name}", err)) from err
        return str(written["metadata"]["resourceVersion"])

    def _describe(self, what: str, err: BaseException) -> str:
        if isinstance(err, ApiException):
            reason = f"HTTP {err.status} {err.reason}"
            try:
                message = json.loads(err.body or "{}").get("message")
            except (ValueError, AttributeError):
                message = None
            detail = f"{reason}: {message}" if message else reason
        else:
            detail = f"{type(err).__name__}: {err}"
        return f"cannot {what} in namespace {self.namespace}: {detail}"


if TYPE_CHECKING:

    def _conforms(store: ConfigMapHistory) -> HistoryStore:
        return store
