"""Post each environment's change-health report on its schedule, once per slot.

Each firing is a slot (environment, time) claimed in the history store under the key
`<environment>#report`, so a second replica or a restart never posts the same report twice.
A report whose slot passed while fluxbot was down is not posted late: the next one covers it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from typing import Any, Protocol

from apscheduler.schedulers.background import BackgroundScheduler

from bot.config import FluxbotConfig
from bot.domain.change_health import ChangeHealth
from bot.domain.history import HistoryStore, RunState
from bot.domain.schedule import cron_trigger
from bot.reports.compose import compose_report

log = logging.getLogger(__name__)


class ReportPoster(Protocol):
    """Posts a report to its environment's channel (the Slack adapter)."""

    def post(self, report: ChangeHealth) -> str:
        """Post; returns the message's ts. Raises on failure."""
        ...


def run_key(environment: str) -> str:
    """The history store's run key of an environment's reports (digests use the name)."""
    return f"{environment}#report"


class ReportScheduler:
    """Runs report slots for every environment with a report."""

    def __init__(
        self,
        config: FluxbotConfig,
        history: HistoryStore,
        poster: ReportPoster,
        is_leader: Callable[[], bool] = lambda: True,
        clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    ) -> None:
        self.config = config
        self.history = history
        self.poster = poster
        self.is_leader = is_leader
        self.clock = clock
        self._scheduler = BackgroundScheduler(timezone=dt.UTC)

    def environments(self) -> list[str]:
        """Environments that get scheduled reports."""
        return [e for e in self.config.environments if self.config.report(e) is not None]

    def start(self) -> ReportScheduler:
        """Schedule every environment's report."""
        for environment in self.environments():
            settings = self.config.report(environment)
            assert settings is not None
            trigger: Any = cron_trigger(settings.schedule, settings.timezone)
            self._scheduler.add_job(
                self._fire, trigger, args=[environment], id=f"report:{environment}"
            )
        self._scheduler.start()
        return self

    def stop(self) -> None:
        """Stop scheduling; a report being posted finishes."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def _fire(self, environment: str) -> None:
        now = self.clock()
        self.run(environment, now.replace(second=0, microsecond=0), now)

    def run(self, environment: str, slot: dt.datetime, now: dt.datetime) -> str | None:
        """Post the report of one slot unless another run has; the message ts, else None."""
        settings = self.config.report(environment)
        if settings is None or not self.is_leader():
            return None
        key = run_key(environment)
        if not self.history.claim_run(key, slot, now):
            return None
        retention = dt.timedelta(days=self.config.history.retention_days)
        report = compose_report(
            environment, self.history, dt.timedelta(days=settings.window_days), now, retention
        )
        try:
            ts = self.poster.post(report)
        except Exception as err:
            # Logged with its environment; the slot stays FAILED so a retry may claim it.
            log.exception("change-health report for %s could not be posted", environment)
            self.history.finish_run(key, slot, RunState.FAILED, self.clock(), error=str(err))
            return None
        self.history.finish_run(key, slot, RunState.POSTED, self.clock(), message_ts=ts)
        return ts
