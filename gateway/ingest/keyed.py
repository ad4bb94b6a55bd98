"""Resources many records name — an institution, a doctor, a hospital stay — kept once.

A keyed resource takes its id from its business key (see mappings/engine.py), so it may arrive
with many records: the same 养老机构 with every admission, the A01 and then the A03 of one stay.
The archive keeps one version of it.  Each arrival is merged onto the stored one element by
element: the later record's elements win (the A03's status "finished" and its period with the
discharge time replace the A01's), elements only the earlier record had are kept (the A01's
attending doctor when the A03 names none).  "Later" is the record's ``as_of`` when its spec
gives one (the HL7 event time): an A03 that reaches the gateway before its A01 still ends
finished, the A01 only filling in what the A03 did not say.  Without a time, later is the order
of arrival.  The store is SQLite beside the identity index, so memory stays flat and a later run
updates the resources an earlier run wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import orjson

#: times without an offset are Beijing time, as every legacy source here writes them
_CHINA = timezone(timedelta(hours=8))


class KeyedResources:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS keyed (
                type TEXT NOT NULL, id TEXT NOT NULL, resource TEXT NOT NULL, as_of TEXT,
                PRIMARY KEY (type, id)
            );
            """
        )
        if "as_of" not in {column for (_, column, *_) in self.db.execute("PRAGMA table_info(keyed)")}:
            self.db.execute("ALTER TABLE keyed ADD COLUMN as_of TEXT")  # an archive written before as_of

    def merged(self, resource: dict[str, Any], as_of: str | None) -> tuple[dict[str, Any], str | None] | None:
        """The stored version and this arrival merged, the later statement winning, with the
        time the result speaks for; None when the resource is new."""
        row = self.db.execute(
            "SELECT resource, as_of FROM keyed WHERE type = ? AND id = ?", (resource["resourceType"], resource["id"])
        ).fetchone()
        if row is None:
            return None
        stored, stored_as_of = orjson.loads(row[0]), row[1]
        if as_of and stored_as_of and _instant(as_of) < _instant(stored_as_of):
            return {**resource, **stored}, stored_as_of
        return {**stored, **resource}, as_of or stored_as_of

    def put(self, resource: dict[str, Any], as_of: str | None) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO keyed (type, id, resource, as_of) VALUES (?, ?, ?, ?)",
            (resource["resourceType"], resource["id"], orjson.dumps(resource).decode(), as_of),
        )

    def types(self) -> list[str]:
        return [kind for (kind,) in self.db.execute("SELECT DISTINCT type FROM keyed ORDER BY type")]

    def ids(self, kind: str) -> set[str]:
        return {id_ for (id_,) in self.db.execute("SELECT id FROM keyed WHERE type = ?", (kind,))}

    def of_type(self, kind: str) -> Iterator[bytes]:
        """The stored resources of one type, as the NDJSON lines they become."""
        for (resource,) in self.db.execute("SELECT resource FROM keyed WHERE type = ? ORDER BY id", (kind,)):
            yield resource.encode()

    def close(self) -> None:
        self.db.commit()
        self.db.close()


def _instant(text: str) -> datetime:
    """A FHIR date or dateTime as a comparable moment (a year or a month is its first day)."""
    moment = datetime.fromisoformat(text if len(text) > 7 else f"{text}-01-01"[:10])
    return moment if moment.tzinfo else moment.replace(tzinfo=_CHINA)
