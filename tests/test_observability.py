"""Operating fluxbot: health endpoints over real HTTP, metrics, JSON logs and redaction."""

from __future__ import annotations

import ast
import contextvars
import datetime as dt
import io
import json
import logging
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import get_args

import pytest

from bot.commands.grammar import Command
from bot.domain.fleet import CacheState, ClusterTarget, Freshness, ProblemKind
from bot.domain.history import RunState
from bot.domain.policy import Action
from bot.observability import metrics as metrics_module
from bot.observability.health import HealthServer, all_of, cache_readiness
from bot.observability.logging import (
    REDACTED,
    configure_logging,
    log_handler,
    new_request_id,
    redact,
    redact_values,
    request_id_var,
    request_scope,
)
from bot.observability.metrics import Metrics

PACKAGE = Path(__file__).resolve().parent.parent / "bot" / "observability"
PROD_EU = ClusterTarget("production", "prod-eu-1")
PROD_US = ClusterTarget("production", "prod-us-1")
T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)

# Shaped like real credentials, made up for the test.
BOT_TOKEN = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
APP_TOKEN = "xapp-1-A0123ABCDEF-1234567890123-0123456789abcdef0123456789abcdef"
USER_TOKEN = "xoxp-1234567890-0987654321-1122334455-abcdef0123456789"
SIGNING_SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
BEARER = "eyJhbGciOiJSUzI1NiIsImtpZCI6IjEifQ.eyJzdWIiOiJmbHV4Ym90In0.c2lnbmF0dXJl"
RESPONSE_URL = "https://hooks.slack.com/commands/T0001/1234567890/AbCdEfGhIjKlMnOp"
SECRETS = (BOT_TOKEN, APP_TOKEN, USER_TOKEN, SIGNING_SECRET, BEARER, RESPONSE_URL)


