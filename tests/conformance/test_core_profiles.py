"""The R4 core constraint profiles (tools/derive_core_profiles.py): resolved by canonical URL, and
the vital-signs ones applied to every Observation whose code calls for them, as
observation-vitalsigns.html requires ("SHALL conform").  Each rule kind with a passing and a
failing instance written from the R4 vital-signs profiles; failures are errors, the severity
the profiles give them (cardinality, required bindings, fixed values, error invariants)."""

from __future__ import annotations

import copy
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.validator import Validator
from profiles.registry import Registry, _load_base
from tests.conftest import SD, errors, found

CORE = "http://hl7.org/fhir/StructureDefinition/"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
VITAL_SIGNS = {
    "coding": [{"system": "http://terminology.hl7.org/CodeSystem/observation-category", "code": "vital-signs"}]
}


def vital(code: str, quantity: dict[str, Any] | None = None, **elements: Any) -> dict[str, Any]:
    """A vital sign as observation-vitalsigns.html shows one: category, code, subject, time, value."""
    resource: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "category": [copy.deepcopy(VITAL_SIGNS)],
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/zhang-xiuying"},
        "effectiveDateTime": "2026-06-15T09:00:00+08:00",
    }
    if quantity is not None:
        resource["valueQuantity"] = {"system": UCUM, **quantity}
    resource.update(elements)
    return resource


def weight(value: float = 58.5, code: str = "kg", **elements: Any) -> dict[str, Any]:
    return vital("29463-7", {"value": value, "unit": code, "code": code}, **elements)


def pressure(*components: tuple[str, str]) -> dict[str, Any]:
    """A blood pressure panel with (LOINC code, UCUM unit) components."""
    return vital(
        "85354-9",
        component=[
            {
                "code": {"coding": [{"system": LOINC, "code": code}]},
                "valueQuantity": {"value": 120, "unit": unit, "system": UCUM, "code": unit},
            }
            for code, unit in components
        ],
    )


BOTH_ARMS = (("8480-6", "mm[Hg]"), ("8462-4", "mm[Hg]"))


# -- the derived data ---------------------------------------------------------------------
def test_derived_profiles_record_their_source_and_the_code_table_comes_from_them() -> None:
    derived = _load_base("r4-core-profiles.json")
    assert "profiles-others.json 4.0.1" in derived["_derived"]["source"]
    assert "derive_core_profiles.py" in derived["_derived"]["regenerate"]
    assert len(derived["profiles"]) == 43
    assert Registry().vital_signs_codes[LOINC] == {
        "8310-5": CORE + "bodytemp",
        "8867-4": CORE + "heartrate",
        "9279-1": CORE + "resprate",
        "2708-6": CORE + "oxygensat",
        "8302-2": CORE + "bodyheight",
        "9843-4": CORE + "headcircum",
        "29463-7": CORE + "bodyweight",
        "39156-5": CORE + "bmi",
        "85354-9": CORE + "bp",
        "85353-1": CORE + "vitalspanel",
    }


def test_registry_resolves_a_core_profile_by_url_after_every_source() -> None:
    registry = Registry()
    assert registry.get(CORE + "bp")["baseDefinition"] == CORE + "vitalsigns"
    assert registry.get(CORE + "bp|4.0.1")["type"] == "Observation"
    assert CORE + "bp" not in {sd["url"] for sd in registry.all("StructureDefinition")}
    mine = {"resourceType": "StructureDefinition", "url": CORE + "bp", "type": "Observation", "kind": "resource"}
    registry.add_resource(mine)
    assert registry.get(CORE + "bp") is mine


def test_every_core_profile_compiles_without_problems(validator: Validator) -> None:
    for sd in _load_base("r4-core-profiles.json")["profiles"]:
        compiled = validator.compiler.get(sd["url"])
        assert compiled is not None and compiled.problems == (), sd["url"]


# -- claimed by meta.profile ----------------------------------------------------------------
def test_blood_pressure_claiming_core_bp_passes(validator: Validator) -> None:
    resource = pressure(*BOTH_ARMS)
    resource["meta"] = {"profile": [CORE + "bp"]}
    assert errors(validator.validate(resource)) == []


def test_blood_pressure_panel_missing_the_systolic_component_is_an_error(validator: Validator) -> None:
    resource = pressure(("8462-4", "mm[Hg]"))
    resource["meta"] = {"profile": [CORE + "bp"]}
    issues = validator.validate(resource)
    assert errors(issues) == [
        ("profile.cardinality-min", "Observation.component"),
        ("profile.slice-cardinality-min", "Observation.component"),
    ]
    assert next(i for i in issues if i.message_id == "profile.slice-cardinality-min").params["slice"] == "SystolicBP"


