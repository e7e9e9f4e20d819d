"""A label on every message fluxbot posts, when what it shows is not real (`serve --demo`).

Set once at start-up; both the Web API client (chat.postMessage, chat.postEphemeral,
chat.update) and response_url posts apply it, so no message of a demo escapes unlabelled
whichever listener produced it.
"""

from __future__ import annotations

import threading
from typing import Any, Final

DEMO_LABEL: Final = "Demo fleet: made-up clusters; nothing here is a real cluster"
DEMO_PREFIX: Final = "[demo]"
# Slack's limit on blocks per message.
_MESSAGE_BLOCKS: Final = 50

_lock = threading.Lock()
_label: tuple[str, str] | None = None


def label_messages(label: str | None, prefix: str = DEMO_PREFIX) -> None:
    """From now on, label every message with `label` (None: stop labelling)."""
    global _label  # noqa: PLW0603 - one process-wide setting, made once at start-up
    with _lock:
        _label = None if label is None else (label, prefix)


def labelled(body: dict[str, Any]) -> dict[str, Any]:
    """`body` (a message's fields) with the label on its text and as its first block."""
    with _lock:
        label = _label
    if label is None:
        return body
    words, prefix = label
    out = dict(body)
    text = str(out.get("text") or "")
    if not text.startswith(prefix):
        out["text"] = f"{prefix} {text}".strip()
    blocks = out.get("blocks")
    if isinstance(blocks, list) and blocks:
        note = {"type": "context", "elements": [{"type": "mrkdwn", "text": f":test_tube: {words}"}]}
        if len(blocks) < _MESSAGE_BLOCKS and blocks[0] != note:
            out["blocks"] = [note, *blocks]
    return out
