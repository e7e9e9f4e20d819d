"""The bytes of a history ConfigMap: gzip-compressed JSON, one document per shard, UTC times."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import gzip
import json
import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from bot.domain.history import ActionRecord, DigestRun, ObjectKey, RunState, Snooze
from bot.domain.incidents import IncidentRecord
from bot.domain.transitions import Change, KnownState, Transition

log = logging.getLogger(__name__)

PAYLOAD_KEY: Final = "history.json.gz"
FORMAT_VERSION: Final = 1


def json_body(response: Any) -> dict[str, Any]:
    """The JSON body of a response read with `_preload_content=False`."""
    document = json.loads(response.data)
    if not isinstance(document, dict):
        raise ValueError("the API server answered with something other than an object")
    return document


def utcnow() -> dt.datetime:
    """The current time, in UTC."""
    return dt.datetime.now(dt.UTC)


def as_utc(moment: dt.datetime) -> dt.datetime:
    """`moment` in UTC; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC)


def iso_utc(moment: dt.datetime) -> str:
    """`moment` as ISO 8601 in UTC, as stored."""
    return as_utc(moment).isoformat()


def parse_utc(text: str) -> dt.datetime:
    """A stored ISO 8601 time, in UTC."""
    return as_utc(dt.datetime.fromisoformat(text))


HealthChanges = dict[ObjectKey, tuple[Change, dt.datetime]]
"""Per object, its latest failing/recovered/removed transition (SqliteHistory's `health`)."""
Known = dict[ObjectKey, KnownState]
"""Per object, what fluxbot last knew of it (SqliteHistory's `known`)."""
Seen = dict[str, dt.datetime]
"""Per cluster, when fluxbot last read it fine (SqliteHistory's `seen`)."""


@dataclass
class EnvShard:
    """What one environment's ConfigMap holds, and the resourceVersion it was read at."""

    environment: str
    resource_version: str | None = None  # None: the ConfigMap does not exist yet
    transitions: list[Transition] = field(default_factory=list)  # oldest first
    actions: list[ActionRecord] = field(default_factory=list)  # oldest first
    health: HealthChanges = field(default_factory=dict)
    known: Known = field(default_factory=dict)
    seen: dict[str, dt.datetime] = field(default_factory=dict)

    def content(self) -> tuple[list[Transition], list[ActionRecord], HealthChanges, Known, Seen]:
        """The records and maps the shard holds."""
        return self.transitions, self.actions, self.health, self.known, self.seen


@dataclass
class StateShard:
    """Digest runs, snoozes and incidents of every environment."""

    resource_version: str | None = None
    runs: dict[tuple[str, dt.datetime], DigestRun] = field(default_factory=dict)
    snoozes: dict[tuple[str, ObjectKey], Snooze] = field(default_factory=dict)
    incidents: dict[str, IncidentRecord] = field(default_factory=dict)

    def copy(self) -> StateShard:
        """A copy whose maps can change without changing this one."""
        return StateShard(
            self.resource_version, dict(self.runs), dict(self.snoozes), dict(self.incidents)
        )


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
        "at": iso_utc(t.at),
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
        out["down_since"] = iso_utc(t.down_since)
    return out


def _transition_from_json(environment: str, d: dict[str, Any]) -> Transition:
    return Transition(
        environment=environment,
        cluster=d["cluster"],
        kind=d["kind"],
        namespace=d["namespace"],
        name=d["name"],
        change=Change(d["change"]),
        at=parse_utc(d["at"]),
        old=d.get("old", ""),
        new=d.get("new", ""),
        message=d.get("message", ""),
        down_since=parse_utc(d["down_since"]) if d.get("down_since") else None,
    )


def _action_to_json(a: ActionRecord) -> dict[str, Any]:
    return {
        "at": iso_utc(a.at),
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
        at=parse_utc(d["at"]),
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


def encode_env(
    environment: str,
    ts: Sequence[Transition],
    acts: Sequence[ActionRecord],
    health: HealthChanges,
    known: Known,
    seen: Seen,
) -> bytes:
    """The compressed payload of one environment's shard."""
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
                    "at": iso_utc(at),
                }
                for key, (change, at) in sorted(health.items())
            ],
            "known": [
                [*key, int(state.failing), state.revision, int(state.suspended)]
                for key, state in sorted(known.items())
            ],
            "seen": {cluster: iso_utc(at) for cluster, at in sorted(seen.items())},
        }
    )


