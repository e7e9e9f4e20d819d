"""The `fluxbot` command line: status, check-config, shell."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, TextIO, TypeVar

from slack_bolt.error import BoltError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.actions.flow import ActionFlow
from bot.actions.follow import Follower
from bot.actions.runner import ActionRunner
from bot.actions.service import ActionService, ClusterWriter, ObjectSource, Rollbacks
from bot.commands.answers import AuditAnswer, ErrorAnswer, RolloutAnswer, StatusAnswer
from bot.commands.executor import CommandContext, CommandRunner
from bot.commands.grammar import AuditCommand, RolloutCommand, StatusCommand
from bot.config import ConfigError, DigestConfig, FluxbotConfig, SlackSettings, load_config
from bot.demo import load_demo
from bot.demo.live import LiveDemo, demo_config
from bot.digests.composer import DigestComposer
from bot.digests.run import DigestRuns, Outcome
from bot.digests.scheduler import DigestScheduler
from bot.domain.digest import Digest
from bot.domain.fleet import CacheState, EnvironmentLayout, FleetLayout, TroubleState
from bot.domain.history import HistoryStore, RunState
from bot.domain.readout import age, is_stuck
from bot.domain.status import FluxObject
from bot.history.sqlite import SqliteHistory
from bot.kube.cache import FleetCache
from bot.kube.helm import HelmRunner, usable_helm
from bot.kube.reader import KubeFleetReader
from bot.kube.writer import KubeWriter
from bot.observability.health import HealthServer, ProbedReadiness, all_of, cache_readiness
from bot.observability.logging import configure_logging, redact_values
from bot.observability.metrics import METRICS
from bot.offline import DumpError, OfflineFleetReader, load_dump
from bot.render.audit_json import audit_record
from bot.render.digest_text import digest_record, render_digest
from bot.render.report_text import render_report, report_record
from bot.render.rollout_json import rollout_record
from bot.render.text import render
from bot.reports.chart import chart_png
from bot.reports.compose import compose_report, parse_span
from bot.reports.scheduler import ReportScheduler
from bot.runtime import open_history, start_incidents, start_runtime
from bot.shell import run_shell
from bot.slack.app import SlackBot, build_app, make_client
from bot.slack.buttons import ButtonMint
from bot.slack.credentials import MissingCredentials, SlackCredentials
from bot.slack.digest_post import SlackDigestPoster
from bot.slack.directory import SlackDirectory
from bot.slack.incidents import SlackIncidentPublisher
from bot.slack.labels import DEMO_LABEL, label_messages
from bot.slack.remediation import SlackRemediation
from bot.slack.report_post import SlackReportPoster
from bot.slack.server import Probe, serve_http, serve_socket_mode

EXIT_OK: Final = 0
EXIT_UNREADABLE: Final = 1
EXIT_USAGE: Final = 2
DEFAULT_CONFIG: Final = Path("config/fluxbot.yaml")
OFFLINE_ENVIRONMENT: Final = "offline"
# How long an interactive session waits for the first sync before answering anyway.
SYNC_WAIT_SECONDS: Final = 15.0
SECRET_VARIABLES: Final = (
    "SLACK_BOT_TOKEN",
    "SLACK_APP_TOKEN",
    "SLACK_SIGNING_SECRET",
    "FLUXBOT_BUTTON_KEY",
)
# On SIGTERM, running actions get this long to finish (Kubernetes' default grace is 30 s).
ACTION_DRAIN_SECONDS: Final = 15.0

log = logging.getLogger("fluxbot")


class CliError(Exception):
    """A problem to report to the user in one or more lines, then exit 2."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = list(lines)


