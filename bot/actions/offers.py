"""What a message may offer for an object: the applicable actions, how each button is labelled,
and the state fingerprint a button carries.

Chat adapters render these as buttons; nothing offered is trusted when it is clicked (the flow
checks everything again).
"""

from __future__ import annotations

from dataclasses import dataclass

from bot.domain.action_rules import applicable_actions, material_state, parse_duration
from bot.domain.policy import Action, ConfirmationMode
from bot.domain.rollback import CannotRollBack, rollback_plan
from bot.domain.status import FluxObject

__all__ = ["Action", "ConfirmationMode", "Offer", "fingerprint", "offered", "parse_duration"]

LABELS = {
    (Action.RECONCILE, ""): "Reconcile",
    (Action.RECONCILE, "with-source"): "Reconcile with source",
    (Action.RECONCILE, "force"): "Force",
    (Action.RECONCILE, "reset"): "Reset retries",
    (Action.SUSPEND, ""): "Suspend…",
    (Action.RESUME, ""): "Resume",
    (Action.ROLLBACK, ""): "Rollback…",
}


@dataclass(frozen=True, slots=True)
class Offer:
    """One button: what it does, its label, and whether it is the obvious next step."""

    action: Action
    variant: str
    label: str
    # Styles: "primary" for the obvious next step, "danger" for a rollback, "" neutral.
    style: str = ""
    # Shown in the confirmation dialog, when there is something to warn about.
    warning: str = ""


def offered(obj: FluxObject, rollback_method: str | None) -> list[Offer]:
    """The buttons `obj` deserves, most useful first, labelled with what they do."""
    out = []
    for action, variant in applicable_actions(obj, rollback_method):
        label = LABELS[(action, variant)]
        style = ""
        warning = ""
        if action is Action.ROLLBACK:
            style = "danger"
            try:
                plan = rollback_plan(obj, {}, rollback_method or "flux")
                label = f"Rollback to {plan.target.chart_version}…"
            except CannotRollBack:
                pass
        elif action is Action.RESUME and obj.rolled_back_from:
            # Neutral: resuming after a rollback redeploys what Git declares.
            label = f"Resume (redeploys {obj.rolled_back_from})"
            warning = (
                f"This redeploys what Git declares (it was {obj.rolled_back_from} when rolled "
                "back). Fix Git first."
            )
        elif action is Action.RESUME:
            style = "primary"
        out.append(Offer(action, variant, label[:75], style, warning))
    return out


def fingerprint(obj: FluxObject) -> str:
    """The fingerprint of `obj`'s material state: a click on a changed object is not acted on."""
    return material_state(obj)
