"""The one storage interface the gateway writes and reads through.

A :class:`Store` hands out transactions.  Everything one record or one transaction Bundle
produces — resources with their versions and search index rows, identity keys, keyed-resource
event times, the ledger entry, the quarantine entry — is written through one
:class:`Transaction` and commits or vanishes as a whole, so a process killed at any moment
leaves no half-written record behind.  The two backends (``sqlite.py``, ``postgres.py``) only
open connections and begin transactions; every statement is here and in the table modules,
written once for both.
"""

from __future__ import annotations

import enum
import itertools
import math
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

import orjson

from gateway.storage.dialect import Dialect, marks

if TYPE_CHECKING:
    from conformance.stored_references import References
    from gateway.storage.audit_tables import AuditEvents
    from gateway.storage.exchange_tables import Exchanges
    from gateway.storage.ingest_tables import Conflicts, IdentityKeys, Keyed, Ledger, Quarantine
    from gateway.storage.migrations import Upgrade
    from gateway.storage.resources import Resources
    from gateway.storage.security_tables import SecurityTables

#: (name, system, value, low, high, number): one value of one search parameter
IndexRow = tuple[str, str | None, str | None, str | None, str | None, float | None]


class Indexer(Protocol):
    """A resource's search index rows (``SearchIndexer.rows``).  ``references``: its
    References, when the writer has found them already (checking what they may name): the
    indexer would otherwise walk the whole resource for them again."""

    def __call__(self, resource: dict[str, Any], references: References | None = None) -> list[IndexRow]: ...


#: the write transaction this thread has open, and its store (see Store.reading)
_WRITING: ContextVar[tuple[Store, Transaction] | None] = ContextVar("writing", default=None)


