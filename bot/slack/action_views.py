"""Block Kit views of remediation steps and outcomes: plans, approval requests, forms, results."""

from __future__ import annotations

from typing import Any, Final

from slack_sdk.models.blocks import (
    ActionsBlock,
    ButtonElement,
    InputBlock,
    MarkdownTextObject,
    Option,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
    StaticSelectElement,
)

from bot.actions.model import ActionResult, AwaitApproval, Finished, ShowPlan
from bot.actions.signing import ButtonPayload
from bot.domain.condense import condense
from bot.slack.render import SlackMessage, clip, escape, slack_date

EXPIRY_CHOICES: Final = (
    ("1h", "1 hour"),
    ("4h", "4 hours"),
    ("1d", "1 day"),
    ("3d", "3 days"),
    ("1w", "1 week"),
)
WORKING: Final = ":hourglass_flowing_sand:"
REQUEST_BLOCK: Final = "approval-request"


def title(payload: ButtonPayload) -> str:
    """`*Kustomization* `flux-system/apps` on *dev-1*`."""
    return (
        f"*{escape(payload.k)}* `{escape(payload.ns)}/{escape(payload.n)}` on *{escape(payload.c)}*"
    )


def section(text: str, block_id: str | None = None) -> dict[str, Any]:
    """One mrkdwn section, clipped to Slack's limit."""
    return SectionBlock(text=MarkdownTextObject(text=clip(text, 3000)), block_id=block_id).to_dict()


def note(text: str) -> SlackMessage:
    """A one-section message."""
    return SlackMessage(clip(text, 3000), [section(text)])


def plan_message(step: ShowPlan, cluster: str, confirm: ButtonElement) -> SlackMessage:
    """The rollback plan, with the button that confirms it."""
    plan = step.plan
    approval = " A second person who may roll back must approve it." if step.needs_approval else ""
    lines = [
        f":rewind: *Emergency rollback plan* for {escape(str(step.request.ref))} "
        f"on *{escape(cluster)}*",
        f"• Now: revision {plan.current.version} `{escape(plan.current.chart_name)}@"
        f"{escape(plan.current.chart_version)}` ({escape(plan.current.status)})",
        f"• Target: revision {plan.target.version} `{escape(plan.target.chart_name)}@"
        f"{escape(plan.target.chart_version)}`, the previous successful release",
    ]
    if plan.pin is not None:
        pinned = (
            f"`{escape(plan.pin.field)}` of {escape(plan.pin.ref.kind)} "
            f"{escape(plan.pin.ref.namespace)}/{escape(plan.pin.ref.name)}"
        )
        lines.append(
            "Steps: keep the parent Kustomization from re-applying it (annotate "
            "`kustomize.toolkit.fluxcd.io/reconcile: disabled`), set "
            f"{pinned} to `{escape(plan.target.chart_version.split('+', 1)[0])}`, and let "
            "helm-controller upgrade to it (tracked in its history), then verify."
        )
        if plan.values_changed:
            lines.append(
                ":warning: The values changed too (configDigest differs): pinning the chart "
                "does not restore them. `actions.rollback: helm` would."
            )
        lines.append(
            ":warning: It stays pinned, away from Git, until someone presses Resume." + approval
        )
    else:
        lines.append(
            "Steps: keep the parent Kustomization from re-applying it, suspend the "
            f"HelmRelease, `helm rollback {escape(plan.release)} {plan.target.version} -n "
            f"{escape(plan.storage_namespace)} --wait`"
            + (
                f" on {escape(plan.helm_cluster)}, where its spec.kubeConfig keeps the release"
                if plan.helm_cluster
                else ""
            )
            + ", verify."
        )
        lines.append(f":warning: The HelmRelease stays suspended until Git is fixed.{approval}")
    blocks = [section("\n".join(lines)), ActionsBlock(elements=[confirm]).to_dict()]
    return SlackMessage(f"Rollback plan for {step.request.ref}", blocks)


def approval_message(
    step: AwaitApproval,
    cluster: str,
    approve: ButtonElement,
    deny: ButtonElement,
    nonce: str,
    mentions: list[str],
) -> SlackMessage:
    """The approval request posted for a second person (the roles' groups are mentioned)."""
    who = " ".join(mentions) if mentions else "A second person who may roll back"
    text = (
        f":rotating_light: <@{step.request.requester}> asks to {escape(step.plan.describe())} "
        f"on *{escape(cluster)}*. {who}: one of you must approve; "
        f"this request expires in {int(step.ttl_seconds // 60)} minutes."
    )
    blocks = [
        section(text, block_id=REQUEST_BLOCK),
        ActionsBlock(elements=[approve, deny], block_id=f"approval:{nonce}").to_dict(),
    ]
    return SlackMessage(clip(text, 3000), blocks)


