"""Rollouts: which revision of a source every environment and cluster has applied, and how far
each environment is behind the one before it.

Several clusters reconcile the same source (a GitRepository or OCIRepository, matched by name
across clusters). Per cluster, the source holds one artifact revision, and each Kustomization
and HelmRelease built from it has applied some revision: the source's, or an older one while it
waits, fails or is suspended. Environments are read in promotion order (tier: sandbox,
development, staging, production; configuration order within a tier), so a change is seen
moving left to right. Pure: no I/O.

Revisions are compared by their digest (`main@sha1:<sha>` and `production@sha1:<sha>` name the
same commit); a revision without a digest (a chart version) by its text.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import pairwise
from typing import Final

from bot.domain.fleet import (
    ClusterStatus,
    ClusterTrouble,
    EnvironmentLayout,
    FleetLayout,
    TroubleState,
    cluster_trouble,
)
from bot.domain.forges import commit_link
from bot.domain.kinds import HELM_CHART, HELM_RELEASE, KUSTOMIZATION
from bot.domain.status import FluxObject, Health

TIER_ORDER: Final = ("sandbox", "development", "staging", "production")
SOURCE_KINDS: Final = ("GitRepository", "OCIRepository")
# A commit SHA prefix must be at least this long to name one commit (git's own default is 7).
MIN_SHA_PREFIX: Final = 7

_DIGEST: Final = re.compile(
    r"^(?:(?P<ref>.+)@)?(?P<algo>sha1|sha256|sha384|sha512|blake3):(?P<hex>[0-9a-f]+)$"
)
_LEGACY: Final = re.compile(r"^(?P<ref>.+)/(?P<hex>[0-9a-f]{40})$")
_BARE: Final = re.compile(r"^[0-9a-f]{40,128}$")
_HEX: Final = re.compile(r"^[0-9a-f]+$")


@dataclass(frozen=True, slots=True)
class Revision:
    """An artifact revision split into its reference (branch, tag) and digest."""

    raw: str
    ref: str = ""
    digest: str = ""

    @property
    def short(self) -> str:
        """`main@cb83a77d`, `v2.4.0@cd17782c`, `cb83a77d`, or a chart version as it is."""
        if self.digest:
            return f"{self.ref}@{self.digest[:8]}" if self.ref else self.digest[:8]
        return self.raw

    def same(self, other: Revision) -> bool:
        """Whether both name the same content: equal digests, else equal text."""
        if self.digest and other.digest:
            return self.digest == other.digest
        return self.raw == other.raw


def parse_revision(raw: str) -> Revision:
    """Split a Flux revision (`main@sha1:…`, `v1@sha256:…`, `sha1:…`, `main/<sha>`, `6.7.1`)."""
    text = raw.strip()
    if match := _DIGEST.match(text):
        return Revision(text, match.group("ref") or "", match.group("hex"))
    if match := _LEGACY.match(text):
        return Revision(text, match.group("ref"), match.group("hex"))
    if _BARE.match(text):
        return Revision(text, "", text)
    return Revision(text, text, "")


def revision_query_problem(query: str) -> str | None:
    """Why `query` cannot name a revision (a hex prefix shorter than 7), else None."""
    text = query.strip().lower()
    if not text:
        return "--revision needs a commit SHA (7+ characters), a tag or a digest"
    if _HEX.match(text) and len(text) < MIN_SHA_PREFIX:
        return (
            f"{query!r} is too short to name one commit: give at least {MIN_SHA_PREFIX} "
            "characters of the SHA, or a tag"
        )
    return None


def matches_revision(query: str, *revisions: Revision | None) -> bool:
    """Whether any of `revisions` is the one `query` names: a SHA or digest prefix of 7+
    characters, a full revision, or a tag or branch (`v2.4.0`)."""
    text = query.strip()
    wanted = parse_revision(text.lower()) if ("@" in text or ":" in text) else None
    for revision in revisions:
        if revision is None or not revision.raw:
            continue
        if text == revision.raw:
            return True
        if wanted is not None and wanted.digest and revision.digest:
            if revision.digest.startswith(wanted.digest) and (
                not wanted.ref or wanted.ref == revision.ref.lower()
            ):
                return True
        elif _HEX.match(text.lower()) and len(text) >= MIN_SHA_PREFIX:
            if revision.digest.startswith(text.lower()):
                return True
        elif text == revision.ref:
            return True
    return False


@dataclass(frozen=True, slots=True)
class Applied:
    """One Kustomization or HelmRelease built from the source, and what it has applied."""

    object: FluxObject
    revision: Revision
    # Whether it has applied the revision its source holds now.
    current: bool
    since: dt.datetime | None
    # The commit it was built from (a Kustomization's lastAppliedOriginRevision), if known.
    origin: Revision | None = None


@dataclass(frozen=True, slots=True)
class ClusterRollout:
    """One cluster: the source's revision there and what each object built from it applied."""

    environment: str
    cluster: str
    source: FluxObject | None
    revision: Revision | None
    consumers: tuple[Applied, ...] = ()
    # Set when the cluster could not be read or is stale.
    trouble: ClusterTrouble | None = None
    link: str | None = None
    # The Git commit an OCI artifact was built from, when its annotations say.
    origin: Revision | None = None

    @property
    def applied(self) -> int:
        """How many objects built from the source applied its current revision."""
        return sum(1 for a in self.consumers if a.current)

    @property
    def behind(self) -> tuple[Applied, ...]:
        """Objects still on another revision (waiting, failing or suspended)."""
        return tuple(a for a in self.consumers if not a.current)

    @property
    def source_failing(self) -> bool:
        """Whether the source itself fails to fetch (it keeps its last artifact)."""
        return self.source is not None and self.source.health is Health.FAILING

    @property
    def settled(self) -> bool:
        """Source ready and everything built from it on its revision and ready."""
        return (
            self.source is not None
            and self.source.health is Health.READY
            and all(a.current and a.object.health is Health.READY for a in self.consumers)
            and (self.trouble is None or self.trouble.state is TroubleState.SYNCING)
        )

    @property
    def since(self) -> dt.datetime | None:
        """When the revision landed: the last of its objects to apply it, else the fetch."""
        times = [a.since for a in self.consumers if a.current and a.since is not None]
        if times:
            return max(times)
        delivery = self.source.delivery if self.source is not None else None
        return delivery.since if delivery is not None else None

    @property
    def arrived(self) -> dt.datetime | None:
        """When the cluster first had this revision: the source's fetch, else the earliest apply."""
        delivery = self.source.delivery if self.source is not None else None
        if delivery is not None and delivery.since is not None:
            return delivery.since
        times = [a.since for a in self.consumers if a.current and a.since is not None]
        return min(times) if times else None

    def has(self, query: str) -> bool:
        """Whether this cluster's source or any object built from it has `query` applied."""
        if self.revision is not None and matches_revision(query, self.revision, self.origin):
            return any(a.current for a in self.consumers) or not self.consumers
        return any(matches_revision(query, a.revision, a.origin) for a in self.consumers)


