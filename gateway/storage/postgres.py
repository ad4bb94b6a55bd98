"""The production store: PostgreSQL through psycopg 3 with a connection pool; resources kept as
the JSON text they were written as (migration 0011), other documents as JSONB.

A transaction holds one pooled connection from BEGIN to COMMIT.  Row locks (``SELECT … FOR
UPDATE`` on the current version) serialise writers of one resource; a transaction-scoped
advisory lock serialises what must not interleave across resources (two ingests merging the
same person).
"""

from __future__ import annotations

import hashlib
import itertools
import re
import time
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cached_property, lru_cache
from typing import Any

import orjson
import psycopg
from psycopg.adapt import PyFormat, Transformer
from psycopg.pq import ExecStatus, PGresult, TransactionStatus
from psycopg.types.json import set_json_loads
from psycopg.types.string import TextBinaryLoader, TextLoader
from psycopg_pool import ConnectionPool, PoolTimeout

from gateway.messages import Worded
from gateway.storage import displayable_url
from gateway.storage.dialect import PLANNED_PER_CALL, POSTGRES
from gateway.storage.resources import now_instant
from gateway.storage.store import Connection, Executor, Indexer, Store, StoreError

set_json_loads(orjson.loads)
# Resources are kept as JSON (migration 11), and come back as the text they were written as: a
# read answered as stored sends it on unparsed (store.Stored); the other documents, JSONB, come
# back parsed by orjson.
psycopg.adapters.register_loader("json", TextLoader)
psycopg.adapters.register_loader("json", TextBinaryLoader)


def _configure(connection: psycopg.Connection) -> None:
    """Each new connection plans its prepared statements once, for any parameters.

    psycopg prepares a statement the fifth time it runs; PostgreSQL then keeps planning it
    anew for each call's values (a custom plan) while it guesses a generic plan dearer.  For
    the gateway's statements — fixed shapes that start from an index the SQL chooses — the
    generic plan is the same plan, but planning is not free: for a search by name and birth
    date on 300,000 resources it was two thirds of the database's CPU (800 µs a search
    against 250 µs with the plan kept), and it grows with the statistics of a larger store.
    A statement run fewer than five times is planned for its values, as before.

    JIT compilation is off: PostgreSQL compiles a statement whose estimated cost passes
    ``jit_above_cost``, which a sorted or broad search of a large store does, and compiling
    cost more than it saved — a sorted page's subplans took 5.4 s of a 7.3 s page on a loaded
    machine (171 functions compiled); on 30,000 resources a sorted search took 196–419 ms
    without JIT against 368–665 ms with it, taking turns.  The gateway's statements are short
    index lookups, the case JIT does not serve."""
    connection.execute("SET plan_cache_mode = force_generic_plan")
    connection.execute("SET jit = off")


