"""Issue 13: institutions as they are licensed, their designations, 医养签约 and episodes.

Each test reads the shipped package (profiles, code systems, search parameters, examples), so a
regression in the data fails here; the search tests go through the gateway's own indexer and store.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.terminology import Terminology
from conformance.validator import Validator
from gateway.search.indexer import SearchIndexer
from gateway.search.query import parse_search
from gateway.storage.store import Store
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry
from tests.conftest import errors, found, load_example

DESIGNATION = f"{DEFAULT_BASE}/CodeSystem/organization-designation"
DESIGNATION_EXT = f"{DEFAULT_BASE}/StructureDefinition/yy-ext-designation"
ORG_TYPE = f"{DEFAULT_BASE}/CodeSystem/organization-type"
ROLE = f"{DEFAULT_BASE}/CodeSystem/affiliation-role"
EPISODE = f"{DEFAULT_BASE}/CodeSystem/episode-type"
SERVICE = f"{DEFAULT_BASE}/CodeSystem/healthcare-service-type"
PHYSICAL = "http://terminology.hl7.org/CodeSystem/location-physical-type"


@pytest.fixture(scope="module")
def terminology() -> Terminology:
    return Terminology(Registry())


def example(relative: str) -> dict[str, Any]:
    return copy.deepcopy(load_example(relative))


def designation(code: str) -> dict[str, Any]:
    return {
        "url": DESIGNATION_EXT,
        "extension": [{"url": "code", "valueCoding": {"system": DESIGNATION, "code": code}}],
    }


def index_values(indexer: SearchIndexer, resource: dict[str, Any], name: str) -> set[tuple[Any, Any]]:
    return {(row[1], row[2]) for row in indexer.rows(resource) if row[0] == name}


# -- 1. several types per Organization -------------------------------------------------------


def test_an_integrated_institution_with_a_medical_and_an_elderly_care_type_is_valid(validator: Validator) -> None:
    institution = example("yy-organization/valid-yiyang-institution.json")
    assert errors(validator.validate(institution)) == []


def test_the_integrated_institution_example_carries_both_licences() -> None:
    codes = {c["code"] for t in example("yy-organization/valid-yiyang-institution.json")["type"] for c in t["coding"]}
    assert codes == {"nursing-home", "elderly-care-institution"}


def test_an_organization_still_needs_one_type_from_the_provincial_list(validator: Validator) -> None:
    hospital = example("yy-organization/valid-hospital.json")
    hospital["type"] = [{"text": "医院"}]
    assert found(validator.validate(hospital), "profile.slice-cardinality-min", "Organization.type")


# -- 2. designations ---------------------------------------------------------------------------


def test_the_designation_code_system_has_the_codes_auditors_count(terminology: Terminology) -> None:
    assert set(terminology.concepts(DESIGNATION) or {}) == {
        "elder-friendly",
        "nhsa-designated",
        "ltc-agreement",
        "geriatrics-department",
        "hospice-ward",
    }


def test_a_designation_outside_the_value_set_is_refused(validator: Validator) -> None:
    hospital = example("yy-organization/valid-hospital.json")
    hospital["extension"] = [designation("model-hospital")]
    expression = "Organization.extension[0].extension[0].valueCoding"
    assert found(validator.validate(hospital), "binding.not-in-valueset", expression)


def test_a_designation_needs_its_code(validator: Validator) -> None:
    hospital = example("yy-organization/valid-hospital.json")
    hospital["extension"] = [
        {"url": DESIGNATION_EXT, "extension": [{"url": "period", "valuePeriod": {"start": "2025"}}]}
    ]
    assert found(validator.validate(hospital), "profile.slice-cardinality-min", "Organization.extension[0].extension")


def test_a_designation_with_a_period_is_valid(validator: Validator) -> None:
    hospital = example("yy-organization/valid-hospital.json")
    granted = designation("ltc-agreement")
    granted["extension"].append({"url": "period", "valuePeriod": {"start": "2025-01-01", "end": "2027-12-31"}})
    hospital["extension"] = [granted]
    assert errors(validator.validate(hospital)) == []


def test_the_designation_search_parameter_compiles(indexer: SearchIndexer) -> None:
    assert "designation" not in indexer.parameters.unsupported("Organization")


def test_the_indexer_writes_a_designation_token_row(indexer: SearchIndexer) -> None:
    hospital = example("yy-organization/valid-hospital.json")
    assert (DESIGNATION, "elder-friendly") in index_values(indexer, hospital, "designation")


def test_each_repeated_designation_is_indexed(indexer: SearchIndexer) -> None:
    institution = example("yy-organization/valid-yiyang-institution.json")
    assert {code for _, code in index_values(indexer, institution, "designation")} == {
        "nhsa-designated",
        "ltc-agreement",
        "hospice-ward",
    }


def test_a_store_search_by_designation_finds_only_the_designated_organization(
    store: Store, indexer: SearchIndexer
) -> None:
    with store.transaction() as tx:
        tx.resources.write(example("yy-organization/valid-hospital.json"))
        tx.resources.write(example("yy-organization/valid-yiyang-institution.json"))
    query = parse_search("Organization", [("designation", f"{DESIGNATION}|elder-friendly")], indexer.parameters)
    with store.reading() as tx:
        assert [s.id for s in tx.resources.search(query)[0]] == ["zhengzhou-first-hospital"]


def test_a_store_search_by_two_types_finds_the_integrated_institution(store: Store, indexer: SearchIndexer) -> None:
    with store.transaction() as tx:
        tx.resources.write(example("yy-organization/valid-yiyang-institution.json"))
        tx.resources.write(example("yy-organization/valid-nursing-home.json"))
    pairs = [("type", f"{ORG_TYPE}|nursing-home"), ("type", f"{ORG_TYPE}|elderly-care-institution")]
    query = parse_search("Organization", pairs, indexer.parameters)
    with store.reading() as tx:
        assert [s.id for s in tx.resources.search(query)[0]] == ["jinshui-kangyi-yiyang-institution"]


# -- 3. beds, wards and departments ------------------------------------------------------------


def test_a_bed_without_its_ward_is_refused(validator: Validator) -> None:
    bed = example("yy-location/valid-hospice-bed.json")
    del bed["partOf"]
    assert found(validator.validate(bed), "invariant.failed", "Location")


def test_a_ward_needs_no_part_of(validator: Validator) -> None:
    assert errors(validator.validate(example("yy-location/valid-hospice-ward.json"))) == []


def test_a_location_physical_type_outside_ward_room_bed_is_refused(validator: Validator) -> None:
    ward = example("yy-location/valid-hospice-ward.json")
    ward["physicalType"] = {"coding": [{"system": PHYSICAL, "code": "bu", "display": "Building"}]}
    assert found(validator.validate(ward), "binding.not-in-valueset", "Location.physicalType")


def test_a_location_needs_its_managing_organization(validator: Validator) -> None:
    ward = example("yy-location/valid-hospice-ward.json")
    del ward["managingOrganization"]
    assert found(validator.validate(ward), "profile.cardinality-min", "Location.managingOrganization")


def test_a_department_needs_its_provider(validator: Validator) -> None:
    department = example("yy-healthcareservice/valid-geriatrics.json")
    del department["providedBy"]
    assert found(validator.validate(department), "profile.cardinality-min", "HealthcareService.providedBy")


def test_a_department_type_is_searchable_as_service_type(indexer: SearchIndexer) -> None:
    department = example("yy-healthcareservice/valid-hospice.json")
    assert (SERVICE, "hospice") in index_values(indexer, department, "service-type")


# -- 4. 医养签约 --------------------------------------------------------------------------------


def test_a_yiyang_contract_without_services_is_refused(validator: Validator) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    del contract["specialty"]
    assert found(validator.validate(contract), "invariant.failed", "OrganizationAffiliation")


def test_a_consortium_membership_needs_no_services(validator: Validator) -> None:
    membership = example("yy-organizationaffiliation/valid-consortium-member.json")
    assert errors(validator.validate(membership)) == []


def test_an_institution_cannot_contract_with_itself(validator: Validator) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    contract["organization"] = dict(contract["participatingOrganization"])
    assert found(validator.validate(contract), "invariant.failed", "OrganizationAffiliation")


def test_a_contract_needs_its_start_date(validator: Validator) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    contract["period"] = {"end": "2028-12-31"}
    assert found(validator.validate(contract), "profile.cardinality-min", "OrganizationAffiliation.period.start")


def test_a_contract_is_found_by_its_role(indexer: SearchIndexer) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    assert (ROLE, "yiyang-contract") in index_values(indexer, contract, "role")


def test_a_contract_is_found_by_its_medical_institution(indexer: SearchIndexer) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    rows = index_values(indexer, contract, "participating-organization")
    assert rows == {("Organization", "zhengzhou-first-hospital")}


def test_a_contract_is_found_by_its_elderly_care_side(indexer: SearchIndexer) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    rows = index_values(indexer, contract, "primary-organization")
    assert rows == {("Organization", "jinshui-fushou-elderly-home")}


def test_a_contract_service_is_found_by_specialty(indexer: SearchIndexer) -> None:
    contract = example("yy-organizationaffiliation/valid-yiyang-contract.json")
    assert (SERVICE, "hospice") in index_values(indexer, contract, "specialty")


# -- 5. episodes ---------------------------------------------------------------------------------


def test_a_finished_episode_without_an_end_is_refused(validator: Validator) -> None:
    episode = example("yy-episodeofcare/valid-hospice-finished.json")
    del episode["period"]["end"]
    assert found(validator.validate(episode), "invariant.failed", "EpisodeOfCare")


def test_an_open_home_bed_episode_is_valid(validator: Validator) -> None:
    assert errors(validator.validate(example("yy-episodeofcare/valid-home-bed.json"))) == []


def test_an_episode_needs_its_managing_organization(validator: Validator) -> None:
    episode = example("yy-episodeofcare/valid-home-bed.json")
    del episode["managingOrganization"]
    assert found(validator.validate(episode), "profile.cardinality-min", "EpisodeOfCare.managingOrganization")


def test_an_episode_allows_one_episode_type_only(validator: Validator) -> None:
    episode = example("yy-episodeofcare/valid-home-bed.json")
    episode["type"].append({"coding": [{"system": EPISODE, "code": "hospice"}]})
    assert found(validator.validate(episode), "profile.slice-cardinality-max", "EpisodeOfCare.type")


def test_an_episode_is_found_by_its_type(indexer: SearchIndexer) -> None:
    episode = example("yy-episodeofcare/valid-home-bed.json")
    assert index_values(indexer, episode, "type") == {(EPISODE, "home-bed")}


# -- the package's own bookkeeping --------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        DESIGNATION,
        ROLE,
        EPISODE,
        SERVICE,
        f"{DEFAULT_BASE}/CodeSystem/location-type",
    ],
)
def test_each_new_local_code_list_says_what_is_unconfirmed(url: str) -> None:
    code_system = Registry().get(url)
    said = (
        code_system["status"],
        code_system["experimental"],
        code_system["purpose"].startswith("未经确认 / Unconfirmed:"),
    )
    assert said == ("draft", True, True)
