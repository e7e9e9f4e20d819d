"""The incident rules that need hours of clock time, fed to the pure planner moment by moment:
flap damping, re-announcement, snoozes, reopening; and a digest linking to an open incident.

The end-to-end behaviour (posting, updating, resolving through `fluxbot serve`) is in
tests/test_incidents.py; here time is an argument.
"""

from __future__ import annotations

import datetime as dt
import json

from bot.digests.composer import DigestComposer
from bot.domain.action_rules import material_state
from bot.domain.fleet import (
    CacheState,
    ClusterStatus,
    ClusterTarget,
    EnvironmentLayout,
    FleetLayout,
    Freshness,
)
from bot.domain.history import Snooze
from bot.domain.incidents import IncidentState
from bot.domain.status import FluxObject, parse_flux_object
from bot.history.sqlite import SqliteHistory
from bot.incidents.planner import IncidentPlanner, IncidentSettings, Note, Observation, Publish
from bot.slack.digest_render import details_message
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object

T0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)
SETTINGS = IncidentSettings(
    channel="C0PROD",
    wait=dt.timedelta(minutes=3),
    repeat=dt.timedelta(hours=4),
    reopen=dt.timedelta(minutes=15),
    mention="S0ONCALL",
)
KEY = "production/prod-1/GitRepository/flux-system/flux-system"


def _source(failing: bool) -> FluxObject:
    ready = (
        condition("Ready", "False", "GitOperationFailed", "authentication required")
        if failing
        else condition()
    )
    return parse_flux_object(flux_object("GitRepository", "flux-system", conditions=[ready]))


def _observe(failing: bool, snoozes: tuple[Snooze, ...] = ()) -> Observation:
    status = ClusterStatus(
        "production", "prod-1", (_source(failing),), freshness=Freshness(CacheState.LIVE, T0)
    )
    return Observation(clusters=(status,), snoozes=snoozes)


def _at(planner: IncidentPlanner, minutes: float, failing: bool, **kw: object) -> list[object]:
    effects, _changed = planner.evaluate(
        "production",
        SETTINGS,
        _observe(failing, **kw),
        T0 + dt.timedelta(minutes=minutes),  # type: ignore[arg-type]
    )
    return list(effects)


def _posted(planner: IncidentPlanner, minutes: float) -> None:
    planner.posted(KEY, "1700000000.000100", "https://x/p1", T0 + dt.timedelta(minutes=minutes))
    planner.mark_published(KEY, T0 + dt.timedelta(minutes=minutes))


def test_a_flapping_root_is_announced_once_with_its_count() -> None:
    planner = IncidentPlanner()
    assert _at(planner, 0, True) == []
    assert _at(planner, 1, False) == []  # recovered within the wait: not forgotten yet
    assert _at(planner, 2, True) == []  # failing again: the clock keeps running
    assert _at(planner, 3, True) == [Publish(KEY)]
    record = planner.record(KEY)
    assert record is not None
    assert record.flaps == 1
    assert record.failing_since == T0


def test_a_root_that_stays_recovered_for_the_wait_is_forgotten() -> None:
    planner = IncidentPlanner()
    _at(planner, 0, True)
    _at(planner, 1, False)
    _at(planner, 5, False)
    assert _at(planner, 6, True) == []  # a new failure starts a new wait
    assert _at(planner, 9, True) == [Publish(KEY)]


def test_an_open_incident_is_re_announced_in_its_thread_after_the_repeat_interval() -> None:
    planner = IncidentPlanner()
    _at(planner, 0, True)
    _at(planner, 3, True)
    _posted(planner, 3)
    assert not [e for e in _at(planner, 60, True) if isinstance(e, Note)]
    notes = [e for e in _at(planner, 3 + 241, True) if isinstance(e, Note)]
    assert notes == [Note(KEY, "Still failing after 4 h 4 min.", mention=True)]
    assert not [e for e in _at(planner, 3 + 242, True) if isinstance(e, Note)]


