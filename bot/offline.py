"""Offline clusters: Flux objects read from YAML dumps (`kubectl get ... -o yaml`).

Each file is one cluster, named after the file's stem. Multi-document files and `kind: List`
documents are both understood; core Events are kept for `get`, and objects of other kinds are
skipped, so a dump of `kubectl get all,events,gitrepositories,... -o yaml` works as it is.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from bot.domain.events import FluxEvent, newest_first, parse_event
from bot.domain.fleet import ClusterStatus, ClusterTarget, StatusViews
from bot.domain.kinds import is_flux_object
from bot.domain.status import FluxObject, ObjectRef, parse_flux_object
from bot.safe_yaml import BoundedLoader

# As many as a live cluster's answer shows.
EVENT_LIMIT = 10
# A 10,000-object fleet dumps to about 40 MB; refuse anything far beyond before reading it.
MAX_DUMP_BYTES = 256 * 1024 * 1024


class DumpError(Exception):
    """A dump file cannot be read; the message names the file and line."""


@dataclass(frozen=True, slots=True)
class OfflineCluster:
    """The Flux objects of one cluster, as read from a file."""

    environment: str
    name: str
    objects: tuple[FluxObject, ...]
    source: Path | None = None
    # Events in the dump, with the object each is about.
    events: tuple[tuple[ObjectRef, FluxEvent], ...] = ()


def read_dump(path: Path) -> list[dict[str, Any]]:
    """The Flux objects and Events of one dump file, as mappings; DumpError says where."""
    try:
        size = path.stat().st_size
        if size > MAX_DUMP_BYTES:
            raise DumpError(f"{path}: {size} bytes is more than a dump should be")
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise DumpError(f"{path}: cannot read the file: {err.strerror or err}") from err
    except UnicodeDecodeError as err:
        raise DumpError(f"{path}: not a text file ({err.reason})") from err
    return [dict(obj) for obj in _documents(text, path)]


def event_of(obj: Mapping[str, Any]) -> tuple[ObjectRef, FluxEvent]:
    """A core Event, with the object it is about."""
    involved = obj.get("involvedObject") or {}
    ref = ObjectRef(
        str(involved.get("kind", "")),
        str(involved.get("namespace", "")),
        str(involved.get("name", "")),
    )
    return ref, parse_event(obj)


def load_dump(path: Path, environment: str) -> OfflineCluster:
    """Read one dump file into an offline cluster; DumpError says where it went wrong."""
    objects: list[FluxObject] = []
    events: list[tuple[ObjectRef, FluxEvent]] = []
    for obj in read_dump(path):
        try:
            if obj.get("kind") == "Event":
                events.append(event_of(obj))
            else:
                objects.append(parse_flux_object(obj))
        except (ValueError, TypeError, KeyError, AttributeError, OverflowError) as err:
            meta = obj.get("metadata")
            name = meta.get("name") if isinstance(meta, dict) else None
            what = f"{obj.get('kind')} {name}" if name else str(obj.get("kind"))
            raise DumpError(f"{path}: {what} cannot be read: {err}") from err
    return OfflineCluster(environment, path.stem, tuple(objects), path, tuple(events))


def _documents(text: str, path: Path) -> Iterator[Mapping[str, Any]]:
    loader: BoundedLoader | None = None
    try:
        loader = BoundedLoader(text)
        while loader.check_node():
            node = loader.get_node()
            if node is None:
                continue
            yield from _objects_in(node, loader, path)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = str(mark.line + 1) if mark else "?"
        reason = " ".join(str(getattr(err, "problem", None) or err).split())
        raise DumpError(f"{path}:{where}: not valid YAML: {reason}") from err
    finally:
        if loader is not None:
            loader.dispose()


def _objects_in(
    node: yaml.Node, loader: yaml.SafeLoader, path: Path
) -> Iterator[Mapping[str, Any]]:
    line = node.start_mark.line + 1
    if not isinstance(node, yaml.MappingNode):
        if isinstance(node, yaml.ScalarNode) and node.value in ("", "~", "null"):
            return
        raise DumpError(f"{path}:{line}: expected a Kubernetes object (a mapping)")
    data: dict[str, Any] = {str(k): v for k, v in loader.construct_mapping(node, deep=True).items()}
    kind = data.get("kind")
    if kind is not None and not isinstance(kind, str):
        raise DumpError(f"{path}:{line}: `kind` must be a string")
    if isinstance(kind, str) and kind.endswith("List") and "items" in data:
        items_node = next(v for k, v in node.value if k.value == "items")
        if not isinstance(items_node, yaml.SequenceNode):
            raise DumpError(f"{path}:{items_node.start_mark.line + 1}: `items` must be a list")
        for item in items_node.value:
            yield from _objects_in(item, loader, path)
        return
    if kind == "Event" and isinstance(data.get("involvedObject"), dict):
        yield data
        return
    if not is_flux_object(data.get("apiVersion"), kind):
        return
    metadata = data.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        raise DumpError(f"{path}:{line}: {kind} without metadata.name")
    if not isinstance(metadata.get("namespace"), str):
        raise DumpError(f"{path}:{line}: {kind} {metadata['name']} without metadata.namespace")
    yield data


class OfflineFleetReader:
    """A FleetReader over clusters loaded from files: answers instantly, never fails."""

    def events(self, target: ClusterTarget, ref: ObjectRef) -> list[FluxEvent]:
        """The Events the dump held about `ref`, newest first."""
        cluster = self._clusters[(target.environment, target.cluster)]
        return newest_first([e for r, e in cluster.events if r == ref], EVENT_LIMIT)

    def __init__(self, clusters: Sequence[OfflineCluster]) -> None:
        self._clusters = {(c.environment, c.name): c for c in clusters}
        self._read_at = dt.datetime.now(dt.UTC)
        # The objects never change: what answers derive from them is kept (see StatusViews).
        self._views: dict[tuple[str, str, frozenset[str]], StatusViews] = {}

    def read(
        self, targets: Sequence[ClusterTarget], kinds: frozenset[str] = frozenset()
    ) -> list[ClusterStatus]:
        """Status of each target as it was in its file."""
        out = []
        for target in targets:
            cluster = self._clusters[(target.environment, target.cluster)]
            objects = tuple(o for o in cluster.objects if not kinds or o.kind in kinds)
            views = self._views.setdefault(
                (target.environment, target.cluster, kinds), StatusViews()
            )
            out.append(
                ClusterStatus(
                    target.environment, target.cluster, objects, read_at=self._read_at, views=views
                )
            )
        return out
