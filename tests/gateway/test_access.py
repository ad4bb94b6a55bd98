"""Who may see whom, on a store of each backend: an elderly-care platform sees only the people
it serves (a stay, a 医养签约, a family-doctor contract or a Consent permitting it, and no
Consent refusing it) and what is theirs; a client writes only for its own organisation and
those under it."""

from __future__ import annotations

import contextlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import psycopg
import pytest

from gateway.fhir import history, operations
from gateway.fhir.archive_references import localise
from gateway.fhir.bulk_export import BulkExports
from gateway.fhir.errors import FhirError
from gateway.fhir.history import HistoryRequest, history_bundle
from gateway.fhir.search import Searcher
from gateway.search.indexer import SearchIndexer
from gateway.search.query import parse_search
from gateway.security.access import FEW_PEOPLE, Access, PersonalData, foreign_owners
from gateway.security.principal import Principal, acting
from gateway.storage import search_sql
from gateway.storage.access_sql import person_served, served_patients, serves
from gateway.storage.dialect import PLANNED_PER_CALL, POSTGRES
from gateway.storage.resources import now_instant
from gateway.storage.search_sql import few_candidates_sql
from gateway.storage.store import Store, Stored, Transaction
from profiles.registry import Registry
from tests.conftest import MakeServices

PERSONAL = PersonalData(Registry())
COMPARTMENT = PERSONAL.compartment
SEARCHER = Searcher(SearchIndexer(Registry()).parameters, 50, 1000)
HOME = Principal("home-platform", "yikang-home", frozenset({"system/*.rs"}), "elderly-care")
OTHER_HOME = Principal("other-platform", "other-home", frozenset({"system/*.rs"}), "elderly-care")
HOSPITAL = Principal("his", "city-hospital", frozenset({"system/*.cruds"}), "hospital")


def ref(kind: str, resource_id: str) -> dict[str, str]:
    return {"reference": f"{kind}/{resource_id}"}


def consent(resource_id: str, patient: str, kind: str, organization: str | None) -> dict[str, Any]:
    provision: dict[str, Any] = {"type": kind}
    if organization:
        provision["actor"] = [{"reference": ref("Organization", organization)}]
    return {"resourceType": "Consent", "id": resource_id, "status": "active", "patient": ref("Patient", patient)} | {
        "provision": provision
    }


def code(value: str) -> dict[str, str]:
    """An organisation's 定点医药机构编号."""
    return {"system": "http://fhir.yiyang.cn/sid/nhsa-fixmedins-code", "value": value}


@pytest.fixture
def archive(store: Store) -> Store:
    """Two residents: 王 lives in yikang-home (an active stay), 李 in no home; each has an
    Observation; two organisations and a ward of the hospital."""
    resources = [
        {"resourceType": "Organization", "id": "yikang-home", "identifier": [code("Y0001")]},
        {"resourceType": "Organization", "id": "other-home"},
        {"resourceType": "Organization", "id": "city-hospital"},
        {
            "resourceType": "Organization",
            "id": "geriatric-ward",
            "identifier": [code("W0001")],
            "partOf": ref("Organization", "city-hospital"),
        },
        {"resourceType": "Patient", "id": "wang"},
        {"resourceType": "Patient", "id": "li"},
        {
            "resourceType": "Encounter",
            "id": "wang-stay",
            "status": "in-progress",
            "class": {"code": "HH"},
            "subject": ref("Patient", "wang"),
            "serviceProvider": ref("Organization", "yikang-home"),
        },
        {
            "resourceType": "Observation",
            "id": "wang-bp",
            "status": "final",
            "code": {},
            "subject": ref("Patient", "wang"),
        },
        {"resourceType": "Observation", "id": "li-bp", "status": "final", "code": {}, "subject": ref("Patient", "li")},
    ]
    add(store, *resources)
    return store


def add(store: Store, *resources: dict[str, Any]) -> None:
    with store.transaction() as tx:
        for resource in resources:
            tx.resources.write(resource)


def found(store: Store, principal: Principal, kind: str, *pairs: tuple[str, str]) -> list[str]:
    query = parse_search(kind, list(pairs), SearchIndexer(Registry()).parameters)
    rules = Access(principal, PERSONAL)
    with store.reading() as tx:
        return sorted(s.id for s in tx.resources.search(query, restriction=rules.condition(kind))[0])


def test_a_home_sees_the_resident_of_its_active_stay_only(archive: Store) -> None:
    assert found(archive, HOME, "Patient") == ["wang"]


def test_a_home_sees_only_its_residents_observations(archive: Store) -> None:
    assert found(archive, HOME, "Observation") == ["wang-bp"]


def test_a_homes_sorted_search_followed_page_by_page_lists_each_resident_once(archive: Store) -> None:
    """Pages of one in birth date order, each past the last shown (``_after``): the rule that
    keeps the home to its residents holds on every page, whose sort values are read apart.
    王 (the archive's) has no birth date and comes last; 李, born first, is no resident."""
    for person, born in (("zhou", "1941-02-03"), ("sun", "1939-05-06")):
        stay = {"resourceType": "Encounter", "id": f"{person}-stay", "status": "in-progress", "class": {"code": "HH"}}
        provider = ref("Organization", "yikang-home")
        add(archive, {"resourceType": "Patient", "id": person, "birthDate": born})
        add(archive, {**stay, "subject": ref("Patient", person), "serviceProvider": provider})
    add(archive, {"resourceType": "Patient", "id": "li", "birthDate": "1930-01-01"})
    query = parse_search("Patient", [("_sort", "birthdate"), ("_count", "1")], SearchIndexer(Registry()).parameters)
    restriction = Access(HOME, PERSONAL).condition("Patient")
    listed: list[str] = []
    with archive.reading() as tx:
        while (page := tx.resources.page(query, restriction=restriction)).matches:
            listed += [match.id for match in page.matches]
            query = replace(query, after=page.keys[-1])
    assert listed == ["sun", "zhou", "wang"]


def test_a_version_naming_its_resident_by_a_versioned_reference_is_theirs(archive: Store) -> None:
    """Patient/wang/_history/1 names 王, as the search index has it."""
    reading = {"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/wang/_history/1"}}
    rules = Access(HOME, PERSONAL)
    with archive.reading() as tx:
        assert (
            rules.unserved_people(tx, reading),
            rules.version_visible(tx, Stored("Observation", "o", 1, "", False, reading)),
        ) == ([], True)


