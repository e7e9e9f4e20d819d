"""Structured logs: JSON lines with a request id, and secrets redacted from every record.

Each Slack interaction gets a request id (`new_request_id()` or `request_scope()`) held in a
`ContextVar`, and every record logged while it is set carries it, so the lines of one
`/flux` command can be found together. Run work for a request on another thread through
`contextvars.copy_context().run(...)` so the id goes along.

The JSON formatter is a few lines of standard library rather than `python-json-logger`: we
need exactly one flat object per line, with redaction applied to every string in it
(message, exception, extra fields), and that is simpler to own than to configure.

Redaction replaces Slack tokens (`xoxb-…`, `xoxp-…`, `xapp-…` and the other `xox?-`
kinds), bearer tokens, Slack response/webhook URLs and any value registered with
`redact_values()` (the signing secret, say) by `[redacted]`. It runs in a handler filter, so
it covers records from every logger, including the libraries', before anything is written.
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import json as jsonlib
import logging
import re
import secrets
import sys
import threading
from collections.abc import Iterator
from typing import Any, Final, TextIO

REDACTED: Final = "[redacted]"

request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "fluxbot_request_id", default=None
)

_TOKEN_PATTERNS: Final = (
    # Slack tokens: bot (xoxb), user (xoxp), app-level (xapp), legacy and refresh kinds, and
    # rotating tokens (xoxe.xoxp-…).
    re.compile(r"\bxox(?:e\.xox)?[abeoprs]-[0-9A-Za-z-]+"),
    re.compile(r"\bxapp-[0-9A-Za-z-]+"),
    # Slack response_url and incoming webhook URLs are credentials too.
    re.compile(r"https://hooks\.slack(?:-gov)?\.com/[^\s\"'<>]+"),
)
# A bearer credential is at least 8 characters: "bearer of bad news" is left alone.
_BEARER: Final = re.compile(r"\b(Bearer)\s+[0-9A-Za-z._~+/=-]{8,}", re.IGNORECASE)

_values_lock = threading.Lock()
_values: set[str] = set()
_values_pattern: re.Pattern[str] | None = None

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS: Final = frozenset(
    vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)).keys()
    | {"message", "asctime", "request_id"}
)


def new_request_id() -> str:
    """Start a new request: make an id, make it the current one, and return it."""
    request_id = secrets.token_hex(8)
    request_id_var.set(request_id)
    return request_id


@contextlib.contextmanager
def request_scope(request_id: str | None = None) -> Iterator[str]:
    """Within the block, records carry `request_id` (a new one when None)."""
    token = request_id_var.set(request_id or secrets.token_hex(8))
    try:
        value = request_id_var.get()
        assert value is not None
        yield value
    finally:
        request_id_var.reset(token)


def redact_values(*values: str | None) -> None:
    """Never log these values (secrets from the environment): replace them by [redacted]."""
    global _values_pattern  # noqa: PLW0603 - one process-wide list of secrets
    with _values_lock:
        _values.update(v for v in values if v and v.strip())
        ordered = sorted(_values, key=len, reverse=True)
        _values_pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


def redact(text: str) -> str:
    """`text` with every token, bearer credential and registered secret replaced."""
    pattern = _values_pattern
    if pattern is not None:
        text = pattern.sub(REDACTED, text)
    for token in _TOKEN_PATTERNS:
        text = token.sub(REDACTED, text)
    return _BEARER.sub(rf"\1 {REDACTED}", text)


def _redact_any(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: _redact_any(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redact_any(v) for v in value]
    if value is None or isinstance(value, bool | int | float):
        return value
    return redact(str(value))


class RedactionFilter(logging.Filter):
    """Redact the message, its arguments, the exception and stack text of every record.

    The message is formatted once with its arguments and redacted as a whole (a token may
    be split across the format string and an argument); `args` is then emptied, so every
    handler after this one sees only the redacted text.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a bad format string must not lose the record
            message = f"{record.msg!r} {record.args!r}"
        record.msg = redact(message)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in list(vars(record).items()):
            if key not in _RECORD_FIELDS:
                setattr(record, key, _redact_any(value))
        return True


class RequestIdFilter(logging.Filter):
    """Put the current request id (or None) on every record as `request_id`."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, request_id, extras, error."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", None),
            "thread": record.threadName,
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and key not in entry:
                entry[key] = value
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = record.stack_info
        # Redacted again here: a record may reach this formatter without the filter.
        return jsonlib.dumps(_redact_any(entry), ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    """The human format, with the request id when there is one, redacted as a whole."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s%(request)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        request_id = getattr(record, "request_id", None)
        record.request = f" [{request_id}]" if request_id else ""
        return redact(super().format(record))


class _Handler(logging.StreamHandler[TextIO]):
    """Writes to `stream`, or to whatever `sys.stderr` is at the time of each record."""

    def __init__(self, stream: TextIO | None) -> None:
        super().__init__(stream if stream is not None else sys.stderr)
        self._follow_stderr = stream is None

    def emit(self, record: logging.LogRecord) -> None:
        if self._follow_stderr:
            self.stream = sys.stderr
        super().emit(record)


def log_handler(stream: TextIO | None = None, *, json: bool = True) -> logging.Handler:
    """A stream handler with request ids, redaction and the JSON (or text) format; without
    `stream`, it writes to the current `sys.stderr`."""
    handler = _Handler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactionFilter())
    handler.setFormatter(JsonFormatter() if json else TextFormatter())
    return handler


def configure_logging(level: str, json: bool, stream: TextIO | None = None) -> logging.Handler:
    """Log at `level` (debug, info, warning, error) to stderr, as JSON lines or text.

    Replaces the handler an earlier call installed (and nothing else) on the root logger,
    so it may be called again, e.g. once the configuration is known.
    """
    number = logging.getLevelName(level.upper())
    if not isinstance(number, int):
        raise ValueError(f"unknown log level {level!r}")
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, _Handler)]:
        root.removeHandler(old)
    handler = log_handler(stream, json=json)
    root.addHandler(handler)
    root.setLevel(number)
    logging.captureWarnings(True)
    return handler
