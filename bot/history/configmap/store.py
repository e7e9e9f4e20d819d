"""ConfigMapHistory: the HistoryStore in ConfigMaps, each write guarded by its resourceVersion."""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import logging
import math
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from bot.domain.change_window import ChangeWindow, fold
from bot.domain.history import ActionRecord, DigestRun, ObjectKey, RunState, Snooze
from bot.domain.incidents import IncidentRecord
from bot.domain.transitions import Change, KnownState, Transition
from bot.history.configmap.codec import (
    PAYLOAD_KEY,
    EnvShard,
    HealthChanges,
    Known,
    Seen,
    StateShard,
    as_utc,
    encode_env,
    encode_state,
    env_from_object,
    json_body,
    state_from_object,
    utcnow,
)
from bot.history.configmap.follower import Follower
from bot.history.configmap.shards import (
    DNS_LABEL,
    ENV_SHARD,
    ENVIRONMENT_ANNOTATION,
    FINAL_STATES,
    SHARD_LABEL,
    STATE_SHARD,
    STORE_LABEL,
    Conflict,
    HistoryUnavailable,
    Pending,
    T,
    fold_health,
    fold_pending,
    merge_timed,
    prune_state,
    records_since,
    settle_health,
    shard_name,
    within_window,
)
from bot.kube.errors import error_detail
from bot.kube.listwatch import ListWatch

if TYPE_CHECKING:
    from bot.domain.history import HistoryStore

log = logging.getLogger(__name__)

DEFAULT_MAX_SHARD_BYTES: Final = 900 * 1024
DEFAULT_CLAIM_TIMEOUT: Final = dt.timedelta(minutes=5)
"""How long a POSTING run belongs to its claimer: as SqliteHistory, posting takes seconds."""
_MAX_ATTEMPTS: Final = 8
_MAX_PENDING: Final = 100_000