def test_a_version_naming_someone_else_is_not_theirs(archive: Store) -> None:
    reading = {"resourceType": "Observation", "id": "o", "subject": {"reference": "Patient/li"}}
    with archive.reading() as tx:
        assert Access(HOME, PERSONAL).version_visible(tx, Stored("Observation", "o", 1, "", False, reading)) is False


@pytest.mark.parametrize(
    ("subject", "unserved"),
    [
        (
            {"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": "41010219460315001X"}},
            ["urn:oid:2.16.156.10011.1.3|410102********001X"],
        ),
        ({"type": "Patient", "identifier": {"system": "urn:example:mrn", "value": "M-1"}}, ["urn:example:mrn|M-1"]),
        ({"reference": "#p"}, ["#p"]),
    ],
)
def test_a_write_naming_someone_by_number_alone_is_judged_as_by_reference(
    archive: Store, subject: dict[str, Any], unserved: list[str]
) -> None:
    """A stay whose subject was a 身份证号 (or a contained Patient) went in for anyone: only
    Patient/id references were judged."""
    stay = {"resourceType": "Encounter", "subject": subject}
    if subject.get("reference") == "#p":
        stay["contained"] = [
            {"resourceType": "Patient", "id": "p", "identifier": [{"system": "urn:example:mrn", "value": "M-2"}]}
        ]
    with archive.reading() as tx:
        assert Access(HOME, PERSONAL).unserved_people(tx, stay) == unserved


def test_a_write_naming_by_number_someone_the_archive_holds_does_not_say_who(archive: Store) -> None:
    """The refusal named the holder's record (Patient/li), which told the client that the number
    is in the archive, and whose it is: it names the number, as for one no one holds."""
    number = "41010219460315001X"
    with archive.transaction() as tx:
        tx.identity.link("li", [f"idcard|{number}"])
    stay = {
        "resourceType": "Encounter",
        "subject": {"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": number}},
    }
    with archive.reading() as tx:
        assert Access(HOME, PERSONAL).unserved_people(tx, stay) == ["urn:oid:2.16.156.10011.1.3|410102********001X"]


def test_a_home_serving_no_one_sees_no_one(archive: Store) -> None:
    assert found(archive, OTHER_HOME, "Patient") == []


def test_organisations_are_no_ones_personal_data_and_stay_visible(archive: Store) -> None:
    assert "yikang-home" in found(archive, OTHER_HOME, "Organization")


def test_a_hospital_is_not_restricted_to_people_it_serves(archive: Store) -> None:
    assert found(archive, HOSPITAL, "Patient") == ["li", "wang"]


def test_a_consent_permitting_a_home_lets_it_see_the_person(archive: Store) -> None:
    add(archive, consent("li-permit", "li", "permit", "other-home"))
    assert found(archive, OTHER_HOME, "Patient") == ["li"]


def test_a_consent_refusing_the_home_hides_its_own_resident(archive: Store) -> None:
    add(archive, consent("wang-deny", "wang", "deny", "yikang-home"))
    assert found(archive, HOME, "Observation") == []


def test_a_refusal_naming_no_organisation_applies_to_every_home(archive: Store) -> None:
    add(archive, consent("wang-deny-all", "wang", "deny", None))
    assert found(archive, HOME, "Patient") == []


def test_a_permit_whose_period_has_ended_no_longer_serves(archive: Store) -> None:
    lapsed = consent("li-permit-2020", "li", "permit", "other-home")
    lapsed["provision"]["period"] = {"start": "2020-01-01", "end": "2020-12-31"}
    add(archive, lapsed)
    assert found(archive, OTHER_HOME, "Patient") == []


def test_a_permit_with_an_open_ended_period_serves(archive: Store) -> None:
    current = consent("li-permit-since-2020", "li", "permit", "other-home")
    current["provision"]["period"] = {"start": "2020-01-01"}
    add(archive, current)
    assert found(archive, OTHER_HOME, "Patient") == ["li"]


def test_a_refusal_that_starts_next_century_does_not_hide_yet(archive: Store) -> None:
    future = consent("wang-deny-2100", "wang", "deny", "yikang-home")
    future["provision"]["period"] = {"start": "2100-01-01"}
    add(archive, future)
    assert found(archive, HOME, "Patient") == ["wang"]


def test_a_finished_stay_no_longer_serves(archive: Store) -> None:
    with archive.reading() as tx:
        stay = tx.resources.read("Encounter", "wang-stay").content
    add(archive, {**stay, "status": "finished"})
    assert found(archive, HOME, "Patient") == []


def test_a_forbidden_resource_is_not_counted(archive: Store) -> None:
    query = parse_search("Observation", [], SearchIndexer(Registry()).parameters)
    with archive.reading() as tx:
        total = tx.resources.count(query, Access(OTHER_HOME, PERSONAL).condition("Observation"))
    assert total == 0


def test_a_hospital_writes_for_a_ward_under_it(archive: Store) -> None:
    encounter = {"resourceType": "Encounter", "id": "e", "serviceProvider": ref("Organization", "geriatric-ward")}
    with archive.reading() as tx:
        assert foreign_owners(tx, HOSPITAL, encounter) == []


def test_a_hospital_may_not_write_for_another_organisation(archive: Store) -> None:
    encounter = {"resourceType": "Encounter", "id": "e", "serviceProvider": ref("Organization", "yikang-home")}
    with archive.reading() as tx:
        assert foreign_owners(tx, HOSPITAL, encounter) == ["yikang-home"]


@pytest.mark.parametrize(("named", "foreign"), [("W0001", []), ("Y0001", ["yikang-home"]), ("Z9999", [])])
def test_an_owner_named_by_identifier_alone_is_the_organisation_holding_it(
    archive: Store, named: str, foreign: list[str]
) -> None:
    """The HL7 v2 adapter names a hospital by its code (MSH-4): a hospital sending another
    one's code wrote for it.  A code no Organization of the archive holds names none of them."""
    encounter = {"resourceType": "Encounter", "id": "e", "serviceProvider": {"identifier": code(named)}}
    with archive.reading() as tx:
        assert foreign_owners(tx, HOSPITAL, encounter) == foreign


@pytest.fixture
def acting_as_home() -> Iterator[None]:
    token = acting.set(HOME)
    yield
    acting.reset(token)


def test_a_home_may_not_export_the_whole_archive(
    archive: Store, tmp_path: Path, acting_as_home: None, searcher: Searcher
) -> None:
    exports = BulkExports(archive, PERSONAL, frozenset(COMPARTMENT), tmp_path, 3600, searcher=searcher)
    with pytest.raises(FhirError) as refused:
        exports.kick_off("http://x/fhir/$export", "system", [])
    assert refused.value.status == 403