class StoreError(Exception):
    """The store cannot do what was asked; the message says why.  ``retryable``: the database
    gave the transaction up to let another go on (PostgreSQL's deadlock victim, a serialization
    failure, a resource another writer created meanwhile): done again from its start, it
    would succeed.  ``constraint``: the unique constraint that refused a row, where the
    database names it (PostgreSQL)."""

    def __init__(self, message: str, retryable: bool = False, constraint: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.constraint = constraint


#: SQLSTATEs of a transaction the database sacrificed: deadlock detected, serialization failure
RETRYABLE_STATES = frozenset({"40P01", "40001"})
#: SQLSTATE of a row a unique constraint refused
UNIQUE_VIOLATION = "23505"
#: the unique keys that refuse a row only when another writer created the same resource
#: between this one's finding its id free and its insert (PostgreSQL, where writers run side
#: by side): an ingest takes no lock of the ids it creates, so a PUT creating the same id
#: inserts its first version too, and the one committing second was refused.  Done again, the
#: loser finds the winner's resource and writes over it, as it would have right after it.
#: (Before migration 0019 the history's key refused it, now the current row's.)
RACED_KEYS = frozenset({"resource_pkey"})
#: times a write is run when the database sacrifices it (:func:`retried`)
TRANSACTION_ATTEMPTS = 3
#: a load's rows beyond which the planner's statistics are stale (:meth:`Store.analyze_after`):
#: this share of the rows they counted, and this many more, as PostgreSQL's autovacuum judges
#: (``autovacuum_analyze_scale_factor`` 0.1, ``autovacuum_analyze_threshold`` 50)
STALE_SHARE = 0.1
STALE_ROWS = 50
T = TypeVar("T")


def retried(run: Callable[[int], T]) -> T:
    """``run(attempt)``, run again (up to :data:`TRANSACTION_ATTEMPTS` times) while it fails
    with a write the database gave up to let another go on (PostgreSQL's deadlock victim,
    which committed nothing): its client would otherwise get a 503 for a write that
    succeeds a moment later."""
    for attempt in range(1, TRANSACTION_ATTEMPTS + 1):
        try:
            return run(attempt)
        except StoreError as error:
            if not error.retryable or attempt == TRANSACTION_ATTEMPTS:
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")


def driver_error(dialect: str, exc: Exception) -> StoreError:
    """A database driver's error as the store's, marked retryable when it is, naming the
    unique constraint that refused a row when the driver does (psycopg's ``diag``)."""
    state = getattr(exc, "sqlstate", None)
    constraint = getattr(getattr(exc, "diag", None), "constraint_name", None) if state == UNIQUE_VIOLATION else None
    retryable = state in RETRYABLE_STATES or constraint in RACED_KEYS
    return StoreError(f"{dialect}: {exc}", retryable=retryable, constraint=constraint)


#: ``If-Match: *`` (RFC 9110): whichever version is current, as long as the resource exists
#: (below any version a header can name: ``W/"0"`` names none, and fails)
ANY_VERSION = -1
#: the versions an If-Match names: one, :data:`ANY_VERSION` for ``*``, or several (RFC 9110
#: §13.1.1 takes a list of entity tags, and the write goes on when any of them is current)
Expected = int | frozenset[int]


def admits(expected: Expected, version: int) -> bool:
    """Whether an If-Match naming ``expected`` lets a write go on at the current ``version``
    (``*`` at any: whether the resource exists is the caller's to ask)."""
    if isinstance(expected, int):
        return expected in (ANY_VERSION, version)
    return version in expected


class Unread(enum.Enum):
    """The type of :data:`UNREAD`."""

    UNREAD = "unread"


#: a write's current version not known to its caller: the write reads it, holding its row
UNREAD = Unread.UNREAD


class VersionConflict(StoreError):
    """A write named a version (If-Match) that is not the current one."""

    def __init__(self, reference: str, expected: Expected, current: int | None) -> None:
        super().__init__(f"{reference}: expected version {expected}, current is {current}")
        self.reference, self.expected, self.current = reference, expected, current


class Cursor(Protocol):
    def fetchone(self) -> Sequence[Any] | None: ...
    def fetchall(self) -> list[Sequence[Any]]: ...


class Connection(Protocol):
    def execute(self, sql: str, params: Sequence[Any] = ...) -> Cursor: ...
    def cursor(self) -> Any: ...
    def rollback(self) -> None: ...


class Stored:
    """One version of a resource as the store holds it.  Read from the store, it keeps the JSON
    text it was stored as and parses it only when ``resource`` is first asked for: a read
    answered as stored sends the text on (:meth:`json`), never parsing and encoding it again."""

    __slots__ = ("type", "id", "version", "last_updated", "deleted", "_resource", "_text")

    def __init__(
        self,
        type: str,  # noqa: A002 - the resource type, as everywhere in FHIR
        id: str,  # noqa: A002
        version: int,
        last_updated: str,
        deleted: bool,
        resource: dict[str, Any] | None = None,
        *,
        text: str | None = None,
    ) -> None:
        self.type, self.id, self.version, self.last_updated, self.deleted = type, id, version, last_updated, deleted
        self._resource, self._text = resource, text

    @property
    def resource(self) -> dict[str, Any] | None:
        if self._resource is None and self._text is not None:
            self._resource = orjson.loads(self._text)
        return self._resource

    def json(self) -> bytes:
        """The resource as JSON: the text it was stored as, when it was read from the store
        (``null`` for a deletion)."""
        return self._text.encode() if self._text is not None else orjson.dumps(self._resource)

    @property
    def reference(self) -> str:
        return f"{self.type}/{self.id}"

    @property
    def content(self) -> dict[str, Any]:
        """The resource without the store's version bookkeeping (meta.versionId, lastUpdated)."""
        return without_version(self.resource or {})

    def _key(self) -> tuple[Any, ...]:
        return (self.type, self.id, self.version, self.last_updated, self.deleted, self.resource)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Stored) and self._key() == other._key()

    __hash__ = None  # type: ignore[assignment]  # its resource is a dict

    def __repr__(self) -> str:
        return f"Stored({self.reference}, version {self.version}, {self.last_updated}, deleted={self.deleted})"


