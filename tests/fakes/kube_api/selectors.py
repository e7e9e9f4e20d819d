"""`labelSelector` and `fieldSelector` as kube-apiserver parses and applies them."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .resources import Resource

_LABEL_KEY = r"[A-Za-z0-9]([-A-Za-z0-9_./]*[A-Za-z0-9])?"
_SET_REQ = re.compile(rf"^({_LABEL_KEY})\s+(in|notin)\s*\((.*)\)$")
_EQ_REQ = re.compile(rf"^({_LABEL_KEY})\s*(==|!=|=)\s*(.*)$")
_KEY_ONLY = re.compile(rf"^(!?)\s*({_LABEL_KEY})$")


def _split_top_level(text: str) -> list[str]:
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


@dataclass(frozen=True)
class LabelSelector:
    """A parsed `labelSelector`: requirements that must all hold."""

    requirements: tuple[tuple[str, str, frozenset[str]], ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> LabelSelector:
        """Parse `a=b,c!=d,e in (f,g),h notin (i),j,!k`; ValueError when malformed."""
        reqs = []
        for part in _split_top_level(text or ""):
            if match := _SET_REQ.match(part):
                key, op, values = match.groups()[0], match.group(3), match.group(4)
                items = frozenset(v.strip() for v in values.split(",") if v.strip())
                reqs.append((key, op, items))
            elif match := _EQ_REQ.match(part):
                key, op, value = match.group(1), match.group(3), match.group(4).strip()
                if not re.fullmatch(r"[A-Za-z0-9]?([-A-Za-z0-9_.]*[A-Za-z0-9])?", value):
                    raise ValueError(f"unable to parse requirement: invalid label value {value!r}")
                reqs.append((key, "!=" if op == "!=" else "=", frozenset({value})))
            elif match := _KEY_ONLY.match(part):
                reqs.append((match.group(2), "!" if match.group(1) else "exists", frozenset()))
            else:
                raise ValueError(f"unable to parse requirement: found {part!r}")
        return cls(tuple(reqs))

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        """Whether an object with these labels is selected."""
        labels = labels or {}
        for key, op, values in self.requirements:
            present = key in labels
            value = labels.get(key)
            if op == "=" and not (present and value in values):
                return False
            if op == "!=" and present and value in values:
                return False
            if op == "in" and not (present and value in values):
                return False
            if op == "notin" and present and value in values:
                return False
            if op == "exists" and not present:
                return False
            if op == "!" and present:
                return False
        return True


_EVENT_FIELDS = {
    "involvedObject.kind": ("involvedObject", "kind"),
    "involvedObject.namespace": ("involvedObject", "namespace"),
    "involvedObject.name": ("involvedObject", "name"),
    "involvedObject.uid": ("involvedObject", "uid"),
    "involvedObject.apiVersion": ("involvedObject", "apiVersion"),
    "involvedObject.resourceVersion": ("involvedObject", "resourceVersion"),
    "involvedObject.fieldPath": ("involvedObject", "fieldPath"),
    "reason": ("reason",),
    "reportingComponent": ("reportingComponent",),
    "source": ("source", "component"),
    "type": ("type",),
}


@dataclass(frozen=True)
class FieldSelector:
    """A parsed `fieldSelector` over the fields kube-apiserver indexes for a resource."""

    requirements: tuple[tuple[tuple[str, ...], bool, str], ...] = ()

    @classmethod
    def parse(cls, text: str | None, resource: Resource) -> FieldSelector:
        """Parse `metadata.name=x,metadata.namespace!=y`; ValueError when unsupported."""
        reqs = []
        for part in _split_top_level(text or ""):
            match = re.match(r"^([A-Za-z.]+)\s*(==|!=|=)\s*(.*)$", part)
            if not match:
                raise ValueError(f"invalid selector: {part!r}; can't understand {part!r}")
            name, op, value = match.groups()
            if name in ("metadata.name", "metadata.namespace"):
                path: tuple[str, ...] = tuple(name.split("."))
            elif resource.key == ("", "events") and name in _EVENT_FIELDS:
                path = _EVENT_FIELDS[name]
            else:
                raise ValueError(f"field label not supported: {name}")
            reqs.append((path, op != "!=", value.strip()))
        return cls(tuple(reqs))

    def matches(self, obj: Mapping[str, Any]) -> bool:
        """Whether the object is selected."""
        for path, equal, value in self.requirements:
            node: Any = obj
            for step in path:
                node = node.get(step) if isinstance(node, Mapping) else None
            actual = "" if node is None else str(node)
            if (actual == value) != equal:
                return False
        return True