@dataclass(frozen=True, slots=True)
class EnvironmentRollout:
    """One environment: its clusters, and the revision most of them hold."""

    name: str
    tier: str
    clusters: tuple[ClusterRollout, ...]

    @property
    def present(self) -> tuple[ClusterRollout, ...]:
        """Clusters that have the source."""
        return tuple(c for c in self.clusters if c.revision is not None)

    @property
    def revision(self) -> Revision | None:
        """The newest revision among the clusters (the one fetched last), if any has one."""
        present = self.present
        healthy = [c for c in present if not c.source_failing] or list(present)
        if not healthy:
            return None
        oldest = dt.datetime.min.replace(tzinfo=dt.UTC)
        newest = max(healthy, key=lambda c: c.arrived or oldest)
        return newest.revision if newest is not None else None

    @property
    def on_revision(self) -> tuple[ClusterRollout, ...]:
        """Clusters settled on the environment's revision."""
        revision = self.revision
        return tuple(
            c
            for c in self.present
            if revision is not None
            and c.revision is not None
            and c.revision.same(revision)
            and c.settled
        )

    @property
    def agree(self) -> bool:
        """Every cluster settled on the same revision."""
        return bool(self.present) and len(self.on_revision) == len(self.clusters)

    @property
    def since(self) -> dt.datetime | None:
        """When the environment's revision had landed everywhere it has (the last cluster)."""
        times = [c.since for c in self.on_revision if c.since is not None]
        return max(times) if times else None

    @property
    def arrived(self) -> dt.datetime | None:
        """When the environment's revision first arrived in one of its clusters."""
        revision = self.revision
        times = [
            c.arrived
            for c in self.present
            if revision is not None
            and c.revision is not None
            and c.revision.same(revision)
            and c.arrived is not None
        ]
        return min(times) if times else None


