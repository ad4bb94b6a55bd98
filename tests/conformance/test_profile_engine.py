"""The profile engine applies StructureDefinitions as written, including ones loaded at run
time: each rule kind is exercised with a passing and a failing instance."""

from __future__ import annotations

import copy
from collections import OrderedDict
from typing import Any

import pytest

from conformance.profile_walker import _forget_oldest
from conformance.validator import Validator
from profiles.registry import Registry
from tests.conformance.definitions import sd
from tests.conftest import errors, found

URL = "http://example.org/fhir/StructureDefinition/test-patient"
EXT = "http://example.org/fhir/StructureDefinition/test-nickname"
VS = "http://example.org/fhir/ValueSet/test-colours"
CS = "http://example.org/fhir/CodeSystem/test-colours"


TERMINOLOGY = [
    {
        "resourceType": "CodeSystem",
        "url": CS,
        "status": "active",
        "content": "complete",
        "concept": [{"code": "red"}, {"code": "green", "concept": [{"code": "olive"}]}],
    },
    {"resourceType": "ValueSet", "url": VS, "status": "active", "compose": {"include": [{"system": CS}]}},
    sd(
        EXT,
        "Extension",
        [
            {"id": "Extension.url", "fixedUri": EXT},
            {"id": "Extension.value[x]", "min": 1, "type": [{"code": "string"}]},
        ],
        kind="complex-type",
    ),
]


def validator_with(*elements: dict[str, Any], snapshot: bool = False) -> Validator:
    registry = Registry()
    for resource in [*TERMINOLOGY, sd(URL, "Patient", [copy.deepcopy(e) for e in elements], snapshot=snapshot)]:
        registry.add_resource(resource, "test")
    return Validator(registry)


def run(validator: Validator, resource: dict[str, Any]) -> list:
    resource = {"resourceType": "Patient", "meta": {"profile": [URL]}, **resource}
    return validator.validate(resource)


# -- cardinality ---------------------------------------------------------------------------
CARD = {"id": "Patient.name", "min": 1, "max": "1"}


def test_profile_minimum_cardinality_fails_when_absent() -> None:
    assert found(run(validator_with(CARD), {}), "profile.cardinality-min", "Patient.name")


def test_profile_maximum_cardinality_fails_when_exceeded() -> None:
    assert found(run(validator_with(CARD), {"name": [{"text": "a"}, {"text": "b"}]}), "profile.cardinality-max")


def test_profile_cardinality_passes_when_met() -> None:
    assert errors(run(validator_with(CARD), {"name": [{"text": "a"}]})) == []


def test_snapshot_only_profile_is_applied_too() -> None:
    element = {**CARD, "base": {"path": "Patient.name", "min": 0, "max": "*"}}
    assert found(run(validator_with(element, snapshot=True), {}), "profile.cardinality-min", "Patient.name")


# -- fixed and pattern ---------------------------------------------------------------------
def test_fixed_value_mismatch_is_reported() -> None:
    v = validator_with({"id": "Patient.gender", "fixedCode": "female"})
    assert found(run(v, {"gender": "male"}), "profile.fixed-mismatch", "Patient.gender")


def test_a_fixed_value_three_elements_down_is_reported_at_its_whole_path() -> None:
    """A value's path is put together from its parents' only for a finding: each step and
    index must still be there."""
    contacts = [{"name": {"family": "王"}}, {"gender": "male", "name": {"family": "李"}}]
    issues = run(validator_with({"id": "Patient.contact.name.family", "fixedString": "王"}), {"contact": contacts})
    assert found(issues, "profile.fixed-mismatch", "Patient.contact[1].name.family")


def test_pattern_matches_a_superset_instance() -> None:
    v = validator_with(
        {"id": "Patient.maritalStatus", "patternCodeableConcept": {"coding": [{"system": "s", "code": "20"}]}}
    )
    assert (
        errors(
            run(v, {"maritalStatus": {"coding": [{"system": "s", "code": "20", "display": "已婚"}], "text": "已婚"}})
        )
        == []
    )


def test_pattern_mismatch_is_reported() -> None:
    v = validator_with(
        {"id": "Patient.maritalStatus", "patternCodeableConcept": {"coding": [{"system": "s", "code": "20"}]}}
    )
    assert found(run(v, {"maritalStatus": {"coding": [{"system": "s", "code": "10"}]}}), "profile.pattern-mismatch")


