"""Slicing discriminators as profiling.html#discriminator defines them and the reference HL7
validator applies them: ``type`` compares FHIR types (a resource's resourceType, a choice
value's datatype), paths name choice elements without ``[x]`` and children by dotted names, and
a discriminator a slice does not constrain is left out rather than failing every item.  Each
rule has a passing and a failing instance; a failure is an error in the reference too."""

from __future__ import annotations

from functools import cache
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.discriminators import SlicePlan, Typed, of_resource, typed_values
from conformance.fhirpath_scope import Scope
from conformance.issues import Issue
from conformance.profile_walker import Item
from conformance.validator import Validator
from tests.conformance.definitions import sd, validator_with

URL = "http://example.org/fhir/StructureDefinition/slicing-test"
LOINC = "http://loinc.org"


def ids_at(issues: list[Issue], expression: str) -> list[str]:
    return [i.message_id for i in issues if i.is_error and i.expression == expression]


def profiled(type_: str, **content: Any) -> dict[str, Any]:
    return {"resourceType": type_, "meta": {"profile": [URL]}, **content}


# -- type discriminator on a resource: Bundle.entry by resource ------------------------------
def bundle_profile() -> Validator:
    return validator_with(
        sd(
            URL,
            "Bundle",
            [
                {"id": "Bundle.entry", "slicing": {"discriminator": [{"type": "type", "path": "resource"}]}},
                {"id": "Bundle.entry:patient", "min": 1, "max": "1"},
                {"id": "Bundle.entry:patient.resource", "type": [{"code": "Patient"}]},
            ],
        )
    )


def entries(*types: str) -> list[dict[str, Any]]:
    return [
        {"fullUrl": f"urn:uuid:0000000{i}-0000-4000-8000-000000000000", "resource": {"resourceType": t, "active": True}}
        for i, t in enumerate(types)
    ]


def test_type_discriminator_matches_a_resource_by_its_resource_type() -> None:
    issues = bundle_profile().validate(profiled("Bundle", type="collection", entry=entries("Organization", "Patient")))
    assert ids_at(issues, "Bundle.entry") == []


def test_type_discriminator_rejects_a_bundle_without_that_resource_type() -> None:
    issues = bundle_profile().validate(profiled("Bundle", type="collection", entry=entries("Organization")))
    assert ids_at(issues, "Bundle.entry") == ["profile.slice-cardinality-min"]


# -- a choice element named without [x]: Observation.component by value type ------------------
def component_profile() -> Validator:
    return validator_with(
        sd(
            URL,
            "Observation",
            [
                {"id": "Observation.component", "slicing": {"discriminator": [{"type": "type", "path": "value"}]}},
                {"id": "Observation.component:measured", "min": 1},
                {"id": "Observation.component:measured.value[x]", "type": [{"code": "Quantity"}]},
            ],
        )
    )


def observation(**component_value: Any) -> dict[str, Any]:
    component = {"code": {"text": "收缩压"}, **component_value}
    return profiled("Observation", status="final", code={"text": "血压"}, component=[component])


def test_choice_named_without_x_matches_its_typed_value() -> None:
    issues = component_profile().validate(observation(valueQuantity={"value": 120}))
    assert ids_at(issues, "Observation.component") == []


def test_choice_named_without_x_rejects_another_type() -> None:
    issues = component_profile().validate(observation(valueString="120"))
    assert ids_at(issues, "Observation.component") == ["profile.slice-cardinality-min"]


# -- dotted child paths: the vital-signs category (coding.code + coding.system) ---------------
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def category_profile() -> Validator:
    discriminators = [{"type": "value", "path": "coding.code"}, {"type": "value", "path": "coding.system"}]
    return validator_with(
        sd(
            URL,
            "Observation",
            [
                {"id": "Observation.category", "slicing": {"discriminator": discriminators, "rules": "open"}},
                {"id": "Observation.category:VSCat", "min": 1, "max": "1"},
                {"id": "Observation.category:VSCat.coding", "min": 1},
                {"id": "Observation.category:VSCat.coding.system", "fixedUri": CATEGORY},
                {"id": "Observation.category:VSCat.coding.code", "fixedCode": "vital-signs"},
            ],
        )
    )


def categorised(code: str) -> dict[str, Any]:
    category = [{"coding": [{"system": CATEGORY, "code": code}]}]
    return profiled("Observation", status="final", code={"text": "体温"}, category=category)


def test_dotted_discriminator_paths_match_nested_codings() -> None:
    assert ids_at(category_profile().validate(categorised("vital-signs")), "Observation.category") == []


def test_dotted_discriminator_paths_reject_another_code() -> None:
    issues = category_profile().validate(categorised("laboratory"))
    assert ids_at(issues, "Observation.category") == ["profile.slice-cardinality-min"]


# -- a slice that fixes only some of the discriminators ---------------------------------------
def partial_profile(fix_nothing: bool = False) -> Validator:
    discriminators = [{"type": "value", "path": "system"}, {"type": "value", "path": "use"}]
    elements: list[dict[str, Any]] = [
        {"id": "Patient.identifier", "slicing": {"discriminator": discriminators, "rules": "open"}},
        {"id": "Patient.identifier:idCard", "min": 1, "max": "1"},
    ]
    if not fix_nothing:
        elements.append({"id": "Patient.identifier:idCard.system", "fixedUri": "urn:oid:2.16.156.10011.1.3"})
    return validator_with(sd(URL, "Patient", elements))


