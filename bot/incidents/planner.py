"""When an incident opens, changes, resolves or is re-announced: pure, chat-neutral decisions.

The planner is fed, per environment, what the watch cache knows now (each cluster's objects
and freshness), the snoozes and actions from the history store, and the time. It answers with
effects: publish (post or update) an incident's message, or add a note in its thread. It keeps
the incidents it has raised and the root causes still inside their wait; it does no I/O and
reads no clock, so every rule below is tested by feeding it moments.

- One incident per root cause (`group_failures`) per cluster of an environment, and one
  "cluster unreadable" incident for a cluster that cannot be read (its objects are then not
  judged: stale data neither opens nor resolves anything).
- A root cause is posted once it has been failing for `wait`. A recovery inside the wait
  does not restart the clock when the object fails again within another `wait` (it counts a
  flap), so a flapping object is announced once, with its count; an object that recovers and
  stays recovered for the wait is forgotten, never announced.
- A posted incident is updated in place when what it shows changes: at once for a change of
  state (resolved, reopened, snoozed), at most every REFRESH_INTERVAL for its content
  (dependents, error, last action, a coarse "failing for"). It is re-announced in its thread
  every `repeat`, and resolved in place when its root recovers, saying by what ("alice's
  reconcile", "revision X"). A root failing again within `reopen` of resolving reopens the
  same message.
- A snoozed root raises nothing; snoozing the root of an open incident closes it in place and
  says who snoozed it, in its thread.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final

from bot.domain.action_rules import material_state
from bot.domain.causes import group_failures
from bot.domain.condense import condense
from bot.domain.fleet import CacheState, ClusterStatus
from bot.domain.history import ActionRecord, ObjectKey, Snooze
from bot.domain.incidents import CLUSTER_UNREADABLE, IncidentRecord, IncidentState, incident_id
from bot.domain.status import FluxObject, Health, ObjectRef

# An action's own report replaces the clicked message for a moment; the incident's fresh
# state is published after it, not under it.
ACTION_SETTLE: Final = dt.timedelta(seconds=2)
# A message is refreshed (dependents, error, "failing for") at most this often, so a burst of
# dependents joining costs a few chat.update calls, not one each.
REFRESH_INTERVAL: Final = dt.timedelta(seconds=10)
# An action recorded this soon after its incident resolved is taken to be what resolved it:
# the action is recorded when its outcome is known, after the recovery itself.
RESOLUTION_ACTION: Final = dt.timedelta(seconds=60)

# "Failing for" moves through these steps (minutes), so the message is not edited every minute.
_AGE_STEPS: Final = (0, 1, 2, 5, 10, 15, 30, 45, 60, 90, 120, 180, 240, 360, 480, 720, 1440)


@dataclass(frozen=True, slots=True)
class IncidentSettings:
    """One environment's incident settings, as the planner needs them."""

    channel: str
    wait: dt.timedelta
    repeat: dt.timedelta
    reopen: dt.timedelta
    mention: str | None = None


@dataclass(frozen=True, slots=True)
class Observation:
    """What is known of one environment at one moment."""

    clusters: Sequence[ClusterStatus]
    snoozes: Sequence[Snooze] = ()
    actions: Sequence[ActionRecord] = ()
    failing_since: Mapping[ObjectKey, dt.datetime] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class IncidentView:
    """Everything an incident's message shows, chat-neutral."""

    record: IncidentRecord
    now: dt.datetime
    root: FluxObject | None = None
    dependents: tuple[FluxObject, ...] = ()
    # The root's latest error, condensed; for a cluster, why it cannot be read.
    error: str = ""
    # The latest action on the incident's objects, as "alice's reconcile (failed: …)".
    last_action: str = ""
    mention: str | None = None

    @property
    def age(self) -> dt.timedelta:
        """How long the root cause has been failing (or failed, once resolved)."""
        end = self.record.resolved_at or self.now
        return max(dt.timedelta(0), end - self.record.failing_since)


@dataclass(frozen=True, slots=True)
class Publish:
    """Post the incident's message if it has none yet, else update it in place.

    `urgent`: the incident opened, resolved, reopened or was snoozed; a mere refresh (a
    dependent joined, the error changed) is not, and waits behind urgent ones.
    """

    incident: str
    urgent: bool = True


