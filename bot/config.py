"""fluxbot's configuration file: pydantic models, loading, and errors that name the field.

Settings are grouped by topic. Every field says its unit, its default and why. Secrets (Slack
tokens, signing secrets) never live in this file: they come from environment variables.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot.domain.fleet import ClusterTarget, EnvironmentLayout, FleetLayout

_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SECRET_WORDS: Final = ("token", "secret", "password", "signing")
_PATTERN_HINTS: Final = {
    "channel": "must be a Slack channel ID such as C0123ABCDEF (not a #name)",
    "name": "must be lower-case letters, digits and dashes, starting and ending alphanumeric",
}


class Tier(StrEnum):
    """What kind of environment this is; later features take their defaults from it."""

    SANDBOX = "sandbox"
    DEVELOPMENT = "development"
    STAGING = "staging"
    PRODUCTION = "production"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ClusterConfig(_Strict):
    """How to reach one cluster: a kubeconfig context, a kubeconfig file, or in-cluster."""

    name: Annotated[str, Field(pattern=_NAME_PATTERN, max_length=63)] | None = None
    """Name shown in Slack and used with `--cluster`. Default: the context name, or `in-cluster`."""

    context: Annotated[str, Field(min_length=1)] | None = None
    """kubeconfig context to use. Default: the file's current-context when `kubeconfig` is set."""

    kubeconfig: Path | None = None
    """kubeconfig file for this cluster. Default: `kubernetes.kubeconfig`, then $KUBECONFIG,
    then ~/.kube/config."""

    in_cluster: bool = False
    """Use the pod's ServiceAccount (fluxbot runs inside this cluster). Default: false."""

    @model_validator(mode="after")
    def _one_way_in(self) -> Self:
        if self.in_cluster and (self.context or self.kubeconfig):
            raise ValueError("in_cluster: true cannot be combined with context or kubeconfig")
        if not (self.in_cluster or self.context or self.kubeconfig):
            raise ValueError("set one of: context, kubeconfig, or in_cluster: true")
        return self

    @property
    def display_name(self) -> str:
        """The name users see and type."""
        if self.name:
            return self.name
        if self.context:
            return self.context
        if self.kubeconfig:
            return self.kubeconfig.stem
        return "in-cluster"


class EnvironmentConfig(_Strict):
    """One environment: its Slack channel and the clusters that make it up."""

    channel: Annotated[str, Field(pattern=r"^[CGD][A-Z0-9]{2,}$")]
    """Slack channel ID (`C…`, not `#name`: names change, IDs do not)."""

    tier: Tier | None = None
    """sandbox | development | staging | production. Default: inferred from the environment's
    name when it starts with one of those words (`sandbox-a` is a sandbox)."""

    clusters: Annotated[list[ClusterConfig], Field(min_length=1)]
    """The clusters of this environment, reconciled by Flux."""

    @model_validator(mode="after")
    def _unique_cluster_names(self) -> Self:
        seen: set[str] = set()
        for cluster in self.clusters:
            if cluster.display_name in seen:
                raise ValueError(
                    f"cluster name {cluster.display_name!r} is used twice; give each a `name`"
                )
            seen.add(cluster.display_name)
        return self


class KubernetesSettings(_Strict):
    """How fluxbot talks to the Kubernetes API servers."""

    kubeconfig: Path | None = None
    """Default kubeconfig file for clusters given by context. Default: $KUBECONFIG, then
    ~/.kube/config, as kubectl does."""

    connect_timeout_seconds: Annotated[float, Field(gt=0, le=60)] = 3.0
    """Seconds to wait for a TCP/TLS connection. Default 3: a cluster that cannot connect in
    3 s is reported unreachable rather than holding up the answer for the others."""

    request_timeout_seconds: Annotated[float, Field(gt=0, le=300)] = 10.0
    """Seconds to wait for one API response. Default 10: listing a few thousand Flux objects
    takes well under a second on a healthy API server."""

    max_parallel_clusters: Annotated[int, Field(ge=1, le=256)] = 16
    """Clusters read at the same time. Default 16: enough for most fleets in one round."""


class CacheSettings(_Strict):
    """How the watch cache keeps every cluster's Flux status current."""

    watch_timeout_seconds: Annotated[int, Field(ge=5, le=3600)] = 300
    """Seconds each watch request stays open before it is renewed from the last
    resourceVersion. Default 300: well below API servers' own limit (30-60 min), so a silently
    broken connection is noticed within minutes."""

    resync_seconds: Annotated[float, Field(ge=0)] = 600.0
    """Seconds between full relists of each kind, catching anything a watch missed; 0 turns
    it off. Default 600: one list per kind per cluster every ten minutes is cheap."""

    backoff_initial_seconds: Annotated[float, Field(gt=0, le=60)] = 0.5
    """First wait after a failed list or watch; doubled on each further failure, with
    jitter. Default 0.5 s."""

    backoff_max_seconds: Annotated[float, Field(gt=0, le=600)] = 30.0
    """Longest wait between attempts at a cluster that stays down. Default 30 s: a cluster
    that comes back is live again within half a minute."""


