"""A streamed answer's body that tells how its delivery ended.

A request's AuditEvent is recorded when its answer is made, before a byte of a streamed body
is sent, so an export file's download cut mid-way read as delivered.  The WSGI server asks
for each chunk of the body once it has written the one before, and calls ``close()`` on it
whatever happened (PEP 3333), on Flask's development server and under gunicorn alike; a
``Response.call_on_close`` never ran for ``send_file``'s zero-copy passthrough, which the
server never iterates.  So the body itself is the witness: it counts what was written and
says once, at its end, whether it was sent whole, cut by the client (closed early: the
client left, or a write to it failed) or ended by the server failing to read on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from gateway.security.audit import now_recorded

#: how a body ended (the keys of ``gateway.security.audit.DELIVERY_OUTCOMES``)
WHOLE, CUT, FAILED = "whole", "cut", "failed"


@dataclass(frozen=True, slots=True)
class Ended:
    """How a body's delivery ended: how, when it began and ended, the bytes the server wrote
    and the whole size when known."""

    how: str
    start: str
    end: str
    sent: int
    size: int | None


class Delivery:
    """An answer's body over ``chunks``: an iterator the WSGI server drives, that calls its
    listener (:meth:`on_end`) exactly once when it ends.

    ``sent`` counts the chunks the server came back for after writing them whole to the
    connection: a chunk whose write failed is not counted, even in part.  Written is not
    received: of a cut download's count the client may have read less (the socket's buffers
    held the rest) or a part of the next chunk more."""

    def __init__(self, chunks: Iterator[bytes], size: int | None = None) -> None:
        self._chunks = chunks
        self.size = size
        self.sent = 0
        self._held = 0  # the chunk the server is writing
        self._start: str | None = None
        self._listener: Callable[[Ended], None] | None = None
        self._ended = False

    def on_end(self, listener: Callable[[Ended], None]) -> None:
        self._listener = listener

    def __iter__(self) -> Delivery:
        return self

    def __next__(self) -> bytes:
        self.sent += self._held  # asked for more: the chunk before was written
        self._held = 0
        if self._start is None:
            self._start = now_recorded()
        try:
            chunk = next(self._chunks)
        except StopIteration:
            self._end(WHOLE)
            raise
        except Exception:
            self._end(FAILED)
            raise
        self._held = len(chunk)
        return chunk

    def close(self) -> None:
        """Called by the server once the answer is over, sent or not: a body not read to its
        end was cut by the client."""
        try:
            close = getattr(self._chunks, "close", None)
            if close is not None:
                close()
        finally:
            self._end(CUT)

    def _end(self, how: str) -> None:
        if self._ended:
            return
        self._ended = True
        if self._listener is not None:
            end = now_recorded()
            self._listener(Ended(how, self._start or end, end, self.sent, self.size))


#: bytes read from an export file at a time: large enough that the loop costs little beside
#: the socket's own writes
CHUNK = 256 * 1024


def file_chunks(path: str, chunk: int = CHUNK) -> Iterator[bytes]:
    """A file's bytes, opened when first asked for (a HEAD never opens it)."""
    with open(path, "rb") as handle:  # noqa: PTH123 - a str path, read in chunks
        while block := handle.read(chunk):
            yield block
