"""The search SQL, run on a real database built from the migration DDL, on SQLite and PostgreSQL."""

from __future__ import annotations

import copy
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from gateway.search.indexer import SearchIndexer
from gateway.search.parameters import SearchParameters
from gateway.search.query import SearchQuery, parse_search
from gateway.storage import search_sql
from gateway.storage.dialect import POSTGRES, SQLITE
from gateway.storage.migrations import available, statements
from gateway.storage.search_sql import (
    common_value_sql,
    count_sql,
    include_sql,
    page_sql,
    revinclude_sql,
    with_common_value,
)
from profiles.registry import Registry
from tests.conftest import fresh_database_url, load_example

DIALECTS = {"sqlite": SQLITE, "postgresql": POSTGRES}
NOW = datetime(2026, 12, 1, tzinfo=UTC)
#: an is-a hierarchy of the package: community-health-center is a medical-institution
ORGANIZATION_TYPE = "http://fhir.yiyang.cn/CodeSystem/organization-type"
EXAMPLES = [
    "yy-patient/valid-zhang-xiuying.json",
    "yy-patient/valid-li-jianguo-minimal.json",
    "yy-organization/valid-yiyang-center.json",
    "yy-practitioner/valid-family-doctor.json",
    "yy-coverage/valid-employee-insurance.json",
    "yy-coverage/valid-long-term-care-insurance.json",
    "yy-encounter/valid-home-visit.json",
    "yy-encounter/valid-home-bed.json",
    "yy-observation-blood-glucose/valid-fasting-glucose.json",
    "yy-observation-blood-pressure/valid-blood-pressure.json",
]


def extra_resources() -> list[dict[str, Any]]:
    """Resources the examples lack: Latin names with case and accents, a month birth date, wildcards."""
    mueller = copy.deepcopy(load_example("yy-patient/valid-li-jianguo-minimal.json"))
    mueller |= {"id": "mueller", "name": [{"family": "Müller", "given": ["José"]}], "birthDate": "1950-03"}
    mueller["managingOrganization"] = {"reference": "Organization/jinshui-yiyang-center"}
    percent = copy.deepcopy(mueller) | {"id": "percent", "name": [{"family": "100%_Li"}], "birthDate": "1960"}
    episodes = [
        {"resourceType": "EpisodeOfCare", "id": episode, "status": "active", "period": period}
        for episode, period in (
            ("open-since-2025", {"start": "2025-09-01"}),
            ("open-since-2026", {"start": "2026-11-04"}),
            ("closed", {"start": "2026-01-01", "end": "2026-10-31"}),
        )
    ]
    organizations = [
        {
            "resourceType": "Organization",
            "id": organization,
            "type": [{"coding": [{"system": ORGANIZATION_TYPE, "code": code}]}],
        }
        for organization, code in (("centre", "community-health-center"), ("institution", "medical-institution"))
    ]
    return [mueller, percent, *episodes, *organizations]