@dataclass
class Fleet:
    """What a command runs against, and how to release it."""

    runner: CommandRunner
    close: Any = None


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `fluxbot` console script."""
    parser = _parser()
    args = parser.parse_args(argv)
    configure_logging(args.log_level, json=args.log_format == "json")
    if args.log_level != "debug":
        # urllib3 warns on every retry; the answer already says what went wrong, in words.
        logging.getLogger("urllib3").setLevel(logging.ERROR)
    try:
        return int(args.func(args))
    except (CliError, ConfigError) as err:
        lines = (
            err.lines if isinstance(err, CliError) else [f"{err.source}: {p}" for p in err.problems]
        )
        for line in lines:
            print(f"fluxbot: {line}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `fluxbot status | head`: the reader left; exit quietly like other Unix tools.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fluxbot",
        description="Flux fleet status for people: in Slack, in a shell, on the command line.",
    )
    parser.add_argument(
        "--log-level",
        default=os.environ.get("FLUXBOT_LOG_LEVEL", "warning"),
        choices=["debug", "info", "warning", "error"],
        help="log verbosity on stderr (default: warning, or $FLUXBOT_LOG_LEVEL)",
    )
    parser.add_argument(
        "--log-format",
        default=os.environ.get("FLUXBOT_LOG_FORMAT", "text"),
        choices=["text", "json"],
        help="log lines as text or JSON objects (default: text, or $FLUXBOT_LOG_FORMAT)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = sub.add_parser(
        "status",
        help="status of every Flux object, failures first",
        description="Status of every Flux object in the fleet, as `flux get` reports it.",
    )
    status.add_argument("environment", nargs="?", metavar="ENV", help="only this environment")
    status.add_argument("--cluster", "-c", help="only this cluster")
    status.add_argument("--kind", "-k", help="only this kind (hr, ks, gitrepo, ocirepo, ...)")
    status.add_argument("--failing", "-f", action="store_true", help="only failing objects")
    status.add_argument("--output", "-o", choices=["text", "json"], default="text")
    _add_fleet_arguments(status)
    status.set_defaults(func=_cmd_status)

    check = sub.add_parser("check-config", help="validate a configuration file")
    check.add_argument("path", type=Path, metavar="PATH")
    check.set_defaults(func=_cmd_check_config)

    shell = sub.add_parser(
        "shell",
        help="type /flux commands in the terminal",
        description="A terminal chat adapter: the same commands as /flux in Slack.",
    )
    shell.add_argument("--command", "-x", metavar="TEXT", help="run one command and exit")
    _add_fleet_arguments(shell)
    shell.set_defaults(func=_cmd_shell)

    digest = sub.add_parser(
        "digest",
        help="compose an environment's digest and post it (or print it with --dry-run)",
        description=(
            "Compose ENV's digest from the fleet's current state and the recorded history "
            "(changes since the last digest) and post it to the environment's channel, as a "
            "scheduled digest would: as the digest of the latest slot of ENV's schedule, "
            "posted at most once (run again, it posts nothing), and not at all when all is well "
            "and quiet_when_healthy is skip. --force posts a digest of now outside the "
            "schedule. --dry-run prints it instead and records nothing; the demo fleet and "
            "--from-file dumps are always printed. Exit 1 when a cluster could not be read."
        ),
    )
    digest.add_argument("environment", metavar="ENV")
    digest.add_argument("--dry-run", action="store_true", help="print instead of posting")
    digest.add_argument(
        "--force",
        action="store_true",
        help="post even though the current scheduled slot's digest was already posted",
    )
    digest.add_argument("--output", "-o", choices=["text", "json"], default="text")
    _add_fleet_arguments(digest)
    digest.set_defaults(func=_cmd_digest)

    rollout = sub.add_parser(
        "rollout", help="what is deployed where: a source's revision per environment"
    )
    rollout.add_argument("source", nargs="?", help="GitRepository or OCIRepository name")
    rollout.add_argument("--revision", "-r", help="a commit SHA (7+), tag or digest")
    rollout.add_argument("--output", "-o", choices=["text", "json"], default="text")
    _add_fleet_arguments(rollout)
    rollout.set_defaults(func=_cmd_rollout)

    audit = sub.add_parser(
        "audit", help="remediation posture: objects whose failure handling falls short"
    )
    audit.add_argument("environment", nargs="?", help="environment (default: all)")
    audit.add_argument("--output", "-o", choices=["text", "json"], default="text")
    _add_fleet_arguments(audit)
    audit.set_defaults(func=_cmd_audit)

    report = sub.add_parser(
        "report", help="change health of an environment: changes, failure rate, recovery"
    )
    report.add_argument("environment", help="environment")
    report.add_argument("--since", default="28d", help="window, e.g. 28d, 2w, 36h (default 28d)")
    report.add_argument("--output", "-o", choices=["text", "json", "png"], default="text")
    report.add_argument(
        "--file", type=Path, help="where --output png writes (default: report-ENV.png here)"
    )
    _add_fleet_arguments(report)
    report.set_defaults(func=_cmd_report)

    serve = sub.add_parser(
        "serve",
        help="run the Slack app (Socket Mode, or HTTP with --http)",
        description=(
            "Answer /flux in Slack. Socket Mode needs SLACK_BOT_TOKEN and SLACK_APP_TOKEN; "
            "HTTP mode needs SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET. SLACK_API_URL overrides "
            "the Web API base URL (GovSlack: https://slack-gov.com/api/)."
        ),
    )
    serve.add_argument("--http", action="store_true", help="serve Slack's requests over HTTP")
    serve.add_argument("--host", default="0.0.0.0", help="HTTP listen address (default 0.0.0.0)")  # noqa: S104 - a server in a pod listens on all interfaces
    serve.add_argument("--port", type=int, default=3000, help="HTTP port (default 3000)")
    serve.add_argument(
        "--health-port",
        type=int,
        default=int(os.environ.get("FLUXBOT_HEALTH_PORT") or 0),
        help="serve /healthz, /readyz and /metrics on this port (default: $FLUXBOT_HEALTH_PORT; "
        "0 or unset: off)",
    )
    serve.add_argument(
        "--health-host",
        default="0.0.0.0",  # noqa: S104 - probes and scrapes come from outside the pod
        help="listen address of the health port (default 0.0.0.0)",
    )
    _add_fleet_arguments(serve)
    serve.set_defaults(func=_cmd_serve)
    return parser


def _add_fleet_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument(
        "--config",
        type=Path,
        help=f"configuration file (default: $FLUXBOT_CONFIG, then {DEFAULT_CONFIG})",
    )
    source.add_argument("--demo", action="store_true", help="use the built-in demo fleet")
    source.add_argument(
        "--from-file",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="read YAML dumps (kubectl get ... -o yaml), one offline cluster per file",
    )


def _cmd_check_config(args: argparse.Namespace) -> int:
    config = load_config(args.path)
    layout = config.layout()
    clusters = sum(len(e.clusters) for e in layout.environments)
    print(
        f"{args.path}: valid: {len(layout.environments)} environments "
        f"({', '.join(layout.names)}), {clusters} clusters"
    )
    return EXIT_OK


def _cmd_status(args: argparse.Namespace) -> int:
    fleet = _open_fleet(args)
    try:
        command = StatusCommand(args.environment, args.cluster, args.kind, args.failing)
        answer = fleet.runner.run(command, CommandContext())
    finally:
        if fleet.close:
            fleet.close()
    if isinstance(answer, ErrorAnswer):
        raise CliError([render(answer)])
    assert isinstance(answer, StatusAnswer)
    if args.output == "json":
        json.dump(status_records(answer), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(answer))
    unreadable = [c.status for c in answer.clusters if c.status.unreadable is not None]
    for cluster in unreadable:
        assert cluster.unreadable is not None
        print(
            f"fluxbot: cannot read {cluster.environment}/{cluster.cluster}: "
            f"{cluster.unreadable.message}",
            file=sys.stderr,
        )
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def status_records(answer: StatusAnswer) -> list[dict[str, Any]]:
    """One JSON record per object, failures first, with the `flux get` columns."""
    records = []
    for cluster in answer.clusters:
        fresh = cluster.status.freshness
        stale_since = (
            fresh.since.isoformat()
            if fresh is not None and fresh.state is CacheState.STALE and fresh.since
            else None
        )
        for obj in cluster.shown:
            record = object_record(cluster.environment, cluster.cluster, obj)
            elapsed = age(obj, answer.now)
            root = cluster.root_cause(obj)
            record.update(
                stale_since=stale_since,
                age_seconds=int(elapsed.total_seconds()) if elapsed is not None else None,
                stuck=is_stuck(obj, answer.now),
                root_cause=str(root) if root else None,
            )
            records.append(record)
    return records


def object_record(environment: str, cluster: str, obj: FluxObject) -> dict[str, Any]:
    """The JSON form of one object's status."""
    return {
        "environment": environment,
        "cluster": cluster,
        "kind": obj.kind,
        "namespace": obj.namespace,
        "name": obj.name,
        "ready": obj.ready,
        "suspended": obj.suspended,
        "revision": obj.revision,
        "message": obj.message,
        "health": obj.health.value,
        "reason": obj.reason,
        "stalled": obj.stalled,
        "reconciling": obj.reconciling,
        "generation": obj.generation,
        "observed_generation": obj.observed_generation,
        "ready_since": obj.ready_since.isoformat() if obj.ready_since else None,
        "source": str(obj.source_ref) if obj.source_ref else None,
        "depends_on": [str(d) for d in obj.depends_on],
    }