# -- types and target profiles -------------------------------------------------------------
def test_choice_type_restriction_rejects_other_types() -> None:
    v = validator_with({"id": "Patient.deceased[x]", "type": [{"code": "boolean"}]})
    assert found(run(v, {"deceasedDateTime": "2020-01-01"}), "profile.type-not-allowed", "Patient.deceasedDateTime")


def test_a_rule_judges_the_type_of_each_value_it_meets_as_its_own() -> None:
    """A rule's types are sorted out once per value type, never once for all: values of an
    allowed and a refused type in turn keep their own verdicts."""
    v = validator_with({"id": "Patient.deceased[x]", "type": [{"code": "boolean"}]})
    values = [{"deceasedDateTime": "2020-01-01"}, {"deceasedBoolean": True}, {"deceasedDateTime": "2020-01-01"}]
    assert [found(run(v, value), "profile.type-not-allowed") for value in values] == [True, False, True]


def test_reference_target_restriction_rejects_other_resource_types() -> None:
    v = validator_with(
        {
            "id": "Patient.generalPractitioner",
            "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"]}],
        }
    )
    issues = run(v, {"generalPractitioner": [{"reference": "Organization/1"}]})
    assert found(issues, "profile.reference-target", "Patient.generalPractitioner[0]")


def test_reference_target_restriction_accepts_allowed_type() -> None:
    v = validator_with(
        {
            "id": "Patient.generalPractitioner",
            "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"]}],
        }
    )
    assert errors(run(v, {"generalPractitioner": [{"reference": "Practitioner/1"}]})) == []


def test_a_reference_typed_with_a_list_is_judged_without_failing() -> None:
    """Found by the validator's fuzzing: a "type" that is no string (the structure walk reports it)."""
    v = validator_with(
        {
            "id": "Patient.generalPractitioner",
            "type": [{"code": "Reference", "targetProfile": ["http://hl7.org/fhir/StructureDefinition/Practitioner"]}],
        }
    )
    issues = run(v, {"generalPractitioner": [{"type": ["Practitioner"], "display": "王医生"}]})
    assert not found(issues, "profile.reference-target")


# -- bindings ------------------------------------------------------------------------------
def binding(strength: str) -> dict[str, Any]:
    return {"id": "Patient.maritalStatus", "binding": {"strength": strength, "valueSet": VS}}


def test_required_binding_rejects_code_outside_value_set() -> None:
    issues = run(validator_with(binding("required")), {"maritalStatus": {"coding": [{"system": CS, "code": "blue"}]}})
    assert found(issues, "binding.not-in-valueset", "Patient.maritalStatus")


def test_required_binding_accepts_nested_concept() -> None:
    assert (
        errors(
            run(validator_with(binding("required")), {"maritalStatus": {"coding": [{"system": CS, "code": "olive"}]}})
        )
        == []
    )


def test_extensible_binding_only_warns() -> None:
    issues = run(
        validator_with(binding("extensible")), {"maritalStatus": {"coding": [{"system": "other", "code": "x"}]}}
    )
    assert [i.severity for i in issues if i.message_id == "binding.not-in-valueset"] == ["warning"]


@pytest.mark.parametrize("value", ["blue", 5])
def test_a_coded_value_of_the_wrong_json_type_is_one_type_error(value: Any) -> None:
    """A CodeableConcept sent as a string or number (Observation.component.code as "adl" in
    yy-observation-ltc-disability) is a type error; it was also judged as a code of the bound
    value set (binding.not-in-valueset, or binding.no-code for the number)."""
    issues = run(validator_with(binding("required")), {"maritalStatus": value})
    assert errors(issues) == [("structure.expected-object", "Patient.maritalStatus")]


def test_unknown_external_code_system_is_reported_not_crashed_on() -> None:
    registry = Registry()
    registry.add_resource(
        {
            "resourceType": "ValueSet",
            "url": VS,
            "status": "active",
            "compose": {"include": [{"system": "http://loinc.org"}]},
        }
    )
    registry.add_resource(sd(URL, "Patient", [binding("required")]))
    issues = run(Validator(registry), {"maritalStatus": {"coding": [{"system": "http://loinc.org", "code": "1234-5"}]}})
    assert found(issues, "binding.unknown-code-system", "Patient.maritalStatus")


