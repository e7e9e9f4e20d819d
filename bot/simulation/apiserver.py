"""What kube-apiserver does to an object on a write, for every simulated cluster.

The live demo's in-memory clusters (bot/demo/live.py), the simulated controllers applying Git
(bot/simulation/flux.py) and the tests' fake API server (tests/fakes/kube_api) all write
objects through these two rules, so none of them patches or counts generations its own way:

- JSON merge patch as RFC 7386 defines it (kube-apiserver applies `application/merge-patch+json`
  with evanphx/json-patch `MergePatch`): objects merge key by key, `null` deletes a key, and
  anything else (lists included) replaces the old value.
- `metadata.generation` of a custom resource goes up by one when anything but `metadata` (and
  `status`, when the CRD has the status subresource) changes (kubernetes
  staging/src/k8s.io/apiextensions-apiserver/pkg/registry/customresource/strategy.go
  PrepareForUpdate).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch; returns a new value and leaves both inputs alone."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def spec_part(obj: Mapping[str, Any], *, has_status: bool = True) -> dict[str, Any]:
    """What a generation counts: the object without metadata, type and (usually) status."""
    skip = {"metadata", "apiVersion", "kind"} | ({"status"} if has_status else set())
    return {k: v for k, v in obj.items() if k not in skip}


def next_generation(
    old: Mapping[str, Any], new: Mapping[str, Any], *, has_status: bool = True
) -> int:
    """The generation `new` gets when it replaces `old`: one more when its spec changed."""
    generation = int((old.get("metadata") or {}).get("generation") or 1)
    if spec_part(old, has_status=has_status) != spec_part(new, has_status=has_status):
        generation += 1
    return generation
