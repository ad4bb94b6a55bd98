"""Which records the archive has seen, by content, so none is written twice.

A record whose fields repeat an earlier record of the same file in the same run is a
duplicate row and is quarantined naming the first.  A record that an earlier run into the same
archive already wrote, unchanged and under the same spec version, is counted as mapped but not
written again: ingesting the same export twice leaves the archive as it was.  (A record
mapped by a newer spec version is mapped afresh.)  The ledger is a table of the store, written
in the record's transaction: a record counts as landed exactly when its resources do.
"""

from __future__ import annotations

import uuid

from gateway.storage.store import Transaction


class RecordHeld(Exception):
    """Another run holds the record (its ledger entry or its quarantine entry), uncommitted:
    the caller commits its batch, so that it holds nothing while it waits, then takes ``lock``
    waiting and asks again."""

    def __init__(self, lock: str) -> None:
        super().__init__(lock)
        self.lock = lock


def hold(tx: Transaction, lock: str) -> None:
    """Take ``lock`` for the transaction if no other run holds it, else :class:`RecordHeld`:
    the locks of records are met in the order of each run's file, never a fixed one."""
    if not tx.lock(lock, wait=False):
        raise RecordHeld(lock)


class Ledger:
    def __init__(self) -> None:
        self.run = uuid.uuid4().hex

    def arrive(self, tx: Transaction, scope: str, digest: str, location: str, identity: str) -> tuple[str, bool] | None:
        """The earlier record with this content, as (its location, whether it came in this
        run), when this run saw it or an earlier run wrote it; None when the record is new to
        the archive (or was only quarantined before, as a replayed record was).

        Asked under the record's own lock: an ingest of the same export running at once (a
        cron run overlapping the last, a ``$ingest`` sent again) may hold the record
        uncommitted, and asked before that commit the ledger said "new", so the record was
        mapped and written twice.  It is not waited for here, but by the caller having
        committed its batch (:class:`RecordHeld`): two runs whose batches began at other
        records (another batch size, a file more before it) each held a record the other
        reached next, and PostgreSQL failed one as a deadlock, again at each retry.  A run
        waiting for a record holds no other, so no two wait for each other."""
        hold(tx, f"ledger|{scope}|{digest}")
        seen = tx.ledger.get(scope, digest)
        if seen is not None:
            location_seen, run, landed = seen
            if run == self.run:
                return location_seen, True
            if landed:
                # claimed for this run, so a second copy in this export is still a duplicate row
                tx.ledger.claim(scope, digest, self.run)
                return location_seen, False
        tx.ledger.put(scope, digest, location, self.run, landed=False, identity=identity)
        return None

    def clash(self, tx: Transaction, identity: str, digest: str) -> str | None:
        """Another record that landed in this run under the same source key with other content
        (one that was quarantined wrote nothing, so it cannot be replaced)."""
        return tx.ledger.same_identity(identity, self.run, digest)

    def landed_since(self, tx: Transaction, identity: str, digest: str) -> tuple[str, str] | None:
        """Where (file, location) a record with this source key but other content landed, in
        any run: a quarantined copy must not be replayed over it."""
        return tx.ledger.landed_with_other_content(identity, digest)

    def landed(self, tx: Transaction, scope: str, digest: str, location: str, identity: str) -> None:
        tx.ledger.put(scope, digest, location, self.run, landed=True, identity=identity)
