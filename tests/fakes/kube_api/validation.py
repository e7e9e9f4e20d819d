"""What kube-apiserver refuses to store: CRD schema errors, bad names, bad ConfigMaps."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from typing import Any

from .errors import ApiError
from .resources import Resource

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def _core_metadata_errors(meta: Any) -> list[str]:
    """ObjectMeta checks for built-in kinds, which have no CRD schema to speak for them."""
    if not isinstance(meta, dict):
        return ["metadata: Required value"]
    problems = []
    if not isinstance(meta.get("name"), str) or not meta["name"]:
        problems.append("metadata.name: Required value")
    for key in ("labels", "annotations"):
        value = meta.get(key)
        if value is not None and (
            not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values())
        ):
            problems.append(f"metadata.{key}: must be a map of string to string")
    return problems


_CONFIGMAP_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
MAX_CONFIGMAP_BYTES = 1024 * 1024


def _configmap_errors(obj: Mapping[str, Any]) -> list[str]:
    """ConfigMap checks kube-apiserver makes: key names, base64 binaryData, the 1 MiB limit."""
    problems = []
    total = 0
    data, binary = obj.get("data") or {}, obj.get("binaryData") or {}
    for field_name, values in (("data", data), ("binaryData", binary)):
        if not isinstance(values, dict):
            problems.append(f"{field_name}: Invalid value: must be a map of string to string")
            continue
        for key, value in values.items():
            if not _CONFIGMAP_KEY.match(key) or len(key) > 253:
                problems.append(
                    f'{field_name}[{key}]: Invalid value: "{key}": a valid config key must '
                    "consist of alphanumeric characters, '-', '_' or '.'"
                )
            if not isinstance(value, str):
                problems.append(f"{field_name}[{key}]: Invalid value: must be a string")
                continue
            if field_name == "data":
                total += len(value.encode())
                if key in binary:
                    problems.append(
                        f'data[{key}]: Invalid value: "{key}": duplicate of key present in '
                        "binaryData"
                    )
            else:
                try:
                    total += len(base64.b64decode(value, validate=True))
                except ValueError:
                    problems.append(
                        f"binaryData[{key}]: Invalid value: illegal base64 data (not base64)"
                    )
    if total > MAX_CONFIGMAP_BYTES:
        problems.append(f"[]: Too long: may not be more than {MAX_CONFIGMAP_BYTES} bytes")
    return problems


def validate(res: Resource, obj: dict[str, Any], *, schema: bool = True) -> None:
    """ApiError 422 with kube-apiserver's wording when `obj` may not be stored."""
    meta = obj.get("metadata") or {}
    name = meta.get("name") if isinstance(meta, dict) else None
    problems: list[str] = []
    if isinstance(name, str) and name and (len(name) > 253 or not _DNS_SUBDOMAIN.match(name)):
        problems.append(
            f'metadata.name: Invalid value: "{name}": a lowercase RFC 1123 subdomain must '
            "consist of lower case alphanumeric characters, '-' or '.', and must start and "
            "end with an alphanumeric character"
        )
    if res.crd is not None and schema:
        # Older served versions are checked against today's schema of the same kind.
        checked = {**obj, "apiVersion": res.crd.api_version}
        problems.extend(res.crd.errors(checked))
    else:
        problems.extend(_core_metadata_errors(meta))
        if res.key == ("", "events") and not isinstance(obj.get("involvedObject"), dict):
            problems.append("involvedObject: Required value")
        if res.key == ("", "configmaps"):
            problems.extend(_configmap_errors(obj))
    if problems:
        kind = f"{res.kind}.{res.group}" if res.group else res.kind
        listed = problems[0] if len(problems) == 1 else "[" + ", ".join(problems) + "]"
        causes = []
        for problem in problems:
            path, _, text = problem.partition(": ")
            causes.append({"reason": "FieldValueInvalid", "message": text, "field": path})
        raise ApiError(
            422,
            "Invalid",
            f'{kind} "{name}" is invalid: {listed}',
            {"name": name, "group": res.group, "kind": res.kind, "causes": causes},
        )
