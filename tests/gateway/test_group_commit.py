"""Group commit on the embedded store: concurrent writers share one durable COMMIT, a failing
writer undoes only its own writes, and writers in other processes still land."""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import gateway.storage.sqlite as sqlite_module
from gateway.search.indexer import SearchIndexer
from gateway.storage import open_store, patience
from gateway.storage.sqlite import SQLiteStore
from gateway.storage.store import UNREAD, StoreError

QUEUE_TIMEOUT_S = 30  # a loaded machine may take a while to start the threads


@pytest.fixture
def sqlite_store(tmp_path: Path, indexer: SearchIndexer) -> Iterator[SQLiteStore]:
    opened = open_store(f"sqlite:///{tmp_path / 'archive.sqlite'}", indexer.rows)
    assert isinstance(opened, SQLiteStore)
    yield opened
    opened.close()


def patient(resource_id: str) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": resource_id, "gender": "female"}


def wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + QUEUE_TIMEOUT_S
    while not condition():
        assert time.monotonic() < deadline, "the writers did not queue in time"
        time.sleep(0.005)


def queued_behind_a_slow_writer(
    store: SQLiteStore, ids: list[str], failing: str | None = None, refused: str | None = None
) -> list[str]:
    """The first id's writer holds the turn until every other writer is queued behind it;
    returns the ids whose writer raised.  ``failing`` raises after writing; ``refused``
    writes a version 1 of a resource that already has one, which the database refuses."""
    release = threading.Event()
    failed: list[str] = []

    def write(resource_id: str) -> None:
        try:
            with store.transaction() as tx:
                tx.resources.write(patient(resource_id), current=None if resource_id == refused else UNREAD)
                if resource_id == ids[0]:
                    release.wait()
                if resource_id == failing:
                    raise ValueError("this writer fails after writing")
        except (ValueError, StoreError):
            failed.append(resource_id)

    first = threading.Thread(target=write, args=(ids[0],))
    first.start()
    wait_until(lambda: store._writer._group is not None)  # noqa: SLF001 - the first writer holds the turn
    others = [threading.Thread(target=write, args=(resource_id,)) for resource_id in ids[1:]]
    for thread in others:
        thread.start()
    wait_until(lambda: store._writer.queued == len(others))  # noqa: SLF001
    release.set()
    for thread in [first, *others]:
        thread.join()
    return failed


def stored_ids(store: SQLiteStore) -> set[str]:
    with store.reading() as tx:
        return {row[0] for row in tx.sql.all("SELECT id FROM resource WHERE type = 'Patient'")}


def test_writers_queued_together_share_one_commit(sqlite_store: SQLiteStore) -> None:
    before = sqlite_store._writer.commits  # noqa: SLF001 - the statistic under test
    queued_behind_a_slow_writer(sqlite_store, [f"p{n}" for n in range(6)])
    assert sqlite_store._writer.commits - before == 1  # noqa: SLF001


def test_every_member_of_a_shared_commit_is_stored(sqlite_store: SQLiteStore) -> None:
    ids = [f"p{n}" for n in range(6)]
    queued_behind_a_slow_writer(sqlite_store, ids)
    assert stored_ids(sqlite_store) == set(ids)


def test_a_failing_member_undoes_only_its_own_writes(sqlite_store: SQLiteStore) -> None:
    ids = [f"p{n}" for n in range(6)]
    queued_behind_a_slow_writer(sqlite_store, ids, failing="p3")
    assert stored_ids(sqlite_store) == set(ids) - {"p3"}


def test_a_failing_member_is_answered_once_what_it_saw_is_committed(sqlite_store: SQLiteStore) -> None:
    """A member that fails on what another member of its group wrote (a PATCH's 412 against
    that version) answers once the group's COMMIT holds it.  Answered at once, the PATCH read
    again from its own connection the version before the group's, was overtaken again, and
    after ten attempts answered a 412 to a client that had sent no If-Match."""
    with sqlite_store.transaction() as tx:
        tx.resources.write(patient("p"))
    release, inside, read = threading.Event(), threading.Event(), threading.Event()
    seen: list[int] = []

    def writer() -> None:
        with sqlite_store.transaction() as tx:
            tx.resources.write({**patient("p"), "gender": "male"})
            release.wait(QUEUE_TIMEOUT_S)

    def failing() -> None:
        try:
            with sqlite_store.transaction():
                inside.set()
                wait_until(lambda: sqlite_store._writer.queued == 1)  # noqa: SLF001 - the late writer waits
                raise ValueError("overtaken by the version the writer wrote")
        except ValueError:
            with sqlite_store.reading() as tx:
                seen.append(tx.resources.read("Patient", "p").version)  # type: ignore[union-attr]
            read.set()

    def late() -> None:
        with sqlite_store.transaction() as tx:
            read.wait(2)  # a failing member answered at once reads before this commits
            tx.resources.write(patient("q"))

    threads = [threading.Thread(target=writer), threading.Thread(target=failing), threading.Thread(target=late)]
    threads[0].start()
    wait_until(lambda: sqlite_store._writer._group is not None)  # noqa: SLF001 - the writer holds the turn
    threads[1].start()
    wait_until(lambda: sqlite_store._writer.queued == 1)  # noqa: SLF001
    release.set()
    inside.wait(QUEUE_TIMEOUT_S)
    threads[2].start()
    for thread in threads:
        thread.join(QUEUE_TIMEOUT_S)
    assert seen == [2]


