"""The background writer of audit and exchange rows: a row the store refuses for good is
dropped alone, and a store that is down loses nothing."""

from __future__ import annotations

import pytest

from gateway.batch_writer import BatchWriter


class Store(BatchWriter[int]):
    """Takes every row but the ``bad`` ones (as a NOT NULL column refuses a None), unless ``down``."""

    def __init__(self, *bad: int) -> None:
        super().__init__("test-rows", interval=60, batch=10_000, limit=10_000)
        self.bad, self.down, self.rows = set(bad), False, []

    def _write(self, rows: list[int]) -> None:
        if self.down or self.bad.intersection(rows):
            raise RuntimeError("refused")
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


def test_a_store_that_is_down_keeps_every_row_for_the_next_attempt() -> None:
    store = filled(Store(), 20)
    store.down = True
    store.flush()
    store.down = False
    store.flush()
    assert sorted(store.rows) == list(range(20))
