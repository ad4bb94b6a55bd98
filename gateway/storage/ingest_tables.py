"""The tables the ingest pipeline keeps beside the resources (see migrations/0002_ingest.sql).

They live in the resource store so that a record's identity keys, keyed-resource time, ledger
entry and quarantine entry commit in the same transaction as its resources.  The rules that
decide what to write stay in ``gateway/ingest``; these classes only read and write rows.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from gateway.storage.dialect import marks
from gateway.storage.resources import now_instant
from gateway.storage.store import Executor, StoreError

_PERSON_KEY_COLUMNS = (("key", "text"), ("person_id", "text"))


class IdentityKeys:
    """Match key (身份证号, 医保人员编号, 健康档案编号) → the person's Patient id."""

    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    def person_of(self, key: str) -> str | None:
        row = self.sql.one("SELECT person_id FROM person_key WHERE key = ?", (key,))
        return row[0] if row else None

    def claim(
        self, person_id: str, documents: Sequence[str], numbers: Sequence[str] = ()
    ) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """Link each document to the person unless another holds it: ({document: holder} of
        those held, {number: holder} of the ``numbers`` anyone holds when there are
        documents, the numbers still to :meth:`link`), asked in one round trip.  Not queued,
        so the answer is the database's: on PostgreSQL a claim racing another's of the same
        key waits on the key's unique index until the first commits, and then finds it
        taken; the numbers are linked last, by the caller, so that none is held while the
        write waits on another's.  SQLite, whose writers take turns, links them at once
        (:meth:`_claim_at_once`)."""
        if not self.sql.pipelines:
            return self._claim_at_once(person_id, documents, numbers)
        holders_of = numbers if documents else ()
        with self.sql.together():
            claims = [(key, self.sql.execute(_CLAIM, (key, person_id))) for key in documents]
            found = self.sql.execute(_HOLDERS.format(marks(holders_of)), holders_of) if holders_of else None
        taken = [key for key, cursor in claims if cursor.fetchone() is None]
        holders = {row[0]: row[1] for row in found.fetchall()} if found is not None else {}
        return {key: self.person_of(key) or person_id for key in taken}, holders, list(numbers)

    def _claim_at_once(
        self, person_id: str, documents: Sequence[str], numbers: Sequence[str]
    ) -> tuple[dict[str, str], dict[str, str], list[str]]:
        """:meth:`claim` on SQLite: one INSERT of the documents and numbers, and a SELECT of
        the holders of those it did not insert only when there are such and they are asked
        for.  A new person's claim, its numbers' holders and their link were three
        statements (about 80 µs of a create's CPU); a number held already stays its
        holder's, as :meth:`link` leaves it."""
        keys = list(dict.fromkeys([*documents, *numbers]))
        if not keys:
            return {}, {}, []
        rows = ", ".join(["(?, ?)"] * len(keys))
        inserted = {row[0] for row in self.sql.all(_CLAIM_ALL.format(rows), [v for k in keys for v in (k, person_id)])}
        asked = [key for key in keys if key not in inserted and (documents or key not in numbers)]
        found = dict(self.sql.all(_HOLDERS.format(marks(asked)), asked)) if asked else {}
        held = {key: found.get(key, person_id) for key in documents if key not in inserted}
        return held, {key: found[key] for key in numbers if key in found}, []

    def claim_unheld(self, person_id: str, keys: Sequence[str]) -> bool:
        """Queue ``keys`` as a new person's, as rows no one holds, where queued statements go
        with the next round trip (PostgreSQL): a create's claim then goes with its COMMIT,
        one plain INSERT of every key, where :meth:`claim` sent an INSERT per document and a
        SELECT of the numbers' holders, and waited for their answers, with the BEGIN (which
        now goes alone with the write barrier, as one text: ``Executor.start``).  A key
        someone holds fails the write at its COMMIT (:meth:`held`, nothing written), to be
        done again with :meth:`claim`; one a writer in flight is inserting waits for it, as
        :meth:`claim` does.  False where nothing was queued: statements go one at a time
        there, and the claim's answer costs no round trip."""
        if not self.sql.pipelines:
            return False
        self.sql.defer("person_key", _PERSON_KEY_COLUMNS, [(key, person_id) for key in dict.fromkeys(keys)])
        return True

    @staticmethod
    def held(error: StoreError) -> bool:
        """Whether ``error`` is a key :meth:`claim_unheld` queued that someone holds."""
        return error.constraint == _KEY_HELD

    def keys_of(self, person_id: str) -> list[str]:
        """The keys the person holds, in key order."""
        return [
            row[0] for row in self.sql.all("SELECT key FROM person_key WHERE person_id = ? ORDER BY key", (person_id,))
        ]

    def release(self, person_id: str, keys: Sequence[str]) -> None:
        """Those of ``keys`` the person holds are no longer theirs."""
        if keys:
            self.sql.execute(
                f"DELETE FROM person_key WHERE person_id = ? AND key IN ({marks(keys)})", (person_id, *keys)
            )

    def hand_over(self, key: str, holder: str, person_id: str) -> None:
        """The key passes from ``holder`` (deleted, or no longer carrying it) to another."""
        self.sql.execute(
            "UPDATE person_key SET person_id = ? WHERE key = ? AND person_id = ?", (person_id, key, holder)
        )

    def link(self, person_id: str, keys: Sequence[str]) -> None:
        """Queued with the resources (``Executor.defer``): a key already linked stays as it was."""
        rows = [(key, person_id) for key in keys]
        self.sql.defer("person_key", _PERSON_KEY_COLUMNS, rows, " ON CONFLICT (key) DO NOTHING")


