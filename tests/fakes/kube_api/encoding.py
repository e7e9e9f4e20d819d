"""Request bodies and JSON as the API server reads and writes them."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from .errors import ApiError

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";")[0].strip().lower()


def _parse_body(raw: bytes, content_type: str | None, method: str) -> Any:
    kind = _media_type(content_type)
    try:
        if kind == APPLY_PATCH or kind.endswith("yaml"):
            return yaml.safe_load(raw)
        return json.loads(raw)
    except (ValueError, yaml.YAMLError) as err:
        raise ApiError(400, "BadRequest", f"error decoding {method} body: {err}") from None


def _parse_body_for_log(raw: bytes, content_type: str | None) -> Any:
    if not raw:
        return None
    try:
        return _parse_body(raw, content_type, "")
    except ApiError:
        return raw.decode(errors="replace")


def _is_file(text: str) -> bool:
    try:
        return Path(text).is_file()
    except OSError:  # a long one-line YAML document is no file name
        return False


def _status_response(err: ApiError) -> web.Response:
    return web.Response(
        body=_dumps(err.body),
        status=err.code,
        content_type="application/json",
        headers=err.headers,
    )
