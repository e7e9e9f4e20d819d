"""`fluxbot digest` over a configuration: the scheduler's digest run, once, on demand."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bot.compose.history import open_history
from bot.config import FluxbotConfig
from bot.digests.composer import DigestComposer
from bot.digests.run import DigestRuns
from bot.domain.history import HistoryStore
from bot.kube.reader import KubeFleetReader


@dataclass
class DigestSession:
    """A configuration's digest composer and history store, and how to release them."""

    config: FluxbotConfig
    composer: DigestComposer
    history: HistoryStore
    close: Callable[[], None]

    def __enter__(self) -> DigestSession:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def runs(self) -> DigestRuns:
        """The run the scheduler makes, posting with the Slack credentials in the environment."""
        # Slack loads only to post: a dry run prints.
        from bot.compose.slack import digest_poster  # noqa: PLC0415

        return DigestRuns(self.config, self.composer, digest_poster(self.config), self.history)


def open_digest(config: FluxbotConfig) -> DigestSession:
    """Compose from one listing of the fleet and the recorded history."""
    reader = KubeFleetReader(config)
    history = open_history(config)

    def close() -> None:
        reader.close()
        history.close()

    composer = DigestComposer(config.layout(), reader, history)
    return DigestSession(config, composer, history, close)
