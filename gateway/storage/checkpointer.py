"""Write-ahead-log checkpoints of the embedded store, off the commit path.

Why: SQLite copies its write-ahead log back into the database file inside the COMMIT that takes
the log past 1,000 pages.  On a store of 300,000 resources that was one commit in ten, taking
14–20 ms instead of about 1 ms (p50) — while holding the write lock every other worker waits
for.  Here the store's connections do not checkpoint on their own (``wal_autocheckpoint = 0``);
a daemon thread of each writing process runs a PASSIVE checkpoint on its own connection once a
second (:data:`INTERVAL_S`).  PASSIVE neither waits for nor blocks readers and writers: it copies what no
reader still needs, and with nothing new to copy it costs microseconds.  Two processes' threads
may both try; the second finds the work done.

PASSIVE alone never lets the log start over: under a steady stream of writes there is always a
frame it has not copied yet when the next writer begins, and the file grew by 400 KB a create.
So once the log is long, a RESTART follows the PASSIVE that just copied it, on the writer
connection right after the next group commits, while every writer waits its turn
(``GroupCommit.after_next_commit``): only the frames written in between are left to copy, and
the next writer begins the log again from its start.

A PASSIVE that runs while writers append does not sync the database file: SQLite syncs it only
once the log is copied to its end, which under load is at the RESTART.  So the RESTART used to
flush the pages of every PASSIVE since the last one, 50–80 ms on a store of 300,000 resources
with every writer waiting, once every 400 or so creates.  Before asking for it, the thread now
syncs the database file itself, copies what was written meanwhile and syncs again; the RESTART
finds a few frames and a few pages (2–6 ms in the same test).

A graceful close checkpoints once more.  A process killed outright leaves the log as it is: it
is part of the database, and the next writer's thread copies it.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable

from gateway.storage.file_sync import HeldFile

log = logging.getLogger("yiyang.storage")
#: log frames (pages) after which the log is restarted: 64 MiB of 4 KiB pages.  A restart holds
#: every writer up while it copies and syncs; at 16 MiB it came every few dozen transactions
#: under load (bench.server, SQLite: transactions 1,949 → 2,001 resources/s and creates
#: 536 → 562/s at 64 MiB, alternating runs)
RESTART_FRAMES = 16384
#: seconds between two rounds of the thread.  A round copies each page the log holds once,
#: however many commits wrote it since the last round, and a create dirties many of the same
#: pages as the creates around it (the B-trees' inner pages, the leaves of common values): on a
#: store of 60,000 resources its 47 log frames were 17 distinct pages a create over 50 creates,
#: 10 over 200.  Once a second instead of four times, the thread's CPU went from 137–220 (median
#: 204) to 116–160 (median 126) µs a create, the writer's unchanged (store-level creates at
#: 250/s, 1,500 each, alternating processes, 7 turns).  The log grows by a second's writes past
#: RESTART_FRAMES at most before its restart is asked for
INTERVAL_S = 1.0


class Checkpointer:
    """One process's checkpointing thread, started by the first write it makes (a thread does
    not survive a fork, so a process that forked from a writer starts its own)."""

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        after_next_commit: Callable[[Callable[[sqlite3.Connection], None]], None],
        database: HeldFile,
        interval: float = INTERVAL_S,
    ) -> None:
        self.connect = connect
        self.database = database
        self.after_next_commit = after_next_commit
        self.interval = interval
        self._stop = threading.Event()
        self._guard = threading.Lock()
        self._pid = 0
        self._thread: threading.Thread | None = None
        self._connection: sqlite3.Connection | None = None

    def started(self) -> None:
        """Make sure this process's thread runs (cheap after the first call)."""
        if self._pid == os.getpid():
            return
        with self._guard:
            if self._pid == os.getpid():
                return
            self._pid = os.getpid()
            self._connection = None  # a parent's connection is not this process's to use
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="yiyang-checkpoint", daemon=True)
            self._thread.start()

    def checkpoint(self) -> None:
        """Copy what the log holds into the database, as far as readers allow."""
        with self._guard:
            if self._connection is None:
                self._connection = self.connect()
            try:
                _, frames, _ = self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                if frames >= RESTART_FRAMES:
                    self.database.sync()
                    self._connection.execute("PRAGMA wal_checkpoint(PASSIVE)")
                    self.database.sync()
                    self.after_next_commit(_restart)
            except (sqlite3.Error, OSError) as exc:  # the next round tries again; the log stays valid
                log.warning("checkpoint of the write-ahead log failed: %s", exc)

    def close(self) -> None:
        """Stop the thread and checkpoint a last time (a graceful stop leaves a short log)."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread.is_alive() and thread is not threading.current_thread():
            thread.join(timeout=10)
        if self._pid == os.getpid():
            self.checkpoint()
        self._thread, self._pid, self._connection = None, 0, None

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.checkpoint()


def _restart(writer: sqlite3.Connection) -> None:
    """RESTART without waiting: it runs while every writer waits, and SQLite's busy handler
    sleeps (up to 100 ms a time) while another process checkpoints or an old reader finishes.
    When it cannot restart at once it copies what it can, and a later round asks again."""
    try:
        (waiting,) = writer.execute("PRAGMA busy_timeout").fetchone()
        writer.execute("PRAGMA busy_timeout = 0")
        try:
            writer.execute("PRAGMA wal_checkpoint(RESTART)")
        finally:
            writer.execute(f"PRAGMA busy_timeout = {int(waiting)}")
    except sqlite3.Error as exc:  # a later round asks again; the log stays valid
        log.warning("restart of the write-ahead log failed: %s", exc)