@dataclass(frozen=True, slots=True)
class PromotionStep:
    """How far one environment is behind the one before it in promotion order."""

    ahead: str
    behind: str
    ahead_revision: Revision
    behind_revision: Revision | None
    # How long the ahead environment has had a revision the behind one has not.
    waiting: dt.timedelta | None

    @property
    def in_step(self) -> bool:
        """Both environments hold the same revision."""
        return self.behind_revision is not None and self.behind_revision.same(self.ahead_revision)


@dataclass(frozen=True, slots=True)
class SourceRollout:
    """One source (by kind and name) across the fleet, environments in promotion order."""

    kind: str
    name: str
    environments: tuple[EnvironmentRollout, ...]
    steps: tuple[PromotionStep, ...]

    @property
    def label(self) -> str:
        """`GitRepository flux-system`."""
        return f"{self.kind} {self.name}"


def promotion_order(layout: FleetLayout) -> list[EnvironmentLayout]:
    """Environments by tier (sandbox, development, staging, production; other tiers last),
    configuration order within a tier."""

    def rank(env: EnvironmentLayout) -> int:
        return TIER_ORDER.index(env.tier) if env.tier in TIER_ORDER else len(TIER_ORDER)

    return sorted(layout.environments, key=rank)


def source_names(statuses: Iterable[ClusterStatus]) -> list[tuple[str, str]]:
    """Every (kind, name) of a Git or OCI source in the clusters, Git first, by name."""
    found = {(o.kind, o.name) for s in statuses for o in s.objects if o.kind in SOURCE_KINDS}
    return sorted(found, key=lambda k: (SOURCE_KINDS.index(k[0]), k[1]))


def rollouts(
    layout: FleetLayout,
    statuses: Sequence[ClusterStatus],
    sources: Iterable[tuple[str, str]],
    now: dt.datetime,
) -> list[SourceRollout]:
    """Each source across the fleet, environments in promotion order."""
    order = promotion_order(layout)
    by_target = {(s.environment, s.cluster): s for s in statuses}
    out = []
    for kind, name in sources:
        environments = []
        for env in order:
            clusters = tuple(
                cluster_rollout(status, kind, name)
                for c in env.clusters
                if (status := by_target.get((env.name, c))) is not None
            )
            if any(c.revision is not None or c.trouble is not None for c in clusters):
                environments.append(EnvironmentRollout(env.name, env.tier, clusters))
        present = [e for e in environments if e.present]
        if not present:
            continue
        out.append(SourceRollout(kind, name, tuple(environments), _steps(present, now)))
    return out


def _steps(
    environments: Sequence[EnvironmentRollout], now: dt.datetime
) -> tuple[PromotionStep, ...]:
    steps = []
    for ahead, behind in pairwise(environments):
        ahead_revision = ahead.revision
        if ahead_revision is None:
            continue
        behind_revision = behind.revision
        waiting = None
        same = behind_revision is not None and behind_revision.same(ahead_revision)
        if not same and ahead.arrived is not None:
            waiting = max(now - ahead.arrived, dt.timedelta(0))
        steps.append(
            PromotionStep(ahead.name, behind.name, ahead_revision, behind_revision, waiting)
        )
    return tuple(steps)


def cluster_rollout(status: ClusterStatus, kind: str, name: str) -> ClusterRollout:
    """The source `kind`/`name` in one cluster and what was built from it."""
    trouble = cluster_trouble(status)
    candidates = [o for o in status.objects if o.kind == kind and o.name == name]
    # Two sources of one name in different namespaces: the bootstrap namespace first.
    candidates.sort(key=lambda o: (o.namespace != "flux-system", o.namespace))
    if not candidates:
        return ClusterRollout(status.environment, status.cluster, None, None, trouble=trouble)
    source = candidates[0]
    revision = parse_revision(source.full_revision) if source.full_revision else None
    consumers = tuple(_applied(o, source, revision) for o in built_from(source, status.objects))
    origin = _origin(source)
    return ClusterRollout(
        status.environment,
        status.cluster,
        source,
        revision,
        consumers,
        trouble,
        source_link(source),
        origin,
    )