def test_binding_to_unknown_value_set_warns() -> None:
    v = validator_with(
        {"id": "Patient.maritalStatus", "binding": {"strength": "required", "valueSet": "http://nowhere/vs"}}
    )
    assert found(run(v, {"maritalStatus": {"text": "x"}}), "binding.unknown-valueset")


# -- invariants and must-support -----------------------------------------------------------
def test_profile_invariant_failure_is_reported_at_its_element() -> None:
    v = validator_with(
        {
            "id": "Patient.name",
            "constraint": [
                {"key": "t-1", "severity": "error", "human": "text required", "expression": "text.exists()"}
            ],
        }
    )
    assert found(run(v, {"name": [{"family": "张"}]}), "invariant.failed", "Patient.name[0]")


def test_profile_invariant_pass() -> None:
    v = validator_with(
        {
            "id": "Patient.name",
            "constraint": [
                {"key": "t-1", "severity": "error", "human": "text required", "expression": "text.exists()"}
            ],
        }
    )
    assert errors(run(v, {"name": [{"text": "张三"}]})) == []


def test_a_profile_invariant_yielding_empty_fails_as_in_the_reference() -> None:
    """The reference validator converts an empty result to false (FHIRPathEngine
    convertToBoolean): family = '张' on a name without family is empty, so it fails."""
    v = validator_with(
        {
            "id": "Patient.name",
            "constraint": [{"key": "t-3", "severity": "error", "human": "姓张", "expression": "family = '张'"}],
        }
    )
    assert found(run(v, {"name": [{"text": "秀英"}]}), "invariant.failed", "Patient.name[0]")


def test_a_profile_invariant_is_worded_in_each_language_from_its_translation() -> None:
    """A package written in Chinese gives its constraints' English as a translation extension
    on ``_human`` (FHIR's way), not as "中文 / English" in one string."""
    translated = {
        "extension": [
            {
                "url": "http://hl7.org/fhir/StructureDefinition/translation",
                "extension": [{"url": "lang", "valueCode": "en"}, {"url": "content", "valueString": "family is Zhang"}],
            }
        ]
    }
    constraint = {
        "key": "t-5",
        "severity": "error",
        "human": "姓张",
        "_human": translated,
        "expression": "family = '张'",
    }
    v = validator_with({"id": "Patient.name", "constraint": [constraint]})
    issue = next(i for i in run(v, {"name": [{"text": "秀英"}]}) if i.params.get("key") == "t-5")
    assert (issue.text("zh-CN"), issue.text("en")) == (
        "约束 t-5 未满足：姓张",
        "Constraint t-5 failed: family is Zhang",
    )


def test_an_empty_result_passes_a_core_invariant_and_fails_a_profile_one() -> None:
    """Core invariants keep empty-passes: fhirpathpy propagates empty where the reference's
    engine answers a boolean for some published expressions."""
    from conformance.fhirpath_scope import Scope
    from conformance.invariants import compile_invariant

    name = {"text": "秀英"}
    verdicts = [
        compile_invariant("t-4", "error", "family = '张'", "姓张", empty_fails=fails).check(
            name, Scope(name, name), "HumanName"
        )
        for fails in (False, True)
    ]
    assert verdicts == [True, False]


def test_an_engine_failure_is_reported_without_an_objects_memory_address() -> None:
    """fhirpathpy's message names a node by Python's default text for it, whose address
    changed from run to run: the same resource got a different issue each time."""
    from conformance.fhirpath_scope import Scope
    from conformance.invariants import compile_invariant

    name = {"family": "张"}
    verdict = compile_invariant("t-5", "error", "(40 + family) > 0", "x").check(name, Scope(name, name), "HumanName")
    assert verdict == "Exception: Cannot [40] + [ResourceNode]"


def test_unparseable_invariant_is_reported_as_not_evaluable() -> None:
    v = validator_with(
        {
            "id": "Patient.name",
            "constraint": [{"key": "t-2", "severity": "error", "human": "broken", "expression": "text.exists( and"}],
        }
    )
    assert found(run(v, {"name": [{"text": "a"}]}), "invariant.not-evaluable")


def test_missing_must_support_element_is_information() -> None:
    issues = run(validator_with({"id": "Patient.telecom", "mustSupport": True}), {})
    assert [i.severity for i in issues if i.message_id == "profile.must-support-missing"] == ["information"]


