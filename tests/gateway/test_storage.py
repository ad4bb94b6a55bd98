"""The storage interface, one suite for both databases (each test runs on SQLite and on
PostgreSQL): versions, history, deletes, transactions, savepoints, search index rows written
with their resource, the ingest tables, and migrations that upgrade an old store in place."""

from __future__ import annotations

import os
import threading
import uuid
import zlib
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import psycopg
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gateway.storage.ingest_tables as ingest_tables
import gateway.storage.resources as resources
import gateway.storage.search_sql as search_sql
from conformance.validator import Validator
from gateway.config import Config
from gateway.search.indexer import SearchIndexer
from gateway.search.values import format_instant
from gateway.services import Services
from gateway.storage import open_store, sqlite_path, sqlite_url
from gateway.storage.dialect import PLANNED_PER_CALL
from gateway.storage.postgres import WRITE_BARRIER, advisory_key
from gateway.storage.store import Store, StoreError, VersionConflict
from tests.conftest import advisory_lock_held, fresh_database_url, second_behind_first

ID_CARD = "urn:oid:2.16.156.10011.1.3"


def patient(resource_id: str = "p1", **elements: Any) -> dict[str, Any]:
    return {"resourceType": "Patient", "id": resource_id, **elements}


def write(store: Store, resource: dict[str, Any], **options: Any) -> Any:
    with store.transaction() as tx:
        return tx.resources.write(resource, **options)


def read(store: Store, kind: str, resource_id: str) -> Any:
    with store.reading() as tx:
        return tx.resources.read(kind, resource_id)


def test_a_first_write_is_version_one_with_its_meta(store: Store) -> None:
    stored, _ = write(store, patient(gender="female"))
    assert (stored.version, stored.resource["meta"]["versionId"]) == (1, "1")


def test_a_resource_is_read_back_with_its_elements_in_the_order_written(store: Store) -> None:
    """PostgreSQL's JSONB put the shortest keys first and resourceType last."""
    write(store, patient(name=[{"text": "张秀英", "family": "张"}], gender="female", birthDate="1949-12-31"))
    found = read(store, "Patient", "p1").resource
    assert (list(found), list(found["name"][0])) == (
        ["resourceType", "id", "meta", "name", "gender", "birthDate"],
        ["text", "family"],
    )


def test_a_resource_read_back_answers_as_its_stored_json(store: Store) -> None:
    """A read is answered with the document's stored text, parsed only if something looks inside."""
    written, _ = write(store, patient(gender="female"))
    assert orjson.loads(read(store, "Patient", "p1").json()) == written.resource


def test_many_resources_of_several_types_are_read_at_once_the_absent_left_out(store: Store) -> None:
    write(store, patient(gender="female"))
    write(store, {"resourceType": "Organization", "id": "o1", "name": "金水区医养服务中心"})
    with store.reading() as tx:
        found = tx.resources.read_many([("Patient", "p1"), ("Organization", "o1"), ("Patient", "absent")])
    assert {key: stored.version for key, stored in found.items()} == {("Patient", "p1"): 1, ("Organization", "o1"): 1}


def test_resources_of_several_types_are_read_in_one_statement(store: Store) -> None:
    """A statement per type was a round trip each on PostgreSQL: a transaction Bundle naming
    practitioners and organisations waited for two before its write began."""
    write(store, patient(gender="female"))
    write(store, {"resourceType": "Organization", "id": "o1", "name": "金水区医养服务中心"})
    with store.reading() as tx:
        asked: list[str] = []
        run_all = tx.sql.all
        tx.sql.all = lambda sql, params=(): asked.append(sql) or run_all(sql, params)  # type: ignore[method-assign]
        found = tx.resources.read_many([("Patient", "p1"), ("Organization", "o1"), ("Practitioner", "absent")])
    assert (len(asked), sorted(found)) == (1, [("Organization", "o1"), ("Patient", "p1")])


#: index rows of every kind of cell, more than go as VALUES (store.FEW_ROWS); infinite
#: numbers included (a decimal such as 1e400 read as a float), which JSON has no number for
CELLS = [
    ("Observation", "o1", "value-quantity", "http://unitsofmeasure.org", "mg", None, None, 1.1),
    ("Observation", "o1", "code", "http://loinc.org", '引号"和\\反斜杠', None, None, None),
    ("Observation", "o1", "date", None, None, "2024-01-01T00:00:00.000000Z", "2024-01-01T23:59:59.999999Z", None),
    ("Observation", "o1", "value-quantity", None, "huge", None, None, float("inf")),
    ("Observation", "o1", "value-quantity", None, "tiny", None, None, float("-inf")),
]


def test_queued_rows_of_every_kind_of_cell_are_stored_as_given(store: Store) -> None:
    with store.transaction() as tx:
        tx.sql.defer("search_index", resources.INDEX_COLUMNS, CELLS)
    with store.reading() as tx:
        found = tx.sql.all("SELECT type, id, name, system, value, low, high, number FROM search_index")
    assert sorted(map(tuple, found), key=str) == sorted(CELLS, key=str)


def test_on_postgresql_many_queued_rows_go_as_one_json_parameter(tmp_path: Path, indexer: SearchIndexer) -> None:
    """One array per column, psycopg dumped each element in Python: a transaction Bundle's 102
    search index rows cost 317 µs of client CPU, as one JSON text (orjson's) 133 µs."""
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        sent: list[int] = []
        with store.transaction() as tx:
            run = tx.sql._run
            tx.sql._run = lambda sql, params=(): sent.append(len(params)) if "search_index" in sql else run(sql, params)  # type: ignore[method-assign]
            tx.sql.defer("search_index", resources.INDEX_COLUMNS, CELLS)
            tx.sql.flush()
        store.close()
    assert sent == [1]


def test_writing_the_same_content_again_makes_no_new_version(store: Store) -> None:
    write(store, patient(gender="female"))
    stored, changed = write(store, patient(gender="female"))
    assert (stored.version, changed) == (1, False)


def test_an_update_keeps_the_earlier_version_readable(store: Store) -> None:
    write(store, patient(gender="female"))
    write(store, patient(gender="male"))
    with store.reading() as tx:
        assert tx.resources.vread("Patient", "p1", 1).resource["gender"] == "female"


def test_a_write_naming_a_stale_version_is_refused(store: Store) -> None:
    write(store, patient(gender="female"))
    write(store, patient(gender="male"))
    with pytest.raises(VersionConflict):
        write(store, patient(gender="other"), if_match=1)


