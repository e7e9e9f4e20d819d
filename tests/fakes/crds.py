"""The real Flux CRDs as validators, so fakes and fixtures are held to what a cluster accepts.

The CRDs in tests/fixtures/flux-crds are verbatim copies of what Flux v2.9 installs. A
Kubernetes API server validates custom objects against `openAPIV3Schema` (OpenAPI 3.0, close
to JSON Schema draft 4) and, with kubectl's default strict field validation, refuses unknown
fields. We translate the Kubernetes extensions into plain JSON Schema and validate with
`jsonschema` rather than write a validator of our own.
"""

from __future__ import annotations

import copy
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import yaml

CRD_DIR = Path(__file__).resolve().parent.parent / "fixtures" / "flux-crds"

_format_checker = jsonschema.FormatChecker(formats=())


@_format_checker.checks("date-time", raises=ValueError)
def _is_datetime(value: object) -> bool:
    if not isinstance(value, str):
        return True
    dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return True


@dataclass(frozen=True)
class CrdVersion:
    """One served version of one CRD: what discovery reports and what validation uses."""

    group: str
    version: str
    kind: str
    plural: str
    singular: str
    short_names: tuple[str, ...]
    list_kind: str
    namespaced: bool
    storage: bool
    has_status_subresource: bool
    schema: dict[str, Any] = field(repr=False, compare=False)
    categories: tuple[str, ...] = ()

    @property
    def api_version(self) -> str:
        """`group/version` as it appears in `apiVersion`."""
        return f"{self.group}/{self.version}"

    def validator(self) -> jsonschema.Draft4Validator:
        """A JSON Schema validator for whole objects of this kind."""
        return _validator_for(self.group, self.version, self.kind)

    def errors(self, obj: dict[str, Any]) -> list[str]:
        """Every schema violation of `obj`, as 'path: reason' lines (empty when valid)."""
        problems = []
        for err in sorted(self.validator().iter_errors(obj), key=lambda e: list(e.path)):
            path = ".".join(str(p) for p in err.absolute_path) or "<root>"
            problems.append(f"{path}: {err.message}")
        problems.extend(_metadata_errors(obj.get("metadata")))
        return problems


def _metadata_errors(metadata: object) -> list[str]:
    if not isinstance(metadata, dict):
        return ["metadata: Required value"]
    problems = []
    name = metadata.get("name")
    if not isinstance(name, str) or not name:
        problems.append("metadata.name: Required value")
    for key in ("labels", "annotations"):
        value = metadata.get(key)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            problems.append(f"metadata.{key}: must be a map of string to string")
    return problems


def to_json_schema(node: Any) -> Any:
    """Translate a structural OpenAPI v3 schema into JSON Schema draft 4, strictly.

    `nullable` becomes a null type, `x-kubernetes-int-or-string` an integer-or-string, and
    objects that declare properties refuse unknown ones unless they preserve unknown fields.
    """
    if isinstance(node, list):
        return [to_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties", "definitions"):
            out[key] = {k: to_json_schema(v) for k, v in value.items()}
        elif key.startswith("x-kubernetes-") or key == "nullable":
            continue
        else:
            out[key] = to_json_schema(value)
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("nullable") and "type" in out:
        types = out["type"] if isinstance(out["type"], list) else [out["type"]]
        out["type"] = [*types, "null"]
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not node.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _load_documents() -> Iterator[dict[str, Any]]:
    for path in sorted(CRD_DIR.glob("*.yaml")):
        yield from (d for d in yaml.safe_load_all(path.read_text()) if d)


@cache
def served_versions() -> tuple[CrdVersion, ...]:
    """Every served version of every CRD in the fixture directory."""
    out = []
    for crd in _load_documents():
        spec = crd["spec"]
        names = spec["names"]
        for version in spec["versions"]:
            if not version.get("served"):
                continue
            schema = version["schema"]["openAPIV3Schema"]
            out.append(
                CrdVersion(
                    group=spec["group"],
                    version=version["name"],
                    kind=names["kind"],
                    plural=names["plural"],
                    singular=names.get("singular", names["kind"].lower()),
                    short_names=tuple(names.get("shortNames", ())),
                    list_kind=names.get("listKind", names["kind"] + "List"),
                    namespaced=spec["scope"] == "Namespaced",
                    storage=bool(version.get("storage")),
                    has_status_subresource="status" in version.get("subresources", {}),
                    schema=schema,
                    categories=tuple(names.get("categories", ())),
                )
            )
    return tuple(out)


def find(api_version: str, kind: str) -> CrdVersion | None:
    """The served CRD version for `apiVersion` and `kind`, or None when none serves it."""
    for crd in served_versions():
        if crd.api_version == api_version and crd.kind == kind:
            return crd
    return None


@cache
def _validator_for(group: str, version: str, kind: str) -> jsonschema.Draft4Validator:
    crd = next(
        c for c in served_versions() if (c.group, c.version, c.kind) == (group, version, kind)
    )
    schema = to_json_schema(copy.deepcopy(crd.schema))
    # metadata is validated by the API server's ObjectMeta rules, not by the CRD schema.
    schema.setdefault("properties", {})["metadata"] = {"type": "object"}
    return jsonschema.Draft4Validator(schema, format_checker=_format_checker)


def validate(obj: dict[str, Any]) -> list[str]:
    """Schema problems of a Flux object as the API server would see them; empty when valid."""
    api_version, kind = obj.get("apiVersion"), obj.get("kind")
    if not isinstance(api_version, str) or not isinstance(kind, str):
        return ["apiVersion and kind: Required value"]
    crd = find(api_version, kind)
    if crd is None:
        return [f"no matches for kind {kind!r} in version {api_version!r}"]
    return crd.errors(obj)
