"""Run one digest: the one path both the scheduler and `fluxbot digest` take.

A run belongs to a *slot*: the scheduled time of the environment's digest it stands for. The
history store lets exactly one run claim a slot, so a retrying CronJob, a person running
`fluxbot digest` twice, a restart or a second replica never post the same digest twice.
`force` runs outside the schedule on purpose: the slot is the moment of the run itself.

The steps, in order: claim the slot, compose, skip when all is well and the environment
asked for quiet (`quiet_when_healthy: skip`), deliver, record how it ended, and when delivery
failed, say when to try again (with backoff, until the slot's grace period ends).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final, Protocol

from bot.config import DigestConfig, FluxbotConfig
from bot.digests.composer import DigestComposer
from bot.domain.digest import Digest
from bot.domain.history import DigestRun, HistoryStore, RunState
from bot.domain.schedule import cron_trigger

log = logging.getLogger(__name__)

RETRY_DELAYS: Final = (30.0, 60.0, 120.0, 300.0, 600.0)
# A run marked "posting" longer than this died mid-post (the stores' claim timeout, plus a tick).
CLAIM_LAPSE: Final = dt.timedelta(minutes=5, seconds=5)


class DigestPoster(Protocol):
    """Posts a digest to its environment's channel (the Slack adapter)."""

    def post(self, digest: Digest, settings: DigestConfig) -> str:
        """Post; returns the top-level message's ts. Raises on failure."""
        ...


class Outcome(StrEnum):
    """How a run ended."""

    POSTED = "posted"
    SKIPPED = "skipped"  # all is well and the environment asked for quiet
    FAILED = "failed"
    ALREADY_DONE = "already-done"  # another run posted or skipped this slot
    IN_PROGRESS = "in-progress"  # another run is posting this slot right now


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one run did, and what the caller may do next."""

    environment: str
    slot: dt.datetime
    outcome: Outcome
    digest: Digest | None = None
    message_ts: str = ""
    error: str = ""
    # The run that had already handled the slot (ALREADY_DONE, IN_PROGRESS).
    previous: DigestRun | None = None
    # When to try this slot again (FAILED within grace; IN_PROGRESS: when its claim lapses).
    retry_at: dt.datetime | None = None


def last_fire_time(trigger: Any, now: dt.datetime, lookback: dt.timedelta) -> dt.datetime | None:
    """The latest time `trigger` fired at or before `now`, looking back at most `lookback`."""
    fire = trigger.get_next_fire_time(None, now - lookback)
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return last.astimezone(dt.UTC) if last is not None else None


class DigestRuns:
    """The digest-run use case over one configuration, composer, poster and history."""

    def __init__(
        self,
        config: FluxbotConfig,
        composer: DigestComposer,
        poster: DigestPoster,
        history: HistoryStore,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self.composer = composer
        self.poster = poster
        self.history = history
        self.clock = clock

    def trigger(self, environment: str) -> Any:
        """The cron trigger of `environment`'s digest; None when it has no schedule."""
        settings = self.config.digest(environment)
        return None if settings is None else cron_trigger(settings.schedule, settings.timezone)

    def current_slot(self, environment: str, lookback: dt.timedelta) -> dt.datetime | None:
        """The latest scheduled time of `environment`'s digest within `lookback` of now."""
        trigger = self.trigger(environment)
        if trigger is None:
            return None
        return last_fire_time(trigger, self.clock(), lookback)

    def run(
        self, environment: str, slot: dt.datetime, settings: DigestConfig | None = None
    ) -> RunResult:
        """Claim `slot`, compose, skip when quiet, deliver, finish; say when to retry."""
        settings = settings or self.config.digest(environment) or DigestConfig()
        now = self.clock()
        if not self.history.claim_run(environment, slot, now):
            return self._not_claimed(environment, slot, settings)
        try:
            digest = self.composer.compose(environment, now)
            if digest.healthy and settings.quiet_when_healthy == "skip":
                self.history.finish_run(environment, slot, RunState.SKIPPED, self.clock())
                log.info("digest %s at %s skipped: all is well", environment, slot)
                return RunResult(environment, slot, Outcome.SKIPPED, digest)
            ts = self.poster.post(digest, settings)
        except Exception as err:  # noqa: BLE001 - a failed run is recorded, surfaced and retried
            message = f"{type(err).__name__}: {err}"
            failed_at = self.clock()
            self.history.finish_run(environment, slot, RunState.FAILED, failed_at, error=message)
            log.error("digest %s at %s could not be posted: %s", environment, slot, message)
            return RunResult(
                environment,
                slot,
                Outcome.FAILED,
                error=message,
                retry_at=self._retry_at(environment, slot, settings, failed_at),
            )
        self.history.finish_run(environment, slot, RunState.POSTED, self.clock(), message_ts=ts)
        log.info("digest %s at %s posted (ts %s)", environment, slot, ts)
        return RunResult(environment, slot, Outcome.POSTED, digest, message_ts=ts)

    def _not_claimed(
        self, environment: str, slot: dt.datetime, settings: DigestConfig
    ) -> RunResult:
        running = self.history.last_run(environment, [RunState.POSTING])
        if running is not None and running.scheduled_for == slot:
            # Another run is posting it, or died doing so: look again once its claim lapses.
            when = running.updated_at + CLAIM_LAPSE
            within = when - slot <= dt.timedelta(minutes=settings.grace_minutes)
            return RunResult(
                environment,
                slot,
                Outcome.IN_PROGRESS,
                previous=running,
                retry_at=when if within else None,
            )
        done = self.history.last_run(environment, [RunState.POSTED, RunState.SKIPPED])
        previous = done if done is not None and done.scheduled_for == slot else None
        return RunResult(environment, slot, Outcome.ALREADY_DONE, previous=previous)

    def _retry_at(
        self, environment: str, slot: dt.datetime, settings: DigestConfig, now: dt.datetime
    ) -> dt.datetime | None:
        run = self.history.last_run(environment, [RunState.FAILED])
        attempts = run.attempts if run is not None and run.scheduled_for == slot else 1
        delay = RETRY_DELAYS[min(max(attempts, 1), len(RETRY_DELAYS)) - 1]
        when = now + dt.timedelta(seconds=delay)
        if when - slot > dt.timedelta(minutes=settings.grace_minutes):
            log.error("digest %s at %s is past its grace period; giving up", environment, slot)
            return None
        return when