# The one-shot answers printed by _print_fleet_answer.
_FleetAnswer = TypeVar("_FleetAnswer", RolloutAnswer, AuditAnswer)


def _cmd_rollout(args: argparse.Namespace) -> int:
    return _print_fleet_answer(
        args, RolloutCommand(args.source, args.revision), RolloutAnswer, rollout_record
    )


def _cmd_audit(args: argparse.Namespace) -> int:
    # Findings are an answer, not an error; only an unreadable cluster changes the exit code.
    return _print_fleet_answer(args, AuditCommand(args.environment), AuditAnswer, audit_record)


def _print_fleet_answer(
    args: argparse.Namespace,
    command: RolloutCommand | AuditCommand,
    expected: type[_FleetAnswer],
    record: Callable[[_FleetAnswer], Any],
) -> int:
    """Answer one command on a freshly opened fleet, as text or JSON; exit 1 if a cluster
    could not be read."""
    fleet = _open_fleet(args)
    try:
        answer = fleet.runner.run(command, CommandContext())
    finally:
        if fleet.close:
            fleet.close()
    if isinstance(answer, ErrorAnswer):
        raise CliError([render(answer)])
    assert isinstance(answer, expected)
    if args.output == "json":
        json.dump(record(answer), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render(answer))
    unreadable = any(t.state is TroubleState.UNREADABLE for t in answer.troubles)
    return EXIT_UNREADABLE if unreadable else EXIT_OK


