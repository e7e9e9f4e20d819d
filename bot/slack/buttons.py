"""Remediation buttons: signed, carrying the state they were rendered from, one per action."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Final

from slack_sdk.models.blocks import ButtonElement, ConfirmObject, PlainTextObject

from bot.actions.offers import Action, ConfirmationMode, fingerprint, offered
from bot.actions.signing import ButtonPayload, new_nonce, sign
from bot.config import FluxbotConfig
from bot.domain.status import FluxObject

ACT: Final = "flux_act"
SNOOZE: Final = "flux_snooze"
MENU: Final = "flux_menu"
APPROVE: Final = "flux_approve"
DENY: Final = "flux_deny"


class ButtonMint:
    """Makes signed buttons for objects, following each environment's policy."""

    def __init__(
        self,
        config: FluxbotConfig,
        key: bytes,
        rollback_method: str | None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._config = config
        self._key = key
        self._rollback = rollback_method
        self._clock = clock

    def payload(
        self,
        action: str,
        environment: str,
        cluster: str,
        obj: FluxObject,
        *,
        variant: str = "",
        ttl: float | None = None,
        rollback_to: int = 0,
        requester: str = "",
    ) -> ButtonPayload:
        """A fresh payload for one button about `obj`."""
        lifetime = ttl if ttl is not None else self._config.actions.button_ttl_seconds
        return ButtonPayload(
            a=action,
            v=variant,
            e=environment,
            c=cluster,
            k=obj.kind,
            ns=obj.namespace,
            n=obj.name,
            s=fingerprint(obj),
            x=int(self._clock() + lifetime),
            i=new_nonce(),
            r=rollback_to,
            q=requester,
        )

    def button(
        self,
        label: str,
        action_id: str,
        payload: ButtonPayload,
        *,
        style: str | None = None,
        confirm: ConfirmObject | None = None,
    ) -> ButtonElement:
        """A Block Kit button carrying `payload`, signed."""
        return ButtonElement(
            text=PlainTextObject(text=label),
            action_id=f"{action_id}:{payload.i}",
            value=sign(payload, self._key),
            style=style,
            confirm=confirm,
        )

    def snooze(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement:
        """ "Snooze…": offers durations for hiding the object from digests."""
        return self.button("Snooze…", SNOOZE, self.payload("snooze", environment, cluster, obj))

    def menu(self, environment: str, cluster: str, obj: FluxObject) -> ButtonElement | None:
        """One "Actions…" button that opens the object with all its buttons."""
        if environment not in self._config.environments or not obj.flux_kind.actions:
            return None
        return self.button("Actions…", MENU, self.payload("menu", environment, cluster, obj))

    def actions(self, environment: str, cluster: str, obj: FluxObject) -> list[ButtonElement]:
        """The buttons that apply to `obj` in `environment` (never trusted on click)."""
        if environment not in self._config.environments:
            return []
        mode = self._config.policy(environment).confirmation
        out = []
        for offer in offered(obj, self._rollback):
            payload = self.payload(offer.action.value, environment, cluster, obj,
                                   variant=offer.variant)  # fmt: skip
            confirm = None
            if mode is ConfirmationMode.DIALOG and offer.action in (Action.RECONCILE,
                                                                    Action.RESUME):  # fmt: skip
                confirm = _confirm(offer.label, obj, cluster, offer.warning)
            out.append(
                self.button(offer.label, ACT, payload, style=offer.style or None, confirm=confirm)
            )
        return out


def _confirm(label: str, obj: FluxObject, cluster: str, warning: str = "") -> ConfirmObject:
    what = label.removesuffix("…").split(" (", 1)[0]
    text = f"{what} {obj.kind} {obj.namespace}/{obj.name} on {cluster}?"
    if warning:
        text += f" {warning}"
    return ConfirmObject(
        title=PlainTextObject(text=f"{what}?"[:100]),
        text=PlainTextObject(text=text[:300]),
        confirm=PlainTextObject(text=what[:30]),
        deny=PlainTextObject(text="Cancel"),
    )
