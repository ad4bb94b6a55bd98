"""A version's JSON is stored once (migration 0019): the current version in ``resource``, the
superseded ones in ``resource_version``.  Each test runs on SQLite and on PostgreSQL; the
upgrade of a store the previous schema version laid out (every version in the history, the
current one in both tables) must leave every answer as it was."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import pytest

import gateway.storage.resources as resources
from gateway.search.indexer import SearchIndexer
from gateway.search.query import parse_search
from gateway.storage import open_store
from gateway.storage.store import Executor, Store, StoreError
from tests.conftest import BACKENDS, fresh_database_url

ID_CARD = "urn:oid:2.16.156.10011.1.3"
#: the schema version before versions were stored once
PREVIOUS = 17


def patient(resource_id: str, number: str, **elements: Any) -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "id": resource_id,
        "identifier": [{"system": ID_CARD, "value": number}],
        **elements,
    }


def documents(store: Store) -> int:
    """How many JSON documents the store holds for resources, in both tables."""
    with store.reading() as tx:
        row = tx.sql.one("SELECT (SELECT COUNT(content) FROM resource) + (SELECT COUNT(content) FROM resource_version)")
    return int(row[0])


def test_each_version_of_a_resource_is_stored_once(store: Store) -> None:
    """Two versions of one Patient were three documents: version 2 in both tables."""
    with store.transaction() as tx:
        tx.resources.write(patient("p1", "110101194001010011", gender="female"), method="POST")
    with store.transaction() as tx:
        tx.resources.write(patient("p1", "110101194001010011", gender="male"))
    assert documents(store) == 2


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_create_of_an_id_another_writer_created_meanwhile_is_retried(store: Store) -> None:
    """Writers run side by side on PostgreSQL: one that found the id free (``current=None``)
    while another created it must not overwrite the other's version 1 unseen, but be refused
    as a write to do again, which then finds the resource."""
    with store.transaction() as tx:
        tx.resources.write(patient("p1", "110101194001010011"), current=None)
    with pytest.raises(StoreError) as refused, store.transaction() as tx:
        tx.resources.write(patient("p1", "110101194001010038"), current=None)
    assert refused.value.retryable


# -- the upgrade -------------------------------------------------------------------------
def clock() -> Any:
    """A store clock that gives 2026-12-01T08:00:00.000001Z, .000002Z …: the same instants
    for the same writes in two stores."""
    ticks = itertools.count(1)
    return lambda: f"2026-12-01T08:00:00.{next(ticks):06d}Z"


def scenario(store: Store) -> None:
    """Versions of every kind: updated twice, deleted, deleted and created again, untouched."""
    steps: list[tuple[str, Any]] = [
        ("POST", patient("p1", "110101194001010011", gender="female")),
        ("POST", patient("p2", "110101194001010038", gender="male")),
        ("PUT", patient("p1", "110101194001010011", gender="female", birthDate="1940-01-01")),
        ("DELETE", ("Patient", "p2")),
        ("POST", patient("p3", "110101194001010054", gender="female")),
        ("DELETE", ("Patient", "p3")),
        ("PUT", patient("p3", "110101194001010054", gender="female", active=True)),
        (
            "POST",
            {"resourceType": "Observation", "id": "o1", "status": "final", "subject": {"reference": "Patient/p1"}},
        ),
        ("PUT", patient("p1", "110101194001010011", gender="female", birthDate="1940-01-02")),
    ]
    for method, what in steps:
        with store.transaction() as tx:
            if method == "DELETE":
                tx.resources.delete(*what)
            else:
                tx.resources.write(what, method=method)


KEYS = [("Patient", "p1"), ("Patient", "p2"), ("Patient", "p3"), ("Observation", "o1"), ("Patient", "never")]


def answers(store: Store, indexer: SearchIndexer) -> dict[str, Any]:
    """What reads, vreads, histories, searches and exports answer, as clients receive them."""

    def shown(stored: Any) -> tuple[Any, ...] | None:
        if stored is None:
            return None
        return (stored.type, stored.id, stored.version, stored.last_updated, stored.deleted, stored.json())

    def listed(versions: list[Any]) -> list[Any]:
        return [(shown(stored), method) for stored, method in versions]

    middle = "2026-12-01T08:00:00.000005Z"
    found: dict[str, Any] = {}
    with store.reading() as tx:
        r = tx.resources
        found["read"] = [shown(r.read(*key)) for key in KEYS]
        found["vread"] = [shown(r.vread(*key, version)) for key in KEYS for version in range(5)]
        found["as_of"] = [shown(r.as_of(*key, middle)) for key in KEYS]
        found["deletions"] = sorted(r.deletions([(*key, version) for key in KEYS for version in range(5)]))
        found["history"] = [
            (listed(versions), total)
            for versions, total in (
                r.history(),
                r.history("Patient"),
                r.history("Patient", "p3"),
                r.history(since=middle),
                r.history(limit=3, offset=2),
                r.history(upto=r.version_place("Patient", "p3", 2)),
            )
        ]
        found["newest"] = [
            (*key, version)
            for key in KEYS
            for version in range(5)
            if r.version_place(*key, version) == r.newest_version()
        ]
        found["search"] = [
            sorted(s.id for s in r.search(parse_search("Patient", [criterion], indexer.parameters))[0])
            for criterion in (("gender", "female"), ("identifier", f"{ID_CARD}|110101194001010038"))
        ]
        found["export"] = [shown(s) for s in r.current()]
        found["export_since"] = [shown(s) for s in r.current(since=middle)]
        found["deleted_since"] = [shown(s) for s in r.deleted_since(None, "2026-12-01T08:00:00Z")]
        found["versions_since"] = {
            key: [shown(s) for s in versions] for key, versions in r.versions_since(KEYS, middle).items()
        }
    return found


def previous_layout(fresh: Store, url: str, indexer: SearchIndexer) -> None:
    """A store at schema :data:`PREVIOUS` holding what ``fresh`` holds, laid out as the gateway
    of then wrote it: every version in the history (numbered by seq, with its method), the
    current one in ``resource`` too, the search index as it is."""
    with fresh.reading() as tx:
        current = tx.sql.all(
            "SELECT seq, type, id, version, last_updated, deleted, method, content, owner FROM resource"
        )
        superseded = tx.sql.all(
            "SELECT seq, type, id, version, last_updated, deleted, method, content FROM resource_version"
        )
        index = tx.sql.all("SELECT type, id, name, system, value, low, high, number FROM search_index")
    from gateway.storage.migrations import apply

    old = open_store(url, indexer.rows, upgrade=False)
    with old._connection() as connection:  # noqa: SLF001 - the test builds an old store by hand
        apply(Executor(connection, old.dialect, old.errors), target=PREVIOUS)
    with old.transaction() as tx:
        for row in sorted([*(tuple(r[:8]) for r in current), *(tuple(r) for r in superseded)]):
            tx.sql.execute(
                "INSERT INTO resource_version (seq, type, id, version, last_updated, deleted, method, content) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
        for row in current:
            tx.sql.execute(
                "INSERT INTO resource (type, id, version, last_updated, deleted, content, owner) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (*row[1:6], row[7], row[8]),
            )
        for row in index:
            tx.sql.execute(
                "INSERT INTO search_index (type, id, name, system, value, low, high, number) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                tuple(row),
            )
        if old.dialect.name == "postgresql":  # its BIGSERIAL numbered them, and counts on
            tx.sql.execute("SELECT setval('resource_version_seq_seq', (SELECT MAX(seq) FROM resource_version))")
    old.close()


def answers_after_a_write(store: Store, indexer: SearchIndexer, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """:func:`answers` once one more version of p2 is written: it must come first in history."""
    monkeypatch.setattr(resources, "now_instant", lambda: "2026-12-01T09:00:00.000000Z")
    with store.transaction() as tx:
        tx.resources.write(patient("p2", "110101194001010038", gender="male", active=False))
    return answers(store, indexer)


@pytest.mark.parametrize("backend", BACKENDS)
def test_every_answer_is_as_it_was_after_the_upgrade(
    backend: str, tmp_path: Path, indexer: SearchIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The upgrade from the previous layout keeps every read, vread, history (its order and
    paging bounds too), search and export answer, and a write after it comes last in history."""
    with (
        fresh_database_url(backend, tmp_path / "fresh") as fresh_url,
        fresh_database_url(backend, tmp_path / "old") as old_url,
    ):
        fresh = open_store(fresh_url, indexer.rows)
        try:
            monkeypatch.setattr(resources, "now_instant", clock())
            scenario(fresh)
            previous_layout(fresh, old_url, indexer)
            expected = answers_after_a_write(fresh, indexer, monkeypatch)
        finally:
            fresh.close()
        upgraded = open_store(old_url, indexer.rows)
        try:
            found = answers_after_a_write(upgraded, indexer, monkeypatch)
        finally:
            upgraded.close()
    assert found == expected
