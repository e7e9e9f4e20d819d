"""The command grammar shared by every adapter (`/flux` in Slack, `fluxbot shell`).

One declarative table describes each command: its arguments, options, summary and examples.
The parser and the help text are both derived from it, so they cannot disagree. `parse` never
raises: anything it cannot understand becomes a `HelpCommand` that says what was wrong.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Final

# Slack clients turn straight quotes into typographic ones; treat them alike.
_QUOTES: Final = str.maketrans({"“": '"', "”": '"', "‘": "'", "’": "'"})
# Some clients turn `--` into an em or en dash.
_DASHES: Final = ("—", "–")


@dataclass(frozen=True, slots=True)
class Positional:
    """A positional argument."""

    name: str
    help: str
    required: bool


@dataclass(frozen=True, slots=True)
class Option:
    """An option: a flag when `metavar` is None, else it takes one value."""

    flags: tuple[str, ...]
    dest: str
    help: str
    metavar: str | None = None


@dataclass(frozen=True, slots=True)
class CommandSpec:
    """One command of the grammar."""

    name: str
    summary: str
    positionals: tuple[Positional, ...] = ()
    options: tuple[Option, ...] = ()
    examples: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()

    def usage(self) -> str:
        """One-line usage, e.g. `status [ENV] [--cluster C] [--kind K] [--failing]`."""
        parts = [self.name]
        for arg in self.positionals:
            parts.append(arg.name if arg.required else f"[{arg.name}]")
        for opt in self.options:
            flag = opt.flags[0]
            parts.append(f"[{flag} {opt.metavar}]" if opt.metavar else f"[{flag}]")
        return " ".join(parts)


_CLUSTER: Final = Option(("--cluster", "-c"), "cluster", "only this cluster", "CLUSTER")
_ENV_OPTION: Final = Option(("--env", "-e"), "environment", "look in this environment", "ENV")
_SHARE: Final = Option(("--share",), "share", "post the answer for everyone in the channel")

_OBJECT: Final = (
    Positional("KIND", "kind of object (hr, ks, gitrepo, ocirepo, ...)", required=True),
    Positional("NAME", "object name", required=True),
)
_LOCATE: Final = (
    Option(("--namespace", "-n"), "namespace", "namespace (default: any)", "NAMESPACE"),
    _CLUSTER,
    _ENV_OPTION,
)
ACTION_NAMES: Final = ("reconcile", "suspend", "resume", "rollback")

SPECS: Final = (
    CommandSpec(
        name="status",
        summary="Fleet status of an environment: counts per cluster, failures first",
        positionals=(Positional("ENV", "environment (default: this channel's)", required=False),),
        options=(
            _CLUSTER,
            Option(("--kind", "-k"), "kind", "only this kind (hr, ks, gitrepo, ...)", "KIND"),
            Option(("--failing", "-f"), "failing", "only failing objects"),
            _SHARE,
        ),
        examples=("status", "status production --failing", "status staging --kind hr"),
    ),
    CommandSpec(
        name="get",
        summary="One object in detail: conditions, revision, source, dependents, history",
        positionals=(
            Positional("KIND", "kind of object (hr, ks, gitrepo, ocirepo, ...)", required=True),
            Positional("NAME", "object name", required=True),
        ),
        options=(
            Option(("--namespace", "-n"), "namespace", "namespace (default: any)", "NAMESPACE"),
            _CLUSTER,
            _ENV_OPTION,
            _SHARE,
        ),
        examples=("get hr podinfo -n flux-apps", "get gitrepo platform --cluster prod-eu-1"),
    ),
    CommandSpec(
        name="tree",
        summary="What a Kustomization or HelmRelease manages, nested, with each one's health",
        positionals=(
            Positional("KIND", "ks or hr", required=True),
            Positional("NAME", "object name", required=True),
        ),
        options=_LOCATE,
        examples=("tree ks apps", "tree hr podinfo -n flux-apps --cluster prod-eu-1"),
    ),
    CommandSpec(
        name="reconcile",
        summary="Ask Flux to reconcile an object now, and report how it went",
        positionals=_OBJECT,
        options=(
            *_LOCATE,
            Option(("--with-source",), "with_source", "reconcile its source first"),
            Option(("--force",), "force", "HelmRelease: force a one-off install or upgrade"),
            Option(("--reset",), "reset", "HelmRelease: reset the retry counter"),
        ),
        examples=("reconcile hr podinfo -n flux-apps --with-source", "reconcile ks apps"),
    ),
    CommandSpec(
        name="suspend",
        summary="Suspend an object, saying why and optionally for how long",
        positionals=_OBJECT,
        options=(
            *_LOCATE,
            Option(("--reason", "-r"), "reason", "why (recorded on the object)", "TEXT"),
            Option(("--for",), "duration", "expected length, e.g. 2h or 3d", "DURATION"),
        ),
        examples=('suspend ks apps --reason "freeze for the release" --for 4h',),
    ),
    CommandSpec(
        name="resume",
        summary="Resume a suspended object and report its reconcile",
        positionals=_OBJECT,
        options=_LOCATE,
        examples=("resume ks apps",),
    ),
    CommandSpec(
        name="rollback",
        summary="Emergency rollback of a HelmRelease to its previous successful release",
        positionals=_OBJECT,
        options=_LOCATE,
        examples=("rollback hr podinfo -n flux-apps",),
    ),
    CommandSpec(
        name="digest",
        summary="Preview the environment's digest: what is broken and what changed",
        positionals=(Positional("ENV", "environment (default: this channel's)", required=False),),
        examples=("digest", "digest production"),
    ),
    CommandSpec(
        name="rollout",
        summary="What is deployed where: a source's revision per environment and cluster",
        positionals=(
            Positional("SOURCE", "GitRepository or OCIRepository name (default: all)", False),
        ),
        options=(
            Option(
                ("--revision", "-r"), "revision", "where this commit (7+), tag or digest is", "REV"
            ),
        ),
        examples=("rollout", "rollout flux-system", "rollout --revision cb83a77"),
        aliases=("rollouts",),
    ),
    CommandSpec(
        name="audit",
        summary="Remediation posture: objects whose failure handling falls short of policy",
        positionals=(Positional("ENV", "environment (default: this channel's, else all)", False),),
        examples=("audit", "audit production"),
    ),
    CommandSpec(
        name="report",
        summary="Change health: revisions applied, failure rate, time to recovery, flapping",
        positionals=(Positional("ENV", "environment (default: this channel's)", required=False),),
        options=(Option(("--since",), "since", "window, e.g. 28d, 2w, 36h (default 28d)", "SPAN"),),
        examples=("report production", "report staging --since 7d"),
    ),
    CommandSpec(
        name="incidents",
        summary="Open incidents, with links to their messages",
        positionals=(Positional("ENV", "environment (default: this channel's)", required=False),),
        examples=("incidents", "incidents production"),
    ),
    CommandSpec(
        name="envs",
        summary="Environments with their channels and clusters",
        examples=("envs",),
        aliases=("environments", "clusters"),
    ),
    CommandSpec(
        name="help",
        summary="This help, or help on one command",
        positionals=(Positional("COMMAND", "command to explain", required=False),),
        examples=("help status",),
    ),
)
_BY_NAME: Final = {name: spec for spec in SPECS for name in (spec.name, *spec.aliases)}


@dataclass(frozen=True, slots=True)
class StatusCommand:
    """`status [ENV] [--cluster C] [--kind K] [--failing] [--share]`."""

    environment: str | None = None
    cluster: str | None = None
    kind: str | None = None
    failing: bool = False
    share: bool = False


@dataclass(frozen=True, slots=True)
class GetCommand:
    """`get KIND NAME [-n NAMESPACE] [--cluster C] [--env ENV] [--share]`."""

    kind: str
    name: str
    namespace: str | None = None
    cluster: str | None = None
    environment: str | None = None
    share: bool = False


@dataclass(frozen=True, slots=True)
class TreeCommand:
    """`tree KIND NAME [-n NAMESPACE] [--cluster C] [--env ENV]`."""

    kind: str
    name: str
    namespace: str | None = None
    cluster: str | None = None
    environment: str | None = None


@dataclass(frozen=True, slots=True)
class ActionCommand:
    """`reconcile|suspend|resume|rollback KIND NAME [-n NS] [--cluster C] [--env ENV] ...`."""

    action: str
    kind: str
    name: str
    namespace: str | None = None
    cluster: str | None = None
    environment: str | None = None
    variant: str = ""
    reason: str = ""
    duration: str | None = None


@dataclass(frozen=True, slots=True)
class DigestCommand:
    """`digest [ENV]`."""

    environment: str | None = None


@dataclass(frozen=True, slots=True)
class RolloutCommand:
    """`rollout [SOURCE] [--revision REV]`."""

    source: str | None = None
    revision: str | None = None


@dataclass(frozen=True, slots=True)
class AuditCommand:
    """`audit [ENV]`."""

    environment: str | None = None


@dataclass(frozen=True, slots=True)
class IncidentsCommand:
    """`incidents [ENV]`."""

    environment: str | None = None


@dataclass(frozen=True, slots=True)
class ReportCommand:
    """`report [ENV] [--since SPAN]`."""

    environment: str | None = None
    since: str = "28d"


@dataclass(frozen=True, slots=True)
class EnvsCommand:
    """`envs`."""


@dataclass(frozen=True, slots=True)
class HelpCommand:
    """`help [COMMAND]`, or the answer to input that could not be understood."""

    topic: str | None = None
    problem: str | None = None


Command = (
    StatusCommand | GetCommand | TreeCommand | ActionCommand | DigestCommand | IncidentsCommand
    | EnvsCommand | HelpCommand | RolloutCommand | AuditCommand | ReportCommand
)  # fmt: skip


@dataclass
class _Parsed:
    positionals: list[str] = field(default_factory=list)
    options: dict[str, str | bool] = field(default_factory=dict)


class _UsageError(Exception):
    pass


def parse(text: str) -> Command:
    """Parse one command line; never raises, bad input becomes HelpCommand with the problem."""
    try:
        words = _split(text)
    except _UsageError as err:
        return HelpCommand(problem=str(err))
    if not words:
        return HelpCommand()
    head, rest = words[0].lower(), words[1:]
    spec = _BY_NAME.get(head)
    if spec is None:
        return HelpCommand(problem=f"unknown command {words[0]!r}")
    try:
        parsed = _parse_args(spec, rest)
    except _UsageError as err:
        return HelpCommand(topic=spec.name, problem=str(err))
    return _build(spec, parsed)


def _split(text: str) -> list[str]:
    text = text.translate(_QUOTES)
    for dash in _DASHES:
        text = text.replace(dash, "--")
    try:
        return shlex.split(text)
    except ValueError as err:
        raise _UsageError(f"cannot read the command: {err}") from err


def _parse_args(spec: CommandSpec, words: Sequence[str]) -> _Parsed:
    parsed = _Parsed()
    flags = {flag: opt for opt in spec.options for flag in opt.flags}
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        if word.startswith("-") and len(word) > 1:
            name, has_value, value = word.partition("=")
            opt = flags.get(name.lower())
            if opt is None:
                raise _UsageError(f"unknown option {name!r} for {spec.name}")
            if opt.dest in parsed.options:
                raise _UsageError(f"option {opt.flags[0]} given twice")
            if opt.metavar is None:
                if has_value:
                    raise _UsageError(f"option {opt.flags[0]} takes no value")
                parsed.options[opt.dest] = True
                continue
            if not has_value:
                if index >= len(words) or words[index].startswith("-"):
                    raise _UsageError(f"option {opt.flags[0]} needs a {opt.metavar}")
                value = words[index]
                index += 1
            if not value:
                raise _UsageError(f"option {opt.flags[0]} needs a {opt.metavar}")
            parsed.options[opt.dest] = value
        else:
            parsed.positionals.append(word)
    required = [p for p in spec.positionals if p.required]
    if len(parsed.positionals) < len(required):
        missing = required[len(parsed.positionals)]
        raise _UsageError(f"{spec.name} needs {missing.name}: {missing.help}")
    if len(parsed.positionals) > len(spec.positionals):
        extra = parsed.positionals[len(spec.positionals)]
        raise _UsageError(f"unexpected argument {extra!r}")
    return parsed


def _build(spec: CommandSpec, parsed: _Parsed) -> Command:
    pos, opts = parsed.positionals, parsed.options

    def text(dest: str) -> str | None:
        value = opts.get(dest)
        return value if isinstance(value, str) else None

    match spec.name:
        case "status":
            return StatusCommand(
                environment=pos[0] if pos else None,
                cluster=text("cluster"),
                kind=text("kind"),
                failing=opts.get("failing") is True,
                share=opts.get("share") is True,
            )
        case "get":
            return GetCommand(
                kind=pos[0],
                name=pos[1],
                namespace=text("namespace"),
                cluster=text("cluster"),
                environment=text("environment"),
                share=opts.get("share") is True,
            )
        case "tree":
            return TreeCommand(
                pos[0], pos[1], text("namespace"), text("cluster"), text("environment")
            )
        case "envs":
            return EnvsCommand()
        case "digest":
            return DigestCommand(pos[0] if pos else None)
        case "report":
            return ReportCommand(pos[0] if pos else None, text("since") or "28d")
        case "audit":
            return AuditCommand(pos[0] if pos else None)
        case "rollout":
            return RolloutCommand(pos[0] if pos else None, text("revision"))
        case "incidents":
            return IncidentsCommand(pos[0] if pos else None)
        case name if name in ACTION_NAMES:
            flags = [f for f in ("with_source", "force", "reset") if opts.get(f) is True]
            if len(flags) > 1:
                return HelpCommand(
                    topic=name, problem="choose one of --with-source, --force, --reset"
                )
            if name == "suspend" and not text("reason"):
                return HelpCommand(topic=name, problem="suspend needs --reason TEXT")
            return ActionCommand(
                action=name,
                kind=pos[0],
                name=pos[1],
                namespace=text("namespace"),
                cluster=text("cluster"),
                environment=text("environment"),
                variant=flags[0].replace("_", "-") if flags else "",
                reason=text("reason") or "",
                duration=text("duration"),
            )
        case _:
            topic = pos[0].lower() if pos else None
            if topic is not None and topic not in _BY_NAME:
                return HelpCommand(problem=f"no help for unknown command {pos[0]!r}")
            return HelpCommand(topic=_BY_NAME[topic].name if topic else None)


def help_text(topic: str | None = None, prefix: str = "") -> str:
    """Usage for every command, or in detail for one; `prefix` is how commands are typed."""
    if topic is not None:
        spec = _BY_NAME[topic]
        lines = [f"{prefix}{spec.usage()}", f"  {spec.summary}"]
        if spec.positionals:
            lines.append("Arguments:")
            lines += [f"  {p.name:<18} {p.help}" for p in spec.positionals]
        if spec.options:
            lines.append("Options:")
            for opt in spec.options:
                flag = ", ".join(opt.flags) + (f" {opt.metavar}" if opt.metavar else "")
                lines.append(f"  {flag:<18} {opt.help}")
        lines.append("Examples:")
        lines += [f"  {prefix}{example}" for example in spec.examples]
        return "\n".join(lines)
    lines = ["Commands:"]
    for spec in SPECS:
        lines.append(f"  {prefix}{spec.usage()}")
        lines.append(f"      {spec.summary}")
    lines.append("Examples:")
    lines += [f"  {prefix}{spec.examples[0]}" for spec in SPECS[:2]]
    lines.append(f"Details: {prefix}help COMMAND")
    return "\n".join(lines)