class SlackSettings(_Strict):
    """How fluxbot appears in Slack (tokens come from the environment, not from here)."""

    command: Annotated[str, Field(pattern=r"^/[a-z0-9_-]{1,31}$")] = "/flux"
    """The slash command, as created in the Slack app. Default `/flux`."""

    listener_threads: Annotated[int, Field(ge=1, le=256)] = 16
    """Threads that answer commands after Slack has been acknowledged. Default 16: answers
    come from memory, so a few threads keep up with bursts of commands."""

    api_retries: Annotated[int, Field(ge=0, le=10)] = 2
    """Retries of a Web API or response_url call after a 429 (honouring Retry-After) or a
    connection error. Default 2: enough for a burst, bounded so an answer is never stuck."""


class FluxbotConfig(_Strict):
    """The whole configuration file."""

    environments: Annotated[dict[str, EnvironmentConfig], Field(min_length=1)]
    """Environments by name (lower-case letters, digits and dashes)."""

    kubernetes: KubernetesSettings = KubernetesSettings()
    """Kubernetes API access settings."""

    cache: CacheSettings = CacheSettings()
    """Watch cache settings."""

    slack: SlackSettings = SlackSettings()
    """Slack settings."""

    @model_validator(mode="after")
    def _check_names(self) -> Self:
        clusters: dict[str, str] = {}
        for env_name, env in self.environments.items():
            if not re.match(_NAME_PATTERN, env_name):
                raise ValueError(
                    f"environment name {env_name!r} must be lower-case letters, digits and dashes"
                )
            if env.tier is None and infer_tier(env_name) is None:
                raise ValueError(
                    f"environments.{env_name}.tier: cannot be inferred from the name; set it to "
                    f"one of {', '.join(t.value for t in Tier)}"
                )
            for cluster in env.clusters:
                other = clusters.setdefault(cluster.display_name, env_name)
                if other != env_name:
                    raise ValueError(
                        f"cluster {cluster.display_name!r} is in both {other!r} and "
                        f"{env_name!r}; cluster names must be unique across the fleet"
                    )
        return self

    def tier_of(self, environment: str) -> Tier:
        """The environment's tier, explicit or inferred from its name."""
        env = self.environments[environment]
        tier = env.tier or infer_tier(environment)
        assert tier is not None  # guaranteed by validation
        return tier

    def layout(self) -> FleetLayout:
        """The fleet as the command layer sees it: environments, channels, cluster names."""
        return FleetLayout(
            tuple(
                EnvironmentLayout(
                    name=name,
                    tier=self.tier_of(name).value,
                    channel=env.channel,
                    clusters=tuple(c.display_name for c in env.clusters),
                )
                for name, env in self.environments.items()
            )
        )

    def cluster(self, target: ClusterTarget) -> ClusterConfig:
        """The configuration of one cluster."""
        env = self.environments[target.environment]
        return next(c for c in env.clusters if c.display_name == target.cluster)


def infer_tier(environment: str) -> Tier | None:
    """The tier an environment's name announces (`staging-eu` → staging), if any."""
    for tier in Tier:
        if environment == tier.value or environment.startswith(tier.value + "-"):
            return tier
    aliases = {"dev": Tier.DEVELOPMENT, "prod": Tier.PRODUCTION, "stage": Tier.STAGING}
    head = environment.split("-", 1)[0]
    return aliases.get(head)


class ConfigError(Exception):
    """The configuration cannot be used; `problems` has one line per problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = list(problems)


def load_config(path: Path) -> FluxbotConfig:
    """Read and validate a configuration file; ConfigError lists every problem found."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read the file: {err.strerror or err}"]) from err
    return parse_config(text, source=str(path))


def parse_config(text: str, source: str = "<config>") -> FluxbotConfig:
    """Validate configuration YAML; ConfigError lists every problem with its field path."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = getattr(err, "problem", None) or str(err)
        raise ConfigError(source, [f"{where}not valid YAML: {reason}"]) from err
    if not isinstance(data, dict):
        raise ConfigError(source, ["the file must be a YAML mapping with `environments:`"])
    try:
        return FluxbotConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(source, list(_describe(err))) from err


def _describe(err: ValidationError) -> Iterator[str]:
    for problem in err.errors():
        path = field_path(problem["loc"])
        if problem["type"] == "extra_forbidden":
            key = str(problem["loc"][-1]).lower()
            if any(word in key for word in _SECRET_WORDS):
                yield (
                    f"{path}: secrets do not belong in the config file; set them as "
                    "environment variables (SLACK_BOT_TOKEN, SLACK_APP_TOKEN, "
                    "SLACK_SIGNING_SECRET)"
                )
            else:
                yield f"{path}: unknown field"
            continue
        message = problem["msg"].removeprefix("Value error, ")
        if problem["type"] == "string_pattern_mismatch":
            hint = _PATTERN_HINTS.get(str(problem["loc"][-1]))
            message = f"{hint} (got {problem['input']!r})" if hint else message
        if message.startswith("environments.") and ":" in message:
            yield message  # already carries a more precise path than pydantic's
        else:
            yield f"{path}: {message}" if path else message


def field_path(loc: Sequence[Any]) -> str:
    """Render a pydantic error location as `environments.production.clusters[0].context`."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out
