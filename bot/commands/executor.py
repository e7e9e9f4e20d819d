"""Run parsed commands against the fleet: resolve names, read clusters, build answers."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from bot.commands.answers import (
    Answer,
    ClusterReport,
    DigestAnswer,
    EnvironmentReport,
    EnvsAnswer,
    ErrorAnswer,
    HelpAnswer,
    IncidentsAnswer,
    ObjectAnswer,
    ObjectMatch,
    StatusAnswer,
    TreeAnswer,
    TreeMatch,
)
from bot.commands.audit import answer_audit
from bot.commands.grammar import (
    ActionCommand,
    AuditCommand,
    Command,
    DigestCommand,
    EnvsCommand,
    GetCommand,
    HelpCommand,
    IncidentsCommand,
    ReportCommand,
    RolloutCommand,
    StatusCommand,
    TreeCommand,
    help_text,
    parse,
)
from bot.commands.report import answer_report
from bot.commands.rollouts import answer_rollout
from bot.digests.composer import DigestComposer
from bot.domain.causes import group_failures
from bot.domain.events import FluxEvent, event_sources, newest_first
from bot.domain.fleet import (
    ClusterStatus,
    ClusterTarget,
    EventReader,
    EventsUnavailable,
    FleetLayout,
    FleetReader,
    FreshnessReporter,
    ObjectFilter,
    sort_objects,
)
from bot.domain.incidents import IncidentRecord
from bot.domain.kinds import HELM_RELEASE, KINDS, KUSTOMIZATION, kind_named, resolve_kind
from bot.domain.rollout import deployed
from bot.domain.status import FluxObject, ObjectRef
from bot.domain.suggest import closest
from bot.domain.tree import build_tree

# Reading Events is a request per object; a `get` matching many clusters reads only a few.
EVENT_MATCH_LIMIT: Final = 5
# The object's and its sources' Events together, newest first.
EVENT_LIMIT: Final = 15


@dataclass(frozen=True, slots=True)
class CommandContext:
    """Where a command was typed: the channel's environment, and how commands are prefixed."""

    default_environment: str | None = None
    # True where "the whole fleet" is not a sensible default (an unmapped Slack channel).
    environment_required: bool = False
    prefix: str = ""


class _Rejected(Exception):
    def __init__(self, answer: ErrorAnswer) -> None:
        self.answer = answer


