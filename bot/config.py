"""fluxbot's configuration file: pydantic models, loading, and errors that name the field.

Settings are grouped by topic. Every field says its unit, its default and why. Secrets (Slack
tokens, signing secrets) never live in this file: they come from environment variables.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Final, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from bot import safe_yaml
from bot.domain.fleet import ClusterTarget, EnvironmentLayout, FleetLayout
from bot.domain.policy import Action, ConfirmationMode, EnvironmentPolicy, Role
from bot.domain.posture import PosturePolicy, default_policy
from bot.domain.schedule import cron_trigger

_NAME_PATTERN: Final = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
_SECRET_WORDS: Final = ("token", "secret", "password", "signing")
# A configuration for hundreds of clusters is a few hundred KiB.
MAX_CONFIG_BYTES: Final = 4 * 1024 * 1024
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


class RoleConfig(_Strict):
    """Who holds a role: Slack users and members of Slack user groups."""

    users: list[Annotated[str, Field(pattern=r"^([UW][A-Z0-9]{2,}|\*)$")]] = []
    """Slack user IDs (`U…`; names change, IDs do not). `"*"` is every member of the
    workspace (for sandboxes; guests and deactivated users are still refused)."""

    groups: list[Annotated[str, Field(pattern=r"^(S[A-Z0-9]{2,}|@?[a-z0-9][a-z0-9._-]*)$")]] = []
    """Slack user groups, by ID (`S…`) or handle (`@sre`). Membership is read from Slack and
    refreshed every `actions.group_refresh_seconds`."""


class KubernetesAuthorization(_Strict):
    """Also ask Kubernetes whether the Slack user may act (Flux Operator web UI convention)."""

    mode: Literal["subject-access-review"] = "subject-access-review"
    """`subject-access-review`: before acting, fluxbot asks each cluster (SubjectAccessReview)
    whether the mapped user may use the custom verb (`reconcile`, `suspend`, `resume`,
    `rollback`) on each object the action writes, then acts with its own identity: the sources
    a with-source reconcile patches (`reconcile`, in their own namespaces), the parent
    Kustomization and its source a resume reconciles (`reconcile`), the OCIRepository a
    rollback pins (`rollback`). A snooze needs `reconcile` on its object."""

    user: str = "slack:{user_id}"
    """Kubernetes user name for a Slack user; `{user_id}` and `{user_name}` are replaced."""

    groups: list[str] = ["slack:{group}"]
    """Kubernetes groups for a Slack user; one per Slack user group handle for `{group}`."""


class EnvironmentActions(_Strict):
    """Who may act on this environment's Flux objects, and how carefully."""

    reconcile: list[str] = []
    """Roles that may reconcile (also with source, force, reset retries). Default: nobody."""

    suspend: list[str] = []
    """Roles that may suspend. Default: nobody."""

    resume: list[str] | None = None
    """Roles that may resume. Default: the roles that may suspend."""

    rollback: list[str] = []
    """Roles that may run an emergency HelmRelease rollback. Default: nobody."""

    confirmation: ConfirmationMode | None = None
    """none | dialog | typed (type the object's name). Default: typed in production,
    dialog elsewhere."""

    rollback_approval: bool | None = None
    """A second person holding a rollback role must approve each rollback. Default: true in
    production, false elsewhere."""

    kubernetes_authorization: KubernetesAuthorization | None = None
    """Check the Slack user against Kubernetes RBAC too. Default: off."""


