"""Post each environment's digest on its schedule: once, even across restarts and replicas.

APScheduler fires the cron schedules. Each firing is a *slot* (environment, scheduled time)
that the history store lets exactly one run claim, so a restart or a second replica never
posts the same digest twice. At start, a slot missed while fluxbot was down is posted if it
is still within the grace period. A post that fails is retried with backoff until the grace
period ends, and surfaced in logs and metrics, never silently dropped. Each run goes through
`bot.digests.run.DigestRuns`, the same path `fluxbot digest` takes.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from bot.config import FluxbotConfig
from bot.digests.composer import DigestComposer, digest_environments
from bot.digests.run import (
    DigestPoster,
    DigestRuns,
    Outcome,
    RunResult,
    last_fire_time,
)
from bot.domain.history import HistoryStore, RunState
from bot.observability import metrics

__all__ = ["DigestPoster", "DigestScheduler", "last_fire_time"]

log = logging.getLogger(__name__)


class DigestScheduler:
    """Runs digest slots for every environment with a digest, through `DigestRuns`."""

    def __init__(
        self,
        config: FluxbotConfig,
        composer: DigestComposer,
        poster: DigestPoster,
        history: HistoryStore,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self.runs = DigestRuns(config, composer, poster, history, clock)
        self.history = history
        self.is_leader = is_leader
        self.clock = clock
        self.failures: dict[str, str] = {}
        self._scheduler = BackgroundScheduler(timezone=dt.UTC)
        self._lock = threading.Lock()

    def _trigger(self, environment: str) -> Any:
        trigger = self.runs.trigger(environment)
        assert trigger is not None
        return trigger

    def start(self) -> DigestScheduler:
        """Schedule every environment, and catch up on slots missed while down."""
        for environment in digest_environments(self.config):
            settings = self.config.digest(environment)
            assert settings is not None
            self._scheduler.add_job(
                self.run_due,
                self._trigger(environment),
                args=[environment],
                id=f"digest-{environment}",
                coalesce=True,
                max_instances=1,
                misfire_grace_time=settings.grace_minutes * 60 or 1,
            )
        self._scheduler.add_job(self.prune, "interval", hours=6, id="history-prune")
        self._scheduler.start()
        for environment in digest_environments(self.config):
            self._scheduler.add_job(self.run_due, DateTrigger(), args=[environment])
        return self

    def stop(self) -> None:
        """Stop scheduling; a run under way finishes."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=True)

    def run_due(self, environment: str) -> RunState | None:
        """Run the latest slot of `environment` if it is within its grace period."""
        settings = self.config.digest(environment)
        if settings is None:
            return None
        now = self.clock()
        grace = dt.timedelta(minutes=settings.grace_minutes)
        slot = last_fire_time(self._trigger(environment), now, grace + dt.timedelta(minutes=1))
        if slot is None or now - slot > grace:
            return None
        return self.run_slot(environment, slot)

    def run_slot(self, environment: str, slot: dt.datetime) -> RunState | None:
        """Post the digest of one slot, unless another run already did."""
        if self.config.digest(environment) is None or not self.is_leader():
            return None
        with self._lock:
            result = self.runs.run(environment, slot)
        return self._handle(result)

    def _handle(self, result: RunResult) -> RunState | None:
        environment, slot = result.environment, result.slot
        if result.outcome is Outcome.POSTED:
            self.failures.pop(environment, None)
            metrics.record_digest_post(environment, RunState.POSTED)
            return RunState.POSTED
        if result.outcome is Outcome.SKIPPED:
            metrics.record_digest_post(environment, RunState.SKIPPED)
            return RunState.SKIPPED
        if result.retry_at is not None and self._scheduler.running:
            if result.outcome is Outcome.IN_PROGRESS:
                log.info(
                    "digest %s at %s is marked as being posted; checking again at %s",
                    environment, slot, result.retry_at,
                )  # fmt: skip
            self._scheduler.add_job(
                self.run_slot, DateTrigger(run_date=result.retry_at), args=[environment, slot]
            )
        if result.outcome is Outcome.FAILED:
            self.failures[environment] = result.error
            metrics.record_digest_post(environment, RunState.FAILED)
            return RunState.FAILED
        log.debug("digest %s at %s already handled", environment, slot)
        return None

    def prune(self) -> None:
        """Forget history older than the retention."""
        before = self.clock() - dt.timedelta(days=self.config.history.retention_days)
        removed = self.history.prune(before)
        log.info("pruned %d history records older than %s", removed, before)
