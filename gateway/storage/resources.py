"""Resources, their versions and their search index rows, written together.

Every write replaces the current version (``resource``), moving the one it supersedes to the
history (``resource_version``), and rewrites the resource's search index rows, all in the
caller's transaction, so a search never sees an index that disagrees with the resource.  Each
version's JSON is stored once: the current one's in ``resource`` (a read by id, a search, an
export read it there, one row per resource), the older ones' in ``resource_version``; vread
and history read both (migration 0019).  Writing a resource whose content is
unchanged (``meta`` aside) makes no new version: re-ingesting an export, or replaying a
transaction Bundle after a lost response, leaves the archive as it was.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from gateway.search.cursor import Value
from gateway.search.query import Criterion, SearchQuery
from gateway.search.values import clamped_instant, format_instant
from gateway.storage import search_sql
from gateway.storage.access_sql import Sql
from gateway.storage.dialect import LISTED, OWNER_PROBE, VALUE_DRIVER, listed, marks
from gateway.storage.store import (
    ANY_VERSION,
    UNREAD,
    Executor,
    Expected,
    Indexer,
    IndexRow,
    Stored,
    Unread,
    VersionConflict,
    admits,
    without_version,
)

#: the columns of the resource table and their PostgreSQL types; (type, id) is its key
_RESOURCE_COLUMNS = (
    ("type", "text"),
    ("id", "text"),
    ("version", "int4"),
    ("last_updated", "text"),
    ("deleted", "bool"),
    ("content", "json"),
)
_COLUMNS = ", ".join(name for name, _ in _RESOURCE_COLUMNS)
#: a version's row, in the current table and in the history alike: also the interaction that
#: wrote it (``method``) and its place in the archive's history (``seq``), which the database
#: gives a row as it is written (SQLite: the row id, one above the largest; PostgreSQL: a
#: sequence) and which goes with the version into the history
_VERSION_COLUMNS = f"{_COLUMNS}, method, seq"
#: the current version's row also records who created it (migration 0009): set when a write
#: creates the row or brings a deleted resource back, kept as it is (none included) by every
#: other write
_CURRENT_COLUMNS = (*_RESOURCE_COLUMNS, ("method", "text"), ("owner", "text"))
#: an update's or a deletion's row replaces the current one (the version it supersedes is in
#: the history by then, :meth:`Resources._supersede`), with the next place in the history
_REPLACE_CURRENT = (
    " ON CONFLICT (type, id) DO UPDATE SET "
    + ", ".join(f"{name} = excluded.{name}" for name, _ in _CURRENT_COLUMNS[2:-1])
    + ", seq = excluded.seq"
    + ", owner = CASE WHEN resource.deleted THEN excluded.owner ELSE resource.owner END"
)
#: a current version moved to the history, unchanged, as a write supersedes it
_SUPERSEDE = (
    f"INSERT INTO resource_version ({_VERSION_COLUMNS}) SELECT {_VERSION_COLUMNS} FROM resource "
    "WHERE type = ? AND id = ?"
)


def _versions(columns: str, where: str) -> str:
    """Every version matching ``where`` (a condition on either table's columns, its
    parameters given twice): the current ones and the superseded ones, ``columns`` of each.
    An ``ORDER BY`` after it sorts the whole (by the names of ``columns``)."""
    return (
        f"SELECT {columns} FROM resource WHERE {where} UNION ALL SELECT {columns} FROM resource_version WHERE {where}"
    )


def _history_where(kind: str | None, resource_id: str | None, since: str | None, upto: int | None) -> Sql:
    """The condition, on either table's columns, of a history's versions: of a type or an
    instance (None for every one), written since ``since`` and at or before ``upto``."""
    where: list[str] = ["1 = 1"]
    params: list[Any] = []
    for test, value in (("seq <= ?", upto), ("type = ?", kind), ("id = ?", resource_id), ("last_updated >= ?", since)):
        if value is not None and value != "":
            where.append(test)
            params.append(value)
    return " AND ".join(where), params


def _among_versions(count: int) -> str:
    """A condition on either table: the version is one of ``count`` (type, id, version)
    given as parameters.  A subquery of the listed rows, not "IN (VALUES …)", which SQLite
    tested against every row of ``resource``: 0.13 s for 150 of them on 20,000 people, 7
    statements for a home's CarePlan history with 1,000 deletions, against 0.4 ms."""
    return f"(type, id, version) IN (SELECT * FROM (VALUES {', '.join('(?, ?, ?)' for _ in range(count))}) listed)"


#: the columns of a search index row and their PostgreSQL types
INDEX_COLUMNS = (
    ("type", "text"),
    ("id", "text"),
    ("name", "text"),
    ("system", "text"),
    ("value", "text"),
    ("low", "text"),
    ("high", "text"),
    ("number", "float8"),
)


def now_instant() -> str:
    """The store's clock, in the one fixed-width text form every timestamp column uses (so
    that text order is time order on both databases) and that is a valid FHIR instant, as
    :func:`format_instant` writes it.  It runs for every write and every audit event, so the
    text up to the seconds is made once a second (:func:`_second_text`) and only the
    microseconds are formatted each time (a sixth of the cost of an aware ``datetime.now``)."""
    return instant_at(time.time_ns())


def instant_at(nanoseconds_since_epoch: int) -> str:
    """:func:`now_instant` of a moment taken earlier (``time.time_ns()``): the exchange log
    takes it when a request ends and formats it on its own thread."""
    seconds, nanoseconds = divmod(nanoseconds_since_epoch, 1_000_000_000)
    return f"{_second_text(seconds)}.{nanoseconds // 1000:06d}Z"


@lru_cache(maxsize=4)
def _second_text(seconds: int) -> str:
    """The instant text up to the seconds of a second since the epoch, made once a second:
    a clock's text is memoised by its period, as the exchange log's day (``exchanges``) and
    an HTTP date's (``api/negotiation``) are.  A few seconds are kept, as request threads
    write this second while the exchange log's thread formats moments taken a little
    earlier: one kept second was made anew at each turn of theirs.  ``lru_cache`` is safe
    across those threads (two may make one second's text at once, never a wrong one)."""
    return format_instant(datetime.fromtimestamp(seconds, UTC))[:19]


#: an instant as FHIR writes one (seconds optional, as a search's dates take them, and a time
#: zone): ``datetime.fromisoformat`` alone also reads ISO week dates (``2026-W49-1T08:00Z``),
#: the basic format (``20261207T080000Z``), a space for ``T`` and a comma before the fraction
_INSTANT = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})", re.ASCII)


def store_instant(text: str) -> str:
    """A FHIR instant (or a dateTime with a time zone) in the store's own form, for comparing
    with its timestamps (one whose UTC falls outside years 1–9999 is the nearer bound);
    ValueError when it is not one."""
    if _INSTANT.fullmatch(text.strip()) is None:
        raise ValueError(f"{text!r} is not an instant with a time zone (e.g. 2026-12-01T08:00:00+08:00)")
    return clamped_instant(datetime.fromisoformat(text.strip().replace("Z", "+00:00")))


#: (type, id, version) triples asked about in one statement: three parameters each, asked of
#: both tables, 900 in all (under the 999 a statement of an old SQLite build may bind)
_VERSIONS_PER_STATEMENT = 150


#: the records :meth:`Resources.referring_into` found read in one statement
_READ_AT_ONCE = 500