#: the unique constraint that refuses a key someone holds (migration 0002)
_KEY_HELD = "person_key_pkey"
_CLAIM = "INSERT INTO person_key (key, person_id) VALUES (?, ?) ON CONFLICT (key) DO NOTHING RETURNING key"
_CLAIM_ALL = "INSERT INTO person_key (key, person_id) VALUES {} ON CONFLICT (key) DO NOTHING RETURNING key"
_HOLDERS = "SELECT key, person_id FROM person_key WHERE key IN ({})"


class Keyed:
    """Which resources are keyed, and the event time their stored version speaks for."""

    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    def as_of(self, kind: str, resource_id: str) -> tuple[bool, str | None]:
        """(whether the resource is keyed and stored, the time its stored version speaks for)."""
        row = self.sql.one("SELECT as_of FROM keyed WHERE type = ? AND id = ?", (kind, resource_id))
        return (row is not None, row[0] if row else None)

    def put(self, kind: str, resource_id: str, as_of: str | None) -> None:
        self.sql.execute(
            "INSERT INTO keyed (type, id, as_of) VALUES (?, ?, ?) ON CONFLICT (type, id) DO UPDATE SET as_of = excluded.as_of",
            (kind, resource_id, as_of),
        )


class Ledger:
    """Records seen, by content (scope = file | spec | spec version, digest of the fields)."""

    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    def get(self, scope: str, digest: str) -> tuple[str, str, bool] | None:
        """(location, run, landed) of the record with this content, if seen."""
        row = self.sql.one("SELECT location, run, landed FROM ledger WHERE scope = ? AND digest = ?", (scope, digest))
        return (row[0], row[1], bool(row[2])) if row else None

    def put(self, scope: str, digest: str, location: str, run: str, landed: bool, identity: str) -> None:
        self.sql.execute(
            "INSERT INTO ledger (scope, digest, location, run, landed, identity) VALUES (?, ?, ?, ?, ?, ?) "
            "ON CONFLICT (scope, digest) DO UPDATE SET location = excluded.location, run = excluded.run, "
            "landed = excluded.landed, identity = excluded.identity",
            (scope, digest, location, run, landed, identity),
        )

    def same_identity(self, identity: str, run: str, digest: str) -> str | None:
        """The location of another record that landed in this run with the same identity but
        other content."""
        row = self.sql.one(
            "SELECT location FROM ledger WHERE identity = ? AND run = ? AND landed AND digest <> ?",
            (identity, run, digest),
        )
        return row[0] if row else None

    def landed_with_other_content(self, identity: str, digest: str) -> tuple[str, str] | None:
        """The file and location of a record of any run that landed with this identity and
        other content."""
        row = self.sql.one(
            "SELECT scope, location FROM ledger WHERE identity = ? AND landed AND digest <> ?", (identity, digest)
        )
        return (row[0].rsplit("|", 2)[0], row[1]) if row else None  # the scope is file|spec|version

    def claim(self, scope: str, digest: str, run: str) -> None:
        """Mark a landed record as seen by this run, so a second copy in it is a duplicate."""
        self.sql.execute("UPDATE ledger SET run = ? WHERE scope = ? AND digest = ?", (run, scope, digest))


