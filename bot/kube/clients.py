"""One Kubernetes API client per configured cluster, built from kubeconfig or in-cluster."""

from __future__ import annotations

import os
import threading
from typing import Any

import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.config.config_exception import ConfigException
from kubernetes.config.kube_config import (
    ENV_KUBECONFIG_PATH_SEPARATOR,
    KUBE_CONFIG_DEFAULT_LOCATION,
    KubeConfigLoader,
    KubeConfigMerger,
)

from bot.config import ClusterConfig, KubernetesSettings


class ClusterConfigError(Exception):
    """The cluster's kubeconfig or in-cluster credentials cannot be used; says why."""


def build_api_client(cluster: ClusterConfig, settings: KubernetesSettings) -> Any:
    """A `kubernetes.client.ApiClient` for `cluster`; ClusterConfigError when it cannot be built."""
    kubeconfig = cluster.kubeconfig or settings.kubeconfig
    configuration = _load_configuration(
        in_cluster=cluster.in_cluster,
        config_file=str(kubeconfig.expanduser()) if kubeconfig else None,
        context=cluster.context,
    )
    # One quick retry absorbs a stale pooled connection; more would only delay reporting a
    # cluster that is really down. A 429/503 is reported (with its Retry-After) rather than
    # slept through: a person is waiting for the answer.
    configuration.retries = urllib3.Retry(
        total=1, connect=1, read=0, status=0, redirect=0, respect_retry_after_header=False
    )
    return k8s.ApiClient(configuration)


def home_api_client() -> Any:
    """An API client for the cluster fluxbot runs in (in a pod), else the kubeconfig's
    current context; ClusterConfigError when it cannot be built."""
    configuration = _load_configuration(
        in_cluster=bool(os.environ.get("KUBERNETES_SERVICE_HOST")),
        # Read $KUBECONFIG now: the client captured it when it was imported.
        config_file=os.environ.get("KUBECONFIG") or None,
        context=None,
    )
    # The Lease and the history ConfigMaps are written in the background, where nobody waits:
    # the client's default retries stay.
    return k8s.ApiClient(configuration)


def _load_configuration(*, in_cluster: bool, config_file: str | None, context: str | None) -> Any:
    configuration = k8s.Configuration()
    if in_cluster:
        try:
            k8s_config.load_incluster_config(client_configuration=configuration)
        except ConfigException as err:
            raise ClusterConfigError(
                f"in_cluster is set but fluxbot is not running in a pod ({err})"
            ) from err
        _pin_proxy(configuration)
        return configuration
    _check_context(config_file, context)
    try:
        k8s_config.load_kube_config_from_dict(
            _kubeconfig(config_file).config,
            context=context,
            client_configuration=configuration,
            persist_config=False,
        )
    except (ConfigException, OSError, ValueError) as err:
        raise ClusterConfigError(f"kubeconfig {_describe_file(config_file)}: {err}") from err
    _pin_proxy(configuration)
    return configuration


def _pin_proxy(configuration: Any) -> None:
    # With a token, the kubeconfig's refresh hook assigns `host` before every request, and
    # the client (37) then re-reads the proxy from the whole process environment: about
    # 0.3 ms of CPU per request with 70 variables, more in a pod, where every Service adds
    # some. The re-read value is never used (the connection pool took its proxy when the
    # ApiClient was built, kubernetes/client/rest.py), so the proxy setter turns it off.
    configuration.proxy = configuration.proxy


# Parsed kubeconfig files by path list, with the size and modification time of each file they
# were read from. Every cluster's client is built from the same file: a 100-context file
# parsed twice per cluster made connecting a 100-cluster fleet cost ~20 s of CPU.
_KUBECONFIGS: dict[str, tuple[tuple[tuple[int, int], ...], Any]] = {}
_KUBECONFIGS_LOCK = threading.Lock()


def _kubeconfig(config_file: str | None) -> Any:
    """The kubeconfig (a `KubeConfigMerger`, as `load_kube_config` reads it), parsed once per
    version of its files; a changed file (a rotated Secret) is read again."""
    paths = config_file or KUBE_CONFIG_DEFAULT_LOCATION
    stamp = tuple(
        (st.st_mtime_ns, st.st_size)
        for path in paths.split(ENV_KUBECONFIG_PATH_SEPARATOR)
        if path and os.path.exists(expanded := os.path.expanduser(path))
        for st in (os.stat(expanded),)
    )
    # Held while parsing: a fleet's clusters connect at once, and one parse is enough (each
    # parse of a large file also holds megabytes of YAML nodes for a moment).
    with _KUBECONFIGS_LOCK:
        cached = _KUBECONFIGS.get(paths)
        if cached is not None and cached[0] == stamp:
            return cached[1]
        merged = KubeConfigMerger(paths)
        if merged.config is None:
            raise ConfigException("Invalid kube-config file. No configuration found.")
        _KUBECONFIGS[paths] = (stamp, merged)
        return merged


def _check_context(config_file: str | None, context: str | None) -> None:
    try:
        # As `list_kube_config_contexts` reads them, from the file parsed once.
        loader = KubeConfigLoader(config_dict=_kubeconfig(config_file).config)
        contexts, current = loader.list_contexts(), loader.current_context
    except (ConfigException, OSError, ValueError) as err:
        raise ClusterConfigError(f"kubeconfig {_describe_file(config_file)}: {err}") from err
    names = [c.get("name", "") for c in contexts or []]
    if context is not None and context not in names:
        available = ", ".join(sorted(names)) or "none"
        raise ClusterConfigError(
            f"kubeconfig context {context!r} does not exist in {_describe_file(config_file)} "
            f"(available: {available})"
        )
    if context is None and not current:
        raise ClusterConfigError(
            f"{_describe_file(config_file)} has no current-context; set `context` for this cluster"
        )


def _describe_file(config_file: str | None) -> str:
    return config_file or "the default kubeconfig ($KUBECONFIG or ~/.kube/config)"


class ClientPool:
    """Lazily built, reused API clients; a cluster whose client failed is retried next time."""

    def __init__(self, settings: KubernetesSettings) -> None:
        self._settings = settings
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def get(self, name: str, cluster: ClusterConfig) -> Any:
        """The API client for `cluster`, building it on first use."""
        with self._lock:
            existing = self._clients.get(name)
        if existing is not None:
            return existing
        built = build_api_client(cluster, self._settings)
        with self._lock:
            return self._clients.setdefault(name, built)

    def close(self) -> None:
        """Close every client's connection pool."""
        with self._lock:
            clients, self._clients = list(self._clients.values()), {}
        for api_client in clients:
            api_client.close()