@dataclass(frozen=True, slots=True)
class Note:
    """A reply in the incident's thread; `mention` pings the environment's user group."""

    incident: str
    text: str
    mention: bool = False


Effect = Publish | Note


@dataclass(frozen=True, slots=True)
class _Candidate:
    cluster: str
    root: FluxObject | None
    dependents: tuple[FluxObject, ...]
    error: str
    since: dt.datetime | None


@dataclass(slots=True)
class _Pending:
    since: dt.datetime
    flaps: int = 0
    recovered_at: dt.datetime | None = None


def describe_age(age: dt.timedelta) -> str:
    """ "12 min", "3 h 5 min", "2 d 4 h": how long, as a reader wants it."""
    minutes = int(age.total_seconds() // 60)
    if minutes < 1:
        return "less than a minute"
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def _age_step(age: dt.timedelta) -> int:
    minutes = age.total_seconds() / 60
    step = 0
    for threshold in _AGE_STEPS:
        if minutes >= threshold:
            step = threshold
    return step if minutes < 1440 else int(minutes // 1440) * 1440


def title(record: IncidentRecord) -> str:
    """ "GitRepository flux-system/podinfo on prod-1", or "cluster prod-1"."""
    if record.is_cluster:
        return f"cluster {record.cluster}"
    return f"{record.kind} {record.namespace}/{record.name} on {record.cluster}"


class IncidentPlanner:
    """The incidents of every environment, and the root causes waiting to become one."""

    def __init__(self) -> None:
        self._records: dict[str, IncidentRecord] = {}
        self._pending: dict[str, _Pending] = {}
        self._live: dict[str, _Candidate] = {}
        self._last_action: dict[str, tuple[dt.datetime, str]] = {}
        self._published: dict[str, tuple[object, ...]] = {}
        self._published_at: dict[str, dt.datetime] = {}
        # Every dependent each incident has had (an action on one that recovered since still
        # belongs to the incident).
        self._ever: dict[str, set[tuple[str, str, str]]] = {}
        self._settings: dict[str, IncidentSettings] = {}
        # Environments evaluated since this planner took over.
        self._seen: set[str] = set()

    # -- state --

    def load(self, records: Sequence[IncidentRecord]) -> None:
        """Take over incidents from the history store (at start, or on becoming leader)."""
        for record in records:
            self._records[record.id] = record
            self._published.pop(record.id, None)

    def forget(self) -> None:
        """Drop everything (this replica stopped leading; the next leader carries on)."""
        self._records.clear()
        self._pending.clear()
        self._live.clear()
        self._last_action.clear()
        self._published.clear()
        self._published_at.clear()
        self._ever.clear()
        self._seen.clear()

    def record(self, incident: str) -> IncidentRecord | None:
        """The incident's record, if it is known."""
        return self._records.get(incident)

    def records(self, environment: str | None = None) -> list[IncidentRecord]:
        """Known incidents, optionally of one environment."""
        return [
            r for r in self._records.values() if environment is None or r.environment == environment
        ]

    def pending(self) -> int:
        """Root causes inside their wait."""
        return len(self._pending)

    def incident_of(
        self, environment: str, cluster: str, key: tuple[str, str, str]
    ) -> IncidentRecord | None:
        """The open incident whose root or a dependent `key` (kind, namespace, name) is."""
        for record in self._records.values():
            if (
                record.open
                and record.environment == environment
                and record.cluster == cluster
                and key in self._members(record)
            ):
                return record
        return None

    def next_due(self) -> dt.datetime | None:
        """When the earliest wait ends (a root cause still failing then gets its message)."""
        due = [
            p.since + self._settings[key.split("/", 1)[0]].wait
            for key, p in self._pending.items()
            if p.recovered_at is None and key.split("/", 1)[0] in self._settings
        ]
        return min(due, default=None)

    def posted(
        self, incident: str, message_ts: str, permalink: str, now: dt.datetime
    ) -> IncidentRecord | None:
        """The incident's message was posted: remember where. Returns the record to save."""
        record = self._records.get(incident)
        if record is None:
            return None
        record = dataclasses.replace(
            record,
            message_ts=message_ts,
            permalink=permalink,
            posted_at=record.posted_at or now,
            announced_at=record.announced_at or now,
        )
        self._records[incident] = record
        return record

    def message_gone(self, incident: str) -> IncidentRecord | None:
        """Its message was deleted: forget it, so an open incident is posted again."""
        record = self._records.get(incident)
        if record is None:
            return None
        record = dataclasses.replace(record, message_ts="", permalink="", posted_at=None)
        self._records[incident] = record
        self._published.pop(incident, None)
        return record

    def view(self, incident: str, now: dt.datetime) -> IncidentView | None:
        """What the incident's message should show now."""
        record = self._records.get(incident)
        if record is None:
            return None
        live = self._live.get(incident)
        settings = self._settings.get(record.environment)
        action = self._last_action.get(incident)
        return IncidentView(
            record=record,
            now=now,
            root=live.root if live else None,
            dependents=live.dependents if live else (),
            error=live.error if live else "",
            last_action=action[1] if action else "",
            mention=settings.mention if settings else None,
        )

    def mark_published(self, incident: str, now: dt.datetime) -> None:
        """The message now shows the current view: publish again only when it changes."""
        view = self.view(incident, now)
        if view is not None:
            self._published[incident] = _signature(view)
            self._published_at[incident] = now

    # -- deciding --

    def evaluate(
        self,
        environment: str,
        settings: IncidentSettings,
        observed: Observation,
        now: dt.datetime,
    ) -> tuple[list[Effect], list[IncidentRecord]]:
        """Effects to carry out and records to save, for one environment at `now`."""
        self._settings[environment] = settings
        effects: list[Effect] = []
        changed: dict[str, IncidentRecord] = {}
        candidates, judged, objects = self._candidates(environment, observed, now)
        snoozed = self._snoozed_roots(environment, observed, objects, now)

        def save(record: IncidentRecord) -> None:
            self._records[record.id] = record
            changed[record.id] = record

        for key, candidate in candidates.items():
            self._live[key] = candidate
            self._ever.setdefault(key, set()).update(o.key for o in candidate.dependents)
            record = self._records.get(key)
            if record is not None and record.open:
                if not record.message_ts:
                    effects.append(Publish(key))
                    continue
                last = record.announced_at or record.posted_at or record.failing_since
                if now - last >= settings.repeat:
                    save(dataclasses.replace(record, announced_at=now))
                    age = describe_age(now - record.failing_since)
                    effects.append(Note(key, f"Still failing after {age}.", mention=True))
                continue
            if record is not None and record.message_ts and self._reopens(record, settings, now):
                was_snoozed = record.state is IncidentState.SNOOZED
                save(
                    dataclasses.replace(
                        record,
                        state=IncidentState.OPEN,
                        resolved_at=None,
                        outcome="",
                        flaps=record.flaps + (0 if was_snoozed else 1),
                        announced_at=now,
                    )
                )
                effects.append(Publish(key))
                effects.append(
                    Note(
                        key,
                        "The snooze is over and it is still failing."
                        if was_snoozed
                        else "Failing again: the incident is open again.",
                        mention=True,
                    )
                )
                continue
            pending = self._pending.get(key)
            if pending is None:
                # The recorded start counts only for what was failing before this planner
                # looked (a restart, a new leader). Later, an object that becomes a root (its
                # cause recovered first, say) starts its own wait now.
                known = candidate.since if environment not in self._seen else None
                since = known if known and known < now else now
                pending = self._pending[key] = _Pending(since)
            elif pending.recovered_at is not None:
                pending.flaps += 1
                pending.recovered_at = None
            if now - pending.since >= settings.wait:
                del self._pending[key]
                root = candidate.root
                save(
                    IncidentRecord(
                        environment=environment,
                        cluster=candidate.cluster,
                        kind=root.kind if root else CLUSTER_UNREADABLE,
                        namespace=root.namespace if root else "",
                        name=root.name if root else "",
                        state=IncidentState.OPEN,
                        failing_since=pending.since,
                        channel=settings.channel,
                        flaps=pending.flaps,
                        revision=root.full_revision if root else "",
                    )
                )
                effects.append(Publish(key))

        for key, pending in list(self._pending.items()):
            if not key.startswith(environment + "/") or key in candidates:
                continue
            cluster = key.split("/", 2)[1]
            if cluster not in judged and not key.endswith(f"/{CLUSTER_UNREADABLE}//"):
                continue
            if pending.recovered_at is None:
                pending.recovered_at = now
            if now - pending.recovered_at >= settings.wait:
                del self._pending[key]
                if key not in self._records:
                    self._live.pop(key, None)
                    self._ever.pop(key, None)

        for key, record in list(self._records.items()):
            if record.environment != environment or key in candidates:
                continue
            if record.state is not IncidentState.OPEN:
                late = self._late_action(record, observed, now)
                if late and late != record.outcome and record.message_ts:
                    # The action that fixed it is recorded once its outcome is known, which
                    # is after the watch cache saw the recovery.
                    save(dataclasses.replace(record, outcome=late))
                    effects.append(Publish(key))
                if (
                    record.state is IncidentState.RESOLVED
                    and record.resolved_at
                    and (now - record.resolved_at > settings.reopen)
                ):
                    # Kept in the store (for a while) but no longer worth memory here.
                    self._records.pop(key, None)
                    self._live.pop(key, None)
                    self._ever.pop(key, None)
                continue
            if not record.is_cluster and record.cluster not in judged:
                continue  # the cluster cannot be read: its stale data decides nothing
            snooze = snoozed.get(key)
            if snooze is not None:
                until = f"{snooze.until:%Y-%m-%d %H:%M} UTC"
                save(
                    dataclasses.replace(
                        record,
                        state=IncidentState.SNOOZED,
                        resolved_at=now,
                        outcome=f"snoozed by {snooze.by} until {until}",
                    )
                )
                effects.append(Publish(key))
                effects.append(
                    Note(
                        key,
                        f"Snoozed by {snooze.by} until {until}, or until its state changes: "
                        "no more reminders.",
                    )
                )
                continue
            outcome = self._outcome(record, observed, objects, candidates)
            resolved = dataclasses.replace(
                record, state=IncidentState.RESOLVED, resolved_at=now, outcome=outcome
            )
            save(resolved)
            # Without a ts it is being posted right now (the poster shows the resolution when
            # it is done) or Slack refused it (the note is then dropped, as it has no thread).
            if record.message_ts:
                effects.append(Publish(key))
            by = f" by {outcome}" if outcome else ""
            effects.append(
                Note(key, f"Resolved after {describe_age(now - record.failing_since)}{by}.")
            )

        self._seen.add(environment)
        self._note_actions(environment, observed, now)
        for key, record in self._records.items():
            if record.environment != environment or not record.message_ts:
                continue
            if any(isinstance(e, Publish) and e.incident == key for e in effects):
                continue
            view = self.view(key, now)
            published_at = self._published_at.get(key)
            if (
                view is not None
                and self._published.get(key) != _signature(view)
                and (published_at is None or now - published_at >= REFRESH_INTERVAL)
            ):
                effects.append(Publish(key, urgent=False))
        return effects, list(changed.values())

    # -- helpers --

    def _candidates(
        self, environment: str, observed: Observation, now: dt.datetime
    ) -> tuple[dict[str, _Candidate], set[str], dict[tuple[str, ObjectRef], FluxObject]]:
        """Failing root causes now, the clusters whose data can be judged, and every object."""
        candidates: dict[str, _Candidate] = {}
        judged: set[str] = set()
        objects: dict[tuple[str, ObjectRef], FluxObject] = {}
        snoozes = {s.key: s for s in observed.snoozes if s.until > now}
        for status in observed.clusters:
            cluster = status.cluster
            problem = status.unreadable
            freshness = status.freshness
            if problem is not None or (freshness and freshness.state is CacheState.STALE):
                reason = problem.message if problem else (freshness.error if freshness else "")
                since = freshness.since if freshness else None
                key = incident_id(environment, cluster, CLUSTER_UNREADABLE)
                candidates[key] = _Candidate(cluster, None, (), reason, since)
                continue
            if freshness is not None and freshness.state is CacheState.SYNCING:
                continue
            judged.add(cluster)
            for obj in status.objects:
                objects[(cluster, obj.ref)] = obj
            for group in group_failures(status.objects):
                root = group.root
                object_key = (cluster, root.kind, root.namespace, root.name)
                snooze = snoozes.get(object_key)
                if snooze is not None and snooze.state == material_state(root):
                    continue
                key = incident_id(environment, cluster, root.kind, root.namespace, root.name)
                candidates[key] = _Candidate(
                    cluster,
                    root,
                    group.dependents,
                    condense(root.message),
                    observed.failing_since.get(object_key),
                )
        return candidates, judged, objects

    def _snoozed_roots(
        self,
        environment: str,
        observed: Observation,
        objects: Mapping[tuple[str, ObjectRef], FluxObject],
        now: dt.datetime,
    ) -> dict[str, Snooze]:
        out = {}
        for snooze in observed.snoozes:
            if snooze.until <= now:
                continue
            ref = ObjectRef(snooze.kind, snooze.namespace, snooze.name)
            obj = objects.get((snooze.cluster, ref))
            if obj is None or obj.health is not Health.FAILING:
                continue
            if snooze.state == material_state(obj):
                key = incident_id(environment, snooze.cluster, snooze.kind, snooze.namespace,
                                  snooze.name)  # fmt: skip
                out[key] = snooze
        return out

    def _reopens(
        self, record: IncidentRecord, settings: IncidentSettings, now: dt.datetime
    ) -> bool:
        if record.state is IncidentState.SNOOZED:
            return True
        return record.resolved_at is not None and now - record.resolved_at <= settings.reopen

    def _members(self, record: IncidentRecord) -> set[tuple[str, str, str]]:
        """The root and every object that failed because of it while the incident lived."""
        return {(record.kind, record.namespace, record.name)} | self._ever.get(record.id, set())

    def _outcome(
        self,
        record: IncidentRecord,
        observed: Observation,
        objects: Mapping[tuple[str, ObjectRef], FluxObject],
        candidates: Mapping[str, _Candidate],
    ) -> str:
        """What ended it: someone's action, a new revision, another root cause taking it in."""
        if record.is_cluster:
            return "the cluster answering again"
        root = objects.get((record.cluster, ObjectRef(record.kind, record.namespace, record.name)))
        if root is not None and root.health is Health.FAILING:
            # Still failing, but now because of something else, which has its own incident.
            cause = next(
                (
                    c.root
                    for c in candidates.values()
                    if c.root is not None
                    and c.cluster == record.cluster
                    and root.key in {d.key for d in c.dependents}
                ),
                None,
            )
            where = f" about {cause.kind} {cause.namespace}/{cause.name}" if cause else ""
            return f"being folded into the incident{where}"
        found = self._action_outcome(record, observed, record.resolved_at)
        if found:
            return found
        if root is None:
            return "its removal"
        if root.full_revision and root.full_revision != record.revision:
            return f"revision {root.revision or root.full_revision}"
        return ""

    def _action_outcome(
        self, record: IncidentRecord, observed: Observation, until: dt.datetime | None
    ) -> str:
        """ "alice's reconcile": the latest successful action on the incident's objects."""
        members = self._members(record)
        since = record.posted_at or record.failing_since
        for action in reversed(observed.actions):
            if (
                action.ok
                and action.at >= since
                and (until is None or action.at <= until + RESOLUTION_ACTION)
                and action.cluster == record.cluster
                and (action.kind, action.namespace, action.name) in members
            ):
                return f"{action.user}'s {action.action}"
        return ""

    def _late_action(self, record: IncidentRecord, observed: Observation, now: dt.datetime) -> str:
        if (
            record.state is not IncidentState.RESOLVED
            or record.resolved_at is None
            or record.is_cluster
            or now - record.resolved_at > RESOLUTION_ACTION
        ):
            return ""
        return self._action_outcome(record, observed, record.resolved_at)

    def _note_actions(self, environment: str, observed: Observation, now: dt.datetime) -> None:
        """Remember each open incident's latest action, once its own report has landed."""
        for key, record in self._records.items():
            if record.environment != environment or not record.open:
                continue
            members = self._members(record)
            since = record.posted_at or record.failing_since
            for action in reversed(observed.actions):
                if (
                    action.at >= since
                    and now - action.at >= ACTION_SETTLE
                    and action.cluster == record.cluster
                    and (action.kind, action.namespace, action.name) in members
                ):
                    verdict = "" if action.ok else f" (failed: {condense(action.summary, 120)})"
                    said = f"{action.user}'s {action.action}{verdict}"
                    self._last_action[key] = (action.at, said)
                    break


def _signature(view: IncidentView) -> tuple[object, ...]:
    """What, if changed, makes the message worth editing."""
    root = view.root
    return (
        view.record.state,
        view.record.outcome,
        view.record.flaps,
        view.record.message_ts,
        material_state(root) if root else "",
        root.message if root else "",
        tuple(o.key for o in view.dependents),
        view.error,
        view.last_action,
        _age_step(view.age),
    )