def _get(url: str) -> tuple[int, str, str]:
    """(status, content type, body) of a GET, errors included."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers["Content-Type"], response.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.headers["Content-Type"], err.read().decode()


# -- the health server ------------------------------------------------------------------


class ReadinessFlag:
    """A readiness source the test switches: off until `set()`, like "connected to Slack"."""

    def __init__(self, reason: str) -> None:
        self._reason = reason
        self._ready = threading.Event()

    def set(self) -> None:
        self._ready.set()

    def clear(self, reason: str) -> None:
        self._reason = reason
        self._ready.clear()

    def __call__(self) -> list[str]:
        return [] if self._ready.is_set() else [self._reason]


@pytest.fixture
def readiness() -> ReadinessFlag:
    return ReadinessFlag("Slack: not connected yet")


@pytest.fixture
def registry() -> Metrics:
    return Metrics()


@pytest.fixture
def health(readiness: ReadinessFlag, registry: Metrics) -> Iterator[str]:
    server = HealthServer("127.0.0.1", 0, readiness, metrics=registry)
    port = server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def test_healthz_answers_ok_while_the_process_lives(health: str) -> None:
    assert _get(health + "/healthz") == (200, "text/plain; charset=utf-8", "ok\n")


def test_readyz_says_why_it_is_not_ready_then_becomes_ready(
    health: str, readiness: ReadinessFlag
) -> None:
    status, _, body = _get(health + "/readyz")
    assert (status, body) == (503, "Slack: not connected yet\n")
    readiness.set()
    assert _get(health + "/readyz")[::2] == (200, "ok\n")
    readiness.clear("Slack: connection lost")
    assert _get(health + "/readyz")[::2] == (503, "Slack: connection lost\n")


def test_readyz_lists_every_failing_check_and_survives_a_broken_one(registry: Metrics) -> None:
    slack = ReadinessFlag("Slack: not connected yet")
    freshness = {
        PROD_EU: Freshness(CacheState.SYNCING),
        PROD_US: Freshness(CacheState.LIVE, T0),
    }
    check = all_of(slack, lambda: cache_readiness(freshness))
    with HealthServer("127.0.0.1", 0, check, metrics=registry) as server:
        url = f"http://127.0.0.1:{server.start()}/readyz"
        status, _, body = _get(url)
        assert status == 503
        assert body.splitlines() == [
            "Slack: not connected yet",
            "cluster production/prod-eu-1: still syncing",
        ]

    def broken() -> list[str]:
        raise RuntimeError("boom")

    with HealthServer("127.0.0.1", 0, broken, metrics=registry) as server:
        status, _, body = _get(f"http://127.0.0.1:{server.start()}/readyz")
        assert (status, body) == (503, "readiness check failed: RuntimeError\n")


def test_unknown_paths_are_404_and_a_stopped_server_refuses(
    readiness: ReadinessFlag, registry: Metrics
) -> None:
    server = HealthServer("127.0.0.1", 0, readiness, metrics=registry)
    base = f"http://127.0.0.1:{server.start()}"
    assert _get(base + "/slack/events")[0] == 404
    assert _get(base + "/healthz?verbose=1")[0] == 200
    server.stop()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(base + "/healthz", timeout=2)


def test_a_cluster_is_ready_once_live_or_reported_stale() -> None:
    assert cache_readiness({}) == []
    assert cache_readiness({PROD_EU: Freshness(CacheState.LIVE, T0)}) == []
    stale = Freshness(CacheState.STALE, T0, "cannot reach https://prod-eu-1: refused")
    assert cache_readiness({PROD_EU: stale}) == []
    assert cache_readiness({PROD_EU: stale, PROD_US: Freshness(CacheState.SYNCING)}) == [
        "cluster production/prod-us-1: still syncing"
    ]


# -- metrics ----------------------------------------------------------------------------

METRIC_NAMES = (
    "fluxbot_commands_total",
    "fluxbot_actions_total",
    "fluxbot_action_duration_seconds",
    "fluxbot_digest_posts_total",
    "fluxbot_slack_api_errors_total",
    "fluxbot_slack_ratelimited_total",
    "fluxbot_cluster_cache_state",
    "fluxbot_cluster_errors_total",
    "fluxbot_command_latency_seconds",
    "fluxbot_ack_latency_seconds",
)


def test_metrics_endpoint_exposes_what_was_recorded(health: str, registry: Metrics) -> None:
    registry.record_command("status", "ok", 0.012)
    registry.record_command("status", "ok", 0.030)
    registry.record_command("get", "error", 1.5)
    registry.record_ack(0.004)
    registry.record_action("reconcile", "ok", 42.0)
    registry.record_digest_post("production", "posted")
    registry.record_slack_api_error("chat.postMessage", "not_in_channel")
    registry.record_slack_ratelimited("chat.postMessage")
    registry.record_cluster_error("production", "prod-eu-1", "unreachable")
    registry.set_cluster_state("production", "prod-eu-1", CacheState.STALE)

    status, content_type, text = _get(health + "/metrics")
    assert status == 200
    assert content_type.startswith("text/plain; version=")
    for name in METRIC_NAMES:
        assert f"# HELP {name} " in text or f"# HELP {name.removesuffix('_total')} " in text
    assert 'fluxbot_commands_total{command="status",result="ok"} 2.0' in text
    assert 'fluxbot_command_latency_seconds_bucket{command="status",le="0.025"} 1.0' in text
    assert 'fluxbot_command_latency_seconds_bucket{command="get",le="2.5"} 1.0' in text
    assert "fluxbot_ack_latency_seconds_count 1.0" in text
    assert 'fluxbot_actions_total{action="reconcile",result="ok"} 1.0' in text
    assert 'fluxbot_action_duration_seconds_bucket{action="reconcile",le="60.0"} 1.0' in text
    assert 'fluxbot_digest_posts_total{environment="production",result="posted"} 1.0' in text
    assert (
        'fluxbot_slack_api_errors_total{error="not_in_channel",method="chat.postMessage"} 1.0'
        in text
    )
    assert 'fluxbot_slack_ratelimited_total{method="chat.postMessage"} 1.0' in text
    assert (
        'fluxbot_cluster_errors_total{cluster="prod-eu-1",environment="production",'
        'kind="unreachable"} 1.0' in text
    )
    assert (
        'fluxbot_cluster_cache_state{cluster="prod-eu-1",environment="production",'
        'state="stale"} 1.0' in text
    )
    assert (
        'fluxbot_cluster_cache_state{cluster="prod-eu-1",environment="production",'
        'state="live"} 0.0' in text
    )


def test_cache_state_gauges_follow_the_fleet_at_every_scrape(registry: Metrics) -> None:
    freshness = {PROD_EU: Freshness(CacheState.SYNCING)}
    registry.track_freshness(lambda: freshness)

    def state_of(text: str, state: str) -> str:
        line = next(
            line
            for line in text.splitlines()
            if line.startswith("fluxbot_cluster_cache_state{") and f'state="{state}"' in line
        )
        return line.rsplit(" ", 1)[1]

    text = registry.exposition().decode()
    assert (state_of(text, "syncing"), state_of(text, "live")) == ("1.0", "0.0")
    freshness[PROD_EU] = Freshness(CacheState.LIVE, T0)
    text = registry.exposition().decode()
    assert (state_of(text, "syncing"), state_of(text, "live")) == ("0.0", "1.0")


def test_each_metrics_object_has_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.record_command("envs", "ok", 0.001)
    assert b'command="envs"' in first.exposition()
    assert b'command="envs"' not in second.exposition()
    assert b'command="envs"' not in metrics_module.METRICS.exposition()


def test_module_functions_record_on_the_process_metrics() -> None:
    metrics_module.record_slack_ratelimited("views.open")
    assert b'fluxbot_slack_ratelimited_total{method="views.open"}' in (
        metrics_module.METRICS.exposition()
    )


def test_the_package_imports_no_chat_or_kubernetes_client() -> None:
    forbidden = ("slack_bolt", "slack_sdk", "kubernetes", "urllib3", "bot.slack", "bot.kube")
    for path in sorted(PACKAGE.glob("*.py")):
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith(forbidden), f"{path.name} imports {name}"


# -- logging ----------------------------------------------------------------------------


@pytest.fixture
def json_log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    """A logger writing JSON lines into a buffer through fluxbot's handler."""
    stream = io.StringIO()
    logger = logging.getLogger("fluxbot.test.observability")
    handler = log_handler(stream, json=True)
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    try:
        yield logger, stream
    finally:
        logger.removeHandler(handler)
        logger.propagate = True


