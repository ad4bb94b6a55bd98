"""An archive stored before request bodies were localised, localised as a write is now
(gateway/fhir/localise_archive.py): each test on SQLite and on PostgreSQL.

The old gateway's writes are made here as it made them: straight into the store, bypassing
the write path that localises a body, with the index rows the indexer makes of it."""

from __future__ import annotations

import contextlib
import copy
from typing import Any

import pytest

from gateway.config import Config
from gateway.fhir.archive_references import localise
from gateway.fhir.errors import FhirError
from gateway.fhir.localise_archive import Judge, Localised, as_its_creator, localise_archive
from gateway.search.indexer import SearchIndexer
from gateway.search.query import parse_search
from gateway.security.access import PersonalData
from gateway.security.principal import Principal, acting
from gateway.services import Services
from gateway.storage.store import Store
from profiles.registry import Registry
from tests.conftest import MakeServices

BASE = Config().base_url
#: an elderly-care platform, and a hospital, each a registered client of its organisation
HOME = Principal("home-platform", "yikang-home", frozenset({"system/*.cruds"}), "elderly-care")
HOSPITAL = Principal("his", "h1", frozenset({"system/*.cruds"}), "hospital")


@pytest.fixture(scope="module")
def judge(indexer: SearchIndexer) -> Judge:
    """The operator's word that what no one is recorded to have created may be rewritten:
    these tests store as the command line does, with no creator."""
    return as_its_creator(PersonalData(Registry(), indexer.rows), trust_unowned=True)


ENCOUNTER_CLASS = {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "HH"}


def stored_raw(store: Store, *resources: dict[str, Any], owner: str | None = None) -> None:
    """Written as a gateway before 806e531 wrote them: the body as the client sent it
    (``owner``: the organisation of the client that created them)."""
    with store.transaction() as tx:
        for resource in resources:
            tx.resources.write(copy.deepcopy(resource), owner=owner)


def stay(subject: str, resource_id: str = "e1") -> dict[str, Any]:
    return {
        "resourceType": "Encounter",
        "id": resource_id,
        "status": "in-progress",
        "class": ENCOUNTER_CLASS,
        "subject": {"reference": subject},
    }


def stays_of(store: Store, indexer: SearchIndexer, person: str) -> list[str]:
    query = parse_search("Encounter", [("patient", person)], indexer.parameters)
    with store.reading() as tx:
        return [stored.id for stored in tx.resources.search(query)[0]]


def body(store: Store, kind: str, resource_id: str, version: int | None = None) -> dict[str, Any]:
    with store.reading() as tx:
        found = (
            tx.resources.read(kind, resource_id) if version is None else tx.resources.vread(kind, resource_id, version)
        )
    assert found is not None and found.resource is not None
    return found.resource


def test_a_stay_stored_with_an_absolute_own_base_subject_is_found_by_the_relative_search_once_localised(
    store: Store, indexer: SearchIndexer, judge: Judge
) -> None:
    stored_raw(store, {"resourceType": "Patient", "id": "p1"}, stay(f"{BASE}/Patient/p1"))
    before = stays_of(store, indexer, "Patient/p1")
    localise_archive(store, BASE, judge)
    assert (before, stays_of(store, indexer, "Patient/p1")) == ([], ["e1"])


def test_a_second_run_rewrites_nothing(store: Store, judge: Judge) -> None:
    stored_raw(store, {"resourceType": "Patient", "id": "p1"}, stay(f"{BASE}/Patient/p1"))
    first = localise_archive(store, BASE, judge)
    assert (first, localise_archive(store, BASE, judge)) == (Localised(2, 1), Localised(2, 0))


def test_a_rewritten_resource_gets_a_new_version_and_keeps_the_one_written_in_its_history(
    store: Store, judge: Judge
) -> None:
    stored_raw(store, stay(f"{BASE}/Patient/p1"))
    localise_archive(store, BASE, judge)
    current, written = body(store, "Encounter", "e1"), body(store, "Encounter", "e1", 1)
    assert (current["meta"]["versionId"], current["subject"], written["subject"]) == (
        "2",
        {"reference": "Patient/p1"},
        {"reference": f"{BASE}/Patient/p1"},
    )


