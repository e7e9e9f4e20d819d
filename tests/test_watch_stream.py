"""The chunked coding of watch streams, undone as bytes arrive (bot/kube/watchstream.py).

The end-to-end behaviour (events in pieces, HTTPS, drops, 410) is tested through the fake API
server in tests/test_watch_cache.py; this covers every way the coding can be cut between reads,
which real HTTP only exercises by chance.
"""

from __future__ import annotations

import pytest
import urllib3.exceptions as u3
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.kube.watchstream import ChunkedDecoder


def _encode(pieces: list[bytes], extension: bool, trailer: bool) -> bytes:
    """A chunked body per RFC 9112 section 7.1: hex size (maybe with an extension), data, the
    last chunk, an optional trailer field, the final CRLF."""
    out = b""
    for piece in pieces:
        out += f"{len(piece):X}".encode() + (b";note=x" if extension else b"") + b"\r\n"
        out += piece + b"\r\n"
    out += b"0\r\n" + (b"Expires: never\r\n" if trailer else b"") + b"\r\n"
    return out


def _feed_in(decoder: ChunkedDecoder, data: bytes, cuts: list[int]) -> bytes:
    out = b""
    start = 0
    for cut in [*sorted({c % (len(data) + 1) for c in cuts}), len(data)]:
        out += decoder.feed(data[start:cut])
        start = cut
    return out


@settings(max_examples=300, deadline=None)
@given(
    pieces=st.lists(st.binary(min_size=1, max_size=40), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=10_000), max_size=30),
    extension=st.booleans(),
    trailer=st.booleans(),
)
def test_a_chunked_body_cut_anywhere_decodes_to_the_same_bytes(
    pieces: list[bytes], cuts: list[int], extension: bool, trailer: bool
) -> None:
    decoder = ChunkedDecoder()
    body = _feed_in(decoder, _encode(pieces, extension, trailer), cuts)
    assert body == b"".join(pieces)
    assert decoder.ended


def test_a_body_fed_one_byte_at_a_time_ends_only_with_its_last_chunk() -> None:
    data = _encode([b'{"type":"ADDED"}\n', b'{"type":"DELETED"}\n'], False, False)
    decoder = ChunkedDecoder()
    body = b""
    for i in range(len(data)):
        assert not decoder.ended
        body += decoder.feed(data[i : i + 1])
    assert decoder.ended
    assert body == b'{"type":"ADDED"}\n{"type":"DELETED"}\n'


@pytest.mark.parametrize(
    "data",
    [
        b"zz\r\nabc\r\n",  # a size that is not hex
        b"3\r\nabcX\r\n",  # data longer than its size said
        b"-3\r\nabc\r\n",  # a negative size
        b"1" * 5000,  # a size line that never ends
    ],
    ids=["not-hex", "overrun", "negative", "endless-size-line"],
)
def test_a_broken_chunked_coding_is_a_protocol_error(data: bytes) -> None:
    with pytest.raises(u3.ProtocolError):
        ChunkedDecoder().feed(data)
