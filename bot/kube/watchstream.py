"""One watch response, read without blocking, so one thread can follow many of them.

The official client opens the watch (the request, its authentication, its non-2xx errors);
from the response headers on, its reader blocks: `http.client` decodes the chunked body with
blocking `readline` calls on a buffered file that `select` cannot see into. A thread per watch
costs 40-60 KB (a touched stack, a frame stack, the thread's objects) and a cluster runs 15
watches. So once the headers are in, the stream is taken over here: what the client's buffer
already holds is drained once, the socket is read as `select` reports it readable, and the
chunked coding, the line framing and the JSON of each event are undone here.

The framing is what kubernetes/watch/watch.py `iter_resp_lines` reads: one JSON event per
line; a line that is not UTF-8 is decoded with replacement characters, as there.
"""

from __future__ import annotations

import contextlib
import json
import socket
import ssl
import time
from typing import Any

import orjson
import urllib3.exceptions as u3

# Bytes asked of the socket per read: a watch event is usually well under this, a burst of
# events (a relist of a kind on the server side, a bookmark after a quiet minute) is not.
_READ_SIZE = 64 * 1024

# What a non-blocking socket raises when it has nothing complete to give yet. A TLS socket
# may also want to write (a key update) before it can read: waited out the same way.
_NOTHING_YET = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class StreamNotSupported(Exception):
    """The connection cannot be read without blocking (a TLS tunnel inside TLS)."""


class ChunkedDecoder:
    """Undo HTTP/1.1 chunked transfer coding as bytes arrive (RFC 9112, section 7.1)."""

    # The size line of a chunk, extensions included: anything longer is not HTTP.
    _MAX_LINE = 4096

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._left = 0  # bytes of the current chunk's data still to come
        self._state = "size"  # size | data | crlf | trailer | done

    @property
    def ended(self) -> bool:
        """The last chunk and the trailer section have arrived: the body is complete."""
        return self._state == "done"

    def feed(self, data: bytes) -> bytes:
        """The body bytes that `data` completes; ProtocolError when it breaks the coding."""
        self._buffer += data
        out = bytearray()
        buffer = self._buffer
        while buffer and self._state != "done":
            if self._state == "data":
                take = min(self._left, len(buffer))
                out += buffer[:take]
                del buffer[:take]
                self._left -= take
                if self._left == 0:
                    self._state = "crlf"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > self._MAX_LINE:
                    raise u3.ProtocolError("chunked watch stream: a line too long")
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._state == "crlf":
                if line:
                    raise u3.ProtocolError("chunked watch stream: no CRLF after a chunk")
                self._state = "size"
            elif self._state == "size":
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise u3.ProtocolError(f"chunked watch stream: bad size {line!r}") from None
                if size < 0:
                    raise u3.ProtocolError(f"chunked watch stream: bad size {line!r}")
                self._left = size
                self._state = "data" if size else "trailer"
            elif not line:  # the empty line that ends the trailer section
                self._state = "done"
        return bytes(out)