class Database:
    """A connection with the migration applied, answering searches the way the store will."""

    def __init__(self, backend: str, connection: Any) -> None:
        self.backend = backend
        self.connection = connection
        self.parameters = SearchParameters(Registry())

    def execute(self, sql: str, params: list[Any]) -> Any:
        return self.connection.execute(DIALECTS[self.backend].sql(sql), params)

    def run(self, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
        return [tuple(row) for row in self.execute(sql, params).fetchall()]

    def plan(self, sql: str, params: list[Any]) -> str:
        """How the database would run ``sql`` (on PostgreSQL with sequential scans priced out:
        on tables this small it would otherwise scan them whatever indexes there are)."""
        if self.backend == "sqlite":
            return " ".join(str(row[-1]) for row in self.run(f"EXPLAIN QUERY PLAN {sql}", params))
        with self.connection.transaction():
            self.connection.execute("SET LOCAL enable_seqscan = off")
            return " ".join(str(row[0]) for row in self.run(f"EXPLAIN {sql}", params))

    def query(self, kind: str, *pairs: tuple[str, str]) -> SearchQuery:
        return parse_search(kind, list(pairs), self.parameters)

    def ids(self, kind: str, *pairs: tuple[str, str]) -> list[str]:
        return [row[1] for row in self.run(*page_sql(self.query(kind, *pairs), now=NOW))]

    def found(self, kind: str, *pairs: tuple[str, str]) -> set[str]:
        return set(self.ids(kind, *pairs))


def fill(database: Database, resources: list[dict[str, Any]]) -> None:
    indexer = SearchIndexer(Registry(), database.parameters)
    for day, resource in enumerate(resources, start=1):
        kind, rid = resource["resourceType"], resource["id"]
        updated = f"2026-11-{day:02d}T00:00:00.000000Z"
        database.execute(
            "INSERT INTO resource (type, id, version, last_updated, deleted, content, method) VALUES (?, ?, 1, ?, ?, ?, 'POST')",
            [kind, rid, updated, False, json.dumps(resource, ensure_ascii=False)],
        )
        for row in indexer.rows(resource):
            database.execute(
                "INSERT INTO search_index (type, id, name, system, value, low, high, number) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [kind, rid, *row],
            )
    # a deleted patient keeps its row (content NULL); stale index rows must not make it findable
    database.execute(
        "INSERT INTO resource (type, id, version, last_updated, deleted, content, method) VALUES (?, ?, 2, ?, ?, NULL, 'DELETE')",
        ["Patient", "gone", "2026-11-30T00:00:00.000000Z", True],
    )
    database.execute(
        "INSERT INTO search_index (type, id, name, value) VALUES ('Patient', 'gone', 'gender', 'female')", []
    )


def ddl(backend: str) -> list[str]:
    """The tables as the store's own migrations leave them, in the backend's dialect."""
    dialect = DIALECTS[backend]
    return [sql for _, path in available(backend) for sql in statements(dialect.ddl(path.read_text(encoding="utf-8")))]


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def db(request: pytest.FixtureRequest) -> Iterator[Database]:
    if request.param == "sqlite":
        connection = sqlite3.connect(":memory:")
        database = Database("sqlite", connection)
        for statement in ddl("sqlite"):
            connection.execute(statement)
        fill(database, [load_example(name) for name in EXAMPLES] + extra_resources())
        yield database
        connection.close()
        return
    import psycopg

    with fresh_database_url("postgresql", Path(".")) as url, psycopg.connect(url, autocommit=True) as connection:
        database = Database("postgresql", connection)
        for statement in ddl("postgresql"):
            connection.execute(statement)
        fill(database, [load_example(name) for name in EXAMPLES] + extra_resources())
        yield database


# -- tokens -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("key", "value", "found"),
    [
        ("type:below", f"{ORGANIZATION_TYPE}|medical-institution", {"centre", "institution"}),
        ("type:below", f"{ORGANIZATION_TYPE}|community-health-center", {"centre"}),
        ("type:above", f"{ORGANIZATION_TYPE}|community-health-center", {"centre", "institution"}),
        ("type:below", "medical-institution", {"institution"}),
    ],
)
def test_a_tokens_below_and_above_follow_the_code_systems_hierarchy(
    db: Database, key: str, value: str, found: set[str]
) -> None:
    """R4 search.html#token: ``:below`` and ``:above`` test subsumption; they were refused
    as unknown modifiers.  Without a system no hierarchy is named: the code itself."""
    assert db.found("Organization", (key, value)) == found


# -- strings ----------------------------------------------------------------------------------
def test_a_string_matches_the_start_of_a_name(db: Database) -> None:
    assert db.found("Patient", ("name", "张秀")) == {"zhang-xiuying"}


def test_a_string_match_ignores_case_and_accents(db: Database) -> None:
    assert db.found("Patient", ("name", "MULL")) == {"mueller"}


