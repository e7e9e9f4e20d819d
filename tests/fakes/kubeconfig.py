"""Kubeconfig files that point the official Kubernetes client at fake API servers.

Each context gets its own cluster and user entry of the same name, with a bearer token and a
plain-http server URL (or an https one with its CA), which is what
`kubernetes.config.new_client_from_config` needs.
"""

from __future__ import annotations

import base64
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml


def kubeconfig_dict(
    clusters: Mapping[str, tuple[str, str]],
    current_context: str | None = None,
    namespaces: Mapping[str, str] | None = None,
    certificate_authorities: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """A kubeconfig as a dict: one cluster, user and context per `name -> (url, token)`;
    `certificate_authorities` gives the PEM CA an https cluster's certificate is checked with."""
    if not clusters:
        raise ValueError("a kubeconfig needs at least one cluster")
    if current_context is not None and current_context not in clusters:
        raise ValueError(f"current context {current_context!r} is not one of {sorted(clusters)}")
    namespaces = namespaces or {}
    contexts = []
    for name in clusters:
        context: dict[str, str] = {"cluster": name, "user": name}
        if name in namespaces:
            context["namespace"] = namespaces[name]
        contexts.append({"name": name, "context": context})
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "preferences": {},
        "clusters": [
            {"name": name, "cluster": _cluster(url, (certificate_authorities or {}).get(name))}
            for name, (url, _token) in clusters.items()
        ],
        "users": [
            {"name": name, "user": {"token": token}} for name, (_url, token) in clusters.items()
        ],
        "contexts": contexts,
        "current-context": current_context or next(iter(clusters)),
    }


def _cluster(url: str, ca_pem: bytes | None) -> dict[str, str]:
    cluster = {"server": url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    return cluster


def write_kubeconfig(
    path: str | Path,
    clusters: Mapping[str, tuple[str, str]],
    current_context: str | None = None,
    namespaces: Mapping[str, str] | None = None,
    certificate_authorities: Mapping[str, bytes] | None = None,
) -> Path:
    """Write a kubeconfig with one context per `name -> (server_url, token)`; returns the path.

    The current context defaults to the first one given.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    config = kubeconfig_dict(clusters, current_context, namespaces, certificate_authorities)
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def closed_port_url() -> str:
    """An http URL on 127.0.0.1 where nothing listens, so connecting is refused at once."""
    # Binding port 0 and closing hands back a port the kernel just considered free; another
    # process could take it, but on a test machine that is vanishingly rare.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def write_unreachable_kubeconfig(
    path: str | Path,
    context: str = "unreachable",
    token: str = "unreachable-token",
    extra_clusters: Mapping[str, tuple[str, str]] | None = None,
    current_context: str | None = None,
) -> Path:
    """Write a kubeconfig whose `context` points at a closed port (plus any `extra_clusters`)."""
    clusters = {context: (closed_port_url(), token), **(extra_clusters or {})}
    return write_kubeconfig(path, clusters, current_context or context)