def without_version(resource: dict[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in resource.get("meta", {}).items() if k not in ("versionId", "lastUpdated")}
    found = {k: v for k, v in resource.items() if k != "meta"}
    if meta:
        found["meta"] = meta
    return found


#: rows a queued insert sends as ``INSERT … VALUES`` on PostgreSQL rather than as one JSON
#: array of them (:meth:`Executor._insert_rows`).  Set against the array per column that
#: more rows went as before (psycopg's client CPU per statement, in a pipeline, taking
#: turns): one row of a version (7 columns) 40 µs as VALUES against 80 µs as arrays; 25
#: search index rows 490 µs as VALUES against 190 µs as arrays (about 20 µs a row against
#: 75 µs and 5 µs a row), so arrays paid from four rows on, and JSON costs less than arrays
FEW_ROWS = 3


def _json_safe(columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """``rows`` as JSON can carry them to :meth:`Executor._insert_rows`: a float that is no
    JSON number (an index row's ``number`` of a decimal such as ``1e400``, infinite as a
    float, which orjson writes as ``null``) is sent as its text, which PostgreSQL reads
    back as the same float8."""
    floats = [index for index, (_, kind) in enumerate(columns) if kind.startswith("float")]
    if not any(not math.isfinite(row[index]) for row in rows for index in floats if row[index] is not None):
        return rows
    return [
        [str(v) if i in floats and v is not None and not math.isfinite(v) else v for i, v in enumerate(row)]
        for row in rows
    ]


def _insert_sql(dialect: Dialect, table: str, columns: tuple[Any, ...], conflict: str) -> str:
    """``INSERT INTO table (columns) VALUES (?, …)conflict`` in ``dialect``; ``columns`` are
    names or (name, type) pairs.  Its translation for the dialect, the most of its making, is
    remembered by :meth:`Dialect.sql`."""
    names = [column if isinstance(column, str) else column[0] for column in columns]
    return dialect.sql(f"INSERT INTO {table} ({', '.join(names)}) VALUES ({marks(names)}){conflict}")


#: numbers the server-side cursors of :meth:`Executor.stream`
_STREAMS = itertools.count()


class Executor:
    """Runs the store's portable SQL on one connection in the dialect of its database."""

    def __init__(self, connection: Connection, dialect: Dialect, errors: tuple[type[Exception], ...]) -> None:
        self.connection = connection
        self.dialect = dialect
        self.errors = errors
        self._pipeline = getattr(connection, "pipeline", None)
        #: the connection's quicker way than a cursor to read a statement's rows at once
        self._rows_now: Callable[[str, Sequence[Any]], list[Sequence[Any]]] | None = getattr(
            connection, "rows_now", None
        )
        #: a BEGIN not sent yet, and what follows it: it goes with the transaction's first
        #: statement (:meth:`begin`)
        self._opening: tuple[str, ...] | None = None
        #: statements queued by :meth:`send_later`, with their parameters
        self._later: list[tuple[str, Sequence[Any]]] = []
        #: rows queued by :meth:`defer`, per statement: (table, columns, conflict clause) -> rows
        self._deferred: dict[tuple[str, tuple[tuple[str, str], ...], str], list[Sequence[Any]]] = {}

    @property
    def pipelines(self) -> bool:
        """Whether statements queued here go together with the next round trip (PostgreSQL),
        rather than one at a time at once (SQLite, where a statement costs no round trip)."""
        return self._pipeline is not None

    def begin(self, *statements: str) -> None:
        """Open a transaction (a BEGIN, and what must follow it).  Where statements can be
        pipelined (PostgreSQL), they wait for the transaction's first statement and go with it
        (a transaction Bundle's rows and COMMIT go together too: four statements, not 31)."""
        if self._pipeline is None:
            for statement in statements:
                self._run(statement)
        else:
            self._opening = statements

    def start(self) -> None:
        """Send a BEGIN that waits (queued rows stay queued): what follows happens inside the
        transaction, holding whatever its opening statements take.  They take no parameters,
        so they go as one text of statements (PostgreSQL's simple query): a pipeline of the
        BEGIN and the write barrier cost a create 115 µs of client CPU, one text 48 µs."""
        opening, self._opening = self._opening, None
        if opening:
            self._run("; ".join(opening))

    def send_later(self, sql: str, params: Sequence[Any] = ()) -> None:
        """Run a statement whose result no one reads (a lock) with the next round trip, before
        the rows :meth:`defer` queued; at once where statements cannot be pipelined.  The
        database runs a connection's statements in order, so what follows waits for it all
        the same, but the worker does not: a create on PostgreSQL took three round trips, its
        identity-number lock one of its own."""
        if self._pipeline is None:
            self._run(sql, params)
        else:
            self._later.append((sql, params))

    def defer(
        self, table: str, columns: tuple[tuple[str, str], ...], rows: Sequence[Sequence[Any]], conflict: str = ""
    ) -> None:
        """Queue new rows for ``table`` (``columns`` as for :meth:`_insert_rows`, ``conflict``
        an ``ON CONFLICT …`` clause).  Queued rows go in before this executor runs any other
        statement — one statement per table and clause, in the order they were queued — so
        every later statement, a read included, sees them, and a COMMIT holds them.  A
        transaction Bundle of ten resources, a Patient and nine that refer to it, took 31
        statements; queued, 4.  :meth:`roll_back` forgets them."""
        if rows:
            self._deferred.setdefault((table, columns, conflict), []).extend(rows)

    def queues(self, table: str, match: Callable[[Sequence[Any]], bool]) -> bool:
        """Whether a row :meth:`defer` queued for ``table`` is one ``match`` accepts: a
        statement :meth:`send_later` would send before the queued rows must not be meant for
        them."""
        return any(match(row) for (name, _, _), rows in self._deferred.items() if name == table for row in rows)

    def flush(self) -> None:
        """Send what waits (a BEGIN, queued statements and rows) now.  Whoever ends a savepoint calls it
        inside the block that undoes the savepoint's writes on failure, so a queued row that
        the database refuses fails its own unit of work, as it would have when it was queued."""
        if self._waiting():
            with self._pipelined():
                self._send_waiting()

    def commit(self) -> None:
        """What waits and the COMMIT, in one round trip on PostgreSQL."""
        with self._pipelined():
            self._send_waiting()
            self._run("COMMIT")

    def roll_back(self, savepoint: str | None = None) -> None:
        """Forget the queued rows and roll back the transaction, or to ``savepoint`` (whose
        rows they are).  A transaction whose BEGIN was never sent has nothing to undo."""
        self._later, self._deferred = [], {}
        if savepoint is not None:
            self.execute(f"ROLLBACK TO SAVEPOINT {savepoint}")
        elif self._opening is not None:
            self._opening = None
        else:
            # the driver's own rollback: psycopg then also forgets (and deallocates) the
            # statements it prepared on the connection.  A pipeline an error cut short left
            # it counting as prepared a statement whose preparation the server skipped, and
            # a later request on the connection failed ("prepared statement "_pg3_4" does
            # not exist"): a create of a person someone holds fails so (IdentityKeys.held)
            try:
                self.connection.rollback()
            except self.errors as exc:
                raise driver_error(self.dialect.name, exc) from exc

    def _send_opening(self) -> None:
        opening, self._opening = self._opening, None
        for statement in opening or ():
            self._run(statement)

    def _waiting(self) -> bool:
        return self._opening is not None or bool(self._later) or bool(self._deferred)

    def _send_waiting(self) -> None:
        self._send_opening()
        later, self._later = self._later, []
        for sql, params in later:
            self._run(sql, params)
        deferred, self._deferred = self._deferred, {}
        tables = [table for table, _, _ in deferred]
        if self.dialect.json_rows and len(tables) > 1 and len(set(tables)) == len(tables):
            self._insert_together(deferred)
            return
        for (table, columns, conflict), rows in deferred.items():
            self._insert_rows(table, columns, rows, conflict)

    def _insert_together(
        self, deferred: Mapping[tuple[str, tuple[tuple[str, str], ...], str], Sequence[Sequence[Any]]]
    ) -> None:
        """The queued rows of several tables as one statement on PostgreSQL, each table's
        INSERT but the last a data-modifying ``WITH`` query (run once, whether read or not):
        a create's person key, version, current row and search index rows went as four
        statements of a pipeline, and psycopg spends about 40 µs of CPU on each (its COMMIT's
        round trip 585–593 → 466–486 µs of client CPU, in process, docs/benchmarks.md).  Only
        when each table comes once: the sibling queries of one statement do not see each
        other's rows, and a table's second clause (``ON CONFLICT … DO NOTHING``) must."""
        statements = [
            self._inserting(table, columns, rows, conflict) for (table, columns, conflict), rows in deferred.items()
        ]
        *first, (last, _) = statements
        sql = "WITH " + ", ".join(f"q{index} AS ({text})" for index, (text, _) in enumerate(first)) + f" {last}"
        self._run(sql, [value for _, params in statements for value in params])

    @contextmanager
    def together(self) -> Iterator[None]:
        """Statements run in the block sent together, after what waits (one round trip on
        PostgreSQL): run them all, then read their results."""
        with self._pipelined():
            self._send_waiting()
            yield

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        if not self._waiting():
            return self._run(sql, params)
        with self._pipelined():  # its results can be read once the pipeline has ended
            self._send_waiting()
            return self._run(sql, params)

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        try:
            return self.connection.execute(self.dialect.sql(sql), params)
        except self.errors as exc:
            raise driver_error(self.dialect.name, exc) from exc

    def insert_many(self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        """New rows into ``table``.  On PostgreSQL one ``COPY … FROM STDIN`` stream: the audit
        trail and the exchange records append thousands of rows a second under load, and COPY
        costs the client and the server a fraction of an INSERT per row.  Not inside
        a pipeline (COPY cannot join one)."""
        if not rows:
            return
        if not self.dialect.bulk_copy:
            self.flush()
            self._insert_each(table, columns, rows)
            return
        self.flush()
        try:
            with self.connection.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        except self.errors as exc:
            raise driver_error(self.dialect.name, exc) from exc

    def _insert_rows(
        self, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], conflict: str = ""
    ) -> None:
        """A few new rows into ``table``, in a pipeline too; ``columns`` pairs each name with
        its PostgreSQL type, ``conflict`` is an optional ``ON CONFLICT …`` clause.  On
        PostgreSQL one ``INSERT … SELECT`` from the rows sent as one JSON array of arrays (for
        thousands of rows, :meth:`insert_many`): psycopg spends about 16 µs of CPU on each
        INSERT of an ``executemany``, and dumped one array per column element by element in
        Python (a transaction Bundle's 102 search index rows 317 µs of client CPU as arrays,
        133 µs as JSON, which orjson writes; the database's time alike, taking turns).  Up to
        :data:`FEW_ROWS` rows (a create's version, its current row, a person's key) go as
        ``INSERT … VALUES`` instead, a scalar per cell."""
        if not rows:
            return
        if not self.dialect.json_rows:
            self._insert_each(table, columns, rows, conflict)
            return
        self._run(*self._inserting(table, columns, rows, conflict))

    @staticmethod
    def _inserting(
        table: str, columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[Any]], conflict: str
    ) -> tuple[str, list[Any]]:
        """The INSERT of :meth:`_insert_rows` on PostgreSQL and its parameters."""
        names = ", ".join(name for name, _ in columns)
        if len(rows) <= FEW_ROWS:
            row = f"({', '.join(f'?::{kind}' for _, kind in columns)})"
            values = f"INSERT INTO {table} ({names}) VALUES {', '.join([row] * len(rows))}{conflict}"
            return values, [value for each in rows for value in each]
        cells = ", ".join(f"(e ->> {index})::{kind}" for index, (_, kind) in enumerate(columns))
        selected = f"INSERT INTO {table} ({names}) SELECT {cells} FROM jsonb_array_elements(?::jsonb) e{conflict}"
        return selected, [orjson.dumps(_json_safe(columns, rows)).decode()]

    def _insert_each(
        self,
        table: str,
        columns: Sequence[str] | Sequence[tuple[str, str]],
        rows: Sequence[Sequence[Any]],
        conflict: str = "",
    ) -> None:
        """``rows`` into ``table`` by one prepared INSERT stepped once a row (SQLite, where a
        statement costs no round trip); ``columns`` are names, or (name, type) pairs."""
        text = _insert_sql(self.dialect, table, tuple(columns), conflict)
        try:
            self.connection.cursor().executemany(text, rows)
        except self.errors as exc:
            raise driver_error(self.dialect.name, exc) from exc

    @contextmanager
    def _pipelined(self) -> Iterator[None]:
        """Statements sent together (PostgreSQL's pipeline mode: one round trip instead of one
        each); their results can be read and their errors surface once the block has ended."""
        if self._pipeline is None:
            yield
            return
        try:
            with self._pipeline():
                yield
        except self.errors as exc:
            raise driver_error(self.dialect.name, exc) from exc

    def stream(self, sql: str, params: Sequence[Any] = (), size: int = 500) -> Iterator[Sequence[Any]]:
        """The rows of a large result as they are read, ``size`` at a time, never all at once
        (an export of the whole archive held it all in memory: over 1 GB at the end of a
        20,000-row ingest, growing with the archive).  On PostgreSQL through a server-side
        cursor inside a transaction of its own, since the client otherwise receives the whole
        result before the first row."""
        text = self.dialect.sql(sql)
        self.flush()
        try:
            if self.dialect.server_cursors:
                name = f"yiyang_stream_{next(_STREAMS)}"  # unique: streams may be open side by side
                with self.connection.transaction(), self.connection.cursor(name=name) as cursor:  # type: ignore[attr-defined]
                    cursor.itersize = size
                    cursor.execute(text, params)
                    yield from cursor
                return
            cursor = self.connection.execute(text, params)
            while rows := cursor.fetchmany(size):
                yield from rows
        except self.errors as exc:
            raise driver_error(self.dialect.name, exc) from exc

    def one(self, sql: str, params: Sequence[Any] = ()) -> Sequence[Any] | None:
        rows = self._read_now(sql, params)
        if rows is None:
            return self.execute(sql, params).fetchone()
        return rows[0] if rows else None

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[Sequence[Any]]:
        rows = self._read_now(sql, params)
        return self.execute(sql, params).fetchall() if rows is None else rows

    def _read_now(self, sql: str, params: Sequence[Any]) -> list[Sequence[Any]] | None:
        """The rows of a statement read before the next one runs, the connection's quicker way
        (PostgreSQL, see ``postgres.py``); None when it has none, or something waits to go
        before the statement."""
        if self._rows_now is None or self._waiting():
            return None
        try:
            return self._rows_now(self.dialect.sql(sql), params)
        except self.errors as exc:
            raise driver_error(self.dialect.name, exc) from exc


class Transaction:
    """One unit of work; the table modules hang off it so a caller sees one object.

    Each table module is built on first use: a request touches one or two of them, and a
    read by id spends well under a millisecond in all.  (They are imported there too, because
    they import this module.)"""

    _savepoints = itertools.count()

    def __init__(self, executor: Executor, indexer: Indexer | None, lock: Callable[[str, bool], bool]) -> None:
        self.sql = executor
        self._indexer = indexer
        self._lock = lock
        #: the named locks taken: the transaction's own, then one set per open savepoint
        self._held: list[set[str]] = [set()]

    @cached_property
    def resources(self) -> Resources:
        from gateway.storage.resources import Resources

        return Resources(self.sql, self._indexer)

    @cached_property
    def identity(self) -> IdentityKeys:
        from gateway.storage.ingest_tables import IdentityKeys

        return IdentityKeys(self.sql)

    @cached_property
    def keyed(self) -> Keyed:
        from gateway.storage.ingest_tables import Keyed

        return Keyed(self.sql)

    @cached_property
    def ledger(self) -> Ledger:
        from gateway.storage.ingest_tables import Ledger

        return Ledger(self.sql)

    @cached_property
    def quarantine(self) -> Quarantine:
        from gateway.storage.ingest_tables import Quarantine

        return Quarantine(self.sql)

    @cached_property
    def conflicts(self) -> Conflicts:
        from gateway.storage.ingest_tables import Conflicts

        return Conflicts(self.sql)

    @cached_property
    def security(self) -> SecurityTables:
        from gateway.storage.security_tables import SecurityTables

        return SecurityTables(self.sql)

    @cached_property
    def audit(self) -> AuditEvents:
        from gateway.storage.audit_tables import AuditEvents

        return AuditEvents(self.sql)

    @cached_property
    def exchanges(self) -> Exchanges:
        from gateway.storage.exchange_tables import Exchanges

        return Exchanges(self.sql)

    @contextmanager
    def savepoint(self) -> Iterator[None]:
        """A part of the transaction that can fail alone (one record of a batch, one entry of a
        batch Bundle): on an exception its writes are undone and the exception goes on."""
        name = f"sp{next(self._savepoints)}"
        self.sql.execute(f"SAVEPOINT {name}")
        self._held.append(set())
        try:
            yield
            self.sql.flush()
        except BaseException:
            self._held.pop()  # PostgreSQL releases the locks taken since with the savepoint
            self.sql.roll_back(name)
            self.sql.execute(f"RELEASE SAVEPOINT {name}")
            raise
        taken = self._held.pop()
        self._held[-1] |= taken
        self.sql.execute(f"RELEASE SAVEPOINT {name}")

    def lock(self, name: str, wait: bool = True) -> bool:
        """Hold a named lock until the transaction ends (identity merges of concurrent ingests
        must not both create the same person).  Asked for once: a transaction that holds it
        already does not ask the database again (an ingest batch took the identity lock for
        every record, a transaction Bundle's Patient its numbers twice), unless the savepoint
        it was taken in has rolled back, which released it.

        Without ``wait``, taken only if no other transaction holds it, and whether it was:
        a writer that takes such locks in no fixed order (an ingest batch, a record's ledger
        entry at a time) must not wait for one while holding the others."""
        if any(name in taken for taken in self._held):
            return True
        if not self._lock(name, wait):
            return False
        self._held[-1].add(name)
        return True


def _no_lock(_name: str, _wait: bool) -> bool:
    """A reading transaction's lock: it writes nothing, so it has nothing to keep apart."""
    return True


class Store:
    """A database holding the archive.  Backends implement :meth:`_connection` and :meth:`_lock`."""

    #: statements every write transaction runs right after its BEGIN (PostgreSQL's share of
    #: the write barrier, see :meth:`settled_instant`)
    _write_preamble: tuple[str, ...] = ()

    dialect: Dialect
    #: the driver's exceptions, raised to callers as StoreError (a database failure is never
    #: mistaken for a bad record)
    errors: tuple[type[Exception], ...] = ()

    def __init__(self, url: str, indexer: Indexer | None = None) -> None:
        self.url = url
        self.indexer = indexer

    # -- backends --------------------------------------------------------------------------
    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        raise NotImplementedError

    def _lock(self, executor: Executor, name: str, wait: bool) -> bool:
        """Take the named lock for the transaction (see :meth:`Transaction.lock`)."""
        raise NotImplementedError

    def close(self) -> None:
        """Release connections; the store is not used afterwards."""

    def analyze(self) -> None:
        """Refresh the query planner's statistics after many writes (an ingest run, the demo
        load); each backend says how (autovacuum would get there on PostgreSQL, but later)."""

    def analyze_after(self, written: int) -> bool:
        """Refresh the statistics (:meth:`analyze`) after a load that wrote ``written``
        resources, when that is more than :meth:`stale_beyond`; whether it did.  The one rule
        of every load, ``yiyang ingest``, ``$ingest``, a replay and the MLLP listener
        (``gateway/mllp.py``, ``WrittenSince``) alike: the posted file of thousands of records left
        PostgreSQL planning for the empty archive of before until autovacuum came, while a
        small load into a large archive, which changes little the planner goes by, needs no
        pass over every table."""
        if written <= self.stale_beyond():
            return False
        self.analyze()
        return True

    def stale_beyond(self) -> float:
        """The written resources beyond which the statistics are stale: :data:`STALE_ROWS` and
        :data:`STALE_SHARE` of the resources they last counted (none, on an archive never
        analysed)."""
        return STALE_ROWS + STALE_SHARE * self._rows_counted()

    def _rows_counted(self) -> int:
        """How many resources the planner's statistics last counted (0: none)."""
        raise NotImplementedError

    # -- transactions ----------------------------------------------------------------------
    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A write transaction: committed when the block ends, rolled back on any exception."""
        with self._writing() as executor:
            tx = Transaction(executor, self.indexer, lambda name, wait: self._lock(executor, name, wait))
            token = _WRITING.set((self, tx))
            try:
                yield tx
            finally:
                _WRITING.reset(token)

    def atomically(self, work: Callable[[Transaction], T]) -> T:
        """``work`` done in a write transaction, and done again in a new one when the database
        gave the first up to let another writer go on (see :func:`retried`).  Writers lock in
        one order where they can, but not everywhere: an ingest locks each record's identity
        numbers as it meets them, a REST write of a person with two numbers both at once.
        ``work`` must do nothing outside the transaction that a second run would do twice."""

        def once(_: int) -> T:
            with self.transaction() as tx:
                return work(tx)

        return retried(once)

    def reindex(self, kinds: list[str] | None = None, batch: int = 500) -> Iterator[int]:
        """Every current resource (of ``kinds``) indexed anew, ``batch`` at a time, each batch
        its own transaction (a server may keep writing meanwhile, and an interrupted run
        leaves whole batches done: run it again); yields how many each batch indexed."""
        after: tuple[str, str] | None = None
        while True:
            with self.reading(snapshot=False) as tx:
                keys = tx.resources.keys_after(after, kinds, batch)
            if not keys:
                return
            yield self.atomically(lambda tx, keys=keys: tx.resources.reindex(keys))
            after = keys[-1]

    @contextmanager
    def _writing(self) -> Iterator[Executor]:
        """One transaction on a connection of its own (pooled on PostgreSQL); a backend may share
        commits instead (SQLite's group commit)."""
        with self._connection() as connection:
            executor = Executor(connection, self.dialect, self.errors)
            executor.begin(self.dialect.begin, *self._write_preamble)
            try:
                yield executor
                executor.commit()
            except BaseException:
                executor.roll_back()
                raise

    def settled_instant(self) -> str:
        """An instant every write stamped at or before has committed by: what a change feed
        may promise, so that the next request ``_since`` it misses nothing (the ``$export``
        manifest's transactionTime).  A write is stamped before it commits; here, inside a
        write transaction, every other writer has committed (one writer at a time)."""
        from gateway.storage.resources import now_instant

        with self.transaction():
            return now_instant()

    @contextmanager
    def reading(self, *, snapshot: bool = True, consistent: bool = False) -> Iterator[Transaction]:
        """A read-only view: one snapshot on SQLite (a deferred transaction costs nothing
        there); on PostgreSQL each statement reads what is committed, saving two round trips
        per request (a search's count may then include a write its page missed).
        ``snapshot=False`` is for a view that runs one statement: every statement is its own
        snapshot, so the BEGIN and ROLLBACK around it would be two statements for nothing.
        ``consistent=True`` is for a view whose statements must agree (a measure's numerator
        counted within its denominator): one snapshot on PostgreSQL too.

        Inside this thread's own write transaction it is that transaction: a read made while
        writing (validating a transaction Bundle's entries against the archive) sees the
        writes so far and takes no second connection — on PostgreSQL, threads each holding a
        pooled connection and waiting for another would exhaust the pool."""
        writing = _WRITING.get()
        if writing is not None and writing[0] is self:
            yield writing[1]
            return
        with self._connection() as connection:
            executor = Executor(connection, self.dialect, self.errors)
            begin = self.dialect.begin_snapshot if consistent else self.dialect.begin_read if snapshot else None
            if begin is None:
                yield Transaction(executor, self.indexer, _no_lock)
                return
            executor.execute(begin)
            try:
                yield Transaction(executor, self.indexer, _no_lock)
            finally:
                executor.execute("ROLLBACK")

    # -- schema ----------------------------------------------------------------------------
    def upgrade(self) -> Upgrade:
        """Apply the migrations this store lacks; says what it found and what it applied.
        Statistics are refreshed after migrations applied to an archive holding data (a new
        index or a rewritten table has none until autovacuum comes, and a search meanwhile is
        planned blind); a new archive's empty tables have nothing to tell."""
        from gateway.storage.migrations import apply

        with self._connection() as connection:
            done = apply(Executor(connection, self.dialect, self.errors))
        if done.applied and done.before > 0:
            self.analyze()
        return done

    def schema_version(self) -> int:
        from gateway.storage.migrations import current_version

        with self._connection() as connection:
            return current_version(Executor(connection, self.dialect, self.errors))
