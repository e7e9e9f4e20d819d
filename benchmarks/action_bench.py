"""Benchmark remediation: click to annotation written, controller ack to message updated.

The real `fluxbot serve --http` process, a fake Slack, fake clusters and a fake Flux
controller (it handles each reconcile request after a fixed delay, as a controller would),
all on 127.0.0.1. For each of N failing Kustomizations, the driver clicks its Reconcile
button and measures:

- click to annotation: from sending the click to the merge patch reaching the API server;
- controller ack to message updated: from the controller writing `lastHandledReconcileAt`
  to the outcome replacing the message through its response_url.

The last line of output is one JSON object with the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

import yaml

from benchmarks.cache_bench import machine, percentile
from tests.bot_process import SECRET, buttons, start_bot, texts
from tests.fakes.flux_controller import FakeFluxController
from tests.fakes.kube_api import FakeFleet
from tests.fakes.slack_api import FakeSlack
from tests.flux_objects import condition, flux_object

CLICK_TARGET_MS: Final = 300.0
UPDATE_TARGET_MS: Final = 1000.0
CHANNEL: Final = "C0DEV"
USER: Final = "U0OPS"


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(prog="scripts/bench-actions.sh", description=__doc__)
    parser.add_argument("--clicks", type=int, default=50, help="reconciles to time (default 50)")
    parser.add_argument(
        "--objects", type=int, default=500, help="Flux objects in the cluster (default 500)"
    )
    parser.add_argument(
        "--controller-delay", type=float, default=0.2, help="seconds a reconcile takes (0.2)"
    )
    return parser.parse_args(argv)


def objects(count: int, failing: int) -> list[dict[str, Any]]:
    """`count` Kustomizations, the first `failing` of them failing."""
    out = []
    for i in range(count):
        ready = condition() if i >= failing else condition("Ready", "False", "BuildFailed", "x")
        out.append(flux_object("Kustomization", f"app-{i:04d}", conditions=[ready]))
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its figures; the last line is JSON."""
    args = parse_args(argv)
    fleet = FakeFleet(["dev-1"])
    with tempfile.TemporaryDirectory() as tmp, fleet, FakeSlack(signing_secret=SECRET) as slack:
        workdir = Path(tmp)
        server = fleet["dev-1"]
        server.apply_many(objects(max(args.objects, args.clicks), args.clicks))
        slack.add_user(USER, "ops")
        config = {
            "kubernetes": {"kubeconfig": str(fleet.write_kubeconfig(workdir / "kc"))},
            "roles": {"operators": {"users": [USER]}},
            "actions": {"follow_timeout_seconds": 30},
            "history": {"path": str(workdir / "history.db")},
            "environments": {
                "development": {
                    "channel": CHANNEL,
                    "clusters": [{"context": "dev-1"}],
                    "actions": {"reconcile": ["operators"], "confirmation": "none"},
                    "digest": {"enabled": False},
                }
            },
        }
        (workdir / "fluxbot.yaml").write_text(yaml.safe_dump(config))
        acked: dict[str, float] = {}
        lock = threading.Lock()
        controller = FakeFluxController(server, delay=args.controller_delay, interval=0.005)

        def record(obj: dict[str, Any]) -> None:
            with lock:
                acked[obj["metadata"]["name"]] = time.monotonic()

        controller.on_handled = record
        bot = start_bot(["--config", str(workdir / "fluxbot.yaml")], slack, workdir)
        click_ms: list[float] = []
        update_ms: list[float] = []
        try:
            with controller:
                for i in range(args.clicks):
                    name = f"app-{i:04d}"
                    answer = bot.answer(bot.command(f"get ks {name}", CHANNEL, user=USER))
                    button = buttons(answer)["Reconcile"]
                    patches = len(server.requests("PATCH"))
                    sent = time.monotonic()
                    reply = bot.client.block_action(
                        {"type": "button", "action_id": button["action_id"],
                         "block_id": "b", "value": button["value"]},
                        user_id=USER, channel_id=CHANNEL, is_ephemeral=True,
                    )  # fmt: skip
                    while len(server.requests("PATCH")) == patches:
                        if time.monotonic() - sent > 10:
                            raise SystemExit(f"click {i}: no patch reached the API server")
                        time.sleep(0.001)
                    click_ms.append((time.monotonic() - sent) * 1000)
                    final = slack.wait_for(
                        lambda url=reply.response_url: next(
                            (r for r in slack.responses(url) if "Reconciled" in texts(r.payload)),
                            None,
                        ),
                        timeout=30,
                    )
                    with lock:
                        handled_at = acked[name]
                    update_ms.append((final.at - handled_at) * 1000)
        finally:
            bot.stop()
    click_p95, update_p95 = percentile(click_ms, 95), percentile(update_ms, 95)
    print("fluxbot remediation benchmark (HTTP mode)")
    print(f"machine: {machine()}")
    print(
        f"cluster: {max(args.objects, args.clicks)} Kustomizations; {args.clicks} sequential "
        f"Reconcile clicks; the fake controller takes {args.controller_delay:g} s each"
    )
    rows = [
        ("click to annotation written, p50", percentile(click_ms, 50), None),
        ("click to annotation written, p95", click_p95, CLICK_TARGET_MS),
        ("controller ack to message updated, p50", percentile(update_ms, 50), None),
        ("controller ack to message updated, p95", update_p95, UPDATE_TARGET_MS),
    ]
    for label, value, target in rows:
        verdict = "" if target is None else ("met" if value < target else "NOT MET")
        bound = "" if target is None else f"< {target:g} ms"
        print(f"  {label:<40} {value:8.1f} ms  {bound:<10} {verdict}")
    figures = {
        "clicks": args.clicks,
        "click_to_annotation_p50_ms": round(percentile(click_ms, 50), 1),
        "click_to_annotation_p95_ms": round(click_p95, 1),
        "ack_to_update_p50_ms": round(percentile(update_ms, 50), 1),
        "ack_to_update_p95_ms": round(update_p95, 1),
    }
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