def suspend_form_blocks(payload: ButtonPayload, typed: bool) -> list[Any]:
    """The suspend form: why, for how long, and the typed name when the environment wants it."""
    blocks: list[Any] = [
        SectionBlock(
            text=MarkdownTextObject(
                text=f"Suspend {title(payload)}. Flux stops reconciling it, and its parent "
                "Kustomization will not undo the suspension."
            )
        ),
        InputBlock(
            block_id="reason",
            label=PlainTextObject(text="Why"),
            element=PlainTextInputElement(action_id="reason", multiline=True, max_length=500),
        ),
        InputBlock(
            block_id="expiry",
            label=PlainTextObject(text="For how long (a reminder, not an automatic resume)"),
            optional=True,
            element=StaticSelectElement(
                action_id="expiry",
                options=[Option(value=v, text=PlainTextObject(text=t)) for v, t in EXPIRY_CHOICES],
            ),
        ),
    ]
    if typed:
        blocks.append(typed_input(payload.n))
    return blocks


def confirm_form_blocks(payload: ButtonPayload, warning: str = "") -> tuple[str, list[Any]]:
    """The typed-name confirmation form: its submit label and blocks."""
    label = {"rollback": "Roll back", "reconcile": "Reconcile", "resume": "Resume"}.get(
        payload.a, "Confirm"
    )
    text = f"{escape(label)} {title(payload)}?"
    if warning:
        text += f"\n:warning: {escape(warning)}"
    blocks: list[Any] = [
        SectionBlock(text=MarkdownTextObject(text=text)),
        typed_input(payload.n),
    ]
    return label, blocks


def typed_input(name: str) -> InputBlock:
    """ "Type NAME to confirm"."""
    return InputBlock(
        block_id="typed",
        label=PlainTextObject(text=f"Type {name} to confirm"[:2000]),
        element=PlainTextInputElement(action_id="typed", max_length=253),
    )


def outcome_text(event: Finished) -> str:
    """The outcome of an action, for the message that held the button."""
    result: ActionResult = event.result
    icon = ":white_check_mark:" if result.ok else ":hourglass:" if result.pending else ":x:"
    lines = [f"{icon} {headline_text(event)}"]
    lines += [escape(d) for d in result.details]
    if result.changed and not result.ok:
        lines.append("Changed: " + escape("; ".join(result.changed)))
    if result.not_changed:
        lines.append("Not changed: " + escape("; ".join(result.not_changed)))
    if result.warning:
        lines.append(f":warning: *{escape(result.warning)}*")
    lines.append(f"_{event.request.action.value} by {who(event)}_")
    return clip("\n".join(lines), 2900)


def headline_text(event: Finished) -> str:
    """The outcome's headline as Slack shows it: escaped, the controller's message condensed
    (the object's view shows it whole), an expiry as a date each reader sees in their zone."""
    result = event.result
    headline = result.headline
    said = result.outcome.message if result.outcome is not None else ""
    if said and said in headline:
        headline = headline.replace(said, condense(said, 160))
    text = escape(headline)
    until = event.request.until
    if until is not None:
        # The domain writes the expiry in UTC (it also goes into Kubernetes Events).
        text = text.replace(escape(f"{until:%Y-%m-%d %H:%M} UTC"), slack_date(until))
    return text


def who(event: Finished) -> str:
    """The actor, and the approver when there was one."""
    approved = event.request.approved_by
    return f"<@{event.actor.id}>" + (f", approved by <@{approved}>" if approved else "")


def insert_after(
    blocks: list[dict[str, Any]], block_id: str, extra: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """The clicked message with `extra` right under the clicked block (replacing buttons)."""
    index = next((i for i, b in enumerate(blocks) if b.get("block_id") == block_id), None)
    if index is None:
        merged = [*blocks, *extra]
    elif blocks[index].get("type") == "actions":
        merged = [*blocks[:index], *extra, *blocks[index + 1 :]]
    else:
        merged = [*blocks[: index + 1], *extra, *blocks[index + 1 :]]
    return merged[:50]
