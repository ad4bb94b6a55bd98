"""The embedded store's write-ahead log is copied back off the commit path, and still starts
over: under a steady stream of writes it stays short (gateway/storage/checkpointer.py)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import gateway.storage.checkpointer as checkpointer
from gateway.storage import open_store
from gateway.storage.file_sync import HeldFile
from gateway.storage.sqlite import SQLiteStore


def log_frames(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()[1])


def write_people(store: SQLiteStore, first: int, count: int) -> None:
    for number in range(first, first + count):
        with store.transaction() as tx:
            tx.resources.write({"resourceType": "Patient", "id": f"p{number}", "gender": "female"})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLiteStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'archive.sqlite'}")
    assert isinstance(opened, SQLiteStore)
    yield opened
    opened.close()


def test_a_commit_does_not_checkpoint_the_log_itself(store: SQLiteStore) -> None:
    store._checkpointer.interval = 3600  # the thread stays asleep: only commits could copy the log
    write_people(store, 0, 400)
    assert log_frames(store.path) > 0


def test_under_a_steady_stream_of_writes_the_log_stays_short(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(checkpointer, "RESTART_FRAMES", 64)
    store._checkpointer.interval = 0.01  # checkpoints run while the writes go on
    write_people(store, 0, 1500)
    wal = store.path.with_name(store.path.name + "-wal")
    assert wal.stat().st_size < 64 * 4096 * 16  # without restarts it holds every write's pages


def test_the_database_file_is_synced_before_the_restart_is_asked_for(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    store._checkpointer.interval = 3600  # only the explicit round below checkpoints
    write_people(store, 0, 200)
    monkeypatch.setattr(checkpointer, "RESTART_FRAMES", 64)
    events: list[object] = []
    database = HeldFile(store.path)
    monkeypatch.setattr(database, "sync", lambda: events.append("synced"))
    round_ = checkpointer.Checkpointer(
        lambda: sqlite3.connect(store.path, isolation_level=None),
        lambda upkeep: events.append("restart asked for"),
        database,
    )
    round_.checkpoint()
    assert events[-2:] == ["synced", "restart asked for"]


def test_syncing_the_database_file_leaves_the_process_its_locks(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Opened and closed to be synced, the database file lost the shared lock of every
    connection of the process (POSIX drops a process's locks on a file with any descriptor
    of it closed): another process closing its last connection then took itself for the
    only one and deleted the log this one was writing, whose next commit failed."""
    write_people(store, 0, 1)
    monkeypatch.setattr(checkpointer, "RESTART_FRAMES", 0)
    store._checkpointer.checkpoint()  # syncs the database file
    look = f"import sqlite3; c = sqlite3.connect({str(store.path)!r}); c.execute('SELECT 1 FROM resource'); c.close()"
    subprocess.run([sys.executable, "-c", look], check=True)
    write_people(store, 1, 1)
    assert store.path.with_name(store.path.name + "-wal").exists()


def test_a_second_store_closing_on_the_same_file_leaves_the_first_its_locks(
    store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A bulk export's job opens a store of its own on the server's file: closing its held
    descriptor of the database dropped the locks of the server's connections, as above."""
    write_people(store, 0, 1)
    monkeypatch.setattr(checkpointer, "RESTART_FRAMES", 0)
    store._checkpointer.checkpoint()  # the file held open for its sync
    job = open_store(f"sqlite:///{store.path}", upgrade=False)
    write_people(job, 1, 1)
    job._checkpointer.checkpoint()
    job.close()
    look = f"import sqlite3; c = sqlite3.connect({str(store.path)!r}); c.execute('SELECT 1 FROM resource'); c.close()"
    subprocess.run([sys.executable, "-c", look], check=True)
    write_people(store, 2, 1)
    assert store.path.with_name(store.path.name + "-wal").exists()
