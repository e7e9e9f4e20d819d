"""Post each environment's digest on its schedule: once, even across restarts and replicas.

APScheduler fires the cron schedules. Each firing is a *slot* (environment, scheduled time)
that the history store lets exactly one run claim, so a restart or a second replica never
posts the same digest twice. At start, a slot missed while fluxbot was down is posted if it
is still within the grace period. A post that fails is retried with backoff until the grace
period ends, and surfaced in logs and metrics, never silently dropped.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Any, Final, Protocol

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger

from bot.config import DigestConfig, FluxbotConfig
from bot.digests.composer import DigestComposer, digest_environments
from bot.domain.digest import Digest
from bot.domain.history import HistoryStore, RunState
from bot.domain.schedule import cron_trigger
from bot.observability import metrics

log = logging.getLogger(__name__)

RETRY_DELAYS: Final = (30.0, 60.0, 120.0, 300.0, 600.0)
# A run marked "posting" longer than this died mid-post (the SQLite store's claim timeout).
CLAIM_LAPSE: Final = dt.timedelta(minutes=5, seconds=5)


class DigestPoster(Protocol):
    """Posts a digest to its environment's channel (the Slack adapter)."""

    def post(self, digest: Digest, settings: DigestConfig) -> str:
        """Post; returns the top-level message's ts. Raises on failure."""
        ...


def last_fire_time(trigger: Any, now: dt.datetime, lookback: dt.timedelta) -> dt.datetime | None:
    """The latest time `trigger` fired at or before `now`, looking back at most `lookback`."""
    fire = trigger.get_next_fire_time(None, now - lookback)
    last = None
    while fire is not None and fire <= now:
        last = fire
        fire = trigger.get_next_fire_time(fire, fire + dt.timedelta(seconds=1))
    return last.astimezone(dt.UTC) if last is not None else None


class DigestScheduler:
    """Runs digest slots for every environment with a digest."""

    def __init__(
        self,
        config: FluxbotConfig,
        composer: DigestComposer,
        poster: DigestPoster,
        history: HistoryStore,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
        on_result: Callable[[str, str], None] | None = None,
    ) -> None:
        self.config = config
        self.composer = composer
        self.poster = poster
        self.history = history
        self.is_leader = is_leader
        self.clock = clock
        self.on_result = on_result
        self.failures: dict[str, str] = {}
        self._scheduler = BackgroundScheduler(timezone=dt.UTC)
        self._lock = threading.Lock()

    def _trigger(self, environment: str) -> Any:
        settings = self.config.digest(environment)
        assert settings is not None
        return cron_trigger(settings.schedule, settings.timezone)

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
        settings = self.config.digest(environment)
        if settings is None or not self.is_leader():
            return None
        with self._lock:
            now = self.clock()
            if not self.history.claim_run(environment, slot, now):
                self._after_crash(environment, slot)
                return None
        try:
            digest = self.composer.compose(environment, now)
            if digest.healthy and settings.quiet_when_healthy == "skip":
                self.history.finish_run(environment, slot, RunState.SKIPPED, self.clock())
                log.info("digest %s at %s skipped: all is well", environment, slot)
                self._report(environment, "skipped")
                return RunState.SKIPPED
            ts = self.poster.post(digest, settings)
        except Exception as err:  # noqa: BLE001 - a failed post is retried and surfaced
            message = f"{type(err).__name__}: {err}"
            self.history.finish_run(environment, slot, RunState.FAILED, self.clock(), error=message)
            self.failures[environment] = message
            log.error("digest %s at %s could not be posted: %s", environment, slot, message)
            self._report(environment, "failed")
            self._retry_later(environment, slot, settings)
            return RunState.FAILED
        self.history.finish_run(environment, slot, RunState.POSTED, self.clock(), message_ts=ts)
        self.failures.pop(environment, None)
        log.info("digest %s at %s posted (ts %s)", environment, slot, ts)
        self._report(environment, "posted")
        return RunState.POSTED

    def _after_crash(self, environment: str, slot: dt.datetime) -> None:
        """A slot another run is posting: if that run died, try again once its claim lapses."""
        running = self.history.last_run(environment, [RunState.POSTING])
        settings = self.config.digest(environment)
        if running is None or running.scheduled_for != slot or settings is None:
            log.debug("digest %s at %s already handled", environment, slot)
            return
        when = running.updated_at + CLAIM_LAPSE
        grace = dt.timedelta(minutes=settings.grace_minutes)
        if when - slot <= grace and self._scheduler.running:
            log.info(
                "digest %s at %s is marked as being posted; checking again at %s",
                environment,
                slot,
                when,
            )
            self._scheduler.add_job(
                self.run_slot, DateTrigger(run_date=when), args=[environment, slot]
            )

    def prune(self) -> None:
        """Forget history older than the retention."""
        before = self.clock() - dt.timedelta(days=self.config.history.retention_days)
        removed = self.history.prune(before)
        log.info("pruned %d history records older than %s", removed, before)

    def _retry_later(self, environment: str, slot: dt.datetime, settings: DigestConfig) -> None:
        run = self.history.last_run(environment, [RunState.FAILED])
        attempts = run.attempts if run is not None else 1
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        when = self.clock() + dt.timedelta(seconds=delay)
        if (
            when - slot > dt.timedelta(minutes=settings.grace_minutes)
            or not self._scheduler.running
        ):
            log.error("digest %s at %s is past its grace period; giving up", environment, slot)
            return
        self._scheduler.add_job(self.run_slot, DateTrigger(run_date=when), args=[environment, slot])

    def _report(self, environment: str, result: str) -> None:
        metrics.record_digest_post(environment, result)
        if self.on_result is not None:
            self.on_result(environment, result)