#: the open entries of a source whose identities a transaction reads once to skip the
#: resolution of a landed record none of them names (:meth:`Quarantine.resolve`); beyond
#: this many, each landed record asks the database
OPEN_KNOWN = 1000


class Quarantine:
    """One entry per quarantined record, keyed by where it came from."""

    def __init__(self, sql: Executor) -> None:
        self.sql = sql
        #: source → the identities of its open entries, sorted, read once by this transaction
        #: and added to by its puts (None: more than OPEN_KNOWN)
        self._open: dict[str, list[str] | None] = {}

    def put(self, entry: dict[str, Any]) -> None:
        """Quarantine a record (its entry names its ``identity`` and content ``digest``),
        replacing what an earlier attempt at the same record with the same content left.  An
        entry a later record resolved stays resolved: the old export ingested again fails as
        it did, and the record that replaced it still stands."""
        self.sql.execute(
            "INSERT INTO quarantine (source, identity, digest, file, location, recorded, entry) "
            "VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (source, identity, digest) DO UPDATE SET "
            "file = excluded.file, location = excluded.location, recorded = excluded.recorded, entry = excluded.entry",
            (
                entry["source"],
                entry["identity"],
                entry["digest"],
                entry["file"],
                entry["location"],
                now_instant(),
                self.sql.dialect.json_in(entry),
            ),
        )
        known = self._open.get(entry["source"])
        if known is not None:
            insort(known, entry["identity"])

    def release(self, source: str, identity: str, digest: str) -> None:
        """The record with this content landed (on replay, or re-ingested after a fix), or its
        entry was replayed: it leaves the quarantine."""
        self.sql.execute(
            "DELETE FROM quarantine WHERE source = ? AND identity = ? AND digest = ?", (source, identity, digest)
        )

    def entry(self, source: str, identity: str, digest: str) -> dict[str, Any] | None:
        """The entry of the record with this content, if it is quarantined (or partly) and no
        later record resolved it."""
        row = self.sql.one(
            "SELECT entry FROM quarantine WHERE source = ? AND identity = ? AND digest = ? AND resolved IS NULL",
            (source, identity, digest),
        )
        return self.sql.dialect.json_out(row[0]) if row else None

    def resolve(self, source: str, identity: str, digest: str, by: dict[str, str], *, keyed: bool) -> int:
        """A record with this identity (spec and source key, or content) and content ``digest``
        landed: the open entries it replaces are resolved by it (``by``, its file and
        location), kept for the audit but no longer open; how many were.  Those are, where
        the identity is a source key's (``keyed``), the key's entries with other content, and
        always the entries of the record's copies (kept under the identity, their file and
        their location: a duplicate row, the same row in another file of a run), whatever
        their content: a copy of what landed holds nothing it did not bring, one of the key's
        other content is replaced (a content's identity names its content: its copies share
        it).  Copies stayed open until a replay, which landed the same record again, or left
        a duplicate row open for good.

        One statement, as the key's alone was: the unique index's range of identities that
        begin with this one (they compare bytewise, 0012; '}' follows the '|' that begins a
        copy's suffix), of which the equalities keep this one and its copies, not another
        record whose key only begins with this one's.  An OR of the two kinds read every
        entry of the source on SQLite without statistics; a statement each cost one more
        round trip per landed record on PostgreSQL.

        Asked only when an open entry of the source lies in that range, as the transaction
        knows them (:meth:`_may_name`): most landed records have none, and the UPDATE cost
        each of them a statement, a round trip on PostgreSQL."""
        if not self._may_name(source, identity if keyed else f"{identity}|", f"{identity}}}"):
            return 0
        others = "identity = ? AND digest <> ? OR " if keyed else ""
        cursor = self.sql.execute(
            "UPDATE quarantine SET resolved = ?, resolved_by = ? WHERE source = ? AND identity >= ? AND identity < ? "
            f"AND ({others}identity = ? || file || '|' || location) AND resolved IS NULL",
            (
                now_instant(),
                self.sql.dialect.json_in(by),
                source,
                identity if keyed else f"{identity}|",
                f"{identity}}}",
                *((identity, digest) if keyed else ()),
                f"{identity}|",
            ),
        )
        return max(cursor.rowcount, 0)

    def _may_name(self, source: str, low: str, high: str) -> bool:
        """Whether an open entry of ``source`` may have an identity from ``low`` up to
        ``high``: the source's open identities are read at the transaction's first ask (up to
        :data:`OPEN_KNOWN`; beyond, every ask says yes), and its own puts are added.  Entries
        resolved or released since stay listed, which costs a statement and loses nothing.
        On PostgreSQL another run's entry committed while this transaction lands its batch is
        not seen by it, as one still uncommitted when the UPDATE ran was not."""
        if source not in self._open:
            rows = self.sql.all(
                "SELECT identity FROM quarantine WHERE source = ? AND resolved IS NULL LIMIT ?",
                (source, OPEN_KNOWN + 1),
            )
            self._open[source] = sorted(row[0] for row in rows) if len(rows) <= OPEN_KNOWN else None
        known = self._open[source]
        if known is None:
            return True
        first = bisect_left(known, low)
        return first < len(known) and known[first] < high

    def resolve_entry(self, source: str, identity: str, digest: str, by: dict[str, str]) -> None:
        """This entry is resolved by the record ``by`` names (its file and location), which
        landed with the same source key: a replay found it superseded."""
        self.sql.execute(
            "UPDATE quarantine SET resolved = ?, resolved_by = ? "
            "WHERE source = ? AND identity = ? AND digest = ? AND resolved IS NULL",
            (now_instant(), self.sql.dialect.json_in(by), source, identity, digest),
        )

    def entries(self) -> Iterator[dict[str, Any]]:
        """The open entries: what still waits for a fix (and what a replay re-runs)."""
        for (entry,) in self.sql.stream("SELECT entry FROM quarantine WHERE resolved IS NULL ORDER BY seq"):
            yield self.sql.dialect.json_out(entry)

    def resolved_entries(self) -> Iterator[dict[str, Any]]:
        """The entries later records resolved, each with ``resolved``: when, and by which record."""
        query = "SELECT entry, resolved, resolved_by FROM quarantine WHERE resolved IS NOT NULL ORDER BY seq"
        for entry, resolved, by in self.sql.stream(query):
            yield self.sql.dialect.json_out(entry) | {"resolved": {"at": resolved, **self.sql.dialect.json_out(by)}}

    def count(self) -> int:
        """How many entries are open."""
        return int(self.sql.one("SELECT COUNT(*) FROM quarantine WHERE resolved IS NULL")[0])


