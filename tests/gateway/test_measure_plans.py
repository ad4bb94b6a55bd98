"""How a measure's look-up of the records naming their person by number is planned on
PostgreSQL: it tests the few listed records on their own rows, never lists every match of the
criterion first."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from gateway.search.indexer import SearchIndexer
from gateway.search.query import parse_search
from gateway.storage.dialect import POSTGRES
from gateway.storage.measure_sql import Selection, named_matches_sql
from gateway.storage.store import Store
from tests.gateway.test_access import rows_read

CS = "http://fhir.yiyang.cn/CodeSystem"
#: 中医体质辨识 naming their person by reference: the criterion's other matches
BY_REFERENCE = 3_000


def _reading(oid: str, subject: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": oid,
        "status": "final",
        "code": {"coding": [{"system": f"{CS}/tcm-constitution", "code": "qixu"}]},
        "subject": subject,
        "effectiveDateTime": "2026-07-01",
    }


def executed_plan(store: Store, sql: str, params: list[Any]) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) of a statement sent as the store sends one
    marked ``PLANNED_PER_CALL``: its values in its text, planned for them."""
    with store.transaction() as tx:
        connection = tx.sql.connection  # type: ignore[attr-defined]
        connection.execute("ANALYZE resource, search_index, person_key", prepare=False)
        text = psycopg.ClientCursor(connection).mogrify(POSTGRES.sql(sql), params)
        explained = connection.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {text}", prepare=False).fetchone()[0]
    return json.loads(explained)[0]["Plan"] if isinstance(explained, str) else explained[0]["Plan"]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_records_named_by_number_are_tested_on_their_own_rows(store: Store, indexer: SearchIndexer) -> None:
    """One reading names its person by 身份证号 among 3,000 the criterion matches.  Joined to
    every match of the criterion, the test read them all (and a plan for any values walked
    the list once per match: 2.6 s for 800 listed among 5,000 matches)."""
    with store.transaction() as tx:
        for number in range(BY_REFERENCE):
            tx.resources.write(_reading(f"r{number}", {"reference": f"Patient/p{number}"}))
        tx.resources.write(
            _reading("by-number", {"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": "1"}})
        )
    query = parse_search(
        "Observation", [("code", f"{CS}/tcm-constitution|qixu"), ("date", "gt2025-12-31")], indexer.parameters
    )
    sql, params = named_matches_sql(Selection(query, "subject"), ["by-number"])
    assert rows_read(executed_plan(store, sql, params)) < 100
