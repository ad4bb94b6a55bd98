"""Flushing a file of the embedded store to disk, where SQLite's own syncs come too late.

Two places need it: the group commit syncs the write-ahead log after handing the write lock
on (``group_commit.py``), and the checkpointer syncs the database file outside it
(``checkpointer.py``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

#: a file's content and length, without its times (macOS has no fdatasync)
_data_sync = getattr(os, "fdatasync", os.fsync)


def sync_data(path: Path) -> None:
    """Raises OSError when the disk refuses: then what was written may not survive a power cut.
    Never for the database file itself (:class:`HeldFile`)."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        _data_sync(descriptor)
    finally:
        os.close(descriptor)


class HeldFile:
    """The database file, synced through one descriptor kept open until :meth:`close`.

    Why: POSIX releases every lock a process holds on a file as soon as the process closes any
    descriptor of it, and SQLite's locks on its database are such locks.  Opened and closed to
    be synced (:func:`sync_data`), the database file lost the shared lock every connection of
    the process holds; another process closing its last connection then found itself alone,
    copied the log into the database and deleted it while this process was still writing to
    it (the next commit "could not be made durable": the log was gone), as SQLite's "How To
    Corrupt" warns (2.2).  Close it only once the process's connections to the file are closed.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._guard = threading.Lock()
        self._descriptor: int | None = None
        self._pid = 0

    def sync(self) -> None:
        """Raises OSError when the disk refuses.  A forked process opens its own descriptor and
        leaves the inherited one open: closing it would drop the locks of its own connections."""
        with self._guard:
            if self._descriptor is None or self._pid != os.getpid():
                self._descriptor, self._pid = os.open(self.path, os.O_RDWR), os.getpid()
            _data_sync(self._descriptor)

    def close(self) -> None:
        with self._guard:
            if self._descriptor is not None and self._pid == os.getpid():
                os.close(self._descriptor)
            self._descriptor = None
