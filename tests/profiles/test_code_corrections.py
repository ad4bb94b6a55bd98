"""The code corrections of issue 13 ("Codes and rules to correct"), each checked on the shipped data.

Every test reads the package or the ConceptMaps as shipped, so a regression in the data fails here.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conformance.terminology import Terminology
from mappings.conceptmaps import FOLDER as CONCEPTMAP_DIR
from mappings.conceptmaps import ConceptMaps
from mappings.normalise import MappingError
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry

LOINC = "http://loinc.org"
ORG_TYPE = f"{DEFAULT_BASE}/CodeSystem/organization-type"


@pytest.fixture(scope="module")
def terminology() -> Terminology:
    return Terminology(Registry())


@pytest.fixture(scope="module")
def concept_maps() -> ConceptMaps:
    return ConceptMaps.load(DEFAULT_BASE)


def _conceptmap(map_id: str) -> dict[str, Any]:
    return json.loads((CONCEPTMAP_DIR / f"ConceptMap-{map_id}.json").read_text(encoding="utf-8"))


# -- 1. institution types ------------------------------------------------------------------


def test_nursing_home_is_a_medical_institution_in_the_code_system(terminology: Terminology) -> None:
    concepts = terminology.concepts(ORG_TYPE) or {}
    assert concepts["nursing-home"]["parents"] == {"medical-institution"}


def test_community_health_station_is_its_own_medical_institution_type(terminology: Terminology) -> None:
    concepts = terminology.concepts(ORG_TYPE) or {}
    assert concepts["community-health-station"]["parents"] == {"medical-institution"}


@pytest.mark.parametrize("map_id", ["elderly-org-type", "community-organization-type"])
def test_nursing_home_maps_to_the_nursing_home_type_not_elderly_care(concept_maps: ConceptMaps, map_id: str) -> None:
    assert concept_maps.translate(map_id, "护理院") == "nursing-home"


@pytest.mark.parametrize("map_id", ["elderly-org-type", "community-organization-type"])
def test_community_health_station_maps_to_the_station_type(concept_maps: ConceptMaps, map_id: str) -> None:
    assert concept_maps.translate(map_id, "社区卫生服务站") == "community-health-station"


def test_organization_type_count_matches_its_concepts(terminology: Terminology) -> None:
    assert Registry().get(ORG_TYPE)["count"] == len(terminology.concepts(ORG_TYPE) or {})


# -- 2. ConceptMap equivalence and glucose -------------------------------------------------


def test_coarse_icd_10_targets_are_not_claimed_equivalent() -> None:
    targets = [t for g in _conceptmap("form-disease-to-icd-10")["group"] for e in g["element"] for t in e["target"]]
    assert {
        (t["code"], t["equivalence"]) for t in targets if t["equivalence"] == "equivalent" or not t.get("comment")
    } == set()


def test_a_hospital_maps_wider_to_medical_institution() -> None:
    elements = _conceptmap("community-organization-type")["group"][0]["element"]
    assert next(e for e in elements if e["code"] == "医院")["target"][0]["equivalence"] == "wider"


def test_fasting_glucose_code_is_in_the_glucose_value_set(terminology: Terminology) -> None:
    expansion = terminology.expand(f"{DEFAULT_BASE}/ValueSet/blood-glucose-code")
    assert expansion is not None and terminology.contains(expansion, LOINC, "14771-0") is True


# -- 3. 学历: GB/T 4658-2006 and the form's 文化程度 ----------------------------------------

EDUCATION = "urn:oid:2.16.156.10011.2.3.3.6"


def test_education_code_system_is_the_2006_edition() -> None:
    assert Registry().get(EDUCATION)["version"] == "GB/T 4658-2006"


def test_skilled_worker_school_47_is_under_secondary_vocational_40(terminology: Terminology) -> None:
    assert (terminology.concepts(EDUCATION) or {})["47"]["parents"] == {"40"}


@pytest.mark.parametrize(
    ("choice", "code"), [("1", "10"), ("技工学校", "47"), ("4", "40"), ("6", "60"), ("文盲或半文盲", "90")]
)
def test_form_education_choice_maps_to_the_2006_code(concept_maps: ConceptMaps, choice: str, code: str) -> None:
    assert concept_maps.translate("form-education-to-gb-t-4658", choice) == code


def test_form_education_unknown_is_not_mapped_to_other(concept_maps: ConceptMaps) -> None:
    with pytest.raises(MappingError):
        concept_maps.translate("form-education-to-gb-t-4658", "10")


def test_every_form_education_target_is_a_shipped_2006_code(terminology: Terminology) -> None:
    targets = {
        t["code"]
        for e in _conceptmap("form-education-to-gb-t-4658")["group"][0]["element"]
        for t in e["target"]
        if "code" in t
    }
    assert targets - set(terminology.concepts(EDUCATION) or {}) == set()


# National lists without a CDA OID; every ``urn:oid:`` code system is national too.
NATIONAL_WITHOUT_OID = {
    "gb-t-2260",
    "ability-assessment",
    "ability-level",
    "ltc-disability-level",
    "ltc-indicator",
    "nhsa-insutype",
    "nhsa-mdtrt-cert-type",
    "nhsa-psn-cert-type",
    "nhsa-psn-insu-stas",
    "nhsa-psn-type",
    "residence-type",
    "drug-allergen",
}


def test_every_national_code_list_states_its_edition_in_version_and_description() -> None:
    national = [
        cs
        for cs in Registry().all("CodeSystem")
        if cs["url"].startswith("urn:oid:") or cs["id"] in NATIONAL_WITHOUT_OID
    ]
    assert [cs["id"] for cs in national if cs["version"] == "0.1.0" or cs["version"] not in cs["description"]] == []