def test_a_member_whose_queued_row_is_refused_fails_alone(sqlite_store: SQLiteStore) -> None:
    """A write's rows go in when its transaction ends: the database refusing one must undo
    that member's writes only, not leave the group unable to commit."""
    with sqlite_store.transaction() as tx:
        tx.resources.write(patient("taken"))
    failed = queued_behind_a_slow_writer(sqlite_store, ["p0", "p1", "taken", "p3"], refused="taken")
    assert (failed, stored_ids(sqlite_store)) == (["taken"], {"p0", "p1", "p3", "taken"})


def test_a_write_transaction_inside_another_is_refused(sqlite_store: SQLiteStore) -> None:
    with sqlite_store.transaction(), pytest.raises(StoreError), sqlite_store.transaction():
        pass


def test_a_writer_returns_only_once_its_commit_is_synced_to_the_log(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[Path] = []
    monkeypatch.setattr(sqlite_module, "sync_data", synced.append)
    with sqlite_store.transaction() as tx:
        tx.resources.write(patient("p1"))
    assert synced == [sqlite_store.path.with_name(sqlite_store.path.name + "-wal")]


def test_a_group_whose_every_member_failed_waits_for_no_disk(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Nothing was kept, so nothing needs to be made durable: a refused write (a 409, a
    $validate rehearsal, which always rolls back) paid a sync of the log for nothing."""
    synced: list[Path] = []
    monkeypatch.setattr(sqlite_module, "sync_data", synced.append)
    with pytest.raises(ValueError), sqlite_store.transaction() as tx:
        tx.resources.write(patient("p1"))
        raise ValueError("refused after writing")
    assert synced == []


def test_a_commit_the_disk_refuses_is_the_writers_error(
    sqlite_store: SQLiteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(path: Path) -> None:
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(sqlite_module, "sync_data", refuse)
    with pytest.raises(StoreError, match="durable"), sqlite_store.transaction() as tx:
        tx.resources.write(patient("p1"))


def _write_many(url: str, prefix: str, count: int) -> None:
    store = open_store(url)
    try:
        for n in range(count):
            with store.transaction() as tx:
                tx.resources.write(patient(f"{prefix}{n}"))
    finally:
        store.close()


def test_writers_in_two_processes_all_land(sqlite_store: SQLiteStore) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_write_many, args=(sqlite_store.url, prefix, 40)) for prefix in "ab"]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert len(stored_ids(sqlite_store)) == 80


def test_closing_the_store_waits_for_a_write_in_progress(tmp_path: Path, indexer: SearchIndexer) -> None:
    """Closed under the writing thread's statement, SQLite crashed the test process (a worker's
    exchange rows being appended while its store shut down)."""
    url = f"sqlite:///{tmp_path / 'archive.sqlite'}"
    store, inside, failures = open_store(url, indexer.rows), threading.Event(), []

    def write() -> None:
        try:
            with store.transaction() as tx:
                tx.resources.write(patient("p1"))
                inside.set()
                time.sleep(0.3)
        except Exception as exc:  # noqa: BLE001 - what the test reports
            failures.append(exc)

    writer = threading.Thread(target=write)
    writer.start()
    inside.wait(10)
    store.close()
    writer.join(10)
    reopened = open_store(url, indexer.rows)
    with reopened.reading() as tx:
        found = tx.resources.read("Patient", "p1")
    reopened.close()
    assert (failures, found is not None) == ([], True)


def test_contended_waits_of_patient_requests_share_one_lock_taker(sqlite_store: SQLiteStore) -> None:
    """A request (a patient writer, ``patience.py``) that finds another process's file lock
    held waits for it through a thread that can be left waiting if it gives up.  That thread
    was started anew for every contended wait (about 70 µs of CPU each); it is now one per
    process, asked by signal."""
    other = open_store(sqlite_store.url)  # its own file lock, as another process's
    takers: list[threading.Thread] = []

    def hold(holding: threading.Event) -> None:
        with other.transaction():
            holding.set()
            wait_until(lambda: any(thread.name == "yiyang-file-lock" for thread in threading.enumerate()))
            takers.append(next(thread for thread in threading.enumerate() if thread.name == "yiyang-file-lock"))
            time.sleep(0.2)  # not a measure: the writer reaches the lock's wait

    token = patience.be_patient(patience.Patience(threading.Event(), after_stop=5))
    try:
        for n in range(3):
            holding = threading.Event()
            holder = threading.Thread(target=hold, args=(holding,))
            holder.start()
            holding.wait(QUEUE_TIMEOUT_S)
            with sqlite_store.transaction() as tx:
                tx.resources.write(patient(f"p{n}"))
            holder.join(QUEUE_TIMEOUT_S)
    finally:
        patience.reset(token)
        other.close()
    assert len({id(taker) for taker in takers}) == 1