def decode_env(environment: str, payload: bytes) -> EnvShard:
    """One environment's shard from its compressed payload; ValueError if malformed."""
    document = _decompress(payload)
    env = document.get("environment") or environment
    ts = [_transition_from_json(env, d) for d in document.get("transitions", [])]
    acts = [_action_from_json(env, d) for d in document.get("actions", [])]
    ts.sort(key=lambda t: t.at)
    acts.sort(key=lambda a: a.at)
    health: HealthChanges = {
        (d["cluster"], d["kind"], d["namespace"], d["name"]): (
            Change(d["change"]),
            parse_utc(d["at"]),
        )
        for d in document.get("health", [])
    }
    known: Known = {
        (c, k, ns, n): KnownState(bool(failing), revision, bool(suspended))
        for c, k, ns, n, failing, revision, suspended in document.get("known", [])
    }
    seen = {cluster: parse_utc(at) for cluster, at in (document.get("seen") or {}).items()}
    return EnvShard(env, None, ts, acts, health, known, seen)


def _run_to_json(r: DigestRun) -> dict[str, Any]:
    return {
        "environment": r.environment,
        "scheduled_for": iso_utc(r.scheduled_for),
        "state": r.state.value,
        "updated_at": iso_utc(r.updated_at),
        "message_ts": r.message_ts,
        "error": r.error,
        "attempts": r.attempts,
    }


def _run_from_json(d: dict[str, Any]) -> DigestRun:
    return DigestRun(
        environment=d["environment"],
        scheduled_for=parse_utc(d["scheduled_for"]),
        state=RunState(d["state"]),
        updated_at=parse_utc(d["updated_at"]),
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
        "until": iso_utc(s.until),
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
        until=parse_utc(d["until"]),
        state=d.get("state", ""),
        by=d.get("by", ""),
    )


def encode_state(
    runs: Iterable[DigestRun],
    snoozes: Iterable[Snooze],
    incidents: Iterable[IncidentRecord] = (),
) -> bytes:
    """The compressed payload of the state shard."""
    return _compress(
        {
            "version": FORMAT_VERSION,
            "runs": [_run_to_json(r) for r in runs],
            "snoozes": [_snooze_to_json(s) for s in snoozes],
            "incidents": [i.to_json() for i in incidents],
        }
    )


def decode_state(payload: bytes) -> StateShard:
    """The state shard from its compressed payload; ValueError if malformed."""
    document = _decompress(payload)
    shard = StateShard()
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


def payload_of(obj: dict[str, Any]) -> bytes | None:
    """The decoded payload of a history ConfigMap object, None when it has none."""
    encoded = (obj.get("binaryData") or {}).get(PAYLOAD_KEY)
    if not encoded:
        return None
    try:
        return base64.b64decode(encoded, validate=True)
    except binascii.Error as err:
        raise ValueError(f"binaryData.{PAYLOAD_KEY} is not base64: {err}") from err


def env_from_object(environment: str, obj: dict[str, Any]) -> EnvShard | None:
    """One environment's shard from its ConfigMap; None (logged) when unreadable."""
    meta = obj.get("metadata") or {}
    try:
        payload = payload_of(obj)
        shard = decode_env(environment, payload) if payload else EnvShard(environment)
    except (ValueError, KeyError, TypeError, OSError, EOFError) as err:
        log.error("history: ConfigMap %s is unreadable, ignoring it: %s", meta.get("name"), err)
        return None
    shard.resource_version = meta.get("resourceVersion")
    return shard


def state_from_object(obj: dict[str, Any]) -> StateShard:
    """The state shard from its ConfigMap; empty (logged) when unreadable."""
    meta = obj.get("metadata") or {}
    try:
        payload = payload_of(obj)
        state = decode_state(payload) if payload else StateShard()
    except (ValueError, KeyError, TypeError, OSError, EOFError) as err:
        log.error("history: ConfigMap %s is unreadable, ignoring it: %s", meta.get("name"), err)
        state = StateShard()
    state.resource_version = meta.get("resourceVersion")
    return state
