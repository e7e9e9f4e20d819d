"""A label on every message and modal fluxbot posts when what it shows is not real (--demo).

Set once at start-up; both the Web API client (chat.postMessage, chat.postEphemeral,
chat.update, views.open/push/update) and response_url posts apply it, so nothing a demo
posts escapes unlabelled, whichever listener produced it.
"""

from __future__ import annotations

import threading
from typing import Any, Final

DEMO_LABEL: Final = "Demo fleet: made-up clusters; nothing here is a real cluster"
DEMO_PREFIX: Final = "[demo]"
# Slack's limits on blocks per message and per modal.
_MESSAGE_BLOCKS: Final = 50
_MODAL_BLOCKS: Final = 100

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
    out["blocks"] = _with_note(out.get("blocks"), words, _MESSAGE_BLOCKS)
    return out


def labelled_view(body: dict[str, Any]) -> dict[str, Any]:
    """A views.open/push/update call's fields with the label as the modal's first block."""
    with _lock:
        label = _label
    view = body.get("view")
    if label is None or not isinstance(view, dict):
        return body
    return {
        **body,
        "view": {**view, "blocks": _with_note(view.get("blocks"), label[0], _MODAL_BLOCKS)},
    }


def _with_note(blocks: Any, words: str, limit: int) -> Any:
    if not isinstance(blocks, list) or not blocks:
        return blocks
    note = {"type": "context", "elements": [{"type": "mrkdwn", "text": f":test_tube: {words}"}]}
    if len(blocks) >= limit or blocks[0] == note:
        return blocks
    return [note, *blocks]