#: references left as they are: another server's, a malformed path on the own base, a search
#: URL on it (a conditional reference no write is left to resolve), and one beside a key no
#: Reference has
KEPT = [
    {"reference": "http://other.example/fhir/Patient/p1"},
    {"reference": f"{BASE.replace('8080', '9090')}/Patient/p1"},
    {"reference": f"{BASE}/Patient/p1/"},
    {"reference": f"{BASE}/Patient?identifier=x#y"},
    {"reference": f"{BASE}/Patient?identifier=urn:oid:2.16.156.10011.1.3|110101194001010011"},
    {"reference": f"{BASE}/Patient//li", "note": "x"},
]


def test_references_localise_does_not_rewrite_are_kept_exactly_as_stored(store: Store, judge: Judge) -> None:
    listed = {"resourceType": "List", "id": "l1", "status": "current", "mode": "working"}
    stored_raw(store, {**listed, "entry": [{"item": item} for item in KEPT]})
    done = localise_archive(store, BASE, judge)
    assert (done, body(store, "List", "l1")["entry"]) == (Localised(1, 0), [{"item": item} for item in KEPT])


@pytest.mark.parametrize(
    "reference",
    [
        f"{BASE}/Patient/p1",
        f"{BASE.upper().replace('/FHIR', '/fhir')}/Patient/p1",
        f"{BASE}//Patient/p1",
        f"{BASE}/Patient/%70%31",
    ],
)
def test_the_stored_body_becomes_what_localise_makes_of_it(store: Store, judge: Judge, reference: str) -> None:
    """Every own-base spelling a write localises, and nothing else: the whole body compared."""
    written = {**stay(reference), "participant": [{"individual": {"reference": "http://other.example/Practitioner/d"}}]}
    stored_raw(store, written)
    localise_archive(store, BASE, judge)
    expected = copy.deepcopy(written)
    localise(expected, BASE, conditions=False)
    found = body(store, "Encounter", "e1")
    assert {k: v for k, v in found.items() if k != "meta"} == expected


def test_a_deleted_resource_is_left_alone(store: Store, judge: Judge) -> None:
    stored_raw(store, stay(f"{BASE}/Patient/p1"))
    with store.transaction() as tx:
        tx.resources.delete("Encounter", "e1")
    assert localise_archive(store, BASE, judge) == Localised(0, 0)


def test_every_batch_is_read_and_rewritten(store: Store, indexer: SearchIndexer, judge: Judge) -> None:
    stored_raw(store, *(stay(f"{BASE}/Patient/p1", f"e{number}") for number in range(5)))
    done = localise_archive(store, BASE, judge, batch=2)
    assert (done, sorted(stays_of(store, indexer, "Patient/p1"))) == (
        Localised(5, 5),
        [f"e{number}" for number in range(5)],
    )


def test_the_person_a_mended_stay_names_can_no_longer_be_deleted_from_under_it(make_services: MakeServices) -> None:
    services = make_services()
    stored_raw(services.store, {"resourceType": "Patient", "id": "p1"}, stay(f"{BASE}/Patient/p1"))
    localise_archive(services.store, BASE, as_its_creator(services.repository.personal, trust_unowned=True))
    with pytest.raises(FhirError) as refused:
        services.repository.delete("Patient", "p1")
    assert refused.value.status == 409


def test_a_stay_no_one_is_recorded_to_have_created_is_held_unless_the_operator_trusts_it(
    make_services: MakeServices,
) -> None:
    """Before creators were recorded a platform's write recorded none, as the operator's
    does: such a stay, mended, could make a platform serve 李, so it waits for review."""
    services = make_services()
    stored_raw(services.store, {"resourceType": "Patient", "id": "li"}, stay(f"{BASE}/Patient/li"))
    done = localise_archive(services.store, BASE, as_its_creator(services.repository.personal))
    assert done == Localised(2, 0, ("Encounter/e1",))


