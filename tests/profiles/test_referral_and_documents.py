"""双向转诊 and documents (issue 13): the referral order and its Task, the discharge summary and
health record documents, and the document index, each rule checked on the shipped examples.

Every test starts from a valid example of the package and breaks one thing, so a failure names
exactly the rule that regressed.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest

from conformance.issues import Issue
from conformance.terminology import Terminology
from conformance.validator import Validator
from gateway.config import Config
from gateway.services import Services
from profiles.canonical import DEFAULT_BASE
from profiles.registry import Registry
from tests.conftest import errors, load_example

CS = f"{DEFAULT_BASE}/CodeSystem/"
REFERRAL = "yy-servicerequest-referral/valid-downward-rehab.json"
COMPLETED_TASK = "yy-task-referral/valid-downward-completed.json"
REJECTED_TASK = "yy-task-referral/valid-upward-rejected.json"
DISCHARGE_DOCUMENT = "yy-composition-discharge-summary/valid-document-bundle.json"
HEALTH_RECORD = "yy-composition-health-record/valid-zhang-xiuying.json"
INDEX = "yy-documentreference/valid-discharge-summary-url.json"


def example(relative: str) -> dict[str, Any]:
    return copy.deepcopy(load_example(relative))


def keys(issues: list[Issue]) -> set[tuple[str, str]]:
    """(constraint key, FHIRPath) of every failed invariant."""
    return {(i.params["key"], i.expression) for i in issues if i.message_id == "invariant.failed"}


def business_status(code: str) -> dict[str, Any]:
    return {"coding": [{"system": f"{CS}referral-status", "code": code}]}


# -- terminology ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def terminology() -> Terminology:
    return Terminology(Registry())


def test_referral_directions_are_the_five_documented_codes(terminology: Terminology) -> None:
    assert set(terminology.concepts(f"{CS}referral-direction") or {}) == {
        "upward",
        "downward",
        "medical-to-care",
        "care-to-medical",
        "to-hospice",
    }


def test_referral_states_are_the_six_documented_codes(terminology: Terminology) -> None:
    assert set(terminology.concepts(f"{CS}referral-status") or {}) == {
        "pending",
        "accepted",
        "arrived",
        "completed",
        "rejected",
        "cancelled",
    }


# -- ServiceRequest: the referral order ----------------------------------------------------


def test_a_referral_without_reason_fails_yy_sr_1(validator: Validator) -> None:
    referral = example(REFERRAL)
    del referral["reasonCode"]
    assert ("yy-sr-1", "ServiceRequest") in keys(validator.validate(referral))


def test_a_referral_with_only_a_reason_reference_is_valid(validator: Validator) -> None:
    referral = example(REFERRAL)
    del referral["reasonCode"]
    referral["reasonReference"] = [{"reference": "Condition/zhang-20261110-cerebral-infarction"}]
    assert errors(validator.validate(referral)) == []


def test_a_referral_needs_the_receiving_organization(validator: Validator) -> None:
    referral = example(REFERRAL)
    del referral["performer"]
    assert ("profile.cardinality-min", "ServiceRequest.performer") in errors(validator.validate(referral))


def test_the_receiving_party_is_an_organization_not_a_practitioner(validator: Validator) -> None:
    referral = example(REFERRAL)
    referral["performer"] = [{"reference": "Practitioner/wang-fang"}]
    assert ("profile.reference-target", "ServiceRequest.performer[0]") in errors(validator.validate(referral))


def test_a_referral_is_an_order_not_a_proposal(validator: Validator) -> None:
    referral = example(REFERRAL)
    referral["intent"] = "proposal"
    assert ("profile.fixed-mismatch", "ServiceRequest.intent") in errors(validator.validate(referral))


def test_a_referral_direction_outside_the_code_system_is_refused(validator: Validator) -> None:
    referral = example(REFERRAL)
    referral["code"]["coding"][0]["code"] = "lateral"
    assert ("binding.not-in-valueset", "ServiceRequest.code") in errors(validator.validate(referral))


def test_a_referral_without_the_referral_category_is_refused(validator: Validator) -> None:
    referral = example(REFERRAL)
    referral["category"] = [{"text": "转诊"}]
    assert ("profile.slice-cardinality-min", "ServiceRequest.category") in errors(validator.validate(referral))


def test_a_hospice_transfer_is_a_valid_referral(validator: Validator) -> None:
    referral = example(REFERRAL)
    referral["code"] = {"coding": [{"system": f"{CS}referral-direction", "code": "to-hospice"}]}
    assert errors(validator.validate(referral)) == []


# -- Task: the receiver's handling and its status ----------------------------------------


def test_a_rejected_referral_task_without_status_reason_fails_yy_task_1(validator: Validator) -> None:
    task = example(REJECTED_TASK)
    del task["statusReason"]
    assert ("yy-task-1", "Task") in keys(validator.validate(task))


def test_a_business_status_disagreeing_with_the_task_status_fails_yy_task_2(validator: Validator) -> None:
    task = example(COMPLETED_TASK)
    task["businessStatus"] = business_status("accepted")
    assert ("yy-task-2", "Task") in keys(validator.validate(task))


def test_a_task_rejected_with_a_pending_business_status_fails_yy_task_2(validator: Validator) -> None:
    task = example(REJECTED_TASK)
    task["businessStatus"] = business_status("pending")
    assert ("yy-task-2", "Task") in keys(validator.validate(task))


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("pending", "requested"),
        ("pending", "received"),
        ("accepted", "accepted"),
        ("arrived", "in-progress"),
        ("completed", "completed"),
        ("rejected", "rejected"),
        ("cancelled", "cancelled"),
    ],
)
def test_each_business_status_pairs_with_its_task_status(validator: Validator, code: str, status: str) -> None:
    task = example(REJECTED_TASK)  # has a statusReason, no executionPeriod yet
    task.update(status=status, businessStatus=business_status(code))
    if status in ("in-progress", "completed"):
        task["executionPeriod"] = {"start": "2026-11-10T08:00:00+08:00", "end": "2026-11-12T08:00:00+08:00"}
    assert errors(validator.validate(task)) == []


def test_a_patient_in_progress_without_arrival_time_fails_yy_task_3(validator: Validator) -> None:
    task = example(COMPLETED_TASK)
    task.update(status="in-progress", businessStatus=business_status("arrived"))
    del task["executionPeriod"]
    assert ("yy-task-3", "Task") in keys(validator.validate(task))


def test_a_completed_referral_without_end_fails_yy_task_4(validator: Validator) -> None:
    task = example(COMPLETED_TASK)
    del task["executionPeriod"]["end"]
    assert ("yy-task-4", "Task") in keys(validator.validate(task))


def test_the_task_focus_must_be_the_referral_order(validator: Validator) -> None:
    task = example(COMPLETED_TASK)
    task["focus"] = {"reference": "CarePlan/family-doctor-package-2026"}
    assert ("profile.reference-target", "Task.focus") in errors(validator.validate(task))


def test_the_task_needs_a_business_status(validator: Validator) -> None:
    task = example(COMPLETED_TASK)
    del task["businessStatus"]
    assert ("profile.cardinality-min", "Task.businessStatus") in errors(validator.validate(task))


@pytest.fixture
def services(database_url: str, validator: Validator) -> Iterator[Services]:
    made = Services(Config.load(database_url=database_url, validation="reject"), validator.registry)
    made.__dict__["validator"] = validator  # a cached_property, preset: no second compile
    yield made
    made.close()


def test_every_status_change_of_a_referral_task_is_kept_in_its_history(services: Services) -> None:
    task = example(COMPLETED_TASK)
    steps = [
        ("requested", "pending", None, "2026-11-20T10:15:00+08:00"),
        ("accepted", "accepted", None, "2026-11-20T14:02:00+08:00"),
        ("in-progress", "arrived", {"start": "2026-11-21T09:30:00+08:00"}, "2026-11-21T09:30:00+08:00"),
        ("completed", "completed", task["executionPeriod"], "2026-11-28T16:00:00+08:00"),
    ]
    for status, code, period, modified in steps:
        version = {key: value for key, value in task.items() if key != "executionPeriod"}
        version.update(status=status, businessStatus=business_status(code), lastModified=modified)
        if period is not None:
            version["executionPeriod"] = period
        services.repository.update("Task", task["id"], version)
    with services.store.reading() as tx:
        versions, _ = tx.resources.history("Task", task["id"])
    assert [v.resource["businessStatus"]["coding"][0]["code"] for v, _ in reversed(versions)] == [
        "pending",
        "accepted",
        "arrived",
        "completed",
    ]


# -- the discharge summary document --------------------------------------------------------


def test_the_discharge_summary_document_starts_with_its_composition(validator: Validator) -> None:
    document = example(DISCHARGE_DOCUMENT)
    document["entry"].insert(0, document["entry"].pop(1))
    assert ("bdl-11", "Bundle") in keys(validator.validate(document))


def test_a_discharge_summary_needs_its_encounter(validator: Validator) -> None:
    document = example(DISCHARGE_DOCUMENT)
    del document["entry"][0]["resource"]["encounter"]
    expected = ("profile.cardinality-min", "Bundle.entry[0].resource.encounter")
    assert expected in errors(validator.validate(document))


def test_a_discharge_summary_is_loinc_18842_5(validator: Validator) -> None:
    document = example(DISCHARGE_DOCUMENT)
    document["entry"][0]["resource"]["type"]["coding"][0]["code"] = "11506-3"
    expected = ("profile.pattern-mismatch", "Bundle.entry[0].resource.type")
    assert expected in errors(validator.validate(document))


def test_a_discharge_summary_without_discharge_diagnosis_names_the_missing_section(validator: Validator) -> None:
    document = example(DISCHARGE_DOCUMENT)
    del document["entry"][0]["resource"]["section"][1]
    issues = validator.validate(document)
    assert {i.params["slice"] for i in issues if i.message_id == "profile.slice-cardinality-min"} == {
        "dischargeDiagnosis"
    }


def test_discharge_diagnoses_are_conditions(validator: Validator) -> None:
    document = example(DISCHARGE_DOCUMENT)
    document["entry"][0]["resource"]["section"][1]["entry"] = [{"reference": "Patient/zhang-xiuying"}]
    expected = ("profile.reference-target", "Bundle.entry[0].resource.section[1].entry[0]")
    assert expected in errors(validator.validate(document))


def test_a_document_reference_to_a_resource_outside_the_document_is_an_error(validator: Validator) -> None:
    document = example(DISCHARGE_DOCUMENT)
    document["entry"] = [e for e in document["entry"] if e["resource"]["resourceType"] != "Practitioner"]
    expected = ("rule.reference-unresolved", "Bundle.entry[0].resource.author[0].reference")
    assert expected in errors(validator.validate(document))


# -- the health record document ------------------------------------------------------------


def test_the_health_record_lists_the_subject_as_its_personal_information(validator: Validator) -> None:
    record = example(HEALTH_RECORD)
    record["section"][0]["entry"] = [{"reference": "Patient/li-jianguo"}]
    assert ("yy-hr-2", "Composition") in keys(validator.validate(record))


def test_inside_a_document_bundle_the_personal_information_still_names_the_subject(validator: Validator) -> None:
    record = example(HEALTH_RECORD)
    record["section"][0]["entry"] = [{"reference": "Patient/li-jianguo"}]
    patient = load_example("yy-patient/valid-li-jianguo-minimal.json")
    document = {
        "resourceType": "Bundle",
        "identifier": {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:7c0f4b1e-2d0a-4a56-9f0e-0d5b8a8c1e01"},
        "type": "document",
        "timestamp": "2026-11-30T08:00:00+08:00",
        "entry": [
            {"fullUrl": "https://fhir.example.cn/fhir/Composition/health-record-zhang-xiuying", "resource": record},
            {"fullUrl": "https://fhir.example.cn/fhir/Patient/li-jianguo", "resource": patient},
        ],
    }
    assert ("yy-hr-2", "Bundle.entry[0].resource") in keys(validator.validate(document))


def test_a_health_record_section_without_entries_says_why(validator: Validator) -> None:
    record = example(HEALTH_RECORD)
    del record["section"][3]["entry"]
    assert ("yy-hr-1", "Composition.section[3]") in keys(validator.validate(record))


def test_a_health_record_section_with_an_empty_reason_is_valid(validator: Validator) -> None:
    record = example(HEALTH_RECORD)
    del record["section"][3]["entry"]
    record["section"][3]["emptyReason"] = {"text": "尚未签约"}
    assert errors(validator.validate(record)) == []


def test_a_health_record_needs_all_four_sections(validator: Validator) -> None:
    record = example(HEALTH_RECORD)
    del record["section"][1]
    issues = validator.validate(record)
    assert {i.params["slice"] for i in issues if i.message_id == "profile.slice-cardinality-min"} == {"healthCheck"}


def test_needs_assessments_are_observations(validator: Validator) -> None:
    record = example(HEALTH_RECORD)
    record["section"][2]["entry"] = [{"reference": "CarePlan/family-doctor-package-2026"}]
    expected = ("profile.reference-target", "Composition.section[2].entry[0]")
    assert expected in errors(validator.validate(record))


# -- DocumentReference ---------------------------------------------------------------------


def test_a_document_index_without_url_or_data_fails_yy_dr_1(validator: Validator) -> None:
    index = example(INDEX)
    del index["content"][0]["attachment"]["url"]
    assert ("yy-dr-1", "DocumentReference.content[0]") in keys(validator.validate(index))


def test_a_document_index_type_outside_document_type_is_refused(validator: Validator) -> None:
    index = example(INDEX)
    index["type"]["coding"][0]["code"] = "11506-3"
    assert ("binding.not-in-valueset", "DocumentReference.type") in errors(validator.validate(index))


def test_the_health_record_type_indexes_a_document(validator: Validator) -> None:
    index = example(INDEX)
    index["type"] = {"coding": [{"system": f"{CS}document-type", "code": "health-record"}]}
    assert errors(validator.validate(index)) == []