class CommandRunner:
    """Answers commands for one fleet (layout + reader); chat-agnostic."""

    def __init__(
        self,
        layout: FleetLayout,
        reader: FleetReader,
        digests: DigestComposer | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        incidents: Callable[[str], Sequence[IncidentRecord]] | None = None,
    ) -> None:
        self.layout = layout
        # Open incidents of an environment (from the history store); None: not kept here.
        self.incidents = incidents
        self.reader = reader
        self.clock = clock or (lambda: dt.datetime.now(dt.UTC))
        # Without recorded history, a digest still shows what is broken, but no changes.
        self.digests = digests or DigestComposer(layout, reader, None)

    def handle(self, text: str, context: CommandContext | None = None) -> Answer:
        """Parse and run one command line."""
        return self.run(parse(text), context or CommandContext())

    def run(self, command: Command, context: CommandContext) -> Answer:
        """Run a parsed command; unknown names yield an ErrorAnswer listing the valid ones."""
        try:
            match command:
                case StatusCommand():
                    return self._status(command, context)
                case GetCommand():
                    return self._get(command, context)
                case TreeCommand():
                    return self._tree(command, context)
                case ActionCommand():
                    return ErrorAnswer(
                        f"{command.action} changes the cluster, so it runs in Slack, where fluxbot "
                        "knows who is asking and checks their role."
                    )
                case DigestCommand():
                    environment = self._environment(command.environment, context)
                    if environment is None:
                        return ErrorAnswer("Name an environment.", tuple(self.layout.names))
                    return DigestAnswer(self.digests.compose(environment))
                case IncidentsCommand():
                    return self._incidents(command, context)
                case EnvsCommand():
                    reader = self.reader
                    freshness = reader.freshness() if isinstance(reader, FreshnessReporter) else {}
                    return EnvsAnswer(self.layout, freshness, self.clock())
                case AuditCommand():
                    environment = self._environment(command.environment, context)
                    return answer_audit(environment, self.layout, self.reader, self.clock())
                case ReportCommand():
                    environment = self._environment(command.environment, context)
                    if environment is None:
                        return ErrorAnswer("Name an environment.", tuple(self.layout.names))
                    return answer_report(
                        environment, command.since, self.digests.history, self.clock()
                    )
                case RolloutCommand():
                    return answer_rollout(command, self.layout, self.reader, self.clock())
                case HelpCommand():
                    return HelpAnswer(help_text(command.topic, context.prefix), command.problem)
        except _Rejected as rejected:
            return rejected.answer

    def _incidents(self, command: IncidentsCommand, context: CommandContext) -> IncidentsAnswer:
        named = command.environment or context.default_environment
        # No environment named, nor one of this channel: every environment's incidents.
        chosen = self._environment(named, context) if named else None
        environments = (chosen,) if chosen else tuple(self.layout.names)
        if self.incidents is None:
            return IncidentsAnswer(
                environments, (), "Incidents are raised by `fluxbot serve` with a configuration."
            )
        found = [r for env in environments for r in self.incidents(env)]
        found.sort(key=lambda r: r.failing_since)
        return IncidentsAnswer(environments, tuple(found))

    def _status(self, command: StatusCommand, context: CommandContext) -> StatusAnswer:
        environment = self._environment(command.environment, context)
        targets = self._targets(environment, command.cluster)
        kinds = self._kinds(command.kind)
        scope = ObjectFilter(kinds=kinds)
        shown = ObjectFilter(kinds=kinds, failing_only=command.failing)
        clusters = [
            _cluster_report(status, shown, with_deployed=not kinds)
            for status in (scope.apply(s) for s in self.reader.read(targets, kinds))
        ]
        reports = tuple(
            EnvironmentReport(env, tuple(c for c in clusters if c.environment == env))
            for env in dict.fromkeys(t.environment for t in targets)
        )
        scope_words = kind_named(next(iter(kinds))).title_plural if kinds else "Flux objects"
        return StatusAnswer(reports, scope_words, command.failing, self.clock())

    def _get(self, command: GetCommand, context: CommandContext) -> ObjectAnswer:
        kind = self._kinds(command.kind)
        environment = self._environment(command.environment, context)
        targets = self._targets(environment, command.cluster)
        # Read every kind: dependents of a source are Kustomizations and HelmReleases.
        statuses = self.reader.read(targets)
        flt = ObjectFilter(kinds=kind, namespace=command.namespace, name=command.name)
        matches: list[ObjectMatch] = []
        for status in statuses:
            for obj in status.objects:
                if flt.matches(obj):
                    target = ClusterTarget(status.environment, status.cluster)
                    related = event_sources(obj, {o.key: o for o in status.objects})
                    events, note = self._events(target, obj, related, len(matches))
                    matches.append(
                        ObjectMatch(
                            status.environment,
                            status.cluster,
                            obj,
                            dependents_of(obj, status.objects),
                            events,
                            note,
                            status.freshness,
                            blocked_by(obj, status.objects),
                        )
                    )
        unreadable = tuple(s for s in statuses if s.unreadable is not None)
        (kind_name,) = kind
        suggestions: tuple[str, ...] = ()
        if not matches:
            suggestions = closest(
                command.name,
                (o.name for s in statuses for o in s.objects if o.kind == kind_name),
            )
        # Worst first: what needs attention leads, whatever cluster it is in.
        ordered = worst_first(matches)
        return ObjectAnswer(
            kind_name,
            command.name,
            command.namespace,
            tuple(ordered),
            unreadable,
            self.clock(),
            suggestions,
        )

    def _tree(self, command: TreeCommand, context: CommandContext) -> TreeAnswer | ErrorAnswer:
        kind = self._kinds(command.kind)
        if kind.isdisjoint({KUSTOMIZATION.kind, HELM_RELEASE.kind}):
            return ErrorAnswer(
                "tree shows what a Kustomization or HelmRelease manages.", ("ks", "hr")
            )
        environment = self._environment(command.environment, context)
        statuses = self.reader.read(self._targets(environment, command.cluster))
        flt = ObjectFilter(kinds=kind, namespace=command.namespace, name=command.name)
        matches = tuple(
            TreeMatch(s.environment, s.cluster, build_tree(o, s.objects), s.freshness)
            for s in statuses
            for o in s.objects
            if flt.matches(o)
        )
        unreadable = tuple(s for s in statuses if s.unreadable is not None)
        (kind_name,) = kind
        return TreeAnswer(kind_name, command.name, command.namespace, matches, unreadable)

    def locate(self, command: ActionCommand, context: CommandContext) -> ObjectMatch | ErrorAnswer:
        """The one object an action command names, or why there is not exactly one."""
        found = self.run(
            GetCommand(
                command.kind,
                command.name,
                namespace=command.namespace,
                cluster=command.cluster,
                environment=command.environment,
            ),
            context,
        )
        if isinstance(found, ErrorAnswer):
            return found
        assert isinstance(found, ObjectAnswer)
        if len(found.matches) == 1:
            return found.matches[0]
        if not found.matches:
            where = f" in namespace {command.namespace}" if command.namespace else ""
            return ErrorAnswer(
                f"No {found.kind} named {command.name!r}{where} was found.",
                suggestions=found.suggestions,
            )
        return ErrorAnswer(
            f"{len(found.matches)} objects match; say which with -n and --cluster.",
            tuple(f"{m.object.namespace}/{m.object.name} on {m.cluster}" for m in found.matches),
        )

    def _events(
        self, target: ClusterTarget, obj: FluxObject, related: list[ObjectRef], index: int
    ) -> tuple[tuple[FluxEvent, ...], str]:
        """The object's Events and its sources', as `flux events --for KIND/NAME` shows them."""
        if not isinstance(self.reader, EventReader):
            return (), ""
        if index >= EVENT_MATCH_LIMIT:
            return (), "events shown for the first matches only; narrow with --cluster"
        try:
            own = self.reader.events(target, obj.ref)
        except EventsUnavailable as err:
            return (), f"events could not be read: {err}"
        found = [_about(e, obj.ref) for e in own]
        notes = []
        for ref in related:
            try:
                found += [_about(e, ref) for e in self.reader.events(target, ref)]
            except EventsUnavailable as err:
                notes.append(f"events of {ref} could not be read: {err}")
        return tuple(newest_first(found, EVENT_LIMIT)), "; ".join(notes)

    def _environment(self, name: str | None, context: CommandContext) -> str | None:
        chosen = name or context.default_environment
        if chosen is None:
            if context.environment_required:
                raise _Rejected(
                    ErrorAnswer(
                        "This channel is not mapped to an environment; name one.",
                        tuple(self.layout.names),
                    )
                )
            return None
        found = self.layout.resolve(chosen)
        if found is None:
            known = [*self.layout.names, *(a for e in self.layout.environments for a in e.aliases)]
            raise _Rejected(
                ErrorAnswer(
                    f"Unknown environment {chosen!r}.",
                    tuple(self.layout.names),
                    _suggest(chosen, known, self.layout),
                )
            )
        return found.name

    def _targets(self, environment: str | None, cluster: str | None) -> list[ClusterTarget]:
        targets = self.layout.targets(environment)
        if cluster is None:
            return targets
        chosen = [t for t in targets if t.cluster == cluster]
        if not chosen:
            where = f" in {environment}" if environment else ""
            names = [t.cluster for t in targets]
            elsewhere = [t for t in self.layout.targets() if t.cluster == cluster]
            message = f"Unknown cluster {cluster!r}{where}."
            if elsewhere:
                message = (
                    f"Cluster {cluster!r} is in {elsewhere[0].environment}, not {environment}."
                )
            raise _Rejected(ErrorAnswer(message, tuple(names), closest(cluster, names)))
        return chosen

    @staticmethod
    def _kinds(name: str | None) -> frozenset[str]:
        if name is None:
            return frozenset()
        kind = resolve_kind(name)
        if kind is None:
            spellings = {a: k.kind for k in KINDS for a in (k.kind, *k.aliases)}
            suggested = tuple(dict.fromkeys(spellings[s] for s in closest(name, spellings)))
            raise _Rejected(
                ErrorAnswer(
                    f"Unknown kind {name!r}.",
                    tuple(f"{k.kind} ({', '.join(k.aliases)})" for k in KINDS),
                    suggested,
                )
            )
        return frozenset({kind.kind})


