"""Core value sets beyond the required bindings (profiles/base/r4-core-valuesets.json): a
profile binding to one of them is checked, with a passing and a failing instance each."""

from __future__ import annotations

from typing import Any

from conformance.validator import Validator
from profiles.registry import Registry, _load_base
from tests.conformance.definitions import sd, validator_with
from tests.conftest import errors, found

URL = "http://example.org/fhir/StructureDefinition/core-vs-patient"
MARITAL = "http://hl7.org/fhir/ValueSet/marital-status"
IDENTIFIER_TYPE = "http://hl7.org/fhir/ValueSet/identifier-type"
V3_MARITAL = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus"
V2_0203 = "http://terminology.hl7.org/CodeSystem/v2-0203"
V3_ACT = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
RESOURCE_TYPES = "http://hl7.org/fhir/ValueSet/resource-types"


def profile(path: str, strength: str, value_set: str) -> Validator:
    return validator_with(sd(URL, "Patient", [{"id": path, "binding": {"strength": strength, "valueSet": value_set}}]))


def run(validator: Validator, **elements: Any) -> list:
    return validator.validate({"resourceType": "Patient", "meta": {"profile": [URL]}, **elements})


def test_derived_file_names_its_source_and_uses_whole_code_systems() -> None:
    stamp = _load_base("r4-core-valuesets.json")["_derived"]
    assert "code systems 4.0.1" in stamp["source"] and "derive_core_valuesets.py" in stamp["regenerate"]
    core = Registry().core_valuesets
    assert core["valuesets"][MARITAL][V3_MARITAL] == "*"
    assert "M" in core["codesystems"][V3_MARITAL]
    assert "MR" in core["valuesets"][IDENTIFIER_TYPE][V2_0203]


def test_required_binding_to_a_core_value_set_passes_a_member() -> None:
    issues = run(
        profile("Patient.maritalStatus", "required", MARITAL),
        maritalStatus={"coding": [{"system": V3_MARITAL, "code": "M"}]},
    )
    assert errors(issues) == []
    assert not found(issues, "binding.unknown-valueset")


def test_required_binding_to_a_core_value_set_rejects_a_non_member() -> None:
    issues = run(
        profile("Patient.maritalStatus", "required", MARITAL),
        maritalStatus={"coding": [{"system": V3_MARITAL, "code": "Z"}]},
    )
    assert ("binding.not-in-valueset", "Patient.maritalStatus") in errors(issues)


def test_extensible_binding_to_a_core_value_set() -> None:
    validator = profile("Patient.identifier.type", "extensible", IDENTIFIER_TYPE)
    good = run(validator, identifier=[{"type": {"coding": [{"system": V2_0203, "code": "MR"}]}, "value": "1"}])
    assert not [i for i in good if i.message_id.startswith("binding.")]
    bad = run(validator, identifier=[{"type": {"coding": [{"system": V2_0203, "code": "XX"}]}, "value": "1"}])
    assert [i.severity for i in bad if i.message_id == "binding.not-in-valueset"] == ["warning"]


def test_a_binding_to_r4_resource_types_rejects_a_name_that_is_no_resource_type() -> None:
    """R4's resource-types is no resource the registry holds (registry.get answers None for
    every R4 value set): its required-binding expansion in r4-valuesets.json answers."""
    validator = validator_with(
        sd(
            URL,
            "Patient",
            [{"id": "Patient.link.type", "binding": {"strength": "required", "valueSet": RESOURCE_TYPES}}],
        )
    )
    issues = run(validator, link=[{"other": {"reference": "Patient/1"}, "type": "Visit"}])
    rejected = [i.expression for i in issues if i.params.get("valueSet") == RESOURCE_TYPES and i.is_error]
    assert rejected == ["Patient.link[0].type"]


def test_core_value_set_over_an_external_code_system_stays_unknown() -> None:
    validator = profile("Patient.maritalStatus", "required", "http://hl7.org/fhir/ValueSet/clinical-findings")
    issues = run(validator, maritalStatus={"coding": [{"system": "http://snomed.info/sct", "code": "404684003"}]})
    assert found(issues, "binding.unknown-valueset", "Patient.maritalStatus")


def test_a_code_missing_from_an_r4_code_system_is_an_error_whatever_binds_it(validator: Validator) -> None:
    """Encounter.class is bound extensibly: a code from elsewhere would pass, a v3-ActCode that
    does not exist is no code at all (HL7's validator: "Unknown code")."""
    encounter = {"resourceType": "Encounter", "status": "finished", "class": {"system": V3_ACT, "code": "ZZZ"}}
    assert found(validator.validate(encounter), "code.unknown-in-system", "Encounter.class")


def test_a_code_of_an_r4_code_system_passes_under_an_example_binding(validator: Validator) -> None:
    basic = {"resourceType": "Basic", "code": {"coding": [{"system": V3_ACT, "code": "AMB"}]}}
    assert [issue for issue in validator.validate(basic) if issue.message_id == "code.unknown-in-system"] == []