def built_from(source: FluxObject, objects: Sequence[FluxObject]) -> list[FluxObject]:
    """Kustomizations and HelmReleases built from `source` (directly, or through a HelmChart)."""
    ref = source.ref
    charts = {o.ref for o in objects if o.kind == HELM_CHART.kind and o.source_ref == ref}
    return sorted(
        (
            o
            for o in objects
            if (o.kind == KUSTOMIZATION.kind and o.source_ref == ref)
            or (
                o.kind == HELM_RELEASE.kind
                and o.source_ref is not None
                and (o.source_ref == ref or o.source_ref in charts)
            )
        ),
        key=lambda o: (o.kind != KUSTOMIZATION.kind, o.namespace, o.name),
    )


def _applied(obj: FluxObject, source: FluxObject, revision: Revision | None) -> Applied:
    delivery = obj.delivery
    since = delivery.since if delivery is not None else None
    applied = parse_revision(obj.full_revision)
    origin = (
        parse_revision(delivery.origin_revision)
        if delivery is not None and delivery.origin_revision
        else None
    )
    if obj.kind == HELM_RELEASE.kind:
        if source.kind == "OCIRepository" and revision is not None:
            # A chartRef to an OCIRepository: helm-controller records the chart version as the
            # artifact's tag plus `+` and the first 12 characters of its digest.
            tagged = f"{revision.ref}+{revision.digest[:12]}" if revision.digest else ""
            current = bool(obj.revision) and obj.revision in (revision.ref, tagged)
        else:
            # A chart built from Git: its version does not name the commit; current when the
            # release runs what it last attempted.
            attempted = delivery.attempted_revision if delivery is not None else ""
            current = obj.health is not Health.FAILING and attempted in ("", obj.revision)
        return Applied(obj, applied, current, since, origin)
    current = bool(obj.full_revision) and revision is not None and applied.same(revision)
    return Applied(obj, applied, current, since, origin)


def _origin(source: FluxObject) -> Revision | None:
    delivery = source.delivery
    if delivery is None or not delivery.origin_revision:
        return None
    return parse_revision(delivery.origin_revision)


def source_link(source: FluxObject) -> str | None:
    """The forge page of the commit a source's artifact comes from, when one is known.

    GitRepository: its URL and revision. OCIRepository: the `org.opencontainers.image.source`
    and `.revision` annotations of the artifact (as `flux push artifact` writes them).
    """
    delivery = source.delivery
    if delivery is None:
        return None
    if source.kind == "GitRepository":
        return commit_link(delivery.url, source.full_revision)
    if delivery.origin_url and delivery.origin_revision:
        return commit_link(delivery.origin_url, delivery.origin_revision)
    return None


@dataclass(frozen=True, slots=True)
class Deployed:
    """A cluster's "what is deployed" line: its root source's revision and who applied it."""

    source: FluxObject
    revision: Revision
    applied: int
    total: int
    since: dt.datetime | None
    link: str | None


def deployed(status: ClusterStatus) -> Deployed | None:
    """The revision of the cluster's root source (what its top Kustomization is built from)."""
    roots = [
        o
        for o in status.objects
        if o.kind == KUSTOMIZATION.kind and o.owner is None and o.source_ref is not None
    ]
    if not roots:
        # Bootstrap applies flux-system with itself as owner; take it when no other root.
        roots = [
            o for o in status.objects if o.kind == KUSTOMIZATION.kind and o.name == "flux-system"
        ]
    roots.sort(key=lambda o: (o.name != "flux-system", o.namespace, o.name))
    for root in roots:
        ref = root.source_ref
        source = next((o for o in status.objects if ref is not None and o.ref == ref), None)
        if source is None or not source.full_revision:
            continue
        rollout = cluster_rollout(status, source.kind, source.name)
        if rollout.revision is None:
            continue
        return Deployed(
            source,
            rollout.revision,
            rollout.applied,
            len(rollout.consumers),
            rollout.since,
            rollout.link,
        )
    return None
