"""The R4 base model walk: each rule kind with a passing and a failing instance."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from conformance.issues import IssueList
from conformance.periods import check_period, ends_before
from conformance.primitives import ADVISORY
from conformance.validator import Validator
from tests.conftest import errors, found


def check(validator: Validator, resource: dict[str, Any]) -> list:
    return validator.validate(resource)


def test_minimal_patient_has_no_errors(validator: Validator) -> None:
    assert errors(check(validator, {"resourceType": "Patient", "active": True})) == []


def test_unknown_resource_type_is_reported(validator: Validator) -> None:
    assert found(check(validator, {"resourceType": "Elder"}), "structure.unknown-resource-type")


def test_a_contained_resource_without_resource_type_is_told_so(validator: Validator) -> None:
    """Not "Unknown resource type 'None'": there is no type to be unknown."""
    resource = {"resourceType": "Patient", "contained": [{"id": "o1", "name": "x"}]}
    assert found(check(validator, resource), "structure.missing-resource-type", "Patient.contained[0]")


def test_abstract_resource_type_is_rejected(validator: Validator) -> None:
    assert found(check(validator, {"resourceType": "DomainResource"}), "structure.abstract-type")


def test_unknown_element_is_located(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "name": [{"txt": "张三"}]})
    assert found(issues, "structure.unknown-element", "Patient.name[0].txt")


@pytest.mark.parametrize("element", ["project", "author", "compartment"])
def test_an_element_the_definitions_republisher_added_to_meta_is_unknown(validator: Validator, element: str) -> None:
    """R4's Meta has versionId, lastUpdated, source, profile, security and tag alone."""
    issues = check(validator, {"resourceType": "Patient", "meta": {element: "x"}})
    assert found(issues, "structure.unknown-element", f"Patient.meta.{element}")


def test_repeating_element_must_be_an_array(validator: Validator) -> None:
    assert found(
        check(validator, {"resourceType": "Patient", "name": {"text": "张三"}}),
        "structure.expected-array",
        "Patient.name",
    )


def test_single_element_must_not_be_an_array(validator: Validator) -> None:
    assert found(
        check(validator, {"resourceType": "Patient", "gender": ["male"]}),
        "structure.unexpected-array",
        "Patient.gender",
    )


def test_empty_array_is_rejected(validator: Validator) -> None:
    assert found(check(validator, {"resourceType": "Patient", "name": []}), "structure.empty-array")


def test_null_is_rejected(validator: Validator) -> None:
    assert found(
        check(validator, {"resourceType": "Patient", "gender": None}), "structure.null-value", "Patient.gender"
    )


def test_required_element_missing_in_base_is_reported(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Observation", "status": "final"})
    assert found(issues, "structure.missing-required", "Observation.code")


def test_present_required_element_passes(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Observation", "status": "final", "code": {"text": "血压"}})
    assert not found(issues, "structure.missing-required")


def test_two_types_of_one_choice_element_are_rejected(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "deceasedBoolean": False, "deceasedDateTime": "2020-01-01"})
    assert found(issues, "structure.multiple-choice", "Patient.deceased[x]")


def test_an_underscore_form_counts_as_a_second_type_of_a_choice(validator: Validator) -> None:
    """`_deceasedDateTime` says the choice holds a dateTime: with `deceasedBoolean` that is two types."""
    absent = {
        "extension": [{"url": "http://hl7.org/fhir/StructureDefinition/data-absent-reason", "valueCode": "unknown"}]
    }
    issues = check(validator, {"resourceType": "Patient", "deceasedBoolean": False, "_deceasedDateTime": absent})
    assert found(issues, "structure.multiple-choice", "Patient.deceased[x]")


def test_choice_element_value_is_checked_by_its_type(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "deceasedDateTime": "yesterday"})
    assert found(issues, "primitive.bad-format", "Patient.deceasedDateTime")


@pytest.mark.parametrize(
    ("element", "value", "message_id"),
    [
        ("birthDate", "1945/1/1", "primitive.bad-format"),
        ("birthDate", "1945-02-29", "primitive.impossible-date"),
        ("active", "true", "primitive.wrong-json-type"),
        ("multipleBirthInteger", 3.5, "primitive.not-integer"),
        ("multipleBirthInteger", 2.0, "primitive.not-integer"),
        ("multipleBirthInteger", 2**40, "primitive.out-of-range"),
        ("id", "张三", "primitive.bad-format"),
        ("language", "   ", "primitive.whitespace"),
        ("language", "", "primitive.whitespace"),
    ],
)
def test_primitive_format_problems_are_reported(
    validator: Validator, element: str, value: Any, message_id: str
) -> None:
    assert found(check(validator, {"resourceType": "Patient", element: value}), message_id, f"Patient.{element}")


