"""fluxbot's Prometheus metrics, in a registry of their own.

`Metrics` owns a `CollectorRegistry` (never prometheus_client's global one, so a test can make
a fresh `Metrics()` and see only what it recorded) and one small typed method per thing worth
counting. The process uses the module-level `METRICS`; the functions below record on it, so
an adapter writes `metrics.record_command("status", "ok", 0.012)` without passing it around.

Label values must come from small, fixed sets (command names, action names, result words,
configured environments and clusters, Slack API method names and error codes): never user
input or object names, which would make a time series per value.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from bot.domain.fleet import CacheState, ClusterTarget, Freshness

# The media type of `Metrics.exposition()`, for the HTTP Content-Type header.
CONTENT_TYPE: Final = CONTENT_TYPE_LATEST

# A chat answer from the cache takes milliseconds; one that reads clusters, up to seconds.
COMMAND_BUCKETS: Final = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
# Slack wants the ack within 3 s; anything near that is an incident.
ACK_BUCKETS: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0)
# An action (reconcile, suspend, rollback) is followed until the controller is done: minutes.
ACTION_BUCKETS: Final = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

FreshnessSource = Callable[[], Mapping[ClusterTarget, Freshness]]


class Metrics:
    """Every fluxbot metric, registered in one registry (`registry`)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        reg = self.registry
        self.commands = Counter(
            "fluxbot_commands_total",
            "Chat commands answered, by command (status, get, tree, action, digest, incidents, "
            "envs, help, rollout, audit, report) and result (ok; rejected: a usage error or a "
            "refusal was answered; error: the answer could not be sent).",
            ["command", "result"],
            registry=reg,
        )
        self.command_latency = Histogram(
            "fluxbot_command_latency_seconds",
            "Time from receiving a chat command to its answer being sent, by command.",
            ["command"],
            buckets=COMMAND_BUCKETS,
            registry=reg,
        )
        self.ack_latency = Histogram(
            "fluxbot_ack_latency_seconds",
            "Time from Slack's request reaching fluxbot to its acknowledgement "
            "(Slack's deadline is 3 s).",
            buckets=ACK_BUCKETS,
            registry=reg,
        )
        self.actions = Counter(
            "fluxbot_actions_total",
            "Remediation actions run, by action (reconcile, suspend, resume, rollback) and "
            "result (ok, failed; progressing: written, the controller not yet done when "
            "following ended).",
            ["action", "result"],
            registry=reg,
        )
        self.action_duration = Histogram(
            "fluxbot_action_duration_seconds",
            "Time from an action being confirmed to its outcome being known, by action.",
            ["action"],
            buckets=ACTION_BUCKETS,
            registry=reg,
        )
        self.digest_posts = Counter(
            "fluxbot_digest_posts_total",
            "Scheduled digest runs, by environment and result (posted; skipped: all was well "
            "and quiet_when_healthy is skip; failed: composing or posting it failed).",
            ["environment", "result"],
            registry=reg,
        )
        self.slack_api_errors = Counter(
            "fluxbot_slack_api_errors_total",
            "Slack Web API calls that failed, by API method and Slack error code "
            "(e.g. not_in_channel, invalid_auth, ratelimited, http_500).",
            ["method", "error"],
            registry=reg,
        )
        self.slack_ratelimited = Counter(
            "fluxbot_slack_ratelimited_total",
            "Slack Web API calls answered 429 Too Many Requests, by API method.",
            ["method"],
            registry=reg,
        )
        self.cluster_cache_state = Gauge(
            "fluxbot_cluster_cache_state",
            "1 for the watch cache state each cluster is in (syncing, live, stale), 0 for "
            "the others.",
            ["environment", "cluster", "state"],
            registry=reg,
        )
        self.cluster_errors = Counter(
            "fluxbot_cluster_errors_total",
            "Failed reads of a cluster, by problem kind (unreachable, timeout, unauthorized, "
            "forbidden, flux-missing, api-error, config).",
            ["environment", "cluster", "kind"],
            registry=reg,
        )
        self._freshness: FreshnessSource | None = None
        self._lock = threading.Lock()

    # -- recording --

    def record_command(self, command: str, result: str, seconds: float) -> None:
        """One chat command answered: count it and observe how long the answer took."""
        self.commands.labels(command=command, result=result).inc()
        self.command_latency.labels(command=command).observe(max(0.0, seconds))

    def record_ack(self, seconds: float) -> None:
        """One Slack request acknowledged `seconds` after it arrived."""
        self.ack_latency.observe(max(0.0, seconds))

    def record_action(self, action: str, result: str, seconds: float) -> None:
        """One remediation action finished with `result` after `seconds`."""
        self.actions.labels(action=action, result=result).inc()
        self.action_duration.labels(action=action).observe(max(0.0, seconds))

    def record_digest_post(self, environment: str, result: str) -> None:
        """One digest posted (or not) to `environment`'s channel."""
        self.digest_posts.labels(environment=environment, result=result).inc()

    def record_slack_api_error(self, method: str, error: str) -> None:
        """One failed Slack Web API call, e.g. (`chat.postMessage`, `not_in_channel`)."""
        self.slack_api_errors.labels(method=method, error=error).inc()

    def record_slack_ratelimited(self, method: str) -> None:
        """One Slack Web API call answered 429."""
        self.slack_ratelimited.labels(method=method).inc()

    def record_cluster_error(self, environment: str, cluster: str, kind: str) -> None:
        """One failed read of a cluster; `kind` is a `ProblemKind` value."""
        self.cluster_errors.labels(environment=environment, cluster=cluster, kind=kind).inc()

    def set_cluster_state(self, environment: str, cluster: str, state: CacheState | str) -> None:
        """Mark `state` as the cluster's current cache state (1), and the others 0."""
        current = CacheState(state)
        for each in CacheState:
            self.cluster_cache_state.labels(
                environment=environment, cluster=cluster, state=each.value
            ).set(1.0 if each is current else 0.0)

    def observe_freshness(self, freshness: Mapping[ClusterTarget, Freshness]) -> None:
        """Set every cluster's cache state gauge from a freshness report."""
        for target, fresh in freshness.items():
            self.set_cluster_state(target.environment, target.cluster, fresh.state)

    def track_freshness(self, source: FreshnessSource | None) -> None:
        """Refresh the cache state gauges from `source` (e.g. `FleetCache.freshness`) before
        every scrape, so they are never older than the scrape itself. None stops tracking."""
        with self._lock:
            self._freshness = source

    # -- exposition --

    def exposition(self) -> bytes:
        """The Prometheus text format of every metric, for `/metrics`."""
        with self._lock:
            source = self._freshness
        if source is not None:
            self.observe_freshness(source())
        return generate_latest(self.registry)