# -- slicing -------------------------------------------------------------------------------
def identifier_slicing(rules: str = "open", ordered: bool = False) -> list[dict[str, Any]]:
    return [
        {
            "id": "Patient.identifier",
            "slicing": {"discriminator": [{"type": "value", "path": "system"}], "rules": rules, "ordered": ordered},
        },
        {"id": "Patient.identifier:a", "min": 1, "max": "1"},
        {"id": "Patient.identifier:a.system", "fixedUri": "urn:a"},
        {"id": "Patient.identifier:b", "min": 0, "max": "1"},
        {"id": "Patient.identifier:b.system", "fixedUri": "urn:b"},
        {"id": "Patient.identifier:b.value", "min": 1},
    ]


def ids(*systems: str) -> dict[str, Any]:
    return {"identifier": [{"system": s, "value": "1"} for s in systems]}


def test_value_discriminator_assigns_items_and_counts_slices() -> None:
    assert found(
        run(validator_with(*identifier_slicing()), ids("urn:b")), "profile.slice-cardinality-min", "Patient.identifier"
    )


def test_slice_maximum_is_enforced() -> None:
    assert found(run(validator_with(*identifier_slicing()), ids("urn:a", "urn:a")), "profile.slice-cardinality-max")


def test_slice_children_rules_apply_to_matched_items() -> None:
    issues = run(
        validator_with(*identifier_slicing()), {"identifier": [{"system": "urn:a", "value": "1"}, {"system": "urn:b"}]}
    )
    assert found(issues, "profile.cardinality-min", "Patient.identifier[1].value")


def test_open_slicing_accepts_unmatched_items() -> None:
    assert errors(run(validator_with(*identifier_slicing()), ids("urn:a", "urn:other"))) == []


def test_closed_slicing_rejects_unmatched_items() -> None:
    issues = run(validator_with(*identifier_slicing("closed")), ids("urn:a", "urn:other"))
    assert found(issues, "profile.slice-unmatched-closed", "Patient.identifier[1]")


def test_open_at_end_slicing_rejects_unmatched_items_before_slices() -> None:
    issues = run(validator_with(*identifier_slicing("openAtEnd")), ids("urn:other", "urn:a"))
    assert found(issues, "profile.slice-unmatched-open-at-end", "Patient.identifier[1]")


def test_ordered_slicing_rejects_out_of_order_slices() -> None:
    assert found(run(validator_with(*identifier_slicing(ordered=True)), ids("urn:b", "urn:a")), "profile.slice-order")


def test_ordered_slicing_accepts_slices_in_order() -> None:
    assert errors(run(validator_with(*identifier_slicing(ordered=True)), ids("urn:a", "urn:b"))) == []


def test_pattern_discriminator_on_this() -> None:
    elements = [
        {
            "id": "Patient.identifier",
            "slicing": {"discriminator": [{"type": "pattern", "path": "$this"}], "rules": "open"},
        },
        {"id": "Patient.identifier:a", "min": 1, "patternIdentifier": {"system": "urn:a"}},
    ]
    assert found(run(validator_with(*elements), ids("urn:x")), "profile.slice-cardinality-min")


def test_exists_discriminator() -> None:
    elements = [
        {
            "id": "Patient.telecom",
            "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "closed"},
        },
        {"id": "Patient.telecom:dated", "min": 0},
        {"id": "Patient.telecom:dated.period", "min": 1},
    ]
    issues = run(validator_with(*elements), {"telecom": [{"system": "phone", "value": "1"}]})
    assert found(issues, "profile.slice-unmatched-closed")


def test_type_discriminator_on_choice() -> None:
    elements = [
        {
            "id": "Patient.deceased[x]",
            "slicing": {"discriminator": [{"type": "type", "path": "$this"}], "rules": "closed"},
        },
        {"id": "Patient.deceased[x]:deceasedBoolean", "type": [{"code": "boolean"}]},
    ]
    assert found(run(validator_with(*elements), {"deceasedDateTime": "2020"}), "profile.slice-unmatched-closed")


# -- extensions by URL ---------------------------------------------------------------------
EXTENSION_SLICE = [
    {"id": "Patient.extension", "slicing": {"discriminator": [{"type": "value", "path": "url"}], "rules": "open"}},
    {"id": "Patient.extension:nickname", "min": 1, "max": "1", "type": [{"code": "Extension", "profile": [EXT]}]},
]


def test_required_extension_missing_is_reported() -> None:
    assert found(run(validator_with(*EXTENSION_SLICE), {}), "profile.slice-cardinality-min", "Patient.extension")