#: strings of a HumanName: well formed, of spaces alone (a warning), empty, with control
#: characters, or no string at all
NAME_PARTS = st.sampled_from(["珍", "Li Wei", "   ", "\u3000", "", "\x1c", "a\x00b", 5, True, 1.5])


@settings(max_examples=200, deadline=None)
@given(NAME_PARTS, st.lists(NAME_PARTS, min_size=1, max_size=5))
def test_each_primitive_format_problem_is_located_at_its_own_value(
    validator: Validator, family: object, given_names: list[object]
) -> None:
    """Most primitives are checked inline, their path put together only for a problem: each
    problem is still reported at its own value's FHIRPath, with the severity its kind has."""
    checker = validator.model.checkers["string"]
    values = [("Patient.name[0].family", family)]
    values += [(f"Patient.name[0].given[{index}]", value) for index, value in enumerate(given_names)]
    expected = {
        ("warning" if problem[0] in ADVISORY else "error", problem[0], path)
        for path, value in values
        if (problem := checker(value)) is not None
    }
    patient = {"resourceType": "Patient", "name": [{"family": family, "given": given_names}]}
    issues = check(validator, patient)
    assert {
        (i.severity, i.message_id, i.expression) for i in issues if i.message_id.startswith("primitive.")
    } == expected


@pytest.mark.parametrize(
    "system", ["urn:uuid:not-a-uuid", "urn:uuid:6B1F1A5E-7C55-4B8F-9A61-8D4B1A7D2E11", "urn:oid:1.02.3"]
)
def test_a_uri_that_is_a_uuid_or_oid_urn_meets_that_types_regex(validator: Validator, system: str) -> None:
    """R4's uri regex admits any text without spaces; a urn:uuid: or urn:oid: is held to its own."""
    patient = {"resourceType": "Patient", "identifier": [{"system": system, "value": "1"}]}
    assert found(check(validator, patient), "primitive.bad-format", "Patient.identifier[0].system")


@pytest.mark.parametrize("family", ["   ", "\u3000"])
def test_a_text_of_spaces_alone_is_a_warning_as_its_type_admits_it(validator: Validator, family: str) -> None:
    """R4's string regex is [ \\r\\n\\t\\S]+: a name of spaces is valid, though not meant."""
    issues = check(validator, {"resourceType": "Patient", "name": [{"family": family}]})
    assert [(i.severity, i.message_id) for i in issues if i.expression == "Patient.name[0].family"] == [
        ("warning", "primitive.all-whitespace")
    ]


@pytest.mark.parametrize("family", ["\x1c", " \x0b "])
def test_a_text_of_control_characters_that_strip_like_spaces_is_an_error(validator: Validator, family: str) -> None:
    issues = check(validator, {"resourceType": "Patient", "name": [{"family": family}]})
    assert found(issues, "primitive.control-character", "Patient.name[0].family")


@pytest.mark.parametrize("birth", ["1945", "1945-01", "1944-02-29"])
def test_partial_and_leap_dates_are_valid(validator: Validator, birth: str) -> None:
    assert errors(check(validator, {"resourceType": "Patient", "birthDate": birth})) == []


def test_element_without_value_or_children_violates_ele_1(validator: Validator) -> None:
    assert found(
        check(validator, {"resourceType": "Patient", "name": [{}]}), "structure.empty-element", "Patient.name[0]"
    )


@pytest.mark.parametrize(
    "resource",
    [
        {"birthDate": "1938-01-01", "_birthDate": {"id": "born"}},
        {"name": [{"given": ["秀英", "桂兰"], "_given": [None, {"id": "second"}]}]},
    ],
)
def test_an_id_on_a_primitive_with_a_value_is_not_empty(validator: Validator, resource: dict[str, Any]) -> None:
    assert errors(check(validator, {"resourceType": "Patient", **resource})) == []


def test_an_id_alone_on_a_primitive_without_a_value_violates_ele_1(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "_birthDate": {"id": "born"}})
    assert found(issues, "structure.empty-element", "Patient.birthDate")


def test_extension_with_value_and_children_violates_ext_1(validator: Validator) -> None:
    extension = {"url": "http://example.org/x", "valueString": "a", "extension": [{"url": "y", "valueString": "b"}]}
    issues = check(validator, {"resourceType": "Patient", "extension": [extension]})
    assert found(issues, "structure.extension-value-and-children", "Patient.extension[0]")


