"""Flushing a file of the embedded store to disk, where SQLite's own syncs come too late.

Two places need it: the group commit syncs the write-ahead log after handing the write lock
on (``group_commit.py``), and the checkpointer syncs the database file outside it
(``checkpointer.py``).
"""

from __future__ import annotations

import os
from pathlib import Path

#: a file's content and length, without its times (macOS has no fdatasync)
_data_sync = getattr(os, "fdatasync", os.fsync)


def sync_data(path: Path) -> None:
    """Raises OSError when the disk refuses: then what was written may not survive a power cut."""
    descriptor = os.open(path, os.O_RDWR)
    try:
        _data_sync(descriptor)
    finally:
        os.close(descriptor)