# -- applied by code ----------------------------------------------------------------------
def test_body_weight_in_kg_g_or_pounds_passes_unclaimed(validator: Validator) -> None:
    for unit in ("kg", "g", "[lb_av]"):
        assert errors(validator.validate(weight(code=unit))) == [], unit


def test_body_weight_in_another_unit_is_an_error_without_any_profile_claimed(validator: Validator) -> None:
    issues = validator.validate(weight(code="[oz_av]"))
    assert errors(issues) == [("binding.not-in-valueset", "Observation.valueQuantity.code")]
    binding = next(i for i in issues if i.message_id == "binding.not-in-valueset")
    assert binding.params["valueSet"] == "http://hl7.org/fhir/ValueSet/ucum-bodyweight|4.0.1"


def test_body_weight_as_a_string_is_an_error(validator: Validator) -> None:
    resource = weight()
    del resource["valueQuantity"]
    resource["valueString"] = "58.5 公斤"
    assert ("profile.type-not-allowed", "Observation.valueString") in errors(validator.validate(resource))


def test_a_value_of_a_type_not_allowed_gets_no_rules_meant_for_the_allowed_type(validator: Validator) -> None:
    """A string where bp demands a Quantity is an error of its type; the Quantity's four required
    children were reported too, at Observation.component[0].valueString.value and the like."""
    resource = pressure(*BOTH_ARMS)
    resource["component"][0]["valueString"] = "120"
    del resource["component"][0]["valueQuantity"]
    inside = [
        e for e in errors(validator.validate(resource)) if e[1].startswith("Observation.component[0].valueString.")
    ]
    assert inside == []


def test_blood_pressure_missing_the_systolic_component_is_an_error_by_its_code(validator: Validator) -> None:
    assert errors(validator.validate(pressure(*BOTH_ARMS))) == []
    assert errors(validator.validate(pressure(("8462-4", "mm[Hg]")))) == [
        ("profile.cardinality-min", "Observation.component"),
        ("profile.slice-cardinality-min", "Observation.component"),
    ]


def test_blood_pressure_component_in_another_unit_is_an_error(validator: Validator) -> None:
    issues = validator.validate(pressure(("8480-6", "mm[Hg]"), ("8462-4", "kPa")))
    assert errors(issues) == [
        ("binding.not-in-valueset", "Observation.component[1].valueQuantity"),
        ("profile.fixed-mismatch", "Observation.component[1].valueQuantity.code"),
    ]


def test_vital_sign_without_effective_is_an_error(validator: Validator) -> None:
    resource = weight()
    del resource["effectiveDateTime"]
    assert errors(validator.validate(resource)) == [("profile.cardinality-min", "Observation.effective[x]")]


def test_vital_sign_timed_to_the_month_breaks_vs_1(validator: Validator) -> None:
    assert errors(validator.validate(weight(effectiveDateTime="2026-06-15"))) == []
    issues = validator.validate(weight(effectiveDateTime="2026-06"))
    assert errors(issues) == [("invariant.failed", "Observation.effectiveDateTime")]
    assert next(i for i in issues if i.is_error).params["key"] == "vs-1"


def test_vital_sign_without_the_vital_signs_category_is_an_error(validator: Validator) -> None:
    resource = weight(category=[{"coding": [{"system": VITAL_SIGNS["coding"][0]["system"], "code": "exam"}]}])
    assert errors(validator.validate(resource)) == [("profile.slice-cardinality-min", "Observation.category")]
    del resource["category"]
    assert errors(validator.validate(resource)) == [
        ("profile.cardinality-min", "Observation.category"),
        ("profile.slice-cardinality-min", "Observation.category"),
    ]


