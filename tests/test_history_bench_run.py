"""The history benchmark still runs end to end (a day of a tiny fleet) and reports its figures."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_history_benchmark_runs_and_reports_every_figure() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "benchmarks.history_bench", "--days", "1", "--objects", "200"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(figures) == {"days", "objects", "transitions", "state_mb", "day_query_ms"}
    assert (figures["days"], figures["objects"]) == (1, 200)
    assert figures["transitions"] > 200  # a deploy wave alone bumps every object
    assert 0 < figures["state_mb"] < 5
    assert figures["day_query_ms"] > 0
