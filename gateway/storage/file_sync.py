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
    """The database file, synced through one descriptor the process keeps open while any of its
    stores is open on the file.

    Why: POSIX releases every lock a process holds on a file as soon as the process closes any
    descriptor of it, and SQLite's locks on its database are such locks.  Opened and closed to
    be synced (:func:`sync_data`), the database file lost the shared lock every connection of
    the process holds; another process closing its last connection then found itself alone,
    copied the log into the database and deleted it while this process was still writing to
    it (the next commit "could not be made durable": the log was gone), as SQLite's "How To
    Corrupt" warns (2.2).  So the descriptor is one per process and file, shared by every
    store open on it (a bulk export's job opens a second store on the server's file), and
    closed only when the last of them closes.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key = os.path.realpath(path)  # once: the working directory may change meanwhile
        with _HELD_GUARD:
            self._held = _HELD.setdefault(self._key, _Held())
            self._held.users += 1
        self._closed = False

    def sync(self) -> None:
        """Raises OSError when the disk refuses.  A forked process opens its own descriptor and
        leaves the inherited one open: closing it would drop the locks of its own connections."""
        held = self._held
        with held.guard:
            if held.descriptor is None or held.pid != os.getpid():
                held.descriptor, held.pid = os.open(self.path, os.O_RDWR), os.getpid()
            _data_sync(held.descriptor)

    def close(self) -> None:
        """This store's connections are closed; the last store of the file closes it, before
        another store of the file can begin (its connections' locks would go with it)."""
        with _HELD_GUARD:
            if self._closed:
                return
            self._closed = True
            held = self._held
            held.users -= 1
            if held.users:
                return
            del _HELD[self._key]
            with held.guard:
                if held.descriptor is not None and held.pid == os.getpid():
                    os.close(held.descriptor)
                held.descriptor = None


class _Held:
    """One process's descriptor of one database file, and how many of its stores use it."""

    def __init__(self) -> None:
        self.guard = threading.Lock()
        self.descriptor: int | None = None
        self.pid = 0
        self.users = 0


#: the database files the process's stores hold, by real path
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()