def test_a_homes_patient_export_holds_only_its_residents(
    archive: Store, tmp_path: Path, acting_as_home: None, searcher: Searcher
) -> None:
    exports = BulkExports(archive, PERSONAL, frozenset(COMPARTMENT), tmp_path, 3600, searcher=searcher)
    job = exports.kick_off("http://x/fhir/Patient/$export", "Patient", [("_type", "Patient")])
    exports.run(job.id)
    lines = (tmp_path / job.id / "Patient.ndjson").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["id"] for line in lines] == ["wang"]


def test_a_home_naming_someone_it_does_not_serve_is_answered_as_for_no_one(
    archive: Store, tmp_path: Path, acting_as_home: None, searcher: Searcher
) -> None:
    """李 lives in no home: a 403 for him beside a 404 for someone unknown would tell the home
    that he is in the archive."""
    exports = BulkExports(archive, PERSONAL, frozenset(COMPARTMENT), tmp_path, 3600, searcher=searcher)
    refusals = []
    for person in ("li", "no-such-person"):
        with pytest.raises(FhirError) as refused:
            exports.kick_off("http://x/fhir/Patient/$export", "Patient", [("patient", f"Patient/{person}")])
        refusals.append((refused.value.status, refused.value.message_id, refused.value.expression))
    assert refusals == [(404, "http.not-found", "patient")] * 2


WANG_NUMBER, LI_NUMBER, NO_ONES_NUMBER = "410105194912310020", "440524193801010019", "440524193801010035"


def by_number(number: str) -> dict[str, Any]:
    """A Reference naming a person by 身份证号 alone."""
    return {"identifier": {"system": "urn:oid:2.16.156.10011.1.3", "value": number}}


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ({"resourceType": "Observation", "status": "final", "code": {}, "subject": ref("Patient", "wang")}, True),
        ({"resourceType": "Observation", "status": "final", "code": {}, "subject": ref("Patient", "li")}, False),
        ({"resourceType": "Flag", "subject": ref("Patient", "wang"), "author": ref("Patient", "li")}, False),
        ({"resourceType": "Observation", "status": "final", "code": {}, "subject": ref("Group", "g")}, False),
        ({"resourceType": "Binary", "contentType": "text/plain"}, False),
        ({"resourceType": "Patient", "id": "wang"}, True),
        ({"resourceType": "Organization", "id": "yikang-home"}, True),
        ({"resourceType": "Flag", "subject": ref("Patient", "wang"), "author": by_number(WANG_NUMBER)}, True),
        ({"resourceType": "Flag", "subject": ref("Patient", "wang"), "author": by_number(LI_NUMBER)}, False),
        ({"resourceType": "Flag", "subject": ref("Patient", "wang"), "author": by_number(NO_ONES_NUMBER)}, False),
        # in the compartment by number alone (Flag's ``patient`` is its subject narrowed to Patients)
        ({"resourceType": "Flag", "subject": by_number(WANG_NUMBER)}, True),
        ({"resourceType": "Flag", "subject": by_number(LI_NUMBER)}, False),
        ({"resourceType": "Flag", "subject": by_number(NO_ONES_NUMBER)}, False),
    ],
)
def test_content_concerns_only_the_served_as_the_sql_rule_has_it(resource: dict[str, Any], expected: bool) -> None:
    """What an export line is judged by: the same rule as a read, applied to content; a person
    named by number alone is whoever holds the number (no one: not someone served)."""
    holders = {f"idcard|{WANG_NUMBER}": "wang", f"idcard|{LI_NUMBER}": "li"}
    assert PERSONAL.concerns_only(resource, {"wang"}.__contains__, holders.get) is expected


@pytest.mark.parametrize(
    "subject",
    [
        "HTTP://localhost:8080/fhir/Patient/li",
        "http://elsewhere.example/fhir/Patient/li/_history/2",
        "Patient/li",
        "Patient/li/x/y",
        "Patient/li//",
    ],
)
def test_a_write_naming_someone_unserved_in_any_spelling_names_them(archive: Store, subject: str) -> None:
    stay = {"resourceType": "Encounter", "subject": {"reference": subject}}
    with archive.reading() as tx:
        assert Access(HOME, PERSONAL).unserved_people(tx, stay) == ["Patient/li"]


#: what each scenario adds to the archive: a permit, refusals, a lapsed permit, a finished stay
SCENARIOS = {
    "as-is": [],
    "permit": [consent("li-permit", "li", "permit", "other-home")],
    "refusal": [consent("wang-deny", "wang", "deny", "yikang-home")],
    "refusal-of-all": [consent("wang-deny-all", "wang", "deny", None)],
    "lapsed-permit": [
        consent("li-permit-2020", "li", "permit", "other-home")
        | {"provision": {"type": "permit", "period": {"start": "2020-01-01", "end": "2020-12-31"}}}
    ],
    "finished-stay": [
        {
            "resourceType": "Encounter",
            "id": "wang-stay",
            "status": "finished",
            "class": {"code": "HH"},
            "subject": ref("Patient", "wang"),
            "serviceProvider": ref("Organization", "yikang-home"),
        }
    ],
    "signed": [  # a 医养签约 of 李 with the other home
        {"resourceType": "CarePlan", "id": "li-signed", "status": "active", "intent": "plan"}
        | {"subject": ref("Patient", "li"), "author": ref("Organization", "other-home")}
    ],
    "contract": [  # a family-doctor contract of 李 whose team the other home manages
        {"resourceType": "CareTeam", "id": "other-team", "managingOrganization": [ref("Organization", "other-home")]},
        {"resourceType": "CarePlan", "id": "li-contract", "status": "active", "intent": "plan"}
        | {"subject": ref("Patient", "li"), "careTeam": [ref("CareTeam", "other-team")]},
    ],
}


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("principal", [HOME, OTHER_HOME], ids=["home", "other-home"])
def test_each_candidate_checked_alone_is_visible_as_among_everyone_served(
    archive: Store, scenario: str, principal: Principal
) -> None:
    """A statement with few candidates judges each by its own people's records
    (``Access.condition(few=True)``): the same rule as listing everyone served."""
    add(archive, *SCENARIOS[scenario])
    rules = Access(principal, PERSONAL)
    kinds = ("Patient", "Observation", "Encounter", "Consent")
    with archive.reading() as tx:
        alone = {
            kind: sorted(s.id for s in tx.resources.search(everything(kind), False, rules.condition(kind, few=True))[0])
            for kind in kinds
        }
    assert alone == {kind: found(archive, principal, kind) for kind in kinds}


