"""Change health: revisions applied, change failure rate, time to recovery, flapping, and the
four-week chart, from the history store (SQLite and ConfigMap backends alike)."""

from __future__ import annotations

import datetime as dt
import json
import struct
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from bot.config import ClusterConfig, FluxbotConfig, KubernetesSettings, load_config
from bot.domain.change_health import change_health
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.transitions import Change, Transition
from bot.history.configmap import ConfigMapHistory
from bot.history.sqlite import SqliteHistory
from bot.kube.clients import build_api_client
from bot.render.report_text import render_report
from bot.reports.chart import chart_png
from bot.reports.compose import compose_report, parse_span
from bot.reports.scheduler import ReportScheduler
from bot.slack.report_post import SlackReportPoster, report_message
from tests.fakes.kube_api import FakeKubeApiServer
from tests.fakes.kubeconfig import write_kubeconfig
from tests.fakes.slack_api import FakeSlack, validate_blocks

ROOT = Path(__file__).resolve().parent.parent
NOW = dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC)
SHA = "cb83a77d49d018fb0780143af93cda9dfacc8d54"


def _t(
    days_ago: float,
    kind: str,
    name: str,
    change: Change,
    *,
    cluster: str = "prod-eu-1",
    new: str = "",
    minutes: float = 0,
) -> Transition:
    at = NOW - dt.timedelta(days=days_ago) + dt.timedelta(minutes=minutes)
    return Transition("production", cluster, kind, "flux-system", name, change, at, new=new)


def _four_weeks() -> list[Transition]:
    """Four changes, two of which broke something; four recoveries; one object flapping."""
    return [
        # A fleet commit breaks apps for 30 min: a failed change.
        _t(20, "GitRepository", "flux-system", Change.REVISION, new=f"main@sha1:{SHA}"),
        _t(20, "Kustomization", "apps", Change.FAILING, minutes=10),
        _t(20, "Kustomization", "apps", Change.RECOVERED, minutes=40),
        # The same commit reaches prod-us-1 and breaks nothing.
        _t(
            13,
            "GitRepository",
            "flux-system",
            Change.REVISION,
            new=f"main@sha1:{SHA}",
            cluster="prod-us-1",
        ),
        # A chart upgrade fails and is fixed four hours later: a failed change.
        _t(
            6,
            "HelmRelease",
            "kube-prometheus-stack",
            Change.REVISION,
            new="66.3.0",
            cluster="prod-us-1",
        ),
        _t(
            6,
            "HelmRelease",
            "kube-prometheus-stack",
            Change.FAILING,
            minutes=2,
            cluster="prod-us-1",
        ),
        _t(
            6,
            "HelmRelease",
            "kube-prometheus-stack",
            Change.RECOVERED,
            minutes=242,
            cluster="prod-us-1",
        ),
        # infra flaps on prod-us-1 days after its last change: not a change failure.
        _t(2, "Kustomization", "infra", Change.FAILING, cluster="prod-us-1"),
        _t(2, "Kustomization", "infra", Change.RECOVERED, minutes=15, cluster="prod-us-1"),
        _t(2, "Kustomization", "infra", Change.FAILING, minutes=60, cluster="prod-us-1"),
        _t(2, "Kustomization", "infra", Change.RECOVERED, minutes=80, cluster="prod-us-1"),
        _t(1, "Kustomization", "infra", Change.FAILING, cluster="prod-us-1"),
        # A source revision that the same cluster had already counted is not a new change.
        _t(1, "OCIRepository", "apps", Change.REVISION, new="v2.4.0@sha256:" + "c" * 64),
    ]


def test_failure_rate_recovery_and_flapping_over_four_weeks() -> None:
    report = change_health("production", _four_weeks(), NOW - dt.timedelta(days=28), NOW)
    assert report.changes == 4
    assert report.revisions == 3  # the fleet commit (twice), the chart, the artifact
    assert report.failed_changes == 2
    assert report.failure_rate == 0.5
    assert report.median_recovery == dt.timedelta(minutes=25)  # of 30, 240, 15, 20 min
    assert report.worst_recovery == dt.timedelta(hours=4)
    assert report.still_failing == 1
    (flap,) = report.flapping
    assert (flap.cluster, flap.name, flap.count) == ("prod-us-1", "infra", 3)
    assert len(report.days) == 28
    assert report.days[-1].day == NOW.date()
    by_day = {d.day: (d.failures, d.recoveries) for d in report.days}
    assert by_day[(NOW - dt.timedelta(days=2)).date()] == (2, 2)


def test_text_says_what_each_figure_counts() -> None:
    text = render_report(
        change_health("production", _four_weeks(), NOW - dt.timedelta(days=28), NOW)
    )
    assert text.splitlines()[0] == (
        "production change health, 28 d: 4 changes, 2 failed (50%), recovery median 25 min"
    )
    assert "Time to recovery: median 25 min, worst 4 h (4 recoveries)" in text
    assert "  Kustomization flux-system/infra on prod-us-1: failed 3 times" in text


