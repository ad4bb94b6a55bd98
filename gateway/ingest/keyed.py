"""Resources many records name — an institution, a doctor, a hospital stay — kept once.

A keyed resource takes its id from its business key (see mappings/engine.py), so it may arrive
with many records: the same 养老机构 with every admission, the A01 and then the A03 of one stay.
The archive keeps one version of it.  Each arrival is merged onto the stored one element by
element: the later record's elements win (the A03's status "finished" and its period with the
discharge time replace the A01's), elements only the earlier record had are kept (the A01's
attending doctor when the A03 names none).  The store is SQLite beside the identity index, so
memory stays flat and a later run updates the resources an earlier run wrote.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson


class KeyedResources:
    def __init__(self, path: Path) -> None:
        self.db = sqlite3.connect(path)
        self.db.executescript(
            """
            PRAGMA journal_mode = WAL;
            PRAGMA synchronous = NORMAL;
            CREATE TABLE IF NOT EXISTS keyed (
                type TEXT NOT NULL, id TEXT NOT NULL, resource TEXT NOT NULL, PRIMARY KEY (type, id)
            );
            """
        )

    def merged(self, resource: dict[str, Any]) -> dict[str, Any] | None:
        """The stored version with this arrival merged onto it, or None when it is new."""
        row = self.db.execute(
            "SELECT resource FROM keyed WHERE type = ? AND id = ?", (resource["resourceType"], resource["id"])
        ).fetchone()
        if row is None:
            return None
        return {**orjson.loads(row[0]), **resource}

    def put(self, resource: dict[str, Any]) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO keyed (type, id, resource) VALUES (?, ?, ?)",
            (resource["resourceType"], resource["id"], orjson.dumps(resource).decode()),
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
