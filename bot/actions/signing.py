"""Signed button payloads: a forged, tampered or expired click is refused.

Each button's value is `v1.<payload>.<mac>`: the payload (what to do, to which object, the
fingerprint of the state it was rendered from, an expiry and a nonce) as base64url JSON, and
an HMAC-SHA256 over it with fluxbot's button key. Only fluxbot can mint one; nobody can change
one without the MAC failing.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Final

from pydantic import BaseModel, ConfigDict, ValidationError

VERSION: Final = "v1"


class InvalidButton(Exception):
    """The click cannot be trusted or is too old; the message says which."""


class ExpiredButton(InvalidButton):
    """A genuine button past its expiry: what it was about can be shown, not acted on."""

    def __init__(self, message: str, payload: ButtonPayload) -> None:
        super().__init__(message)
        self.payload = payload


class ButtonPayload(BaseModel):
    """What a button asks for. Short field names: Slack caps a button's value at 2000 chars."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    a: str  # action
    v: str = ""  # variant: with-source, force, reset, confirm, approve, deny
    e: str  # environment
    c: str  # cluster
    k: str  # kind
    ns: str  # namespace
    n: str  # name
    s: str = ""  # material state fingerprint when rendered
    x: int  # expiry, Unix seconds
    i: str = ""  # nonce, so one click is acted on once
    r: int = 0  # rollback target revision
    q: str = ""  # requester's user ID (approval requests)


def new_nonce() -> str:
    """A random nonce for one button."""
    return secrets.token_urlsafe(9)


def sign(payload: ButtonPayload, key: bytes) -> str:
    """The button value for `payload`."""
    body = _b64(payload.model_dump_json(exclude_defaults=True).encode())
    return f"{VERSION}.{body}.{_mac(body, key)}"


def verify(value: str, key: bytes, now: float) -> ButtonPayload:
    """The payload of a genuine, unexpired button value; InvalidButton otherwise."""
    parts = value.split(".")
    if len(parts) != 3 or parts[0] != VERSION:
        raise InvalidButton("this button was not made by fluxbot")
    _version, body, mac = parts
    if not hmac.compare_digest(mac, _mac(body, key)):
        raise InvalidButton("this button's signature does not match: refused")
    try:
        payload = ButtonPayload.model_validate(json.loads(_unb64(body)))
    except (ValueError, ValidationError) as err:
        raise InvalidButton("this button's payload is malformed") from err
    if payload.x < now:
        raise ExpiredButton("this button has expired; here is the current state", payload)
    return payload


def _mac(body: str, key: bytes) -> str:
    return _b64(hmac.new(key, body.encode(), hashlib.sha256).digest()[:20])


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
