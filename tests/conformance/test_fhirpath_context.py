"""FHIRPath context, as the FHIR FHIRPath page defines it (fhirpath.html#vars) and the
reference HL7 validator evaluates it: %resource is the resource holding the element (a Bundle
entry's resource, not the Bundle), %rootResource the container of a contained resource; values
carry their FHIR types (is/as/ofType/type()); resolve() finds Bundle entries and contained
resources.  Each rule: a passing and a failing instance; the reference's severity in the name
of the assertion."""

from __future__ import annotations

from typing import Any

from conformance.issues import Issue
from conformance.validator import Validator
from tests.conformance.definitions import invariant, sd, validator_with

PROFILE = "http://example.org/fhir/StructureDefinition/context-test"


def severities(issues: list[Issue], key: str, expression: str, message_id: str = "invariant.failed") -> list[str]:
    """Severities of the issues one constraint raised at one element."""
    return [
        i.severity
        for i in issues
        if i.message_id == message_id and i.params.get("key") == key and i.expression == expression
    ]


def collection(*resources: dict[str, Any]) -> dict[str, Any]:
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": f"urn:uuid:00000000-0000-0000-0000-00000000000{i}", "resource": r}
            for i, r in enumerate(resources)
        ],
    }


# -- %resource of a Bundle entry is the entry's resource (bdl-3, obs-7) -------------------------
def batch(with_request: bool) -> dict[str, Any]:
    entry: dict[str, Any] = {"resource": {"resourceType": "Basic", "code": {"text": "x"}}}
    if with_request:
        entry["request"] = {"method": "POST", "url": "Basic"}
    return {"resourceType": "Bundle", "type": "batch", "entry": [entry]}


def test_bdl_3_of_a_nested_batch_reads_the_batch_type(validator: Validator) -> None:
    issues = validator.validate(collection(batch(with_request=True)))
    assert severities(issues, "bdl-3", "Bundle.entry[0].resource") == []


def test_bdl_3_of_a_nested_batch_without_request_is_an_error(validator: Validator) -> None:
    issues = validator.validate(collection(batch(with_request=False)))
    assert severities(issues, "bdl-3", "Bundle.entry[0].resource") == ["error"]


def observation(component_code: str) -> dict[str, Any]:
    code = {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]}
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": code,
        "valueQuantity": {"value": 120},
        "component": [{"code": {"coding": [{"system": "http://loinc.org", "code": component_code}]}}],
    }


def test_obs_7_in_a_bundle_compares_with_the_observation_code(validator: Validator) -> None:
    issues = validator.validate(collection(observation("8480-6")))
    assert severities(issues, "obs-7", "Bundle.entry[0].resource") == ["error"]


def test_obs_7_in_a_bundle_passes_with_another_component_code(validator: Validator) -> None:
    issues = validator.validate(collection(observation("8462-4")))
    assert severities(issues, "obs-7", "Bundle.entry[0].resource") == []


# -- %rootResource of a contained resource is its container --------------------------------
def contained_profile() -> Validator:
    element = {"id": "Organization", "constraint": [invariant("ctx-1", "%rootResource is Patient")]}
    definition = sd(PROFILE, "Organization", [])
    definition["differential"]["element"][0].update(element)
    return validator_with(definition)


def organization() -> dict[str, Any]:
    return {"resourceType": "Organization", "id": "o1", "name": "社区卫生服务中心", "meta": {"profile": [PROFILE]}}


def test_root_resource_of_a_contained_resource_is_its_container() -> None:
    patient = {"resourceType": "Patient", "contained": [organization()], "managingOrganization": {"reference": "#o1"}}
    assert severities(contained_profile().validate(patient), "ctx-1", "Patient.contained[0]") == []


def test_root_resource_of_a_standalone_resource_is_itself() -> None:
    issues = contained_profile().validate(organization())
    assert severities(issues, "ctx-1", "Organization") == ["error"]


def test_dom_6_is_not_asked_of_contained_resources(validator: Validator) -> None:
    text = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">张秀英</div>'}
    patient = {
        "resourceType": "Patient",
        "text": text,
        "contained": [{"resourceType": "Organization", "id": "o1", "name": "中心"}],
        "managingOrganization": {"reference": "#o1"},
    }
    assert severities(validator.validate(patient), "dom-6", "Patient.contained[0]") == []


def test_dom_6_warns_when_the_resource_itself_has_no_narrative(validator: Validator) -> None:
    issues = validator.validate({"resourceType": "Patient", "active": True})
    assert [i.severity for i in issues if i.params.get("key") == "dom-6"] == ["warning"]


# -- typed values: is / as / ofType / type() ---------------------------------------------------
def questionnaire(answer: dict[str, Any]) -> dict[str, Any]:
    when = {"question": "q1", "operator": "exists", **answer}
    items = [{"linkId": "q1", "type": "string"}, {"linkId": "q2", "type": "string", "enableWhen": [when]}]
    return {"resourceType": "Questionnaire", "status": "active", "item": items}


def test_que_7_accepts_a_boolean_answer_for_exists(validator: Validator) -> None:
    issues = validator.validate(questionnaire({"answerBoolean": True}))
    assert severities(issues, "que-7", "Questionnaire.item[1].enableWhen[0]") == []


def test_que_7_rejects_a_string_answer_for_exists(validator: Validator) -> None:
    issues = validator.validate(questionnaire({"answerString": "yes"}))
    assert severities(issues, "que-7", "Questionnaire.item[1].enableWhen[0]") == ["error"]