#: the columns of a page's rows before its order's values (search_sql.COLUMNS)
_PAGE_COLUMNS = search_sql.COLUMNS.split(", ")


@dataclass(frozen=True)
class Page:
    """One page of a search: the matches, how many there are in all (when counted), and each
    match's values of the order's terms (``cursor.order_columns``), the next page's
    ``_after``."""

    matches: list[Stored]
    total: int | None
    keys: list[tuple[Value, ...]]


@dataclass(frozen=True)
class Referrers:
    """The current resources, other than ``kind``/``resource_id`` itself, whose reference
    search parameters point at it — ``params`` names them per resource type (a compartment's
    definition) — changed after ``since`` when given, but for the ``hidden`` (type, id).
    Listed by type and id: an order that pages stably (``Patient/$everything``).

    ``among`` (ids per type) keeps only those ids; ``naming_others`` only those pointing at
    another resource of ``kind`` too, or of ``kind`` themselves (an Observation about the
    resident performed by a stranger, another Patient linking to the resident), or, through
    ``through``'s parameters of its type (``PersonalData.through``), at a record of a type
    other than ``kind`` (a reading derived from another's: judged by that record).

    ``compartment`` (the parameters placing a type's resources in the Patient compartment)
    keeps only those in the compartment of one of ``people`` (None: of anyone's), a Patient
    in its own alone: the records of a Patient or Group export naming an Organization.

    ``identified``: the index name of the people a resource names by number alone
    (``search.parameters.IDENTIFIED_PEOPLE``, whose rows' system is the naming parameter's
    code): a resource naming the Patient through ``params`` by a number the identity index
    says it holds (its 身份证号) points at it too, as do such compartment rows for
    ``compartment``; found from the Patient's keys (``person_key`` by holder), by key."""

    kind: str
    resource_id: str
    params: Mapping[str, Sequence[str]]
    since: str | None = None
    hidden: frozenset[tuple[str, str]] = frozenset()
    among: Mapping[str, Sequence[str]] | None = None
    naming_others: bool = False
    through: Mapping[str, Sequence[str]] = field(default_factory=dict)
    compartment: Mapping[str, Sequence[str]] | None = None
    people: Sequence[str] | None = None
    identified: str | None = None


def _referrer_keys(wanted: Referrers, targets: Sequence[str] | None = None) -> Sql | None:
    """The ``SELECT type, id`` of the resources pointing at one; None when no type could hold
    one.  Read from the index alone (a deleted resource has none; only ``since`` needs the
    resource row), asked type by type so that the (type, name, value) index serves each.
    With ``targets`` (ids of ``wanted.kind``, asked in place of ``wanted.resource_id``): the
    ``SELECT target, type, id`` of those pointing at any of them, a row per target named.
    Those naming a Patient by number (``wanted.identified``) are one more part for every type."""
    sources = {
        source: names
        for source, names in wanted.params.items()
        if names
        and (wanted.among is None or wanted.among.get(source))
        and (wanted.compartment is None or wanted.compartment.get(source))
    }
    by_number = _referrers_by_number(wanted, sources, targets) if wanted.identified and wanted.kind == "Patient" else []
    # one row of a resource however many of its parameters point at the one: UNION makes it
    # so of several parts, DISTINCT of a type asked alone (an Observation whose subject and
    # performer are one resident came twice to an export of Observations)
    alone = len(sources) + len(by_number) == 1
    selects = [_referrers_of_type(wanted, source, names, targets, alone) for source, names in sources.items()]
    selects += by_number
    if not selects:
        return None
    union = " UNION ".join(sql for sql, _ in selects)
    values = [value for _, params in selects for value in params]
    if wanted.since is None:
        return union, values
    changed = "JOIN resource r ON r.type = k.type AND r.id = k.id WHERE r.last_updated > ?"
    columns = "k.target, k.type, k.id" if targets is not None else "k.type, k.id"
    return f"SELECT {columns} FROM ({union}) k {changed}", [*values, wanted.since]


def _referrers_of_type(
    wanted: Referrers, source: str, names: Sequence[str], targets: Sequence[str] | None = None, distinct: bool = False
) -> Sql:
    """The ``SELECT type, id`` of the resources of type ``source`` whose parameters ``names``
    point at one, narrowed as ``wanted`` asks (``SELECT target, type, id`` of those pointing
    at any of ``targets``, given); ``distinct``: each once, however many of ``names`` do."""
    if targets is None:
        select, value, target = "s.type, s.id", "s.value = ?", wanted.resource_id
    else:
        select, value, target = "s.value AS target, s.type, s.id", f"s.value IN ({LISTED})", listed(targets)
    where = [f"s.type = ? AND s.name IN ({marks(names)}) AND {value} AND s.system = ?"]
    values: list[Any] = [source, *names, target, wanted.kind]
    excluded = [resource_id for kind, resource_id in wanted.hidden if kind == source]
    if source == wanted.kind:  # a Patient linking to itself is no member of its own compartment
        if targets is None:
            excluded.append(wanted.resource_id)
        else:
            where.append("s.id <> s.value")
    if excluded:  # one parameter however many (see LISTED): a record may hide thousands
        where.append(f"s.id NOT IN ({LISTED})")
        values.append(listed(excluded))
    if wanted.among is not None:
        where.append(f"s.id IN ({LISTED})")
        values.append(listed(wanted.among[source]))
    others, other_values = _naming_others(wanted, source)
    where += others
    values += other_values
    rows, held = "search_index s", []
    if wanted.compartment is not None and wanted.people is not None:
        records, held = _records_of(source, wanted.compartment[source], wanted.people, wanted.identified)
        rows = f"({records}) r CROSS JOIN search_index s {OWNER_PROBE}"
        where.append("s.type = r.type AND s.id = r.id")
    elif wanted.compartment is not None:
        within, people = _in_compartment(
            "s.type", "s.id", {source: wanted.compartment[source]}, wanted.people, wanted.identified
        )
        where.append(within)
        values += people
    return f"SELECT {'DISTINCT ' if distinct else ''}{select} FROM {rows} WHERE {' AND '.join(where)}", [*held, *values]


def _records_of(source: str, names: Sequence[str], people: Sequence[str], identified: str | None) -> Sql:
    """The ``SELECT type, id`` of the resources of type ``source`` in the Patient compartment
    of one of ``people`` through its parameters ``names`` (a Patient in its own alone;
    ``identified``, see :class:`Referrers`: a person named by a number they hold counts),
    each once: read from the people's own index rows, so that the referrers of what records
    name outside the compartment (an Organization) are looked up among these few, not the
    other way round."""
    if source == "Patient":
        return f"SELECT type, id FROM resource WHERE type = 'Patient' AND id IN ({LISTED})", [listed(people)]
    parts = [
        f"SELECT c.type, c.id FROM search_index c {VALUE_DRIVER} WHERE c.type = ? AND c.name IN ({marks(names)}) "
        f"AND c.value IN ({LISTED}) AND c.system = 'Patient'"
    ]
    values: list[Any] = [source, *names, listed(people)]
    if identified is not None:
        parts.append(
            f"SELECT c.type, c.id FROM person_key h JOIN search_index c {VALUE_DRIVER} ON c.value = h.key "
            f"WHERE h.person_id IN ({LISTED}) AND c.type = ? AND c.name = ? AND c.system IN ({marks(names)})"
        )
        values += [listed(people), source, identified, *names]
    return " UNION ".join(parts), values


