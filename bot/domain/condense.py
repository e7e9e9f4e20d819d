"""Condense a controller's error message for a list line, where a reader has one glance.

Kubernetes and Helm errors are chains of `context: context: cause`, often with a Go struct
literal in the middle (`v1.LabelSelector{MatchLabels:map[string]string{...}, ...}`). Cut at a
fixed length, such a message shows the context and the literal and never reaches the cause
("field is immutable"). A condensed message leads with the object it concerns and the final
clause, collapses struct literals to `Type{…}`, and keeps the opening context in brackets only
as far as room allows. The full text stays in `get`; a short message is returned as it is.
"""

from __future__ import annotations

import re
from typing import Final

# Room for one list line in Slack or a terminal: long enough for a real cause and its object.
DEFAULT_LIMIT: Final = 280

# A final clause shorter than this ("Required value", "not found") needs the clause before it
# (usually the field path) to make sense.
_SHORT_CLAUSE: Final = 24

# `Deployment.apps "grafana"`, `HelmChart 'flux-system/podinfo'`, `Deployment/default/podinfo`.
_QUOTED_OBJECT: Final = re.compile(r"\b([A-Z][A-Za-z0-9]*(?:\.[a-z0-9.-]+)?) [\"']([^\"']+)[\"']")
_PATH_OBJECT: Final = re.compile(r"\b([A-Z][A-Za-z0-9]*/(?:[a-z0-9.-]+/)?[a-z0-9.-]+)\b")
# The start of a Go composite literal: `v1.LabelSelector{`, `map[string]string{`, `[]T{`.
_LITERAL_START: Final = re.compile(
    r"(?:\[\])?(?:map\[[^\]]*\])?\*?[A-Za-z_][\w]*(?:\.[A-Za-z_]\w*)?\{|(?:\[\]|map\[[^\]]*\])\w*\{"
)
# A Go nil literal such as `[]v1.LabelSelectorRequirement(nil)`.
_NIL_LITERAL: Final = re.compile(r"(?:\[\]|\*)[\w.]+\(nil\)")
# Clauses that carry no meaning once a literal is collapsed.
_FILLER: Final = {"Invalid value"}


def condense(message: str, limit: int = DEFAULT_LIMIT) -> str:
    """`message` fitted to `limit` characters with its cause and object first."""
    text = " ".join(message.split())
    if len(text) <= limit:
        # The message itself when nothing changed: a listing of 25,000 rows keeps one copy.
        return message if text == message else text
    text = collapse_literals(text)
    clauses = [c for c in _clauses(text) if c and c not in _FILLER and not _is_literal(c)]
    if len(clauses) <= 1:
        return _clip(text, limit)
    lead = clauses[-1]
    rest = clauses[:-1]
    if len(lead) < _SHORT_CLAUSE and len(rest) > 1:
        lead = f"{rest[-1]}: {lead}"
        rest = rest[:-1]
    subject = _subject(text)
    if subject and subject not in lead:
        lead = f"{subject}: {lead}"
    context = rest[0]
    if context in lead:
        return _clip(lead, limit)
    room = limit - len(lead) - len(" ()")
    if room < 20:
        return _clip(lead, limit)
    return f"{lead} ({_clip(context, room)})"


def collapse_literals(text: str) -> str:
    """Go composite literals reduced to their type: `v1.LabelSelector{…}`."""
    text = _NIL_LITERAL.sub("nil", text)
    out: list[str] = []
    i = 0
    while i < len(text):
        match = _LITERAL_START.search(text, i)
        if match is None:
            out.append(text[i:])
            break
        end = _matching_brace(text, match.end() - 1)
        if end is None:
            out.append(text[i:])
            break
        out.append(text[i : match.end()])
        out.append("…}")
        i = end + 1
    return "".join(out)


def _matching_brace(text: str, start: int) -> int | None:
    depth = 0
    quote: str | None = None
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if char == "\\":
                continue
            if char == quote:
                quote = None
        elif char == '"':
            quote = char
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return i
    return None


def _clauses(text: str) -> list[str]:
    """Split on `: ` outside quotes and brackets, as Go's `fmt.Errorf("…: %w")` chains join."""
    clauses: list[str] = []
    depth = 0
    quote: str | None = None
    start = 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'" and (i == 0 or not text[i - 1].isalnum()):
            quote = char
        elif char in "{[(":
            depth += 1
        elif char in "}])":
            depth = max(0, depth - 1)
        elif char == ":" and depth == 0 and text[i + 1 : i + 2] == " ":
            clauses.append(text[start:i].strip())
            start = i + 2
    clauses.append(text[start:].strip())
    return clauses


def _is_literal(clause: str) -> bool:
    return clause.endswith("…}") and " " not in clause.split("{", 1)[0]


def _subject(text: str) -> str:
    """The Kubernetes object the error concerns, as the error names it, if it names one."""
    found = _QUOTED_OBJECT.findall(text)
    # The innermost (last) mention is the object the final clause is about.
    for kind, name in reversed(found):
        if kind not in {"Helm", "HelmChart"} or len(found) == 1:
            return f'{kind} "{name}"'
    path = _PATH_OBJECT.search(text)
    return path.group(1) if path else ""


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
