"""Following the other replicas' writes: a watch on the history ConfigMaps keeps memory current."""

from __future__ import annotations

import logging
import threading
from typing import Any, Final

from kubernetes import watch as k8s_watch

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

log = logging.getLogger(__name__)
_WATCH_SECONDS: Final = 300
_FOLLOW_BACKOFF: Final = (0.5, 30.0)


class Follower:
    """The watch loop of a ConfigMapHistory with `follow=True` (a mixin of ConfigMapHistory).

    It lists and watches the ConfigMaps itself rather than through bot/kube/cache.py's
    informer, which serves Flux objects; the two loops do the same list/watch/relist dance.
    """

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
    _watch: Any

    def reload(self) -> None:
        """Replace the in-memory copy with what the cluster holds."""
        raise NotImplementedError

    def _describe(self, what: str, err: BaseException) -> str:
        raise NotImplementedError

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
