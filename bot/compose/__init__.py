"""The composition root: the only place that knows which adapter implements which port.

`bot/cli.py` parses arguments and calls one of these per mode; nothing else builds object graphs.

- `fleet`: the fleet a command answers from: a configuration (listed once for one answer, or
  watched for a session), the built-in demo, or YAML dumps (`--from-file`).
- `history`: the configured history store (SQLite, or ConfigMaps in the home cluster).
- `runtime`: a long-running fluxbot over a configuration: watch cache, history recording,
  leader election, incidents.
- `digest`: `fluxbot digest`: one run of an environment's digest, as the scheduler runs it.
- `serve`: `fluxbot serve`: the Slack app over any of the fleets, with remediation, digests,
  reports and incidents where the fleet allows them.

Each module imports the adapters it wires, so a command loads Slack, Kubernetes and APScheduler
only when its mode uses them: `fluxbot status --from-file` loads none of them.
"""

from __future__ import annotations

from collections.abc import Sequence


class SetupError(Exception):
    """The fleet or the Slack app cannot be assembled; the lines say why, for the user."""

    def __init__(self, lines: Sequence[str]) -> None:
        super().__init__("; ".join(lines))
        self.lines = list(lines)