@pytest.mark.parametrize(
    "pairs",
    [
        [("phonetic", "张秀")],
        [("phonetic:exact", "Müller")],
        [("phonetic:contains", "秀英")],
        [("phonetic:missing", "false")],
        [("_sort", "-phonetic")],
    ],
)
def test_phonetic_reads_the_rows_of_name_its_expression_is(db: Database, pairs: list[tuple[str, str]]) -> None:
    as_name = [(key.replace("phonetic", "name"), value.replace("phonetic", "name")) for key, value in pairs]
    assert db.ids("Patient", *pairs) == db.ids("Patient", *as_name) != []


def test_a_chain_reads_each_target_types_own_rows_of_a_parameter(db: Database) -> None:
    """performer may be an Organization, whose phonetic writes rows of its own (its name is
    Organization.name | alias), or a Practitioner, whose phonetic reads name's rows."""
    practitioners = db.found("Observation", ("performer:Practitioner.name", "王"))
    assert db.found("Observation", ("performer.phonetic", "王")) == practitioners != set()


def test_name_finds_what_was_stored_before_a_parameter_of_its_expression_was_added(db: Database) -> None:
    """Which parameter kept the shared rows was the first code of all loaded: restarted with
    an ``--ig`` parameter ``full-name`` of ``Patient.name``, ``name`` read rows under that
    name, which no stored Patient had."""
    found = db.found("Patient", ("name", "张"))
    registry = Registry()
    full_name = {"code": "full-name", "base": ["Patient"], "type": "string", "expression": "Patient.name"}
    registry.add_resource({"resourceType": "SearchParameter", "url": "urn:test:full-name", **full_name}, "test")
    db.parameters = SearchParameters(registry)
    assert db.found("Patient", ("name", "张")) == found != set()


def test_contains_matches_inside_a_name(db: Database) -> None:
    assert db.found("Patient", ("name:contains", "秀英")) == {"zhang-xiuying"}


def test_exact_compares_case_and_accents(db: Database) -> None:
    assert (db.found("Patient", ("family:exact", "Müller")), db.found("Patient", ("family:exact", "muller"))) == (
        {"mueller"},
        set(),
    )


def test_like_wildcards_in_the_value_match_literally(db: Database) -> None:
    assert (db.found("Patient", ("family", "100%_")), db.found("Patient", ("family", "1_0"))) == ({"percent"}, set())


def test_commas_or_and_repeated_keys_and(db: Database) -> None:
    assert (
        db.found("Patient", ("name", "张,李")),
        db.found("Patient", ("name", "张,李"), ("gender", "male")),
    ) == ({"zhang-xiuying", "li-jianguo"}, {"li-jianguo"})


@pytest.mark.parametrize(
    "pairs",
    [
        [("name", "张"), ("birthdate", "1949")],
        [("gender", "male"), ("birthdate", "lt1950"), ("name", "李")],
        [("birthdate", "ge1900"), ("gender:not", "male")],
        [("birthdate", "ge1900"), ("telecom:missing", "true")],
        [("name", "李,张"), ("_id", "li-jianguo,zhang-xiuying,mueller")],
        [("name", "m"), ("_lastUpdated", "ge2026-11-01"), ("birthdate", "1950")],
    ],
)
def test_criteria_together_find_what_each_finds_alone(db: Database, pairs: list[tuple[str, str]]) -> None:
    """The narrowest criterion drives and the others are probed inside its subquery (or on the
    resource row, for _id and _lastUpdated): together they find the intersection."""
    alone = [db.found("Patient", pair) for pair in pairs]
    assert db.found("Patient", *pairs) == set.intersection(*alone)


# -- tokens -----------------------------------------------------------------------------------
def test_an_identifier_matches_by_system_and_value(db: Database) -> None:
    assert db.found("Patient", ("identifier", "urn:oid:2.16.156.10011.1.3|410105194912310020")) == {"zhang-xiuying"}


def test_an_identifier_value_under_another_system_does_not_match(db: Database) -> None:
    assert db.found("Patient", ("identifier", "urn:oid:2.16.156.10011.1.2|410105194912310020")) == set()


def test_a_system_alone_matches_every_code_of_it(db: Database) -> None:
    assert db.found("Coverage", ("type", "http://fhir.yiyang.cn/CodeSystem/nhsa-insutype|")) == {
        "nhsa-310-zhang",
        "nhsa-410-zhang",
    }


