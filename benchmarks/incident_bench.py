"""Benchmark live incidents: a burst of 500 failures behind 5 root causes, then recovery.

The real `fluxbot serve --http` process, a fake Slack that enforces chat.postMessage's
per-channel rate (429 with Retry-After past a short burst, as Slack does) and one fake
cluster of 5 GitRepositories with 99 Kustomizations each (500 objects), all on 127.0.0.1.
Time is compressed: the incident wait is `--wait` seconds (default 3) and the burst
`--burst` seconds (default 20) instead of minutes. The driver:

1. fails the 5 sources at random moments in the burst, each followed by its 99
   Kustomizations over the rest of the burst (source-controller's "authentication required",
   kustomize-controller's "Source artifact not found");
2. once every incident shows all its dependents, recovers each group, dependents first and
   the source last.

It reports: top-level messages posted (one per root cause: 5), from the end of each root's
wait to its message appearing (p95 < 2 s), Slack Web API calls per minute in the channel
(chat.postMessage within about 1 per second, chat.update within Tier 3's 50 a minute) and 429s
received, and from each source's recovery (the last object of its group) to its message
showing "Resolved" (< 2 s). The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from benchmarks.cache_bench import machine, percentile
from tests.bot_process import SECRET, start_bot, texts
from tests.fakes.kube_api import FakeFleet, FakeKubeApiServer
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import GIT_SHA, condition, flux_object

CHANNEL: Final = "C0PROD"
ROOTS: Final = 5
DEPENDENTS: Final = 99
POST_TO_MESSAGE_TARGET_S: Final = 2.0
RESOLVE_TARGET_S: Final = 2.0
POSTS_PER_MINUTE_LIMIT: Final = 60
UPDATES_PER_MINUTE_LIMIT: Final = 50
GIT: Final = "source.toolkit.fluxcd.io/v1"
KS: Final = "kustomize.toolkit.fluxcd.io/v1"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="scripts/bench-incidents.sh", description=__doc__)
    parser.add_argument("--wait", type=int, default=3, help="incident wait, seconds (3)")
    parser.add_argument("--burst", type=float, default=20.0, help="failure burst, seconds (20)")
    parser.add_argument(
        "--dependents", type=int, default=DEPENDENTS, help="Kustomizations per source (99)"
    )
    parser.add_argument("--seed", type=int, default=17, help="random seed (17)")
    return parser.parse_args(argv)


def _source_status(ok: bool) -> dict[str, Any]:
    if not ok:
        return {
            "observedGeneration": 1,
            "conditions": [
                condition("Ready", "False", "GitOperationFailed", "authentication required")
            ],
        }
    return {
        "observedGeneration": 1,
        "conditions": [condition("Ready", "True", "Succeeded", "stored artifact")],
        "artifact": {
            "path": "x.tar.gz",
            "url": "http://source-controller/x.tar.gz",
            "revision": f"main@sha1:{GIT_SHA}",
            "digest": "sha256:" + "a" * 64,
            "lastUpdateTime": "2026-11-25T08:00:00Z",
        },
    }


def _ks_status(ok: bool) -> dict[str, Any]:
    if not ok:
        message = "Source artifact not found, retrying in 30s"
        return {
            "observedGeneration": 1,
            "conditions": [condition("Ready", "False", "ArtifactFailed", message)],
        }
    return {
        "observedGeneration": 1,
        "lastAppliedRevision": f"main@sha1:{GIT_SHA}",
        "conditions": [condition("Ready", "True", "ReconciliationSucceeded", "Applied")],
    }


def fleet_objects(dependents: int) -> list[dict[str, Any]]:
    """5 healthy sources with their Kustomizations."""
    out = []
    for r in range(ROOTS):
        out.append(flux_object("GitRepository", f"src-{r}", status=_source_status(True)))
        for d in range(dependents):
            out.append(
                flux_object(
                    "Kustomization",
                    f"app-{r}-{d:03d}",
                    spec={"sourceRef": {"kind": "GitRepository", "name": f"src-{r}"}},
                    status=_ks_status(True),
                )
            )
    return out


class Watcher(threading.Thread):
    """Polls the fake Slack: when each root's message first appeared and first read Resolved."""

    def __init__(self, slack: FakeSlack) -> None:
        super().__init__(daemon=True)
        self.slack = slack
        self.posted: dict[str, float] = {}
        self.resolved: dict[str, float] = {}
        self.full: dict[str, float] = {}
        self.dependents = DEPENDENTS
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            now = time.monotonic()
            for message in self.slack.messages(CHANNEL, include_ephemeral=False):
                if message["thread_ts"] and message["thread_ts"] != message["ts"]:
                    continue
                text = texts(message)
                for r in range(ROOTS):
                    if f"`flux-system/src-{r}`" not in text:
                        continue
                    root = f"src-{r}"
                    self.posted.setdefault(root, now)
                    if f"{self.dependents} failing because of it" in text:
                        self.full.setdefault(root, now)
                    if "Resolved after" in text:
                        self.resolved.setdefault(root, now)
            time.sleep(0.01)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures; the last line is JSON."""
    args = parse_args(argv)
    rng = random.Random(args.seed)
    fleet = FakeFleet(["prod-1"])
    with tempfile.TemporaryDirectory() as tmp, fleet, FakeSlack(signing_secret=SECRET) as slack:
        workdir = Path(tmp)
        server = fleet["prod-1"]
        server.apply_many(fleet_objects(args.dependents))
        slack.enforce_channel_rate(1.0, burst=3)
        config = {
            "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(workdir / "kc"))},
            "history": {"path": str(workdir / "history.db")},
            "environments": {
                "production": {
                    "channel": CHANNEL,
                    "clusters": [{"context": "prod-1"}],
                    "digest": {"enabled": False},
                    "incidents": {"wait_seconds": args.wait},
                }
            },
        }
        (workdir / "fluxbot.yaml").write_text(yaml.safe_dump(config))
        bot = start_bot(["--config", str(workdir / "fluxbot.yaml")], slack, workdir)
        watcher = Watcher(slack)
        watcher.dependents = args.dependents
        try:
            time.sleep(2.0)  # the cache syncs
            watcher.start()
            started = time.monotonic()
            failed_at = _burst(server, rng, args)
            _until(lambda: len(watcher.full) == ROOTS, 120, "every incident to list its dependents")
            time.sleep(args.wait + 1.0)
            recovered_at = _recover(server, args)
            _until(lambda: len(watcher.resolved) == ROOTS, 60, "every incident to resolve")
            time.sleep(2.0)  # anything still queued would show up now
            finished = time.monotonic()
        finally:
            watcher.stop.set()
            bot.stop()
        calls = [c for c in slack.calls() if c.method in ("chat.postMessage", "chat.update")]
    top_level = [
        m
        for m in slack.messages(CHANNEL, include_ephemeral=False)
        if not m["thread_ts"] or m["thread_ts"] == m["ts"]
    ]
    to_message = [watcher.posted[r] - (failed_at[r] + args.wait) for r in failed_at]
    to_resolved = [watcher.resolved[r] - recovered_at[r] for r in recovered_at]
    limited = sum(1 for c in calls if c.status == 429)
    posts = _busiest_minute([c.at for c in calls if c.method == "chat.postMessage"])
    updates = _busiest_minute([c.at for c in calls if c.method == "chat.update"])
    figures = {
        "objects": ROOTS * (1 + args.dependents),
        "wait_s": args.wait,
        "burst_s": args.burst,
        "top_level_messages": len(top_level),
        "end_of_wait_to_message_p95_s": round(percentile(to_message, 95), 2),
        "end_of_wait_to_message_max_s": round(max(to_message), 2),
        "posts_per_minute": posts,
        "updates_per_minute": updates,
        "rate_limited_429": limited,
        "recovery_to_resolved_p95_s": round(percentile(to_resolved, 95), 2),
        "recovery_to_resolved_max_s": round(max(to_resolved), 2),
        "run_s": round(finished - started, 1),
    }
    print("fluxbot incident benchmark (HTTP mode, fake Slack enforcing 1 post/s/channel)")
    print(f"machine: {machine()}")
    print(
        f"cluster: {ROOTS} GitRepositories x {args.dependents} Kustomizations; all fail within "
        f"{args.burst:g} s, then recover; incident wait {args.wait} s"
    )
    rows = [
        ("top-level messages posted", figures["top_level_messages"], f"= {ROOTS}",
         figures["top_level_messages"] == ROOTS),
        ("end of wait to message, p95 (s)", figures["end_of_wait_to_message_p95_s"],
         f"< {POST_TO_MESSAGE_TARGET_S:g}",
         figures["end_of_wait_to_message_p95_s"] < POST_TO_MESSAGE_TARGET_S),
        ("chat.postMessage, busiest minute", figures["posts_per_minute"],
         f"<= {POSTS_PER_MINUTE_LIMIT}", figures["posts_per_minute"] <= POSTS_PER_MINUTE_LIMIT),
        ("chat.update, busiest minute", figures["updates_per_minute"],
         f"<= {UPDATES_PER_MINUTE_LIMIT}",
         figures["updates_per_minute"] <= UPDATES_PER_MINUTE_LIMIT),
        ("429 rate-limited answers", figures["rate_limited_429"], "", True),
        ("last recovery to resolved, p95 (s)", figures["recovery_to_resolved_p95_s"],
         f"< {RESOLVE_TARGET_S:g}", figures["recovery_to_resolved_p95_s"] < RESOLVE_TARGET_S),
    ]  # fmt: skip
    for label, value, bound, ok in rows:
        verdict = "" if not bound else ("met" if ok else "NOT MET")
        print(f"  {label:<40} {value!s:>8}  {bound:<8} {verdict}")
    print(json.dumps(figures))
    return 0


def _burst(
    server: FakeKubeApiServer, rng: random.Random, args: argparse.Namespace
) -> dict[str, float]:
    """Fail every group within the burst; when each source failed (monotonic)."""
    start = time.monotonic()
    root_at = sorted(rng.uniform(0, args.burst * 0.3) for _ in range(ROOTS))
    events: list[tuple[float, str, str]] = []
    for r, at in enumerate(root_at):
        events.append((at, "GitRepository", f"src-{r}"))
        for d in range(args.dependents):
            events.append((rng.uniform(at + 0.05, args.burst), "Kustomization", f"app-{r}-{d:03d}"))
    events.sort()
    failed_at: dict[str, float] = {}
    for at, kind, name in events:
        delay = start + at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        if kind == "GitRepository":
            server.set_status(GIT, kind, "flux-system", name, _source_status(False))
            failed_at[name] = time.monotonic()
        else:
            server.set_status(KS, kind, "flux-system", name, _ks_status(False))
    return failed_at


def _recover(server: FakeKubeApiServer, args: argparse.Namespace) -> dict[str, float]:
    """Recover each group, dependents first, source last; when each source recovered."""
    recovered_at = {}
    for r in range(ROOTS):
        for d in range(args.dependents):
            server.set_status(KS, "Kustomization", "flux-system", f"app-{r}-{d:03d}",
                              _ks_status(True))  # fmt: skip
        server.set_status(GIT, "GitRepository", "flux-system", f"src-{r}", _source_status(True))
        recovered_at[f"src-{r}"] = time.monotonic()
    return recovered_at


def _busiest_minute(times: list[float]) -> int:
    """The most calls in any 60 s window (every call, when the run is shorter)."""
    times.sort()
    best = 0
    start = 0
    for end, at in enumerate(times):
        while at - times[start] >= 60:
            start += 1
        best = max(best, end - start + 1)
    return best


def _until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.05)


if __name__ == "__main__":
    sys.exit(main())
