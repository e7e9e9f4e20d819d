"""Following the other replicas' writes: a watch on the history ConfigMaps keeps memory current."""

from __future__ import annotations

import functools
import logging
import threading
from typing import Any, Final

from bot.history.configmap.codec import (
    EnvShard,
    StateShard,
    env_from_object,
    state_from_object,
)
from bot.history.configmap.shards import (
    ENV_SHARD,
    ENVIRONMENT_ANNOTATION,
    SHARD_LABEL,
    STATE_SHARD,
    STORE_LABEL,
    HistoryUnavailable,
)
from bot.kube.listwatch import Backoff, ListWatch

log = logging.getLogger(__name__)
_WATCH_SECONDS: Final = 300
_FOLLOW_BACKOFF: Final = (0.5, 30.0)


class Follower:
    """The watch loop of a ConfigMapHistory with `follow=True` (a mixin of ConfigMapHistory):
    bot/kube/listwatch.py's loop, the one the watch cache follows Flux objects with."""

    # What it uses of the store it is mixed into.
    namespace: str
    name_prefix: str
    _api: Any
    _timeout: float
    _lock: threading.RLock
    _stop: threading.Event
    _envs: dict[str, EnvShard]
    _state: StateShard
    _listed_version: str | None
    _listwatch: ListWatch | None

    def reload(self) -> None:
        """Replace the in-memory copy with what the cluster holds."""
        raise NotImplementedError

    def _describe(self, what: str, err: BaseException) -> str:
        raise NotImplementedError

    def _follow_loop(self) -> None:
        """Watch the ConfigMaps and apply every change to memory; relist after any failure."""
        self._listwatch = ListWatch(
            relist=self._relist,
            list_call=functools.partial(
                self._api.list_namespaced_config_map,
                self.namespace,
                label_selector=f"{STORE_LABEL}={self.name_prefix}",
            ),
            apply=self._apply_event,
            failed=self._follow_failed,
            stop=self._stop,
            backoff=Backoff(*_FOLLOW_BACKOFF),
            watch_timeout_seconds=_WATCH_SECONDS,
            connect_timeout=self._timeout,
        )
        self._listwatch.run(self._listed_version)

    def _relist(self) -> str | None:
        self.reload()
        return self._listed_version

    def _follow_failed(self, err: BaseException) -> None:
        log.warning(
            "history: watching ConfigMaps failed (%s); relisting after a backoff",
            err if isinstance(err, HistoryUnavailable) else self._describe("watch", err),
        )

    def _apply_event(self, event: Any, resource_version: str) -> str:
        obj = event.get("object") if isinstance(event, dict) else None
        if not isinstance(obj, dict):
            return resource_version
        meta = obj.get("metadata") or {}
        version = str(meta.get("resourceVersion") or resource_version)
        kind = event.get("type")
        shard = (meta.get("labels") or {}).get(SHARD_LABEL)
        if kind not in ("ADDED", "MODIFIED", "DELETED") or shard not in (ENV_SHARD, STATE_SHARD):
            return version  # a BOOKMARK, or not ours
        if shard == STATE_SHARD:
            state = StateShard() if kind == "DELETED" else state_from_object(obj)
            with self._lock:
                if self._state.resource_version != version:
                    self._state = state
            return version
        environment = (meta.get("annotations") or {}).get(ENVIRONMENT_ANNOTATION, "")
        if kind == "DELETED":
            with self._lock:
                self._envs.pop(environment, None)
            return version
        loaded = env_from_object(environment, obj)
        if loaded is not None:
            with self._lock:
                known = self._envs.get(loaded.environment)
                if known is None or known.resource_version != version:
                    self._envs[loaded.environment] = loaded
        return version
