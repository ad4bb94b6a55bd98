"""Issue 13: CareTeam, Condition and AllergyIntolerance profiles, the 长护险 lifecycle from
application to monthly settlement, and the 护理需求评估 questionnaire.

The manifests check each example's message ids and FHIRPath; these tests name the rule
(invariant key, cardinality, fixed value) each invalid case breaks, and check that what the
mappings already write conforms to the new profiles.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from conformance.validator import Validator
from gateway.ingest.commands import build_engine
from mappings.readers import read
from profiles.canonical import DEFAULT_BASE
from profiles.registry import PACKAGE_DIR, Registry, examples_dir

SD = f"{DEFAULT_BASE}/StructureDefinition"
SAMPLES = Path(__file__).resolve().parents[2] / "mappings" / "samples" / "community-health"


@pytest.fixture(scope="module")
def registry() -> Registry:
    return Registry()


@pytest.fixture(scope="module")
def validator(registry: Registry) -> Validator:
    return Validator(registry)


def example(name: str) -> dict[str, Any]:
    return json.loads((examples_dir() / name).read_text(encoding="utf-8"))


def errors(validator: Validator, resource: dict[str, Any], *profiles: str) -> set[tuple[str, str]]:
    """(invariant key or message id, FHIRPath) of every error."""
    return {
        (issue.params.get("key", issue.message_id), issue.expression)
        for issue in validator.validate(resource, [f"{SD}/{p}" for p in profiles])
        if issue.is_error
    }


# -- what the mappings write -----------------------------------------------------------------


def test_mapped_conditions_and_allergies_claim_and_pass_the_new_profiles(registry: Registry) -> None:
    engine, validator = build_engine(registry), Validator(registry)
    claimed, failing = set(), []
    for path in (SAMPLES / "个人基本信息表.csv", SAMPLES / "个人基本信息表.xlsx"):
        for record in read(path, "community-health"):
            mapped = engine.map(record)
            for resource in mapped.resources.values() if mapped else []:
                if resource["resourceType"] in ("Condition", "AllergyIntolerance"):
                    claimed.update(resource["meta"]["profile"])
                    failing += [i.message_id for i in validator.validate(resource) if i.is_error]
    assert (claimed, failing) == ({f"{SD}/yy-condition", f"{SD}/yy-allergyintolerance"}, [])


def test_mapped_condition_is_dated_by_the_archive_date(registry: Registry) -> None:
    record = next(read(SAMPLES / "个人基本信息表.csv", "community-health"))
    mapped = build_engine(registry).map(record)
    assert mapped is not None
    dates = {r["recordedDate"] for r in mapped.resources.values() if r["resourceType"] == "Condition"}
    assert dates == {"2019-03-01"}


def test_care_team_as_the_contract_mapping_writes_it_conforms(validator: Validator) -> None:
    team = {
        "resourceType": "CareTeam",
        "id": "t1",
        "status": "active",
        "name": "经八路街道家庭医生团队一",
        "subject": {"reference": "Patient/zhang-xiuying"},
        "participant": [{"member": {"reference": "Practitioner/wang-fang"}}],
        "managingOrganization": [{"reference": "Organization/jinshui-yiyang-center"}],
    }
    assert errors(validator, team, "yy-careteam") == set()


# -- clinical profiles -----------------------------------------------------------------------


def test_care_team_needs_a_subject_or_a_managing_organisation(validator: Validator) -> None:
    team = example("yy-careteam/valid-family-doctor-team.json")
    del team["subject"], team["managingOrganization"]
    assert errors(validator, team) == {("yy-ct-1", "CareTeam")}


def test_condition_needs_a_recorded_date_or_onset(validator: Validator) -> None:
    condition = example("yy-condition/valid-hypertension.json")
    del condition["recordedDate"], condition["onsetDateTime"]
    assert errors(validator, condition) == {("yy-cond-2", "Condition")}


def test_condition_without_clinical_status_is_allowed_only_when_entered_in_error(validator: Validator) -> None:
    condition = example("yy-condition/valid-hypertension.json")
    del condition["clinicalStatus"]
    condition["verificationStatus"]["coding"][0]["code"] = "entered-in-error"
    assert errors(validator, condition) == set()


def test_condition_accepts_a_chinese_icd_10_extension_code(validator: Validator) -> None:
    condition = example("yy-condition/valid-hypertension.json")
    condition["code"]["coding"][0]["code"] = "I10.x00x002"
    assert errors(validator, condition) == set()


def test_condition_rejects_a_name_in_place_of_an_icd_10_code(validator: Validator) -> None:
    condition = example("yy-condition/valid-hypertension.json")
    condition["code"]["coding"][0]["code"] = "高血压"
    assert errors(validator, condition) == {("yy-cond-4", "Condition.code")}


def test_allergy_must_be_a_drug_allergy(validator: Validator) -> None:
    allergy = example("yy-allergyintolerance/valid-penicillin.json")
    allergy["category"] = ["food"]
    assert errors(validator, allergy) == {("yy-ai-1", "AllergyIntolerance")}


def test_allergen_outside_the_form_list_needs_a_text(validator: Validator) -> None:
    allergy = example("yy-allergyintolerance/valid-other-drug-as-text.json")
    allergy["code"] = {"coding": [{"system": "http://his.example.cn/drug", "code": "X01"}]}
    assert ("yy-ai-2", "AllergyIntolerance.code") in errors(validator, allergy)


# -- 长护险 lifecycle ---------------------------------------------------------------------------


def test_ltc_application_must_carry_the_disability_assessment(validator: Validator) -> None:
    application = example("yy-ltc-eligibility-request/valid-institutional-care.json")
    del application["supportingInfo"]
    assert errors(validator, application) == {("profile.cardinality-min", "CoverageEligibilityRequest.supportingInfo")}


def test_ltc_application_assessment_must_be_an_observation(validator: Validator) -> None:
    application = example("yy-ltc-eligibility-request/valid-institutional-care.json")
    application["supportingInfo"][0]["information"] = {"reference": "Coverage/nhsa-410-zhang"}
    assert ("profile.reference-target", "CoverageEligibilityRequest.supportingInfo[0].information") in errors(
        validator, application
    )


def test_granted_entitlement_needs_its_number_and_period(validator: Validator) -> None:
    decision = example("yy-ltc-eligibility-response/valid-granted.json")
    del decision["preAuthRef"]
    assert errors(validator, decision) == {("yy-ltc-ed-1", "CoverageEligibilityResponse")}


def test_refused_entitlement_needs_a_reason(validator: Validator) -> None:
    decision = example("yy-ltc-eligibility-response/valid-granted.json")
    decision["insurance"][0]["inforce"] = False
    del decision["disposition"]
    assert errors(validator, decision) == {("yy-ltc-ed-2", "CoverageEligibilityResponse")}


def test_settlement_refers_to_the_entitlement_decision() -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    decision = example("yy-ltc-eligibility-response/valid-granted.json")
    assert claim["insurance"][0]["preAuthRef"] == [decision["preAuthRef"]]


def test_settlement_item_amount_is_quantity_times_unit_price(validator: Validator) -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    claim["item"][1]["quantity"]["value"] = 5
    assert ("yy-ltc-cl-3", "Claim.item[1]") in errors(validator, claim)


def test_settlement_total_is_the_sum_of_the_items(validator: Validator) -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    claim["total"]["value"] = 1999.00
    assert errors(validator, claim) == {("yy-ltc-cl-2", "Claim")}


def test_settlement_covers_one_calendar_month(validator: Validator) -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    claim["billablePeriod"]["end"] = "2026-08-01"
    assert errors(validator, claim) == {("yy-ltc-cl-1", "Claim")}


def test_settlement_amounts_are_in_yuan(validator: Validator) -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    claim["total"]["currency"] = "USD"
    assert errors(validator, claim) == {("yy-ltc-cl-6", "Claim.total")}


def test_settlement_service_item_comes_from_the_service_item_code_system(validator: Validator) -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    claim["item"][0]["productOrService"]["coding"][0]["system"] = "http://his.example.cn/items"
    assert ("binding.not-in-valueset", "Claim.item[0].productOrService") in errors(validator, claim)


def test_settlement_result_benefit_total_is_the_sum_of_the_items(validator: Validator) -> None:
    result = example("yy-ltc-claimresponse/valid-settled-july.json")
    result["total"][1]["amount"]["value"] = 1500.00
    assert errors(validator, result) == {("yy-ltc-cr-1", "ClaimResponse")}


def test_settlement_result_reconciles_with_the_claim() -> None:
    claim = example("yy-ltc-claim/valid-institutional-july.json")
    result = example("yy-ltc-claimresponse/valid-settled-july.json")
    submitted = next(t["amount"]["value"] for t in result["total"] if t["category"]["coding"][0]["code"] == "submitted")
    assert submitted == claim["total"]["value"]


# -- 护理需求评估 --------------------------------------------------------------------------------


def test_questionnaire_draws_level_answers_from_the_existing_value_sets(registry: Registry) -> None:
    questionnaire = json.loads((PACKAGE_DIR / "Questionnaire-nursing-needs-assessment.json").read_text("utf-8"))
    stack, bound = list(questionnaire["item"]), {}
    while stack:
        item = stack.pop()
        stack += item.get("item", [])
        if "answerValueSet" in item:
            bound[item["linkId"]] = (registry.get(item["answerValueSet"]) or {}).get("resourceType") == "ValueSet"
    assert bound == {
        "selfcare-level": True,
        "ability-level": True,
        "ltc-disability-level": True,
        "recommended-services": True,
        "recommended-care": True,
    }


def test_questionnaire_link_ids_are_unique() -> None:
    questionnaire = json.loads((PACKAGE_DIR / "Questionnaire-nursing-needs-assessment.json").read_text("utf-8"))
    stack, link_ids = list(questionnaire["item"]), []
    while stack:
        item = stack.pop()
        stack += item.get("item", [])
        link_ids.append(item["linkId"])
    assert len(link_ids) == len(set(link_ids))


def test_needs_assessment_response_is_fixed_to_the_questionnaire(validator: Validator) -> None:
    response = example("yy-questionnaireresponse-nursing-needs/valid-completed.json")
    response["questionnaire"] = f"{DEFAULT_BASE}/Questionnaire/other-form"
    assert errors(validator, response) == {("profile.fixed-mismatch", "QuestionnaireResponse.questionnaire")}


def test_completed_needs_assessment_answers_the_recommendation(validator: Validator) -> None:
    response = example("yy-questionnaireresponse-nursing-needs/valid-completed.json")
    needs = copy.deepcopy(response["item"][3])
    response["item"][3]["item"] = [i for i in needs["item"] if i["linkId"] != "recommended-care"]
    # the profile's invariant, and the Questionnaire's required item (conformance/questionnaire_response.py)
    assert errors(validator, response) == {
        ("yy-qr-nn-1", "QuestionnaireResponse"),
        ("questionnaire.item-missing", "QuestionnaireResponse.item[3]"),
    }


def test_in_progress_needs_assessment_may_be_partial(validator: Validator) -> None:
    response = example("yy-questionnaireresponse-nursing-needs/valid-completed.json")
    response["status"] = "in-progress"
    response["item"] = response["item"][:1]
    assert errors(validator, response) == set()