def everything(kind: str) -> Any:
    return parse_search(kind, [], SearchIndexer(Registry()).parameters)


def flag(resource_id: str, **named: dict[str, str]) -> dict[str, Any]:
    return {"resourceType": "Flag", "id": resource_id, "status": "active", "code": {}} | named


@pytest.mark.parametrize(
    ("target", "shown", "shown_alone"),
    [
        (flag("t", subject=ref("Patient", "wang")), True, True),
        (flag("t", subject=ref("Patient", "li")), False, False),
        (flag("t", subject=ref("Patient", "wang"), author=ref("Patient", "li")), False, False),
        (flag("t", subject=by_number(WANG_NUMBER)), True, True),  # in her compartment by number alone
        (flag("t", subject=by_number(LI_NUMBER)), False, False),
        (flag("t", subject=by_number(NO_ONES_NUMBER)), False, False),
        (flag("t", subject=ref("Patient", "wang"), author=by_number(WANG_NUMBER)), True, True),
        (flag("t", subject=ref("Patient", "wang"), author=by_number(LI_NUMBER)), False, False),
        (flag("t", subject=ref("Patient", "wang"), author=by_number(NO_ONES_NUMBER)), False, False),
        (flag("t", subject=ref("Group", "g")), False, False),  # in no one's compartment
        # never stored: its id tells nothing about anyone, and places nothing anywhere
        (None, True, False),
        # no one's personal data, nor anyone's record to place it among
        ({"resourceType": "Organization", "id": "t"}, True, False),
    ],
)
@pytest.mark.parametrize("alone", [False, True], ids=["with-her", "alone"])
def test_a_record_naming_another_is_shown_as_the_content_rule_shows_it(
    archive: Store, target: dict[str, Any] | None, shown: bool, shown_alone: bool, alone: bool
) -> None:
    """A Provenance of 王's naming another record (``PersonalData.through``) is shown where
    that record is, by id or by number, the same in SQL (each candidate alone, and among
    everyone served) as on content: the people each target names are asked about together.
    One of that record ``alone``, naming no Patient, is placed among her records by it
    (``PersonalData.placing``) when the archive holds it, and judged the same way."""
    kind = target["resourceType"] if target else "Flag"
    provenance = {"resourceType": "Provenance", "id": "prov", "recorded": "2026-01-05T09:00:00+08:00"} | {
        "target": [*([] if alone else [ref("Patient", "wang")]), ref(kind, "t")],
        "agent": [{"who": ref("Organization", "yikang-home")}],
    }
    add(archive, *([target] if target else []), provenance)
    with archive.transaction() as tx:
        tx.identity.link("wang", [f"idcard|{WANG_NUMBER}"])
        tx.identity.link("li", [f"idcard|{LI_NUMBER}"])
    rules = Access(HOME, PERSONAL)
    with archive.reading() as tx:
        one = [
            s.id for s in tx.resources.search(everything("Provenance"), False, rules.condition("Provenance", True))[0]
        ]
        holders = {f"idcard|{WANG_NUMBER}": "wang", f"idcard|{LI_NUMBER}": "li"}
        on_content = PERSONAL.concerns_only(provenance, {"wang"}.__contains__, holders.get, tx.resources.read)
    expected = shown_alone if alone else shown
    assert (one, found(archive, HOME, "Provenance"), on_content) == (["prov"] * expected, ["prov"] * expected, expected)


def test_a_provenance_of_a_deleted_record_alone_is_not_shown(archive: Store) -> None:
    """Whose a deleted record was, the index no longer tells: it places the Provenance among
    no one's records it could be shown in, in SQL as on content."""
    provenance = {"resourceType": "Provenance", "id": "prov", "recorded": "2026-01-05T09:00:00+08:00"} | {
        "target": [ref("Observation", "wang-bp")],
        "agent": [{"who": ref("Organization", "yikang-home")}],
    }
    add(archive, provenance)
    with archive.transaction() as tx:
        tx.resources.delete("Observation", "wang-bp")
    rules = Access(HOME, PERSONAL)
    with archive.reading() as tx:
        one = tx.resources.search(everything("Provenance"), False, rules.condition("Provenance", True))[0]
        on_content = PERSONAL.concerns_only(provenance, {"wang"}.__contains__, {}.get, tx.resources.read)
    assert (one, found(archive, HOME, "Provenance"), on_content) == ([], [], False)


def test_whom_a_record_places_in_a_compartment_is_among_those_it_names() -> None:
    """What lets the rule ask the served people's rule once a record: a compartment parameter
    is one naming people, so whoever places a record in someone's compartment is asked about
    as everyone it names is (``access_sql._in_served_compartment``)."""
    assert {
        kind: params
        for kind, params in COMPARTMENT.items()
        if kind != "Patient" and not set(params) <= set(PERSONAL.references.get(kind, ()))
    } == {}


@pytest.mark.parametrize(("kind", "records"), [("Patient", 1), ("Coverage", 1), ("CarePlan", 2), ("Provenance", 2)])
def test_a_candidate_asks_whether_people_are_served_once_a_record(kind: str, records: int) -> None:
    """The served people's rule is written once for the candidate and once for the records it
    names (``PersonalData.through``): PostgreSQL plans these statements for each call's
    values, each copy anew, and six copies doubled a home's CarePlan search there."""
    sql = (Access(HOME, PERSONAL).condition(kind, few=True) or ("", []))[0]
    asked = serves(HOME.organization, now_instant())("x.person")[0]
    refusals = asked.count("c.name = 'patient'")  # its permits and its refusals: Consents of the person
    assert sql.count("c.name = 'patient'") == refusals * records


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # the plan is SQLite's
@pytest.mark.parametrize("kind", ["Patient", "Observation"])
def test_judging_one_resource_does_not_list_everyone_served(archive: Store, kind: str) -> None:
    """Whether a home may see one record (a read, an included resource) was asked as
    ``IN (everyone it serves)``, which SQLite listed in full first: about 200 ms a resource with
    6,667 people served among 20,000.  Each part now starts from the person's own rows."""
    with archive.reading() as tx:
        sql, params = Access(HOME, PERSONAL).condition(kind, few=True) or ("", [])
        statement = f"EXPLAIN QUERY PLAN SELECT 1 FROM resource r WHERE r.type = ? AND r.id = ? AND ({sql})"
        steps = [str(row[-1]) for row in tx.sql.all(statement, [kind, "wang", *params])]
    assert [step for step in steps if step.startswith(("LIST SUBQUERY", "SCAN"))] == []