def _cmd_report(args: argparse.Namespace) -> int:
    try:
        span = parse_span(args.since)
    except ValueError as err:
        raise CliError([str(err)]) from err
    config_path = None if args.demo or args.from_file else args.config or _default_config_path()
    now = dt.datetime.now(dt.UTC)
    if config_path is None:
        # The demo and YAML dumps have no recorded history: the report says so.
        names = _open_fleet(args).runner.layout.names
        _known_environment(args.environment, names)
        report = compose_report(args.environment, None, span, now)
    else:
        config = load_config(config_path)
        _known_environment(args.environment, list(config.environments))
        history = open_history(config)
        try:
            retention = dt.timedelta(days=config.history.retention_days)
            report = compose_report(args.environment, history, span, now, retention)
        finally:
            history.close()
    if args.output == "json":
        json.dump(report_record(report), sys.stdout, indent=2)
        sys.stdout.write("\n")
    elif args.output == "png":
        path = args.file or Path(f"report-{args.environment}.png")
        try:
            path.write_bytes(chart_png(report))
        except OSError as err:
            raise CliError([f"cannot write {path}: {err.strerror}"]) from err
        print(path)
    else:
        print(render_report(report))
    return EXIT_OK


def _cmd_shell(args: argparse.Namespace) -> int:
    fleet = _open_fleet(args, live=True)
    try:
        if args.command is not None:
            return run_shell(fleet.runner, [args.command], sys.stdout, prompt=None)
        interactive = sys.stdin.isatty()
        return run_shell(
            fleet.runner, sys.stdin, sys.stdout, prompt="flux> " if interactive else None
        )
    finally:
        if fleet.close:
            fleet.close()