def _referrers_by_number(
    wanted: Referrers, sources: Mapping[str, Sequence[str]], targets: Sequence[str] | None = None
) -> list[Sql]:
    """The ``SELECT type, id`` (``target, type, id`` given ``targets``) of the resources naming
    the Patient by a number it holds through ``sources``' parameters: the Patient's keys
    (``person_key`` by holder), then each type's rows of them, in one part for every type
    (a part per type cost a ``$everything`` about a millisecond more on SQLite).  A Patient
    linking to another by number alone is passed over (Patient.link names records by id).
    ``wanted.compartment`` is not asked here: it narrows the referrers of what a record names
    outside the compartment (an Organization), never those of a Patient."""
    pairs = [(source, name) for source, names in sources.items() if source != wanted.kind for name in names]
    if not pairs:
        return []
    kinds = list(dict.fromkeys(source for source, _ in pairs))
    if targets is None:
        select, value, target = "s.type, s.id", "pk.person_id = ?", wanted.resource_id
    else:
        select, value, target = "pk.person_id AS target, s.type, s.id", f"pk.person_id IN ({LISTED})", listed(targets)
    # the types named one by one, so that a plan made for any values (PostgreSQL's generic
    # plan) knows how many there are and probes the value index for each of the person's keys:
    # as one listed parameter (guessed at 100 types) it read every row of search_index
    # instead.  SQLite, given them so, scans the table unless told to take the value index
    # (VALUE_DRIVER).  Each type with its parameters as one list of text
    where = [f"{value} AND s.type IN ({marks(kinds)}) AND s.name = ? AND s.type || ' ' || s.system IN ({LISTED})"]
    values: list[Any] = [target, *kinds, wanted.identified, listed(f"{kind} {name}" for kind, name in pairs)]
    if wanted.hidden:
        where.append(f"s.type || '/' || s.id NOT IN ({LISTED})")
        values.append(listed(f"{kind}/{resource_id}" for kind, resource_id in wanted.hidden))
    if wanted.among is not None:
        where.append(f"s.type || '/' || s.id IN ({LISTED})")
        values.append(listed(f"{kind}/{resource_id}" for kind in kinds for resource_id in wanted.among[kind]))
    others, other_values = _naming_others(wanted, "")
    where += others
    values += other_values
    rows = f"person_key pk JOIN search_index s {VALUE_DRIVER} ON s.value = pk.key"
    return [(f"SELECT {select} FROM {rows} WHERE {' AND '.join(where)}", values)]


def _naming_others(wanted: Referrers, source: str) -> tuple[list[str], list[Any]]:
    """The condition (none, or one) that a referrer ``s`` of type ``source`` names someone
    other than ``wanted``'s own resource too (see :class:`Referrers`): another of its type by
    id, or, given ``identified``, a person by a number it does not hold (or no one does)."""
    if not wanted.naming_others or source == wanted.kind:
        return [], []
    others = (
        f"EXISTS (SELECT 1 FROM search_index o {OWNER_PROBE} WHERE o.type = s.type AND o.id = s.id "
        "AND o.system = ? AND o.value <> ?)"
    )
    values: list[Any] = [wanted.kind, wanted.resource_id]
    if wanted.identified is not None:
        others = (
            f"({others} OR EXISTS (SELECT 1 FROM search_index o {OWNER_PROBE} WHERE o.type = s.type "
            "AND o.id = s.id AND o.name = ? AND NOT EXISTS (SELECT 1 FROM person_key h "
            "WHERE h.key = o.value AND h.person_id = ?)))"
        )
        values += [wanted.identified, wanted.resource_id]
    pairs = [f"{kind} {name}" for kind, names in wanted.through.items() for name in names]
    if pairs:
        others = (
            f"({others} OR EXISTS (SELECT 1 FROM search_index o {OWNER_PROBE} WHERE o.type = s.type "
            f"AND o.id = s.id AND o.type || ' ' || o.name IN ({marks(pairs)}) AND o.system <> ?))"
        )
        values += [*pairs, wanted.kind]
    return [others], values


@dataclass(frozen=True)
class _Records:
    """The records :func:`_owners` is asked about: ``kind`` and ``record`` are the SQL of each
    one's type and id (``s.type``, ``s.id``; a reference's ``p.system``, ``p.value``) in the
    rows of ``tables`` (a ``FROM`` list) that meet ``where`` (``values`` its parameters and
    ``where``'s), listed with ``columns`` of theirs.  Without ``tables``: the one record of
    the statement around (a correlated subquery)."""

    kind: str
    record: str
    columns: str = ""
    tables: str = ""
    where: str = ""
    values: Sequence[Any] = ()


def _owners(records: _Records, compartment: Mapping[str, Sequence[str]], identified: str | None = None) -> Sql:
    """The ``SELECT`` of ``records``' columns and ``person``, a row for each person whose
    Patient compartment a record is in through the parameters ``compartment`` names for its
    type (a type it does not name is in none; a Patient is in its own alone).
    ``identified`` (see :class:`Referrers`): a person named by a number they hold counts.

    The one shape of "whose records are these", read from each record's own index rows
    (the owner index) and compared with the people asked about after: by a referrers'
    page in SQL (:func:`_in_compartment`), by those asking of many records at once in
    Python.  Asked of each record's rows in SQL (``c.value IN (…)``), PostgreSQL, which
    guesses a listed parameter at 100 rows, matched every record asked about against the
    whole list or read every record of the people first: 463 ms for 500 Provenance
    targets (:meth:`Resources.in_compartment`), 276 ms to find 200 Provenances of a Group
    of 1,000 among 500 changed (:meth:`Resources.referring_into`)."""
    pairs = [f"{target} {name}" for target, names in compartment.items() if target != "Patient" for name in names]
    columns = f"{records.columns}, " if records.columns else ""
    source, tables = (f" FROM {records.tables}", f"{records.tables}, ") if records.tables else ("", "")
    where = f"{records.where} AND " if records.where else ""
    own = f"c.type = {records.kind} AND c.id = {records.record}"
    parts: list[str] = []
    values: list[Any] = []
    if compartment.get("Patient"):
        parts.append(f"SELECT {columns}{records.record} AS person{source} WHERE {where}{records.kind} = 'Patient'")
        values += records.values
    if pairs:  # each type's parameters as "type code", the same few for every statement
        parts.append(
            f"SELECT {columns}c.value AS person FROM {tables}search_index c {OWNER_PROBE} WHERE {where}{own} "
            f"AND c.system = 'Patient' AND c.type || ' ' || c.name IN ({marks(pairs)})"
        )
        values += [*records.values, *pairs]
    if pairs and identified is not None:
        # not measure_sql's _BY_NUMBER, which reads every row of one parameter of a type: this
        # reads the record's own rows (the owner index, OWNER_PROBE) for all the pairs at once
        parts.append(
            f"SELECT {columns}h.person_id AS person FROM {tables}search_index c {OWNER_PROBE}, person_key h "
            f"WHERE {where}{own} AND c.name = ? AND c.type || ' ' || c.system IN ({marks(pairs)}) "
            "AND h.key = c.value"
        )
        values += [*records.values, identified, *pairs]
    if not parts:  # no type of the compartment asked about
        parts.append(f"SELECT {columns}NULL AS person{source} WHERE 1 = 0")
    return " UNION ALL ".join(parts), values


