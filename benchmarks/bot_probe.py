"""The bot side of the cache benchmark: a separate process, so its peak RSS is the bot's own.

Run as `python -m benchmarks.bot_probe CONFIG`. It reads one JSON request per line on stdin
and answers each with one JSON line on stdout (`{"ok": true, ...}` or `{"ok": false, "error":
...}`); anything else the process prints goes to stderr, so stdout stays a clean channel.

Requests (`cmd`): `sync` (start the FleetCache, wait until synced), `cache_queries` and
`naive_queries` (time `status <env>` plus rendering, the Slack answer and the terminal
listing separately, from the cache or from a KubeFleetReader), `arm` (start recording when
each object's first transition arrives), `collect` (wait for transitions of given objects),
`stop` (time FleetCache.stop), `stats` and `quit`.
"""

from __future__ import annotations

import gc
import json
import resource
import sys
import threading
import time
import traceback
from pathlib import Path
from typing import Any, TextIO

from bot.allocator import limit_arenas, release_free_memory
from bot.collector import freeze_survivors
from bot.commands.answers import StatusAnswer
from bot.commands.executor import CommandRunner
from bot.config import load_config
from bot.domain.fleet import CacheState, FleetReader
from bot.domain.transitions import Transition
from bot.kube.cache import FleetCache
from bot.kube.reader import KubeFleetReader
from bot.render.text import render
from bot.slack.render import render as render_slack

ObjectKey = tuple[str, str, str, str]


def _proc_status_mb(field: str) -> float | None:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far, in MB.

    `VmHWM`, the high-water mark of this process image. Not `ru_maxrss`: Linux carries it
    over fork and exec, so a probe started by a driver holding the seeded fleet (over 1 GB)
    reported the driver's size as its own peak.
    """
    peak = _proc_status_mb("VmHWM")
    if peak is not None:
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Resident set size now, in MB, from /proc (0 where there is no /proc)."""
    return _proc_status_mb("VmRSS") or 0.0


