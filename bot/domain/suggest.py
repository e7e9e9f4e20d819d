"""Did you mean: the known names closest to a mistyped one.

difflib's similarity (matching blocks, so a dropped, doubled or swapped letter costs little)
ranks a handful of environment, cluster, kind and object names well; a dedicated edit-distance
library would add a dependency without changing which name is offered for such short words.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from typing import Final

# difflib's ratio (2·matches / total length): 0.6 catches `prodution`, `stagin`, `podnfo`
# without offering unrelated names for a short word.
CUTOFF: Final = 0.6
MAX_SUGGESTIONS: Final = 3


def closest(word: str, candidates: Iterable[str], limit: int = MAX_SUGGESTIONS) -> tuple[str, ...]:
    """The candidates most like `word` (case-insensitive), best first; () when none is close."""
    by_lower: dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(candidate.lower(), candidate)
    wanted = word.lower()
    found = difflib.get_close_matches(wanted, list(by_lower), n=limit, cutoff=CUTOFF)
    if not found:
        return ()
    # Offer the runners-up only when they are about as close as the best.
    best = _ratio(wanted, found[0])
    return tuple(by_lower[f] for f in found if _ratio(wanted, f) >= best - _TIE)


_TIE: Final = 0.05


def _ratio(a: str, b: str) -> float:
    return difflib.SequenceMatcher(None, a, b).ratio()
