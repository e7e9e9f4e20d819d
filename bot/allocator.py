"""What a long-running fluxbot asks of the C allocator (glibc's malloc), and why.

Python keeps small objects in its own pools, but everything larger (decoded listings, response
buffers, long strings) comes from malloc. glibc gives a thread that finds the shared arena busy
an arena of its own, up to eight per core, and a page freed in one arena is not reused by
another. The watch cache's cold sync decodes 1,500 listings on as many threads: at 100 clusters
x 1,000 objects, RSS after the sync was 410 MB with glibc's defaults, 343 MB with two arenas,
and 333 MB once the free pages were handed back (docs/scaling.md). So the process keeps two
arenas, and hands back what malloc holds free once the cold sync is over (`malloc_trim`).

With another C library (musl, as in Alpine images; macOS) both are skipped: they have no
arenas to limit, and their own ways of returning memory.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from typing import Final

# mallopt parameter number of M_ARENA_MAX (glibc malloc/malloc.h).
_M_ARENA_MAX: Final = -8
ARENAS: Final = 2


def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
    except OSError:
        return None
    # Only glibc has both; musl has neither.
    if not (hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim")):
        return None
    return libc


_LIBC: Final = _glibc()
GLIBC: Final = _LIBC is not None
"""Whether this process's malloc is glibc's, which the functions below tune."""


def limit_arenas(arenas: int = ARENAS) -> bool:
    """Let malloc use at most `arenas` arenas from now on; False where it cannot be told.

    Call it before the process starts its threads: arenas already made stay.
    """
    if _LIBC is None:
        return False
    return bool(_LIBC.mallopt(_M_ARENA_MAX, arenas))


def release_free_memory() -> bool:
    """Hand the pages malloc keeps free back to the system; True if any were released."""
    if _LIBC is None:
        return False
    return bool(_LIBC.malloc_trim(0))