class Probe:
    """Holds the bot's objects across requests and answers them."""

    def __init__(self, config_path: Path) -> None:
        self.config = load_config(config_path)
        self.layout = self.config.layout()
        self.cache: FleetCache | None = None
        self._lock = threading.Lock()
        self._armed = False
        self._first_seen: dict[ObjectKey, tuple[float, str]] = {}
        self._transitions = 0

    def _on_transition(self, transition: Transition) -> None:
        # Runs on a watcher thread: take the time first, then as little work as possible.
        now = time.time()
        key = (transition.cluster, transition.kind, transition.namespace, transition.name)
        with self._lock:
            self._transitions += 1
            if self._armed and key not in self._first_seen:
                self._first_seen[key] = (now, str(transition.change))

    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Answer one request."""
        cmd = request.get("cmd")
        if cmd == "sync":
            return self._sync(float(request.get("wait_s", 60)))
        if cmd == "cache_queries":
            if self.cache is None:
                raise RuntimeError("sync first")
            return self._queries(self.cache, int(request["n"]), int(request.get("warmup", 0)))
        if cmd == "naive_queries":
            reader = KubeFleetReader(self.config)
            try:
                return self._queries(
                    reader, int(request["n"]), int(request.get("warmup", 0)), slack=False
                )
            finally:
                reader.close()
        if cmd == "arm":
            with self._lock:
                self._first_seen.clear()
                self._armed = True
            return {}
        if cmd == "collect":
            keys = [tuple(k) for k in request["keys"]]
            return self._collect(keys, float(request.get("wait_s", 30)))
        if cmd == "stop":
            started = time.perf_counter()
            self.stop()
            return {"stop_s": time.perf_counter() - started, **self._stats()}
        if cmd in ("stats", "quit"):
            return self._stats()
        raise ValueError(f"unknown request {cmd!r}")

    def _sync(self, timeout: float) -> dict[str, Any]:
        cache = FleetCache(self.config)
        cache.subscribe(self._on_transition)
        self.cache = cache
        started = time.perf_counter()
        cpu_started = time.process_time()
        cache.start()
        live = cache.wait_synced(timeout)
        elapsed = time.perf_counter() - started
        # CPU seconds of the whole process (every watcher thread): on a shared machine the
        # wall time above depends on the other jobs, this much less.
        cpu = time.process_time() - cpu_started
        # What `fluxbot serve` does once synced (bot/compose/runtime.py): later full
        # collections during the queries do not rescan the cache, and malloc hands back the
        # pages the listings freed.
        freeze_survivors()
        release_free_memory()
        statuses = cache.read(self.layout.targets())
        not_live = {
            f"{t.cluster}": f"{f.state}: {f.error or ''}"
            for t, f in cache.freshness().items()
            if f.state is not CacheState.LIVE
        }
        return {
            "cold_sync_s": elapsed,
            "cold_sync_cpu_s": cpu,
            "live": live,
            "not_live": not_live,
            "objects": sum(len(s.objects) for s in statuses),
            "problems": sum(len(s.problems) for s in statuses),
            **self._stats(),
        }

    def _queries(
        self, reader: FleetReader, n: int, warmup: int, *, slack: bool = True
    ) -> dict[str, Any]:
        runner = CommandRunner(self.layout, reader)
        envs = self.layout.names
        # Warm-up runs (imports, connection pools, discovery) are not what a user waits for.
        for i in range(warmup):
            answer = runner.handle(f"status {envs[i % len(envs)]}")
            render(answer)
            if slack:
                render_slack(answer)
            del answer
        samples: list[float] = []
        slack_samples: list[float] = []
        # CPU time of the asking thread: what a query costs whatever else the machine runs.
        cpu_samples: list[float] = []
        slack_cpu_samples: list[float] = []
        objects: dict[str, int] = {}
        problems = 0
        chars = 0
        for i in range(n):
            env = envs[i % len(envs)]
            # The Slack answer (what `/flux status ENV` posts: counts, the first failures),
            # then the full terminal listing of every object; each timed from handle().
            if slack:
                started, cpu_started = time.perf_counter(), time.thread_time()
                render_slack(runner.handle(f"status {env}"))
                slack_samples.append((time.perf_counter() - started) * 1000)
                slack_cpu_samples.append((time.thread_time() - cpu_started) * 1000)
            started, cpu_started = time.perf_counter(), time.thread_time()
            answer = runner.handle(f"status {env}")
            text = render(answer)
            samples.append((time.perf_counter() - started) * 1000)
            cpu_samples.append((time.thread_time() - cpu_started) * 1000)
            if not isinstance(answer, StatusAnswer):
                raise RuntimeError(f"status {env} did not answer a status: {text[:300]}")
            objects[env] = sum(len(c.status.objects) for c in answer.clusters)
            problems += sum(len(c.status.problems) for c in answer.clusters)
            chars = max(chars, len(text))
            # A command handler lets go of its answer once it is sent: the next one is not
            # built while this one (25,000 objects read by the naive reader) is still held.
            del answer, text
        return {
            "samples_ms": samples,
            "slack_samples_ms": slack_samples,
            "cpu_samples_ms": cpu_samples,
            "slack_cpu_samples_ms": slack_cpu_samples,
            "objects": objects,
            "problems": problems,
            "max_chars": chars,
            **self._stats(),
        }

    def _collect(self, keys: list[tuple[Any, ...]], timeout: float) -> dict[str, Any]:
        wanted = {(str(k[0]), str(k[1]), str(k[2]), str(k[3])) for k in keys}
        deadline = time.monotonic() + timeout
        while True:
            with self._lock:
                seen = {k: v for k, v in self._first_seen.items() if k in wanted}
            if len(seen) == len(wanted) or time.monotonic() > deadline:
                break
            time.sleep(0.01)
        with self._lock:
            self._armed = False
        return {
            "seen": [[*key, at, change] for key, (at, change) in seen.items()],
            "missing": [list(k) for k in sorted(wanted - seen.keys())],
            **self._stats(),
        }

    def _stats(self) -> dict[str, Any]:
        with self._lock:
            transitions = self._transitions
        return {
            "peak_rss_mb": peak_rss_mb(),
            "rss_mb": current_rss_mb(),
            "threads": threading.active_count(),
            "transitions": transitions,
            "gc_counts": list(gc.get_count()),
        }

    def stop(self) -> None:
        """Stop the cache's threads."""
        cache, self.cache = self.cache, None
        if cache is not None:
            cache.stop()


def serve(probe: Probe, requests: TextIO, replies: TextIO) -> None:
    """Answer requests until `quit` or the end of input."""
    for line in requests:
        if not line.strip():
            continue
        cmd = None
        try:
            request = json.loads(line)
            cmd = request.get("cmd")
            reply = {"ok": True, **probe.handle(request)}
        except Exception as err:  # noqa: BLE001 - every failure goes back to the driver
            reply = {"ok": False, "error": f"{err!r}\n{traceback.format_exc()}"}
        replies.write(json.dumps(reply) + "\n")
        replies.flush()
        if cmd == "quit":
            break


def main(argv: list[str]) -> int:
    """Entry point: `python -m benchmarks.bot_probe CONFIG`."""
    if len(argv) != 2:
        print("usage: python -m benchmarks.bot_probe CONFIG", file=sys.stderr)
        return 2
    replies = sys.stdout
    # Stray prints from libraries must not corrupt the JSON channel.
    sys.stdout = sys.stderr
    # As `fluxbot serve` does before it starts any thread (bot/compose/runtime.py).
    limit_arenas()
    probe = Probe(Path(argv[1]))
    try:
        serve(probe, sys.stdin, replies)
    finally:
        probe.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
