"""The built-in demo fleet: realistic Flux objects for development, staging and production.

Each `<environment>/<cluster>.yaml` beside this file is one cluster, a `kubectl get -o yaml`
dump. The demo runs through the same offline reader as `fluxbot status --from-file`.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from bot.config import infer_tier
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.offline import OfflineCluster, OfflineFleetReader, load_dump

# Environments in the order people think of them, not alphabetical.
DEMO_ENVIRONMENTS = ("development", "staging", "production")


def demo_directory() -> Path:
    """Where the demo dumps are installed."""
    return Path(str(resources.files(__package__)))


def demo_channel(environment: str) -> str:
    """The made-up Slack channel ID of a demo environment."""
    return "CDEMO" + environment.upper().replace("-", "")[:6]


def load_demo() -> tuple[FleetLayout, OfflineFleetReader]:
    """The demo fleet's layout and a reader over its clusters."""
    root = demo_directory()
    clusters: list[OfflineCluster] = []
    environments = []
    for env in DEMO_ENVIRONMENTS:
        files = sorted((root / env).glob("*.yaml"))
        loaded = [load_dump(path, env) for path in files]
        clusters += loaded
        tier = infer_tier(env)
        environments.append(
            EnvironmentLayout(
                name=env,
                tier=tier.value if tier else env,
                channel=demo_channel(env),
                clusters=tuple(c.name for c in loaded),
            )
        )
    return FleetLayout(tuple(environments)), OfflineFleetReader(clusters)
