"""The configured history store: SQLite on a volume, or ConfigMaps in the home cluster."""

from __future__ import annotations

import datetime as dt
from typing import Any

from bot.config import FluxbotConfig
from bot.domain.history import HistoryStore
from bot.history.sqlite import SqliteHistory


def open_history(config: FluxbotConfig, home: Any | None = None) -> HistoryStore:
    """The configured history store; `home` is the home cluster's API client, if already built."""
    settings = config.history
    if settings.backend == "configmap":
        # Imported only when chosen: most installations run one replica on SQLite.
        from bot.history.configmap import ConfigMapHistory  # noqa: PLC0415
        from bot.kube.clients import home_api_client  # noqa: PLC0415

        return ConfigMapHistory(
            home or home_api_client(),
            settings.namespace,
            retention=dt.timedelta(days=settings.retention_days),
            # Followers keep their copy current, so a snooze or action saved on any replica
            # reaches the leader's next digest.
            follow=True,
        )
    return SqliteHistory.open_or_recover(settings.path.expanduser())
