"""How long a request waits for another process's lock on the store once its worker is told to
stop.

A serving worker told to stop (SIGTERM, Ctrl-C) is killed ``YIYANG_GRACEFUL_TIMEOUT`` seconds
later, waiting or not.  A request waiting for the SQLite write lock that another process held
(a ``yiyang ingest`` into the same file, an upgrade) went on waiting, up to
``YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS``, and was killed with its worker: its client saw the
connection drop, unanswered, not told whether to send it again.  A request's waits
now look at the worker's stop (``Services.stopping``) every :data:`CHECK_SECONDS`; once it is
set they go on for ``after_stop`` seconds more (a lock let go meanwhile lets the request
finish) and then end with :class:`StoreStopping`, a busy store's 503 with ``Retry-After``.
The request wrote nothing: it never had the lock.

Only a request's thread is so cut short (the API sets it per request, :func:`be_patient`):
the audit trail's and the exchange log's writers still wait, to write what the stopping
worker answered.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextvars import ContextVar, Token

from gateway.storage.store import StoreError

#: how often a waiting request looks whether its worker is stopping: a lock let go wakes it at
#: once, whatever this is
CHECK_SECONDS = 0.1


class StoreStopping(StoreError):
    """The process is stopping, and the lock another process holds was not let go in time:
    the request gave up waiting for it, having written nothing."""

    def __init__(self, waited_for: str) -> None:
        super().__init__(f"the process is stopping: gave up waiting for {waited_for}")


class Patience:
    """A request's patience with a busy store: unbounded (the store's own wait) until
    ``stopping`` is set, then ``after_stop`` seconds more."""

    def __init__(self, stopping: threading.Event, after_stop: float) -> None:
        self.stopping = stopping
        self.after_stop = after_stop
        #: when a waiter first saw ``stopping`` set (monotonic): every wait counts from it
        self._seen: float | None = None

    def exhausted(self) -> bool:
        if not self.stopping.is_set():
            return False
        now = time.monotonic()
        if self._seen is None:
            self._seen = now
        return now - self._seen >= self.after_stop

    def wait(self, done: Callable[[float], bool], waited_for: str) -> None:
        """Call ``done(timeout)`` (a wait of at most ``timeout`` seconds, true once what it
        waits for has come) until it is true, or the patience is exhausted: then
        :class:`StoreStopping`."""
        while not done(CHECK_SECONDS):
            if self.exhausted():
                raise StoreStopping(waited_for)


#: this thread's patience: None outside a request (a command, the audit trail's writer), which
#: waits as long as the store would
_PATIENCE: ContextVar[Patience | None] = ContextVar("patience", default=None)


def current() -> Patience | None:
    return _PATIENCE.get()


def be_patient(patience: Patience | None) -> Token[Patience | None]:
    """From now on, this thread's waits for the store end as ``patience`` says (a request's,
    set by the API until :func:`reset` with the token returned)."""
    return _PATIENCE.set(patience)


def reset(token: Token[Patience | None]) -> None:
    _PATIENCE.reset(token)
