"""What a command answers, as data; each adapter (terminal, Slack) renders it its own way."""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.fleet import ClusterStatus, FleetLayout, HealthCounts
from bot.domain.status import FluxObject


@dataclass(frozen=True, slots=True)
class EnvironmentReport:
    """The status of one environment: each cluster's objects, failures first."""

    name: str
    clusters: tuple[ClusterStatus, ...]

    @property
    def counts(self) -> HealthCounts:
        """Objects per health group across the environment."""
        total = HealthCounts()
        for cluster in self.clusters:
            total = total + cluster.counts
        return total


@dataclass(frozen=True, slots=True)
class StatusAnswer:
    """Answer to `status`: one report per environment asked about."""

    environments: tuple[EnvironmentReport, ...]
    # Human description of the filters applied, e.g. "failing HelmReleases in prod-eu-1".
    scope: str

    @property
    def clusters(self) -> list[ClusterStatus]:
        """Every cluster of every environment in the answer."""
        return [c for env in self.environments for c in env.clusters]


@dataclass(frozen=True, slots=True)
class ObjectMatch:
    """One object found by `get`, with the cluster it lives in."""

    environment: str
    cluster: str
    object: FluxObject
    # Objects in the same cluster that reference this one (dependsOn, sourceRef, owner).
    dependents: tuple[FluxObject, ...]


@dataclass(frozen=True, slots=True)
class ObjectAnswer:
    """Answer to `get`: every match, and clusters that could not be searched."""

    kind: str
    name: str
    namespace: str | None
    matches: tuple[ObjectMatch, ...]
    unreadable: tuple[ClusterStatus, ...]


@dataclass(frozen=True, slots=True)
class EnvsAnswer:
    """Answer to `envs`: the fleet's layout."""

    layout: FleetLayout


@dataclass(frozen=True, slots=True)
class HelpAnswer:
    """Usage help, with what was wrong with the input when that is why it is shown."""

    text: str
    problem: str | None = None


@dataclass(frozen=True, slots=True)
class ErrorAnswer:
    """A request that names something that does not exist, with the names that do."""

    message: str
    choices: tuple[str, ...] = ()


Answer = StatusAnswer | ObjectAnswer | EnvsAnswer | HelpAnswer | ErrorAnswer
