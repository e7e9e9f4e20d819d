"""The chat-neutral language of remediation: requests, next steps, what a running action reports.

A chat adapter turns a click, a form or a typed command into an `ActionRequest` and an `Actor`,
asks the flow for the next `Step`, and shows that step; a started action then reports
`ActionEvent`s (progress, outcome) to the `ActionSink` the adapter gave it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field, replace
from typing import Protocol

from bot.domain.fleet import ClusterTarget
from bot.domain.policy import Action, Actor
from bot.domain.remediation import Outcome
from bot.domain.rollback import RollbackPlan
from bot.domain.status import FluxObject, ObjectRef

__all__ = ["Action", "Actor"]


@dataclass(frozen=True, slots=True)
class ActionRequest:
    """One requested action on one object, and how far the person has got with it."""

    action: Action
    target: ClusterTarget
    ref: ObjectRef
    variant: str = ""  # with-source, force, reset (reconcile)
    state: str = ""  # fingerprint the request was made from; "" skips the check
    reason: str = ""  # suspend
    until: dt.datetime | None = None  # suspend
    rollback_to: int = 0  # the target revision shown in the plan
    # Steps already taken: the rollback plan was seen and confirmed; the name was typed (or
    # the dialog submitted); a second person approved.
    planned: bool = False
    confirmed: bool = False
    requester: str = ""  # who asked, when someone else approves
    approved_by: str = ""
    # The button's one-shot nonce, claimed on the object itself just before the first write
    # so that only one replica acts on it; "" (a typed command) claims nothing.
    action_id: str = ""

    def describe(self) -> str:
        """`reconcile (with-source) of HelmRelease flux-apps/podinfo on prod-eu-1`."""
        what = self.action.value + (f" ({self.variant})" if self.variant else "")
        return f"{what} of {self.title}"

    @property
    def title(self) -> str:
        """`HelmRelease flux-apps/podinfo on prod-eu-1`."""
        return f"{self.ref.kind} {self.ref.namespace}/{self.ref.name} on {self.target.cluster}"

    def but(self, **changes: object) -> ActionRequest:
        """This request, one step further."""
        return replace(self, **changes)  # type: ignore[arg-type]


# -- the next step, as a value --


@dataclass(frozen=True, slots=True)
class Denied:
    """The person may not do this (role, guest, Kubernetes RBAC); nothing was written."""

    message: str


@dataclass(frozen=True, slots=True)
class Stale:
    """The object changed since the message was rendered; show its current state instead."""

    message: str
    obj: FluxObject


@dataclass(frozen=True, slots=True)
class Refused:
    """The action cannot be done on the object as it is (or it is gone); the message says why."""

    message: str
    obj: FluxObject | None = None


@dataclass(frozen=True, slots=True)
class Busy:
    """Another action on the object is running, or fluxbot is shutting down."""

    message: str


@dataclass(frozen=True, slots=True)
class AlreadyDone:
    """This button (or form, or approval) was already used; nothing more was done."""

    message: str


@dataclass(frozen=True, slots=True)
class AskReason:
    """Suspend needs a reason and an optional expiry (and the typed name when `typed`)."""

    request: ActionRequest
    typed: bool


@dataclass(frozen=True, slots=True)
class AskTypedName:
    """The environment wants the object's name typed before this runs."""

    request: ActionRequest
    warning: str = ""  # repeated in the form (resuming after a rollback redeploys Git's)


@dataclass(frozen=True, slots=True)
class ShowPlan:
    """A rollback shows what it will do before anyone confirms it."""

    request: ActionRequest
    plan: RollbackPlan
    needs_approval: bool


@dataclass(frozen=True, slots=True)
class AwaitApproval:
    """A second person who may roll back must approve; `request.requester` asked."""

    request: ActionRequest
    plan: RollbackPlan
    ttl_seconds: float
    # The chat groups of the roles that may approve (IDs or handles), to mention.
    approver_groups: tuple[str, ...] = ()
    # Where to ask: the environment's channel, when it has one.
    channel: str = ""


@dataclass(frozen=True, slots=True)
class Decided:
    """An approval request was denied (or withdrawn) by `by`."""

    request: ActionRequest
    by: str


@dataclass(frozen=True, slots=True)
class Snoozed:
    """The object is hidden from digests until `until` or until its state changes."""

    request: ActionRequest
    until: dt.datetime


@dataclass(frozen=True, slots=True)
class Started:
    """The action runs in the background; its progress and outcome go to the sink."""

    request: ActionRequest
    actor: Actor


Step = (
    Denied
    | Stale
    | Refused
    | Busy
    | AlreadyDone
    | AskReason
    | AskTypedName
    | ShowPlan
    | AwaitApproval
    | Decided
    | Snoozed
    | Started
)


# -- what a running action reports --


@dataclass
class ActionResult:
    """What happened, with what was and was not changed when something failed."""

    ok: bool
    headline: str
    details: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    not_changed: list[str] = field(default_factory=list)
    outcome: Outcome | None = None
    offer_resume: bool = False
    warning: str = ""
    # Still progressing when fluxbot stopped following: neither a success nor a failure.
    pending: bool = False
    # Another replica claimed this button first: nothing was written here, and the outcome
    # is that replica's to report.
    claimed_elsewhere: bool = False
    # Another replica's action holds a live lease on the object: nothing was written.
    busy_elsewhere: bool = False


@dataclass(frozen=True, slots=True)
class Running:
    """The action was taken up by a worker."""

    request: ActionRequest
    actor: Actor


@dataclass(frozen=True, slots=True)
class Queued:
    """The action waits for a free worker; said at once so nobody wonders."""

    request: ActionRequest
    text: str


@dataclass(frozen=True, slots=True)
class Progress:
    """A step of a running action, such as "Reconciling source GitRepository…"."""

    request: ActionRequest
    text: str


@dataclass(frozen=True, slots=True)
class Finished:
    """The outcome of an action."""

    request: ActionRequest
    actor: Actor
    result: ActionResult


@dataclass(frozen=True, slots=True)
class Crashed:
    """The action failed inside fluxbot (a bug); the log has the details."""

    request: ActionRequest


@dataclass(frozen=True, slots=True)
class Abandoned:
    """fluxbot shut down while the action ran: it was started, its outcome is not followed."""

    request: ActionRequest


ActionEvent = Queued | Running | Progress | Finished | Crashed | Abandoned


class ActionSink(Protocol):
    """Where a running action reports (a chat presenter, a test recorder)."""

    def report(self, event: ActionEvent) -> None:
        """Show one event to the people who asked; never raises for a delivery problem."""
        ...
