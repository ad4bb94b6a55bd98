"""The background writer of audit and exchange rows: a row the store refuses for good is
dropped alone, one our code fails on alone is set aside into the log once, and a store that
is down loses nothing."""

from __future__ import annotations

import os

import pytest

from gateway.batch_writer import BatchWriter
from gateway.storage.store import StoreError


class Store(BatchWriter[int]):
    """Takes every row but the ``bad`` ones (as a NOT NULL column refuses a None), unless
    ``down``; a ``buggy`` row fails its write before the store sees it (a TypeError of ours)."""

    def __init__(self, *bad: int, buggy: int | None = None) -> None:
        super().__init__("test-rows", interval=60, batch=10_000, limit=10_000)
        self.bad, self.buggy, self.down, self.rows = set(bad), buggy, False, []
        #: a failure of no row's, which no store error words (a pool with no connection to lend)
        self.starved = False

    def _write(self, rows: list[int]) -> None:
        if self.starved:
            raise RuntimeError("no connection to lend")
        if self.buggy in rows:
            raise TypeError("a bug")
        if self.down or self.bad.intersection(rows):
            raise StoreError("refused")
        self.rows.extend(rows)


def filled(store: Store, count: int) -> Store:
    store._pending.extend(range(count))  # appended without starting the thread
    return store


def test_one_bad_row_does_not_hold_up_the_rest() -> None:
    store = filled(Store(7), 20)
    store.flush()
    assert (sorted(store.rows), store.pending()) == ([n for n in range(20) if n != 7], 0)


@pytest.mark.parametrize("bad", [(1, 2), (0, 2), (0, 1), (0, 5, 9)])
def test_bad_rows_in_both_halves_are_dropped_and_the_rest_written(bad: tuple[int, ...]) -> None:
    store = filled(Store(*bad), 10)
    store.flush()
    assert (sorted(store.rows), store.pending()) == ([n for n in range(10) if n not in bad], 0)


def test_a_row_a_bug_of_ours_fails_is_set_aside_alone_beside_a_refused_row_dropped() -> None:
    """The half holding the row our code fails on was kept whole for the next attempt, which
    failed the same way: its four good rows waited with it, and the log said so every flush."""
    store = filled(Store(7, buggy=2), 10)
    store.flush()
    assert (sorted(store.rows), store.pending()) == ([0, 1, 3, 4, 5, 6, 8, 9], 0)


def test_a_row_set_aside_is_logged_once_not_at_every_flush(caplog: pytest.LogCaptureFixture) -> None:
    store = filled(Store(buggy=2), 10)
    store.flush()
    caplog.clear()
    store.record(10)
    store.flush()
    store.close()
    assert caplog.records == []


def test_a_row_set_aside_is_logged_with_its_content_masked(caplog: pytest.LogCaptureFixture) -> None:
    """The log is where it goes: whoever fixes the bug finds the row there (the write's
    error beside it), its 身份证号 masked as every log line's is."""
    store = filled(Store(buggy=110105194701302230), 3)
    store._pending.append(110105194701302230)
    store.flush()
    assert [("110105********2230" in r.getMessage(), r.exc_info is not None) for r in caplog.records][-1] == (
        True,
        True,
    )


def test_a_failure_a_write_of_no_rows_meets_too_sets_no_row_aside() -> None:
    store = filled(Store(), 4)
    store.starved = True
    store.flush()
    assert (store.pending(), store.set_aside) == (4, 0)


def test_a_store_that_is_down_keeps_every_row_for_the_next_attempt() -> None:
    store = filled(Store(), 20)
    store.down = True
    store.flush()
    store.down = False
    store.flush()
    assert sorted(store.rows) == list(range(20))


def test_a_store_that_is_down_is_logged_without_a_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """Every flush of a store that is down (busy, no connection free) logged a traceback
    through our frames and the driver's: an outage flooded the log."""
    store = filled(Store(), 20)
    store.down = True
    store.flush()
    assert [r.getMessage() for r in caplog.records if r.exc_info] == []


def test_a_store_that_is_down_is_logged_in_its_own_words(caplog: pytest.LogCaptureFixture) -> None:
    store = filled(Store(), 20)
    store.down = True
    store.flush()
    assert caplog.records[0].getMessage() == "test-rows: writing 20 rows failed: refused"


def test_a_bug_every_row_meets_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    store = filled(Store(), 4)
    store.starved = True
    store.flush()
    assert caplog.records[0].exc_info is not None


# Python 3.12 warns of any fork in a process with threads (an earlier test's writer's, here)
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_writer_used_before_a_fork_starts_a_thread_of_its_own_in_the_child() -> None:
    """gunicorn forks its workers: a writer the master used has no thread in a worker (threads
    do not survive a fork), and its first row there starts one, or nothing would be written."""
    store = Store()
    store.record(1)  # the master's thread
    child = os.fork()
    if child == 0:  # pragma: no cover - the child reports through its exit status alone
        store.record(2)
        thread = store._thread
        os._exit(0 if thread is not None and thread.is_alive() and store._pid == os.getpid() else 1)
    _, status = os.waitpid(child, 0)
    store.close()
    assert os.waitstatus_to_exitcode(status) == 0