def test_extension_is_validated_against_its_definition() -> None:
    issues = run(validator_with(*EXTENSION_SLICE), {"extension": [{"url": EXT, "valueInteger": 3}]})
    assert found(issues, "profile.type-not-allowed", "Patient.extension[0].valueInteger")


def test_conforming_extension_passes() -> None:
    assert errors(run(validator_with(*EXTENSION_SLICE), {"extension": [{"url": EXT, "valueString": "阿英"}]})) == []


def test_an_extension_definition_added_later_judges_the_next_instance() -> None:
    """A rule remembers the compiled profiles its types name; a definition added since (an
    ``--ig`` loaded at run time) must be applied, not the first lookup's absence."""
    registry = Registry()
    registry.add_resource(sd(URL, "Patient", copy.deepcopy(EXTENSION_SLICE)), "test")
    validator = Validator(registry)
    resource = {"resourceType": "Patient", "meta": {"profile": [URL]}, "extension": [{"url": EXT, "valueInteger": 3}]}
    validator.validate(copy.deepcopy(resource))
    registry.add_resource(TERMINOLOGY[2], "test")
    assert found(validator.validate(resource), "profile.type-not-allowed", "Patient.extension[0].valueInteger")


def test_a_value_set_added_later_judges_an_extension_value_met_before() -> None:
    """An extension's verdict is remembered by value; a definition added since (its binding's
    value set, loaded at run time) must judge the same value anew, as a fresh validator does."""
    registry = Registry()
    value_set = "http://example.org/fhir/ValueSet/later"
    extension = sd(
        EXT,
        "Extension",
        [
            {"id": "Extension.url", "fixedUri": EXT},
            {
                "id": "Extension.value[x]",
                "type": [{"code": "Coding"}],
                "binding": {"strength": "required", "valueSet": value_set},
            },
        ],
        kind="complex-type",
    )
    registry.add_resource(extension, "test")
    registry.add_resource(sd(URL, "Patient", copy.deepcopy(EXTENSION_SLICE)), "test")
    validator = Validator(registry)
    coding = {"system": CS, "code": "blue"}
    resource = {
        "resourceType": "Patient",
        "meta": {"profile": [URL]},
        "extension": [{"url": EXT, "valueCoding": coding}],
    }
    validator.validate(copy.deepcopy(resource))
    registry.add_resource(TERMINOLOGY[0], "test")
    registry.add_resource({**TERMINOLOGY[1], "url": value_set}, "test")
    issues = validator.validate(copy.deepcopy(resource))
    assert [i.message_id for i in issues] == [i.message_id for i in Validator(registry).validate(resource)]
    assert not found(issues, "binding.unknown-valueset", "Patient.extension[0].valueCoding")


def test_a_value_set_added_later_judges_a_reference_target_met_before() -> None:
    """A target's verdict on a target profile is remembered for the same resource; a definition
    added since (the value set a binding of that profile names) must judge it anew."""
    registry = Registry()
    value_set = "http://example.org/fhir/ValueSet/later"
    observation_profile = "http://example.org/fhir/StructureDefinition/test-observation"
    status = {"id": "Patient.maritalStatus", "binding": {"strength": "required", "valueSet": value_set}}
    subject = {"id": "Observation.subject", "type": [{"code": "Reference", "targetProfile": [URL]}]}
    registry.add_resource(sd(URL, "Patient", [status]), "test")
    registry.add_resource(sd(observation_profile, "Observation", [subject]), "test")
    validator = Validator(registry)
    patient = {"resourceType": "Patient", "id": "p", "maritalStatus": {"coding": [{"system": CS, "code": "blue"}]}}
    observation = {
        "resourceType": "Observation",
        "meta": {"profile": [observation_profile]},
        "contained": [patient],
        "status": "final",
        "code": {"text": "体温"},
        "subject": {"reference": "#p"},
    }
    validator.validate(observation)
    registry.add_resource(TERMINOLOGY[0], "test")
    registry.add_resource({**TERMINOLOGY[1], "url": value_set}, "test")
    assert found(validator.validate(observation), "profile.reference-target-profile", "Observation.subject")


# -- profile selection ---------------------------------------------------------------------
def test_unknown_claimed_profile_is_a_warning(validator: Validator) -> None:
    issues = validator.validate({"resourceType": "Patient", "meta": {"profile": ["http://nowhere/sd"]}})
    assert found(issues, "profile.unknown")