def test_primitive_extension_arrays_must_align(validator: Validator) -> None:
    name = {"given": ["秀英", "桂兰"], "_given": [None]}
    assert found(check(validator, {"resourceType": "Patient", "name": [name]}), "primitive.underscore-mismatch")


CORE_NAME_QUALIFIER = "http://hl7.org/fhir/StructureDefinition/iso21090-EN-qualifier"


def test_primitive_array_may_hold_null_where_extension_stands(validator: Validator) -> None:
    name = {
        "given": ["秀英", None],
        "_given": [None, {"extension": [{"url": CORE_NAME_QUALIFIER, "valueCode": "CL"}]}],  # 小名: call me
    }
    assert errors(check(validator, {"resourceType": "Patient", "name": [name]})) == []


def test_required_binding_of_base_spec_is_enforced(validator: Validator) -> None:
    assert found(
        check(validator, {"resourceType": "Patient", "gender": "男"}), "binding.not-in-valueset", "Patient.gender"
    )


def test_core_invariant_is_evaluated_with_fhirpath(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "contact": [{"gender": "male"}]})
    assert found(issues, "invariant.failed", "Patient.contact[0]")


def test_choice_typed_invariant_context_resolves_value(validator: Validator) -> None:
    # cpt-2: a ContactPoint with a value needs a system
    issues = check(validator, {"resourceType": "Patient", "telecom": [{"value": "13800138000"}]})
    assert found(issues, "invariant.failed", "Patient.telecom[0]")


def test_local_reference_without_contained_resource_fails_ref_1(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "managingOrganization": {"reference": "#org"}})
    assert found(issues, "invariant.failed", "Patient.managingOrganization")


def test_local_reference_to_contained_resource_passes(validator: Validator) -> None:
    resource = {
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "org", "name": "社区卫生服务中心"}],
        "managingOrganization": {"reference": "#org"},
    }
    assert errors(check(validator, resource)) == []


def test_a_contained_resource_without_an_id_nothing_can_reference_fails_dom_3(validator: Validator) -> None:
    resource = {"resourceType": "Patient", "contained": [{"resourceType": "Practitioner", "name": [{"text": "x"}]}]}
    assert [issue.params.get("key") for issue in check(validator, resource) if issue.is_error] == ["dom-3"]


def test_contained_resources_are_validated_too(validator: Validator) -> None:
    resource = {
        "resourceType": "Patient",
        "contained": [{"resourceType": "Organization", "id": "o", "nom": "x"}],
        "managingOrganization": {"reference": "#o"},
    }
    assert found(check(validator, resource), "structure.unknown-element", "Patient.contained[0].nom")


def test_period_ending_before_it_starts_is_an_error(validator: Validator) -> None:
    issues = check(
        validator,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "period": {"start": "2026-03-01", "end": "2026-02-01"},
        },
    )
    assert found(issues, "rule.period-order", "Encounter.period")


def test_period_of_mixed_precision_within_the_same_day_passes(validator: Validator) -> None:
    issues = check(
        validator,
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "period": {"start": "2026-03-01T08:00:00+08:00", "end": "2026-03-01"},
        },
    )
    assert not found(issues, "rule.period-order")


#: bounds of periods near one another, dates of each precision and dateTimes in several
#: zones and layouts (an impossible day, a comma fraction, no zone included)
PERIOD_BOUNDS = st.builds(
    lambda day, precision, time, zone: day[:precision] if precision else f"{day}T{time}{zone}",
    st.sampled_from(["2026-01-01", "2026-01-02", "2026-13-01", "2026-02-30"]),
    st.sampled_from([4, 7, 10, None, None, None]),
    st.sampled_from(["00:00:00", "10:00:00", "10:59:00", "23:00:00.5", "10:00:00,5", "24:00:00"]),
    st.sampled_from(["Z", "+08:00", "-05:00", ""]),
)


@settings(max_examples=2000, deadline=None)
@given(PERIOD_BOUNDS, PERIOD_BOUNDS)
@example("2026-01-01T10:00:00-05:00", "2026-01-01T11:00:00+08:00")
@example("2026-01-01T10:00:00.5Z", "2026-01-01T10:00:00.49Z")
def test_a_period_told_in_order_by_its_text_is_one_in_order_as_instants(start: str, end: str) -> None:
    """Periods written in one layout are judged by their text, the rest as instants: the
    verdict is the instants' either way."""
    issues = IssueList()
    check_period({"start": start, "end": end}, "Encounter.period", issues)
    assert found(issues, "rule.period-order") == ends_before(start, end)


