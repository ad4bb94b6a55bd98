"""The audit trail's table (see migrations/0005_audit.sql): appended in chained batches, read
by the API and walked by ``yiyang audit verify``.

The chain rule (what is hashed) lives in ``gateway/security/audit.py``; this module only reads
and writes rows, and is handed the hashing function so that the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from gateway.storage.dialect import marks
from gateway.storage.store import Executor

T = TypeVar("T")

#: the name of the lock that makes appends one line across processes
CHAIN_LOCK = "audit-chain"
_AUDIT_COLUMNS = (
    "seq",
    "recorded",
    "agent",
    "outcome",
    "entity_types",
    "entities",
    "prev_hash",
    "hash",
    "event",
    "part",
)


#: what a sealing function makes of one event at its place in the chain: (recorded, agent,
#: outcome, entity types, entities, canonical JSON, hash, part)
Sealed = tuple[str, str, str, str, str, str, str, int]


@dataclass(frozen=True, slots=True)
class AuditRow:
    seq: int
    recorded: str
    agent: str
    outcome: str
    entity_types: str
    entities: str
    prev_hash: str
    hash: str
    #: the canonical JSON text that was hashed
    event: str
    #: 0 for a request's own event, n for the n-th part continuing it (migrations/0018)
    part: int = 0


@dataclass(frozen=True, slots=True)
class AuditQuery:
    """What an auditor's search asks for; every field narrows, None means any."""

    recorded_from: str | None = None  # inclusive
    recorded_before: str | None = None  # exclusive
    #: each a conjunction of alternatives: an event matches one value of every group (a
    #: parameter's comma-separated values are one group, and a repeated parameter another)
    agent: tuple[tuple[str, ...], ...] = ()
    entity_type: tuple[tuple[str, ...], ...] = ()
    entity: tuple[tuple[str, ...], ...] = ()
    outcome: tuple[tuple[str, ...], ...] = ()
    newest_first: bool = False
    count: int = 20
    offset: int = 0
    #: the last event the pages list (its seq, ``_upto`` in the paging links); None for all
    upto: int | None = None
    #: the (recorded, seq) of the event the page starts past (``_after``), in the page's order
    after: tuple[str, int] | None = None


class AuditEvents:
    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    def head(self) -> tuple[int, str]:
        """(seq, hash) of the last event, (0, "") for an empty trail."""
        row = self.sql.one("SELECT seq, hash FROM audit_event ORDER BY seq DESC LIMIT 1")
        return (int(row[0]), row[1]) if row else (0, "")

    def append(self, events: Sequence[T], seal: Callable[[int, str, T], Sealed]) -> int:
        """Append events after the current head: ``seal(seq, prev_hash, event)`` gives each its
        place (its id is its seq) and its row.  The caller holds the transaction's chain lock;
        returns the last seq written."""
        seq, prev = self.head()
        rows = []
        for event in events:
            seq += 1
            recorded, agent, outcome, types, entities, text, digest, part = seal(seq, prev, event)
            rows.append((seq, recorded, agent, outcome, types, entities, prev, digest, text, part))
            prev = digest
        self.sql.insert_many("audit_event", _AUDIT_COLUMNS, rows)
        return seq

    def walk(self, batch: int = 1000) -> Iterator[AuditRow]:
        """Every event in chain order, fetched in batches so a long trail is verified in
        bounded memory."""
        after = 0
        while True:
            rows = self.sql.all(
                "SELECT seq, recorded, agent, outcome, entity_types, entities, prev_hash, hash, event, part "
                "FROM audit_event WHERE seq > ? ORDER BY seq LIMIT ?",
                (after, batch),
            )
            if not rows:
                return
            for row in rows:
                yield AuditRow(int(row[0]), *row[1:-1], int(row[-1]))
            after = int(rows[-1][0])

    def get(self, seq: int) -> str | None:
        """The canonical JSON of one event."""
        row = self.sql.one("SELECT event FROM audit_event WHERE seq = ?", (seq,))
        return row[0] if row else None

    def search(self, query: AuditQuery) -> tuple[list[tuple[str, int, str]], int]:
        """(the page's events, each its recorded, seq and canonical JSON; how many match in
        all).  A page past an event (``after``) starts right after it in the page's order,
        whatever the offset says."""
        where, params = [], []
        if not query.entity:
            # a request is one access: its parts are found by the entities they name alone
            where.append("part = 0")
        if query.upto is not None:
            where.append("seq <= ?")
            params.append(query.upto)
        if query.recorded_from is not None:
            where.append("recorded >= ?")
            params.append(query.recorded_from)
        if query.recorded_before is not None:
            where.append("recorded < ?")
            params.append(query.recorded_before)
        for column, groups in (("agent", query.agent), ("outcome", query.outcome)):
            for group in groups:
                where.append(f"{column} IN ({marks(group)})")
                params += group
        for column, groups in (("entity_types", query.entity_type), ("entities", query.entity)):
            for group in groups:
                # each value a whole word of the column's list, compared with its case (ids are
                # case-sensitive, SQLite's LIKE is not) and no character of it a wildcard; a
                # value with a space is no word, and matches nothing
                words = [f" {value} " for value in group if " " not in value]
                found = " OR ".join([f"replace({column}, ?, '') <> {column}"] * len(words)) or "1 = 0"
                where.append(f"({found})")
                params += words
        clause = (" WHERE " + " AND ".join(where)) if where else ""
        total = int(self.sql.one(f"SELECT COUNT(*) FROM audit_event{clause}", params)[0])
        order = "DESC" if query.newest_first else "ASC"
        offset = query.offset
        if query.after is not None:
            # one direction for both columns, neither ever missing: a row value seeks on both
            past = f"(recorded, seq) {'<' if query.newest_first else '>'} (?, ?)"
            clause, params, offset = f"{clause} AND {past}" if where else f" WHERE {past}", [*params, *query.after], 0
        rows = self.sql.all(
            # by the time recorded, as the auditors asked for it (two workers append their
            # buffers in turn, so the chain's order is not quite the time order)
            f"SELECT recorded, seq, event FROM audit_event{clause} ORDER BY recorded {order}, seq {order} "
            "LIMIT ? OFFSET ?",
            [*params, query.count, offset],
        )
        return [(row[0], int(row[1]), row[2]) for row in rows], total

    def count(self) -> int:
        return int(self.sql.one("SELECT COUNT(*) FROM audit_event")[0])