# The process's metrics: what `/metrics` serves and what the functions below record on.
METRICS: Final = Metrics()


def record_command(command: str, result: str, seconds: float) -> None:
    """One chat command answered (see `Metrics.record_command`)."""
    METRICS.record_command(command, result, seconds)


def record_ack(seconds: float) -> None:
    """One Slack request acknowledged (see `Metrics.record_ack`)."""
    METRICS.record_ack(seconds)


def record_action(action: str, result: str, seconds: float) -> None:
    """One remediation action finished (see `Metrics.record_action`)."""
    METRICS.record_action(action, result, seconds)


def record_digest_post(environment: str, result: str) -> None:
    """One digest posted (see `Metrics.record_digest_post`)."""
    METRICS.record_digest_post(environment, result)


def record_slack_api_error(method: str, error: str) -> None:
    """One failed Slack Web API call (see `Metrics.record_slack_api_error`)."""
    METRICS.record_slack_api_error(method, error)


def record_slack_ratelimited(method: str) -> None:
    """One Slack Web API call answered 429 (see `Metrics.record_slack_ratelimited`)."""
    METRICS.record_slack_ratelimited(method)


def record_cluster_error(environment: str, cluster: str, kind: str) -> None:
    """One failed read of a cluster (see `Metrics.record_cluster_error`)."""
    METRICS.record_cluster_error(environment, cluster, kind)


def set_cluster_state(environment: str, cluster: str, state: CacheState | str) -> None:
    """A cluster's cache state (see `Metrics.set_cluster_state`)."""
    METRICS.set_cluster_state(environment, cluster, state)
