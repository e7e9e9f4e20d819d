"""Scheduled digests: posted once per slot, caught up after downtime, retried, never doubled.

The scheduler runs in-process with a settable clock, the real Slack poster talks to the fake
Slack Web API over HTTP, and history lives in a real SQLite file.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient

from bot.config import FluxbotConfig
from bot.digests.composer import DigestComposer
from bot.digests.scheduler import DigestScheduler, last_fire_time
from bot.domain.history import ActionRecord, RunState
from bot.domain.schedule import cron_trigger
from bot.domain.status import parse_flux_object
from bot.domain.transitions import Change, Transition
from bot.history.sqlite import SqliteHistory
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.slack.digest_post import SlackDigestPoster
from bot.slack.responder import retry_handlers
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

CHANNEL = "C0PROD"
MONDAY_9 = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)


class Clock:
    """A clock the test moves."""

    def __init__(self, now: dt.datetime) -> None:
        self.now = now

    def __call__(self) -> dt.datetime:
        return self.now


def _config(**digest: Any) -> FluxbotConfig:
    return FluxbotConfig.model_validate(
        {
            "environments": {
                "production": {
                    "channel": CHANNEL,
                    "clusters": [{"context": "prod-eu-1"}],
                    "digest": {"schedule": "0 9 * * 1-5", **digest},
                }
            }
        }
    )


def _reader(failing: bool) -> OfflineFleetReader:
    ready = (
        condition("Ready", "False", "GitOperationFailed", "authentication required")
        if failing
        else condition()
    )
    objects = (
        parse_flux_object(flux_object("GitRepository", "platform", conditions=[ready])),
        parse_flux_object(flux_object("Kustomization", "apps", conditions=[condition()])),
    )
    return OfflineFleetReader([OfflineCluster("production", "prod-eu-1", objects)])


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    with FakeSlack() as fake:
        yield fake


def _scheduler(
    slack: FakeSlack, db: Path, clock: Clock, *, failing: bool = True, **digest: Any
) -> tuple[DigestScheduler, SqliteHistory]:
    config = _config(**digest)
    history = SqliteHistory(db)
    composer = DigestComposer(config.layout(), _reader(failing), history, clock)
    client = WebClient(slack.bot_token, base_url=slack.api_url, retry_handlers=retry_handlers(2))
    poster = SlackDigestPoster(client, config.layout(), None)
    return DigestScheduler(config, composer, poster, history, clock=clock), history


def _posts(slack: FakeSlack) -> list[dict[str, Any]]:
    return [c.params for c in slack.calls("chat.postMessage") if c.ok]


def test_a_slot_is_posted_once_across_runs_restarts_and_replicas(
    slack: FakeSlack, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_9 + dt.timedelta(minutes=1))
    first, _ = _scheduler(slack, tmp_path / "h.db", clock)
    assert first.run_slot("production", MONDAY_9) is RunState.POSTED
    assert first.run_slot("production", MONDAY_9) is None
    restarted, history = _scheduler(slack, tmp_path / "h.db", clock)
    assert restarted.run_due("production") is None
    top, details = _posts(slack)
    assert top["text"] == "production: platform on prod-eu-1: authentication required"
    assert details["thread_ts"] == history.last_run("production", [RunState.POSTED]).message_ts  # type: ignore[union-attr]
    assert "authentication required" in str(details["blocks"])


def test_a_slot_missed_while_down_is_posted_within_grace_and_skipped_after(
    slack: FakeSlack, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_9 + dt.timedelta(minutes=90))
    late, _ = _scheduler(slack, tmp_path / "a.db", clock, grace_minutes=120)
    assert late.run_due("production") is RunState.POSTED
    clock.now = MONDAY_9 + dt.timedelta(hours=3)
    too_late, _ = _scheduler(slack, tmp_path / "b.db", clock, grace_minutes=120)
    assert too_late.run_due("production") is None
    assert len(_posts(slack)) == 2  # one digest: its short message and its thread


def test_the_schedule_is_read_in_its_time_zone_with_crontab_weekdays() -> None:
    new_york = cron_trigger("0 9 * * 1-5", "America/New_York")
    fired = last_fire_time(new_york, MONDAY_9 + dt.timedelta(hours=6), dt.timedelta(hours=7))
    assert fired == dt.datetime(2026, 11, 23, 14, 0, tzinfo=dt.UTC)
    # 1-5 is Monday to Friday, as in crontab: nothing fires on Saturday 28 November.
    weekdays = cron_trigger("0 9 * * 1-5", "UTC")
    saturday_noon = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
    assert last_fire_time(weekdays, saturday_noon, dt.timedelta(hours=12)) is None
    sundays = cron_trigger("30 8 * * 0", "UTC")
    assert sundays.get_next_fire_time(None, MONDAY_9).weekday() == 6


@pytest.mark.parametrize(("quiet", "posts"), [("skip", 0), ("line", 1)])
def test_an_all_well_environment_gets_one_line_or_nothing(
    slack: FakeSlack, tmp_path: Path, quiet: str, posts: int
) -> None:
    clock = Clock(MONDAY_9)
    scheduler, _ = _scheduler(
        slack, tmp_path / "h.db", clock, failing=False, quiet_when_healthy=quiet
    )
    expected = RunState.SKIPPED if quiet == "skip" else RunState.POSTED
    assert scheduler.run_slot("production", MONDAY_9) is expected
    messages = _posts(slack)
    assert len(messages) == posts
    if posts:
        assert messages[0]["text"].startswith("production: all 2 objects ready, no changes since")


def test_changes_since_the_last_digest_come_from_recorded_history(
    slack: FakeSlack, tmp_path: Path
) -> None:
    clock = Clock(MONDAY_9)
    scheduler, history = _scheduler(slack, tmp_path / "h.db", clock)
    scheduler.run_slot("production", MONDAY_9)
    at = MONDAY_9 + dt.timedelta(hours=3)
    history.record_transitions(
        [
            Transition(
                "production",
                "prod-eu-1",
                "Kustomization",
                "flux-system",
                "apps",
                Change.REVISION,
                at,
                "main@sha1:" + "a" * 40,
                "main@sha1:" + "b" * 40,
            )
        ]
    )
    history.record_action(
        ActionRecord(
            at,
            "production",
            "prod-eu-1",
            "GitRepository",
            "flux-system",
            "platform",
            "reconcile",
            "alice",
            False,
            "failed",
        )
    )
    clock.now = MONDAY_9 + dt.timedelta(days=1)
    assert scheduler.run_slot("production", clock.now) is RunState.POSTED
    details = _posts(slack)[-1]
    text = str(details["blocks"])
    # Shortened as flux get shortens it, naming the object that moved.
    assert "`main@sha1:bbbbbbbb` applied to 1 object(s) on prod-eu-1: Kustomization `apps`" in text
    assert "alice ran *reconcile*" in text
    # The first digest's own changes are not repeated.
    assert "Changes since" in text


def test_a_rate_limited_post_is_retried_after_retry_after(slack: FakeSlack, tmp_path: Path) -> None:
    slack.rate_limit("chat.postMessage", times=1, retry_after=1)
    scheduler, _ = _scheduler(slack, tmp_path / "h.db", Clock(MONDAY_9))
    assert scheduler.run_slot("production", MONDAY_9) is RunState.POSTED
    statuses = [c.status for c in slack.calls("chat.postMessage")]
    assert statuses[0] == 429
    assert len(_posts(slack)) == 2


def test_a_post_that_fails_is_recorded_surfaced_and_retried_not_dropped(
    slack: FakeSlack, tmp_path: Path
) -> None:
    slack.fail("chat.postMessage", error="channel_not_found", status=200, times=None)
    clock = Clock(MONDAY_9)
    scheduler, history = _scheduler(slack, tmp_path / "h.db", clock)
    assert scheduler.run_slot("production", MONDAY_9) is RunState.FAILED
    assert "channel_not_found" in scheduler.failures["production"]
    failed = history.last_run("production", [RunState.FAILED])
    assert failed is not None
    slack.clear_faults()
    clock.now = MONDAY_9 + dt.timedelta(minutes=1)
    assert scheduler.run_slot("production", MONDAY_9) is RunState.POSTED
    assert "production" not in scheduler.failures
    assert len(_posts(slack)) == 2


def test_only_the_leader_posts(slack: FakeSlack, tmp_path: Path) -> None:
    scheduler, _ = _scheduler(slack, tmp_path / "h.db", Clock(MONDAY_9))
    scheduler.is_leader = lambda: False
    assert scheduler.run_slot("production", MONDAY_9) is None
    assert _posts(slack) == []


def test_sandboxes_get_no_digest_unless_configured() -> None:
    config = FluxbotConfig.model_validate(
        {
            "environments": {
                "sandbox-a": {"channel": "C0SB", "clusters": [{"context": "a"}]},
                "sandbox-b": {"channel": "C0SB2", "clusters": [{"context": "b"}], "digest": {}},
                "staging": {"channel": "C0ST", "clusters": [{"context": "c"}]},
            }
        }
    )
    assert config.digest("sandbox-a") is None
    assert config.digest("sandbox-b") is not None
    assert config.digest("staging") is not None
