"""The benchmarks still run end to end (on a tiny fleet), so their figures can be trusted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def _figures(module: str, *args: str) -> dict[str, Any]:
    """Run one benchmark; it must succeed and end with one JSON object of figures."""
    result = subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    figures: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return figures


def test_cache_benchmark_runs_and_reports_every_figure() -> None:
    figures = _figures(
        "benchmarks.cache_bench", "--clusters", "2", "--objects-per-cluster", "40",
        "--queries", "10", "--naive-queries", "3", "--changes", "5",
    )  # fmt: skip
    assert figures["clusters"] == 2
    assert figures["objects"] == 80
    for key in ("cold_sync_s", "cache_p50_ms", "cache_p95_ms", "naive_p95_ms", "speedup",
                "rss_mb", "change_to_event_p95_ms"):  # fmt: skip
        assert figures[key] > 0, key


def test_slack_burst_benchmark_runs_and_reports_its_latencies() -> None:
    figures = _figures(
        "benchmarks.slack_burst_bench", "--clusters", "2", "--objects-per-cluster", "30",
        "--commands", "10", "--seconds", "1",
    )  # fmt: skip
    assert figures["commands"] == 10
    assert 0 < figures["ack_p99_ms"] < 3000
    assert figures["answer_p95_ms"] > 0


def test_action_benchmark_runs_and_reports_its_latencies() -> None:
    figures = _figures(
        "benchmarks.action_bench", "--clicks", "3", "--objects", "10",
        "--controller-delay", "0.05",
    )  # fmt: skip
    assert figures["clicks"] == 3
    assert figures["click_to_annotation_p95_ms"] > 0
    assert figures["ack_to_update_p95_ms"] > 0


def test_digest_benchmark_runs_and_reports_its_timing() -> None:
    figures = _figures(
        "benchmarks.digest_bench", "--clusters", "2", "--objects-per-cluster", "30",
        "--transitions", "200", "--runs", "4",
    )  # fmt: skip
    assert figures["objects"] == 60
    assert figures["compose_p95_ms"] > 0


def test_incident_benchmark_runs_and_reports_its_figures() -> None:
    figures = _figures(
        "benchmarks.incident_bench", "--dependents", "4", "--burst", "3", "--wait", "1",
    )  # fmt: skip
    assert figures["objects"] == 25
    assert figures["top_level_messages"] == 5
    assert figures["end_of_wait_to_message_p95_s"] >= 0
    assert figures["recovery_to_resolved_p95_s"] >= 0