def test_missing_history_is_said_not_shown_as_a_healthy_zero() -> None:
    empty = compose_report("production", None, dt.timedelta(days=28), NOW)
    assert empty.no_history
    assert "no history recorded" in render_report(empty)
    short = change_health(
        "production", _four_weeks(), NOW - dt.timedelta(days=28), NOW, NOW - dt.timedelta(days=8)
    )
    assert short.history_from == NOW - dt.timedelta(days=8)
    assert [d.covered for d in short.days].count(False) == 19  # days before the 8th day back
    assert "History only from 2026-11-18 12:00 UTC" in render_report(short)


def test_spans() -> None:
    assert parse_span("28d") == dt.timedelta(days=28)
    assert parse_span("2w") == dt.timedelta(days=14)
    assert parse_span("36h") == dt.timedelta(hours=36)
    for bad in ("0d", "28", "d", "1y"):
        with pytest.raises(ValueError, match="not a span"):
            parse_span(bad)


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", data[16:24])
    return width, height


def test_the_chart_is_a_phone_sized_png_rendered_headless() -> None:
    png = chart_png(change_health("production", _four_weeks(), NOW - dt.timedelta(days=28), NOW))
    assert _png_size(png) == (1200, 675)


@pytest.fixture
def configmap_store(tmp_path: Path) -> Iterator[ConfigMapHistory]:
    with FakeKubeApiServer("history") as server:
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", {"history": (server.url, server.token)}
        )
        api_client = build_api_client(
            ClusterConfig(kubeconfig=kubeconfig, context="history"), KubernetesSettings()
        )
        store = ConfigMapHistory(
            api_client,
            "fluxbot",
            retention=dt.timedelta(days=30),
            flush_seconds=0,
            clock=lambda: NOW,
        )
        try:
            yield store
        finally:
            store.close()
            api_client.close()


def test_both_history_backends_give_the_same_report(
    tmp_path: Path, configmap_store: ConfigMapHistory
) -> None:
    sqlite = SqliteHistory(tmp_path / "history.db")
    try:
        reports = []
        for store in (sqlite, configmap_store):
            store.record_transitions(_four_weeks())
            reports.append(compose_report("production", store, dt.timedelta(days=28), NOW))
    finally:
        sqlite.close()
    assert reports[0] == reports[1]
    assert reports[0].failed_changes == 2


def _fluxbot(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=60,
        check=False,
    )


@pytest.fixture
def recorded(tmp_path: Path) -> Path:
    """A configuration whose SQLite history holds the four weeks, ending now."""
    shift = dt.datetime.now(dt.UTC) - NOW
    store = SqliteHistory(tmp_path / "history.db")
    store.record_transitions(
        [
            Transition(
                t.environment,
                t.cluster,
                t.kind,
                t.namespace,
                t.name,
                t.change,
                t.at + shift,
                new=t.new,
            )
            for t in _four_weeks()
        ]
    )
    store.close()
    config: dict[str, Any] = {
        "history": {"path": str(tmp_path / "history.db"), "retention_days": 30},
        "environments": {
            "production": {"channel": "C0PROD", "clusters": [{"context": "prod-eu-1"}]}
        },
    }
    path = tmp_path / "fluxbot.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_cli_report_text_json_and_png(recorded: Path, tmp_path: Path) -> None:
    text = _fluxbot("report", "production", "--config", str(recorded), cwd=tmp_path)
    assert text.returncode == 0, text.stderr
    assert "4 changes, 2 failed (50%)" in text.stdout
    data = json.loads(
        _fluxbot(
            "report", "production", "--config", str(recorded), "-o", "json", cwd=tmp_path
        ).stdout
    )
    assert data["change_failure_rate"] == 0.5
    assert data["recovery_worst_seconds"] == 4 * 3600
    assert len(data["days"]) == 28
    png = _fluxbot("report", "production", "--config", str(recorded), "-o", "png", cwd=tmp_path)
    assert png.returncode == 0, png.stderr
    assert png.stdout.strip() == "report-production.png"
    assert _png_size((tmp_path / "report-production.png").read_bytes()) == (1200, 675)
    chosen = tmp_path / "out" / "chart.png"
    chosen.parent.mkdir()
    named = _fluxbot(
        "report",
        "production",
        "--config",
        str(recorded),
        "-o",
        "png",
        "--file",
        str(chosen),
        cwd=tmp_path,
    )
    assert named.stdout.strip() == str(chosen)
    assert chosen.exists()


