"""The fleet a command answers from: a configuration, the built-in demo, or YAML dumps."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

from bot.commands.executor import CommandRunner
from bot.compose import SetupError
from bot.config import FluxbotConfig
from bot.demo import load_demo
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.offline import DumpError, OfflineFleetReader, load_dump

# The environment YAML dumps make when the command names none.
OFFLINE_ENVIRONMENT: Final = "offline"
# How long a session (shell, serve) waits for the first sync before answering anyway.
SYNC_WAIT_SECONDS: Final = 15.0


@dataclass(frozen=True)
class FleetSource:
    """Where the fleet comes from: a configuration, the demo, or YAML dumps (exactly one)."""

    config: FluxbotConfig | None = None
    demo: bool = False
    dumps: tuple[Path, ...] = ()
    # The environment the dumps make up.
    environment: str = OFFLINE_ENVIRONMENT


@dataclass
class Fleet:
    """What a command runs against, and how to release it."""

    runner: CommandRunner
    close: Callable[[], None] = field(default=lambda: None)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def open_fleet(
    source: FleetSource, *, live: bool = False, warn: Callable[[str], None] = lambda _: None
) -> Fleet:
    """The fleet to answer from; `live` keeps a watch cache for long sessions."""
    if source.demo:
        layout, reader = load_demo()
        return Fleet(CommandRunner(layout, reader))
    if source.config is None:
        return Fleet(offline_runner(source.dumps, source.environment))
    config = source.config
    if live:
        from bot.kube.cache import FleetCache  # noqa: PLC0415 - Kubernetes loads only when used

        cache = FleetCache(config).start()
        if not cache.wait_synced(SYNC_WAIT_SECONDS):
            warn("some clusters are not synced yet; their answers say so")
        return Fleet(CommandRunner(config.layout(), cache), close=cache.stop)
    # One answer and exit: listing once is cheaper than starting watches.
    from bot.kube.reader import KubeFleetReader  # noqa: PLC0415 - Kubernetes loads only when used

    kube_reader = KubeFleetReader(config)
    return Fleet(CommandRunner(config.layout(), kube_reader), close=kube_reader.close)


def offline_runner(paths: Sequence[Path], environment: str) -> CommandRunner:
    """A runner over YAML dumps, one cluster per file, all in `environment`."""
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
        raise SetupError(problems)
    layout = FleetLayout((EnvironmentLayout(environment, "offline", None, tuple(names)),))
    return CommandRunner(layout, OfflineFleetReader(clusters))
