"""`fluxbot shell`: a terminal chat adapter that speaks the same grammar as `/flux` in Slack."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Final, TextIO

from bot.commands.answers import ErrorAnswer, HelpAnswer
from bot.commands.executor import CommandContext, CommandRunner
from bot.render.text import render

log = logging.getLogger(__name__)
_QUIT: Final = frozenset({"exit", "quit", "q"})


def run_shell(
    runner: CommandRunner, lines: Iterable[str], out: TextIO, prompt: str | None = "flux> "
) -> int:
    """Answer each command line; 0 when every command was understood, else 1."""
    context = CommandContext()
    status = 0
    if prompt:
        out.write("fluxbot shell: type `help`, or `exit` to leave.\n" + prompt)
        out.flush()
    for raw in lines:
        line = raw.strip().removeprefix("/flux").strip()
        if line.lower() in _QUIT:
            break
        if line:
            try:
                answer = runner.handle(line, context)
                text = render(answer)
            except Exception:
                # Like Bolt's global error handler: one bad command must not end the session.
                log.exception("command failed: %s", line)
                answer, text = None, "Sorry, that command failed unexpectedly; see the log."
            if (
                answer is None
                or isinstance(answer, ErrorAnswer)
                or (isinstance(answer, HelpAnswer) and answer.problem)
            ):
                status = 1
            out.write(text + "\n")
        if prompt:
            out.write(prompt)
        out.flush()
    if prompt:
        out.write("\n")
    return status
