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

Modules: codec.py (the bytes of a shard), shards.py (which ConfigMap holds what, merging and
retention), store.py (`ConfigMapHistory`, the read-modify-write), follower.py (the watch that
keeps a replica's copy current). This is the only part of the history that imports the
Kubernetes client.
"""

from bot.history.configmap.codec import PAYLOAD_KEY
from bot.history.configmap.shards import (
    ENVIRONMENT_ANNOTATION,
    SHARD_LABEL,
    STORE_LABEL,
    HistoryUnavailable,
)
from bot.history.configmap.store import (
    DEFAULT_CLAIM_TIMEOUT,
    DEFAULT_MAX_SHARD_BYTES,
    ConfigMapHistory,
)

__all__ = [
    "DEFAULT_CLAIM_TIMEOUT",
    "DEFAULT_MAX_SHARD_BYTES",
    "ENVIRONMENT_ANNOTATION",
    "PAYLOAD_KEY",
    "SHARD_LABEL",
    "STORE_LABEL",
    "ConfigMapHistory",
    "HistoryUnavailable",
]
