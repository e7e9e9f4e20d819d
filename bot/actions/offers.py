"""What a message may offer for an object: the applicable actions and the state fingerprint.

Chat adapters render these as buttons; nothing offered is trusted when it is clicked (the flow
checks everything again).
"""

from __future__ import annotations

from bot.domain.policy import Action, ConfirmationMode
from bot.domain.remediation import applicable_actions, material_state, parse_duration
from bot.domain.status import FluxObject

__all__ = ["Action", "ConfirmationMode", "fingerprint", "offered", "parse_duration"]


def offered(obj: FluxObject, rollback_available: bool) -> list[tuple[Action, str]]:
    """The (action, variant) pairs `obj` deserves, most useful first."""
    return applicable_actions(obj, rollback_available)


def fingerprint(obj: FluxObject) -> str:
    """The fingerprint of `obj`'s material state: a click on a changed object is not acted on."""
    return material_state(obj)