def identified(system: str) -> dict[str, Any]:
    return profiled("Patient", identifier=[{"use": "official", "system": system, "value": "1"}])


def test_a_slice_fixing_only_the_system_matches_on_the_system() -> None:
    issues = partial_profile().validate(identified("urn:oid:2.16.156.10011.1.3"))
    assert ids_at(issues, "Patient.identifier") == []


def test_a_slice_fixing_only_the_system_still_rejects_another_system() -> None:
    issues = partial_profile().validate(identified("urn:oid:2.16.156.10011.1.2"))
    assert ids_at(issues, "Patient.identifier") == ["profile.slice-cardinality-min"]


def test_a_slice_fixing_no_discriminator_is_a_broken_profile() -> None:
    issues = partial_profile(fix_nothing=True).validate(identified("urn:oid:2.16.156.10011.1.3"))
    assert "definition.invalid" in ids_at(issues, "Patient.identifier")


# -- an element that must be absent (max 0) discriminates by absence -----------------------------
def test_a_discriminator_fixed_absent_matches_items_without_it() -> None:
    elements = [
        {
            "id": "Patient.telecom",
            "slicing": {"discriminator": [{"type": "exists", "path": "period"}], "rules": "closed"},
        },
        {"id": "Patient.telecom:current", "min": 1},
        {"id": "Patient.telecom:current.period", "max": "0"},
    ]
    patient = profiled("Patient", telecom=[{"system": "phone", "value": "13800138000"}])
    assert ids_at(validator_with(sd(URL, "Patient", elements)).validate(patient), "Patient.telecom") == []


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.text(max_size=40))
def test_any_discriminator_path_selects_values_without_raising(validator: Validator, path: str) -> None:
    patient = {"resourceType": "Patient", "identifier": [{"system": "s", "value": "1"}]}
    found = typed_values(validator.model, of_resource(validator.model, patient), path, Scope.of(patient))
    assert all(isinstance(value, Typed) for value in found)


# -- slices told apart by one string at one path (looked up, not tested one by one) ------------
def system_profile() -> Validator:
    discriminators = [{"type": "value", "path": "coding.system"}]
    return validator_with(
        sd(
            URL,
            "Observation",
            [
                {"id": "Observation.category", "slicing": {"discriminator": discriminators, "rules": "closed"}},
                {"id": "Observation.category:alpha", "max": "1"},
                {"id": "Observation.category:alpha.coding.system", "fixedUri": "urn:example:alpha"},
                {"id": "Observation.category:beta", "min": 1, "max": "1"},
                {"id": "Observation.category:beta.coding.system", "fixedUri": "urn:example:beta"},
            ],
        )
    )


def with_categories(*systems: list[str]) -> dict[str, Any]:
    category = [{"coding": [{"system": system, "code": "x"} for system in codings]} for codings in systems]
    return profiled("Observation", status="final", code={"text": "体温"}, category=category)


def test_an_item_carrying_two_slices_strings_goes_to_the_first_slice_defined() -> None:
    issues = system_profile().validate(with_categories(["urn:example:beta", "urn:example:alpha"]))
    assert ids_at(issues, "Observation.category") == ["profile.slice-cardinality-min"]


def test_an_item_carrying_no_slices_string_is_unmatched_in_closed_slicing() -> None:
    issues = system_profile().validate(with_categories(["urn:example:beta"], ["urn:example:gamma"]))
    assert ids_at(issues, "Observation.category[1]") == ["profile.slice-unmatched-closed"]


# -- the table agrees with the slices' own tests ----------------------------------------------
SYSTEMS = ["urn:example:a", "urn:example:b"]


@cache
def identifier_slicing() -> Validator:
    """Identifiers sliced by system, made once for all the examples of the property below."""
    return validator_with(
        sd(
            URL,
            "Patient",
            [
                {"id": "Patient.identifier", "slicing": {"discriminator": [{"type": "value", "path": "system"}]}},
                {"id": "Patient.identifier:a", "max": "1"},
                {"id": "Patient.identifier:a.system", "fixedUri": SYSTEMS[0]},
                {"id": "Patient.identifier:b", "max": "1"},
                {"id": "Patient.identifier:b.system", "fixedUri": SYSTEMS[1]},
            ],
        )
    )


#: what an identifier's system may hold in hostile input, the slices' strings among them
ANY_SYSTEM = st.one_of(
    st.sampled_from(SYSTEMS),
    st.text(max_size=3),
    st.integers(),
    st.none(),
    st.lists(st.sampled_from(SYSTEMS), max_size=2),
    st.dictionaries(st.sampled_from(["system", "value"]), st.sampled_from(SYSTEMS), max_size=1),
)


@given(system=ANY_SYSTEM, present=st.booleans())
def test_a_slice_looked_up_by_its_string_is_the_first_whose_tests_match(system: Any, present: bool) -> None:
    validator = identifier_slicing()
    walker = validator.profiles
    rule = validator.compiler.get(URL).root.children["identifier"]
    plan = SlicePlan.of(rule)
    identifier = {"system": system, "value": "1"} if present else {"value": "1"}
    item = Item(identifier, None, walker.model.nodes["Patient"].slots["identifier"], "Patient.identifier[0]")
    patient = {"resourceType": "Patient", "identifier": [identifier]}
    tested = next((n for n in plan.names if walker._matches(plan.tests[n], item, Scope.of(patient))), None)
    decided, looked_up = plan.indexed(identifier)
    assert (looked_up if decided else tested) == tested
