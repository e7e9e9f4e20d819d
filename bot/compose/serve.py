"""`fluxbot serve`: the Slack app over a fleet, with what that fleet allows.

A configured fleet gets the watch cache, history, remediation, digests, reports and incidents;
the live demo gets remediation against its simulated Flux; YAML dumps answer questions only.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from bot.actions.flow import ActionFlow
from bot.actions.follow import Follower
from bot.actions.runner import ActionRunner
from bot.actions.service import ActionService, ClusterWriter, ObjectSource, Rollbacks
from bot.commands.executor import CommandRunner
from bot.compose import SetupError
from bot.compose.fleet import SYNC_WAIT_SECONDS, Fleet, FleetSource, open_fleet
from bot.compose.runtime import Runtime, start_incidents, start_runtime
from bot.config import FluxbotConfig, SlackSettings
from bot.demo.live import LiveDemo, demo_config
from bot.digests.composer import DigestComposer
from bot.digests.scheduler import DigestScheduler
from bot.domain.history import HistoryStore
from bot.history.sqlite import SqliteHistory
from bot.kube.cache import FleetCache
from bot.kube.helm import HelmRunner, usable_helm
from bot.kube.writer import KubeWriter
from bot.observability.health import HealthServer, ProbedReadiness, all_of, cache_readiness
from bot.observability.logging import redact_values
from bot.observability.metrics import METRICS
from bot.reports.scheduler import ReportScheduler
from bot.slack.app import SlackBot, make_client
from bot.slack.buttons import ButtonMint
from bot.slack.credentials import MissingCredentials, SlackCredentials
from bot.slack.digest_post import SlackDigestPoster
from bot.slack.directory import SlackDirectory
from bot.slack.incidents import SlackIncidentPublisher
from bot.slack.interactions import SlackRemediation
from bot.slack.labels import DEMO_LABEL, label_messages
from bot.slack.report_post import SlackReportPoster
from bot.slack.server import Probe
from bot.slack.startup import SlackClient, SlackRefused, run_app

SECRET_VARIABLES: Final = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "FLUXBOT_BUTTON_KEY",
)
# On SIGTERM, running actions get this long to finish (Kubernetes' default grace is 30 s).
ACTION_DRAIN_SECONDS: Final = 15.0

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServeOptions:
    """How to listen: Socket Mode or HTTP, and the health port (0: none)."""

    http: bool = False
    host: str = "0.0.0.0"  # noqa: S104 - a server in a pod listens on all interfaces
    port: int = 3000
    health_host: str = "0.0.0.0"  # noqa: S104 - probes and scrapes come from outside the pod
    health_port: int = 0


def serve(source: FleetSource, options: ServeOptions, say: Callable[[str], None]) -> None:
    """Serve Slack until stopped; `say` tells the operator where it listens."""
    settings = source.config.slack if source.config is not None else SlackSettings()
    try:
        credentials = SlackCredentials.from_env(http=options.http)
    except MissingCredentials as err:
        raise SetupError([str(err)]) from err
    # Never log the secrets, whatever a library prints.
    secrets = (
        credentials.bot_token,
        credentials.app_token,
        credentials.signing_secret,
        credentials.button_key,
    )
    redact_values(*(secret.get_secret_value() for secret in secrets if secret is not None))
    # Read once, then out of the environment: child processes (helm) must not inherit them.
    for name in SECRET_VARIABLES:
        os.environ.pop(name, None)
    slack_ready = ProbedReadiness(
        "Slack: not listening yet" if options.http else "Slack: not connected yet"
    )
    caches: list[FleetCache | None] = []
    notices: list[str] = []

    def fleet_readiness() -> list[str]:
        if not caches:
            return ["fleet: the watch cache is starting"]
        cache = caches[0]
        return cache_readiness(cache.freshness()) if cache is not None else []

    health = (
        HealthServer(
            options.health_host,
            options.health_port,
            all_of(slack_ready, fleet_readiness),
            notices=lambda: list(notices),
        )
        if options.health_port
        else None
    )
    if health is not None:
        # Up before the first sync, so that liveness probes pass while clusters sync.
        health.start()
    try:
        _serve(source, options, credentials, settings, slack_ready, caches, notices, say)
    finally:
        METRICS.track_freshness(None)
        if health is not None:
            health.stop()


def _serve(
    source: FleetSource,
    options: ServeOptions,
    credentials: SlackCredentials,
    settings: SlackSettings,
    slack_ready: ProbedReadiness,
    caches: list[FleetCache | None],
    notices: list[str],
    say: Callable[[str], None],
) -> None:
    if source.demo:
        # Nobody in the workspace may take a demo answer for their fleet's state.
        label_messages(DEMO_LABEL)
    runtime = None
    if source.config is not None:
        runtime = start_runtime(source.config, SYNC_WAIT_SECONDS)
        if isinstance(runtime.history, SqliteHistory) and runtime.history.notice:
            notices.append(runtime.history.notice)
        fleet = Fleet(runtime.runner, close=runtime.stop)
        METRICS.track_freshness(runtime.cache.freshness)
    elif source.demo:
        demo = LiveDemo()
        demo_history = SqliteHistory(":memory:")
        layout = demo.layout()
        demo_runner = CommandRunner(layout, demo, DigestComposer(layout, demo, demo_history))

        def close_demo() -> None:
            demo.close()
            demo_history.close()

        fleet = Fleet(demo_runner, close=close_demo)
    else:
        fleet = open_fleet(source, live=True)
    caches.append(runtime.cache if runtime is not None else None)
    try:
        client = make_client(credentials, settings)
        remediation = None
        if runtime is not None:
            remediation = slack_remediation(
                runtime.config, runtime.cache,
                KubeWriter(runtime.cache, runtime.config.actions.events_address),
                helm_runner(runtime.config),
                runtime.runner, runtime.history, client, credentials, settings,
            )  # fmt: skip
            _schedule(runtime, client, remediation)
        elif source.demo:
            remediation = slack_remediation(
                demo_config(), demo, demo, None, demo_runner, demo_history,
                client, credentials, settings,
            )  # fmt: skip
        bot = SlackBot(fleet.runner, settings, credentials, client, remediation)

        def ready(port: int, probe: Probe) -> None:
            slack_ready.attach(probe)
            where = f"http://{options.host}:{port}/slack/events" if options.http else "Socket Mode"
            say(f"serving {settings.command} on {where}")

        try:
            run_app(bot, http=options.http, host=options.host, port=options.port, ready=ready)
        except SlackRefused as err:
            raise SetupError([str(err)]) from err
    finally:
        fleet.close()


def _schedule(runtime: Runtime, client: SlackClient, remediation: SlackRemediation) -> None:
    """Digests, change-health reports and incidents of a configured fleet; the leader posts."""
    runtime.on_stop(lambda: remediation.shutdown(ACTION_DRAIN_SECONDS))
    poster = SlackDigestPoster(client, runtime.runner.layout, remediation.mint)
    scheduler = DigestScheduler(
        runtime.config,
        runtime.runner.digests,
        poster,
        runtime.history,
        is_leader=lambda: runtime.is_leader,
    ).start()
    runtime.on_stop(scheduler.stop)
    reports = ReportScheduler(
        runtime.config,
        runtime.history,
        SlackReportPoster(client, runtime.runner.layout),
        is_leader=lambda: runtime.is_leader,
    ).start()
    runtime.on_stop(reports.stop)
    incidents = start_incidents(runtime, SlackIncidentPublisher(client, remediation.mint))
    remediation.output.incident_thread = lambda request: incidents.thread_of(
        request.target.environment, request.target.cluster, request.ref.kind,
        request.ref.namespace, request.ref.name,
    )  # fmt: skip


def helm_runner(config: FluxbotConfig) -> HelmRunner | None:
    """The configured Helm client, if it can be run."""
    helm_path = usable_helm(config.actions.helm_path)
    if config.actions.helm_path is not None and helm_path is None:
        log.warning(
            "actions.helm_path %s is not an executable file; rollback is off",
            config.actions.helm_path,
        )
    if helm_path is None:
        return None
    return HelmRunner(helm_path, config.actions.helm_timeout_seconds, config.kubernetes)


def slack_remediation(
    config: FluxbotConfig,
    objects: ObjectSource,
    writer: ClusterWriter,
    helm: Rollbacks | None,
    runner: CommandRunner,
    history: HistoryStore,
    client: SlackClient,
    credentials: SlackCredentials,
    settings: SlackSettings,
) -> SlackRemediation:
    """Remediation for a fleet that can be written to (a configured one, or the live demo)."""
    service = ActionService(config, objects, writer, helm, on_action=history.record_action)
    workers = ActionRunner(
        service.run,
        claim_ttl=float(config.actions.button_ttl_seconds),
        follower=Follower(objects),
    )
    key = credentials.button_key_bytes()
    return SlackRemediation(
        flow=ActionFlow(service, workers, history),
        runner=runner,
        directory=SlackDirectory(
            client, config.actions.group_refresh_seconds, config.actions.group_max_stale_seconds
        ),
        client=client,
        mint=ButtonMint(config, key, rollback_method=service.rollback_method),
        key=key,
        retries=settings.api_retries,
        command=settings.command,
    )