def _records(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_log_lines_are_json_objects_carrying_the_request_id(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    logger.info("before any request")
    with request_scope() as first:
        logger.info("answered %s command from %s", "StatusCommand", "U0123")
        logger.warning("slow", extra={"cluster": "prod-eu-1", "seconds": 2.5})
    with request_scope("abc123"):
        logger.debug("second request")

    records = _records(stream)
    assert [r["request_id"] for r in records] == [None, first, first, "abc123"]
    assert records[1]["message"] == "answered StatusCommand command from U0123"
    assert records[1]["level"] == "info"
    assert records[1]["logger"] == "fluxbot.test.observability"
    assert dt.datetime.fromisoformat(str(records[1]["time"])).tzinfo is not None
    assert records[2]["cluster"] == "prod-eu-1"
    assert records[2]["seconds"] == 2.5
    assert len(first) == 16
    assert request_id_var.get() is None


def test_a_request_id_follows_work_handed_to_another_thread(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log

    def handle() -> None:
        request_id = new_request_id()
        context = contextvars.copy_context()
        worker = threading.Thread(target=context.run, args=(logger.info, "from a worker"))
        worker.start()
        worker.join()
        logger.info("done %s", request_id)

    contextvars.copy_context().run(handle)
    worker, done = _records(stream)
    assert worker["request_id"] == done["request_id"]
    assert done["message"] == f"done {done['request_id']}"
    assert request_id_var.get() is None


def test_tokens_and_secrets_never_reach_the_log(
    json_log: tuple[logging.Logger, io.StringIO],
) -> None:
    logger, stream = json_log
    redact_values(SIGNING_SECRET)
    logger.info("connecting with bot token %s", BOT_TOKEN)
    logger.info(f"socket mode with {APP_TOKEN} and user token {USER_TOKEN}")
    logger.warning("signing secret is %s", SIGNING_SECRET)
    logger.info("request headers: %r", {"Authorization": f"Bearer {BEARER}"})
    logger.info("posting to %s", RESPONSE_URL, extra={"url": RESPONSE_URL})
    try:
        raise RuntimeError(f"invalid_auth for token {BOT_TOKEN} (secret {SIGNING_SECRET})")
    except RuntimeError:
        logger.exception("Slack refused %s", APP_TOKEN)
    logger.error("failed", exc_info=ValueError(f"app token {APP_TOKEN}"))

    output = stream.getvalue()
    for secret in SECRETS:
        assert secret not in output
    # Not even recognisable pieces of them.
    assert "AbCdEfGhIjKlMnOpQrStUvWx" not in output
    assert "0123456789abcdef0123456789abcdef" not in output
    records = _records(stream)
    assert records[0]["message"] == f"connecting with bot token {REDACTED}"
    assert records[1]["message"] == f"socket mode with {REDACTED} and user token {REDACTED}"
    assert records[2]["message"] == f"signing secret is {REDACTED}"
    assert "Bearer [redacted]" in str(records[3]["message"])
    assert records[4]["url"] == REDACTED
    assert "RuntimeError: invalid_auth for token [redacted] (secret [redacted])" in str(
        records[5]["exception"]
    )
    assert records[5]["message"] == f"Slack refused {REDACTED}"
    assert "ValueError: app token [redacted]" in str(records[6]["exception"])


def test_redaction_leaves_ordinary_text_alone() -> None:
    text = "cluster prod-eu-1: 3 failing; xoxo hugs; bearer of bad news; xapp is an app"
    assert redact(text) == text


def test_configure_logging_installs_one_redacting_handler_on_the_root(
    caplog: pytest.LogCaptureFixture,
) -> None:
    root = logging.getLogger()
    level = root.level
    text_stream, json_stream = io.StringIO(), io.StringIO()
    try:
        configure_logging("info", json=False, stream=text_stream)
        handler = configure_logging("debug", json=True, stream=json_stream)
        assert [h for h in root.handlers if h is handler] == [handler]
        assert root.level == logging.DEBUG
        with request_scope("feedbeef"):
            logging.getLogger("tests.observability.library").info("token %s", BOT_TOKEN)
        assert text_stream.getvalue() == ""
        (record,) = _records(json_stream)
        assert record == {**record, "request_id": "feedbeef", "message": "token [redacted]"}
        configure_logging("warning", json=False, stream=text_stream)
        with request_scope("c0ffee"):
            logging.getLogger("tests.observability.app").warning("using %s", APP_TOKEN)
        assert text_stream.getvalue().endswith(
            " WARNING tests.observability.app [c0ffee]: using [redacted]\n"
        )
        assert json_stream.getvalue().count("\n") == 1
        with pytest.raises(ValueError, match="unknown log level"):
            configure_logging("loud", json=True)
    finally:
        for h in [h for h in root.handlers if h.__class__.__name__ == "_Handler"]:
            root.removeHandler(h)
        root.setLevel(level)
        logging.captureWarnings(False)


def _help_text(name: str) -> str:
    """The `# HELP` line of metric `name` (counters are exposed without `_total`)."""
    for line in Metrics().exposition().decode().splitlines():
        if line.startswith((f"# HELP {name} ", f"# HELP {name.removesuffix('_total')} ")):
            return line
    raise AssertionError(f"no help for {name}")


def test_metric_help_names_every_label_value_the_code_records() -> None:
    # Listeners label a command with its class name less "Command" (StatusCommand: status).
    commands = [t.__name__.removesuffix("Command").lower() for t in get_args(Command)]
    expected = {
        "fluxbot_commands_total": [*commands, "ok", "rejected", "error"],
        # bot/actions/service.py records ok, progressing or failed per action.
        "fluxbot_actions_total": [*(a.value for a in Action), "ok", "progressing", "failed"],
        "fluxbot_digest_posts_total": [RunState.POSTED, RunState.SKIPPED, RunState.FAILED],
        "fluxbot_cluster_errors_total": [k.value for k in ProblemKind],
        "fluxbot_cluster_cache_state": [s.value for s in CacheState],
    }
    for name, values in expected.items():
        help_text = _help_text(name)
        assert [v for v in values if v not in help_text] == [], help_text