def test_a_claimed_profile_at_a_version_not_held_is_unknown(validator: Validator) -> None:
    """yy-patient|9.9 is not the 0.1.0 the package holds: warned of, not judged by 0.1.0's rules."""
    claimed = "http://fhir.yiyang.cn/StructureDefinition/yy-patient|9.9"
    issues = validator.validate({"resourceType": "Patient", "meta": {"profile": [claimed]}})
    assert [i.message_id for i in issues if i.message_id.startswith("profile.")] == ["profile.unknown"]


def test_requested_profile_is_applied_in_addition(validator: Validator) -> None:
    from tests.conftest import SD

    issues = validator.validate({"resourceType": "Patient"}, [SD + "yy-patient"])
    assert found(issues, "profile.cardinality-min", "Patient.birthDate")


@pytest.mark.parametrize("url_suffix", ["yy-encounter", "yy-careplan"])
def test_profile_for_another_type_is_a_type_error(validator: Validator, url_suffix: str) -> None:
    from tests.conftest import SD

    assert found(validator.validate({"resourceType": "Patient"}, [SD + url_suffix]), "profile.wrong-type")


def test_a_profile_added_to_the_registry_replaces_its_compiled_form() -> None:
    registry = Registry(builtin=True)
    validator = Validator(registry)
    patient = {
        "resourceType": "Patient",
        "id": "x",
        "meta": {"profile": ["http://example.org/StructureDefinition/needs-name"]},
    }
    before = {i.message_id for i in validator.validate(patient)}
    registry.add_resource(
        {
            "resourceType": "StructureDefinition",
            "url": "http://example.org/StructureDefinition/needs-name",
            "name": "NeedsName",
            "status": "active",
            "kind": "resource",
            "abstract": False,
            "type": "Patient",
            "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
            "derivation": "constraint",
            "differential": {"element": [{"id": "Patient.name", "path": "Patient.name", "min": 1}]},
        }
    )
    after = {i.message_id for i in validator.validate(patient)}
    assert ("profile.cardinality-min" in before, "profile.cardinality-min" in after) == (False, True)


def test_an_implementation_guide_global_profile_applies_to_every_instance_of_its_type() -> None:
    registry = Registry()
    registry.add_resource(
        {
            "resourceType": "ImplementationGuide",
            "url": "http://example.org/ImplementationGuide/every-patient",
            "name": "EveryPatient",
            "status": "active",
            "packageId": "example.every.patient",
            "fhirVersion": ["4.0.1"],
            "global": [{"type": "Patient", "profile": "http://fhir.yiyang.cn/StructureDefinition/yy-patient"}],
        }
    )
    issues = Validator(registry).validate({"resourceType": "Patient", "id": "unclaimed"})
    assert found(issues, "profile.cardinality-min", "Patient.name")


def test_an_invariant_reading_an_extension_by_url_is_not_memoised_without_it(validator: Validator) -> None:
    """extension('url') reads the extension child through a function call: two Patients alike but
    for that extension must not share a memoised verdict."""
    from tests.conftest import load_example

    dead = load_example("yy-patient/invalid-deceased-record-not-deceased.json")
    alive = load_example("yy-patient/valid-zhang-xiuying.json")
    verdicts = [
        any(i.params.get("key") == "yy-pat-2" for i in validator.validate(resource)) for resource in (alive, dead)
    ]
    assert verdicts == [False, True]


def test_a_value_tested_only_for_presence_keeps_present_and_absent_apart(validator: Validator) -> None:
    """yy-pat-1 asks only whether a document's value exists: people differing in the number
    share one memoised verdict, but a document without a number does not share theirs."""
    from tests.conftest import load_example

    person = load_example("yy-patient/valid-zhang-xiuying.json")
    other = copy.deepcopy(person)
    other["identifier"][0]["value"] = "11010519491231002X"
    numberless = copy.deepcopy(person)
    numberless["identifier"] = [{k: v for k, v in i.items() if k != "value"} for i in numberless["identifier"]]
    verdicts = [
        any(i.params.get("key") == "yy-pat-1" for i in validator.validate(r)) for r in (person, other, numberless)
    ]
    assert verdicts == [False, False, True]


