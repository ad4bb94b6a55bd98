"""A worker's buffer of rows appended to the store in batches by a background thread.

Why: the audit trail and the exchange records are written for every request, and a
transaction per request would cost more than the request.  ``record`` costs a list append; the
thread wakes every ``interval`` seconds (or at once when ``batch`` rows wait) and writes all
pending rows in one go.  A failed write keeps the rows for the next attempt; beyond ``limit``
pending rows the oldest are dropped, loudly (an unreachable store must not exhaust the worker's
memory).  A row the store itself refuses (a :class:`StoreError`) is dropped alone, loudly; a
row our own code fails on alone (a TypeError: a bug) while rows beside it go in is set aside
alone, into the log, once (:meth:`BatchWriter._set_aside`); the rows beside either are written.
A bug every row meets keeps them all, as a store that is down does.  A graceful stop, or the
process exiting, writes what is pending; a killed worker loses at most its last ``interval``.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from typing import Generic, TypeVar

from gateway.masking import mask_text
from gateway.storage.store import StoreError

Row = TypeVar("Row")
#: this process's id, kept by a hook that runs in a forked child: every request records a row
#: in two writers, and asking ``os.getpid`` (a system call) each time was a third of it
_process = os.getpid()


def _forked() -> None:
    global _process
    _process = os.getpid()


os.register_at_fork(after_in_child=_forked)


class BatchWriter(Generic[Row]):
    """Subclasses say how to write a batch (:meth:`_write`), and may turn what requests left
    into rows on the thread (:meth:`_prepare`) or ask for a write with nothing pending
    (:meth:`_due`)."""

    def __init__(self, name: str, interval: float, batch: int, limit: int) -> None:
        self.name = name
        self.interval = interval
        self.batch = batch
        self.limit = limit
        self.log = logging.getLogger(f"yiyang.{name}")
        self._pending: list[Row] = []
        self._guard = threading.Lock()
        self._flushing = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pid = 0
        #: rows our own code failed to write, each set aside into the log (:meth:`_set_aside`)
        self.set_aside = 0
        #: whether rows went in since the flush's first write failed (:meth:`_write_apart`)
        self._went_in = False

    # -- for subclasses ------------------------------------------------------------------------
    def _write(self, rows: list[Row]) -> None:
        raise NotImplementedError

    def _prepare(self, item: Row) -> Row:
        """The row to write of what a request left (made on the thread, off its path)."""
        return item

    def _due(self) -> bool:
        return False

    # -- for everyone --------------------------------------------------------------------------
    def record(self, row: Row) -> None:
        with self._guard:
            self._pending.append(row)
            count = len(self._pending)
        if self._pid != _process:  # first use in this process (a thread does not survive a fork)
            self._start()
        if count >= self.batch:
            self._wake.set()

    def pending(self) -> int:
        with self._guard:
            return len(self._pending)

    def flush(self) -> int:
        """Write every pending row now; returns how many were written (0 when the store
        refused them: they stay pending)."""
        with self._flushing:
            with self._guard:
                taken, self._pending = self._pending, []
            rows = self._prepared(taken)
            if not rows and not self._due():
                return 0
            try:
                self._write(rows)
            except Exception as error:  # noqa: BLE001 - keep the rows; the next flush tries again
                self._log_failure(len(rows), error)
                self._went_in = False
                kept = self._write_apart(rows, error)
                if not kept:
                    return len(rows)
                self.log.error("%s: %d rows kept for the next attempt", self.name, len(kept))
                self._keep(kept)
                return len(rows) - len(kept)
            return len(rows)

    def _log_failure(self, count: int, error: Exception) -> None:
        """The store's refusal (busy, down, no connection free) on one line, in its own words
        (masked, as every line of the gateway's loggers is); a bug of ours with its traceback.
        A traceback at every flush of a store that is down, through our frames and the
        driver's, flooded the log for an ordinary outage it says nothing more of."""
        if isinstance(error, StoreError):
            words = " ".join(str(error).split())
            self.log.error("%s: writing %d rows failed: %s", self.name, count, words)
        else:
            self.log.error("%s: writing %d rows failed", self.name, count, exc_info=error)

    def _keep(self, kept: list[Row]) -> None:
        """Put rows back before those pending, for the next flush; beyond ``limit``, the oldest
        are dropped, loudly."""
        with self._guard:
            self._pending[:0] = kept
            excess = len(self._pending) - self.limit
            if excess > 0:
                del self._pending[:excess]
                self.log.error("%s: %d rows dropped: the store has refused them too long", self.name, excess)

    def _prepared(self, taken: list[Row]) -> list[Row]:
        """The rows to write of what requests left (:meth:`_prepare`).  One our code fails to
        make, while others are made, is set aside (:meth:`_set_aside`): raised here, it took
        every row of the flush with it and ended the thread, so no row was written after it.
        When none is made (the code broken for every row), they are kept for the fix, as rows
        a bug fails to write are (:meth:`_write_apart`)."""
        rows: list[Row] = []
        failed: list[tuple[Row, Exception]] = []
        for item in taken:
            try:
                rows.append(self._prepare(item))
            except Exception as error:  # noqa: BLE001 - a bug of ours, to be told apart from the rest
                failed.append((item, error))
        if rows:
            for item, error in failed:
                self._set_aside(item, error)
        elif failed:
            first = failed[0][1]
            self.log.error("%s: %d rows kept for the next attempt", self.name, len(failed), exc_info=first)
            self._keep([item for item, _ in failed])
        return rows

    def _write_apart(self, rows: list[Row], error: Exception, store_up: bool = False) -> list[Row]:
        """Rows that just failed together (with ``error``), written in halves; returns those
        to keep.  A half that goes in shows the store is up, so a half the store refuses holds
        a row it refuses for good (one bad row must not hold up every later one): it is halved
        again, and once alone it is dropped, loudly.  When neither half of the first split goes
        in, a write of no rows tells whether the store is up (each half then holds a bad row,
        and both are halved as above) or down: then every row is kept for the next attempt
        (four writes that flush).

        A half that fails otherwise than by the store's refusal (a bug of ours, which a write
        of no rows need not meet) is halved too once rows of the flush went in: the bug is
        then some row's, and the row it fails on alone is set aside (:meth:`_set_aside`), as it
        would fail every later attempt, holding back the rows beside it.  While no row goes in
        (``seal`` itself broken: every row fails), the half is kept whole for the next attempt,
        as for a store that is down, and its rows wait for the fix.  The store's refusals are
        halved first, as the rows they let in are that evidence."""
        if len(rows) == 1:
            if isinstance(error, StoreError) and store_up:
                self.log.error("%s: a row the store refuses was dropped (see the error above)", self.name)
                return []
            if not isinstance(error, StoreError) and self._went_in:
                self._set_aside(rows[0], error)
                return []
            return rows
        middle = len(rows) // 2
        halves = (rows[:middle], rows[middle:])
        failures = [self._failure(half) for half in halves]
        if all(failures) and not store_up and self._failure([]):
            return rows
        kept: dict[int, list[Row]] = {}
        for index in sorted((0, 1), key=lambda index: not isinstance(failures[index], StoreError)):
            failure = failures[index]
            if failure is not None and (isinstance(failure, StoreError) or self._went_in):
                kept[index] = self._write_apart(halves[index], failure, store_up=True)
            elif failure is not None:
                kept[index] = halves[index]
        return [row for index in sorted(kept) for row in kept[index]]

    def _set_aside(self, row: Row, error: Exception) -> None:
        """Take a row our own code fails to write out of the batches, into the log: logged
        once, at ERROR, with the error and the row itself (masked, as every log line is), for
        whoever fixes the bug to enter it from there.  Kept, it failed again at every flush,
        logged each time, until ``limit`` dropped it; and the log is all that would be left
        of it at the worker's exit anyway.  Counted per process in the line (there is no
        metrics endpoint to count it in)."""
        self.set_aside += 1
        self.log.error(
            "%s: a row our code fails to write was set aside (%d in this process): %s",
            self.name,
            self.set_aside,
            mask_text(repr(row)),
            exc_info=error,
        )

    def _failure(self, rows: list[Row]) -> Exception | None:
        """Why writing ``rows`` failed, or None when they went in (which, for some rows, shows
        a bug of ours that others meet to be theirs: ``_went_in``)."""
        try:
            self._write(rows)
        except Exception as error:  # noqa: BLE001 - the caller decides what a failure means
            return error
        self._went_in = self._went_in or bool(rows)
        return None

    def close(self) -> None:
        """Stop the thread and write what is pending (a graceful stop loses nothing)."""
        self._stop.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)
        self.flush()

    def _start(self) -> None:
        with self._guard:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name=f"yiyang-{self.name}", daemon=True)
            self._thread.start()
            atexit.register(_close_at_exit, weakref.ref(self))

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.interval)
            self._wake.clear()
            self.flush()


def _close_at_exit(ref: weakref.ReferenceType[BatchWriter[object]]) -> None:
    writer = ref()
    if writer is not None and writer._pid == os.getpid():
        writer.close()