class DigestConfig(_Strict):
    """When and how an environment's digest is posted to its channel."""

    enabled: bool = True
    """Post digests for this environment. Sandboxes have none unless a `digest:` is set."""

    schedule: str = "0 9 * * 1-5"
    """Cron expression (minute hour day-of-month month day-of-week). Default: 09:00 on
    weekdays."""

    timezone: str = "UTC"
    """IANA time zone the schedule is read in, e.g. `Europe/London`. Default UTC."""

    quiet_when_healthy: Literal["skip", "line"] = "line"
    """When nothing is failing, suspended or changed: `skip` posts nothing, `line` posts one
    line ("All 128 objects ready, no changes"). Applies to `fluxbot digest` too. Default
    `line`."""

    details_in_thread: bool = True
    """Post a top-level message that names the problems, with the details as a thread reply
    under it, so the channel stays scannable; false posts one message, the problems first.
    Default true."""

    grace_minutes: Annotated[int, Field(ge=0, le=24 * 60)] = 120
    """A digest missed while fluxbot was down is posted once when it comes back within this
    many minutes of its time; later than that it is skipped. Default 120."""

    @model_validator(mode="after")
    def _valid_schedule(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {self.timezone!r}") from err
        try:
            cron_trigger(self.schedule, self.timezone)
        except ValueError as err:
            raise ValueError(f"invalid cron expression {self.schedule!r}: {err}") from err
        return self


class ReportConfig(_Strict):
    """When an environment's weekly change-health report is posted to its channel."""

    enabled: bool = True
    """Post reports for this environment. Sandboxes have none unless a `report:` is set."""

    schedule: str = "0 9 * * 1"
    """Cron expression (minute hour day-of-month month day-of-week). Default: Mondays 09:00."""

    timezone: str = "UTC"
    """IANA time zone the schedule is read in. Default UTC."""

    window_days: Annotated[int, Field(ge=1, le=90)] = 7
    """Days the figures cover (the chart always shows four weeks). Default 7."""

    @model_validator(mode="after")
    def _valid_schedule(self) -> Self:
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {self.timezone!r}") from err
        try:
            cron_trigger(self.schedule, self.timezone)
        except ValueError as err:
            raise ValueError(f"invalid cron expression {self.schedule!r}: {err}") from err
        return self


class PostureConfig(_Strict):
    """What `audit` requires of the Flux objects' failure handling. Each unset field takes the
    default of the environment's tier: every check on for staging and production, none for
    development and sandboxes. Set under `posture.<tier>` for a tier, under
    `environments.<name>.posture` for one environment (which wins)."""

    helm_upgrade_retries: bool | None = None
    """HelmReleases retry a failed upgrade: `spec.upgrade.remediation.retries` above 0 (Flux's
    default is 0), or `spec.upgrade.strategy.name: RetryOnFailure`."""

    helm_rollback: bool | None = None
    """HelmReleases roll back a failed upgrade: remediation `strategy` rollback (the default)
    with `remediateLastFailure` in effect (it defaults to true only when `retries` > 0)."""

    helm_install_remediation: bool | None = None
    """HelmReleases remediate a failed install: `spec.install.remediation.retries` above 0 (or
    `remediateLastFailure: true`, or install strategy `RetryOnFailure`)."""

    kustomization_health: bool | None = None
    """Kustomizations that apply workloads (Deployments, StatefulSets, DaemonSets, Jobs,
    CronJobs, HelmReleases, Kustomizations, per their inventory) set `spec.wait: true` or
    `spec.healthChecks`."""

    kustomization_timeout: bool | None = None
    """Kustomizations that wait on health set `spec.timeout` (else `spec.interval` minus 30 s)."""

    max_suspended_hours: Annotated[int, Field(ge=0, le=24 * 365)] | None = None
    """Objects suspended (`spec.suspend: true`) for longer than this many hours are findings;
    0 turns the check off. Tier default: 72 for staging and production, off elsewhere."""


class IncidentsConfig(_Strict):
    """Live incidents: one message per root cause in the environment's channel, updated in
    place until resolved."""

    enabled: bool = True
    """Raise incidents for this environment. Default: on for production, staging and
    development; sandboxes have none unless an `incidents:` is set."""

    wait_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = 180
    """How long a root cause must keep failing before its incident is posted; 0 posts at
    once. Objects that recover within the wait are never announced, so a flap or a rollout in
    progress posts nothing. Default 180."""

    repeat_seconds: Annotated[int, Field(ge=60, le=30 * 86400)] = 14400
    """A still-open incident is re-announced in its thread (never as a new message) after
    this many seconds, and again every as long. Default 14400 (4 hours)."""

    reopen_seconds: Annotated[int, Field(ge=0, le=7 * 86400)] = 900
    """A root cause that fails again within this many seconds of its incident resolving
    reopens that incident (same message, flap count shown) instead of raising a new one.
    Default 900."""

    mention: Annotated[str, Field(pattern=r"^S[A-Z0-9]{2,}$")] | None = None
    """Slack user group ID (`S…`) mentioned when an incident is posted and re-announced,
    e.g. the on-call group. Default: none, in every tier (nobody is paged unless you say so)."""


class EnvironmentConfig(_Strict):
    """One environment: its Slack channel and the clusters that make it up."""

    channel: Annotated[str, Field(pattern=r"^[CGD][A-Z0-9]{2,}$")]
    """Slack channel ID (`C…`, not `#name`: names change, IDs do not)."""

    tier: Tier | None = None
    """sandbox | development | staging | production. Default: inferred from the environment's
    name when it starts with one of those words (`sandbox-a` is a sandbox)."""

    clusters: Annotated[list[ClusterConfig], Field(min_length=1)]
    """The clusters of this environment, reconciled by Flux."""

    aliases: list[Annotated[str, Field(pattern=_NAME_PATTERN)]] = []
    """Other names commands accept for this environment, e.g. `[prod]` for `production`
    (`/flux status prod`). Each must be unique across environment names and aliases."""

    actions: EnvironmentActions = EnvironmentActions()
    """Remediation rights in this environment. Default: nobody may act (deny by default)."""

    digest: DigestConfig | None = None
    """Scheduled digest. Default: weekdays at 09:00 UTC, except sandboxes (none)."""

    posture: PostureConfig | None = None
    """What `audit` requires here; unset fields come from `posture.<tier>`, then the tier's
    defaults."""

    report: ReportConfig | None = None
    """Weekly change-health report. Default: Mondays at 09:00 UTC, except sandboxes (none)."""
    incidents: IncidentsConfig | None = None
    """Live incidents. Default: on (wait 180 s, repeat 4 h, no mention) for production,
    staging and development; off for sandboxes."""

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

    max_parallel_lists: Annotated[int, Field(ge=1, le=1024)] = 16
    """How many list requests (one kind in one cluster) are read at once, across the fleet:
    by the watch cache, and by each status read without it; the others wait their turn (the
    responses are then parsed one at a time). Default 16: the cold sync of a 100-cluster fleet
    starts 100 listings at once (each cluster lists its kinds one after another), and holding
    every response in memory together would make it the process's memory peak (see
    docs/scaling.md)."""


class HistorySettings(_Strict):
    """Where transitions, actions and posted digests are remembered across restarts."""

    backend: Literal["sqlite", "configmap"] = "sqlite"
    """`sqlite`: a file, for one replica. `configmap`: ConfigMaps in fluxbot's namespace, so
    any replica that becomes leader carries on. Default sqlite."""

    path: Path = Path("~/.local/state/fluxbot/history.db")
    """SQLite file (sqlite backend). Default `~/.local/state/fluxbot/history.db`; the
    Kubernetes manifests mount a volume and point this at /var/lib/fluxbot/history.db."""

    namespace: str = "fluxbot"
    """Namespace of the ConfigMaps (configmap backend) and of the leader Lease."""

    retention_days: Annotated[int, Field(ge=1, le=90)] = 8
    """Days of history kept. Default 8: a digest looks back at most a week (a Monday digest
    after a long weekend), plus a day of margin."""

    leader_election: bool = False
    """Elect one leader among replicas (a Lease) to record and post. Default false: one
    replica."""

    lease_seconds: Annotated[float, Field(ge=1, le=300)] = 15.0
    """How long a leader's Lease lasts without renewal; it renews every third of it. A
    crashed leader is replaced after at most this long. Default 15."""


class HelmRemoteCluster(_Strict):
    """A HelmRelease `spec.kubeConfig.secretRef` and the configured cluster it points at."""

    cluster: Annotated[str, Field(min_length=1)]
    """The configured cluster the HelmRelease lives in (its name as shown in Slack)."""

    namespace: Annotated[str, Field(pattern=_NAME_PATTERN, max_length=63)]
    """Namespace of the HelmRelease; helm-controller reads the Secret from this namespace."""

    secret: Annotated[str, Field(min_length=1, max_length=253)]
    """Name of the kubeConfig Secret (`spec.kubeConfig.secretRef.name`)."""

    key: str = ""
    """The Secret's key (`spec.kubeConfig.secretRef.key`) as the HelmRelease spells it.
    Default: empty, matching HelmReleases that set no key (helm-controller then reads
    `value`, else `value.yaml`)."""

    runs_on: Annotated[str, Field(min_length=1)]
    """The configured cluster that Secret's kubeconfig reaches: `helm` runs with that cluster's
    kubeconfig and context, where the release and its storage live."""


class ActionSettings(_Strict):
    """How remediation actions run."""

    rollback: Literal["flux", "helm"] = "flux"
    """How an emergency rollback is done. `flux` (default): in the cluster, the Flux way: the
    HelmRelease is kept from its parent Kustomization and pinned to the previous chart version,
    and helm-controller performs a tracked upgrade (no Helm client, no access to Helm's
    release Secrets). `helm`: `helm rollback` with the client at `helm_path`, which also
    restores the previous values but is refused where it cannot be done right (see the
    README)."""

    helm_path: Path | None = None
    """Helm 4 client used when `rollback: helm`. Default: none. The container image ships one
    at /usr/local/bin/helm."""

    helm_timeout_seconds: Annotated[int, Field(ge=10, le=3600)] = 300
    """How long `helm rollback --wait` may take when the HelmRelease sets no
    `spec.rollback.timeout` or `spec.timeout`. Default 300."""

    helm_remote_clusters: list[HelmRemoteCluster] = []
    """For `rollback: helm`: which configured cluster each HelmRelease `spec.kubeConfig`
    Secret reaches. A HelmRelease with `spec.kubeConfig` keeps its release in that remote
    cluster, so `helm rollback` must run there; one whose reference is not listed here (or
    that uses `spec.kubeConfig.configMapRef`) is refused. Default: none."""

    follow_timeout_seconds: Annotated[float, Field(gt=0, le=6 * 3600)] = 3600.0
    """The longest fluxbot follows an action before reporting "still progressing" (never a
    success). It follows for the object's own `spec.timeout` (a Kustomization's interval, a
    HelmRelease's 5 minutes or a source's 60 seconds when unset; a with-source chain's
    timeouts added up), at most this long. Default 3600."""

    events_address: Annotated[str, Field(pattern=r"^https?://[^\s]+$")] | None = None
    """Also POST each action's audit event to this notification-controller events address
    (as Flux's controllers do with `--events-addr`), so Flux Alerts can forward it:
    e.g. `http://notification-controller.flux-system.svc.cluster.local./`. Kubernetes Events
    alone never reach Alerts (notification-controller does not watch them). Flux's default
    NetworkPolicy admits only flux-system pods: see deploy/README.md. Default: none."""

    button_ttl_seconds: Annotated[int, Field(ge=60, le=7 * 86400)] = 86400
    """How long a button stays valid after the message was rendered. Default one day."""

    approval_ttl_seconds: Annotated[int, Field(ge=60, le=86400)] = 900
    """How long a rollback approval request stays open. Default 15 minutes."""

    group_refresh_seconds: Annotated[int, Field(ge=10, le=86400)] = 300
    """How long Slack user group membership is cached. Default 5 minutes."""

    group_max_stale_seconds: Annotated[int, Field(ge=10, le=86400)] = 900
    """While Slack cannot be asked (usergroups.list fails), membership older than this is
    dropped, and with it every role granted through a user group, until Slack answers again.
    At least `group_refresh_seconds`. Default 15 minutes."""


class SlackSettings(_Strict):
    """How fluxbot appears in Slack (tokens come from files named by `*_FILE` variables, or from
    the environment, never from here)."""

    command: Annotated[str, Field(pattern=r"^/[a-z0-9_-]{1,31}$")] = "/flux"
    """The slash command, as created in the Slack app. Default `/flux`."""

    listener_threads: Annotated[int, Field(ge=1, le=256)] = 16
    """Threads that work after Slack has been acknowledged, for each kind of request
    (commands, button clicks and forms, events). Default 16: answers come from memory, so a
    few threads keep up with bursts of commands."""

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

    roles: dict[str, RoleConfig] = {}
    """Roles by name, granted actions per environment under `environments.*.actions`."""

    actions: ActionSettings = ActionSettings()
    """How remediation actions run."""

    history: HistorySettings = HistorySettings()
    """Where digest history is kept."""

    posture: dict[Tier, PostureConfig] = {}
    """What `audit` requires per tier (`posture.production.helm_rollback: true`); each
    environment may override under `environments.<name>.posture`."""

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
            for action, granted in env.actions.model_dump(
                include={"reconcile", "suspend", "resume", "rollback"}
            ).items():
                for role in granted or []:
                    if role not in self.roles:
                        known = ", ".join(sorted(self.roles)) or "none defined"
                        raise ValueError(
                            f"environments.{env_name}.actions.{action}: unknown role {role!r} "
                            f"(roles: {known})"
                        )
            for alias in env.aliases:
                owner = next(
                    (n for n, e in self.environments.items() if alias == n or alias in e.aliases),
                    env_name,
                )
                if owner != env_name or alias == env_name:
                    raise ValueError(
                        f"environments.{env_name}.aliases: {alias!r} already names "
                        f"{'this environment' if owner == env_name else repr(owner)}"
                    )
            for cluster in env.clusters:
                other = clusters.setdefault(cluster.display_name, env_name)
                if other != env_name:
                    raise ValueError(
                        f"cluster {cluster.display_name!r} is in both {other!r} and "
                        f"{env_name!r}; cluster names must be unique across the fleet"
                    )
        for i, remote in enumerate(self.actions.helm_remote_clusters):
            for field in ("cluster", "runs_on"):
                name = getattr(remote, field)
                if name not in clusters:
                    raise ValueError(
                        f"actions.helm_remote_clusters.{i}.{field}: unknown cluster {name!r} "
                        f"(clusters: {', '.join(sorted(clusters))})"
                    )
        return self

    def tier_of(self, environment: str) -> Tier:
        """The environment's tier, explicit or inferred from its name."""
        env = self.environments[environment]
        tier = env.tier or infer_tier(environment)
        assert tier is not None  # guaranteed by validation
        return tier

    def policy(self, environment: str) -> EnvironmentPolicy:
        """The remediation policy of an environment, with tier defaults filled in."""
        actions = self.environments[environment].actions
        production = self.tier_of(environment) is Tier.PRODUCTION
        confirmation = actions.confirmation or (
            ConfirmationMode.TYPED if production else ConfirmationMode.DIALOG
        )
        resume = actions.resume if actions.resume is not None else actions.suspend
        return EnvironmentPolicy(
            environment=environment,
            grants={
                Action.RECONCILE: frozenset(actions.reconcile),
                Action.SUSPEND: frozenset(actions.suspend),
                Action.RESUME: frozenset(resume),
                Action.ROLLBACK: frozenset(actions.rollback),
            },
            confirmation=confirmation,
            rollback_approval=(
                actions.rollback_approval if actions.rollback_approval is not None else production
            ),
        )

    def digest(self, environment: str) -> DigestConfig | None:
        """The environment's effective digest settings, None when it gets no digest."""
        configured = self.environments[environment].digest
        if configured is None:
            return None if self.tier_of(environment) is Tier.SANDBOX else DigestConfig()
        return configured if configured.enabled else None

    def report(self, environment: str) -> ReportConfig | None:
        """The environment's effective report settings, None when it gets no report."""
        configured = self.environments[environment].report
        if configured is None:
            return None if self.tier_of(environment) is Tier.SANDBOX else ReportConfig()
        return configured if configured.enabled else None

    def posture_policy(self, environment: str) -> PosturePolicy:
        """The environment's audit policy: its own settings, then its tier's, then defaults."""
        tier = self.tier_of(environment)
        policy = default_policy(tier.value)
        for layer in (self.posture.get(tier), self.environments[environment].posture):
            if layer is None:
                continue
            changes = {
                k: v
                for k, v in layer.model_dump(exclude={"max_suspended_hours"}).items()
                if v is not None
            }
            if layer.max_suspended_hours is not None:
                hours = layer.max_suspended_hours
                changes["max_suspended"] = dt.timedelta(hours=hours) if hours else None
            policy = replace(policy, **changes)
        return policy

    def incidents(self, environment: str) -> IncidentsConfig | None:
        """The environment's effective incident settings, None when it raises none."""
        configured = self.environments[environment].incidents
        if configured is None:
            return None if self.tier_of(environment) is Tier.SANDBOX else IncidentsConfig()
        return configured if configured.enabled else None

    def role_map(self) -> dict[str, Role]:
        """Every role with its members; group handles lose their leading '@'."""
        return {
            name: Role(
                name=name,
                users=frozenset(role.users),
                groups=frozenset(g.removeprefix("@") for g in role.groups),
            )
            for name, role in self.roles.items()
        }

    def layout(self) -> FleetLayout:
        """The fleet as the command layer sees it: environments, channels, cluster names."""
        return FleetLayout(
            tuple(
                EnvironmentLayout(
                    name=name,
                    tier=self.tier_of(name).value,
                    channel=env.channel,
                    clusters=tuple(c.display_name for c in env.clusters),
                    aliases=tuple(env.aliases),
                    posture=self.posture_policy(name),
                )
                for name, env in self.environments.items()
            )
        )

    def cluster(self, target: ClusterTarget) -> ClusterConfig:
        """The configuration of one cluster."""
        env = self.environments[target.environment]
        return next(c for c in env.clusters if c.display_name == target.cluster)

    def helm_remote_cluster(
        self, cluster: str, namespace: str, secret: str, key: str
    ) -> ClusterConfig | None:
        """The configured cluster a HelmRelease's `spec.kubeConfig.secretRef` reaches, if mapped
        in `actions.helm_remote_clusters`."""
        for remote in self.actions.helm_remote_clusters:
            if (remote.cluster, remote.namespace, remote.secret, remote.key) == (
                cluster,
                namespace,
                secret,
                key,
            ):
                return next(
                    c
                    for env in self.environments.values()
                    for c in env.clusters
                    if c.display_name == remote.runs_on
                )
        return None


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
        size = path.stat().st_size
        if size > MAX_CONFIG_BYTES:
            raise ConfigError(str(path), [f"{size} bytes is more than a configuration should be"])
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(str(path), [f"cannot read the file: {err.strerror or err}"]) from err
    except UnicodeDecodeError as err:
        raise ConfigError(str(path), [f"not a text file ({err.reason})"]) from err
    return parse_config(text, source=str(path))


def parse_config(text: str, source: str = "<config>") -> FluxbotConfig:
    """Validate configuration YAML; ConfigError lists every problem with its field path."""
    try:
        data = safe_yaml.load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        reason = " ".join(str(getattr(err, "problem", None) or err).split())
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
                    f"{path}: secrets do not belong in the config file; mount them as files "
                    "named by SLACK_BOT_TOKEN_FILE, SLACK_APP_TOKEN_FILE, "
                    "SLACK_SIGNING_SECRET_FILE (or set those variables without _FILE)"
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