@dataclass(frozen=True)
class ListedConflict:
    """One entry of the identity-conflict work list: its place in the list (``seq``), the
    entry as :meth:`Conflicts.entries` lists it, and when it was reported (None for one
    reported before schema version 17)."""

    seq: int
    entry: dict[str, Any]
    recorded: str | None


class Conflicts:
    """Disagreements the identity merge kept the archive's value for (a person's demographics),
    and the names an organisation was given for one identifier."""

    def __init__(self, sql: Executor) -> None:
        self.sql = sql

    def add(self, entry: dict[str, Any]) -> bool:
        """Record one (a person's, or an organisation's: its reference is kept in the
        ``person_id`` column); False when this record already reported it (a re-run)."""
        key = (entry.get("person") or entry["organization"], entry["element"], entry["file"], entry["location"])
        if self.sql.one(
            "SELECT 1 FROM identity_conflict WHERE person_id = ? AND element = ? AND file = ? AND location = ?", key
        ):
            return False
        self.sql.execute(
            "INSERT INTO identity_conflict (person_id, element, file, location, entry, recorded) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (*key, self.sql.dialect.json_in(entry), now_instant()),
        )
        return True

    def entries(self) -> Iterator[dict[str, Any]]:
        """Every entry with ``recorded``, when it was reported (none before schema version 17),
        as ``$identity-conflicts`` says; a resolved one with ``resolved``: when, and by which
        merge."""
        query = "SELECT entry, resolved, resolved_by, recorded FROM identity_conflict ORDER BY seq"
        for entry, resolved, by, recorded in self.sql.stream(query):
            yield self._listed(entry, resolved, by, recorded)

    def page(self, status: str, patient: str | None, after: int, count: int) -> list[ListedConflict]:
        """The 主索引 staff's work list: up to ``count`` + 1 entries past ``after`` (their
        ``seq``, the keyset a page resumes at, so an entry resolved or added between two pages
        neither shifts another onto a second page nor off every page), ``status`` open,
        resolved or all, and, with ``patient`` (``Patient/id``), only those naming it as
        person (the ``person_id`` column), kept or offered (an elderly-care client's second
        record is the offered one).  The database filters: reading every later entry in
        Python to keep one person's few read the whole backlog for each page."""
        where = {"open": " AND resolved IS NULL", "resolved": " AND resolved IS NOT NULL"}.get(status, "")
        params: list[Any] = [after]
        if patient is not None:
            kept, offered = (self.sql.dialect.json_member("entry", key) for key in ("kept", "offered"))
            where += f" AND (person_id = ? OR {kept} = ? OR {offered} = ?)"
            params += [patient] * 3
        query = (
            f"SELECT seq, entry, resolved, resolved_by, recorded FROM identity_conflict WHERE seq > ?{where} "
            "ORDER BY seq LIMIT ?"
        )
        rows = self.sql.all(query, [*params, count + 1])
        return [ListedConflict(int(seq), self._listed(entry, r, by), at) for seq, entry, r, by, at in rows]

    def _listed(self, entry: Any, resolved: str | None, by: Any, recorded: str | None = None) -> dict[str, Any]:
        """An entry as listed: with ``recorded`` when given, and a resolved one with
        ``resolved``, when and by which merge."""
        found = self.sql.dialect.json_out(entry)
        if recorded is not None:
            found["recorded"] = recorded
        return found if resolved is None else found | {"resolved": {"at": resolved, **self.sql.dialect.json_out(by)}}

    def resolve_pair(self, source: str, target: str) -> int:
        """The open entries naming both Patients (``Type/id`` each, in any of the entry's
        person, kept and offered) are resolved by their merge; how many.  Looked up by the
        person column, which holds one of the two whenever an entry concerns a person."""
        pair = {source, target}
        rows = self.sql.all(
            "SELECT seq, entry FROM identity_conflict WHERE resolved IS NULL AND person_id IN (?, ?)", (source, target)
        )
        named = [
            seq
            for seq, entry in rows
            if pair <= {str(self.sql.dialect.json_out(entry).get(key)) for key in ("person", "kept", "offered")}
        ]
        by = self.sql.dialect.json_in({"merged": source, "into": target})
        for seq in named:
            self.sql.execute(
                "UPDATE identity_conflict SET resolved = ?, resolved_by = ? WHERE seq = ?", (now_instant(), by, seq)
            )
        return len(named)
