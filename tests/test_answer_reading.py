"""Answers read as on call at 3 a.m.: causes first, worst first, readable errors, forgiving names.

Built on the demo fleet (bot/demo/README.md describes its failures: a revoked deploy key in
prod-eu-1 with four Kustomizations failing because of it, an immutable-field Helm upgrade in
prod-us-1, an upgrade running for days in dev-eu-1 and staging-us-1).
"""

from __future__ import annotations

from functools import cache

from slack_sdk.models.blocks import ButtonElement, PlainTextObject

from bot.commands.executor import CommandContext, CommandRunner
from bot.demo import load_demo
from bot.domain.events import FluxEvent
from bot.domain.fleet import EnvironmentLayout, FleetLayout
from bot.domain.status import FluxObject, parse_flux_object
from bot.offline import OfflineCluster, OfflineFleetReader
from bot.render.text import render as render_text
from bot.slack.render import MAX_BLOCKS, SlackMessage
from bot.slack.render import render as render_slack
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object

CONTEXT = CommandContext(prefix="/flux ")


@cache
def _runner() -> CommandRunner:
    layout, reader = load_demo()
    return CommandRunner(layout, reader)


class Buttons:
    """Records which objects were given buttons (the real mint signs them; not needed here)."""

    def __init__(self) -> None:
        self.given: list[str] = []

    def menu(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement | None:
        self.given.append(f"{obj.kind}/{obj.name}")
        return ButtonElement(
            text=PlainTextObject(text="Actions…"), action_id=f"m:{obj.name}:{cluster}"
        )

    def actions(self, environment: str, cluster: str, obj: FluxObject) -> list[ButtonElement]:
        self.given.append(f"{obj.kind}/{obj.name}@{cluster}")
        return [ButtonElement(text=PlainTextObject(text="Reconcile"), action_id=f"a:{cluster}")]


def _valid(message: SlackMessage) -> None:
    assert validate_blocks(message.blocks) == []
    assert len(message.blocks) <= MAX_BLOCKS
    assert 0 < len(message.text) <= 4000


def test_status_lists_each_root_cause_once_with_actions_on_the_root_only() -> None:
    buttons = Buttons()
    message = render_slack(_runner().handle("status production", CONTEXT), buttons=buttons)
    _valid(message)
    assert buttons.given == ["GitRepository/platform", "HelmRelease/kube-prometheus-stack"]
    root = next(b for b in message.blocks if "flux-system/platform" in str(b))
    text = root["text"]["text"]
    assert "↳ blocks 4: `apps`, `infra-configs`, `infra-controllers`, `monitoring`" in text
    assert "*failing for " in text
    # The dependents stay reachable: get on the root lists each with its message.
    hint = "`/flux get gitrepository platform -n flux-system --cluster prod-eu-1`"
    assert hint in str(message.blocks)
    found = render_slack(_runner().handle("get gitrepo platform --cluster prod-eu-1", CONTEXT))
    assert "*Blocks 4* (failing because of it)" in str(found.blocks)
    assert "dependency &#x27;flux-system/infra-configs&#x27;" not in str(found.blocks)
    assert "`flux-system/apps`" in str(found.blocks)


def test_a_long_helm_error_leads_with_its_cause_in_lists_and_is_whole_once_in_get() -> None:
    status = str(render_slack(_runner().handle("status production", CONTEXT)).blocks)
    assert (
        'Deployment.apps "kube-prometheus-stack-grafana": spec.selector: field is immutable'
        in status
    )
    assert "MatchLabels" not in status
    assert "66.3.0 failed · 65.1.0 running" in status
    found = render_slack(_runner().handle("get hr kube-prometheus-stack --env production"))
    whole = str(found.blocks)
    assert whole.count("MatchLabels:map[string]string") == 1


def test_get_across_clusters_shows_the_worst_first_and_ready_copies_as_one_line() -> None:
    buttons = Buttons()
    message = render_slack(
        _runner().handle("get hr kube-prometheus-stack", CONTEXT), buttons=buttons
    )
    _valid(message)
    first = message.blocks[0]["text"]["text"]
    assert first.startswith(
        ":red_circle: *HelmRelease* `monitoring/kube-prometheus-stack` on *prod-us-1*"
    )
    # Ready copies: a line each, no buttons.
    assert not [g for g in buttons.given if "staging" in g or "prod-eu-1" in g]
    ready = [b for b in message.blocks if "): ready at" in str(b)]
    assert len(ready) == 3
    assert message.text.startswith(
        "HelmRelease monitoring/kube-prometheus-stack on prod-us-1: failing for "
    )
    assert "Also progressing on dev-eu-1, ready on staging-eu-1" in message.text
    text = render_text(_runner().handle("get hr kube-prometheus-stack"))
    assert text.startswith(
        "✗ HelmRelease monitoring/kube-prometheus-stack (production / prod-us-1)"
    )
    assert (
        "✓ HelmRelease monitoring/kube-prometheus-stack (staging / staging-eu-1): ready at 66.4.0"
        in text
    )


def test_an_upgrade_running_for_days_is_flagged_stuck_with_its_age() -> None:
    answer = _runner().handle("status staging", CONTEXT)
    message = render_slack(answer)
    assert message.blocks[0]["text"]["text"].startswith("staging: 2 stuck · nothing failing")
    assert "stuck: past its 5 min timeout" in str(message.blocks)
    assert message.text.startswith("staging: 2 stuck · nothing failing (41 Flux objects). Stuck:")
    assert "STUCK" in render_text(answer)


def test_mistyped_names_get_did_you_mean() -> None:
    runner = _runner()
    assert "Did you mean production?" in render_text(runner.handle("status prodution"))
    assert "Did you mean prod-eu-1?" in render_text(runner.handle("status production -c prod-eu1"))
    assert "Did you mean HelmRelease?" in render_text(runner.handle("status --kind helmrelase"))
    assert "Did you mean kube-prometheus-stack?" in render_text(
        runner.handle("get hr kube-prometheus")
    )
    wrong_env = render_text(runner.handle("status staging --cluster prod-eu-1"))
    assert "Cluster 'prod-eu-1' is in production, not staging." in wrong_env
    message = render_slack(runner.handle("status prodution"))
    _valid(message)
    assert "Did you mean `production`?" in message.blocks[0]["text"]["text"]


def test_every_moment_in_a_slack_answer_is_a_slack_date() -> None:
    for command in ("status production", "get hr kube-prometheus-stack"):
        blocks = str(render_slack(_runner().handle(command, CONTEXT)).blocks)
        assert " UTC" not in blocks.replace(" UTC>", ">")  # only inside <!date^…|fallback>
        assert "<!date^" in blocks


def test_get_shows_the_controllers_message_whole_once_even_when_events_repeat_it() -> None:
    message = (
        "Helm upgrade failed for release flux-apps/podinfo with chart podinfo@6.8.0: "
        'cannot patch "podinfo" with kind Deployment: Deployment.apps "podinfo" is invalid: '
        "spec.selector: Invalid value: v1.LabelSelector{MatchLabels:map[string]string"
        '{"app":"podinfo"}, MatchExpressions:[]v1.LabelSelectorRequirement(nil)}: '
        "field is immutable"
    )
    obj = parse_flux_object(
        flux_object(
            "HelmRelease",
            "podinfo",
            "flux-apps",
            conditions=[
                condition("Ready", "False", "UpgradeFailed", message),
                condition("Released", "False", "UpgradeFailed", message),
            ],
        )
    )
    # helm-controller records the same message as a Warning Event, once per attempt.
    event = FluxEvent("Warning", "UpgradeFailed", message, 3, None, "helm-controller", "6.8.0")
    cluster = OfflineCluster("production", "prod-1", (obj,), events=((obj.ref, event),))
    layout = FleetLayout((EnvironmentLayout("production", "production", "C0P", ("prod-1",)),))
    runner = CommandRunner(layout, OfflineFleetReader([cluster]))
    answer = runner.handle("get hr podinfo")
    slack = str(render_slack(answer).blocks)
    assert slack.count("MatchLabels") == 1
    # With the event's revision annotation, as `get` lists Events.
    assert "*UpgradeFailed* ×3 `6.8.0`: _the message above_" in slack
    text = render_text(answer)
    assert text.count("MatchLabels") == 1
    assert "(the message above)" in text
    # Listed in status, the message leads with the object and the cause.
    listed = str(render_slack(runner.handle("status production")).blocks)
    assert 'Deployment.apps "podinfo": spec.selector: field is immutable' in listed