def stored_by(services: Services, principal: Principal, *resources: dict[str, Any]) -> None:
    """``resources`` as ``principal``'s writes before 806e531 stored them, its organisation
    recorded as their creator, the client registered; the people they name in the archive."""
    with services.store.transaction() as tx:
        tx.security.put_client(principal.client_id, principal.organization, principal.role, "system/*.cruds", {}, None)
    stored_raw(services.store, {"resourceType": "Patient", "id": "li"})
    stored_raw(services.store, *resources, owner=principal.organization)


def test_a_stay_a_platform_stored_for_someone_it_does_not_serve_stays_as_stored_and_serves_no_one(
    make_services: MakeServices,
) -> None:
    """Mended, the stay would have made the platform serve 李, whom its write was never
    checked against: a write of it today is refused, so the mend leaves it for review."""
    services = make_services()
    home_stay = {**stay(f"{BASE}/Patient/li"), "serviceProvider": {"reference": "Organization/yikang-home"}}
    stored_by(services, HOME, home_stay)
    done = localise_archive(services.store, BASE, as_its_creator(services.repository.personal))
    token = acting.set(HOME)
    try:
        with pytest.raises(FhirError) as hidden:
            services.repository.read("Patient", "li")
    finally:
        acting.reset(token)
    assert (done.held, hidden.value.status) == (("Encounter/e1",), 404)


def test_a_stay_a_hospital_stored_for_another_organisation_stays_as_stored(make_services: MakeServices) -> None:
    services = make_services()
    foreign = {**stay("Patient/li"), "serviceProvider": {"reference": f"{BASE}/Organization/yikang-home"}}
    stored_by(services, HOSPITAL, foreign)
    done = localise_archive(services.store, BASE, as_its_creator(services.repository.personal))
    assert done == Localised(2, 0, ("Encounter/e1",))


def test_a_stay_a_hospital_stored_for_itself_is_rewritten(make_services: MakeServices) -> None:
    services = make_services()
    own = {**stay(f"{BASE}/Patient/li"), "serviceProvider": {"reference": f"{BASE}/Organization/h1"}}
    stored_by(services, HOSPITAL, own)
    done = localise_archive(services.store, BASE, as_its_creator(services.repository.personal))
    assert done == Localised(2, 1)


def test_a_patient_a_platform_created_and_does_not_serve_stays_as_stored(make_services: MakeServices) -> None:
    """Mended, its managing organisation would have made the platform manage 李, and so
    write him a stay and read his record: its update of him today is refused (he is hidden
    from it, whoever created his record), so the mend leaves him for review."""
    services = make_services("warn")
    with services.store.transaction() as tx:
        tx.security.put_client(HOME.client_id, HOME.organization, HOME.role, "system/*.cruds", {}, None)
    managed = {
        "resourceType": "Patient",
        "id": "li",
        "managingOrganization": {"reference": f"{BASE}/Organization/yikang-home"},
    }
    stored_raw(services.store, managed, owner=HOME.organization)
    done = localise_archive(services.store, BASE, as_its_creator(services.repository.personal))
    home_stay = {**stay("Patient/li", "e9"), "serviceProvider": {"reference": "Organization/yikang-home"}}
    token = acting.set(HOME)
    try:
        with contextlib.suppress(FhirError):
            services.repository.create(home_stay)
        with pytest.raises(FhirError) as hidden:
            services.repository.read("Patient", "li")
    finally:
        acting.reset(token)
    assert (done.held, hidden.value.status) == (("Patient/li",), 404)


def test_an_organisation_a_platform_created_stays_out_of_its_tree(make_services: MakeServices) -> None:
    """Another home's Organization the platform created, naming the platform as what it is
    part of: mended, the platform would write for that home and manage its residents.  Its
    update today is refused (the record is that home's own), so the mend leaves it."""
    services = make_services("warn")
    with services.store.transaction() as tx:
        tx.security.put_client(HOME.client_id, HOME.organization, HOME.role, "system/*.cruds", {}, None)
    other = {
        "resourceType": "Organization",
        "id": "other-home",
        "partOf": {"reference": f"{BASE}/Organization/yikang-home"},
    }
    stored_raw(services.store, other, owner=HOME.organization)
    done = localise_archive(services.store, BASE, as_its_creator(services.repository.personal))
    assert done.held == ("Organization/other-home",)