def _about(event: FluxEvent, ref: ObjectRef) -> FluxEvent:
    # Readers select by kind and name; the event is about `ref` whatever it recorded.
    return event if event.involved == ref else replace(event, involved=ref)


def _suggest(word: str, known: Iterable[str], layout: FleetLayout) -> tuple[str, ...]:
    """Close environment names or aliases, each given as the environment it stands for."""
    out = []
    for name in closest(word, known):
        env = layout.resolve(name)
        if env is not None:
            out.append(env.name if env.name == name else f"{name} ({env.name})")
    return tuple(dict.fromkeys(out))


def worst_first(matches: Iterable[ObjectMatch]) -> list[ObjectMatch]:
    """Failing, then progressing, suspended, ready."""
    return sorted(matches, key=lambda m: m.object.health.rank)


def blocked_by(root: FluxObject, objects: Iterable[FluxObject]) -> tuple[FluxObject, ...]:
    """The failing objects whose root cause is `root` (empty unless `root` is one)."""
    group = next((g for g in group_failures(objects) if g.root.ref == root.ref), None)
    return group.dependents if group else ()


def dependents_of(target: FluxObject, objects: tuple[FluxObject, ...]) -> tuple[FluxObject, ...]:
    """Objects that use `target`: as their source, as a dependency, or as their owner."""
    ref = target.ref
    return tuple(
        o
        for o in objects
        if o.source_ref == ref or ref in o.depends_on or (o.owner == ref and o is not target)
    )


def _cluster_report(
    status: ClusterStatus, shown: ObjectFilter, *, with_deployed: bool
) -> ClusterReport:
    """One cluster's report; what it derives is kept with the status's views, so asking
    again about an unchanged cluster (the watch cache) costs only the rendering."""
    views = status.views
    # `status` holds exactly the scope; what is listed differs only by --failing.
    key = ("status", shown.failing_only)
    return ClusterReport(
        status,
        views.get(
            ("shown", key),
            lambda: tuple(sort_objects(o for o in status.objects if shown.matches(o))),
        ),
        views.get("causes", lambda: tuple(group_failures(status.objects))),
        # What is deployed needs every kind; a --kind answer goes without it.
        views.get("deployed", lambda: deployed(status)) if with_deployed else None,
        view_key=key,
    )
