"""How a measure's statements are planned on PostgreSQL: the look-up of the records naming
their person by number tests the few listed records on their own rows, never lists every match
of the criterion first; and a count, planned once for any values, reads no criterion's rows
again for every candidate."""

from __future__ import annotations

import json
import random
from typing import Any

import psycopg
import pytest

from bench.measures import person
from gateway.measures import evaluate
from gateway.measures.catalog import package_measures
from gateway.measures.evaluate import MeasureEvaluator, Period
from gateway.search.indexer import SearchIndexer
from gateway.search.query import parse_search
from gateway.storage.dialect import POSTGRES
from gateway.storage.measure_sql import Selection, named_matches_sql, tally_sql
from gateway.storage.search_sql import Sql
from gateway.storage.store import Store
from profiles.registry import Registry
from tests.gateway.test_access import generic_plan, rows_read

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


#: people of bench.measures' synthetic archive: enough that a criterion has many matches
PEOPLE = 200
#: the indexes a scan of ``search_index`` reads by a value (a code, a date range), not by owner
VALUE_INDEXES = ("search_index_value", "search_index_range")


def repeated_value_scans(node: dict[str, Any]) -> list[str]:
    """The scans of an executed plan (EXPLAIN ANALYZE, JSON) that read ``search_index`` by a
    value more than once: each is a criterion's rows walked again for every candidate."""
    here = [node["Index Name"]] if node.get("Index Name") in VALUE_INDEXES and node["Actual Loops"] > 1 else []
    return here + [scan for step in node.get("Plans", []) for scan in repeated_value_scans(step)]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_no_count_walks_a_criterions_rows_once_per_candidate(
    store: Store, indexer: SearchIndexer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every package measure's counts, planned once for any values as the store runs them
    (``generic_plan``).  Written as ``p.id IN (…)`` for each criterion, the generic plan, which
    guesses that a code matches a row or two, nested the 自理评估 criterion's value scan under
    every candidate person: 88 s for the 22 counts of 10,000 people, against 2.5 s with each
    criterion's subjects found once and intersected (``measure_sql._chosen_entries``)."""
    rng = random.Random(20261202)
    with store.transaction() as tx:
        for index in range(PEOPLE):
            for resource in person(rng, index):
                tx.resources.write(resource)
    counts: list[Sql] = []

    def counted(*args: Any, **kwargs: Any) -> Sql:
        counts.append(tally_sql(*args, **kwargs))
        return counts[-1]

    monkeypatch.setattr(evaluate, "tally_sql", counted)
    MeasureEvaluator(store, indexer.parameters).evaluate_all(package_measures(Registry()), Period.parse("2026"))
    assert [scan for sql, params in counts for scan in repeated_value_scans(generic_plan(store, sql, params))] == []
