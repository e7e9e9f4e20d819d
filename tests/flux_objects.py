"""Small builders for Flux objects in tests: minimal, and valid against the real CRDs.

Each builder returns the object as the API server would (a dict). `checked` validates it
against the Flux v2.9 CRDs so a test can never rely on an object no cluster would accept.
"""

from __future__ import annotations

import copy
from typing import Any

from tests.fakes import crds

T0 = "2026-11-25T08:00:00Z"
GIT_SHA = "696f056df216eea1f4fdd8e6e6a5b1c45f4ef1a9"
OTHER_SHA = "1c7d2ab0e8f3c94a5b6d7e8f90a1b2c3d4e5f6a7"
DIGEST = "d4f3c2b1a0e9f8d7c6b5a4e3d2c1b0a9f8e7d6c5b4a3e2d1c0b9a8f7e6d5c4b3"

_API = {
    "GitRepository": "source.toolkit.fluxcd.io/v1",
    "OCIRepository": "source.toolkit.fluxcd.io/v1",
    "HelmRepository": "source.toolkit.fluxcd.io/v1",
    "HelmChart": "source.toolkit.fluxcd.io/v1",
    "Bucket": "source.toolkit.fluxcd.io/v1",
    "Kustomization": "kustomize.toolkit.fluxcd.io/v1",
    "HelmRelease": "helm.toolkit.fluxcd.io/v2",
    "ImageRepository": "image.toolkit.fluxcd.io/v1",
    "ImagePolicy": "image.toolkit.fluxcd.io/v1",
    "ImageUpdateAutomation": "image.toolkit.fluxcd.io/v1",
    "Receiver": "notification.toolkit.fluxcd.io/v1",
    "Provider": "notification.toolkit.fluxcd.io/v1beta3",
    "Alert": "notification.toolkit.fluxcd.io/v1beta3",
    "ExternalArtifact": "source.toolkit.fluxcd.io/v1",
    "ArtifactGenerator": "source.extensions.fluxcd.io/v1beta1",
}
# notification-controller v1beta3 Alerts and Providers have no status at all; ExternalArtifact
# and ArtifactGenerator statuses have no observedGeneration.
_NO_STATUS = frozenset({"Alert", "Provider"})
_NO_OBSERVED_GENERATION = frozenset({"ExternalArtifact", "ArtifactGenerator"})
_SPEC: dict[str, dict[str, Any]] = {
    "GitRepository": {
        "interval": "1m",
        "url": "https://github.com/acme/fleet",
        "ref": {"branch": "main"},
    },
    "OCIRepository": {"interval": "5m", "url": "oci://ghcr.io/acme/manifests/apps"},
    "HelmRepository": {"interval": "1h", "url": "https://stefanprodan.github.io/podinfo"},
    "HelmChart": {
        "interval": "10m",
        "chart": "podinfo",
        "sourceRef": {"kind": "HelmRepository", "name": "podinfo"},
    },
    "Bucket": {"interval": "5m", "bucketName": "fleet", "endpoint": "minio.minio:9000"},
    "Kustomization": {
        "interval": "10m",
        "path": "./apps",
        "prune": True,
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
    },
    "HelmRelease": {
        "interval": "10m",
        "chart": {
            "spec": {
                "chart": "podinfo",
                "sourceRef": {
                    "kind": "HelmRepository",
                    "name": "podinfo",
                    "namespace": "flux-system",
                },
            }
        },
    },
    "ImageRepository": {"interval": "5m", "image": "ghcr.io/stefanprodan/podinfo"},
    "ImagePolicy": {
        "imageRepositoryRef": {"name": "podinfo"},
        "policy": {"semver": {"range": "6.x"}},
    },
    "ImageUpdateAutomation": {
        "interval": "30m",
        "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
        "git": {
            "checkout": {"ref": {"branch": "main"}},
            "commit": {"author": {"email": "fluxcdbot@acme.dev", "name": "fluxcdbot"}},
            "push": {"branch": "main"},
        },
        "update": {"path": "./apps", "strategy": "Setters"},
    },
    "Receiver": {
        "type": "github",
        "events": ["push"],
        "resources": [{"kind": "GitRepository", "name": "flux-system"}],
        "secretRef": {"name": "receiver-token"},
    },
    "Provider": {"type": "slack", "channel": "flux-alerts", "secretRef": {"name": "slack-url"}},
    "Alert": {
        "providerRef": {"name": "slack"},
        "eventSeverity": "error",
        "eventSources": [{"kind": "Kustomization", "name": "*"}],
    },
    "ExternalArtifact": {
        "sourceRef": {
            "apiVersion": "source.extensions.fluxcd.io/v1beta1",
            "kind": "ArtifactGenerator",
            "name": "apps",
        }
    },
    "ArtifactGenerator": {
        "sources": [{"alias": "fleet", "kind": "GitRepository", "name": "flux-system"}],
        "artifacts": [{"name": "apps", "copy": [{"from": "@fleet/apps/**", "to": "@artifact/"}]}],
    },
}


def condition(
    type_: str = "Ready",
    status: str = "True",
    reason: str = "Succeeded",
    message: str = "",
    at: str = T0,
    generation: int = 1,
) -> dict[str, Any]:
    """A `metav1.Condition`."""
    return {
        "type": type_,
        "status": status,
        "reason": reason,
        "message": message,
        "lastTransitionTime": at,
        "observedGeneration": generation,
    }


def flux_object(
    kind: str,
    name: str,
    namespace: str = "flux-system",
    *,
    spec: dict[str, Any] | None = None,
    status: dict[str, Any] | None = None,
    conditions: list[dict[str, Any]] | None = None,
    suspend: bool | None = None,
    generation: int = 1,
    labels: dict[str, str] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A valid Flux object of `kind`; `spec` entries override the kind's minimal spec."""
    body = copy.deepcopy(_SPEC[kind])
    for key, value in (spec or {}).items():
        if value is None:
            body.pop(key, None)  # None removes a default field, e.g. chart when using chartRef
        else:
            body[key] = value
    if suspend is not None:
        body["suspend"] = suspend
    obj_status = dict(status or {})
    if conditions is not None:
        obj_status["conditions"] = conditions
    if kind not in _NO_OBSERVED_GENERATION:
        obj_status.setdefault("observedGeneration", generation)
    metadata: dict[str, Any] = {"name": name, "namespace": namespace, "generation": generation}
    if labels:
        metadata["labels"] = labels
    if annotations:
        metadata["annotations"] = annotations
    obj: dict[str, Any] = {
        "apiVersion": _API[kind],
        "kind": kind,
        "metadata": metadata,
        "spec": body,
        "status": obj_status,
    }
    if kind in _NO_STATUS:
        del obj["status"]
    return checked(obj)


def checked(obj: dict[str, Any]) -> dict[str, Any]:
    """`obj`, after asserting it validates against the Flux CRDs."""
    problems = crds.validate(obj)
    assert not problems, f"invalid test fixture {obj['kind']}/{obj['metadata']['name']}: {problems}"
    return obj


def snapshot(
    version: int,
    chart_version: str,
    status: str = "deployed",
    name: str = "podinfo",
    namespace: str = "flux-apps",
) -> dict[str, Any]:
    """One HelmRelease `status.history` entry."""
    return {
        "version": version,
        "name": name,
        "namespace": namespace,
        "chartName": "podinfo",
        "chartVersion": chart_version,
        "appVersion": chart_version,
        "configDigest": f"sha256:{DIGEST}",
        "digest": f"sha256:{DIGEST}",
        "firstDeployed": "2026-11-01T08:00:00Z",
        "lastDeployed": T0,
        "status": status,
    }