def _cmd_digest(args: argparse.Namespace) -> int:
    config_path = None if args.demo or args.from_file else _config_path(args)
    if config_path is None:
        fleet = _open_fleet(args)
        names = fleet.runner.layout.names
        _known_environment(args.environment, names)
        digest = fleet.runner.digests.compose(args.environment)
        _print_digest(digest, args.output)
        return _digest_exit(digest)
    config = load_config(config_path)
    _known_environment(args.environment, list(config.environments))
    reader = KubeFleetReader(config)
    history = open_history(config)
    try:
        composer = DigestComposer(config.layout(), reader, history)
        settings = config.digest(args.environment)
        if args.dry_run:
            digest = composer.compose(args.environment)
            _print_digest(digest, args.output)
            if digest.healthy and settings is not None and settings.quiet_when_healthy == "skip":
                print(
                    "fluxbot: all is well and quiet_when_healthy is skip: a real run posts nothing",
                    file=sys.stderr,
                )
            return _digest_exit(digest)
        return _post_digest(args, config, composer, history, settings)
    finally:
        reader.close()
        history.close()


def _post_digest(
    args: argparse.Namespace,
    config: FluxbotConfig,
    composer: DigestComposer,
    history: HistoryStore,
    settings: DigestConfig | None,
) -> int:
    """Run the digest of the slot now belongs to (or, with --force, of now) and say how it went."""
    environment = args.environment
    try:
        credentials = SlackCredentials.from_env(
            http=False, env={**os.environ, "SLACK_APP_TOKEN": "unused"}
        )
    except MissingCredentials as err:
        raise CliError([f"{err}; or use --dry-run to print the digest"]) from err
    poster = SlackDigestPoster(make_client(credentials, config.slack), config.layout(), None)
    runs = DigestRuns(config, composer, poster, history)
    if args.force:
        slot = dt.datetime.now(dt.UTC)
    else:
        if settings is None:
            raise CliError(
                [f"{environment} has no digest schedule; --force posts its digest anyway"]
            )
        slot_or_none = runs.current_slot(
            environment, dt.timedelta(days=config.history.retention_days)
        )
        if slot_or_none is None:
            raise CliError(
                [
                    f"{environment}'s schedule ({settings.schedule}) has not fired within the "
                    f"last {config.history.retention_days} days; --force posts its digest now"
                ]
            )
        slot = slot_or_none
    result = runs.run(environment, slot, settings or DigestConfig())
    when = _utc_minute(result.slot)
    if result.outcome is Outcome.POSTED:
        print(f"fluxbot: posted the {environment} digest of {when} (ts {result.message_ts})",
              file=sys.stderr)  # fmt: skip
        return _digest_exit(result.digest)
    if result.outcome is Outcome.SKIPPED:
        print(
            f"fluxbot: nothing posted: {environment} is all well and quiet_when_healthy is skip "
            f"(the {when} digest is done)",
            file=sys.stderr,
        )
        return _digest_exit(result.digest)
    if result.outcome is Outcome.FAILED:
        raise CliError(
            [
                f"the {environment} digest of {when} could not be posted: {result.error}; "
                "running this again retries it"
            ]
        )
    previous = result.previous
    if result.outcome is Outcome.IN_PROGRESS:
        print(
            f"fluxbot: the {environment} digest of {when} is being posted by another run; "
            "nothing posted",
            file=sys.stderr,
        )
        return EXIT_OK
    done = "skipped (all was well)" if previous and previous.state is RunState.SKIPPED else "posted"
    ts = f" (ts {previous.message_ts})" if previous and previous.message_ts else ""
    print(
        f"fluxbot: the {environment} digest of {when} was already {done}{ts}; nothing posted. "
        "--force posts another now",
        file=sys.stderr,
    )
    return EXIT_OK