def test_bar_code_matches_only_values_without_system(db: Database) -> None:
    assert db.found("Patient", ("gender", "|female")) == {"zhang-xiuying"}


@pytest.mark.parametrize(
    ("value", "found"),
    [
        ("http://hl7.org/fhir/administrative-gender|female", {"zhang-xiuying"}),
        ("http://example.org/other-gender|female", set()),
    ],
)
def test_a_code_elements_own_system_may_be_named(db: Database, value: str, found: set[str]) -> None:
    """Patient.gender holds the bare code; naming its system matched nothing (search.html#token)."""
    assert db.found("Patient", ("gender", value)) == found


def test_not_excludes_the_code(db: Database) -> None:
    assert db.found("Patient", ("gender:not", "female")) == {"li-jianguo", "mueller", "percent"}


def test_the_provincial_subscriber_id_finds_both_coverages(db: Database) -> None:
    assert db.found("Coverage", ("subscriber-id", "41000000000000012345")) == {"nhsa-310-zhang", "nhsa-410-zhang"}


def test_missing_true_finds_resources_without_the_parameter(db: Database) -> None:
    assert db.found("Patient", ("address:missing", "true")) == {"li-jianguo", "mueller", "percent"}


def test_missing_false_finds_resources_with_the_parameter(db: Database) -> None:
    assert db.found("Patient", ("address:missing", "false")) == {"zhang-xiuying"}


def test_a_deleted_resource_is_never_found(db: Database) -> None:
    assert "gone" not in db.found("Patient", ("gender", "female"))


def test_id_matches_the_resource_id(db: Database) -> None:
    assert db.found("Patient", ("_id", "li-jianguo,nobody")) == {"li-jianguo"}


def test_an_id_named_with_a_system_matches_nothing(db: Database) -> None:
    """A resource id has no system: ``_id=sys|li-jianguo`` found li-jianguo, ``|li-jianguo`` still does."""
    assert (db.found("Patient", ("_id", "sys|li-jianguo")), db.found("Patient", ("_id", "|li-jianguo"))) == (
        set(),
        {"li-jianguo"},
    )


# -- dates ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1949", {"zhang-xiuying"}),
        ("eq1949-12-31", {"zhang-xiuying"}),
        ("1950", {"mueller"}),
        ("1950-03-15", set()),
        ("ne1950", {"zhang-xiuying", "li-jianguo", "percent"}),
        ("lt1949-12-31", {"li-jianguo"}),
        ("le1949-12-31", {"li-jianguo", "zhang-xiuying"}),
        ("gt1950-01", {"mueller", "percent"}),
        ("ge1950-03", {"mueller", "percent"}),
        ("sa1950-03", {"percent"}),
        ("eb1949-12-31", {"li-jianguo"}),
    ],
)
def test_date_prefixes_compare_ranges(db: Database, value: str, expected: set[str]) -> None:
    assert db.found("Patient", ("birthdate", value)) == expected


@pytest.mark.parametrize("value", ["lt1949-12-31", "gt1950", "1950", "ap1950"])
def test_a_date_criterion_can_use_the_index_of_dated_rows(db: Database, value: str) -> None:
    """search_index_range holds dated rows only (migration 0008): a date criterion must say
    it reads only those, or neither database may use the index."""
    assert "search_index_range" in db.plan(*page_sql(db.query("Patient", ("birthdate", value)), now=NOW))


def test_a_day_search_finds_an_encounter_within_that_day(db: Database) -> None:
    assert db.found("Encounter", ("date", "2026-11-01")) == {"home-visit-20261101"}


def test_an_open_period_is_after_any_date(db: Database) -> None:
    assert db.found("Encounter", ("date", "gt2030")) == {"home-bed-2026"}


def test_approximately_widens_the_range_by_a_tenth_of_the_gap_to_now(db: Database) -> None:
    # 1950 is 76 years before NOW: ap1950 reaches ±7.6 years, so 1949 and 1960 are near, 1938 is not
    assert db.found("Patient", ("birthdate", "ap1950")) == {"zhang-xiuying", "mueller"}


