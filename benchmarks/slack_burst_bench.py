"""Benchmark `/flux status` over HTTP: a burst of slash commands against a 10,000-object fleet.

The real `fluxbot serve --http` process answers a fake Slack (tests/fakes/slack_api/) about
fake clusters (tests/fakes/kube_api/), all on 127.0.0.1. The driver sends 100 signed
`/flux status` commands spread over 10 seconds, each from its own thread as Slack would, and
measures:

- ack latency: from sending the request to its HTTP 200 (Slack's deadline is 3 s);
- answer latency: from sending the request to the answer arriving at the response_url;
- then, with every response_url hanging (the fake Slack holds each post for `--hang-seconds`,
  longer than fluxbot's 10 s timeout), the ack latency of a second burst: acks must never
  wait on Slack.

Its last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from benchmarks.cache_bench import (
    BOOKMARK_INTERVAL_S,
    ENVIRONMENTS,
    ClusterBuilder,
    fleet_layout,
    machine,
    percentile,
    write_config,
)
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import RESPONSE_URL, FakeSlack
from tests.fakes.slack_client import SlackClient, SlackReply

ROOT: Final = Path(__file__).resolve().parent.parent
SECRET: Final = "bench-signing-secret"
ACK_TARGET_MS: Final = 100.0
ANSWER_TARGET_MS: Final = 500.0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="scripts/bench-slack.sh", description=__doc__)
    parser.add_argument("--clusters", type=int, default=20, help="fake clusters (default 20)")
    parser.add_argument("--objects-per-cluster", type=int, default=500, help="default 500")
    parser.add_argument("--commands", type=int, default=100, help="slash commands (default 100)")
    parser.add_argument("--seconds", type=float, default=10.0, help="spread over (default 10)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument(
        "--hang-seconds",
        type=float,
        default=30.0,
        help="how long each response_url post hangs in the second burst (default 30; 0: skip)",
    )
    return parser.parse_args(argv)


def start_bot(config: Path, slack: FakeSlack, log: Path) -> tuple[subprocess.Popen[str], str]:
    """Start `fluxbot serve --http` on a free port; return the process and its events URL."""
    env = {
        **os.environ,
        "SLACK_BOT_TOKEN": slack.bot_token,
        "SLACK_SIGNING_SECRET": SECRET,
        "SLACK_API_URL": slack.api_url,
    }
    handle = log.open("w+")
    process = subprocess.Popen(
        [sys.executable, "-m", "bot.cli", "serve", "--http", "--host", "127.0.0.1",
         "--port", "0", "--config", str(config)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=handle, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        handle.seek(0)
        found = re.search(r"serving /flux on (http://\S+)", handle.read())
        if found:
            return process, found.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    handle.seek(0)
    raise SystemExit(f"fluxbot serve did not start:\n{handle.read()[-3000:]}")


def wait_until_live(client: SlackClient, slack: FakeSlack, channel: str) -> float:
    """Ask `/flux envs` until no cluster is still syncing; return the seconds it took."""
    started = time.monotonic()
    while time.monotonic() - started < 120:
        reply = client.slash_command("/flux", "envs", channel_id=channel)
        (record,) = slack.wait_for_response(1, timeout=30, url=reply.response_url)
        text = json.dumps(record.payload)
        if "(syncing)" not in text and "(stale)" not in text:
            return time.monotonic() - started
        time.sleep(0.2)
    raise SystemExit("the fleet did not sync within 120 s")


def vm_hwm_mb(pid: int) -> float:
    """Peak resident memory of a process, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def burst(
    client: SlackClient,
    slack: FakeSlack,
    channels: Sequence[str],
    count: int,
    seconds: float,
    *,
    answers_expected: bool = True,
) -> tuple[list[float], list[float]]:
    """Send `count` commands evenly over `seconds`; return ack and answer latencies in ms
    (no answer latencies when `answers_expected` is false: the response URLs hang)."""
    sent: dict[int, tuple[float, SlackReply | None]] = {}
    lock = threading.Lock()

    def send(i: int) -> None:
        started = time.monotonic()
        reply = client.slash_command("/flux", "status", channel_id=channels[i % len(channels)])
        with lock:
            sent[i] = (started, reply)

    threads = []
    origin = time.monotonic()
    for i in range(count):
        delay = origin + i * seconds / count - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        thread = threading.Thread(target=send, args=(i,))
        thread.start()
        threads.append(thread)
    for thread in threads:
        thread.join(30)
    acks, answers = [], []
    for i in range(count):
        started, reply = sent[i]
        assert reply is not None
        if reply.status != 200:
            raise SystemExit(f"command {i} got HTTP {reply.status}: {reply.body[:200]}")
        acks.append(reply.elapsed * 1000)
        if not answers_expected:
            continue
        (record,) = slack.wait_for_response(1, timeout=30, url=reply.response_url)
        if record.status != 200:
            raise SystemExit(f"answer {i} refused by Slack: {record.body[:300]}")
        if "Flux objects" not in json.dumps(record.payload):
            raise SystemExit(f"answer {i} is not a status answer: {record.payload}")
        answers.append((record.at - started) * 1000)
    return acks, answers


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures; the last line is JSON."""
    args = parse_args(argv)
    layout = fleet_layout(args.clusters)
    env_of = {c: env for env, clusters in layout.items() for c in clusters}
    channels = {env: channel for env, _short, channel in ENVIRONMENTS}
    print(f"... building and seeding {args.clusters} x {args.objects_per_cluster}", file=sys.stderr)
    fleet = FakeFleet(list(env_of), bookmark_interval=BOOKMARK_INTERVAL_S)
    with tempfile.TemporaryDirectory() as tmp, fleet, FakeSlack(signing_secret=SECRET) as slack:
        workdir = Path(tmp)
        for cluster, env in env_of.items():
            built = ClusterBuilder(cluster, env, args.objects_per_cluster, args.seed).build()
            fleet[cluster].apply_many(built.objects)
        config = write_config(
            workdir / "fluxbot.yaml", fleet.write_kubeconfig(workdir / "kc"), layout
        )
        process, url = start_bot(config, slack, workdir / "bot.log")
        try:
            client = SlackClient(url, SECRET, fake=slack)
            env_channels = [channels[env] for env in layout]
            print("... waiting for the cache to sync", file=sys.stderr)
            sync_s = wait_until_live(client, slack, env_channels[0])
            slack.reset()
            print(f"... {args.commands} commands over {args.seconds:g} s", file=sys.stderr)
            acks, answers = burst(client, slack, env_channels, args.commands, args.seconds)
            hung: list[float] = []
            if args.hang_seconds > 0:
                print(f"... again, every response_url hanging {args.hang_seconds:g} s",
                      file=sys.stderr)  # fmt: skip
                slack.latency(RESPONSE_URL, args.hang_seconds)
                hung, _ = burst(
                    client, slack, env_channels, args.commands, args.seconds,
                    answers_expected=False,
                )  # fmt: skip
            rss = vm_hwm_mb(process.pid)
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
    ack_p99, answer_p95 = percentile(acks, 99), percentile(answers, 95)
    objects = args.clusters * args.objects_per_cluster
    print("fluxbot /flux burst benchmark (HTTP mode)")
    print(f"machine: {machine()}")
    print(f"fleet:   {args.clusters} clusters x {args.objects_per_cluster} = {objects} objects; "
          f"live {sync_s:.1f} s after listening (serve waits for the first sync)")  # fmt: skip
    print(f"burst:   {args.commands} signed /flux status over {args.seconds:g} s, each answered "
          "for one environment (5 clusters at full size)")  # fmt: skip
    rows = [
        ("ack latency p50", percentile(acks, 50), None),
        ("ack latency p99", ack_p99, ACK_TARGET_MS),
        ("full answer p50", percentile(answers, 50), None),
        ("full answer p95", answer_p95, ANSWER_TARGET_MS),
    ]
    if hung:
        rows.append(("ack p99, hanging", percentile(hung, 99), ACK_TARGET_MS))
    for label, value, target in rows:
        verdict = "" if target is None else ("met" if value < target else "NOT MET")
        bound = "" if target is None else f"< {target:g} ms"
        print(f"  {label:<18} {value:8.1f} ms  {bound:<10} {verdict}")
    print(f"  peak RSS of the bot process: {rss:.0f} MB")
    figures = {
        "clusters": args.clusters,
        "objects": objects,
        "commands": args.commands,
        "ack_p50_ms": round(percentile(acks, 50), 1),
        "ack_p99_ms": round(ack_p99, 1),
        "answer_p50_ms": round(percentile(answers, 50), 1),
        "answer_p95_ms": round(answer_p95, 1),
        "rss_mb": round(rss, 1),
    }
    if hung:
        figures["hang_seconds"] = args.hang_seconds
        figures["ack_p99_hanging_ms"] = round(percentile(hung, 99), 1)
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
