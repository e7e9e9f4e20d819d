"""A fake Slack Web API, response_url endpoint and Socket Mode, real enough for slack_sdk and Bolt.

`FakeSlack` (server.py) is assembled from one module per job on the loopback-server base the
fakes share (tests/fakes/loopback.py); see server.py for what it plays and how.
"""

from .blockkit import MESSAGE_BLOCK_LIMIT, MODAL_BLOCK_LIMIT, validate_blocks, validate_view
from .messages import TEXT_LIMIT, TEXT_SOFT_LIMIT
from .ratelimit import RESPONSE_URL
from .records import (
    ACK_DEADLINE,
    AckRecord,
    CallRecord,
    EnvelopeRecord,
    ResponseRecord,
    SocketRecord,
)
from .server import DEFAULT_SIGNING_SECRET, FakeSlack
from .socket_mode import SOCKET_PATH

__all__ = [
    "ACK_DEADLINE",
    "DEFAULT_SIGNING_SECRET",
    "MESSAGE_BLOCK_LIMIT",
    "MODAL_BLOCK_LIMIT",
    "RESPONSE_URL",
    "SOCKET_PATH",
    "TEXT_LIMIT",
    "TEXT_SOFT_LIMIT",
    "AckRecord",
    "CallRecord",
    "EnvelopeRecord",
    "FakeSlack",
    "ResponseRecord",
    "SocketRecord",
    "validate_blocks",
    "validate_view",
]
