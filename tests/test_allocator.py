"""The C allocator a serving fluxbot runs with (bot/allocator.py): two malloc arenas.

Each case runs in a fresh interpreter, because an arena limit applies to arenas made after it.
Eight threads hold large (malloc-backed) buffers at the same time, as watcher threads holding
listings do; glibc's other-than-main arenas are heaps aligned to 64 MiB (HEAP_MAX_SIZE on
64-bit, glibc malloc/arena.c), so counting such anonymous mappings counts those arenas.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.allocator import GLIBC

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import sys, threading
from bot.allocator import limit_arenas
if sys.argv[1] == "limit":
    assert limit_arenas(2)
held = []
barrier = threading.Barrier(8)
def work():
    barrier.wait()
    held.append([bytearray(60_000) for _ in range(50)])
    barrier.wait()
threads = [threading.Thread(target=work) for _ in range(8)]
for t in threads:
    t.start()
for t in threads:
    t.join()
heap = 64 << 20
arenas = 0
for line in open("/proc/self/maps"):
    fields = line.split()
    start, end = (int(x, 16) for x in fields[0].split("-"))
    if len(fields) == 5 and start % heap == 0 and 0 < end - start <= heap:
        arenas += 1
print(arenas)
"""


def _arenas_besides_the_main_one(mode: str) -> int:
    result = subprocess.run(
        [sys.executable, "-c", _PROBE, mode],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
        check=True,
    )
    return int(result.stdout)


@pytest.mark.skipif(not GLIBC, reason="glibc's malloc only")
def test_threads_holding_large_buffers_share_two_arenas_once_limited() -> None:
    assert _arenas_besides_the_main_one("default") > 2
    assert _arenas_besides_the_main_one("limit") <= 1
