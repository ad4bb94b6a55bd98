"""Group commit for the embedded store: concurrent write transactions share one durable COMMIT.

Why: SQLite has one writer at a time, and a durable COMMIT waits for the disk.  A validated
create needs well under a millisecond of database work but its own commit costs one to several
milliseconds, and two worker processes that both want the write lock used to meet SQLite's busy
handler, which *sleeps* (1, 2, 5 … 100 ms) instead of waking when the lock is free.  Here:

* the threads of one process take turns on one writer connection, each inside its own
  SAVEPOINT, so a request that fails (a 412, a 422, a conflict) undoes only its own writes;
* whoever finishes while no other thread is queued commits for everyone in the group (at most
  :data:`MAX_GROUP` members, so a busy process still hands the lock over); the others wait
  for that commit, so no caller hears "done" before its data is on disk, and if the COMMIT
  fails every member gets the error;
* processes take turns on an ``flock`` held from BEGIN to COMMIT, a kernel lock that wakes a
  waiting process as soon as it is free;
* a request whose worker is told to stop gives up waiting for another process's lock, in
  time to be answered before the worker is killed (``patience.py``);
* the wait for the disk comes after the lock: the writer connection commits without syncing
  the write-ahead log (``synchronous = NORMAL``, which keeps the log consistent), and the
  committer syncs the log itself once the next writer may begin, then wakes its group.  A
  sync covers everything written to the log before it, so the syncs of two processes'
  commits overlap instead of queueing (on 300,000 resources the sync was a third of the
  time a create held the lock: a COMMIT took 0.66–0.72 ms with it, 0.33–0.38 ms without).

Atomicity is unchanged: a member's writes commit together with the group or not at all, and
a process killed mid-group leaves the database as the last commit left it.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

from gateway.storage import patience
from gateway.storage.store import Executor, StoreError

try:  # POSIX; elsewhere SQLite's own busy handler orders the processes
    import fcntl
except ImportError:  # pragma: no cover - not on the platforms the gateway is served from
    fcntl = None  # type: ignore[assignment]

#: members per commit at most: beyond this a busy process commits and lets another in
MAX_GROUP = 32
#: milliseconds SQLite's busy handler waits at a time to begin a write (``_begin_immediate``):
#: between such waits a request looks whether its worker is stopping (``patience.py``)
BUSY_SLICE_MS = 100


class _Group:
    """The transactions that will be made durable by one COMMIT."""

    def __init__(self) -> None:
        self.members = 0
        self.kept = 0  # members whose writes stand: with none, there is nothing to make durable
        self.broken = False  # a member could not undo its own writes: the group must not commit
        self.error: StoreError | None = None
        self.done = threading.Event()


class GroupCommit:
    """One process's writer connection, shared by its threads transaction by transaction."""

    def __init__(
        self,
        connect: Callable[[], Any],
        executor: Callable[[Any], Executor],
        lock_path: Path,
        sync_log: Callable[[], None],
        busy_timeout_s: float = 60,
    ) -> None:
        """``busy_timeout_s``: the writer connection's own wait for another's lock."""
        self._connect = connect
        self._executor = executor
        self._lock_path = lock_path
        self._sync_log = sync_log
        self._busy_timeout_s = busy_timeout_s
        self._pid = 0
        self._inside = threading.local()
        self._ready()

    def _ready(self) -> None:
        """State is per process: a forked worker must not share its parent's connection."""
        if self._pid == os.getpid():
            return
        self._pid = os.getpid()
        self._turn = threading.Lock()  # the writer connection, one thread at a time
        self._queue_guard = threading.Lock()
        self._queued = 0
        self._group: _Group | None = None
        self._connection: Any = None
        self._lock_fd: int | None = None
        #: waits for the file lock for patient requests; started at the first that needs it
        self._taker: _LockTaker | None = None
        self._upkeep: Callable[[Any], None] | None = None
        self.commits = 0  # groups made durable by this process: write transactions / commits = sharing

    @property
    def queued(self) -> int:
        """Threads of this process waiting for their turn on the writer right now."""
        return self._queued

    @contextmanager
    def transaction(self) -> Iterator[Executor]:
        """Yields an executor inside this thread's savepoint; returns once the group's COMMIT
        holds the writes (or raises the error that lost them), and raises its own failure
        once the group's COMMIT holds what it read."""
        if getattr(self._inside, "active", False):
            raise StoreError("sqlite: a write transaction is already open in this thread")
        self._ready()
        with self._queue_guard:
            self._queued += 1
        try:
            self._take_turn()
        except BaseException:
            with self._queue_guard:
                self._queued -= 1
            raise
        self._inside.active = True
        failure: BaseException | None = None
        try:
            with self._queue_guard:
                self._queued -= 1
            group = self._group or self._begin()
            executor = self._executor(self._connection)
            executor.execute("SAVEPOINT member")
            try:
                yield executor
                executor.flush()
            except BaseException as exc:  # noqa: BLE001 - undone here, raised below
                failure = exc
                self._undo(executor, group)
            else:
                try:
                    executor.execute("RELEASE SAVEPOINT member")
                    group.kept += 1
                except StoreError as exc:
                    failure = exc
                    group.broken = True
            group.members += 1
            with self._queue_guard:
                last = self._queued == 0 or group.members >= MAX_GROUP
            if last:
                self._finish(group)
        finally:
            self._inside.active = False
            self._turn.release()
        # a failed member too waits for its group: its answer may rest on what the members
        # before it wrote (a 412 naming their version), and a retry reads from a connection of
        # its own, which sees only what is committed (a PATCH re-read the older version until
        # its attempts ran out)
        group.done.wait()
        if failure is not None:
            raise failure
        if group.error is not None:
            raise group.error

    def _take_turn(self) -> None:
        """The writer connection, once this process's other threads are done with it."""
        waiting = patience.current()
        if waiting is None:
            self._turn.acquire()
        elif not self._turn.acquire(blocking=False):
            waiting.wait(lambda seconds: self._turn.acquire(timeout=seconds), "the writer connection")

    def _begin(self) -> _Group:
        if self._connection is None:
            self._connection = self._connect()
            self._executor(self._connection).execute(f"PRAGMA busy_timeout = {BUSY_SLICE_MS}")
        self._hold_file_lock()
        try:
            self._begin_immediate()
        except BaseException:
            self._release_file_lock()
            raise
        self._group = _Group()
        return self._group

    def _begin_immediate(self) -> None:
        """BEGIN IMMEDIATE, waiting up to the busy timeout for a writer outside the file lock
        (an upgrade, a tool): in waits of SQLite's busy handler of :data:`BUSY_SLICE_MS` (the
        writer connection's), between which a request looks whether to give up."""
        executor = self._executor(self._connection)
        deadline = time.monotonic() + self._busy_timeout_s
        while True:
            try:
                executor.execute("BEGIN IMMEDIATE")
                return
            except StoreError as exc:
                if "database is locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
            waiting = patience.current()
            if waiting is not None and waiting.exhausted():
                raise patience.StoreStopping("the database's write lock")

    @staticmethod
    def _undo(executor: Executor, group: _Group) -> None:
        try:
            executor.roll_back("member")
            executor.execute("RELEASE SAVEPOINT member")
        except StoreError:
            group.broken = True

    def _finish(self, group: _Group) -> None:
        """COMMIT for the whole group (or ROLLBACK, if a member left it broken or none kept
        its writes), let the next writer in, make the commit durable and wake the group.  A
        group of refused writes alone (a 409, a ``$validate`` rehearsal) rolls back: it waited
        for a sync of the log that held nothing of it (a rehearsal: 2.4 ms median, 0.4 without)."""
        executor = self._executor(self._connection)
        committed = False
        try:
            if group.broken:
                group.error = StoreError("sqlite: a write in the same group could not be undone; nothing was kept")
                executor.execute("ROLLBACK")
            elif not group.kept:
                executor.execute("ROLLBACK")
            else:
                executor.execute("COMMIT")
                committed = True
                self.commits += 1
        except StoreError as exc:
            group.error = group.error or exc
            try:
                executor.execute("ROLLBACK")
            except StoreError:
                self._connection = None  # unusable: the next group opens a new one
        finally:
            self._group = None
            upkeep, self._upkeep = self._upkeep, None
            if upkeep is None or self._connection is None:
                try:
                    self._release_file_lock()
                finally:
                    self._wake(group, committed)
            else:
                self._wake(group, committed)  # its members answer before the upkeep is done
                try:
                    upkeep(self._connection)
                finally:
                    self._release_file_lock()

    def _wake(self, group: _Group, committed: bool) -> None:
        """Sync the log the group's COMMIT wrote (a member hears "done" only once its writes
        are on disk), then wake the members."""
        try:
            if committed:
                self._sync_log()
        except OSError as exc:
            group.error = StoreError(f"sqlite: the commit could not be made durable: {exc}")
        finally:
            group.done.set()

    def after_next_commit(self, upkeep: Callable[[Any], None]) -> None:
        """Run ``upkeep(connection)`` on the writer connection right after the next group commits,
        before any other writer of any process begins: for upkeep that must not interleave with
        writes (the checkpoint that lets the write-ahead log start over).  Its members are woken
        first, so their answers do not wait for it.  Why not take a turn of its own: a thread
        that writes in a loop takes the turn back before a waiting thread wakes, so such a turn
        may never come; the next commit always does (and with no writes, nothing needs it)."""
        self._ready()
        self._upkeep = upkeep

    def _hold_file_lock(self) -> None:
        """The processes' turn: taken at once when free; else waited for, by a patient request
        through this process's :class:`_LockTaker` (a blocking ``flock`` cannot be woken, and
        polling would let the lock lie free between looks).  A request that gave up left the
        taker asked: what it takes is this turn's."""
        if fcntl is None:
            return
        if self._lock_fd is None:
            self._lock_fd = os.open(self._lock_path, os.O_CREAT | os.O_RDWR, 0o600)
        fd = self._lock_fd
        taker = self._taker
        if taker is None or not taker.asked:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                pass
            if patience.current() is None:
                fcntl.flock(fd, fcntl.LOCK_EX)
                return
            if taker is None:
                taker = self._taker = _LockTaker()
            taker.ask(fd)
        waiting = patience.current()
        if waiting is None:
            taker.taken(None)
        else:
            waiting.wait(taker.taken, "another process's writer")

    def _release_file_lock(self) -> None:
        if fcntl is not None and self._lock_fd is not None:
            fcntl.flock(self._lock_fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the writer connection once the member writing now, if any, has finished: closed
        under another thread's statement (a worker's audit or exchange rows being appended while
        the store shut down), SQLite crashed the process."""
        if self._pid != os.getpid():
            return
        with self._turn:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
            if self._taker is not None:  # under the turn: no request is asking it meanwhile
                self._taker.close()
                self._taker = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


class _LockTaker:
    """One thread per process that takes the file lock for a patient request, which waits for
    it where it can give up (``patience.py``).  Asked by signal, not started per wait: a busy
    pair of workers contends on a large share of its writes, and a thread started per
    contended wait cost about 150 µs of CPU more than the blocking ``flock`` of a command, the
    signals 25 µs.  They are two plain locks, released by the one side and acquired by the
    other (with a ``Condition``, 50 µs).

    Only the thread holding the writer connection's turn asks, so at most one ask is
    outstanding; a request that gave up leaves it outstanding (:attr:`asked`), and the next
    turn collects the lock it takes."""

    def __init__(self) -> None:
        self._ask = threading.Lock()  # released: asked (or closed)
        self._ask.acquire()
        self._done = threading.Lock()  # released: the lock asked for is taken (or failed)
        self._done.acquire()
        self._fd: int | None = None
        self._error: OSError | None = None
        self._closed = False
        #: asked and not yet collected with :meth:`taken`
        self.asked = False
        threading.Thread(target=self._run, name="yiyang-file-lock", daemon=True).start()

    def ask(self, fd: int) -> None:
        """Take the lock on ``fd``'s open file.  The thread locks a duplicate it then closes
        (an ``flock`` belongs to the open file, not the descriptor): the store closed
        meanwhile, the descriptor's number may name another file by then."""
        self._fd = os.dup(fd)
        self.asked = True
        self._ask.release()

    def taken(self, seconds: float | None) -> bool:
        """Whether the lock asked for is held, waiting ``seconds`` at most (None: until it is);
        raises the error that kept the thread from taking it."""
        if not self._done.acquire(timeout=-1 if seconds is None else seconds):
            return False
        self.asked = False
        error, self._error = self._error, None
        if error is not None:
            raise StoreError(f"sqlite: the file lock could not be taken: {error}")
        return True

    def close(self) -> None:
        """Let the thread end once it has no lock to take (one it is waiting for ends its wait
        first, and is let go when the thread closes its duplicate)."""
        self._closed = True
        with suppress(RuntimeError):  # already released: asked, and it sees the close once it has the lock
            self._ask.release()

    def _run(self) -> None:
        while True:
            self._ask.acquire()
            fd, self._fd = self._fd, None
            if fd is None:  # closed
                return
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except OSError as exc:
                self._error = exc
            finally:
                os.close(fd)
            if self._closed:
                return
            self._done.release()