def test_last_updated_compares_the_resource_column(db: Database) -> None:
    assert db.found("Patient", ("_lastUpdated", "ge2026-11-11T00:00:00Z")) == {"mueller", "percent"}


# -- numbers and quantities ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "expected"),
    [("6.1", True), ("6.14", False), ("6", True), ("gt6", True), ("lt6.1", False), ("ap6.5", True), ("ne6.1", False)],
)
def test_quantity_compares_with_the_precision_given(db: Database, value: str, expected: bool) -> None:
    assert ("glucose-2026" in db.found("Observation", ("value-quantity", value))) is expected


def test_quantity_with_units_checks_the_code(db: Database) -> None:
    assert db.found("Observation", ("value-quantity", "6.1|http://unitsofmeasure.org|mg/dL")) == set()


def test_a_repeated_component_quantity_is_searchable(db: Database) -> None:
    assert db.found("Observation", ("component-value-quantity", "gt140")) == {"bp-2026"}


# -- uris -------------------------------------------------------------------------------------
def test_a_uri_below_a_prefix_compares_its_path_with_case(db: Database) -> None:
    """A URI's path is case-sensitive (R4: a uri matches precisely): SQLite's LIKE ignores
    ASCII case, so there ``StructureDefinition`` found profiles under ``structuredefinition``
    where PostgreSQL found none."""
    assert db.found("Patient", ("_profile:below", "http://fhir.yiyang.cn/structuredefinition")) == set()


# -- references and chains --------------------------------------------------------------------
def test_a_reference_matches_type_and_id(db: Database) -> None:
    assert db.found("Encounter", ("subject", "Patient/zhang-xiuying")) == {"home-visit-20261101", "home-bed-2026"}


def test_a_bare_id_matches_a_reference_of_any_type(db: Database) -> None:
    assert db.found("Coverage", ("beneficiary", "zhang-xiuying")) == {"nhsa-310-zhang", "nhsa-410-zhang"}


def test_a_chain_searches_the_referenced_resource(db: Database) -> None:
    assert db.found("Encounter", ("subject:Patient.name", "张秀英"), ("date", "2026-11-01")) == {"home-visit-20261101"}


def test_a_chain_on_an_identifier_finds_coverages_of_a_person(db: Database) -> None:
    pairs = ("beneficiary.identifier", "urn:oid:2.16.156.10011.1.3|410105194912310020")
    assert db.found("Coverage", pairs) == {"nhsa-310-zhang", "nhsa-410-zhang"}


def test_a_chain_that_matches_no_target_finds_nothing(db: Database) -> None:
    assert db.found("Encounter", ("subject:Patient.name", "李")) == set()


# -- paging and sorting ------------------------------------------------------------------------
def test_results_without_sort_are_ordered_by_id(db: Database) -> None:
    assert db.ids("Patient") == ["li-jianguo", "mueller", "percent", "zhang-xiuying"]


def test_sort_by_date_descending_puts_the_latest_first(db: Database) -> None:
    assert db.ids("Patient", ("_sort", "-birthdate")) == ["percent", "mueller", "zhang-xiuying", "li-jianguo"]


def test_a_descending_date_sort_puts_open_periods_first_newest_start_first(db: Database) -> None:
    """Periods open alike tied, and came in id order: one begun in 2025 before one of 2026."""
    assert db.ids("EpisodeOfCare", ("_sort", "-date")) == ["open-since-2026", "open-since-2025", "closed"]


def test_resources_without_the_sort_value_come_last(db: Database) -> None:
    assert db.ids("Patient", ("_sort", "address-city"))[0] == "zhang-xiuying"


def test_sort_by_last_updated_descending(db: Database) -> None:
    assert db.ids("Patient", ("_sort", "-_lastUpdated"))[0] == "percent"


def test_count_and_offset_page_through_results(db: Database) -> None:
    assert db.ids("Patient", ("_count", "2"), ("_offset", "1")) == ["mueller", "percent"]


