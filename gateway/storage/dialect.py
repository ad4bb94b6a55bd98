"""What differs between the two databases, and nothing else.

The store's SQL is written once, with ``?`` placeholders and portable statements
(``INSERT … ON CONFLICT``, ``SAVEPOINT``, ``EXISTS``); a :class:`Dialect` supplies the few
places SQLite and PostgreSQL disagree: placeholder style, column types in the migrations, how
a JSON document goes in and comes out, how a write transaction begins, how to take a lock and
how rows are appended in bulk.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sized
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import orjson

#: Written after ``search_index s`` in a probe (``WHERE s.type = ? AND s.id = r.id AND …``):
#: the probe must walk the resource's own few rows.  SQLite's planner, whose statistics only
#: know the average rows per (type, name, value), otherwise takes the value index for
#: ``status = 'active'`` and scans every active Coverage once per candidate (23 s instead of
#: 0.1 s for 4,000 candidates).  PostgreSQL's generic plan guesses as blindly, but it turns
#: the probe into a join of its own making; a :data:`FENCE` ends the probe there.
OWNER_PROBE = "/*owner-probe*/"
#: Written after ``search_index s1`` where a page's ids are listed from one value's rows in id
#: order (``ORDER BY s1.id LIMIT …``): SQLite would walk every resource of the type through the
#: owner index instead, to have that order for free, which for an identifier is the whole
#: table (250 ms instead of 0.1 ms on 100,000 people); and where a person's keys are looked up
#: among the types of a compartment named one by one (``s.type IN (?, …)``), which SQLite
#: otherwise answers by scanning the whole table.
VALUE_DRIVER = "/*value-driver*/"
#: Written as ``x IN (/*listed*/)`` with one parameter, :func:`listed`'s JSON array of the
#: values, for a list whose length the request decides (the members a ``$everything`` page
#: looks up, those it hides).  One placeholder per value (:func:`marks`) failed past the
#: limit on a statement's parameters (SQLite 32,766, 999 on old builds; PostgreSQL 65,535),
#: and a statement of thousands of them is slow to plan.
LISTED = "/*listed*/"
#: In a statement whose best plan depends on its values (a restricted client's visibility:
#: whether a person has a stay, a plan or a Consent with one organisation), PostgreSQL is to
#: plan it for each call's values, never keep one generic plan (postgres.py).  A comment: both
#: databases ignore it.
PLANNED_PER_CALL = "/*planned-per-call*/"
#: Written at the end of a subquery selecting one resource's own index rows, which the caller
#: then tests against the request's values (``FROM (SELECT … x.id = p.id … /*fence*/) x WHERE
#: x.value = ?``): PostgreSQL neither pulls such a subquery into the statement nor pushes the
#: test into it (``OFFSET 0``), so a plan made for any values (a prepared statement's generic
#: plan, which guesses that a value matches a row or two) cannot start from the value instead
#: (every stay of an organisation) and walks the resource's own rows.  A search's probe is
#: written so too (``EXISTS (SELECT 1 FROM (SELECT * FROM search_index s2 WHERE s2.id = s1.id
#: … /*fence*/) s2 WHERE s2.value = ?)``, ``search_sql``): PostgreSQL neither turns it into a
#: join nor reads the value's rows for each candidate.  Joined, a generic plan guessing one row
#: per value sorted every CarePlan of the common ``category`` to merge them with the one of
#: ``subject`` (38 ms a search on 10,000 CarePlans, against 0.16 ms probed); with the value
#: inside the fence, it read every CarePlan of the category, or every Encounter dated after a
#: day, from the index on values once per candidate wherever values outnumber resources in its
#: statistics.  SQLite plans each statement for its values and needs none.
FENCE = "/*fence*/"


def marks(values: Sized) -> str:
    """The portable placeholders of an ``IN (…)`` list or a ``VALUES (…)`` row: one per value."""
    return ", ".join("?" * len(values))


def listed(values: Iterable[str]) -> str:
    """The one parameter of a :data:`LISTED` list: its values as a JSON array of text."""
    return orjson.dumps(list(values)).decode()


@dataclass(frozen=True)
class Dialect:
    name: str
    #: column types the migrations name as {json}, {bool}, {serial}, {real}, {bytewise}
    types: dict[str, str]
    #: statement opening a write transaction
    begin: str
    #: statement run first in a transaction that changes the schema (a migration), which makes
    #: processes upgrading one archive at once take turns; None where ``begin`` already does
    schema_lock: str | None = None
    #: statement opening a read-only view, or None to read statement by statement
    begin_read: str | None = None
    #: statement opening a read-only view whose statements all see one snapshot (for a report
    #: whose numbers must agree with each other); the read-only view's when that is one
    begin_snapshot: str | None = None
    placeholder: str = "?"
    #: what stands for :data:`OWNER_PROBE` and :data:`VALUE_DRIVER` in a statement (see there)
    owner_probe: str = ""
    value_driver: str = ""
    #: what stands for :data:`LISTED`: the rows of a JSON array of text, bound as one parameter
    listed: str = ""
    #: what stands for :data:`FENCE`
    fence: str = ""
    #: new rows in bulk go through ``COPY … FROM STDIN`` (PostgreSQL) instead of INSERTs
    bulk_copy: bool = False
    #: a few new rows go in as one ``INSERT … SELECT`` from a JSON array of them (PostgreSQL)
    #: instead of an INSERT each
    json_rows: bool = False
    #: large results are read through a server-side cursor (PostgreSQL; SQLite's cursor
    #: already steps through the result row by row)
    server_cursors: bool = False
    #: a JSON column's member as text, for a statement to compare (:meth:`json_member`)
    json_member_sql: str = ""

    def sql(self, text: str) -> str:
        """``text`` as this database takes it: its marks (:data:`OWNER_PROBE` …) and
        placeholders replaced (see :func:`_translated`)."""
        return _translated(text, self.owner_probe, self.value_driver, self.listed, self.fence, self.placeholder)

    def json_member(self, column: str, key: str) -> str:
        """The SQL of a JSON document's top-level member ``key`` as text (None when absent), so
        that a statement filters on it instead of the caller parsing every row; ``column`` and
        ``key`` are the caller's constants, never a request's values."""
        return self.json_member_sql.format(column=column, key=key)

    def ddl(self, text: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: self.types[m.group(1)], text)

    @staticmethod
    def json_in(document: Any) -> str:
        """A JSON document as both drivers take it (PostgreSQL casts the text to JSONB)."""
        return orjson.dumps(document).decode()

    @staticmethod
    def json_out(value: Any) -> Any:
        """A JSON document as the driver returned it, parsed."""
        return orjson.loads(value) if isinstance(value, (str, bytes)) else value


SQLITE = Dialect(
    "sqlite",
    types={
        "json": "TEXT",
        "bool": "INTEGER",
        "serial": "INTEGER PRIMARY KEY AUTOINCREMENT",
        "real": "REAL",
        "bytewise": "TEXT",
    },
    # IMMEDIATE takes the write lock at once: a second writer waits (busy_timeout) instead of
    # failing halfway through with "database is locked" when it first writes.
    begin="BEGIN IMMEDIATE",
    # a deferred transaction: one snapshot for a search's page, count and includes, at no cost
    begin_read="BEGIN",
    begin_snapshot="BEGIN",
    owner_probe="INDEXED BY search_index_owner",
    value_driver="INDEXED BY search_index_value",
    listed="SELECT value FROM json_each(?)",
    json_member_sql="json_extract({column}, '$.{key}')",
)


POSTGRES = Dialect(
    "postgresql",
    types={
        "json": "JSONB",
        "bool": "BOOLEAN",
        "serial": "BIGSERIAL PRIMARY KEY",
        "real": "DOUBLE PRECISION",
        "bytewise": 'TEXT COLLATE "C"',
    },
    begin="BEGIN",
    # writers run side by side: two processes upgrading a new archive at once both found
    # version 0 and both ran migration 1, and one failed.  The key beside the write barrier's
    # (postgres.WRITE_BARRIER); transaction-scoped, so a failed migration leaves no lock held
    schema_lock="SELECT pg_advisory_xact_lock(20261204, 2)",
    # no BEGIN/ROLLBACK round trips around a read: each statement sees what is committed
    begin_read=None,
    # a read-only snapshot never fails to serialise: it only reads
    begin_snapshot="BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
    placeholder="%s",
    listed="SELECT jsonb_array_elements_text(?::jsonb)",
    fence="OFFSET 0",
    bulk_copy=True,
    json_rows=True,
    server_cursors=True,
    json_member_sql="({column} ->> '{key}')",
)


@lru_cache(maxsize=2048)
def _translated(text: str, owner_probe: str, value_driver: str, listed: str, fence: str, placeholder: str) -> str:
    """:meth:`Dialect.sql`, kept per statement text: a search's text repeats with its shape (its
    values are parameters), and every statement passes here.  Looked up, a search by
    identifier's costs about 0.4 µs; made anew, 1.4 µs on PostgreSQL (each mark looked for,
    each ``?`` replaced), 2.9 µs for one by name and birthdate."""
    if OWNER_PROBE in text:
        text = text.replace(OWNER_PROBE, owner_probe)
    if VALUE_DRIVER in text:
        text = text.replace(VALUE_DRIVER, value_driver)
    if LISTED in text:
        text = text.replace(LISTED, listed)
    if FENCE in text:
        text = text.replace(FENCE, fence)
    return text if placeholder == "?" else text.replace("?", placeholder)