def test_snoozing_the_root_closes_the_incident_and_says_so_in_its_thread() -> None:
    planner = IncidentPlanner()
    _at(planner, 0, True)
    _at(planner, 3, True)
    _posted(planner, 3)
    snooze = Snooze(
        "production", "prod-1", "GitRepository", "flux-system", "flux-system",
        until=T0 + dt.timedelta(days=1), state=material_state(_source(True)), by="alice",
    )  # fmt: skip
    effects = _at(planner, 10, True, snoozes=(snooze,))
    assert Publish(KEY) in effects
    (note,) = [e for e in effects if isinstance(e, Note)]
    assert note.text.startswith("Snoozed by alice until 2026-12-01 09:00 UTC")
    record = planner.record(KEY)
    assert record is not None
    assert record.state is IncidentState.SNOOZED
    planner.mark_published(KEY, T0 + dt.timedelta(minutes=10))
    # While snoozed, nothing more: no reminders, no new incident.
    assert _at(planner, 300, True, snoozes=(snooze,)) == []


def test_a_root_failing_again_soon_after_resolving_reopens_the_same_message() -> None:
    planner = IncidentPlanner()
    _at(planner, 0, True)
    _at(planner, 3, True)
    _posted(planner, 3)
    effects = _at(planner, 5, False)
    assert Publish(KEY) in effects
    assert any(isinstance(e, Note) and e.text.startswith("Resolved after 5 min") for e in effects)
    effects = _at(planner, 8, True)
    assert Publish(KEY) in effects
    record = planner.record(KEY)
    assert record is not None
    assert record.state is IncidentState.OPEN
    assert record.message_ts == "1700000000.000100"
    assert record.flaps == 1


def test_a_digest_links_to_an_open_incident_instead_of_repeating_it(tmp_path: object) -> None:
    planner = IncidentPlanner()
    _at(planner, 0, True)
    _at(planner, 3, True)
    _posted(planner, 3)
    record = planner.record(KEY)
    assert record is not None

    class Reader:
        def read(self, targets: object, kinds: object = frozenset()) -> list[ClusterStatus]:
            return list(_observe(True).clusters)

    layout = FleetLayout((EnvironmentLayout("production", "production", "C0PROD", ("prod-1",)),))
    with SqliteHistory(":memory:") as history:
        history.save_incident(record)
        digest = DigestComposer(layout, Reader(), history).compose("production")  # type: ignore[arg-type]
    (item,) = digest.attention
    assert item.incident == "https://x/p1"
    message = details_message(digest, None)
    assert validate_blocks(message.blocks) == []
    text = json.dumps(message.blocks)
    assert "<https://x/p1|open incident>" in text
    assert "authentication required" not in text  # the incident has the details
    assert ClusterTarget("production", "prod-1") in layout.targets("production")


def test_a_root_whose_own_cause_starts_failing_is_folded_into_that_incident() -> None:
    apps = parse_flux_object(
        flux_object(
            "Kustomization",
            "apps",
            conditions=[condition("Ready", "False", "BuildFailed", "kustomize build failed")],
        )
    )

    def observe(source_failing: bool) -> Observation:
        objects = (_source(source_failing), apps)
        live = Freshness(CacheState.LIVE, T0)
        return Observation(
            clusters=(ClusterStatus("production", "prod-1", objects, freshness=live),)
        )

    planner = IncidentPlanner()
    apps_key = "production/prod-1/Kustomization/flux-system/apps"
    planner.evaluate("production", SETTINGS, observe(False), T0)
    planner.evaluate("production", SETTINGS, observe(False), T0 + dt.timedelta(minutes=3))
    planner.posted(apps_key, "1700000000.000100", "", T0 + dt.timedelta(minutes=3))
    effects, _ = planner.evaluate(
        "production", SETTINGS, observe(True), T0 + dt.timedelta(minutes=4)
    )
    record = planner.record(apps_key)
    assert record is not None
    assert record.state is IncidentState.RESOLVED
    assert record.outcome == (
        "being folded into the incident about GitRepository flux-system/flux-system"
    )
    assert Publish(apps_key) in effects
    assert planner.record(KEY) is None  # the source waits its own turn
