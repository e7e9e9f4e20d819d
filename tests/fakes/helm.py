"""A fake `helm` executable: records its arguments, answers rollback and history, can fail.

Run as `python tests/fakes/helm.py ARGS...` through a wrapper script (see `install`).
FAKE_HELM_LOG: file to append one JSON line of argv per call.
FAKE_HELM_FAIL: a subcommand (`rollback`, `history`) that exits 1 with an error.
FAKE_HELM_STATE: file remembering the last rollback, so `history` reports it.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path


def main(argv: list[str]) -> int:
    log = os.environ.get("FAKE_HELM_LOG")
    if log:
        with open(log, "a", encoding="utf-8") as out:
            out.write(json.dumps(argv) + "\n")
    command = argv[0] if argv else ""
    if os.environ.get("FAKE_HELM_FAIL") == command:
        sys.stderr.write(f"Error: {command} failed: timed out waiting for the condition\n")
        return 1
    state = Path(os.environ.get("FAKE_HELM_STATE", "/nonexistent"))
    if command == "rollback":
        release, revision = argv[1], int(argv[2])
        state.write_text(json.dumps({"release": release, "to": revision}))
        print("Rollback was a success! Happy Helming!")
        return 0
    if command == "history":
        data = json.loads(state.read_text()) if state.exists() else {"to": 1}
        print(
            json.dumps(
                [
                    {
                        "revision": 99,
                        "updated": "2026-11-26T11:00:00Z",
                        "status": "deployed",
                        "chart": "podinfo-6.6.0",
                        "app_version": "6.6.0",
                        "description": f"Rollback to {data['to']}",
                    }
                ]
            )
        )
        return 0
    sys.stderr.write(f"Error: unknown command {command!r}\n")
    return 1


def install(directory: Path) -> Path:
    """Write an executable `helm` wrapper in `directory` that runs this fake."""
    wrapper = directory / "helm"
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{Path(__file__).resolve()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    return wrapper


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
