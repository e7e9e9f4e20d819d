"""Remediation messages stay within Block Kit's limits and escape what came from a cluster."""

from __future__ import annotations

from slack_sdk.models.blocks import ButtonElement, PlainTextObject

from bot.actions.model import (
    Action,
    ActionRequest,
    ActionResult,
    Actor,
    AwaitApproval,
    Finished,
    ShowPlan,
)
from bot.domain.fleet import ClusterTarget
from bot.domain.rollback import rollback_plan
from bot.domain.status import ObjectRef, parse_flux_object
from bot.slack.action_views import approval_message, outcome_text, plan_message, section
from bot.slack.render import SlackMessage
from tests.fakes.slack_api import validate_blocks
from tests.flux_objects import condition, flux_object, snapshot

HOSTILE = "<!channel> *bold* & `code` <https://evil.example|click> "
TARGET = ClusterTarget("production", "prod-us-1")


def _plan():  # type: ignore[no-untyped-def]
    obj = parse_flux_object(
        flux_object(
            "HelmRelease", "kps", "monitoring",
            status={"history": [{**snapshot(5, "66.3.0", "failed", name="kps",
                                            namespace="monitoring"),
                                 "chartName": HOSTILE.strip()[:50]},
                                snapshot(4, "65.1.0", "superseded", name="kps",
                                         namespace="monitoring")]},
            conditions=[condition("Ready", "False", "UpgradeFailed", HOSTILE * 60)],
        )
    )  # fmt: skip
    return obj, rollback_plan(obj)


def _button(action_id: str = "a") -> ButtonElement:
    return ButtonElement(
        text=PlainTextObject(text="Confirm rollback"), action_id=action_id, value="v"
    )


def _valid(message: SlackMessage) -> None:
    assert validate_blocks(message.blocks) == []
    assert 0 < len(message.text) <= 4000
    assert "<!channel>" not in str(message.blocks)


def test_the_rollback_plan_fits_and_escapes() -> None:
    obj, plan = _plan()
    request = ActionRequest(Action.ROLLBACK, TARGET, obj.ref)
    _valid(plan_message(ShowPlan(request, plan, True), TARGET.cluster, _button()))


def test_the_approval_request_fits_and_mentions_groups() -> None:
    obj, plan = _plan()
    request = ActionRequest(Action.ROLLBACK, TARGET, obj.ref, requester="U0ALICE")
    step = AwaitApproval(request, plan, 900, ("S0SRE",), "C0PROD")
    message = approval_message(step, TARGET.cluster, _button("a"), _button("b"), "n1",
                               ["<!subteam^S0SRE>"])  # fmt: skip
    assert validate_blocks(message.blocks) == []
    assert "<!subteam^S0SRE>" in message.text


def test_a_long_outcome_fits() -> None:
    request = ActionRequest(Action.RECONCILE, TARGET, ObjectRef("HelmRelease", "monitoring", "kps"))
    result = ActionResult(False, HOSTILE * 80, details=[HOSTILE * 40], warning=HOSTILE * 20)
    text = outcome_text(Finished(request, Actor("U0ALICE", "alice"), result))
    _valid(SlackMessage(text, [section(text)]))


def test_resume_after_a_rollback_is_neutral_and_its_dialog_repeats_the_warning() -> None:
    from bot.config import FluxbotConfig
    from bot.slack.buttons import ButtonMint

    config = FluxbotConfig.model_validate(
        {
            "roles": {"sre": {"groups": ["@sre"]}},
            "environments": {
                "staging": {
                    "channel": "C0STAGING",
                    "clusters": [{"context": "staging-1"}],
                    "actions": {"reconcile": ["sre"], "suspend": ["sre"], "rollback": ["sre"]},
                }
            },
        }
    )
    raw = flux_object("HelmRelease", "kps", "monitoring", conditions=[condition()],
                      status={"history": [snapshot(6, "65.1.0", name="kps")]})  # fmt: skip
    raw["metadata"]["annotations"] = {
        "kustomize.toolkit.fluxcd.io/reconcile": "disabled",
        "fluxbot.io/rolled-back-from": "66.3.0",
    }
    mint = ButtonMint(config, b"k" * 32, rollback_method="flux")
    (resume,) = [
        b for b in mint.actions("staging", "staging-1", parse_flux_object(raw))
        if b.text and b.text.text.startswith("Resume")
    ]  # fmt: skip
    assert resume.text is not None
    assert resume.text.text == "Resume (redeploys 66.3.0)"
    assert resume.style is None
    assert resume.confirm is not None
    assert "it was 66.3.0 when rolled back" in str(resume.confirm.to_dict())