def _in_compartment(
    kind: str,
    record: str,
    compartment: Mapping[str, Sequence[str]],
    people: Sequence[str] | None,
    identified: str | None,
) -> Sql:
    """The condition that the record ``kind``/``record`` (SQL of the statement around) is in
    the Patient compartment (:func:`_owners`) of one of ``people`` (None: of anyone's): the
    referrers of what records name outside the compartment (an Organization), paged and
    counted in SQL."""
    owners, values = _owners(_Records(kind, record), compartment, identified)
    if people is None:
        return f"EXISTS ({owners})", values
    return f"EXISTS (SELECT 1 FROM ({owners}) o WHERE o.person IN ({LISTED}))", [*values, listed(people)]


class Resources:
    def __init__(self, sql: Executor, indexer: Indexer | None) -> None:
        self.sql = sql
        self.indexer = indexer

    def _stored(self, row: Any) -> Stored:
        return _lazily(row[0], row[1], row[2], row[3], bool(row[4]), row[5])

    # -- reading ---------------------------------------------------------------------------
    def read(self, kind: str, resource_id: str, *, for_update: bool = False, for_share: bool = False) -> Stored | None:
        """The current version, deleted or not; None when the id was never written.  On
        PostgreSQL ``for_update`` locks its row against every other lock, ``for_share`` against
        a writer of it alone (readers holding it for share do not wait for each other); on
        SQLite a write transaction is the only writer, so reads need no lock."""
        wanted = " FOR UPDATE" if for_update else " FOR SHARE" if for_share else ""
        lock = wanted if self.sql.dialect.name == "postgresql" else ""
        row = self.sql.one(f"SELECT {_COLUMNS} FROM resource WHERE type = ? AND id = ?{lock}", (kind, resource_id))
        return self._stored(row) if row else None

    def read_many(self, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], Stored]:
        """The current versions (deleted or not) of those of ``keys`` ever written: one
        statement, however many ids (a ``$everything`` page's supporting resources were read
        one statement each), and however many types: a part per type, each served by the
        key's index.  A statement per type was a round trip each on PostgreSQL, and a
        transaction Bundle naming practitioners and organisations waited for two."""
        ids: dict[str, list[str]] = {}
        for kind, resource_id in dict.fromkeys(keys):
            ids.setdefault(kind, []).append(resource_id)
        if not ids:
            return {}
        part = f"SELECT {_COLUMNS} FROM resource WHERE type = ? AND id IN ({LISTED})"
        params = [value for kind, listed_ids in ids.items() for value in (kind, listed(listed_ids))]
        found: dict[tuple[str, str], Stored] = {}
        for row in self.sql.all(" UNION ALL ".join([part] * len(ids)), params):
            stored = self._stored(row)
            found[(stored.type, stored.id)] = stored
        return found

    def vread(self, kind: str, resource_id: str, version: int) -> Stored | None:
        key = (kind, resource_id, version)
        row = self.sql.one(_versions(_COLUMNS, "type = ? AND id = ? AND version = ?"), key * 2)
        return self._stored(row) if row else None

    def deletions(self, versions: Sequence[tuple[str, str, int]]) -> set[tuple[str, str, int]]:
        """Which of these (type, id, version) are deletions, in a few statements for a page of
        history however many resources it names."""
        found: set[tuple[str, str, int]] = set()
        for start in range(0, len(versions), _VERSIONS_PER_STATEMENT):
            chunk = versions[start : start + _VERSIONS_PER_STATEMENT]
            where = f"deleted AND {_among_versions(len(chunk))}"
            rows = self.sql.all(_versions("type, id, version", where), [value for key in chunk for value in key] * 2)
            found.update((row[0], row[1], int(row[2])) for row in rows)
        return found

    def read_versions(self, versions: Sequence[tuple[str, str, int]]) -> dict[tuple[str, str, int], Stored]:
        """Those of these (type, id, version) that were written, by key, in a few statements
        however many resources they name: the versions a page of history's deletions deleted."""
        found: dict[tuple[str, str, int], Stored] = {}
        for start in range(0, len(versions), _VERSIONS_PER_STATEMENT):
            chunk = versions[start : start + _VERSIONS_PER_STATEMENT]
            where = _among_versions(len(chunk))
            for row in self.sql.all(_versions(_COLUMNS, where), [value for key in chunk for value in key] * 2):
                stored = self._stored(row)
                found[(stored.type, stored.id, stored.version)] = stored
        return found

    def as_of(self, kind: str, resource_id: str, moment: str) -> Stored | None:
        """The version that was current at ``moment`` (None when it did not exist yet)."""
        row = self.sql.one(
            _versions(_COLUMNS, "type = ? AND id = ? AND last_updated <= ?") + " ORDER BY version DESC LIMIT 1",
            (kind, resource_id, moment) * 2,
        )
        return self._stored(row) if row else None

    def versions_since(self, keys: Sequence[tuple[str, str]], moment: str) -> dict[tuple[str, str], list[Stored]]:
        """The versions of each of ``keys`` (type, id) from the one current at ``moment`` (the
        first, when it did not exist yet) on, oldest first: one statement per type, however
        many keys (an incremental export asked :meth:`as_of` and :meth:`vread` of each
        resource changed since, two statements or more for every one in the archive)."""
        ids: dict[str, list[str]] = {}
        for kind, resource_id in dict.fromkeys(keys):
            ids.setdefault(kind, []).append(resource_id)
        found: dict[tuple[str, str], list[Stored]] = {}
        for kind, listed_ids in ids.items():
            rows = self.sql.all(
                f"SELECT {_COLUMNS} FROM resource WHERE type = ? AND id IN ({LISTED}) UNION ALL "
                f"SELECT {_COLUMNS} FROM resource_version v WHERE v.type = ? AND v.id IN ({LISTED}) AND v.version >= "
                "COALESCE((SELECT MAX(o.version) FROM resource_version o WHERE o.type = v.type AND o.id = v.id "
                "AND o.last_updated <= ?), 1) AND EXISTS (SELECT 1 FROM resource r WHERE r.type = v.type "
                "AND r.id = v.id AND r.last_updated > ?) ORDER BY id, version",
                (kind, listed(listed_ids), kind, listed(listed_ids), moment, moment),
            )
            for row in rows:
                stored = self._stored(row)
                found.setdefault((stored.type, stored.id), []).append(stored)
        return found

    def exists(self, kind: str, resource_id: str) -> bool:
        return (
            self.sql.one("SELECT 1 FROM resource WHERE type = ? AND id = ? AND NOT deleted", (kind, resource_id))
            is not None
        )

    def history(
        self,
        kind: str | None = None,
        resource_id: str | None = None,
        since: str | None = None,
        limit: int = 20,
        offset: int = 0,
        upto: int | None = None,
    ) -> tuple[list[tuple[Stored, str]], int]:
        """Versions newest first, each with the interaction that wrote it, and their total.
        ``upto`` (a :meth:`newest_version`) leaves out the versions written after it: pages
        bounded so are not shifted by them."""
        condition, params = _history_where(kind, resource_id, since, upto)
        counted = f"(SELECT COUNT(*) FROM resource WHERE {condition}) + (SELECT COUNT(*) FROM resource_version WHERE {condition})"
        total = int(self.sql.one(f"SELECT {counted}", params * 2)[0])
        rows = self.sql.all(
            f"{_versions(_VERSION_COLUMNS, condition)} ORDER BY seq DESC LIMIT ? OFFSET ?", [*params * 2, limit, offset]
        )
        return [(self._stored(row), row[6]) for row in rows], total

    def versions(
        self,
        kind: str | None,
        resource_id: str | None,
        since: str | None,
        limit: int,
        restriction: Sql | None = None,
        upto: int | None = None,
    ) -> Iterator[tuple[Stored, str]]:
        """The newest ``limit`` versions of :meth:`history`, as they are read, without their
        total: a restricted client's history judges each in Python, stops when it has a page,
        and counts those it keeps.  One statement: read 1,000 at a time (OFFSET), each batch
        ran the visibility condition anew, and a COUNT(*) of them all besides, whose total
        went unused.

        ``restriction`` (a condition on ``resource r`` of ``kind``, from the access rules) keeps
        the versions of resources the client may see now, and every deletion of the type, which
        the caller judges by the version before it (:meth:`read_versions`): a deleted resource
        has no index rows for the condition to judge, and a platform synchronising from the
        history must be told its resident's record is gone."""
        condition, params = _history_where(kind, resource_id, since, upto)
        statement = f"{_versions(_VERSION_COLUMNS, condition)} ORDER BY seq DESC LIMIT ?"
        values = [*params * 2, limit]
        if restriction is not None:
            condition_sql, condition_params = restriction
            # the condition judged once (MATERIALIZED), its ids asked of both tables: inlined, each
            # ran it, 0.6 of the 0.7 s a home's CarePlans take to read on 20,000 people (SQLite).
            # Two parts, not one test of either: PostgreSQL planned "deleted OR id IN (…)"
            # without the semi-join, a home's CarePlan history of 5,000 people 1.0 -> 2.5 s
            shown = f"{condition} AND NOT deleted AND id IN (SELECT id FROM visible)"
            statement = (
                "WITH visible AS MATERIALIZED (SELECT r.id AS id FROM resource r "
                f"WHERE r.type = ? AND NOT r.deleted AND {condition_sql}) {_versions(_VERSION_COLUMNS, shown)} "
                f"UNION ALL {_versions(_VERSION_COLUMNS, f'{condition} AND deleted')} ORDER BY seq DESC LIMIT ?"
            )
            values = [kind, *condition_params, *params * 4, limit]
        with contextlib.closing(self.sql.stream(statement, values)) as rows:
            for row in rows:  # closed with this one: on PostgreSQL a cursor of the transaction
                yield self._stored(row), row[6]

    def version_place(self, kind: str, resource_id: str, version: int) -> int | None:
        """The sequence number of one version (None when there is no such version): where a
        history page that starts past it begins."""
        row = self.sql.one(_versions("seq", "type = ? AND id = ? AND version = ?"), (kind, resource_id, version) * 2)
        return int(row[0]) if row else None

    def newest_version(self) -> int:
        """The sequence number of the newest version in the archive (0 when it is empty): the
        bound of a history's pages, which later writes pass.  Read from the current versions
        alone: each superseded one was written before its resource's current one."""
        row = self.sql.one("SELECT MAX(seq) FROM resource")
        return int(row[0]) if row and row[0] is not None else 0

    def current(self, kinds: list[str] | None = None, since: str | None = None) -> Iterator[Stored]:
        """Current, undeleted resources (for export): grouped by type, as an export writes a
        file per type, and the oldest change first within each."""
        where, params = ["NOT deleted"], []
        if kinds:
            where.append(f"type IN ({marks(kinds)})")
            params.extend(kinds)
        if since:
            where.append("last_updated > ?")
            params.append(since)
        statement = f"SELECT {_COLUMNS} FROM resource WHERE {' AND '.join(where)} ORDER BY type, last_updated, id"
        for row in self.sql.stream(statement, params):
            yield self._stored(row)

    def keys_after(self, after: tuple[str, str] | None, kinds: list[str] | None, limit: int) -> list[tuple[str, str]]:
        """The next ``limit`` current resources' (type, id) after ``after``, in type and id
        order: a walk over the archive in short reads, each of which lets writers go on."""
        where, params = ["NOT deleted"], []
        if after is not None:
            where.append("(type > ? OR (type = ? AND id > ?))")
            params.extend((after[0], after[0], after[1]))
        if kinds:
            where.append(f"type IN ({marks(kinds)})")
            params.extend(kinds)
        statement = f"SELECT type, id FROM resource WHERE {' AND '.join(where)} ORDER BY type, id LIMIT ?"
        return [(row[0], row[1]) for row in self.sql.all(statement, [*params, limit])]

    def deleted_since(self, kinds: list[str] | None, since: str) -> Iterator[Stored]:
        """The resources deleted after ``since`` (their tombstones: version and time, no
        content), for an incremental export's deletions."""
        where, params = ["deleted", "last_updated > ?"], [since]
        if kinds:
            where.append(f"type IN ({marks(kinds)})")
            params.extend(kinds)
        statement = f"SELECT {_COLUMNS} FROM resource WHERE {' AND '.join(where)} ORDER BY type, id"
        for row in self.sql.stream(statement, params):
            yield self._stored(row)

    # -- search (the SQL comes from search_sql.py) -----------------------------------------
    def search(
        self, query: SearchQuery, with_total: bool = True, restriction: Sql | None = None
    ) -> tuple[list[Stored], int | None]:
        """One page of matches and, when asked, how many there are in all; ``restriction`` is
        a condition on ``resource r`` (what the client may see, see access_sql.py)."""
        page = self.page(query, with_total, restriction)
        return page.matches, page.total

    def page(self, query: SearchQuery, with_total: bool = True, restriction: Sql | None = None) -> Page:
        """:meth:`search`'s page, with each match's values of the order (a next link's
        ``_after``)."""
        query = self._planned(query)
        rows = self.sql.all(*search_sql.page_sql(query, restriction=restriction))
        matches = [self._found(row) for row in rows]
        keys = [tuple(row[len(_PAGE_COLUMNS) :]) for row in rows]
        if not with_total:
            return Page(matches, None, keys)
        if query.after is None and len(matches) < query.count and (matches or query.offset == 0):
            # the page holds the last matches, so it tells the total: no second query (most
            # searches by identifier find one resource, and the count was half their SQL)
            return Page(matches, query.offset + len(matches), keys)
        return Page(matches, self._count(query, restriction), keys)

    def count(self, query: SearchQuery, restriction: Sql | None = None) -> int:
        return self._count(self._planned(query), restriction)

    def _count(self, planned: SearchQuery, restriction: Sql | None) -> int:
        return int(self.sql.one(*search_sql.count_sql(planned, restriction=restriction))[0])

    def matching_among(self, query: SearchQuery, ids: Sequence[str]) -> frozenset[str]:
        """Which of ``ids`` (of the query's type) match the query."""
        if not ids:
            return frozenset()
        return frozenset(row[0] for row in self.sql.all(*search_sql.matching_among_sql(query, ids)))

    def few_candidates(self, query: SearchQuery) -> bool:
        """Whether the query's criteria leave fewer than ``COMMON_VALUE_ROWS`` candidates to
        check one by one (see ``search_sql.few_candidates_sql``)."""
        if search_sql.names_ids(query):
            return True
        statement = search_sql.few_candidates_sql(self._planned(query))
        return statement is not None and int(self.sql.one(*statement)[0]) < search_sql.COMMON_VALUE_ROWS

    def few_targets(self, chain: Criterion) -> bool:
        """Whether a chain's inner criterion leaves fewer than ``COMMON_VALUE_ROWS`` targets of
        each type it reaches (``patient.identifier=…``: one Patient), to check one by one.
        Each type is counted by the rows the chain's query reads of it (``Criterion.rows_for``:
        ``performer.phonetic`` reads a Patient's ``name`` rows), not by the first type's name."""
        return chain.chain is not None and all(self.few_candidates(_targets_of(chain, kind)) for kind in chain.targets)

    def chain_targets(self, chain: Criterion, restrictions: Mapping[str, Sql | None]) -> list[tuple[str, str]]:
        """The (type, id) of the current records of each type a chain reaches that its inner
        criterion matches, within that type's restriction (what the client may see, a
        condition on ``resource r``; None: all): for a chain whose targets are few
        (:meth:`few_targets`), each type asked as a search of it with few candidates is."""
        found: list[tuple[str, str]] = []
        for kind in chain.targets:
            query = self._planned(_targets_of(chain, kind))
            found += [(kind, row[0]) for row in self.sql.all(*search_sql.ids_sql(query, restrictions.get(kind)))]
        return found

    def _planned(self, query: SearchQuery) -> SearchQuery:
        """The query, its driving value marked when the archive finds it common."""
        statement = search_sql.common_value_sql(query)
        if statement is None or int(self.sql.one(*statement)[0]) < search_sql.COMMON_VALUE_ROWS:
            return query
        return search_sql.with_common_value(query)

    def tally(self, statement: Sql) -> list[tuple[Any, ...]]:
        """The (county, sex, age band, count) rows of a measure population (measure_sql.py)."""
        return [tuple(row) for row in self.sql.all(*statement)]

    def named(self, statement: Sql) -> list[tuple[str, str]]:
        """(record id, Patient id) of the records naming their person by number alone that a
        measure criterion may match (measure_sql.named_sql)."""
        return [(row[0], row[1]) for row in self.sql.all(*statement)]

    def matched(self, statement: Sql) -> set[str]:
        """The ids a measure criterion matches among those listed (measure_sql.named_matches_sql)."""
        return {row[0] for row in self.sql.all(*statement)}

    def members(self, statement: Sql) -> list[tuple[str, Any]]:
        """(id, content) of a measure population's subjects (measure_sql.members_sql)."""
        return [(row[0], self.sql.dialect.json_out(row[1])) for row in self.sql.all(*statement)]

    def meets(self, kind: str, resource_id: str, condition: Sql) -> bool:
        """Whether the current resource kind/id meets a condition on ``resource r``."""
        sql, params = condition
        found = self.sql.one(
            f"SELECT 1 FROM resource r WHERE r.type = ? AND r.id = ? AND ({sql})", [kind, resource_id, *params]
        )
        return found is not None

    def included(self, query: SearchQuery, page: list[Stored]) -> list[Stored]:
        """What ``_include`` and ``_revinclude`` add to a page (each resource once, none of the
        page's own)."""
        keys = [(stored.type, stored.id) for stored in page]
        found: dict[tuple[str, str], Stored] = {}
        for statement in (
            search_sql.include_sql(query.include, keys),
            search_sql.revinclude_sql(query.revinclude, keys),
        ):
            if statement is not None:
                for row in self.sql.all(*statement):
                    stored = self._found(row)
                    found.setdefault((stored.type, stored.id), stored)
        for key in keys:
            found.pop(key, None)
        return list(found.values())

    def referring_to(
        self, kind: str, names: Sequence[str], targets: Sequence[tuple[str, str]]
    ) -> list[tuple[str, str]]:
        """The (type, id) of the resources of ``kind`` whose reference parameters ``names``
        point at one of ``targets`` (type, id), from the index alone: a part per target type,
        each an index probe, for the records a person's records place among hers
        (``Patient/$everything``).  :meth:`included`'s statement, selecting the resources
        whose keys a union of such parts lists, cost 17 ms a page of a person's records on
        SQLite with 20,000 people, where its probes cost well under one."""
        ids: dict[str, list[str]] = {}
        for target, resource_id in dict.fromkeys(targets):
            ids.setdefault(target, []).append(resource_id)
        parts = [
            f"SELECT s.type, s.id FROM search_index s WHERE s.type = ? AND s.name IN ({marks(names)}) "
            f"AND s.system = ? AND s.value IN ({marks(listed_ids)})"
            for listed_ids in ids.values()
        ]
        values = [value for target, listed_ids in ids.items() for value in (kind, *names, target, *listed_ids)]
        return [(row[0], row[1]) for row in self.sql.all(" UNION ".join(parts), values)] if parts else []

    def referencing(
        self, kind: str, resource_id: str, params: Mapping[str, Sequence[str]], since: str | None = None
    ) -> list[Stored]:
        """Every resource pointing at kind/id (see :class:`Referrers`), with its content."""
        return self.referrers(Referrers(kind, resource_id, params, since))

    def referrers(
        self, wanted: Referrers, limit: int | None = None, offset: int = 0, after: tuple[str, str] | None = None
    ) -> list[Stored]:
        """``limit`` of the resources pointing at one from ``offset`` (all, without a limit),
        by type and id, with their content.  Those before ``offset`` are passed over by key:
        a page of a record of thousands reads one page of documents.  ``after`` (a type and
        id) starts past that key instead, whether or not it still points at one: a page that
        follows another by its last member neither skips nor repeats one when a member
        before it is deleted or written between the two."""
        keys = _referrer_keys(wanted)
        if keys is None:
            return []
        sql, params = keys
        window, bounds = (" ORDER BY k.type, k.id LIMIT ? OFFSET ?", [limit, offset]) if limit is not None else ("", [])
        start, past = (" WHERE k.type > ? OR (k.type = ? AND k.id > ?)", [after[0], *after]) if after else ("", [])
        rows = self.sql.all(
            f"SELECT {search_sql.COLUMNS} FROM (SELECT k.type, k.id FROM ({sql}) k{start}{window}) p "
            "JOIN resource r ON r.type = p.type AND r.id = p.id ORDER BY r.type, r.id",
            [*params, *past, *bounds],
        )
        return [self._found(row) for row in rows]

    def referrers_of_each(self, wanted: Referrers, targets: Sequence[str], per_target: int) -> dict[str, list[Stored]]:
        """:meth:`referrers` of each of ``targets`` (ids of ``wanted.kind``, each asked in place
        of ``wanted.resource_id``), the first ``per_target`` of each by type and id: one
        statement for them all, where a statement each cost an incremental export ~3 ms per
        changed Practitioner.  A target nothing points at is absent."""
        keys = _referrer_keys(wanted, targets)
        if keys is None:
            return {}
        sql, params = keys
        rows = self.sql.all(
            f"SELECT p.target, {search_sql.COLUMNS} FROM (SELECT k.target, k.type, k.id, "
            f"ROW_NUMBER() OVER (PARTITION BY k.target ORDER BY k.type, k.id) AS n FROM ({sql}) k) p "
            "JOIN resource r ON r.type = p.type AND r.id = p.id WHERE p.n <= ? ORDER BY p.target, r.type, r.id",
            [*params, per_target],
        )
        found: dict[str, list[Stored]] = {}
        for row in rows:
            found.setdefault(row[0], []).append(self._found(row[1:]))
        return found

    def count_referrers(self, wanted: Referrers) -> int:
        """How many resources point at one, counted by key (no document is read)."""
        keys = _referrer_keys(wanted)
        return int(self.sql.one(f"SELECT COUNT(*) FROM ({keys[0]}) k", keys[1])[0]) if keys else 0

    def referrers_among(self, wanted: Referrers, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Which of these (type, id) point at one: looked up by id, whatever else points at it."""
        ids: dict[str, list[str]] = {}
        for kind, resource_id in keys:
            ids.setdefault(kind, []).append(resource_id)
        found = _referrer_keys(replace(wanted, among=ids))
        return {(row[0], row[1]) for row in self.sql.all(*found)} if found else set()

    def in_compartment(
        self,
        keys: Sequence[tuple[str, str]],
        compartment: Mapping[str, Sequence[str]],
        people: Sequence[str] | None,
        identified: str | None = None,
    ) -> set[tuple[str, str]]:
        """Which of ``keys`` (type, id) are current resources in the Patient compartment of one
        of ``people`` (None: of anyone's) through the parameters ``compartment`` names for their
        type (a type it does not name is in none; ``identified``, see :class:`Referrers`: or
        names one by a number they hold): the records a bulk export's Provenances
        target, judged from the index alone, a part per type in one statement.  The statement
        lists whose compartment each is in (:func:`_owners`) and ``people`` are looked up
        here: asked in SQL, PostgreSQL's plan for any values (which guesses a listed parameter
        at 100 rows) matched every record of the type held by one of the people against each
        key in turn: 463 ms for 500 keys and 500 people among 1,000 (2.9 s on a store not yet
        analysed), 80 ms so, and about 12 s a batch of a Group export of 1,000 residents."""
        ids: dict[str, list[str]] = {}
        for kind, resource_id in dict.fromkeys(keys):
            if compartment.get(kind):
                ids.setdefault(kind, []).append(resource_id)
        parts, values = [], []
        for kind, listed_ids in ids.items():
            current = _Records(
                "s.type",
                "s.id",
                "s.type, s.id",
                "resource s",
                f"s.type = ? AND s.id IN ({LISTED}) AND NOT s.deleted",
                [kind, listed(listed_ids)],
            )
            owners, owner_values = _owners(current, {kind: compartment[kind]}, identified)
            parts.append(owners)
            values += owner_values
        rows = self.sql.all(" UNION ALL ".join(parts), values) if parts else []
        wanted = None if people is None else set(people)
        return {(row[0], row[1]) for row in rows if wanted is None or row[2] in wanted}

    def referring_into(
        self,
        kind: str,
        names: Sequence[str],
        compartment: Mapping[str, Sequence[str]],
        people: Sequence[str],
        since: str,
        identified: str | None = None,
    ) -> Iterator[Stored]:
        """The current resources of ``kind`` changed after ``since`` whose reference parameters
        ``names`` point at a current record in the Patient compartment of one of ``people``
        through the parameters ``compartment`` names for its type (as :meth:`in_compartment`
        judges one; a Patient is in its own), oldest change first: the Provenances of a
        Group's records.  Judged on the index alone: reading every one changed since in the
        archive (and asking :meth:`in_compartment` of each batch) read a province's documents
        to export a home's.  Driven by what changed since, not by the people's records, whose
        walk cost a Group of 1,000 residents more than the few Provenances changed in a day.
        One statement lists whose records those changed since point at (:func:`_owners`),
        ``people`` are looked up here, and those held are read :data:`_READ_AT_ONCE` at a
        time: asked in SQL, each target's owner was matched against the whole list of people
        (276 ms to find 200 among 500 changed since, for a Group of 1,000 of 5,000; 35 ms so)."""
        changed = _Records(
            "p.system",
            "p.value",
            "r.last_updated, r.id",
            f"resource r, search_index p {OWNER_PROBE}",
            "r.type = ? AND r.last_updated > ? AND NOT r.deleted "
            f"AND p.type = r.type AND p.id = r.id AND p.name IN ({marks(names)})",
            [kind, since, *names],
        )
        owners, values = _owners(changed, compartment, identified)
        wanted = set(people)
        rows = self.sql.stream(f"{owners} ORDER BY 1, 2", values)
        held = (
            resource_id
            for (_, resource_id), found in itertools.groupby(rows, key=lambda row: (row[0], row[1]))
            if any(row[2] in wanted for row in found)
        )
        while chunk := list(itertools.islice(held, _READ_AT_ONCE)):
            read = self.read_many([(kind, resource_id) for resource_id in chunk])
            yield from (read[(kind, resource_id)] for resource_id in chunk)

    def _found(self, row: Any) -> Stored:
        """A row of search_sql.COLUMNS (current, undeleted versions)."""
        return _lazily(row[0], row[1], row[2], row[3], False, row[4])

    def referrer(self, kind: str, resource_id: str, params: Sequence[tuple[str, str]]) -> str | None:
        """A current resource whose index says it points at kind/id through one of ``params``
        ((type, code) pairs), or None.  A Provenance does not count: it records what happened
        to a version, and stays true of it after a deletion.  One probe of the value index per
        type, for its parameters' names together (a statement of one per parameter took twice
        as long, most of it planned), the first match ends the search."""
        names: dict[str, list[str]] = {}
        for source, code in params:
            if source != "Provenance":
                names.setdefault(source, []).append(code)
        if not names:
            return None
        probes, values = [], []
        for source, codes in names.items():
            probes.append(
                f"SELECT s.type, s.id FROM search_index s WHERE s.type = ? AND s.name IN ({marks(codes)}) "
                "AND s.value = ? AND s.system = ?"
            )
            values += [source, *codes, resource_id, kind]
        row = self.sql.one(f"SELECT type, id FROM ({' UNION ALL '.join(probes)}) found LIMIT 1", values)
        return f"{row[0]}/{row[1]}" if row else None

    def counts(self) -> dict[str, int]:
        rows = self.sql.all("SELECT type, COUNT(*) FROM resource WHERE NOT deleted GROUP BY type ORDER BY type")
        return {kind: int(count) for kind, count in rows}

    # -- writing ---------------------------------------------------------------------------
    def write(
        self,
        resource: dict[str, Any],
        *,
        method: str = "PUT",
        if_match: Expected | None = None,
        current: Stored | None | Unread = UNREAD,
        rows: list[IndexRow] | None = None,
        owner: str | None = None,
    ) -> tuple[Stored, bool]:
        """Store a new version of ``resource`` (its type and id say which); returns the stored
        version and whether anything changed.  ``current``: the current version, as the caller
        knows it: None when there is none (the id was just made up by the server, or the caller
        holds the lock of an id no row has), the version it read holding its row
        (``for_update``) in this transaction, which is then not read again (a statement of
        every update, on PostgreSQL about 100 µs of client CPU and a round trip), or
        :data:`UNREAD`, read here.
        ``rows``: its search index rows, if the caller made them before the transaction (they
        depend on the content alone: ``_id`` and ``_lastUpdated`` are answered from the
        resource table).  ``owner``: the organisation writing it, recorded if this write
        creates it."""
        kind, resource_id = resource["resourceType"], resource["id"]
        if current is None:
            self.sql.start()  # the stamp comes after the BEGIN and its locks (Store.settled_instant)
        elif current is UNREAD:
            current = self.read(kind, resource_id, for_update=True)
        if if_match is not None and (
            current is None
            or not admits(if_match, current.version)
            or (current.deleted and if_match == ANY_VERSION)  # "*": only while it exists
        ):
            raise VersionConflict(f"{kind}/{resource_id}", if_match, current.version if current else None)
        if current is not None and not current.deleted and _same(current.resource, resource):
            return current, False
        version = current.version + 1 if current else 1
        instant = now_instant()
        meta = {**resource.get("meta", {}), "versionId": str(version), "lastUpdated": instant}
        stored_resource = {"resourceType": kind, "id": resource_id, "meta": meta}
        stored_resource.update((k, v) for k, v in resource.items() if k not in stored_resource)
        stored = Stored(kind, resource_id, version, instant, False, stored_resource)
        if rows is None:
            rows = self.indexer(stored_resource) if self.indexer else []
        self._put(stored, method, owner, superseding=current is not None)
        self._index_anew(
            kind, [resource_id] if current is not None else [], [(kind, resource_id, *row) for row in rows]
        )
        return stored, True

    def delete(self, kind: str, resource_id: str, *, if_match: Expected | None = None) -> Stored | None:
        """Mark the resource deleted (its history stays); None when there was nothing to delete."""
        current = self.read(kind, resource_id, for_update=True)
        if if_match is not None and (
            current is None or not admits(if_match, current.version) or (if_match == ANY_VERSION and current.deleted)
        ):
            raise VersionConflict(f"{kind}/{resource_id}", if_match, current.version if current else None)
        if current is None or current.deleted:
            return None
        deleted = Stored(kind, resource_id, current.version + 1, now_instant(), True, None)
        self._put(deleted, "DELETE", superseding=True)
        self.sql.execute("DELETE FROM search_index WHERE type = ? AND id = ?", (kind, resource_id))
        return deleted

    def reindex(self, keys: Sequence[tuple[str, str]]) -> int:
        """Make the search index rows of these resources anew from their current versions, as
        a write would: a newer gateway may index values an older one did not (a Timing's
        ``repeat.boundsPeriod``), and the rows of what the older one stored would otherwise
        stay as it wrote them until each resource's next write.  Returns how many were current
        (one deleted meanwhile has no rows to make)."""
        if self.indexer is None:
            return 0
        lock = " FOR UPDATE" if self.sql.dialect.name == "postgresql" else ""
        made = 0
        for kind in dict.fromkeys(kind for kind, _ in keys):
            ids = [resource_id for of, resource_id in keys if of == kind]
            found = self.sql.all(
                f"SELECT {_COLUMNS} FROM resource WHERE type = ? AND id IN ({marks(ids)}) AND NOT deleted{lock}",
                [kind, *ids],
            )
            current = [self._stored(row) for row in found]
            rows = [(kind, stored.id, *row) for stored in current for row in self.indexer(stored.resource or {})]
            self._index_anew(kind, ids, rows)
            made += len(current)
        return made

    def _index_anew(self, kind: str, indexed: Sequence[str], rows: list[Sequence[Any]]) -> None:
        """The search index rows of resources of ``kind`` replaced: those of ``indexed`` (ids
        that may have rows) dropped, ``rows`` (type, id, cells…) queued with the write.  The
        DELETE goes with the next round trip (an update's with its COMMIT, on PostgreSQL: it
        was a round trip of its own), unless rows of these resources are queued already (a
        transaction writing one twice), which it must come after."""
        if indexed:
            delete = f"DELETE FROM search_index WHERE type = ? AND id IN ({marks(indexed)})"
            ids = set(indexed)
            if self.sql.queues("search_index", lambda row: row[0] == kind and row[1] in ids):
                self.sql.execute(delete, [kind, *indexed])
            else:
                self.sql.send_later(delete, [kind, *indexed])
        self.sql.defer("search_index", INDEX_COLUMNS, rows)

    def holding_identifier(self, kind: str, system: str | None, value: str) -> list[str]:
        """The ids of the current resources of ``kind`` with this identifier (of any system
        when ``system`` is None), read from their search index rows."""
        where, params = "type = ? AND name = 'identifier' AND value = ?", [kind, value]
        if system is not None:
            where, params = f"{where} AND system = ?", [*params, system]
        return sorted({row[0] for row in self.sql.all(f"SELECT id FROM search_index WHERE {where}", params)})

    def owner(self, kind: str, resource_id: str) -> str | None:
        """The organisation that created the resource, when a client acting for one did."""
        row = self.sql.one("SELECT owner FROM resource WHERE type = ? AND id = ?", (kind, resource_id))
        return row[0] if row else None

    def _put(self, stored: Stored, method: str, owner: str | None = None, *, superseding: bool) -> None:
        """Queued (``Executor.defer``): a transaction Bundle's new resources go in as one
        statement, its updates as another.  Two writes of one resource never share a statement
        (an upsert may not touch a row twice): the second reads the first before it writes.
        ``superseding``: the resource has a current version, which goes to the history first.
        A new resource's row is a plain INSERT: on PostgreSQL, where writers run side by side,
        a second writer creating the same id meanwhile is refused by the key (``RACED_KEYS``)
        and writes again over the first, rather than overwrite its version 1 unseen."""
        content = self.sql.dialect.json_in(stored.resource) if stored.resource is not None else None
        row = (stored.type, stored.id, stored.version, stored.last_updated, stored.deleted, content, method, owner)
        if superseding:
            self._supersede(stored.type, stored.id)
        self.sql.defer("resource", _CURRENT_COLUMNS, [row], _REPLACE_CURRENT if superseding else "")

    def _supersede(self, kind: str, resource_id: str) -> None:
        """The current version of kind/id copied to the history, before the write that replaces
        it: with the next round trip, or at once when the row it copies is queued still (a
        transaction writing one resource twice), which must go in first."""
        if self.sql.queues("resource", lambda row: row[0] == kind and row[1] == resource_id):
            self.sql.execute(_SUPERSEDE, (kind, resource_id))
        else:
            self.sql.send_later(_SUPERSEDE, (kind, resource_id))


def _same(stored: dict[str, Any] | None, incoming: dict[str, Any]) -> bool:
    """Equal content, ignoring the version bookkeeping in meta."""
    return stored is not None and without_version(stored) == without_version(incoming)


def _lazily(kind: str, resource_id: str, version: Any, last_updated: str, deleted: bool, content: Any) -> Stored:
    """A row's version, its document kept as the text the database gave (parsed when first
    used) or as the document a driver parsed already (a JSONB column before migration 11)."""
    if isinstance(content, str):
        return Stored(kind, resource_id, int(version), last_updated, deleted, text=content)
    return Stored(kind, resource_id, int(version), last_updated, deleted, content)


def _targets_of(chain: Criterion, kind: str) -> SearchQuery:
    """A chain's inner criterion as a search of one type it reaches, reading the rows that
    type keeps for it (``Criterion.rows_for``)."""
    assert chain.chain is not None
    inner = chain.chain
    return SearchQuery(kind, [replace(inner, param=inner.rows_for(kind), rows_of=())])