def test_a_delete_keeps_the_history_and_marks_the_resource_deleted(store: Store) -> None:
    write(store, patient(gender="female"))
    with store.transaction() as tx:
        tx.resources.delete("Patient", "p1")
    with store.reading() as tx:
        versions, total = tx.resources.history("Patient", "p1")
    assert (read(store, "Patient", "p1").deleted, total, versions[0][1]) == (True, 2, "DELETE")


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's plans
def test_versions_asked_by_key_are_looked_up_by_key(store: Store) -> None:
    """A history page's deletions and the versions they deleted are read by (type, id,
    version): SQLite scanned both tables for them, 0.13 s per 150 on 20,000 people."""
    keys = [("Patient", f"p{number}", 1) for number in range(3)]
    for _, resource_id, _ in keys:
        write(store, patient(resource_id))
    statements: list[str] = []
    with store.reading() as tx:
        tx.sql.connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        tx.resources.read_versions(keys)
        tx.resources.deletions(keys)
        tx.sql.connection.set_trace_callback(None)  # type: ignore[attr-defined]
        plans = [row[3] for sql in statements for row in tx.sql.all(f"EXPLAIN QUERY PLAN {sql}")]
    assert [step for step in plans if step.startswith("SCAN resource")] == []


def test_an_exception_rolls_the_whole_transaction_back(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction() as tx:
        tx.resources.write(patient())
        raise RuntimeError("the client went away")
    assert read(store, "Patient", "p1") is None


def test_a_failed_savepoint_undoes_only_its_own_writes(store: Store) -> None:
    with store.transaction() as tx:
        tx.resources.write(patient("kept"))
        with pytest.raises(ValueError), tx.savepoint():
            tx.resources.write(patient("undone"))
            raise ValueError("one bad record")
    assert (read(store, "Patient", "kept") is not None, read(store, "Patient", "undone")) == (True, None)


def test_a_named_lock_held_already_is_not_asked_for_again(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ingest batch asked the database for the identity lock once per record."""
    asked: list[str] = []
    take = type(store)._lock
    monkeypatch.setattr(
        type(store), "_lock", lambda self, executor, name, wait: asked.append(name) or take(self, executor, name, wait)
    )
    with store.transaction() as tx:
        tx.lock("identity")
        with tx.savepoint():
            tx.lock("identity")
        tx.lock("identity")
    assert asked == ["identity"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lock_whose_savepoint_rolled_back_is_taken_again(store: Store, database_url: str) -> None:
    """PostgreSQL releases the locks a savepoint took when it rolls back: remembered as held,
    the lock asked for again after it was not taken, and another writer could take it."""
    with store.transaction() as tx:
        with pytest.raises(ValueError), tx.savepoint():
            tx.lock("person|idcard|X")
            raise ValueError("one bad record")
        tx.lock("person|idcard|X")
        tx.resources.read("Patient", "anyone")  # the lock goes with the next statement
        with psycopg.connect(database_url, autocommit=True) as elsewhere:
            free = elsewhere.execute("SELECT pg_try_advisory_lock(%s)", (advisory_key("person|idcard|X"),)).fetchone()[
                0
            ]
    assert free is False


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_lock_another_holds_is_not_waited_for_when_asked_not_to(store: Store, database_url: str) -> None:
    """An ingest must not wait for another run's record while holding its batch's."""
    with psycopg.connect(database_url, autocommit=True) as elsewhere:
        elsewhere.execute("SELECT pg_advisory_lock(%s)", (advisory_key("ledger|X"),))
        with store.transaction() as tx:
            taken = tx.lock("ledger|X", wait=False)
    assert taken is False


#: two lock names of one CRC-32 (85238017), the key PostgreSQL's advisory locks had before
CRC_TWINS = ("person|idcard|410105194909685295", "person|idcard|410105194912060020")


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_two_lock_names_of_one_crc32_are_two_locks(store: Store, database_url: str) -> None:
    """Keyed by the CRC-32 of its name, a writer of one person's number waited for a writer of
    another's whose name shared it, and two such pairs deadlocked writers that had nothing to
    do with each other."""
    one, other = CRC_TWINS
    with store.transaction() as holding, store.transaction() as asking:
        holding.lock(one, wait=False)
        taken = asking.lock(other, wait=False)
    assert (zlib.crc32(one.encode()) == zlib.crc32(other.encode()), taken) == (True, True)


def test_a_refused_row_fails_its_own_savepoint_when_it_ends(store: Store) -> None:
    """A write's rows are queued until the next statement or the end of its savepoint; the
    database refusing one (here a second version 1) fails that savepoint, not the transaction."""
    write(store, patient("taken", gender="female"))
    with store.transaction() as tx:
        tx.resources.write(patient("kept"))
        with pytest.raises(StoreError), tx.savepoint():
            tx.resources.write(patient("taken", gender="male"), current=None)
    assert (read(store, "Patient", "kept") is not None, read(store, "Patient", "taken").version) == (True, 1)


def test_a_search_inside_a_write_transaction_finds_its_writes(store: Store, indexer: SearchIndexer) -> None:
    from gateway.search.query import parse_search

    query = parse_search("Patient", [("identifier", f"{ID_CARD}|110101194001010011")], indexer.parameters)
    with store.transaction() as tx:
        tx.resources.write(patient(identifier=[{"system": ID_CARD, "value": "110101194001010011"}]))
        found = [stored.id for stored in tx.resources.search(query)[0]]
    assert found == ["p1"]


def test_an_executed_statements_rows_stay_readable_while_other_reads_run(store: Store) -> None:
    """Reads whose rows are taken at once share a cursor on PostgreSQL; a cursor handed out by
    ``execute`` must not be that one."""
    for number in range(3):
        write(store, patient(f"p{number}"))
    with store.reading() as tx:
        rows = tx.sql.execute("SELECT id FROM resource WHERE type = ? ORDER BY id", ("Patient",))
        first = rows.fetchone()
        tx.resources.read("Patient", "p2")
        assert [first[0], *(row[0] for row in rows.fetchall())] == ["p0", "p1", "p2"]


def _identifier_search(store: Store, indexer: SearchIndexer, value: str) -> list[str]:
    from gateway.search.query import parse_search

    query = parse_search("Patient", [("identifier", f"{ID_CARD}|{value}")], indexer.parameters)
    with store.reading() as tx:
        return [stored.id for stored in tx.resources.search(query)[0]]


def test_search_rows_follow_the_current_version(store: Store, indexer: SearchIndexer) -> None:
    write(store, patient(identifier=[{"system": ID_CARD, "value": "110101194001010011"}]))
    write(store, patient(identifier=[{"system": ID_CARD, "value": "110101194001010038"}]))
    found = (
        _identifier_search(store, indexer, "110101194001010011"),
        _identifier_search(store, indexer, "110101194001010038"),
    )
    assert found == ([], ["p1"])


def test_a_deleted_resource_is_not_found_by_search(store: Store, indexer: SearchIndexer) -> None:
    write(store, patient(identifier=[{"system": ID_CARD, "value": "110101194001010011"}]))
    with store.transaction() as tx:
        tx.resources.delete("Patient", "p1")
    assert _identifier_search(store, indexer, "110101194001010011") == []


def index_rows(store: Store) -> list[tuple[Any, ...]]:
    with store.reading() as tx:
        return sorted((tuple(row) for row in tx.resources.sql.all("SELECT * FROM search_index")), key=repr)


def test_reindexing_makes_the_rows_a_write_of_the_current_versions_makes(store: Store) -> None:
    """``yiyang db reindex`` after an upgrade: the rows an older gateway wrote (here one
    resource's missing and another's stale) become what this one extracts, in batches
    smaller than the archive; a deleted resource gets none."""
    for number, resource_id in enumerate(("p1", "p2", "p3", "p4", "p5")):
        write(store, patient(resource_id, gender="female", birthDate=f"194{number}-01-01"))
    with store.transaction() as tx:
        tx.resources.delete("Patient", "p4")
    expected = index_rows(store)
    with store.transaction() as tx:
        tx.resources.sql.execute("DELETE FROM search_index WHERE id = 'p2'")
        tx.resources.sql.execute("UPDATE search_index SET value = 'male' WHERE id = 'p5' AND name = 'gender'")
    assert (sum(store.reindex(batch=2)), index_rows(store)) == (4, expected)


def test_a_deleted_resource_is_not_counted(store: Store, indexer: SearchIndexer) -> None:
    """Counts are made from the search index alone (search_sql.count_sql): deleting a
    resource must take its index rows with it."""
    from dataclasses import replace

    from gateway.search.query import parse_search

    for number in range(3):
        write(store, patient(f"w{number}", gender="female"))
    with store.transaction() as tx:
        tx.resources.delete("Patient", "w1")
    query = replace(parse_search("Patient", [("gender", "female")], indexer.parameters), count=1)
    with store.reading() as tx:
        assert tx.resources.search(query)[1] == 2


def _female_totals(store: Store, indexer: SearchIndexer, count: int, offset: int) -> tuple[int, int | None]:
    """(page size, total) of gender=female with this _count and _offset, after three women."""
    from dataclasses import replace

    from gateway.search.query import parse_search

    for number in range(3):
        write(store, patient(f"w{number}", gender="female"))
    query = replace(parse_search("Patient", [("gender", "female")], indexer.parameters), count=count, offset=offset)
    with store.reading() as tx:
        page, total = tx.resources.search(query)
    return len(page), total


def test_a_common_value_is_probed_while_another_criterion_drives(
    store: Store, indexer: SearchIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """gender=female&name=… is driven by the name once the archive finds women common: the
    page and its total are the same as when gender drove."""
    from dataclasses import replace

    from gateway.search.query import parse_search

    monkeypatch.setattr(search_sql, "COMMON_VALUE_ROWS", 2)
    for number, family in enumerate(["王", "王", "赵"]):
        write(store, patient(f"w{number}", gender="female", name=[{"family": family}]))
    query = parse_search("Patient", [("gender", "female"), ("name", "王")], indexer.parameters)
    with store.reading() as tx:
        page, total = tx.resources.search(replace(query, count=1))
    assert (len(page), total) == (1, 2)


@pytest.mark.parametrize(
    ("count", "offset", "expected"),
    [(2, 0, (2, 3)), (5, 0, (3, 3)), (2, 2, (1, 3)), (2, 10, (0, 3))],
    ids=["full page", "short first page", "short last page", "past the end"],
)
def test_the_total_counts_every_match_whatever_the_page(
    store: Store, indexer: SearchIndexer, count: int, offset: int, expected: tuple[int, int]
) -> None:
    assert _female_totals(store, indexer, count, offset) == expected


def test_a_record_quarantined_twice_has_one_entry(store: Store) -> None:
    entry = {
        "source": "insurance",
        "identity": "insurance/ltc-assessment|key|PG2026-003",
        "digest": "0f1e",
        "file": "1101.json",
        "location": "record 3",
        "reasons": [],
    }
    for attempt in range(2):
        with store.transaction() as tx:
            tx.quarantine.put({**entry, "attempt": attempt})
    with store.reading() as tx:
        assert [e["attempt"] for e in tx.quarantine.entries()] == [1]


def test_a_landed_record_resolves_the_entries_of_its_key_with_other_content(store: Store) -> None:
    """Resolved entries stay in the table, for the audit, but are no longer open."""
    entry = {"source": "insurance", "identity": "insurance/ltc-assessment|key|PG2026-003", "file": "1101.json"}
    with store.transaction() as tx:
        tx.quarantine.put({**entry, "digest": "old", "location": "record 3"})
        resolved = tx.quarantine.resolve(
            "insurance", entry["identity"], "new", {"file": "1102.json", "location": "record 1"}, keyed=True
        )
    with store.reading() as tx:
        found = (
            resolved,
            list(tx.quarantine.entries()),
            [e["resolved"]["file"] for e in tx.quarantine.resolved_entries()],
        )
    assert found == (1, [], ["1102.json"])


@pytest.mark.parametrize("keyed", [True, False], ids=["by source key", "by content"])
def test_a_landed_record_resolves_no_entry_of_a_key_its_own_only_begins(store: Store, keyed: bool) -> None:
    """Source keys share prefixes (V1, V10, V1|…): the entries of ``…|V10`` and its copies lie
    in the index range the landing of ``…|V1`` reads, and stay open; its own copy resolves."""
    identity = "insurance/ltc-assessment|key|V1"
    entry = {"source": "insurance", "digest": "old", "file": "1101.json", "location": "record 3"}
    with store.transaction() as tx:
        for other in (f"{identity}0", f"{identity}0|1101.json|record 3", f"{identity}|x|1101.json|record 3"):
            tx.quarantine.put({**entry, "identity": other})
        tx.quarantine.put({**entry, "identity": f"{identity}|1101.json|record 3"})
        resolved = tx.quarantine.resolve(
            "insurance", identity, "new", {"file": "1102.json", "location": "record 1"}, keyed=keyed
        )
    with store.reading() as tx:
        still = sorted(e["identity"].removeprefix(identity) for e in tx.quarantine.entries())
    assert (resolved, still) == (1, ["0", "0|1101.json|record 3", "|x|1101.json|record 3"])


def resolved_of(store: Store, identity: str, *, keyed: bool) -> int:
    """How many entries a record of ``identity`` landing in a transaction of its own resolves."""
    with store.transaction() as tx:
        return tx.quarantine.resolve(
            "insurance", identity, "new", {"file": "1102.json", "location": "row 1"}, keyed=keyed
        )


def test_a_landed_record_resolves_what_earlier_transactions_and_its_own_quarantined(store: Store) -> None:
    """The open entries a transaction knows are read once: those earlier transactions put and
    those it puts itself after reading them still resolve."""
    entry = {"source": "insurance", "digest": "old", "file": "1101.json", "location": "row 2"}
    with store.transaction() as tx:
        tx.quarantine.put({**entry, "identity": "spec|content|c1|1101.json|row 2"})  # a copy
        tx.quarantine.put({**entry, "identity": "spec|key|K1"})
    found = [resolved_of(store, "spec|content|c1", keyed=False), resolved_of(store, "spec|key|K1", keyed=True)]
    with store.transaction() as tx:
        by = {"file": "1103.json", "location": "row 1"}
        asked_first = tx.quarantine.resolve("insurance", "spec|key|K2", "new", by, keyed=True)
        tx.quarantine.put({**entry, "identity": "spec|key|K2"})
        found += [asked_first, tx.quarantine.resolve("insurance", "spec|key|K2", "new", by, keyed=True)]
    assert found == [1, 1, 0, 1]


def test_a_landed_record_resolves_entries_beyond_those_a_transaction_reads(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """More open entries than it reads: each landed record asks the database."""
    monkeypatch.setattr(ingest_tables, "OPEN_KNOWN", 2)
    entry = {"source": "insurance", "digest": "old", "file": "1101.json", "location": "row 2"}
    with store.transaction() as tx:
        for key in ("K1", "K2", "K3"):
            tx.quarantine.put({**entry, "identity": f"spec|key|{key}"})
    assert resolved_of(store, "spec|key|K3", keyed=True) == 1


def test_the_open_entries_are_read_apart_from_the_resolved(store: Store) -> None:
    """…by their own index (0023): the open identities a transaction reads, the open count
    and a replay's entries read every entry, resolved or not, 60–90 ms at 200,000 resolved
    and 1,000 open."""
    rows = [
        (
            "insurance",
            f"spec|key|K{n}",
            "d",
            "1101.json",
            f"row {n}",
            "2026-12-01",
            "{}",
            None if n % 100 == 0 else "2026-12-02",
        )
        for n in range(5_000)
    ]
    with store.transaction() as tx:
        columns = ("source", "identity", "digest", "file", "location", "recorded", "entry", "resolved")
        tx.sql.insert_many("quarantine", columns, rows)
        tx.sql.execute("ANALYZE quarantine")
        explain = "EXPLAIN QUERY PLAN " if store.dialect.name == "sqlite" else "EXPLAIN "
        plan = tx.sql.all(
            explain + "SELECT identity FROM quarantine WHERE source = ? AND resolved IS NULL", ["insurance"]
        )
    assert "quarantine_open" in str(plan)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
def test_records_landing_with_nothing_open_to_resolve_send_no_update(store: Store) -> None:
    """One UPDATE a landed record, whether or not an entry named it: 100 records of a source
    whose one open entry is another's sent 100."""
    entry = {"source": "insurance", "digest": "old", "file": "1101.json", "location": "row 2"}
    with store.transaction() as tx:
        tx.quarantine.put({**entry, "identity": "spec|key|K10"})
    statements: list[str] = []
    with store.transaction() as tx:
        tx.sql.connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        try:
            for number in range(100):
                by = {"file": "1102.json", "location": f"row {number}"}
                tx.quarantine.resolve("insurance", f"spec|key|K{number}1", "new", by, keyed=True)
                tx.quarantine.resolve("insurance", f"spec|content|c{number}", "new", by, keyed=False)
        finally:
            tx.sql.connection.set_trace_callback(None)  # type: ignore[attr-defined]
    asked = [sql.split()[0] for sql in statements if "quarantine" in sql]
    assert asked == ["SELECT"]


def test_writers_on_two_threads_both_commit(store: Store) -> None:
    def many(prefix: str) -> None:
        for n in range(20):
            write(store, patient(f"{prefix}-{n}"))

    threads = [threading.Thread(target=many, args=(name,)) for name in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with store.reading() as tx:
        assert tx.resources.counts() == {"Patient": 40}


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_old_store_is_upgraded_in_place(backend: str, tmp_path: Path, indexer: SearchIndexer) -> None:
    """A store made by the first schema version keeps its resources through the upgrade."""
    from gateway.storage.migrations import apply

    with fresh_database_url(backend, tmp_path) as url:
        old = open_store(url, indexer.rows, upgrade=False)
        with old._connection() as connection:  # noqa: SLF001 - the test builds a version-1 store by hand
            from gateway.storage.store import Executor

            apply(Executor(connection, old.dialect, old.errors), target=1)
        with old.transaction() as tx:  # the row as the first version's code wrote it
            content = tx.sql.dialect.json_in(patient(gender="female", meta={"versionId": "1"}))
            row = ("Patient", "p1", 1, "2026-11-20T08:00:00.000000Z", False, content)
            tx.sql.execute(
                "INSERT INTO resource (type, id, version, last_updated, deleted, content) VALUES (?, ?, ?, ?, ?, ?)",
                row,
            )
        old.close()
        upgraded = open_store(url, indexer.rows)
        try:
            with upgraded.reading() as tx:
                found = (upgraded.schema_version() >= 2, tx.resources.read("Patient", "p1").resource["gender"])
        finally:
            upgraded.close()
    assert found == (True, "female")


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_upgrade_of_an_archive_holding_data_gives_the_planner_statistics(
    backend: str, tmp_path: Path, indexer: SearchIndexer
) -> None:
    """``db upgrade`` (and a gateway opening an older archive) analyses what it migrated: a
    never-analysed PostgreSQL store is planned as if each table held a few rows until
    autovacuum comes."""
    from gateway.storage.migrations import LATEST, apply
    from gateway.storage.store import Executor

    with fresh_database_url(backend, tmp_path) as url:
        old = open_store(url, indexer.rows, upgrade=False)
        with old._connection() as connection:  # noqa: SLF001 - the test builds the previous version's store
            apply(Executor(connection, old.dialect, old.errors), target=LATEST - 1)
        with old.transaction() as tx:
            for number in range(3):
                tx.resources.write({"resourceType": "Patient", "id": f"p{number}", "gender": "female"})
        old.close()
        upgraded = open_store(url, indexer.rows)
        try:
            statistics = planner_statistics(upgraded, "search_index")
        finally:
            upgraded.close()
    assert statistics > 0


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_a_store_a_newer_gateway_upgraded_is_refused(backend: str, tmp_path: Path, indexer: SearchIndexer) -> None:
    """``db upgrade`` said "11 → 11" and every command went on with tables it did not know."""
    from gateway.storage.migrations import LATEST, SchemaTooNew

    with fresh_database_url(backend, tmp_path) as url:
        store = open_store(url, indexer.rows)
        with store.transaction() as tx:
            tx.sql.execute("INSERT INTO schema_migration (version, applied) VALUES (?, ?)", (LATEST + 1, "2027-01-01"))
        store.close()
        with pytest.raises(SchemaTooNew) as refused:
            open_store(url, indexer.rows).close()
    assert refused.value.params == {"have": LATEST + 1, "latest": LATEST}


def test_two_processes_upgrading_a_new_postgresql_archive_at_once_both_succeed(tmp_path: Path) -> None:
    """``serve`` and an ``ingest`` (or two ``db upgrade``) started at once on a new database:
    both saw version 0 and ran migration 1, and one failed ("duplicate key value violates
    unique constraint pg_type_typname_nsp_index").  Here the first pauses inside its first
    migration while the second upgrades."""
    from gateway.storage import migrations

    original, paused, resume = migrations.statements, threading.Event(), threading.Event()

    def pausing(script: str) -> list[str]:
        if threading.current_thread().name == "first" and not paused.is_set():
            paused.set()
            resume.wait(timeout=60)
        return original(script)

    failures: list[BaseException] = []

    def upgrade(url: str) -> None:
        store = open_store(url, upgrade=False)
        try:
            store.upgrade()
        except BaseException as exc:  # noqa: BLE001 - the test reports what failed
            failures.append(exc)
        finally:
            store.close()

    with fresh_database_url("postgresql", tmp_path) as url:
        migrations.statements = pausing
        try:
            second_behind_first(url, upgrade, paused, resume)
        finally:
            migrations.statements = original
    assert failures == []


@contextmanager
def database_with_language_collation() -> Iterator[str]:
    """A PostgreSQL database of its own whose default collation is ICU's English, as a store
    created on a server set up for a language would have (dropped afterwards)."""
    server = os.environ.get("YIYANG_TEST_DATABASE_URL")
    if not server:
        pytest.skip("PostgreSQL tests need YIYANG_TEST_DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/test)")
    name = f"t_{uuid.uuid4().hex[:12]}"
    create = f"CREATE DATABASE {name} TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
    with psycopg.connect(server, autocommit=True) as admin:
        admin.execute(create)
    try:
        yield urlunsplit(urlsplit(server)._replace(path=f"/{name}"))
    finally:
        with psycopg.connect(server, autocommit=True) as admin:
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")


def test_postgresql_orders_ids_by_code_point_whatever_the_database_collation(indexer: SearchIndexer) -> None:
    """English collation put a1 before B1 (SQLite, by code point, B1 first): pages, includes
    and exports listed resources in another order on PostgreSQL (migration 0012)."""
    with database_with_language_collation() as url:
        store = open_store(url, indexer.rows)
        try:
            for resource_id in ("a1", "B1"):
                write(store, patient(resource_id))
            with store.reading() as tx:
                walked = tx.resources.keys_after(None, ["Patient"], 10)
        finally:
            store.close()
    assert walked == [("Patient", "B1"), ("Patient", "a1")]


def postgres_setting(tmp_path: Path, indexer: SearchIndexer, name: str) -> str:
    """The value of the setting ``name`` on a connection of a PostgreSQL store, as
    postgres._configure leaves it."""
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        try:
            with store.reading() as tx:
                return tx.sql.one(f"SHOW {name}")[0]
        finally:
            store.close()


def test_postgresql_keeps_one_plan_per_prepared_statement(tmp_path: Path, indexer: SearchIndexer) -> None:
    """Planning a search anew for each call cost more than running it (see postgres._configure)."""
    assert postgres_setting(tmp_path, indexer, "plan_cache_mode") == "force_generic_plan"


def test_postgresql_compiles_no_statement_just_in_time(tmp_path: Path, indexer: SearchIndexer) -> None:
    """Compiling a sorted search cost more than it saved (see postgres._configure)."""
    assert postgres_setting(tmp_path, indexer, "jit") == "off"


def test_a_workers_postgresql_store_lends_each_of_its_threads_a_connection_at_once(
    tmp_path: Path, validator: Validator
) -> None:
    """Each request thread (``YIYANG_THREADS``) and each background writer (the audit trail's,
    the exchange log's) may hold a connection at once: the pool held 4 whatever the threads,
    so with 8 the fifth to ask waited for one, 30 s and then a 503."""
    views_held = threading.Event()
    with fresh_database_url("postgresql", tmp_path) as url:
        services = Services(Config.load(environ={}, database_url=url, threads=8), validator.registry)

        def hold_all() -> None:
            with ExitStack() as held:
                for _ in range(8 + 2):
                    held.enter_context(services.store.reading())
                views_held.set()

        try:
            services.store  # noqa: B018 - opened (and upgraded) before the clock starts
            threading.Thread(target=hold_all, daemon=True).start()
            all_at_once = views_held.wait(10)
        finally:
            services.close()
    assert all_at_once


def test_a_postgresql_store_lends_the_connection_handed_back_last(tmp_path: Path, indexer: SearchIndexer) -> None:
    """A request thread's next statement runs on the backend that ran its last one, caches
    warm (postgres._Pool), not on the connection idle longest."""
    backend = "SELECT pg_backend_pid()"
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        try:
            with store.reading() as outer:
                handed_back_last = outer.sql.one(backend)
                with store.reading() as inner:  # a second connection, handed back first
                    inner.sql.one(backend)
            with store.reading() as following:
                lent = following.sql.one(backend)
        finally:
            store.close()
    assert lent == handed_back_last


def test_a_postgresql_read_prepared_before_psycopg_deallocated_it_is_prepared_again(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    """Reads run their prepared statements through libpq (postgres._QuickReads); psycopg
    deallocates every prepared statement after a ROLLBACK, when it had prepared one itself."""
    statement = "SELECT %s::text || 'ok'"
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        try:
            with store.pool.connection() as connection:
                for _ in range(connection.prepare_threshold or 0):  # ours is prepared now
                    connection.rows_now(statement, ("read ",))
                for _ in range(2 * (connection.prepare_threshold or 0)):  # and psycopg's
                    connection.execute("SELECT 1 WHERE %s", (True,))
                connection.execute("BEGIN")
                connection.execute("ROLLBACK")  # psycopg deallocates them all with its next statement
                connection.execute("SELECT 1")
                found = connection.rows_now(statement, ("read ",))
        finally:
            store.close()
    assert found == [("read ok",)]


def test_a_statement_planned_per_call_is_never_prepared(tmp_path: Path, indexer: SearchIndexer) -> None:
    """A restricted client's visibility is best planned for its values: such a statement is
    sent with its values in its text, never prepared (PostgreSQL's one generic plan listed
    every stay of the organisation for each search)."""
    marked = f"SELECT %s::text || 'ok' {PLANNED_PER_CALL}"
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        try:
            with store.pool.connection() as connection:
                for _ in range(2 * (connection.prepare_threshold or 0)):
                    connection.rows_now(marked, ("read ",))
                    connection.execute(marked, ("run ",))
                prepared = connection.execute(
                    "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s", ("%planned-per-call%",)
                ).fetchone()
        finally:
            store.close()
    assert prepared == (0,)


def test_a_postgresql_connection_keeps_its_most_recently_run_statements_prepared(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    """Statements whose IN lists vary in length would otherwise pile up in the session."""
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        try:
            with store.pool.connection() as connection:
                connection.prepared_max = 2
                for shape in range(4):  # four statements, each run often enough to be prepared
                    for _ in range(connection.prepare_threshold or 0):
                        connection.rows_now(f"SELECT %s::int + {shape}", (1,))
                # its own (psycopg prepares what it runs often too: the migrations' COMMITs)
                prepared = connection.execute(
                    "SELECT statement FROM pg_prepared_statements WHERE name LIKE 'yiyang\\_%'"
                ).fetchall()
        finally:
            store.close()
    assert sorted(statement for (statement,) in prepared) == ["SELECT $1::int + 2", "SELECT $1::int + 3"]


@given(st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1))
def test_a_sqlite_url_made_of_a_path_names_that_path(name: str) -> None:
    """Spaces, 汉字, ``%`` and ``?`` in a file name survive the URL the gateway writes for it
    and reads back (percent-decoded, as a URL's path is)."""
    path = Path("/data") / name.replace("/", "_")
    assert sqlite_path(sqlite_url(path)) == path


def test_an_unknown_database_url_is_a_clear_error() -> None:
    with pytest.raises(StoreError, match="sqlite:///PATH or postgresql://"):
        open_store("mysql://localhost/archive")


def test_analyze_gives_the_planner_statistics_of_what_was_written(store: Store) -> None:
    with store.transaction() as tx:
        for number in range(3):
            tx.resources.write({"resourceType": "Patient", "id": f"p{number}", "gender": "female"})
    store.analyze()
    assert planner_statistics(store, "resource") > 0


def test_analyze_gives_the_planner_statistics_of_the_identity_index(store: Store) -> None:
    """An ingest fills the identity index too, which every search of a restricted client reads."""
    with store.transaction() as tx:
        for number in range(3):
            tx.identity.link(f"p{number}", [f"idcard|41010519491231002{number}"])
    store.analyze()
    assert planner_statistics(store, "person_key") > 0


def planner_statistics(store: Store, table: str) -> int:
    """What the planner's statistics say of a table: SQLite's rows of it in ``sqlite_stat1``,
    PostgreSQL's estimate of its rows (-1 or 0 until it is analysed or vacuumed)."""
    statistics = (
        "SELECT COUNT(*) FROM sqlite_stat1 WHERE tbl = ?"
        if store.dialect.name == "sqlite"
        else "SELECT CAST(reltuples AS INTEGER) FROM pg_class WHERE relname = ? AND relkind = 'r'"
        " AND relnamespace = to_regnamespace(current_schema())"
    )
    with store.reading() as tx:
        return int(tx.resources.sql.one(statistics, [table])[0])


def test_a_read_inside_a_write_transaction_sees_its_writes(store: Store) -> None:
    """…and takes no second connection: threads each holding a pooled PostgreSQL connection
    and waiting for another would exhaust the pool."""
    with store.transaction() as tx:
        tx.resources.write(patient(gender="female"))
        with store.reading() as inner:
            found = inner.resources.read("Patient", "p1")
    assert found is not None and found.resource["gender"] == "female"


def test_the_store_clock_writes_each_moment_as_format_instant_does(monkeypatch: pytest.MonkeyPatch) -> None:
    """now_instant formats the seconds once a second: the moments of one second, and the
    first of the next, still read exactly as the full formatting gives them."""
    start = datetime(2026, 12, 31, 23, 59, 59, tzinfo=UTC)
    moments = [start, start + timedelta(microseconds=999_999), start + timedelta(seconds=1, microseconds=7)]
    written = []
    for moment in moments:
        nanoseconds = int((moment - datetime(1970, 1, 1, tzinfo=UTC)) / timedelta(microseconds=1)) * 1000 + 512
        monkeypatch.setattr(resources.time, "time_ns", lambda value=nanoseconds: value)
        written.append(resources.now_instant())
    assert written == [format_instant(moment) for moment in moments]


def test_the_store_clock_formats_two_seconds_in_turn_once_each(monkeypatch: pytest.MonkeyPatch) -> None:
    """Request threads write this second while the exchange log formats moments taken a
    little earlier: taking turns, each second's text is still made once."""
    made = []

    def counted(moment: datetime) -> str:
        made.append(moment)
        return format_instant(moment)

    monkeypatch.setattr(resources, "format_instant", counted)
    earlier, now = 978_307_200 * 10**9 + 5, 978_307_201 * 10**9 + 7  # 2001-01-01T00:00:00/01Z
    written = [resources.instant_at(moment) for moment in (earlier, now) * 3]
    assert (written[:2], len(made)) == (["2001-01-01T00:00:00.000000Z", "2001-01-01T00:00:01.000000Z"], 2)


def test_a_stream_hands_over_every_row_batch_by_batch(store: Store) -> None:
    """Exports read the archive through Executor.stream (a server-side cursor on PostgreSQL):
    a batch smaller than the result must still reach every row, in order."""
    for number in range(5):
        write(store, patient(f"s{number}"))
    with store.reading() as tx:
        streamed = [row[0] for row in tx.resources.sql.stream("SELECT id FROM resource ORDER BY id", size=2)]
    assert streamed == ["s0", "s1", "s2", "s3", "s4"]


def test_reads_between_the_batches_of_a_stream_leave_it_whole(store: Store) -> None:
    """A Patient-level export reads each person's compartment while the stream of people is
    open (on PostgreSQL, other statements run between the cursor's fetches)."""
    for number in range(5):
        write(store, patient(f"s{number}"))
    with store.reading() as tx:
        streamed = []
        for row in tx.resources.sql.stream("SELECT id FROM resource ORDER BY id", size=2):
            found = tx.resources.read("Patient", row[0])
            streamed.append(found.id if found else None)
    assert streamed == ["s0", "s1", "s2", "s3", "s4"]


def hold_a_write(store: Store, release: threading.Event) -> tuple[threading.Thread, list[str]]:
    """A write transaction left open until ``release``; returns its thread and its stamp."""
    writing, stamped = threading.Event(), []

    def long_write() -> None:
        with store.transaction() as tx:
            stored, _ = tx.resources.write(
                {"resourceType": "Basic", "id": "in-flight", "code": {"text": "x"}}, current=None
            )
            stamped.append(stored.last_updated)
            writing.set()
            release.wait(10)

    writer = threading.Thread(target=long_write)
    writer.start()
    writing.wait(10)
    return writer, stamped


def test_on_postgresql_a_settled_instant_holds_no_other_writer_back(tmp_path: Path, indexer: SearchIndexer) -> None:
    """An exclusive barrier queued every new write behind the longest one in flight."""
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        release = threading.Event()
        writer, _ = hold_a_write(store, release)
        settler = threading.Thread(target=store.settled_instant)
        settler.start()
        other = threading.Thread(target=lambda: write(store, patient(gender="male")))
        other.start()
        other.join(5)
        written_meanwhile = not other.is_alive() and settler.is_alive()
        release.set()
        for thread in (writer, settler, other):
            thread.join(10)
        store.close()
    assert written_meanwhile


def test_on_postgresql_a_settled_instant_ignores_writers_of_another_database(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    """Advisory locks are per database, but pg_locks lists the whole cluster's."""
    with fresh_database_url("postgresql", tmp_path) as url:
        other = url.split("?")[0].rsplit("/", 1)[0] + "/postgres"
        store = open_store(url, indexer.rows)
        with psycopg.connect(other) as elsewhere:  # a transaction holding the barrier there
            elsewhere.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", WRITE_BARRIER)
            settler = threading.Thread(target=store.settled_instant)
            settler.start()
            settler.join(5)
            waited = settler.is_alive()
        settler.join(10)
        store.close()
    assert not waited


def test_on_postgresql_a_named_lock_goes_with_the_next_statement(tmp_path: Path, indexer: SearchIndexer) -> None:
    """Sent alone it was a round trip of its own (one of a create's three); the database runs
    it before whatever follows on the connection, so that still waits for it."""
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        with store.transaction() as tx:
            tx.resources.read("Patient", "anyone")
            tx.lock("identity-number 110105194701302230")
            queued = advisory_lock_held(url, "identity-number 110105194701302230")
            tx.resources.read("Patient", "anyone")
            taken = advisory_lock_held(url, "identity-number 110105194701302230")
        store.close()
    assert (queued, taken) == (False, True)


def test_a_settled_instant_waits_for_a_write_in_flight_and_follows_its_stamp(store: Store) -> None:
    """What an export's transactionTime promises: no write stamped before it commits after it.
    On PostgreSQL writers run side by side, and one stamped before an export's kick-off
    committed after the export had read the archive, lost to the next export _since."""
    release, settled = threading.Event(), []
    writer, stamped = hold_a_write(store, release)
    settler = threading.Thread(target=lambda: settled.append(store.settled_instant()))
    settler.start()
    settler.join(0.5)
    waited = settler.is_alive()
    release.set()
    writer.join(10)
    settler.join(10)
    assert (waited, settled[0] > stamped[0]) == (True, True)


@pytest.mark.parametrize(("state", "retryable"), [("40P01", True), ("40001", True), ("23505", False), (None, False)])
def test_a_transaction_the_database_gave_up_is_marked_retryable(state: str | None, retryable: bool) -> None:
    """Deadlock victims and serialization failures committed nothing: done again, they succeed."""
    from gateway.storage.store import driver_error

    failure = Exception("refused")
    failure.sqlstate = state  # type: ignore[attr-defined] - as psycopg's errors carry it
    assert driver_error("postgresql", failure).retryable is retryable


def test_connections_opening_one_new_sqlite_store_at_once_all_open_it(tmp_path: Path) -> None:
    """Both switching a new file to WAL, one was answered "database is locked" at once (no busy
    wait: SQLite's deadlock avoidance); two ingests into a new --out folder failed so in CI.
    Stores on threads of one process contend as processes do (and fork nothing)."""
    from gateway.storage.sqlite import SQLiteStore

    failures: list[StoreError] = []

    def first_read(store: SQLiteStore, start: threading.Barrier) -> None:
        start.wait(10)
        try:
            with store.reading():  # the first connection switches the file to WAL
                pass
        except StoreError as exc:
            failures.append(exc)

    for round_ in range(60):
        stores = [SQLiteStore(f"sqlite:///{tmp_path / f'{round_}.sqlite'}") for _ in range(6)]
        start = threading.Barrier(len(stores))
        openers = [threading.Thread(target=first_read, args=(store, start)) for store in stores]
        for opener in openers:
            opener.start()
        for opener in openers:
            opener.join(30)
        for store in stores:
            store.close()
    assert failures == []


# -- a compartment's members among many ids ----------------------------------------------
#: more ids than either database binds as parameters of one statement (PostgreSQL 65,535;
#: SQLite 32,766, or 250,000 as Debian builds it)
MANY_IDS = 250_001
IN_COMPARTMENT = {"Observation": ["subject"]}


def observation_of(person: str, resource_id: str) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": resource_id,
        "status": "final",
        "code": {"text": "血压"},
        "subject": {"reference": f"Patient/{person}"},
    }


def test_the_members_among_more_ids_than_a_statement_binds_are_found(store: Store) -> None:
    """``Patient/$everything`` asks which of the resources its page refers to are members: an
    id each, once bound one parameter each, so a record referring to enough of them failed on
    both databases (too many SQL variables, or parameters)."""
    write(store, patient("p1"))
    write(store, observation_of("p1", "o1"))
    keys = [("Observation", f"x{number}") for number in range(MANY_IDS)] + [("Observation", "o1")]
    with store.reading() as tx:
        found = tx.resources.referrers_among(resources.Referrers("Patient", "p1", IN_COMPARTMENT), keys)
    assert found == {("Observation", "o1")}


def test_the_members_but_more_hidden_ones_than_a_statement_binds_are_listed(store: Store) -> None:
    """``Patient/$everything`` leaves out the members a restricted principal may not see, by
    id: a record with enough of them failed on both databases, as above."""
    write(store, patient("p1"))
    for resource_id in ("o1", "o2"):
        write(store, observation_of("p1", resource_id))
    hidden = frozenset({("Observation", f"x{number}") for number in range(MANY_IDS)} | {("Observation", "o1")})
    with store.reading() as tx:
        found = tx.resources.referrers(resources.Referrers("Patient", "p1", IN_COMPARTMENT, hidden=hidden))
    assert [stored.reference for stored in found] == ["Observation/o2"]


#: an identity conflict as an older gateway listed it (the pair a hidden holder made)
OLD_CONFLICT = {
    "person": "Patient/a",
    "element": "Patient.identifier[0]",
    "kept": "Patient/a",
    "offered": "Patient/b",
    "source": "rest",
    "file": "Patient/b",
}


def store_of_version_with_a_conflict(url: str, indexer: SearchIndexer, version: int) -> None:
    """A store built by hand at schema ``version`` (before 17), holding :data:`OLD_CONFLICT`
    as a gateway of then wrote it (no recorded time)."""
    from gateway.storage.migrations import apply
    from gateway.storage.store import Executor

    old = open_store(url, indexer.rows, upgrade=False)
    with old._connection() as connection:  # noqa: SLF001 - the test builds an old store by hand
        apply(Executor(connection, old.dialect, old.errors), target=version)
    key = (OLD_CONFLICT["person"], OLD_CONFLICT["element"], OLD_CONFLICT["file"], "Patient.identifier[0]")
    with old.transaction() as tx:
        tx.sql.execute(
            "INSERT INTO identity_conflict (person_id, element, file, location, entry) VALUES (?, ?, ?, ?, ?)",
            (*key, tx.sql.dialect.json_in({**OLD_CONFLICT, "location": key[-1]})),
        )
    old.close()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_identity_conflict_listed_before_0016_can_be_resolved_by_a_merge(
    backend: str, tmp_path: Path, indexer: SearchIndexer
) -> None:
    """A conflict an older gateway listed (no resolved column yet) is settled by a merge of
    its pair after the upgrade, and still listed, saying by which merge."""
    with fresh_database_url(backend, tmp_path) as url:
        store_of_version_with_a_conflict(url, indexer, 15)
        upgraded = open_store(url, indexer.rows)
        try:
            with upgraded.transaction() as tx:
                tx.conflicts.resolve_pair("Patient/b", "Patient/a")
            with upgraded.reading() as tx:
                found = [entry["resolved"]["into"] for entry in tx.conflicts.entries()]
        finally:
            upgraded.close()
    assert found == ["Patient/a"]


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_an_identity_conflict_listed_before_0017_is_on_the_work_list_without_a_time(
    backend: str, tmp_path: Path, indexer: SearchIndexer
) -> None:
    """A conflict an older gateway listed (no recorded column yet) is still on the 主索引
    staff's list after the upgrade, saying no time rather than a wrong one; a new one says when."""
    with fresh_database_url(backend, tmp_path) as url:
        store_of_version_with_a_conflict(url, indexer, 16)
        upgraded = open_store(url, indexer.rows)
        try:
            with upgraded.transaction() as tx:
                tx.conflicts.add({**OLD_CONFLICT, "file": "Patient/c", "location": "Patient.identifier[0]"})
            with upgraded.reading() as tx:
                found = [(c.entry["file"], c.recorded is None) for c in tx.conflicts.page("open", None, 0, 10)]
        finally:
            upgraded.close()
    assert found == [("Patient/b", True), ("Patient/c", False)]


# -- the identity-conflict work list ---------------------------------------------------------
def second_record(holder: str, second: str) -> dict[str, Any]:
    """The entry a REST write of ``second`` beside a hidden ``holder`` reports."""
    where = "Patient.identifier[0]"
    return {"person": holder, "element": where, "kept": holder, "offered": second, "file": second, "location": where}


def disagreement(person: str, element: str) -> dict[str, Any]:
    """An ingest's disagreement on one of ``person``'s demographics."""
    return {
        "person": person,
        "element": element,
        "kept": "丧偶",
        "offered": "已婚",
        "file": "a.csv",
        "location": "row 2",
    }


def test_a_patients_pages_list_the_entries_naming_it_past_each_cursor(store: Store) -> None:
    """Named as person or as the offered second record, among another person's entries; each
    page resumes past the last entry the previous one showed."""
    entries = [
        disagreement("Patient/a", "maritalStatus"),
        second_record("Patient/x", "Patient/y"),
        second_record("Patient/b", "Patient/a"),
        disagreement("Patient/x", "name"),
        disagreement("Patient/a", "name"),
    ]
    with store.transaction() as tx:
        for entry in entries:
            tx.conflicts.add(entry)
    pages, after = [], 0
    with store.reading() as tx:
        while page := tx.conflicts.page("all", "Patient/a", after, 1)[:1]:
            pages.append((page[0].entry["person"], page[0].entry["element"]))
            after = page[0].seq
    assert pages == [("Patient/a", "maritalStatus"), ("Patient/b", "Patient.identifier[0]"), ("Patient/a", "name")]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
def test_a_patients_page_is_filtered_by_the_database(store: Store) -> None:
    """It read every later entry and kept the person's in Python: the whole backlog for each
    page of one person's few.  The statement now asks for that person's entries alone."""
    with store.transaction() as tx:
        tx.conflicts.add(disagreement("Patient/a", "name"))
    with store.reading() as tx:
        statements: list[str] = []
        tx.sql.connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        try:
            tx.conflicts.page("open", "Patient/a", 0, 10)
        finally:
            tx.sql.connection.set_trace_callback(None)  # type: ignore[attr-defined]
    assert [sql for sql in statements if "FROM identity_conflict" in sql and "'Patient/a'" in sql] != []


def test_on_postgresql_an_updates_delete_of_its_old_index_rows_goes_with_the_commit(
    tmp_path: Path, indexer: SearchIndexer
) -> None:
    """The DELETE of an update's old search index rows was a round trip of its own."""
    with fresh_database_url("postgresql", tmp_path) as url:
        store = open_store(url, indexer.rows)
        write(store, patient(identifier=[{"system": ID_CARD, "value": "110101194001010011"}]))
        sent: list[str] = []
        with store.transaction() as tx:
            current = tx.resources.read("Patient", "p1", for_update=True)
            run = tx.sql._run
            tx.sql._run = lambda sql, params=(): sent.append(sql) or run(sql, params)  # type: ignore[method-assign]
            tx.resources.write(
                patient(identifier=[{"system": ID_CARD, "value": "110101194001010038"}]), current=current
            )
            sent_by_the_write = list(sent)
        store.close()
    assert not any(sql.startswith("DELETE FROM search_index") for sql in sent_by_the_write)


def test_an_update_drops_its_resources_index_rows_queued_before_it(store: Store, indexer: SearchIndexer) -> None:
    """Rows queued go in before any later statement, so the update's DELETE must follow them."""
    write(store, patient())
    queued = patient(identifier=[{"system": ID_CARD, "value": "110101194001010011"}])
    with store.transaction() as tx:
        current = tx.resources.read("Patient", "p1", for_update=True)
        tx.sql.defer("search_index", resources.INDEX_COLUMNS, [("Patient", "p1", *row) for row in indexer.rows(queued)])
        tx.resources.write(patient(identifier=[{"system": ID_CARD, "value": "110101194001010038"}]), current=current)
    assert _identifier_search(store, indexer, "110101194001010011") == []