def test_an_invariant_reads_its_children_among_more_keys_than_it_learns(monkeypatch: pytest.MonkeyPatch) -> None:
    """An invariant remembers which JSON keys hold the children it reads, up to a bound; keys
    met after that are matched one by one, and still count."""
    import conformance.invariants as invariants
    from conformance.fhirpath_scope import Scope

    monkeypatch.setattr(invariants, "_KEYS_LEARNT", 8)
    invariant = invariants.Invariant("t-1", "error", "family.exists()", "a family name")
    person = {"resourceType": "Patient"}
    for number in range(20):  # a hostile stream of distinct keys fills what it learns
        invariant.check({f"x{number}": "a"}, Scope.of(person), "HumanName")
    verdicts = [
        invariant.check(name, Scope.of(person), "HumanName") for name in ({"y": "a", "family": "李"}, {"y": "a"})
    ]
    assert verdicts == [True, False]


STAY_ENDED = "status = 'finished' implies period.end.exists()"


def test_periods_differing_only_in_unread_times_share_one_evaluation(monkeypatch: pytest.MonkeyPatch) -> None:
    """yy-enc-1 asks only whether a stay's period has an end: Encounters whose periods differ
    in their times are answered from the memo (each was a new evaluation of 0.3 ms)."""
    import conformance.invariants as invariants
    from conformance.fhirpath_scope import Scope

    evaluations = []
    run = invariants.Invariant._run
    monkeypatch.setattr(invariants.Invariant, "_run", lambda self, *a, **k: evaluations.append(a) or run(self, *a, **k))
    invariant = invariants.Invariant("t-2", "error", STAY_ENDED, "a finished stay has ended")
    for day in ("01", "02", "03"):
        stay = {"status": "finished", "period": {"start": f"2024-07-{day}", "end": f"2024-08-{day}"}}
        invariant.check(stay, Scope.of({"resourceType": "Encounter", **stay}), "Encounter")
    assert len(evaluations) == 2  # the empty element, once, when the invariant is prepared; then one stay


def test_a_period_read_for_its_end_keeps_ended_and_open_stays_apart() -> None:
    import conformance.invariants as invariants
    from conformance.fhirpath_scope import Scope

    invariant = invariants.Invariant("t-3", "error", STAY_ENDED, "a finished stay has ended")
    stays = [
        {"status": "finished", "period": {"start": "2024-07-01", "end": "2024-08-01"}},
        {"status": "finished", "period": {"start": "2024-07-02"}},
        {
            "status": "finished",
            "period": {"start": "2024-07-03", "_end": {"extension": [{"url": "x", "valueString": "y"}]}},
        },
    ]
    verdicts = [invariant.check(stay, Scope.of({"resourceType": "Encounter", **stay}), "Encounter") for stay in stays]
    assert verdicts == [
        True,
        False,
        invariant._run(stays[2], Scope.of({"resourceType": "Encounter", **stays[2]}), "Encounter"),
    ]


@pytest.mark.parametrize(
    ("expression", "read_only_under_period"),
    [
        (STAY_ENDED, {"end"}),
        ("period.end.exists() and end.exists()", set()),  # an end of the element itself too
        ("period.end.exists() and x.period.end.exists()", set()),  # another element's period
        ("period.start.exists() or period.end.empty()", {"start", "end"}),
    ],
)
def test_a_child_read_only_under_a_pruned_element_is_told(expression: str, read_only_under_period: set[str]) -> None:
    """The memo key marks such a child present where the pruning of its parent does, and
    looks for it nowhere else; read anywhere else too, it is looked for everywhere."""
    from conformance.invariants import read_under

    names = frozenset({"start", "end"})
    assert read_under(expression, names, frozenset({"period"})) == read_only_under_period


def test_forgetting_the_oldest_verdict_another_thread_forgot_meanwhile_does_nothing() -> None:
    """The validator is shared by a worker's threads: two dropping the same oldest entry made
    the second's ``del`` raise KeyError out of a validation."""
    memo: OrderedDict[str, bool] = OrderedDict()
    _forget_oldest(memo)
    assert memo == {}


def test_the_verdicts_kept_are_the_newest_once_the_bound_is_reached() -> None:
    """Evicting from the front, entry by entry, keeps the last ones put in, in order."""
    memo: OrderedDict[int, bool] = OrderedDict()
    for key in range(10):
        if len(memo) >= 4:
            _forget_oldest(memo)
        memo[key] = True
    assert list(memo) == [6, 7, 8, 9]
