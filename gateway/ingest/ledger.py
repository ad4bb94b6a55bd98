"""Which records the archive has seen, by content, so none is written twice.

A record whose fields repeat an earlier record of the same file in the same run is a
duplicate row and is quarantined naming the first.  A record that an earlier run into the same
archive already wrote, unchanged and under the same spec version, is counted as mapped but not
written again: ingesting the same export twice leaves the archive as it was.  (A record
mapped by a newer spec version is mapped afresh; its non-keyed resources then sit beside the
earlier ones in the NDJSON.)  The ledger is SQLite in the output folder, so memory stays flat
however many rows a file has.
"""

from __future__ import annotations

import sqlite3
import uuid
from pathlib import Path


class Ledger:
    def __init__(self, path: Path) -> None:
        self.run = uuid.uuid4().hex
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS seen (
                scope TEXT NOT NULL, digest TEXT NOT NULL, location TEXT NOT NULL,
                run TEXT NOT NULL, landed INTEGER NOT NULL DEFAULT 0,
                PRIMARY KEY (scope, digest)
            );
            """
        )

    def arrive(self, scope: str, digest: str, location: str) -> tuple[str, bool] | None:
        """The earlier record with this content, as (its location, whether it came in this
        run), when this run saw it or an earlier run wrote it; None when the record is new to
        the archive (or was only quarantined before, as a replayed record was)."""
        row = self.db.execute(
            "SELECT location, run, landed FROM seen WHERE scope = ? AND digest = ?", (scope, digest)
        ).fetchone()
        if row is not None and row[1] == self.run:
            return row[0], True
        if row is not None and row[2]:
            # claimed for this run, so a second copy in this export is still a duplicate row
            self.db.execute("UPDATE seen SET run = ? WHERE scope = ? AND digest = ?", (self.run, scope, digest))
            return row[0], False
        self.db.execute(
            "INSERT OR REPLACE INTO seen (scope, digest, location, run, landed) VALUES (?, ?, ?, ?, 0)",
            (scope, digest, location, self.run),
        )
        return None

    def landed(self, scope: str, digest: str) -> None:
        self.db.execute("UPDATE seen SET landed = 1 WHERE scope = ? AND digest = ?", (scope, digest))

    def close(self) -> None:
        self.db.commit()
        self.db.close()