def _utc_minute(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def _digest_exit(digest: Digest | None) -> int:
    """1 when some cluster of the digest could not be read (as `status`), else 0."""
    if digest is None:
        return EXIT_OK
    for line in digest.unreadable:
        problem = line.unreadable.message if line.unreadable else "its data is stale"
        print(f"fluxbot: cannot read {digest.environment}/{line.cluster}: {problem}",
              file=sys.stderr)  # fmt: skip
    return EXIT_UNREADABLE if digest.unreadable else EXIT_OK


def _known_environment(name: str, names: Sequence[str]) -> None:
    if name not in names:
        raise CliError([f"unknown environment {name!r}; valid: {', '.join(names)}"])


def _config_path(args: argparse.Namespace) -> Path:
    """The configuration to use; none at all is an error, never a silent demo."""
    path = args.config or _default_config_path()
    if path is None:
        raise CliError(
            [
                f"no configuration: pass --config PATH, set $FLUXBOT_CONFIG or create "
                f"{DEFAULT_CONFIG}; --demo runs the built-in demo fleet instead"
            ]
        )
    return Path(path)


def _print_digest(digest: Digest, output: str) -> None:
    if output == "json":
        json.dump(digest_record(digest), sys.stdout, indent=2)
        sys.stdout.write("\n")
    else:
        print(render_digest(digest))


def _cmd_serve(args: argparse.Namespace) -> int:
    # The configuration first: a real deployment without one stops here, never a demo.
    settings = _slack_settings(args)
    try:
        credentials = SlackCredentials.from_env(http=args.http)
    except MissingCredentials as err:
        raise CliError([str(err)]) from err
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
        "Slack: not listening yet" if args.http else "Slack: not connected yet"
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
            args.health_host,
            args.health_port,
            all_of(slack_ready, fleet_readiness),
            notices=lambda: list(notices),
        )
        if args.health_port
        else None
    )
    if health is not None:
        # Up before the first sync, so that liveness probes pass while clusters sync.
        health.start()
    try:
        return _serve(args, credentials, settings, slack_ready, caches, notices)
    finally:
        METRICS.track_freshness(None)
        if health is not None:
            health.stop()


def _serve(
    args: argparse.Namespace,
    credentials: SlackCredentials,
    settings: SlackSettings,
    slack_ready: ProbedReadiness,
    caches: list[FleetCache | None],
    notices: list[str],
) -> int:
    config_path = None if args.demo or args.from_file else _config_path(args)
    use_demo = bool(args.demo)
    if use_demo:
        # Nobody in the workspace may take a demo answer for their fleet's state.
        label_messages(DEMO_LABEL)
    runtime = None
    if config_path is not None:
        runtime = start_runtime(load_config(config_path), SYNC_WAIT_SECONDS)
        if isinstance(runtime.history, SqliteHistory) and runtime.history.notice:
            notices.append(runtime.history.notice)
        fleet = Fleet(runtime.runner, close=runtime.stop)
        METRICS.track_freshness(runtime.cache.freshness)
    elif use_demo:
        demo = LiveDemo()
        demo_history = SqliteHistory(":memory:")
        layout = demo.layout()
        demo_runner = CommandRunner(layout, demo, DigestComposer(layout, demo, demo_history))

        def close_demo() -> None:
            demo.close()
            demo_history.close()

        fleet = Fleet(demo_runner, close=close_demo)
    else:
        fleet = _open_fleet(args, live=True)
    caches.append(runtime.cache if runtime is not None else None)
    try:
        client = make_client(credentials, settings)
        remediation = None
        if runtime is not None:
            live = _remediation(
                runtime.config, runtime.cache,
                KubeWriter(runtime.cache, runtime.config.actions.events_address),
                _helm(runtime.config),
                runtime.runner, runtime.history, client, credentials, settings,
            )  # fmt: skip
            runtime.on_stop(lambda: live.shutdown(ACTION_DRAIN_SECONDS))
            remediation = live
        elif use_demo:
            remediation = _remediation(
                demo_config(), demo, demo, None, demo_runner, demo_history,
                client, credentials, settings,
            )  # fmt: skip
        if runtime is not None:
            poster = SlackDigestPoster(
                client, runtime.runner.layout, remediation.mint if remediation else None
            )
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
            incidents = start_incidents(
                runtime, SlackIncidentPublisher(client, remediation.mint if remediation else None)
            )
            if remediation is not None:
                remediation.output.incident_thread = lambda request: incidents.thread_of(
                    request.target.environment, request.target.cluster, request.ref.kind,
                    request.ref.namespace, request.ref.name,
                )  # fmt: skip
        bot = SlackBot(fleet.runner, settings, credentials, client, remediation)
        try:
            app = build_app(bot, http=args.http)
        except BoltError as err:
            # Bolt checks the bot token with auth.test before anything else.
            raise CliError([f"Slack refused SLACK_BOT_TOKEN: {err}"]) from err

        def ready(port: int, probe: Probe) -> None:
            slack_ready.attach(probe)
            where = f"http://{args.host}:{port}/slack/events" if args.http else "Socket Mode"
            print(f"fluxbot: serving {settings.command} on {where}", file=sys.stderr, flush=True)

        if args.http:
            assert credentials.signing_secret is not None
            serve_http(
                app, credentials.signing_secret.get_secret_value(), args.host, args.port,
                settings.listener_threads, ready,
            )  # fmt: skip
        else:
            assert credentials.app_token is not None
            try:
                serve_socket_mode(app, credentials.app_token.get_secret_value(), ready)
            except SlackApiError as err:
                reason = err.response.get("error")
                raise CliError([f"Slack refused SLACK_APP_TOKEN: {reason}"]) from err
    finally:
        if fleet.close:
            fleet.close()
    return EXIT_OK


