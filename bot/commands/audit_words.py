"""The posture audit in words, for every renderer: its headline, each environment's title and
findings per object, and the whole answer as plain lines."""

from __future__ import annotations

from collections.abc import Callable

from bot.commands.answers import AuditAnswer, AuditedEnvironment
from bot.commands.headline import plural, trouble_summary
from bot.domain.fleet import TroubleState
from bot.domain.posture import Finding, summary_lines


def headline(answer: AuditAnswer) -> str:
    """Unreadable clusters first, then how many findings where."""
    troubles = trouble_summary(
        [t for t in answer.troubles if t.state is not TroubleState.SYNCING], answer.now
    )
    findings = answer.findings
    audited = [e.name for e in answer.environments if e.policy.checks_anything]
    if not audited:
        asked = "Posture: no policy applies to " + ", ".join(e.name for e in answer.environments)
    elif findings:
        asked = f"Posture: {plural(len(findings), 'finding')} in " + ", ".join(
            e.name for e in answer.environments if e.findings
        )
    else:
        asked = f"Posture: nothing falls short in {', '.join(audited)}"
    return " · ".join([*troubles, asked])


def grouped(env: AuditedEnvironment) -> list[tuple[str, list[Finding]]]:
    """Findings per object (`cluster: Kind namespace/name`), in the order found."""
    out: dict[str, list[Finding]] = {}
    for f in env.findings:
        obj = f.object
        out.setdefault(f"{f.cluster}: {obj.kind} {obj.namespace}/{obj.name}", []).append(f)
    return list(out.items())


def environment_title(env: AuditedEnvironment) -> str:
    """`production (production tier): 5 findings`, or why it was not audited."""
    if not env.policy.checks_anything:
        return f"{env.name} ({env.tier} tier): no posture policy"
    count = plural(len(env.findings), "finding") if env.findings else "nothing falls short"
    return f"{env.name} ({env.tier} tier): {count}"


def audit_text(answer: AuditAnswer, escape: Callable[[str], str] = lambda s: s) -> str:
    """The whole audit as plain text (the terminal's answer, Slack's notification text)."""
    lines = [headline(answer)]
    summary = summary_lines(answer.findings)
    if summary:
        lines += ["", *summary]
    for env in answer.environments:
        lines += ["", f"== {environment_title(env)}"]
        for title, findings in grouped(env):
            lines.append(f"  {escape(title)}")
            lines += [f"    - {f.field} {f.advice}" for f in findings]
    return "\n".join(lines)