class ConfigMapHistory(Follower):
    """`HistoryStore` in ConfigMaps: shared by replicas, written by the leader (package doc).

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
        clock: Callable[[], dt.datetime] = utcnow,
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
        if not DNS_LABEL.match(name_prefix) or len(name_prefix) > 63:
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
        self._envs: dict[str, EnvShard] = {}
        self._state = StateShard()
        self._pending: dict[str, Pending] = {}
        self._closed = False
        self._stop = threading.Event()
        self._flusher: threading.Thread | None = None
        self._listed_version: str | None = None  # resourceVersion of the last list
        self._listwatch: ListWatch | None = None
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
        return shard_name(self.name_prefix, environment)

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
                document = json_body(listed)
            except Exception as err:
                raise HistoryUnavailable(self._describe("list ConfigMaps", err)) from err
            self._load(document.get("items") or [])
            self._listed_version = (document.get("metadata") or {}).get("resourceVersion")

    def _load(self, items: list[dict[str, Any]]) -> None:
        envs: dict[str, EnvShard] = {}
        state = StateShard()
        for item in items:
            meta = item.get("metadata") or {}
            shard = (meta.get("labels") or {}).get(SHARD_LABEL)
            if shard == ENV_SHARD:
                env = (meta.get("annotations") or {}).get(ENVIRONMENT_ANNOTATION, "")
                loaded = env_from_object(env, item)
                if loaded is not None:
                    envs[loaded.environment] = loaded
            elif shard == STATE_SHARD:
                state = state_from_object(item)
        with self._lock:
            self._envs = envs
            self._state = state
        log.info("history loaded from %d ConfigMaps in %s", len(items), self.namespace or "default")

    def record_transitions(self, transitions: Sequence[Transition]) -> None:
        """Buffer transitions, all or none; written within `flush_seconds` (see the module doc)."""
        if not transitions:
            return
        batch = [
            t if t.at.tzinfo is dt.UTC else dataclasses.replace(t, at=as_utc(t.at))
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
            record = dataclasses.replace(record, at=as_utc(record.at))
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
            return within_window(
                stored.transitions if stored else [],
                pending.transitions if pending else [],
                since,
                until,
            )

    def change_window(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> ChangeWindow:
        """The transitions of `environment` with since < at <= until, folded per object."""
        # They are in memory already: folding them builds nothing per transition.
        return fold(self.transitions(environment, since, until))

    def actions(
        self, environment: str, since: dt.datetime, until: dt.datetime
    ) -> list[ActionRecord]:
        """Actions of `environment` with since < at <= until, oldest first."""
        with self._lock:
            stored = self._envs.get(environment)
            pending = self._pending.get(environment)
            return within_window(
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
                health = fold_health(health, pending.transitions)
        return {key: at for key, (change, at) in health.items() if change is Change.FAILING}

    def known_states(self, environment: str, cluster: str) -> dict[ObjectKey, KnownState]:
        """What the store last knew of every object of one cluster (buffered changes included)."""
        with self._lock:
            stored = self._envs.get(environment)
            known, _seen = fold_pending(
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
        at = as_utc(at)
        with self._lock:
            self._check_open()
            seen = self._pending_of(environment).seen
            for cluster in clusters:
                seen[cluster] = max(at, seen.get(cluster, at))

    def last_seen(self, environment: str) -> dict[str, dt.datetime]:
        """Per cluster, the last time fluxbot read it fine."""
        with self._lock:
            stored = self._envs.get(environment)
            _known, seen = fold_pending(
                {}, stored.seen if stored else {}, self._pending.get(environment)
            )
        return seen

    def save_snooze(self, snooze: Snooze) -> None:
        """Add or replace the snooze of one object; written at once."""
        snooze = dataclasses.replace(snooze, until=as_utc(snooze.until))

        def change(state: StateShard) -> None:
            state.snoozes[(snooze.environment, snooze.key)] = snooze

        self._update_state(change)

    def snoozes(self, environment: str, now: dt.datetime) -> list[Snooze]:
        """Snoozes of `environment` that have not expired at `now`."""
        now = as_utc(now)
        with self._lock:
            found = [
                s
                for (env, transition_key), s in self._state.snoozes.items()
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
        key = (environment, as_utc(scheduled_for))
        now = as_utc(now)

        def change(state: StateShard) -> bool:
            run = state.runs.get(key)
            if run is not None:
                if run.state in FINAL_STATES:
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
        key = (environment, as_utc(scheduled_for))

        def change(shard: StateShard) -> None:
            run = shard.runs.get(key)
            shard.runs[key] = DigestRun(
                environment=environment,
                scheduled_for=key[1],
                state=state,
                updated_at=as_utc(now),
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

    def save_incident(self, record: IncidentRecord) -> None:
        """Add or replace one incident; written at once."""

        def change(state: StateShard) -> None:
            state.incidents[record.id] = record

        self._update_state(change)

    def incidents(self, environment: str) -> list[IncidentRecord]:
        """Every incident of `environment` still kept."""
        with self._lock:
            found = [i for i in self._state.incidents.values() if i.environment == environment]
        return sorted(found, key=lambda i: i.id)

    def prune(self, before: dt.datetime) -> int:
        """Forget transitions, actions, expired snoozes and runs older than `before`; count.

        Buffered records are written first. Raises HistoryUnavailable on API errors.
        """
        before = as_utc(before)
        self.flush()
        removed = 0
        with self._lock:
            environments = list(self._envs)
        for env in environments:
            removed += self._update_env(env, prune_before=before)

        def change(state: StateShard) -> int:
            return prune_state(state, before)

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
        listwatch = self._listwatch
        if listwatch is not None:
            listwatch.interrupt()  # the watch thread ends at the next event; it only updates memory
        if self._flusher is not None:
            self._flusher.join(self._timeout * 2)
        try:
            self.flush()
        except HistoryUnavailable as err:
            with self._lock:
                lost = sum(len(p.transitions) + len(p.actions) for p in self._pending.values())
            log.error("history: %d buffered records could not be written: %s", lost, err)

    def _check_open(self) -> None:
        if self._closed:
            raise HistoryUnavailable("the history store is closed: nothing more can be recorded")

    def _pending_of(self, environment: str) -> Pending:
        pending = self._pending.get(environment)
        if pending is None:
            pending = self._pending[environment] = Pending()
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

    def _update_env(self, environment: str, prune_before: dt.datetime | None = None) -> int:
        """Write the buffer of one environment; with `prune_before`, also forget what is
        older (returns how many transitions and actions that forgot).

        Read-modify-write: starts from the in-memory copy and its resourceVersion, and on a
        conflict reads the shard again and merges once more.
        """
        name = self.environment_name(environment)
        with self._write_lock:
            with self._lock:
                pending = self._pending.get(environment) or Pending()
                new_ts, new_acts = list(pending.transitions), list(pending.actions)
                new_listings, new_seen = list(pending.listings), dict(pending.seen)
                base = self._envs.get(environment) or EnvShard(environment)
            for _attempt in range(_MAX_ATTEMPTS):
                known = set(base.transitions)
                fresh = []  # what the shard lacks (after a lost response, it may have it all)
                for t in new_ts:
                    if t not in known:
                        known.add(t)
                        fresh.append(t)
                ts = sorted([*base.transitions, *fresh], key=lambda t: t.at)
                acts = merge_timed(base.actions, new_acts, lambda a: a.at)
                health = fold_health(base.health, fresh)
                states, seen = fold_pending(
                    base.known, base.seen, Pending(fresh, [], new_listings, new_seen)
                )
                removed = 0
                if prune_before is not None:
                    kept_ts, kept_acts = records_since(ts, acts, prune_before)
                    removed = len(ts) + len(acts) - len(kept_ts) - len(kept_acts)
                    ts, acts, health = kept_ts, kept_acts, settle_health(health, prune_before)
                cutoff = as_utc(self._clock()) - self.retention
                ts, acts = records_since(ts, acts, cutoff)
                health = settle_health(health, cutoff)
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
                            ENV_SHARD,
                            {ENVIRONMENT_ANNOTATION: environment},
                        )
                    except Conflict:
                        base = self._read_env(environment)
                        continue
                with self._lock:
                    self._envs[environment] = EnvShard(
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
        payload = encode_env(environment, ts, acts, health, known, seen)
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
            payload = encode_env(environment, kept_ts, kept_acts, health, known, seen)
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

    def _read_env(self, environment: str) -> EnvShard:
        obj = self._read(self.environment_name(environment))
        if obj is None:
            return EnvShard(environment)
        loaded = env_from_object(environment, obj)
        if loaded is None:  # unreadable: overwrite it, keeping its resourceVersion
            return EnvShard(environment, obj["metadata"].get("resourceVersion"))
        return loaded

    def _update_state(
        self,
        change: Callable[[StateShard], T],
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
                payload = encode_state(
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
                        self.state_name, base.resource_version, payload, STATE_SHARD, {}
                    )
                except Conflict:
                    base = self._read_state()
                    continue
                with self._lock:
                    self._state = work
                return result
        raise HistoryUnavailable(
            f"ConfigMap {self.state_name}: still conflicting after {_MAX_ATTEMPTS} tries"
        )

    def _retain_state(self, state: StateShard) -> None:
        """Drop runs and snoozes older than the retention window (see prune_state)."""
        prune_state(state, as_utc(self._clock()) - self.retention)

    def _read_state(self) -> StateShard:
        obj = self._read(self.state_name)
        return StateShard() if obj is None else state_from_object(obj)

    def _read(self, name: str) -> dict[str, Any] | None:
        """The ConfigMap as JSON, or None when it does not exist."""
        try:
            response: Any = self._api.read_namespaced_config_map(
                name, self.namespace, _preload_content=False, _request_timeout=self._timeout
            )
            obj = json_body(response)
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
        """Create or replace one shard; its new resourceVersion. Conflict when overtaken."""
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
            written = json_body(response)
        except ApiException as err:
            if err.status == 409 or (err.status == 404 and resource_version is not None):
                raise Conflict(name) from err
            raise HistoryUnavailable(self._describe(f"write {name}", err)) from err
        except Exception as err:
            raise HistoryUnavailable(self._describe(f"write {name}", err)) from err
        return str(written["metadata"]["resourceVersion"])

    def _describe(self, what: str, err: BaseException) -> str:
        return f"cannot {what} in namespace {self.namespace}: {error_detail(err)}"


if TYPE_CHECKING:

    def _conforms(store: ConfigMapHistory) -> HistoryStore:
        return store
