"""How much a job reads and writes at a time, and where it stops once halted: between two
statements of each long step, so that a cancelled job neither writes nor reads on for long."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterable, Iterator

from gateway.storage.store import Stored

#: resources a job writes at a time, each batch's filtered types asked about in one statement
BATCH = 500


class _Halted(Exception):
    """The job was cancelled or failed elsewhere while it ran: stop writing."""


def _unless_halted(halt: threading.Event) -> None:
    """Stop the job (:class:`_Halted`) once its heartbeat has found it cancelled or failed
    elsewhere: checked between two statements of each long step, so that a cancelled job
    neither writes nor reads on for long."""
    if halt.is_set():
        raise _Halted


def _batches(found: Iterable[Stored]) -> Iterator[list[Stored]]:
    """What a job writes, :data:`BATCH` resources at a time (``itertools.batched`` is 3.12's)."""
    iterator = iter(found)
    while batch := list(itertools.islice(iterator, BATCH)):
        yield batch
