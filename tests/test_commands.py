"""The command grammar every adapter shares: what people type and what they get back."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.commands.answers import (
    Answer,
    EnvsAnswer,
    ErrorAnswer,
    HelpAnswer,
    ObjectAnswer,
    StatusAnswer,
)
from bot.commands.executor import CommandContext, CommandRunner
from bot.commands.grammar import (
    SPECS,
    ActionCommand,
    EnvsCommand,
    GetCommand,
    HelpCommand,
    StatusCommand,
    help_text,
    parse,
)
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.status import Health, parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.render.text import render
from tests.flux_objects import condition, flux_object

FAILING_GIT = flux_object(
    "GitRepository",
    "platform",
    conditions=[condition("Ready", "False", "GitOperationFailed", "authentication required")],
)
APPS = flux_object(
    "Kustomization",
    "apps",
    spec={"sourceRef": {"kind": "GitRepository", "name": "platform"}},
    conditions=[condition("Ready", "False", "ArtifactFailed", "Source is not ready")],
)
PODINFO = flux_object("HelmRelease", "podinfo", "flux-apps", conditions=[condition()])
PAUSED = flux_object("Kustomization", "paused", suspend=True, conditions=[condition()])


def _runner() -> CommandRunner:
    """Two environments: production (two clusters, one with failures) and staging."""
    clusters = [
        OfflineCluster(
            "production",
            "prod-eu-1",
            tuple(parse_flux_object(o) for o in (PODINFO, APPS, PAUSED, FAILING_GIT)),
        ),
        OfflineCluster("production", "prod-us-1", (parse_flux_object(PODINFO),)),
        OfflineCluster("staging", "staging-eu-1", (parse_flux_object(PODINFO),)),
    ]
    layout = FleetLayout(
        (
            EnvironmentLayout("production", "production", "CPROD", ("prod-eu-1", "prod-us-1")),
            EnvironmentLayout("staging", "staging", "CSTAGE", ("staging-eu-1",)),
        )
    )
    return CommandRunner(layout, OfflineFleetReader(clusters))


@pytest.mark.parametrize(
    ("text", "command"),
    [
        ("status", StatusCommand()),
        ("STATUS production --failing", StatusCommand("production", failing=True)),
        ("status --cluster=prod-eu-1 -k hr", StatusCommand(cluster="prod-eu-1", kind="hr")),
        ("get hr podinfo -n flux-apps", GetCommand("hr", "podinfo", namespace="flux-apps")),
        ("get ks apps —cluster prod-eu-1", GetCommand("ks", "apps", cluster="prod-eu-1")),
        ("envs", EnvsCommand()),
        ("clusters", EnvsCommand()),
        ("help status", HelpCommand(topic="status")),
        ("", HelpCommand()),
    ],
)
def test_commands_parse_as_people_type_them(text: str, command: object) -> None:
    assert parse(text) == command


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("deploy prod", "unknown command 'deploy'"),
        ("status --bogus", "unknown option '--bogus' for status"),
        ("status --cluster", "option --cluster needs a CLUSTER"),
        ("status a b", "unexpected argument 'b'"),
        ("get hr", "get needs NAME"),
        ("status --failing=yes", "option --failing takes no value"),
        ('get hr "podinfo', "cannot read the command"),
    ],
)
def test_bad_input_gets_usage_help_saying_what_was_wrong(text: str, problem: str) -> None:
    answer = _runner().handle(text)
    assert isinstance(answer, HelpAnswer)
    assert answer.problem is not None
    assert answer.problem.startswith(problem)
    assert "Examples:" in render(answer)


def test_help_lists_every_command_from_the_one_grammar_table() -> None:
    text = help_text(prefix="/flux ")
    for spec in SPECS:
        assert f"/flux {spec.usage()}" in text
    assert "--failing" in help_text("status")


def test_status_lists_failures_first_then_progressing_suspended_ready() -> None:
    answer = _runner().handle("status production")
    assert isinstance(answer, StatusAnswer)
    (env,) = answer.environments
    assert [c.cluster for c in env.clusters] == ["prod-eu-1", "prod-us-1"]
    objects = env.clusters[0].shown
    assert [o.health for o in objects] == [
        Health.FAILING,
        Health.FAILING,
        Health.SUSPENDED,
        Health.READY,
    ]
    # Among failures, sources come before what consumes them (flux get all order).
    assert [o.kind for o in objects[:2]] == ["GitRepository", "Kustomization"]
    assert (env.counts.failing, env.counts.suspended, env.counts.ready) == (2, 1, 2)


def test_status_filters_by_kind_cluster_and_failing() -> None:
    answer = _runner().handle("status production --cluster prod-eu-1 --kind ks --failing")
    assert isinstance(answer, StatusAnswer)
    assert [(c.cluster, [o.name for o in c.shown]) for c in answer.clusters] == [
        ("prod-eu-1", ["apps"])
    ]


def test_status_without_environment_covers_the_whole_fleet_outside_slack() -> None:
    answer = _runner().handle("status")
    assert isinstance(answer, StatusAnswer)
    assert [e.name for e in answer.environments] == ["production", "staging"]


def test_channel_environment_is_the_default() -> None:
    answer = _runner().handle("status", CommandContext(default_environment="staging"))
    assert isinstance(answer, StatusAnswer)
    assert [e.name for e in answer.environments] == ["staging"]


def test_unmapped_channel_must_name_an_environment_and_is_told_which_exist() -> None:
    answer = _runner().handle("status", CommandContext(environment_required=True))
    assert isinstance(answer, ErrorAnswer)
    assert answer.choices == ("production", "staging")


@pytest.mark.parametrize(
    ("text", "message", "choice"),
    [
        ("status prod", "Unknown environment 'prod'.", "production"),
        ("status production --cluster eu", "Unknown cluster 'eu' in production.", "prod-us-1"),
        ("status --kind deployment", "Unknown kind 'deployment'.", "HelmRelease (hr, helmrelease)"),
    ],
)
def test_unknown_names_are_answered_with_the_valid_ones(
    text: str, message: str, choice: str
) -> None:
    answer = _runner().handle(text)
    assert isinstance(answer, ErrorAnswer)
    assert answer.message == message
    assert choice in answer.choices
    assert choice in render(answer)


def test_get_finds_the_object_in_every_cluster_with_what_depends_on_it() -> None:
    answer = _runner().handle("get gitrepo platform")
    assert isinstance(answer, ObjectAnswer)
    (match,) = answer.matches
    assert (match.environment, match.cluster) == ("production", "prod-eu-1")
    assert [d.name for d in match.dependents] == ["apps"]
    text = render(answer)
    assert "authentication required" in text
    assert "Used by:    Kustomization/flux-system/apps" in text

    everywhere = _runner().handle("get hr podinfo -n flux-apps")
    assert isinstance(everywhere, ObjectAnswer)
    assert [m.cluster for m in everywhere.matches] == ["prod-eu-1", "prod-us-1", "staging-eu-1"]


def test_get_of_a_missing_object_says_so() -> None:
    answer = _runner().handle("get hr nope -n flux-apps")
    assert isinstance(answer, ObjectAnswer)
    assert not answer.matches
    assert render(answer) == "No HelmRelease named 'nope' in namespace flux-apps was found."


def test_envs_lists_environments_with_channels_and_clusters() -> None:
    answer = _runner().handle("envs")
    assert isinstance(answer, EnvsAnswer)
    assert "production   production  CPROD    prod-eu-1, prod-us-1" in render(answer)


_VOCABULARY = st.sampled_from(
    [
        "status", "get", "envs", "help", "production", "staging", "prod-eu-1", "hr", "ks",
        "gitrepo", "podinfo", "apps", "--cluster", "-c", "--kind", "-k", "--failing", "-n",
        "--namespace", "--env", "flux-apps", "=", "--", "-", '"', "'", "“", "—", "\\", "\x00",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=80), st.lists(_VOCABULARY, max_size=8).map(" ".join)))
def test_any_text_gets_an_answer_or_usage_help_never_an_exception(text: str) -> None:
    answer = _runner().handle(text, CommandContext(default_environment="production"))
    # Any command word in any case answers (`ROLLOUT` is `rollout`): every kind of answer.
    assert isinstance(answer, Answer)
    assert render(answer)


def test_an_environment_alias_answers_as_its_environment_and_typos_get_did_you_mean() -> None:
    base = _runner()
    layout = FleetLayout(
        tuple(
            EnvironmentLayout(e.name, e.tier, e.channel, e.clusters, aliases=("prod",))
            if e.name == "production"
            else e
            for e in base.layout.environments
        )
    )
    runner = CommandRunner(layout, base.reader)
    answer = runner.handle("status prod")
    assert isinstance(answer, StatusAnswer)
    assert [env.name for env in answer.environments] == ["production"]
    typo = runner.handle("status prd")
    assert isinstance(typo, ErrorAnswer)
    assert typo.suggestions == ("prod (production)",)


def test_an_action_on_a_mistyped_name_suggests_the_object_meant() -> None:
    located = _runner().locate(ActionCommand("reconcile", "hr", "podnfo"), CommandContext())
    assert isinstance(located, ErrorAnswer)
    assert located.suggestions == ("podinfo",)
    assert "Did you mean podinfo?" in render(located)


def test_incidents_lists_open_incidents_oldest_first_or_says_where_they_come_from() -> None:
    import datetime as dt

    from bot.commands.answers import ErrorAnswer, IncidentsAnswer
    from bot.domain.incidents import IncidentRecord, IncidentState

    t0 = dt.datetime(2026, 11, 30, 9, 0, tzinfo=dt.UTC)

    def record(env: str, name: str, minutes: int) -> IncidentRecord:
        return IncidentRecord(
            env, "prod-eu-1", "GitRepository", "flux-system", name, IncidentState.OPEN,
            t0 + dt.timedelta(minutes=minutes), channel="CPROD", message_ts="1.2",
            permalink=f"https://fake.slack.com/archives/CPROD/p{name}",
        )  # fmt: skip

    runner = _runner()
    kept = {"production": [record("production", "b", 5), record("production", "a", 1)]}
    answer = runner.handle("incidents")
    assert isinstance(answer, IncidentsAnswer)
    assert answer.unavailable  # no history here: incidents are fluxbot serve's
    runner.incidents = lambda env: kept.get(env, [])
    everywhere = runner.handle("incidents")
    assert isinstance(everywhere, IncidentsAnswer)
    assert [r.name for r in everywhere.incidents] == ["a", "b"]
    assert everywhere.environments == ("production", "staging")
    staging = runner.handle("incidents", CommandContext(default_environment="staging"))
    assert isinstance(staging, IncidentsAnswer)
    assert staging.incidents == ()
    unknown = runner.handle("incidents prodution")
    assert isinstance(unknown, ErrorAnswer)
    assert "production" in unknown.suggestions
    text = render(everywhere)
    assert "GitRepository flux-system/a on prod-eu-1: failing since 2026-11-30 09:01 UTC" in text
