"""The background writer of audit and exchange rows: a row the store refuses for good is
dropped alone, and a store that is down loses nothing."""

from __future__ import annotations

from gateway.batch_writer import BatchWriter


class Store(BatchWriter[int]):
    """Takes every row but ``bad`` (as a NOT NULL column refuses a None), unless ``down``."""

    def __init__(self, bad: int | None = None) -> None:
        super().__init__("test-rows", interval=60, batch=10_000, limit=10_000)
        self.bad, self.down, self.rows = bad, False, []

    def _write(self, rows: list[int]) -> None:
        if self.down or self.bad in rows:
            raise RuntimeError("refused")
        self.rows.extend(rows)


def filled(store: Store, count: int) -> Store:
    store._pending.extend(range(count))  # appended without starting the thread
    return store


def test_one_bad_row_does_not_hold_up_the_rest() -> None:
    store = filled(Store(bad=7), 20)
    store.flush()
    assert (sorted(store.rows), store.pending()) == ([n for n in range(20) if n != 7], 0)


def test_a_store_that_is_down_keeps_every_row_for_the_next_attempt() -> None:
    store = filled(Store(), 20)
    store.down = True
    store.flush()
    store.down = False
    store.flush()
    assert sorted(store.rows) == list(range(20))