def _helm(config: FluxbotConfig) -> HelmRunner | None:
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


def _remediation(
    config: FluxbotConfig,
    objects: ObjectSource,
    writer: ClusterWriter,
    helm: Rollbacks | None,
    runner: CommandRunner,
    history: HistoryStore,
    client: WebClient,
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


def _slack_settings(args: argparse.Namespace) -> SlackSettings:
    if args.demo or args.from_file:
        return SlackSettings()
    return load_config(_config_path(args)).slack


def _open_fleet(args: argparse.Namespace, live: bool = False, stderr: TextIO = sys.stderr) -> Fleet:
    """The fleet to answer from; `live` keeps a watch cache for long sessions."""
    if args.demo:
        layout, reader = load_demo()
        return Fleet(CommandRunner(layout, reader))
    if args.from_file:
        environment = getattr(args, "environment", None) or OFFLINE_ENVIRONMENT
        return Fleet(_offline_runner(args.from_file, environment))
    config = load_config(_config_path(args))
    if live:
        cache = FleetCache(config).start()
        if not cache.wait_synced(SYNC_WAIT_SECONDS):
            print("fluxbot: some clusters are not synced yet; their answers say so", file=stderr)
        return Fleet(CommandRunner(config.layout(), cache), close=cache.stop)
    # One answer and exit: listing once is cheaper than starting watches.
    kube_reader = KubeFleetReader(config)
    return Fleet(CommandRunner(config.layout(), kube_reader), close=kube_reader.close)


def _default_config_path() -> Path | None:
    env = os.environ.get("FLUXBOT_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None


def _offline_runner(paths: Sequence[Path], environment: str) -> CommandRunner:
    clusters = []
    problems = []
    for path in paths:
        try:
            clusters.append(load_dump(path, environment))
        except DumpError as err:
            problems.append(str(err))
    names = [c.name for c in clusters]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        problems.append(f"two files make cluster(s) named {', '.join(duplicates)}; rename one")
    if problems:
        raise CliError(problems)
    layout = FleetLayout((EnvironmentLayout(environment, "offline", None, tuple(names)),))
    return CommandRunner(layout, OfflineFleetReader(clusters))


if __name__ == "__main__":
    sys.exit(main())