class _Connection(psycopg.Connection):  # type: ignore[type-arg]
    """A pooled connection that runs the statements whose rows the store reads at once
    (``Executor.one`` and ``all``: reads by id, searches, access checks) through libpq and
    psycopg's own adapters directly, without a cursor, when no transaction is open
    (:class:`_QuickReads`).  Inside a transaction (a read while writing) a cursor runs them,
    one the connection keeps: one made per statement sets up its own adapters each time."""

    @cached_property
    def _cursor(self) -> psycopg.Cursor:  # type: ignore[type-arg]
        return self.cursor()

    @cached_property
    def _quick(self) -> _QuickReads:
        return _QuickReads(self)

    def execute(self, query: Any, params: Any = None, *, prepare: bool | None = None, binary: bool = False) -> Any:
        """As psycopg's, but a statement marked :data:`PLANNED_PER_CALL` is sent with its values
        in its text (:meth:`_planned_per_call`)."""
        if prepare is None and isinstance(query, str) and PLANNED_PER_CALL in query:
            return self._planned_per_call(query, params)
        return super().execute(query, params, prepare=prepare, binary=binary)

    def _planned_per_call(self, query: str, params: Any) -> psycopg.ClientCursor:  # type: ignore[type-arg]
        """The statement with its values merged into its text (psycopg quotes them), so that
        PostgreSQL plans it for them.  Sent with parameters, even unprepared, it is planned as
        ``plan_cache_mode`` (:func:`_configure`) says: one generic plan, which for a restricted
        client's visibility guesses that each value matches one row and lists every stay of the
        organisation (on 5,000 people 57–153 ms a search by one person, against 6–12 ms planned
        for the values)."""
        return psycopg.ClientCursor(self).execute(query, params, prepare=False)

    def rows_now(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        """The rows of ``query`` (psycopg's placeholders), adapted as a cursor adapts them.
        The quick way only outside a transaction: psycopg deallocates every prepared
        statement after a ROLLBACK (a savepoint's too), and running a statement it took
        away fails the transaction; outside one, that costs nothing, and the statement is
        prepared again."""
        if PLANNED_PER_CALL in query:
            return self._planned_per_call(query, params).fetchall()
        if "%b" in query or "%t" in query or self.pgconn.transaction_status != TransactionStatus.IDLE:
            return self._cursor.execute(query, params).fetchall()
        try:
            return self._quick.rows(query, params)
        except psycopg.errors.InvalidSqlStatementName:  # deallocated by psycopg meanwhile
            self._quick.prepared.clear()
            return self._quick.rows(query, params)


class _QuickReads:
    """One connection's statements run through libpq (``PGconn.exec_prepared``) with psycopg's
    adapters (a ``Transformer``), prepared as psycopg prepares its own, by the connection's
    settings: after ``prepare_threshold`` runs (never when None), the ``prepared_max`` most
    recently run kept (the least recently run deallocated: statements whose ``IN`` lists vary
    in length would otherwise pile up in the session).  A cursor's execute walks a chain of
    generators, converts the query and keeps the results for fetching: in process, a read by id cost 116–132 µs of client CPU through a
    cursor kept per connection, and 86–102 µs this way (docs/benchmarks.md)."""

    def __init__(self, connection: psycopg.Connection) -> None:  # type: ignore[type-arg]
        self.connection = connection
        self.pgconn = connection.pgconn
        self.adapt = Transformer(connection)
        #: the name of each statement prepared, per query and parameter types, least recently
        #: run first
        self.prepared: OrderedDict[tuple[str, tuple[int, ...]], bytes] = OrderedDict()
        #: how often each statement not prepared yet has run (forgotten when it grows large)
        self.runs: dict[tuple[str, tuple[int, ...]], int] = {}
        self.names = itertools.count()

    def rows(self, query: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
        adapt = self.adapt
        values = adapt.dump_sequence(params, [PyFormat.AUTO] * len(params))
        key = (query, tuple(adapt.types))
        name = self.prepared.get(key)
        threshold, most = self.connection.prepare_threshold, self.connection.prepared_max
        if name is not None:
            self.prepared.move_to_end(key)
        elif threshold is None:
            pass
        elif (runs := self.runs.get(key, 0) + 1) < threshold:
            self.runs[key] = runs
            if len(self.runs) > 1000:
                self.runs.clear()
        else:
            self.runs.pop(key, None)
            if most is not None and len(self.prepared) >= most:
                _, oldest = self.prepared.popitem(last=False)
                _checked(self.pgconn.exec_(b"DEALLOCATE " + oldest))
            name = f"yiyang_{next(self.names)}".encode()
            _checked(self.pgconn.prepare(name, _numbered(query), adapt.types))
            self.prepared[key] = name
        if name is None:
            result = self.pgconn.exec_params(_numbered(query), values, adapt.types, adapt.formats)
        else:
            result = self.pgconn.exec_prepared(name, values, adapt.formats)
        _checked(result)
        adapt.set_pgresult(result)
        return adapt.load_rows(0, result.ntuples, tuple)


def _checked(result: PGresult) -> PGresult:
    """A statement's result, or the error it ended with as psycopg raises it."""
    if result.status not in (ExecStatus.TUPLES_OK, ExecStatus.COMMAND_OK):
        raise psycopg.errors.error_from_result(result, encoding="utf-8")
    return result


_PLACEHOLDER = re.compile(r"%[%s]")


@lru_cache(maxsize=2048)
def _numbered(query: str) -> bytes:
    """``%s`` placeholders numbered as the server takes them (``$1`` …), ``%%`` a percent sign."""
    numbers = itertools.count(1)
    return _PLACEHOLDER.sub(lambda found: "%" if found[0] == "%%" else f"${next(numbers)}", query).encode()


class _Pool(ConnectionPool):  # type: ignore[type-arg]
    """A pool that lends the connection handed back last (psycopg's lends the one idle
    longest).  A worker's request thread then runs its statements on one backend that has just
    run the last ones, its caches warm, rather than on each of the worker's connections in turn
    (its request thread's, its audit trail's and its exchange log's writers'): a secured read
    by id cost the backends 219 µs of CPU taking turns over three, 141 µs on the one, a search
    by identifier 292 against 280 µs (medians of five runs each, taking turns, in process).
    The connections the worker rarely needs at once stay idle at the other end, where the
    pool closes the idle ones first when it shrinks."""

    def _get_ready_connection(self, timeout: float | None) -> Any:
        # under the pool's lock: the last one handed back first, the others in their order
        self._pool.rotate(1)
        return super()._get_ready_connection(timeout)


#: the advisory lock every write transaction holds shared, from its BEGIN, for
#: :meth:`PostgresStore.settled_instant` to see which are in flight.  The two-key form keeps it
#: apart from the one-key locks named by text (``tx.lock``), whose names clients choose in part
WRITE_BARRIER = (20261204, 1)
_BARRIER_HOLDERS = (
    "SELECT virtualtransaction FROM pg_locks WHERE locktype = 'advisory' AND granted"
    f" AND classid = {WRITE_BARRIER[0]} AND objid = {WRITE_BARRIER[1]} AND objsubid = 2"
    # advisory locks are per database; pg_locks shows the whole cluster's
    " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
)
#: how long a kick-off waits for the writes in flight to commit before it gives up (503)
SETTLE_SECONDS = 120


def advisory_key(name: str) -> int:
    """The 64-bit key of the advisory lock named ``name`` (:meth:`Transaction.lock`): the first
    eight bytes of its BLAKE2b digest, as PostgreSQL's signed ``bigint``.  Keyed by a 32-bit
    CRC, two names among the few hundred thousand an archive's 身份证号 and ledger records lock
    shared a key (``person|idcard|410105194909685295`` and ``…194912060020``): a writer of one
    person waited for another's, and two writers each holding one of such a pair and asking
    for the other's partner deadlocked, although their names kept them apart.  Among 2**64 keys
    a collision is not to be expected in any archive (about 10**-9 for 200,000 names).  The
    one-key form is apart from the two-key locks (:data:`WRITE_BARRIER`): PostgreSQL tells
    them by ``objsubid``."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


#: how long opening a store waits for the database server to answer
CONNECT_SECONDS = 10
#: how long a thread waits for a pooled connection (psycopg_pool's default, made ours): every
#: one in use, or the server not answering for a new one, past it is :class:`NoConnectionFree`
BORROW_SECONDS = 30


class CannotConnect(Worded, StoreError):
    """The database server refused or did not answer, and why (refused, no such database or
    role, a wrong password …), in the server's words, on one line."""

    def __init__(self, url: str, reason: str | Worded) -> None:
        said = reason if isinstance(reason, Worded) else " ".join(reason.split())
        Worded.__init__(self, "store.cannot-connect", url=displayable_url(url), reason=said)
        StoreError.__init__(self, str(self))


class NoConnectionFree(Worded, StoreError):
    """The pool lent no connection within its wait: every one was in use (more requests at
    once than ``store_connections``), or the server did not answer for a new one.  A busy
    store, not a broken one: the request may be sent again (psycopg_pool's ``PoolTimeout``
    reached the API as an unexpected failure, a 500 with a traceback in the log)."""

    def __init__(self, connections: int, seconds: float) -> None:
        Worded.__init__(self, "store.no-connection-free", connections=connections, seconds=f"{seconds:g}")
        StoreError.__init__(self, str(self))


def _check_connection(url: str) -> None:
    """One connection made and closed before the pool opens: the pool retries a refused
    connection until its wait times out and keeps the reason to its log, so a server that
    is down, or a wrong password, was reported after 10 s as a timeout."""
    try:
        psycopg.connect(url, connect_timeout=CONNECT_SECONDS).close()
    except psycopg.Error as exc:
        raise CannotConnect(url, str(exc)) from exc


class PostgresStore(Store):
    dialect = POSTGRES
    errors = (psycopg.Error,)
    _write_preamble = (f"SELECT pg_advisory_xact_lock_shared({WRITE_BARRIER[0]}, {WRITE_BARRIER[1]})",)

    def __init__(self, url: str, indexer: Indexer | None, pool_size: int) -> None:
        """Connections are opened as threads ask for them, up to ``pool_size``: a thread asking
        for one more waits until another is handed back."""
        super().__init__(url, indexer)
        _check_connection(url)
        self.pool = _Pool(
            url,
            connection_class=_Connection,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},  # transactions are begun explicitly, as on SQLite
            configure=_configure,
            timeout=BORROW_SECONDS,
            open=True,
            name="yiyang",
        )
        try:
            self.pool.wait(timeout=CONNECT_SECONDS)
        except PoolTimeout as exc:
            self.pool.close()
            raise CannotConnect(url, Worded("store.no-connection-in-time", seconds=CONNECT_SECONDS)) from exc

    @contextmanager
    def _connection(self) -> Iterator[Connection]:
        """A pooled connection, borrowed and handed back without the pool's own context
        manager: its ``with connection`` (a commit the explicit transactions here never
        need) and generator cost about 20 µs of CPU a request.  A connection handed back
        inside a transaction (an error between BEGIN and its end) is rolled back by the pool,
        a broken one replaced."""
        try:
            connection = self.pool.getconn()
        except PoolTimeout as exc:
            raise NoConnectionFree(self.pool.max_size, self.pool.timeout) from exc
        try:
            yield connection
        finally:
            self.pool.putconn(connection)

    def _lock(self, executor: Executor, name: str, wait: bool) -> bool:
        key = (advisory_key(name),)
        if wait:
            executor.send_later("SELECT pg_advisory_xact_lock(?)", key)
            return True
        taken = executor.one("SELECT pg_try_advisory_xact_lock(?)", key)
        return bool(taken and taken[0])

    def settled_instant(self) -> str:
        """Writers run side by side here, each stamping its resources before it commits: a
        long transaction stamped before an export's kick-off could commit after the export
        read the archive, and the next export ``_since`` its transactionTime would skip it for
        good.  Every write transaction holds the barrier lock shared from its BEGIN, before it
        stamps anything (``Resources.write``): so the writes that may have stamped before this
        instant are those holding it now, and this waits for each of them to end.  It takes no
        lock itself, so no writer waits for it (an exclusive one queued every new write behind
        the longest one in flight, an ingest batch for seconds)."""
        instant = now_instant()
        deadline = time.monotonic() + SETTLE_SECONDS
        with self._connection() as connection:
            executor = Executor(connection, self.dialect, self.errors)
            holders = {row[0] for row in executor.all(_BARRIER_HOLDERS)}
            while holders:
                if time.monotonic() > deadline:
                    raise StoreError(f"{len(holders)} writes still in flight after {SETTLE_SECONDS} s")
                time.sleep(0.01)
                holders &= {row[0] for row in executor.all(_BARRIER_HOLDERS)}
        return instant

    def analyze(self) -> None:
        """Statistics right after a bulk write, before autovacuum gets to it: a freshly loaded
        archive is otherwise planned as if every table held one row (a measure over 2,000
        people took 23 s instead of 1.2 s, walking every division row per person).  Every
        table of the archive, as SQLite's ANALYZE does: an ingest fills the identity index
        (``person_key``, which a restricted client's every search reads), the versions, the
        exchanges and the audit trail as well as the resources and their index rows.  Each
        table is sampled (30,000 rows at most), so the cost stays bounded however large."""
        with self._connection() as connection:
            Executor(connection, self.dialect, self.errors).execute("ANALYZE")

    def _rows_counted(self) -> int:
        """``resource``'s ``reltuples``, -1 until it is first analysed or vacuumed."""
        with self._connection() as connection:
            row = Executor(connection, self.dialect, self.errors).one(
                "SELECT reltuples FROM pg_class WHERE oid = to_regclass('resource')"
            )
        return max(int(row[0]), 0) if row else 0

    def close(self) -> None:
        self.pool.close()