def test_cli_report_bad_input_is_a_usage_error(recorded: Path, tmp_path: Path) -> None:
    bad_span = _fluxbot(
        "report", "production", "--config", str(recorded), "--since", "1y", cwd=tmp_path
    )
    assert bad_span.returncode == 2
    assert "not a span" in bad_span.stderr
    unknown = _fluxbot("report", "prod", "--config", str(recorded), cwd=tmp_path)
    assert unknown.returncode == 2
    demo = _fluxbot("report", "production", "--demo", cwd=tmp_path)
    assert demo.returncode == 0
    assert "no history recorded" in demo.stdout


# --- posting: the figures, then the chart through Slack's external upload flow ----------------


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _layout() -> FleetLayout:
    return FleetLayout(
        (
            EnvironmentLayout("production", "production", "C0PROD", ("prod-eu-1",)),
            EnvironmentLayout("sandbox-a", "sandbox", "C0SANDBOX", ("sb-1",)),
        )
    )


def test_the_report_is_posted_and_its_chart_uploaded_in_three_steps(slack: FakeSlack) -> None:
    # docs.slack.dev files.getUploadURLExternal / files.completeUploadExternal; slack_sdk
    # WebClient.files_upload_v2 runs the three steps.
    report = change_health("production", _four_weeks(), NOW - dt.timedelta(days=7), NOW)
    client = WebClient(slack.bot_token, base_url=slack.api_url)
    ts = SlackReportPoster(client, _layout()).post(report)
    assert [c.method for c in slack.calls()] == [
        "chat.postMessage",
        "files.getUploadURLExternal",
        "files.completeUploadExternal",
    ]
    (upload,) = slack.uploads()
    assert upload["completed"]
    assert upload["length"] == len(upload["data"])
    assert _png_size(upload["data"]) == (1200, 675)
    assert (upload["channel"], upload["thread_ts"]) == ("C0PROD", ts)
    thread = slack.messages("C0PROD", thread_ts=ts)
    assert thread[0]["text"].startswith("production change health, 7 d: ")
    assert thread[1]["files"][0]["name"] == "change-health-production.png"


def test_the_retired_files_upload_is_refused_like_slack_does(slack: FakeSlack) -> None:
    client = WebClient(slack.bot_token, base_url=slack.api_url)
    with pytest.raises(SlackApiError) as refused:
        client.api_call("files.upload", data={"channels": "C0PROD", "content": "x"})
    assert refused.value.response["error"] == "method_deprecated"
    # Completing an upload whose bytes never arrived fails.
    url = client.files_getUploadURLExternal(filename="a.png", length=3)
    with pytest.raises(SlackApiError) as missing:
        client.files_completeUploadExternal(files=[{"id": url["file_id"], "title": "a"}])
    assert missing.value.response["error"] == "file_not_found"


def test_report_message_stays_within_block_kit_limits() -> None:
    for report in (
        change_health("production", _four_weeks(), NOW - dt.timedelta(days=28), NOW),
        compose_report("production", None, dt.timedelta(days=7), NOW),
    ):
        message = report_message(report)
        assert validate_blocks(message.blocks) == []
        assert message.blocks[0]["type"] == "header"


def _config(tmp_path: Path, **production: Any) -> FluxbotConfig:
    path = tmp_path / "fluxbot.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "history": {"path": str(tmp_path / "history.db"), "retention_days": 30},
                "environments": {
                    "production": {
                        "channel": "C0PROD",
                        "clusters": [{"context": "prod-eu-1"}],
                        **production,
                    },
                    "sandbox-a": {"channel": "C0SANDBOX", "clusters": [{"context": "sb-1"}]},
                },
            }
        )
    )
    return load_config(path)


def test_each_slot_is_posted_once_and_sandboxes_get_none(slack: FakeSlack, tmp_path: Path) -> None:
    config = _config(tmp_path)
    history = SqliteHistory(tmp_path / "history.db")
    try:
        history.record_transitions(_four_weeks())
        poster = SlackReportPoster(WebClient(slack.bot_token, base_url=slack.api_url), _layout())
        scheduler = ReportScheduler(config, history, poster, clock=lambda: NOW)
        assert scheduler.environments() == ["production"]
        slot = NOW.replace(hour=9, minute=0)
        assert scheduler.run("production", slot, NOW) is not None
        assert scheduler.run("production", slot, NOW) is None  # a replica or a restart
        assert scheduler.run("sandbox-a", slot, NOW) is None
        posted = slack.messages("C0PROD")
        assert posted[0]["text"] == (
            "production change health, 7 d: 2 changes, 1 failed (50%), recovery median 20 min"
        )
        assert len(slack.uploads()) == 1
    finally:
        history.close()


def test_report_schedule_is_configurable_and_can_be_turned_off(tmp_path: Path) -> None:
    off = _config(tmp_path, report={"enabled": False})
    assert off.report("production") is None
    monthly = _config(tmp_path, report={"schedule": "0 8 1 * *", "window_days": 28})
    settings = monthly.report("production")
    assert settings is not None
    assert (settings.schedule, settings.window_days) == ("0 8 1 * *", 28)
    assert monthly.report("sandbox-a") is None
