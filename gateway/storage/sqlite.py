"""The embedded store: one SQLite file, WAL, every commit durable before it is acknowledged.

Reads use one connection per thread (a gunicorn worker is one process; gthread workers, the
development server and the tests use threads).  Writes go through one connection per process
and share their commits (``group_commit.py``); processes take turns on a file lock, and beyond
it writers queue on the database's write lock for up to ``busy_timeout_s`` instead of failing:
two ingests into one store take turns, and neither turns good records into quarantine because
the other held the lock.  The write-ahead log is copied back into the database by a thread of
each writing process (``checkpointer.py``), not inside a commit.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

from gateway.storage import SQLITE_BUSY_TIMEOUT_SECONDS, sqlite_path
from gateway.storage.checkpointer import Checkpointer
from gateway.storage.dialect import SQLITE
from gateway.storage.file_sync import HeldFile, sync_data
from gateway.storage.group_commit import GroupCommit
from gateway.storage.store import Connection, Executor, Indexer, Store, StoreError

#: page cache of each reading connection (and the checkpointer's), in KiB.  Pages of the
#: database file are read through the memory map below (beyond it, from the system's file
#: cache) and take no room here; what a reader caches are the pages it finds in the
#: write-ahead log.  At 64 MiB per connection the caches were most of what an ingest's memory
#: grew by: a 20,000-row ingest peaked at 299 MB of anonymous memory, and at 182–187 MB with
#: these two sizes, no slower (156–170 s against 165–181 s, alternating runs)
CACHE_KIB = 8 * 1024
#: page cache of the writer connection, in KiB: it holds the pages a transaction dirties until
#: its COMMIT (an ingest batch of 200 records dirties about 14 MiB; beyond the cache SQLite
#: writes them to the log early, which costs no correctness)
WRITER_CACHE_KIB = 16 * 1024
#: the database file is read through a memory map this large (SQLite's builds cap it near
#: 2 GiB): a write touches a leaf page of four index B-trees per index row, mostly outside the
#: page cache on a large archive, and a mapped page costs no read() call and no copy.  Measured
#: on 300,000 resources: creates +10–25 %, reads by id +14 % (bench.server)
MMAP_BYTES = 2 * 1024**3
#: rows ANALYZE samples per index: enough to tell a unique key from a shared one, and a
#: bounded cost (about 20 ms on a store of 300,000 resources)
ANALYSIS_LIMIT = 1000


class SQLiteStore(Store):
    dialect = SQLITE
    errors = (sqlite3.Error,)

    def __init__(
        self, url: str, indexer: Indexer | None = None, *, busy_timeout_s: int = SQLITE_BUSY_TIMEOUT_SECONDS
    ) -> None:
        super().__init__(url, indexer)
        #: seconds a connection waits for another's lock (``YIYANG_SQLITE_BUSY_TIMEOUT_SECONDS``)
        self.busy_timeout_s = busy_timeout_s
        self.path = sqlite_path(url)
        # health data: a new folder and database are the owner's alone
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        if not self.path.exists():
            os.close(os.open(self.path, os.O_CREAT | os.O_WRONLY, 0o600))
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._guard = threading.Lock()
        self._log = self.path.with_name(self.path.name + "-wal")
        self._log_synced_by_commit = True
        self._writer = GroupCommit(
            self._open_writer,
            lambda connection: Executor(connection, self.dialect, self.errors),
            self.path.with_name(self.path.name + "-writer"),
            self._sync_log,
            busy_timeout_s,
        )
        #: synced by the checkpointer, closed after every connection (see HeldFile)
        self._database_file = HeldFile(self.path)
        self._checkpointer = Checkpointer(
            lambda: self._open(CACHE_KIB), self._writer.after_next_commit, self._database_file
        )

    def _open(self, cache_kib: int) -> sqlite3.Connection:
        try:
            connection = sqlite3.connect(
                self.path, timeout=self.busy_timeout_s, isolation_level=None, check_same_thread=False
            )
            _enter_wal(connection, self.busy_timeout_s)
            connection.execute("PRAGMA synchronous = FULL")
            connection.execute("PRAGMA wal_autocheckpoint = 0")  # the Checkpointer's thread does it
            connection.execute(f"PRAGMA cache_size = -{cache_kib}")
            connection.execute(f"PRAGMA mmap_size = {MMAP_BYTES}")
            connection.execute(f"PRAGMA analysis_limit = {ANALYSIS_LIMIT}")
            connection.execute("PRAGMA busy_timeout = 0")  # refresh statistics only if no one writes
            _analyze(connection)
            connection.execute(f"PRAGMA busy_timeout = {self.busy_timeout_s * 1000}")
        except sqlite3.Error as exc:
            raise StoreError(f"{self.path}: {exc}") from exc
        with self._guard:
            self._all.append(connection)
        return connection

    def _open_writer(self) -> sqlite3.Connection:
        """The writer's COMMIT leaves the write-ahead log unsynced: the group commit syncs it
        after letting the next writer in (``group_commit.py``).  Only in WAL mode, where an
        unsynced commit can be lost but never corrupt the database; a file system without
        WAL support keeps the rollback journal, and every commit syncs as before."""
        connection = self._open(WRITER_CACHE_KIB)
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        self._log_synced_by_commit = mode != "wal"
        if not self._log_synced_by_commit:
            connection.execute("PRAGMA synchronous = NORMAL")
        return connection

    def _sync_log(self) -> None:
        if not self._log_synced_by_commit:
            sync_data(self._log)

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._local.connection = self._open(CACHE_KIB)
        yield connection

    @contextmanager
    def _writing(self) -> Iterator[Executor]:
        self._checkpointer.started()
        with self._writer.transaction() as executor:
            yield executor

    def _lock(self, executor: Executor, name: str, wait: bool) -> bool:
        """BEGIN IMMEDIATE already made this the only writer."""
        return True

    def analyze(self) -> None:
        with self._connection() as connection:
            _analyze(connection)  # type: ignore[arg-type]

    def _rows_counted(self) -> int:
        """The rows ``sqlite_stat1`` gives ``resource``'s indexes (each stat begins with them),
        none before the first ANALYZE of a store holding any."""
        with self._connection() as connection:
            try:
                row = connection.execute(
                    "SELECT MAX(CAST(stat AS INTEGER)) FROM sqlite_stat1 WHERE tbl = 'resource'"
                ).fetchone()
            except sqlite3.OperationalError:  # no such table: never analysed
                return 0
        return int(row[0] or 0) if row else 0

    def close(self) -> None:
        self._writer.close()
        self._checkpointer.close()
        with self._guard:
            for connection in self._all:
                connection.close()
            self._all.clear()
        self._database_file.close()
        self._local = threading.local()


def _enter_wal(connection: sqlite3.Connection, timeout_s: int) -> None:
    """Switch a new database file to WAL, taking turns with other processes doing the same.

    The switch upgrades a shared lock to an exclusive one; when two processes open a new
    store at once, both hold the shared lock and SQLite answers one of them "database is
    locked" at once rather than deadlock, without calling the busy handler.  Once one has
    switched, the others' switch is a no-op, so trying again shortly ends it (for up to
    ``timeout_s``)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _analyze(connection: sqlite3.Connection) -> None:
    """Refresh the query planner's statistics, if no one holds the write lock right now.

    Without them SQLite guesses that any range on an index is selective, and probes the rows
    of every person named 吴 instead of the resource's own few (40 ms against 0.1 ms for a
    name + birthdate search).  Best effort: a writer holding the lock means the statistics
    wait for the next connection or the end of that writer's ingest."""
    try:
        connection.execute("ANALYZE")
    except sqlite3.OperationalError:  # database is locked: another time
        pass
