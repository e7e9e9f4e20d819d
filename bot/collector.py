"""Keep Python's cyclic garbage collector off the objects that cannot be garbage.

A listing of 1,000 Flux objects decodes into hundreds of thousands of dicts, lists and strings
that live only until they are parsed and hold no reference cycles: reference counting frees
them. While they live, every collection the allocations trigger scans them again and promotes
them, so that full collections follow, and each of those scans every object the cache holds.
At 100 clusters x 1,000 objects the cold sync took 32.5 s of CPU before this pause, 17.9 s
after (docs/scaling.md). So collection pauses while any cluster is in its cold sync (until it
is live or has failed) and while any later listing is decoded and parsed, and resumes when the
last holder is done (cycles made meanwhile elsewhere are collected then).

A digest is the same kind of burst: tens of thousands of items built at once and kept until
it is posted, so collection pauses while one is composed too.

What the cold sync built stays for the life of the process: `freeze_survivors` moves it out of
the collector's reach, so later full collections (a digest, a burst of answers) scan only what
is new (CPython's `gc.freeze`).
"""

from __future__ import annotations

import gc
import threading
from types import TracebackType


class _Pause:
    """A context manager, shared by threads: collection is off while any holder is inside."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._resume = False

    def hold(self) -> None:
        """Turn collection off until every holder has released it."""
        with self._lock:
            if self._holders == 0:
                # Someone else may have turned collection off on purpose: leave it so.
                self._resume = gc.isenabled()
                gc.disable()
            self._holders += 1

    def release(self) -> None:
        """Let go of one hold; collection resumes when the last one is released."""
        with self._lock:
            self._holders -= 1
            if self._holders == 0 and self._resume:
                gc.enable()

    def __enter__(self) -> None:
        self.hold()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.release()


collection_paused = _Pause()
"""`with collection_paused:` around decoding and parsing one listing; `hold()` and `release()`
around a cluster's cold sync."""


def freeze_survivors() -> int:
    """Collect once, then exempt every object alive now from later collections; how many."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