def test_vital_sign_with_neither_value_nor_data_absent_reason_breaks_vs_2(validator: Validator) -> None:
    reason = {
        "coding": [{"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "not-performed"}]
    }
    assert errors(validator.validate(vital("29463-7", dataAbsentReason=reason))) == []
    issues = validator.validate(vital("29463-7"))
    assert errors(issues) == [("invariant.failed", "Observation")]
    assert next(i for i in issues if i.is_error).params["key"] == "vs-2"


def test_vital_sign_measured_over_a_period_passes_and_to_the_month_fails_vs_1(validator: Validator) -> None:
    """vs-1 as published, ``($this as dateTime)…``, is empty for a Period, which failed it: a
    vital sign measured over five minutes was refused (corrected as the HL7 validator does)."""
    period = {"start": "2026-06-15T09:00:00+08:00", "end": "2026-06-15T09:05:00+08:00"}
    over_a_period = {k: v for k, v in weight().items() if k != "effectiveDateTime"} | {"effectivePeriod": period}
    assert (
        errors(validator.validate(over_a_period)),
        errors(validator.validate(weight(effectiveDateTime="2026-06"))),
    ) == (
        [],
        [("invariant.failed", "Observation.effectiveDateTime")],
    )


def ranged(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    """An Observation whose value is a Range (a 参考范围, an age band)."""
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"text": "血压参考范围"},
        "valueRange": {"low": low, "high": high},
    }


def mm_hg(value: float) -> dict[str, Any]:
    return {"value": value, "unit": "mmHg", "system": "http://unitsofmeasure.org", "code": "mm[Hg]"}


@settings(max_examples=60, deadline=None)
@given(low=st.integers(0, 300), high=st.integers(0, 300))
def test_a_range_with_both_ends_is_judged_by_rng_2(validator: Validator, low: int, high: int) -> None:
    """fhirpathpy compared the two Quantities as JSON objects: every Range with both ends was
    refused as not evaluable (``invariant.not-evaluable``), a valid 参考范围 too."""
    expected = [] if low <= high else [("invariant.failed", "Observation.valueRange")]
    assert errors(validator.validate(ranged(mm_hg(low), mm_hg(high)))) == expected


def test_a_range_whose_ends_have_other_units_is_not_judged_by_their_numbers(validator: Validator) -> None:
    """3 g to 200 mg is no descending range; FHIRPath leaves Quantities it cannot compare
    unjudged, and so does the correction."""
    grams = {"value": 3, "unit": "g", "system": "http://unitsofmeasure.org", "code": "g"}
    milligrams = {"value": 200, "unit": "mg", "system": "http://unitsofmeasure.org", "code": "mg"}
    assert errors(validator.validate(ranged(grams, milligrams))) == []


def test_a_range_in_unit_text_alone_is_judged_by_its_numbers(validator: Validator) -> None:
    """Without codes, ends of the same unit text (岁) are compared."""
    assert errors(validator.validate(ranged({"value": 80, "unit": "岁"}, {"value": 60, "unit": "岁"}))) == [
        ("invariant.failed", "Observation.valueRange")
    ]


def test_a_versioned_reference_names_the_type_before_its_id(validator: Validator) -> None:
    """``Patient/zhang-xiuying/_history/2`` was taken for a reference to a "_history"."""
    resource = weight(subject={"reference": "Patient/zhang-xiuying/_history/2"})
    assert not found(validator.validate(resource), "profile.reference-target")


def test_vital_sign_about_a_group_is_an_error(validator: Validator) -> None:
    resource = weight(subject={"reference": "Group/ward-3"})
    assert found(validator.validate(resource), "profile.reference-target", "Observation.subject")


def test_heart_rate_in_beats_per_minute_passes_and_in_chinese_units_fails(validator: Validator) -> None:
    assert errors(validator.validate(vital("8867-4", {"value": 72, "unit": "次/分", "code": "/min"}))) == []
    issues = validator.validate(vital("8867-4", {"value": 72, "unit": "次/分", "code": "次/分"}))
    assert errors(issues) == [
        ("code.invalid-ucum", "Observation.valueQuantity.code"),
        ("profile.fixed-mismatch", "Observation.valueQuantity.code"),
    ]


def test_body_temperature_in_celsius_passes_and_with_the_degree_sign_fails(validator: Validator) -> None:
    assert errors(validator.validate(vital("8310-5", {"value": 36.5, "unit": "℃", "code": "Cel"}))) == []
    issues = validator.validate(vital("8310-5", {"value": 36.5, "unit": "℃", "code": "℃"}))
    assert errors(issues) == [
        ("code.invalid-ucum", "Observation.valueQuantity.code"),
        ("binding.not-in-valueset", "Observation.valueQuantity.code"),
    ]


def test_observation_without_a_vital_signs_code_is_not_held_to_them(validator: Validator) -> None:
    glucose = vital("14743-9", {"value": 6.1, "unit": "mmol/L", "code": "mmol/L"})
    del glucose["category"], glucose["effectiveDateTime"]
    assert errors(validator.validate(glucose)) == []


def test_vital_sign_inside_a_bundle_is_held_to_its_profile(validator: Validator) -> None:
    resource = weight()
    del resource["effectiveDateTime"]
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"fullUrl": "urn:uuid:0b6f2d4e-93a1-4c1f-8e55-2f7d0c3a9b10", "resource": resource}],
    }
    assert errors(validator.validate(bundle)) == [
        ("profile.cardinality-min", "Bundle.entry[0].resource.effective[x]"),
    ]


def test_a_claimed_profile_derived_from_vital_signs_reports_each_finding_once(validator: Validator) -> None:
    resource = weight(encounter={"reference": "Encounter/health-check-2026"})
    resource["meta"] = {"profile": [SD + "yy-observation-body-measurement", CORE + "vitalsigns"]}
    del resource["effectiveDateTime"]
    assert errors(validator.validate(resource)) == [("profile.cardinality-min", "Observation.effective[x]")]