def test_narrative_with_script_violates_txt_1(validator: Validator) -> None:
    text = {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></div>'}
    assert found(
        check(validator, {"resourceType": "Patient", "text": text}), "narrative.element-not-allowed", "Patient.text.div"
    )


def test_narrative_with_entity_declaration_is_rejected_without_expansion(validator: Validator) -> None:
    div = '<!DOCTYPE div [<!ENTITY x "boom">]><div xmlns="http://www.w3.org/1999/xhtml">&x;</div>'
    issues = check(validator, {"resourceType": "Patient", "text": {"status": "generated", "div": div}})
    assert found(issues, "narrative.invalid-xhtml")


def test_code_not_in_a_loaded_complete_code_system_is_an_error(validator: Validator) -> None:
    coding = {"system": "urn:oid:2.16.156.10011.2.3.3.5", "code": "99"}
    issues = check(validator, {"resourceType": "Patient", "maritalStatus": {"coding": [coding]}})
    assert found(issues, "code.unknown-in-system", "Patient.maritalStatus.coding[0]")


def test_every_issue_carries_a_fhirpath_location(validator: Validator) -> None:
    issues = check(validator, {"resourceType": "Patient", "name": [{"txt": 1}], "gender": "x", "birthDate": "1"})
    assert all(i.expression.startswith("Patient") for i in issues)


def test_two_contained_resources_with_one_id_are_refused(validator: Validator) -> None:
    """A local reference "#o" could name either; the reference validator reports the duplicate."""
    organization = {"resourceType": "Organization", "id": "o", "name": "颐养院"}
    resource = {
        "resourceType": "Patient",
        "contained": [organization, {**organization, "name": "分院"}],
        "managingOrganization": {"reference": "#o"},
    }
    assert errors(check(validator, resource)) == [("structure.duplicate-contained-id", "Patient.contained[1].id")]


@pytest.mark.parametrize("tag", ["zh", "zh-CN", "zh-Hans-CN", "en-US", "yue-HK", "de-CH-1901", "x-yiyang", "i-klingon"])
def test_a_well_formed_language_tag_is_a_resource_language(validator: Validator, tag: str) -> None:
    assert errors(check(validator, {"resourceType": "Patient", "language": tag})) == []


@pytest.mark.parametrize("tag", ["zz-#!", "zh_CN", "123", "zh-", "z", "en-US-"])
def test_a_resource_language_is_a_bcp_47_tag(validator: Validator, tag: str) -> None:
    """R4 binds Resource.language to all-languages (BCP-47): 'zz-#!' is a code, not a tag."""
    issues = check(validator, {"resourceType": "Patient", "language": tag})
    assert errors(issues) == [("code.invalid-language", "Patient.language")]


def test_a_contained_resource_language_is_a_bcp_47_tag(validator: Validator) -> None:
    organization = {"resourceType": "Organization", "id": "o", "name": "颐养院", "language": "zz-#!"}
    resource = {"resourceType": "Patient", "contained": [organization], "managingOrganization": {"reference": "#o"}}
    assert errors(check(validator, resource)) == [("code.invalid-language", "Patient.contained[0].language")]


def test_an_attachment_language_is_a_bcp_47_tag(validator: Validator) -> None:
    """Attachment.language has the same binding as Resource.language in R4."""
    resource = {"resourceType": "Patient", "photo": [{"contentType": "image/png", "language": "中文"}]}
    assert errors(check(validator, resource)) == [("code.invalid-language", "Patient.photo[0].language")]


@pytest.mark.parametrize(
    ("partner", "expected"),
    [({"id": "x"}, "structure.expected-array"), ([], "structure.empty-array")],
)
def test_a_primitive_extension_array_of_the_wrong_shape_is_one_error(
    validator: Validator, partner: Any, expected: str
) -> None:
    """One mistake, one error: a ``_given`` that is no array (or an empty one) is not also told
    it does not align with ``given``."""
    name = {"given": ["秀英"], "_given": partner}
    assert errors(check(validator, {"resourceType": "Patient", "name": [name]})) == [
        (expected, "Patient.name[0].given")
    ]


def test_a_decimal_sent_as_a_string_is_a_type_error_alone(validator: Validator) -> None:
    """rng-2 cannot compare "1.5" with 2; it was reported as not evaluable too, with the FHIRPath
    engine's Python exception as its reason, on top of the type error that explains it."""
    resource = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "血糖"},
        "valueRange": {"low": {"value": "1.5"}, "high": {"value": 2}},
    }
    assert errors(check(validator, resource)) == [("primitive.wrong-json-type", "Observation.valueRange.low.value")]
