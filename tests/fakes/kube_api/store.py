"""The objects of one fake cluster: one resourceVersion counter, generations, watch history."""

from __future__ import annotations

import copy
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bot.simulation.apiserver import next_generation

from .encoding import _dumps, _is_file, _now
from .errors import ApiError
from .resources import Resource
from .validation import validate


@dataclass
class _Stored:
    obj: dict[str, Any]
    raw: bytes


@dataclass
class _Event:
    rv: int
    type: str
    key: tuple[str, str]
    namespace: str
    obj: dict[str, Any]
    prev: dict[str, Any] | None
    cache: dict[tuple[str, str], bytes] = field(default_factory=dict)


def _with_rv(obj: dict[str, Any], rv: int) -> dict[str, Any]:
    return {**obj, "metadata": {**obj["metadata"], "resourceVersion": str(rv)}}


def _in_version(obj: dict[str, Any], res: Resource, version: str) -> dict[str, Any]:
    api_version = res.api_version(version)
    if obj.get("apiVersion") == api_version:
        return obj
    return {**obj, "apiVersion": api_version}


def _same(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a write changes nothing, in which case kube-apiserver skips it entirely."""

    def strip(obj: Mapping[str, Any]) -> dict[str, Any]:
        meta = {
            k: v
            for k, v in obj["metadata"].items()
            if k not in ("resourceVersion", "managedFields")
        }
        return {**obj, "metadata": meta}

    return strip(old) == strip(new)


class ObjectStore:
    """Seeding, inspection and commits of a server's objects (a mixin of FakeKubeApiServer)."""

    @property
    def resource_version(self) -> str:
        """The server's current resourceVersion (one counter for all objects)."""
        return str(self._rv)

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace an object as a fixture or controller would; ValueError if invalid.

        Unlike an HTTP write this keeps the given `status` (and keeps the stored one when the
        object has none), and honours a given uid, creationTimestamp or generation (so a test
        can seed an object whose controller has not caught up yet).
        """
        obj = copy.deepcopy(dict(obj))
        res, version = self._resolve_py(obj.get("apiVersion"), obj.get("kind"))
        meta = obj.get("metadata")
        if not isinstance(meta, dict):
            raise ValueError(f"{res.kind} has no metadata")
        namespace = meta.setdefault("namespace", "default")
        name = meta.get("name")
        with self._lock:
            old = self._store[res.key].get((namespace, name))
            if old is None:
                new = self._fill_new(res, version, obj)
            else:
                new = obj
                if "status" not in new and "status" in old.obj:
                    new["status"] = copy.deepcopy(old.obj["status"])
                new_meta = new["metadata"]
                for key in ("uid", "creationTimestamp", "deletionTimestamp", "managedFields"):
                    if key in old.obj["metadata"] and key not in new_meta:
                        new_meta[key] = copy.deepcopy(old.obj["metadata"][key])
                if "generation" not in new_meta:
                    self._set_generation(res, old.obj, new)
            try:
                self._validate(res, version, new)
            except ApiError as err:
                raise ValueError(err.body["message"]) from None
            return copy.deepcopy(_in_version(self._commit(res, old, new).obj, res, version))

    def apply_many(self, objs: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
        """apply() each object in turn."""
        return [self.apply(obj) for obj in objs]

    def load_yaml(self, source: str | Path) -> list[dict[str, Any]]:
        """apply() every object of a YAML file or text (multi-document, `kind: List` too)."""
        text = source
        if isinstance(source, Path) or ("\n" not in source and _is_file(source)):
            text = Path(source).read_text()
        objs: list[dict[str, Any]] = []
        for doc in yaml.safe_load_all(str(text)):
            if not doc:
                continue
            if str(doc.get("kind", "")).endswith("List") and "items" in doc:
                objs.extend(doc.get("items") or [])
            else:
                objs.append(doc)
        return self.apply_many(objs)

    def set_status(
        self,
        api_version: str,
        kind: str,
        namespace: str,
        name: str,
        status: Mapping[str, Any] | None,
    ) -> dict[str, Any]:
        """Replace an object's status as its controller would; KeyError if there is none."""
        res, version = self._resolve_py(api_version, kind)
        with self._lock:
            old = self._store[res.key].get((namespace, name))
            if old is None:
                raise KeyError(f'{res.qualified} "{name}" not found in namespace {namespace!r}')
            new = copy.deepcopy(old.obj)
            if status is None:
                new.pop("status", None)
            else:
                new["status"] = copy.deepcopy(dict(status))
            try:
                self._validate(res, version, new)
            except ApiError as err:
                raise ValueError(err.body["message"]) from None
            return copy.deepcopy(_in_version(self._commit(res, old, new).obj, res, version))

    def get(self, api_version: str, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        """A copy of the stored object, or None."""
        res, version = self._resolve_py(api_version, kind)
        with self._lock:
            stored = self._store[res.key].get((namespace, name))
            return None if stored is None else copy.deepcopy(_in_version(stored.obj, res, version))

    def delete(self, api_version: str, kind: str, namespace: str, name: str) -> bool:
        """Remove an object at once (finalizers ignored); False if it did not exist."""
        res, _version = self._resolve_py(api_version, kind)
        with self._lock:
            old = self._store[res.key].get((namespace, name))
            if old is None:
                return False
            self._commit(res, old, None)
            return True

    def objects(
        self, kind: str | None = None, namespace: str | None = None
    ) -> list[dict[str, Any]]:
        """Copies of the stored objects, optionally of one kind or namespace, sorted."""
        with self._lock:
            return [
                copy.deepcopy(stored.obj)
                for res in self.resources.values()
                if kind is None or res.kind == kind
                for (ns, _name), stored in sorted(self._store[res.key].items())
                if namespace is None or ns == namespace
            ]

    def compact(self) -> None:
        """Forget all watch history, like etcd compaction: older resourceVersions now get 410."""
        with self._lock:
            self._history.clear()
            self._compacted_rv = self._rv

    def _resolve_py(self, api_version: Any, kind: Any) -> tuple[Resource, str]:
        if not isinstance(api_version, str) or not isinstance(kind, str):
            raise ValueError("object needs apiVersion and kind")
        group, _, version = api_version.rpartition("/")
        for res in self.resources.values():
            if res.group == group and res.kind == kind and version in res.versions:
                return res, version
        raise ValueError(
            f'no matches for kind "{kind}" in version "{api_version}" on server {self.name!r}'
        )

    def _validate(self, res: Resource, version: str, obj: dict[str, Any]) -> None:
        validate(res, obj, schema=self.validate)

    def _set_generation(self, res: Resource, old: Mapping[str, Any], new: dict[str, Any]) -> None:
        if res.is_core_type:
            return
        new["metadata"]["generation"] = next_generation(old, new, has_status=res.has_status)

    def _fill_new(self, res: Resource, version: str, obj: dict[str, Any]) -> dict[str, Any]:
        obj["apiVersion"] = res.api_version(version)
        meta = obj["metadata"]
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _now())
        meta.pop("resourceVersion", None)
        if not res.is_core_type:
            meta.setdefault("generation", 1)
        return obj

    def _commit(self, res: Resource, old: _Stored | None, new: dict[str, Any] | None) -> _Stored:
        """Store `new` (None deletes) with a fresh resourceVersion and tell the watchers."""
        store = self._store[res.key]
        if new is not None:
            new["apiVersion"] = res.api_version()
            if old is not None and _same(old.obj, new):
                return old
        self._rv += 1
        rv = self._rv
        if new is None:
            assert old is not None
            gone = _with_rv(old.obj, rv)
            meta = gone["metadata"]
            key = (meta["namespace"], meta["name"])
            del store[key]
            event = _Event(rv, "DELETED", res.key, key[0], gone, old.obj)
            stored = _Stored(gone, b"")
        else:
            new["metadata"]["resourceVersion"] = str(rv)
            meta = new["metadata"]
            key = (meta["namespace"], meta["name"])
            stored = _Stored(new, _dumps(new))
            store[key] = stored
            kind = "ADDED" if old is None else "MODIFIED"
            event = _Event(rv, kind, res.key, key[0], new, None if old is None else old.obj)
        if len(self._history) == self._history.maxlen:
            self._compacted_rv = self._history[0].rv
        self._history.append(event)
        for watcher in self._watchers:
            if watcher.resource.key == res.key:
                self._loop.call_soon(watcher.queue.put_nowait, event)
        return stored