def date_floor() -> Validator:
    element = {"id": "Patient.birthDate", "constraint": [invariant("ctx-2", "$this is date and $this >= @1900-01-01")]}
    return validator_with(sd(PROFILE, "Patient", [element]))


def test_a_primitive_is_typed_and_compared_as_a_date() -> None:
    issues = date_floor().validate({"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "birthDate": "1945-02"})
    assert [i.message_id for i in issues if i.params.get("key") == "ctx-2"] == []


def test_a_primitive_date_below_the_floor_fails() -> None:
    issues = date_floor().validate({"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "birthDate": "1899"})
    assert severities(issues, "ctx-2", "Patient.birthDate") == ["error"]


def test_of_type_sees_the_fhir_type_of_a_choice_value() -> None:
    element = {"id": "Observation", "constraint": [invariant("ctx-3", "value.ofType(Quantity).exists()")]}
    definition = sd(PROFILE, "Observation", [])
    definition["differential"]["element"][0].update(element)
    quantity = {"resourceType": "Observation", "meta": {"profile": [PROFILE]}, "status": "final", "code": {"text": "x"}}
    issues = validator_with(definition).validate({**quantity, "valueString": "120"})
    assert severities(issues, "ctx-3", "Observation") == ["error"]


# -- resolve() inside a Bundle and to contained resources (ctm-1) ----------------------------
def care_team(member: str) -> dict[str, Any]:
    participant = {"member": {"reference": member}, "onBehalfOf": {"reference": "urn:uuid:org"}}
    return {"resourceType": "CareTeam", "participant": [participant]}


def team_bundle(member_type: str) -> dict[str, Any]:
    bundle = collection(care_team("urn:uuid:member"))
    bundle["entry"] += [
        {"fullUrl": "urn:uuid:member", "resource": {"resourceType": member_type, "active": True}},
        {"fullUrl": "urn:uuid:org", "resource": {"resourceType": "Organization", "name": "中心"}},
    ]
    return bundle


def test_ctm_1_resolves_the_member_in_the_bundle(validator: Validator) -> None:
    issues = validator.validate(team_bundle("Practitioner"))
    assert severities(issues, "ctm-1", "Bundle.entry[0].resource.participant[0]") == []


def test_ctm_1_fails_when_the_member_resolves_to_a_patient(validator: Validator) -> None:
    issues = validator.validate(team_bundle("Patient"))
    assert severities(issues, "ctm-1", "Bundle.entry[0].resource.participant[0]") == ["error"]


def contained_team(member_type: str) -> dict[str, Any]:
    team = care_team("#m")
    team["participant"][0]["onBehalfOf"] = {"display": "中心"}
    team["contained"] = [{"resourceType": member_type, "id": "m", "active": True}]
    return team


def test_ctm_1_resolves_a_contained_member(validator: Validator) -> None:
    assert severities(validator.validate(contained_team("Practitioner")), "ctm-1", "CareTeam.participant[0]") == []


def test_ctm_1_fails_for_a_contained_patient_member(validator: Validator) -> None:
    issues = validator.validate(contained_team("Patient"))
    assert severities(issues, "ctm-1", "CareTeam.participant[0]") == ["error"]


# -- what cannot be evaluated is not passed --------------------------------------------------
def unevaluable(severity: str) -> Validator:
    element = {"id": "Patient.name", "constraint": [invariant("ctx-4", "text.conformsTo('x')", severity)]}
    return validator_with(sd(PROFILE, "Patient", [element]))


def test_an_error_invariant_that_cannot_be_evaluated_is_an_error() -> None:
    patient = {"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "name": [{"text": "张"}]}
    issues = unevaluable("error").validate(patient)
    assert severities(issues, "ctx-4", "Patient.name[0]", "invariant.not-evaluable") == ["error"]


def test_a_warning_invariant_that_cannot_be_evaluated_is_a_warning() -> None:
    patient = {"resourceType": "Patient", "meta": {"profile": [PROFILE]}, "name": [{"text": "张"}]}
    issues = unevaluable("warning").validate(patient)
    assert severities(issues, "ctx-4", "Patient.name[0]", "invariant.not-evaluable") == ["warning"]


def test_resource_of_a_parameter_is_the_parameter_resource(validator: Validator) -> None:
    parameters = {"resourceType": "Parameters", "parameter": [{"name": "obs", "resource": observation("8480-6")}]}
    issues = validator.validate(parameters)
    assert severities(issues, "obs-7", "Parameters.parameter[0].resource") == ["error"]


def entry_profile() -> Validator:
    element = {"id": "Bundle.entry.resource", "constraint": [invariant("ctx-5", "%resource is Patient")]}
    return validator_with(sd(PROFILE, "Bundle", [element]))


def test_a_bundle_profile_sees_the_entry_resource_as_resource() -> None:
    bundle = {**collection({"resourceType": "Patient", "active": True}), "meta": {"profile": [PROFILE]}}
    assert severities(entry_profile().validate(bundle), "ctx-5", "Bundle.entry[0].resource") == []


def test_a_bundle_profile_rejects_an_entry_resource_of_another_type() -> None:
    bundle = {**collection({"resourceType": "Basic", "code": {"text": "x"}}), "meta": {"profile": [PROFILE]}}
    assert severities(entry_profile().validate(bundle), "ctx-5", "Bundle.entry[0].resource") == ["error"]