class WatchStream:
    """A watch response whose events are read as they arrive, never waiting for more.

    `response` is the urllib3 response the client returned for a watch request made with
    `_preload_content=False`; `read_timeout` is how long, in seconds, the stream may stay
    silent (no bytes at all, not even a bookmark) before it counts as dead, as the client's
    socket read timeout would.
    """

    def __init__(self, response: Any, read_timeout: float) -> None:
        self._response = response
        # urllib3 keeps the http.client response, whose buffered file may already hold the
        # first events (read along with the headers); the version is pinned in
        # requirements.lock and the watch tests run through it.
        raw = response._fp
        self._chunked = ChunkedDecoder() if getattr(raw, "chunked", False) else None
        connection = response.connection
        sock = getattr(connection, "sock", None)
        if not isinstance(sock, socket.socket):
            raise StreamNotSupported(
                "watching needs a plain or TLS socket; this connection is "
                f"{type(sock).__name__} (an HTTPS proxy?)"
            )
        self._sock: socket.socket = sock
        # Kept: the loop forgets the stream by it after the socket is closed (fileno() is -1).
        self.fd = sock.fileno()
        self._read_timeout = read_timeout
        self._lines = bytearray()
        self._eof = False
        self.silent_since = time.monotonic()
        sock.setblocking(False)
        leftover = b""
        # The buffered file hands over what it holds without touching the socket; only when
        # it is empty does it try one (now non-blocking) read.
        with contextlib.suppress(*_NOTHING_YET):
            leftover = raw.fp.read1(_READ_SIZE)
        # Never read again: closing the buffered file frees its 8 KB buffer (12 MB at 1,500
        # watches), as http.client's own `_close_conn` does. The socket stays open: the
        # connection holds it, and close() closes it.
        buffered, raw.fp = raw.fp, None
        buffered.close()
        self._pending: list[bytes] = [leftover] if leftover else []
        # Read once before waiting: a TLS socket may hold decrypted bytes of the record the
        # headers came in, which select() cannot see.
        self._unread = True
        # Set when the connection closed mid-body: the stream is over, not cleanly.
        self.cut: Exception | None = None

    @property
    def deadline(self) -> float:
        """The monotonic time at which a silent stream counts as dead."""
        return self.silent_since + self._read_timeout

    @property
    def has_buffered(self) -> bool:
        """Bytes may already be here (read along with the headers): read without waiting."""
        return self._unread

    @property
    def ended(self) -> bool:
        """The server ended the watch (its timeout), cleanly."""
        if self._chunked is not None:
            return self._chunked.ended
        return self._eof

    def read_events(self) -> list[Any]:
        """Every complete event that has arrived, in order; never blocks.

        A connection closed before the body's end sets `cut` (a ProtocolError, as urllib3
        raises it) after the events that arrived whole before it, as the client yields them.
        """
        received = self._pending
        self._pending = []
        self._unread = False
        # Until the socket has nothing more: a TLS socket hands over one record at a time,
        # and what it decrypted but did not hand over is invisible to select().
        while not self._eof:
            try:
                data = self._sock.recv(_READ_SIZE)
            except _NOTHING_YET:
                break
            if not data:
                self._eof = True
                break
            received.append(data)
        if received:
            self.silent_since = time.monotonic()
        body = b"".join(received)
        if self._chunked is not None and body:
            body = self._chunked.feed(body)
        if self._eof and self._chunked is not None and not self._chunked.ended:
            self.cut = u3.ProtocolError("Response ended prematurely")
        return self._events(body)

    def _events(self, body: bytes) -> list[Any]:
        if not body and not (self.ended and self._lines):
            return []
        self._lines += body
        events: list[Any] = []
        lines = self._lines
        start = 0
        while (end := lines.find(b"\n", start)) >= 0:
            if end > start:
                events.append(_decode(bytes(lines[start:end])))
            start = end + 1
        del lines[:start]
        if self.ended and lines:
            # The last event without its newline: the stream is over, so it is complete.
            events.append(_decode(bytes(lines)))
            lines.clear()
        return events

    def close(self) -> None:
        """Close the connection (its state mid-stream is not reusable) and hand it back."""
        try:
            self._response.close()
        finally:
            self._response.release_conn()


def timed_out(stream: WatchStream, what: str) -> u3.ReadTimeoutError:
    """The error of a stream silent past its read timeout, as urllib3 words it."""
    return u3.ReadTimeoutError(
        None,  # type: ignore[arg-type]
        what,
        f"Read timed out. (read timeout={stream.deadline - stream.silent_since:g})",
    )


def _decode(line: bytes) -> Any:
    try:
        return orjson.loads(line)
    except orjson.JSONDecodeError:
        # Not UTF-8, or an escape orjson refuses: read as the client's iter_resp_lines does.
        return json.loads(line.decode("utf-8", errors="replace"))
