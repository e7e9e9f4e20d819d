"""Ages, stuck reconciles and what a HelmRelease runs, read from the objects themselves.

Timeouts follow each kind's API (read in upstream Flux):
- fluxcd/kustomize-controller api/v1/kustomization_types.go `GetTimeout`: spec.timeout, else
  spec.interval - 30s, at least 30s;
- fluxcd/helm-controller api/v2/helmrelease_types.go `GetTimeout` (5m default) and
  `Install/Upgrade.GetTimeout` (the action's own timeout, else spec.timeout);
- fluxcd/source-controller api/v1: GitRepository/OCIRepository/Bucket `spec.timeout` default
  60s (CRD default), HelmRepository `GetTimeout` one minute; HelmChart has no timeout.
"""

from __future__ import annotations

import datetime as dt

import pytest

from bot.domain.readout import age, duration_words, is_stuck, release_versions, state_since
from bot.domain.status import parse_flux_object, parse_go_duration
from tests.flux_objects import condition, flux_object, snapshot

AT_T0 = dt.datetime(2026, 11, 25, 8, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("5m0s", 300), ("1h30m", 5400), ("1.5h", 5400), ("500ms", 0.5), ("60s", 60), ("0", 0)],
)
def test_go_durations_are_read_as_go_writes_them(text: str, seconds: float) -> None:
    assert parse_go_duration(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "5", "m5", "5 m", "1d", "-"])
def test_what_is_not_a_go_duration_reads_as_absent(text: str) -> None:
    assert parse_go_duration(text) is None


@pytest.mark.parametrize(
    ("kind", "spec", "expected"),
    [
        ("Kustomization", {"interval": "10m"}, dt.timedelta(minutes=9, seconds=30)),
        ("Kustomization", {"interval": "10m", "timeout": "3m"}, dt.timedelta(minutes=3)),
        ("Kustomization", {"interval": "40s"}, dt.timedelta(seconds=30)),
        ("HelmRelease", {}, dt.timedelta(minutes=5)),
        ("HelmRelease", {"timeout": "15m"}, dt.timedelta(minutes=15)),
        ("GitRepository", {}, dt.timedelta(seconds=60)),
        ("GitRepository", {"timeout": "2m"}, dt.timedelta(minutes=2)),
        ("HelmRepository", {}, dt.timedelta(minutes=1)),
        ("HelmChart", {}, None),
    ],
)
def test_each_kind_times_out_as_its_controller_does(
    kind: str, spec: dict[str, str], expected: dt.timedelta | None
) -> None:
    assert parse_flux_object(flux_object(kind, "x", spec=spec)).timeout == expected


def test_a_helm_upgrade_times_out_after_the_upgrade_timeout() -> None:
    obj = flux_object(
        "HelmRelease",
        "grafana",
        spec={"timeout": "5m", "upgrade": {"timeout": "20m"}, "install": {"timeout": "2m"}},
        status={"lastAttemptedReleaseAction": "upgrade"},
    )
    assert parse_flux_object(obj).timeout == dt.timedelta(minutes=20)


def test_an_upgrade_running_for_days_is_stuck_and_one_running_a_minute_is_not() -> None:
    running = [
        condition("Ready", "Unknown", "Progressing", "Running 'upgrade' action"),
        condition("Reconciling", "True", "Progressing", "Running 'upgrade'"),
    ]
    hr = parse_flux_object(flux_object("HelmRelease", "grafana", conditions=running))
    assert state_since(hr) == AT_T0
    assert is_stuck(hr, AT_T0 + dt.timedelta(days=4))
    assert not is_stuck(hr, AT_T0 + dt.timedelta(minutes=1))
    assert age(hr, AT_T0 + dt.timedelta(days=4)) == dt.timedelta(days=4)


def test_a_failing_object_is_aged_from_when_it_turned_not_ready() -> None:
    failing = flux_object(
        "Kustomization", "apps", conditions=[condition("Ready", "False", "BuildFailed", "x")]
    )
    obj = parse_flux_object(failing)
    assert age(obj, AT_T0 + dt.timedelta(days=4, hours=2)) == dt.timedelta(days=4, hours=2)
    assert duration_words(dt.timedelta(days=4, hours=2)) == "4 d"
    assert duration_words(dt.timedelta(hours=7, minutes=59)) == "7 h"
    assert duration_words(dt.timedelta(minutes=12)) == "12 min"


def test_a_failed_upgrade_shows_what_was_attempted_and_what_still_runs() -> None:
    hr = flux_object(
        "HelmRelease",
        "kube-prometheus-stack",
        status={
            "history": [snapshot(3, "66.3.0", "failed"), snapshot(2, "65.1.0", "deployed")],
            "lastAttemptedRevision": "66.3.0",
        },
        conditions=[condition("Ready", "False", "UpgradeFailed", "upgrade failed")],
    )
    assert str(release_versions(parse_flux_object(hr))) == "66.3.0 failed · 65.1.0 running"


def test_a_healthy_release_has_no_second_version() -> None:
    hr = flux_object(
        "HelmRelease",
        "podinfo",
        status={"history": [snapshot(2, "6.5.0")], "lastAttemptedRevision": "6.5.0"},
        conditions=[condition()],
    )
    assert release_versions(parse_flux_object(hr)) is None


def test_a_chart_that_could_not_be_fetched_shows_as_attempted() -> None:
    hr = flux_object(
        "HelmRelease",
        "podinfo",
        status={"history": [snapshot(2, "6.5.0")], "lastAttemptedRevision": "6.6.0"},
        conditions=[condition("Ready", "False", "ArtifactFailed", "chart not found")],
    )
    assert str(release_versions(parse_flux_object(hr))) == "6.6.0 attempted · 6.5.0 running"