def test_count_sql_counts_every_match(db: Database) -> None:
    assert db.run(*count_sql(db.query("Patient", ("gender", "male")), now=NOW)) == [(3,)]


@pytest.mark.parametrize("pairs", [[("gender", "male")], [("gender", "male"), ("birthdate", "lt1955")]])
def test_pages_of_one_value_follow_id_order(db: Database, pairs: list[tuple[str, str]]) -> None:
    """A search driven by one value finds its page's ids in the index (see page_sql): page by
    page it must hand over the same matches, in the same order, as one page of all."""
    paged = [i for offset in range(4) for i in db.ids("Patient", *pairs, ("_count", "1"), ("_offset", str(offset)))]
    assert paged == sorted(db.found("Patient", *pairs))


@pytest.mark.parametrize("db", ["sqlite"], indirect=True)
def test_a_page_of_one_value_reads_its_ids_from_the_value_index(db: Database) -> None:
    """SQLite alone: PostgreSQL prices a table of a dozen rows unlike a real one (on the
    benchmark's store of 300,000 resources it reads the value index, see docs/benchmarks.md)."""
    assert "search_index_value" in db.plan(*page_sql(db.query("Patient", ("gender", "male")), now=NOW))


# -- includes --------------------------------------------------------------------------------
def test_include_fetches_the_referenced_resources(db: Database) -> None:
    query = db.query("Encounter", ("_include", "Encounter:subject"), ("_include", "Encounter:practitioner"))
    sql = include_sql(query.include, [("Encounter", "home-visit-20261101")])
    assert sql is not None
    assert {row[1] for row in db.run(*sql)} == {"zhang-xiuying", "wang-fang"}


def test_included_resources_come_in_type_and_id_order_on_both_databases(db: Database) -> None:
    """Each database had its own order: the same search answered differently."""
    query = db.query("Encounter", ("_include", "Encounter:*"))
    sql = include_sql(query.include, [("Encounter", "home-visit-20261101")])
    assert sql is not None
    found = [(row[0], row[1]) for row in db.run(*sql)]
    assert found == sorted(found)


def test_include_with_a_target_type_fetches_only_that_type(db: Database) -> None:
    query = db.query("Encounter", ("_include", "Encounter:*:Practitioner"))
    sql = include_sql(query.include, [("Encounter", "home-visit-20261101")])
    assert sql is not None
    assert {row[1] for row in db.run(*sql)} == {"wang-fang"}


def test_revinclude_fetches_the_resources_that_refer_to_the_page(db: Database) -> None:
    query = db.query("Patient", ("_revinclude", "Coverage:beneficiary"))
    sql = revinclude_sql(query.revinclude, [("Patient", "zhang-xiuying"), ("Patient", "li-jianguo")])
    assert sql is not None
    assert {row[1] for row in db.run(*sql)} == {"nhsa-310-zhang", "nhsa-410-zhang"}


def test_nothing_to_include_gives_no_statement(db: Database) -> None:
    assert include_sql(db.query("Encounter", ("_include", "Encounter:subject")).include, []) is None


def test_the_rows_of_a_driving_value_are_counted_up_to_the_limit(db: Database, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(search_sql, "COMMON_VALUE_ROWS", 1)
    statement = common_value_sql(db.query("Patient", ("gender", "female"), ("name", "张")))
    assert statement is not None and db.run(*statement) == [(1,)]


def test_a_value_driving_alone_is_not_counted_first(db: Database) -> None:
    assert common_value_sql(db.query("Patient", ("gender", "female"))) is None


def test_a_common_value_still_filters_what_the_other_criterion_finds(db: Database) -> None:
    marked = with_common_value(db.query("Patient", ("gender", "female"), ("name", "张,李")))
    assert {row[1] for row in db.run(*page_sql(marked, now=NOW))} == {"zhang-xiuying"}


def test_a_common_value_gives_the_drive_to_another_criterion(db: Database) -> None:
    marked = with_common_value(db.query("Patient", ("gender", "male"), ("name", "李")))
    assert common_value_sql(marked) is None  # the name drives now, and it is no single value