@pytest.mark.parametrize(
    ("kind", "pairs", "few"),
    [
        ("Patient", [("_id", "wang")], True),
        ("Observation", [("subject", "Patient/wang")], True),
        ("Observation", [], False),
        ("Observation", [("status:not", "final")], False),
        ("Observation", [("subject:Patient._id", "wang")], True),
    ],
)
def test_a_search_has_few_candidates_when_its_driving_criterion_selects_few(
    archive: Store, kind: str, pairs: list[tuple[str, str]], few: bool
) -> None:
    """Few: its candidates are then checked one by one (``Access.condition(few=True)``); a
    search with no criterion to drive it has the whole type for candidates."""
    query = parse_search(kind, pairs, SearchIndexer(Registry()).parameters)
    with archive.reading() as tx:
        assert tx.resources.few_candidates(query) is few


def test_a_chains_targets_are_counted_by_the_rows_each_type_keeps(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``performer.phonetic``: an Organization's phonetic has rows of its own, a Patient's is
    read from ``name``'s.  Counted by the Organization's row name, the Patients had none, so
    their many 王 were taken for few and checked one by one."""
    monkeypatch.setattr(search_sql, "COMMON_VALUE_ROWS", 2)
    add(store, *({"resourceType": "Patient", "id": f"wang-{n}", "name": [{"text": "王"}]} for n in range(3)))
    chain = parse_search("Observation", [("performer.phonetic", "王")], SearchIndexer(Registry()).parameters)
    with store.reading() as tx:
        assert tx.resources.few_targets(chain.criteria[0]) is False


@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("principal", [HOME, OTHER_HOME], ids=["home", "other-home"])
def test_each_person_asked_alone_is_served_as_among_everyone_served(
    archive: Store, scenario: str, principal: Principal
) -> None:
    """``$everything`` judges the few people its resources name one by one
    (``Access.serves_person``): the same rule as listing everyone served."""
    add(archive, *SCENARIOS[scenario])
    people = ("wang", "li", "no-one")
    with archive.reading() as tx:
        alone = {person: Access(principal, PERSONAL).serves_person(tx, person) for person in people}
        listed = Access(principal, PERSONAL).served_people(tx)
    assert alone == {person: person in listed for person in people}


def test_past_a_few_people_asked_whom_it_serves_answers_alike(archive: Store) -> None:
    """Past ``FEW_PEOPLE`` people asked alone, whom the principal serves is read once and
    answers the rest: every answer is the rule's, on either side of that switch."""
    people = [f"resident-{number}" for number in range(FEW_PEOPLE + 8)]
    for number, person in enumerate(people):
        stay = {"resourceType": "Encounter", "id": f"{person}-stay", "status": "in-progress", "class": {"code": "HH"}}
        home = "yikang-home" if number % 2 else "other-home"
        add(archive, {"resourceType": "Patient", "id": person}, stay | {"subject": ref("Patient", person)})
        add(archive, stay | {"subject": ref("Patient", person), "serviceProvider": ref("Organization", home)})
    rules = Access(HOME, PERSONAL)
    with archive.reading() as tx:
        asked = [person for person in people if rules.serves_person(tx, person)]
    assert asked == people[1::2]


def statements_of(store: Store, work: Callable[[Transaction], object]) -> list[str]:
    """The statements SQLite runs for ``work`` in one read."""
    with store.reading() as tx:
        statements: list[str] = []
        tx.sql.connection.set_trace_callback(statements.append)  # type: ignore[attr-defined]
        try:
            work(tx)
        finally:
            tx.sql.connection.set_trace_callback(None)  # type: ignore[attr-defined]
    return statements


#: a fragment of the rule asked of one person (``access_sql.serves``)
PERSON_RULE = "c.type = 'Consent' AND c.name = 'patient' AND c.system = 'Patient' AND c.value = "


#: one person's pulls by a home: judging the records ``$everything`` finds by content, and a
#: search through a chain to that person
PULLS: dict[str, Callable[[Transaction], object]] = {
    "everything": lambda tx: list(
        Access(HOME, PERSONAL).among_served(tx, tx.resources.referencing("Patient", "wang", COMPARTMENT))
    ),
    "chain": lambda tx: SEARCHER.search(
        tx, SEARCHER.parse("Observation", [("subject:Patient._id", "wang")]), Access(HOME, PERSONAL)
    ),
}


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
@pytest.mark.parametrize("pull", PULLS)
def test_one_persons_pull_does_not_list_everyone_served(archive: Store, pull: str) -> None:
    """Both asked whether the person is among everyone the home serves, which the database
    answered by listing them all: 161 ms an ``$everything`` and 580 ms a chained search on
    20,000 people.  Each person or candidate is now asked about alone (a chain's few
    targets judged first, each as a read judges it: ``Access.shown_targets``)."""
    listing = served_patients("yikang-home", "2026-01-01T00:00:00Z")[0].split(" WHERE ")[0]
    assert [sql for sql in statements_of(archive, PULLS[pull]) if listing in sql] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
def test_everything_asks_about_each_person_once(
    archive: Store, make_services: MakeServices, acting_as_home: None
) -> None:
    """``$everything`` read its Patient with an Access of its own and then asked the same
    question of the same person for the members naming someone else (about 4 ms on
    PostgreSQL): 王, and 李 who performed one of 王's Observations, are each asked about once."""
    performed = {"resourceType": "Observation", "id": "wang-by-li", "status": "final", "code": {}}
    add(archive, performed | {"subject": ref("Patient", "wang"), "performer": [ref("Patient", "li")]})
    services = make_services()
    repository, compartment = services.repository, services.registry.patient_compartment
    asked: list[str] = []
    with services.store.reading() as tx:  # the thread's one reading connection
        connection = tx.sql.connection
    connection.set_trace_callback(asked.append)  # type: ignore[attr-defined]
    operations.everything(repository, compartment, "wang", None, set(), "http://x/fhir")
    connection.set_trace_callback(None)  # type: ignore[attr-defined]
    assert len([sql for sql in asked if PERSON_RULE in sql]) == 2


def type_history(tx: Transaction) -> object:
    """A home's first page of its Observations' history, as ``GET /Observation/_history`` asks."""
    return history_bundle(tx, Access(HOME, PERSONAL), "http://x/fhir", HistoryRequest("Observation", None, 20))


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
def test_a_homes_type_history_counts_nothing_in_sql(archive: Store) -> None:
    """Its versions are judged and counted in Python; each batch read also ran a COUNT(*)
    of its versions (the visibility condition twice more) whose total went unused: about
    12 of a CarePlan history's 17 s on 20,000 people."""
    assert [sql for sql in statements_of(archive, type_history) if "COUNT(*)" in sql] == []


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
def test_a_homes_type_history_reads_its_versions_in_one_statement(
    archive: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Judged a version at a time here, they were read a batch at a time, each batch a
    statement of its own (OFFSET) that ran the visibility condition anew: 5 of them for a
    CarePlan history of 20,000 people, about 1.2 s each on SQLite."""
    monkeypatch.setattr(history, "_SCAN_BATCH", 1)
    assert len([sql for sql in statements_of(archive, type_history) if "ORDER BY seq DESC" in sql]) == 1


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # traced on SQLite
def test_a_homes_type_history_judges_who_it_serves_once(archive: Store) -> None:
    """Its statement asked the visibility condition of the current versions and again of the
    superseded ones: 0.6 of the 0.7 s a home's CarePlans took to read on 20,000 people."""
    condition = Access(HOME, PERSONAL).condition("Observation")[0].split("?")[0]  # up to its first value
    read = next(sql for sql in statements_of(archive, type_history) if "ORDER BY seq DESC" in sql)
    assert read.count(condition) == 1


def chained(store: Store, principal: Principal, kind: str, pairs: list[tuple[str, str]]) -> list[str]:
    """The ids a chained search finds, through the search a client's request takes."""
    with store.reading() as tx:
        result = SEARCHER.search(tx, SEARCHER.parse(kind, pairs), Access(principal, PERSONAL))
    return sorted(stored.id for stored in result.matches)


def chained_among_everyone_served(
    store: Store, principal: Principal, kind: str, pairs: list[tuple[str, str]]
) -> list[str]:
    """The same, each chain's targets and the matches judged against everyone served, listed."""
    rules = Access(principal, PERSONAL)
    query = SEARCHER.parse(kind, pairs)
    criteria = []
    for criterion in query.criteria:
        found = rules.within_served(criterion.targets) if criterion.chain is not None else None
        if found is not None:
            (sql, params), conditions = found
            within = tuple((target, condition, tuple(values)) for target, (condition, values) in conditions)
            criterion = replace(criterion, within=within, served=(sql, tuple(params)))
        criteria.append(criterion)
    with store.reading() as tx:
        matches = tx.resources.search(replace(query, criteria=criteria), False, rules.condition(kind))[0]
    return sorted(stored.id for stored in matches)


#: chains to one target: a resident, a stranger, a resident's record naming a stranger too,
#: a Device of a stranger that a Flag on the resident names as its author, and the readings
#: Provenances of each one's reading alone target (placed among their records by it)
CHAINS = {
    "resident": ("Observation", [("subject:Patient.identifier", "wang-no")]),
    "stranger": ("Observation", [("subject:Patient.identifier", "li-no")]),
    "naming-a-stranger": ("Observation", [("subject:Patient._id", "wang"), ("code", "performed")]),
    "strangers-device": ("Flag", [("author:Device.patient", "Patient/li")]),
    "provenance-of-a-reading": ("Provenance", [("target:Observation.status", "final")]),
    "reading-with-a-provenance": ("Observation", [("_has:Provenance:target:agent", "Organization/yikang-home")]),
}


@pytest.mark.parametrize("chain", CHAINS)
@pytest.mark.parametrize("scenario", SCENARIOS)
@pytest.mark.parametrize("principal", [HOME, OTHER_HOME, HOSPITAL], ids=["home", "other-home", "hospital"])
def test_a_chain_to_few_targets_finds_what_it_finds_through_everyone_served(
    archive: Store, chain: str, scenario: str, principal: Principal
) -> None:
    """Few targets are checked one by one (``Resources.few_targets``), and so are the few
    matches they lead to: neither may find what the rule, asked of everyone served, hides."""
    identified = [
        {"resourceType": "Patient", "id": person, "identifier": [{"system": "urn:test", "value": f"{person}-no"}]}
        for person in ("wang", "li")
    ]
    performed = {"resourceType": "Observation", "id": "wang-by-li", "status": "final"}
    performed |= {"code": {"coding": [{"code": "performed"}]}, "subject": ref("Patient", "wang")}
    performed["performer"] = [ref("Patient", "li")]
    walker = {"resourceType": "Device", "id": "walker-li", "patient": ref("Patient", "li")}
    flag = {"resourceType": "Flag", "id": "wang-flag", "status": "active", "code": {"text": "跌倒风险"}}
    flag |= {"subject": ref("Patient", "wang"), "author": ref("Device", "walker-li")}
    of_readings = [
        {"resourceType": "Provenance", "id": f"prov-{reading}", "recorded": "2026-01-05T09:00:00+08:00"}
        | {"target": [ref("Observation", reading)], "agent": [{"who": ref("Organization", "yikang-home")}]}
        for reading in ("wang-bp", "li-bp")
    ]
    add(archive, *identified, performed, walker, flag, *of_readings, *SCENARIOS[scenario])
    kind, pairs = CHAINS[chain]
    assert chained(archive, principal, kind, pairs) == chained_among_everyone_served(archive, principal, kind, pairs)


#: second hops from a resident's record into someone the home does not serve: the resident's
#: own ``link`` to 李's record, and a stay of the resident's that is part of 李's
SECOND_HOPS = {
    "linked-person": ("Observation", [("subject:Patient.link:Patient.identifier", "li-no")]),
    "part-of-a-strangers-stay": ("Observation", [("encounter.part-of.subject", "Patient/li")]),
    "task-example": ("Observation", [("encounter.patient.identifier", "li-no")]),
}


@pytest.mark.parametrize("hop", SECOND_HOPS)
def test_a_chain_never_takes_a_second_hop_the_rule_would_not_keep(archive: Store, hop: str) -> None:
    """Only a chain's first level is kept to what the client may see (``Criterion.within``),
    and a visible Patient may link to a stranger, a resident's stay be part of a stranger's: a
    second hop would tell a home 李's identifier.  Chains are one level deep, so none is
    searched; deeper chains need the rule at every level first."""
    kind, pairs = SECOND_HOPS[hop]
    with pytest.raises(FhirError) as refused:
        chained(archive, HOME, kind, pairs)
    assert refused.value.message_id == "search.chain-too-deep"


def test_a_chains_candidates_are_counted_without_the_rule() -> None:
    """Whether a chain's matches are few is an estimate, an upper bound being enough; counted
    with the rule that keeps the chain to targets the client may see, PostgreSQL planned the
    rule's subqueries for it, 5–7 ms of a 20 ms search."""
    query = SEARCHER.parse("Observation", [("subject:Patient._id", "wang")])
    found = Access(HOME, PERSONAL).within_served(query.criteria[0].targets)
    assert found is not None
    within = tuple((kind, sql, tuple(params)) for kind, (sql, params) in found[1])
    chain = replace(query.criteria[0], within=within)
    statement = few_candidates_sql(replace(query, criteria=[chain]))
    assert statement is not None and PLANNED_PER_CALL not in statement[0]


def served_every_way(person: str, way: int) -> list[dict[str, Any]]:
    """A resident of yikang-home served through a stay, a 签约, a family-doctor contract or a
    permit (``way`` 0 to 3), with the others of them ended, and a refusal of another home."""
    subject, home = ref("Patient", person), ref("Organization", "yikang-home")
    team = {"resourceType": "CareTeam", "id": f"{person}-team", "managingOrganization": [home]}
    plan = {"resourceType": "CarePlan", "intent": "plan", "subject": subject}
    permit = {"type": "permit", "actor": [{"reference": home}], "period": {"start": "2020-01-01"}}
    return [
        {"resourceType": "Patient", "id": person},
        {"resourceType": "Encounter", "id": f"{person}-stay", "status": "in-progress" if way == 0 else "finished"}
        | {"class": {"code": "HH"}, "subject": subject, "serviceProvider": home},
        plan | {"id": f"{person}-plan", "status": "active" if way == 1 else "completed", "author": home},
        team,
        plan
        | {"id": f"{person}-contract", "status": "active" if way == 2 else "revoked"}
        | {"careTeam": [ref("CareTeam", f"{person}-team")]},
        {"resourceType": "Consent", "id": f"{person}-permit", "status": "active" if way == 3 else "inactive"}
        | {"patient": subject, "provision": permit},
        consent(f"{person}-deny", person, "deny", "other-home"),
    ]


def test_the_one_person_question_is_planned_once_for_any_values() -> None:
    """Planned for its values on each call, PostgreSQL spent 4–5 ms planning a statement that
    ran in 0.05–0.2 ms; its generic plan is safe (the test below)."""
    statement = person_served(serves(HOME.organization, now_instant()), "wang")[0]
    assert PLANNED_PER_CALL not in statement


def rows_read(node: dict[str, Any]) -> int:
    """The most rows any step of an executed plan (EXPLAIN ANALYZE, JSON) read, kept or not."""
    kept = node.get("Actual Rows", 0) + node.get("Rows Removed by Filter", 0)
    read = (kept + node.get("Rows Removed by Join Filter", 0)) * node.get("Actual Loops", 1)
    return max([read, *(rows_read(step) for step in node.get("Plans", []))])


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_the_one_person_question_reads_that_persons_rows_in_any_plan(archive: Store) -> None:
    """Whether the home serves one person (``access_sql.person_served``) is prepared once for
    any values on PostgreSQL.  Planned so, it guessed that the home matches a row or two and
    walked all of the home's stays for each of the person's; each resource's own rows are now
    read first, behind a fence (``dialect.FENCE``), so asking about a former resident
    reads a few rows however many people it serves (here 200, every way of serving)."""
    residents = [served_every_way(f"resident-{number}", number % 4) for number in range(200)]
    add(archive, *(resource for resources in residents for resource in resources))
    add(archive, *served_every_way("former-resident", -1))  # each of them ended
    sql, params = person_served(serves(HOME.organization, now_instant()), "former-resident")
    assert rows_read(generic_plan(archive, sql, params)) < 20


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_homes_readings_are_judged_by_their_own_visits(archive: Store) -> None:
    """A page of all a home's readings (and its count) judges each candidate by the visit it
    names (``access_sql.targets_shown``) reading that candidate's own rows, a few at a time:
    PostgreSQL otherwise read the visits every reading of the archive names, and joined
    1,000 candidates against 4,000 strangers' visits (1.4 s on 5,000 people)."""
    people = [(f"p{number}", number % 2 == 0) for number in range(120)]
    for person, resident in people:
        subject, stay = ref("Patient", person), {"status": "in-progress" if resident else "finished"}
        visit = {"resourceType": "Encounter", "id": f"{person}-stay", "class": {"code": "HH"}, "subject": subject}
        reading = {"resourceType": "Observation", "id": f"{person}-bp", "status": "final", "code": {}}
        add(
            archive,
            {"resourceType": "Patient", "id": person},
            visit | stay | {"serviceProvider": ref("Organization", "yikang-home")},
            reading | {"subject": subject, "encounter": ref("Encounter", f"{person}-stay")},
        )
    query = parse_search("Observation", [], SearchIndexer(Registry()).parameters)
    sql, params = search_sql.count_sql(query, restriction=Access(HOME, PERSONAL).condition("Observation"))
    scans = [step for step in steps(executed_plan(archive, sql, params)) if step.get("Alias", "").startswith("vt")]
    assert max(step["Actual Rows"] + step.get("Rows Removed by Filter", 0) for step in scans) < 10


def steps(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step of an executed plan (EXPLAIN ANALYZE, JSON), the first first."""
    yield node
    for step in node.get("Plans", []):
        yield from steps(step)


def executed_plan(store: Store, sql: str, params: list[Any]) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) of a statement planned for its values on
    PostgreSQL, as the store runs one marked ``PLANNED_PER_CALL``, after an ANALYZE."""
    with store.transaction() as tx:
        connection = tx.sql.connection  # type: ignore[attr-defined]
        connection.execute("ANALYZE resource, search_index, person_key", prepare=False)
        text = psycopg.ClientCursor(connection).mogrify(POSTGRES.sql(sql), params)
        plan = connection.execute(f"EXPLAIN (ANALYZE, FORMAT JSON) {text}", prepare=False).fetchone()[0]
    return json.loads(plan)[0]["Plan"] if isinstance(plan, str) else plan[0]["Plan"]  # type: ignore[no-any-return]


def test_a_read_is_judged_by_a_statement_prepared_once() -> None:
    """Planned for its values on each call, PostgreSQL spent 15–65 ms planning whether a home
    may read one Provenance (its targets judged by the people they name), which then ran in
    0.5 ms; its generic plan is safe (the test below)."""
    statement = Access(HOME, PERSONAL).condition("Provenance", one=True)
    assert statement is not None and PLANNED_PER_CALL not in statement[0]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_a_read_reads_that_records_rows_in_any_plan(archive: Store) -> None:
    """Whether a home may read one record (``Access.visible``) is prepared once for any
    values on PostgreSQL: judging a Provenance of a former resident's reading reads a few
    rows of its own, its target's and their people's, however many the home serves."""
    residents = [served_every_way(f"resident-{number}", number % 4) for number in range(200)]
    readings = [
        {"resourceType": "Observation", "id": f"{person}-reading", "status": "final", "code": {"text": "heart rate"}}
        | {"subject": ref("Patient", person)}
        for person in [f"resident-{number}" for number in range(200)] + ["former-resident"]
    ]
    provenances = [
        {"resourceType": "Provenance", "id": f"{reading['id']}-provenance", "recorded": "2026-01-05T09:00:00Z"}
        | {"target": [ref("Observation", reading["id"])], "agent": [{"who": ref("Organization", "yikang-home")}]}
        for reading in readings
    ]
    add(archive, *(resource for resources in residents for resource in resources))
    add(archive, *served_every_way("former-resident", -1), *readings, *provenances)
    condition = Access(HOME, PERSONAL).condition("Provenance", one=True)
    assert condition is not None
    sql = f"SELECT 1 FROM resource r WHERE r.type = ? AND r.id = ? AND ({condition[0]})"
    params = ["Provenance", "former-resident-reading-provenance", *condition[1]]
    assert rows_read(generic_plan(archive, sql, params)) < 20


def test_a_search_with_few_candidates_is_judged_by_a_statement_prepared_once() -> None:
    """Planned for its values on each call, a home's search with few candidates (and a
    chain's few targets) took 5–15 ms to plan and 1–2 to run on 10,000 people; its
    generic plan is safe (the test below)."""
    statement = Access(HOME, PERSONAL).condition("CarePlan", few=True)
    assert statement is not None and PLANNED_PER_CALL not in statement[0]


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
@pytest.mark.parametrize("person", ["resident-1", "former-resident"])
def test_a_search_with_few_candidates_reads_their_rows_in_any_plan(archive: Store, person: str) -> None:
    """A home's ``CarePlan?subject=…`` (few candidates) is prepared once for any values on
    PostgreSQL: its page reads a few rows of the person's plans and of their people, for a
    resident as for a former one, however many the home serves every way."""
    residents = [served_every_way(f"resident-{number}", number % 4) for number in range(200)]
    add(archive, *(resource for resources in residents for resource in resources))
    add(archive, *served_every_way("former-resident", -1))
    query = SEARCHER.parse("CarePlan", [("subject", f"Patient/{person}")])
    sql, params = search_sql.page_sql(query, restriction=Access(HOME, PERSONAL).condition("CarePlan", few=True))
    assert rows_read(generic_plan(archive, sql, params)) < 20


def generic_plan(store: Store, sql: str, params: list[Any]) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) of a statement prepared on PostgreSQL as the
    store runs it, once for any values (``plan_cache_mode = force_generic_plan``), after an
    ANALYZE of its tables."""
    numbered = iter(range(1, len(params) + 1))
    generic = re.sub("%s", lambda _: f"${next(numbered)}", POSTGRES.sql(sql))
    values = ", ".join("'" + str(value).replace("'", "''") + "'" for value in params)
    with store.transaction() as tx:
        connection = tx.sql.connection  # type: ignore[attr-defined]
        connection.execute("ANALYZE resource, search_index, person_key", prepare=False)
        connection.execute("SET LOCAL plan_cache_mode = force_generic_plan", prepare=False)
        connection.execute(f"PREPARE generic AS {generic}", prepare=False)
        explained = f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE generic({values})"
        plan = json.loads(connection.execute(explained, prepare=False).fetchone()[0])[0]["Plan"]
        connection.execute("DEALLOCATE generic", prepare=False)
    return plan  # type: ignore[no-any-return]


#: an elderly-care platform that writes (its stays make the people they name served)
WRITING_HOME = Principal("home-platform", "yikang-home", frozenset({"system/*.cruds"}), "elderly-care")


def test_a_platform_serves_no_one_through_an_own_base_spelling_the_people_check_reads_otherwise(
    make_services: MakeServices,
) -> None:
    """``{base}/Patient//li`` beside a key no Reference has is not localised, and the people
    check finds no Patient in it: the index must not read it as ``Patient/li`` either (h7
    proved an indexer that did made the platform serve 李 and read his record)."""
    services = make_services("warn")
    services.repository.update("Organization", "yikang-home", {"resourceType": "Organization", "id": "yikang-home"})
    services.repository.update("Patient", "li", {"resourceType": "Patient", "id": "li"})
    stay = {
        "resourceType": "Encounter",
        "status": "in-progress",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"},
        "subject": {"reference": f"{services.config.base_url}/Patient//li", "note": "x"},
        "serviceProvider": {"reference": "Organization/yikang-home"},
    }
    localise(stay, services.config.base_url)  # as a request body is
    token = acting.set(WRITING_HOME)
    try:
        with contextlib.suppress(FhirError):
            services.repository.create(stay)
        with pytest.raises(FhirError) as hidden:
            services.repository.read("Patient", "li")
    finally:
        acting.reset(token)
    assert hidden.value.status == 404


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)  # SQLite's plans
def test_a_homes_chain_to_few_targets_walks_no_index_in_full(archive: Store) -> None:
    """Judged inside the chain over the people its targets name, a home's
    ``Observation?subject:Patient.identifier=…`` had SQLite build Bloom filters over the
    whole index, once the archive had statistics (0.5–2 s a search on 20,000 people, 1.2 ms
    before): its targets are now judged first, each as a read is, and no statement of the
    search walks an index in full."""
    identified = {"resourceType": "Patient", "id": "wang", "identifier": [{"system": "urn:test", "value": "wang-no"}]}
    add(archive, identified)
    archive.analyze()
    query = SEARCHER.parse("Observation", [("subject:Patient.identifier", "wang-no")])
    statements = statements_of(archive, lambda tx: SEARCHER.search(tx, query, Access(HOME, PERSONAL)))
    with archive.reading() as tx:
        plans = [
            row[3] for sql in statements if sql.startswith("SELECT") for row in tx.sql.all(f"EXPLAIN QUERY PLAN {sql}")
        ]
    assert [
        step for step in plans if step.startswith("BLOOM FILTER") or re.match(r"SCAN \w+ USING (COVERING )?INDEX", step)
    ] == []


def test_an_operators_chain_is_its_inner_criterions_own_plan() -> None:
    """Only a restricted client's chain is judged: an operator's is the plan it had before the
    walked records were judged (0.5 ms on 20,000 people), with no target selected first and
    no served people listed."""
    query = SEARCHER.parse("Encounter", [("patient.identifier", "wang-no")])
    assert re.search(r"served_people|chained\(", search_sql.page_sql(query)[0]) is None
