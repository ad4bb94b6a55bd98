"""minValue[x] / maxValue[x] and maxLength (elementdefinition.html): a value outside the bounds
is an error, as in the reference validator (TYPE_SPECIFIC_CHECKS_DT_*_LT / _GT,
TYPE_SPECIFIC_CHECKS_DT_PRIMITIVE_LENGTH); partial dates fail only when certainly outside."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance import ucum
from conformance.validator import Validator
from tests.conformance.definitions import sd, validator_with

URL = "http://example.org/fhir/StructureDefinition/bounds-test"


def verdicts(type_: str, element: dict[str, Any], **content: Any) -> list[tuple[str, str]]:
    validator = validator_with(sd(URL, type_, [element]))
    issues = validator.validate({"resourceType": type_, "meta": {"profile": [URL]}, **content})
    return [(i.severity, i.message_id) for i in issues if i.message_id.startswith("profile.")]


BIRTH = {"id": "Patient.birthDate", "minValueDate": "1900-01-01", "maxValueDate": "2026-12-31"}
COUNT = {"id": "Patient.multipleBirth[x]", "minValueInteger": 1, "maxValueInteger": 9}
OBSERVATION = {"status": "final", "code": {"text": "体温"}}
TEMPERATURE = {
    "id": "Observation.value[x]",
    "minValueQuantity": {"value": 30, "system": "http://unitsofmeasure.org", "code": "Cel"},
}


@pytest.mark.parametrize("birth", ["1945-02-14", "1900", "2026-12"])
def test_a_date_within_bounds_passes(birth: str) -> None:
    assert verdicts("Patient", dict(BIRTH), birthDate=birth) == []


@pytest.mark.parametrize(("birth", "message_id"), [("1899-12-31", "profile.min-value"), ("2027", "profile.max-value")])
def test_a_date_outside_bounds_is_an_error(birth: str, message_id: str) -> None:
    assert verdicts("Patient", dict(BIRTH), birthDate=birth) == [("error", message_id)]


def test_an_integer_within_bounds_passes() -> None:
    assert verdicts("Patient", dict(COUNT), multipleBirthInteger=2) == []


def test_an_integer_above_the_maximum_is_an_error() -> None:
    assert verdicts("Patient", dict(COUNT), multipleBirthInteger=12) == [("error", "profile.max-value")]


def test_a_decimal_bound_compares_exactly() -> None:
    element = {"id": "Observation.value[x]", "maxValueDecimal": 0.3}
    assert verdicts("Observation", element, **OBSERVATION, valueDecimal=0.30000000000000004) == [
        ("error", "profile.max-value")
    ]


def test_a_quantity_in_the_same_unit_below_the_minimum_is_an_error() -> None:
    value = {"value": 25, "system": "http://unitsofmeasure.org", "code": "Cel"}
    assert verdicts("Observation", dict(TEMPERATURE), **OBSERVATION, valueQuantity=value) == [
        ("error", "profile.min-value")
    ]


def test_a_fahrenheit_temperature_above_a_celsius_minimum_passes() -> None:
    value = {"value": 98, "system": "http://unitsofmeasure.org", "code": "[degF]"}  # 36.7 °C
    assert verdicts("Observation", dict(TEMPERATURE), **OBSERVATION, valueQuantity=value) == []


def test_a_fahrenheit_temperature_below_a_celsius_minimum_is_an_error() -> None:
    value = {"value": 80, "system": "http://unitsofmeasure.org", "code": "[degF]"}  # 26.7 °C
    assert verdicts("Observation", dict(TEMPERATURE), **OBSERVATION, valueQuantity=value) == [
        ("error", "profile.min-value")
    ]


def test_a_string_within_max_length_passes() -> None:
    assert verdicts("Patient", {"id": "Patient.name.family", "maxLength": 4}, name=[{"family": "欧阳"}]) == []


def test_a_string_over_max_length_is_an_error() -> None:
    name = [{"family": "欧阳欧阳欧"}]
    assert verdicts("Patient", {"id": "Patient.name.family", "maxLength": 4}, name=name) == [
        ("error", "profile.max-length")
    ]


# -- Quantities in other UCUM units (issue 11): converted with ucumvert, audited against UCUM ---------
# One validator holds one profile per bound; each instance names the profile it is checked against.
UCUM = "http://unitsofmeasure.org"
BOUNDS = {
    "max-weight": {"maxValueQuantity": {"value": 150, "system": UCUM, "code": "kg"}},
    "min-height": {"minValueQuantity": {"value": 1, "system": UCUM, "code": "m"}},
    "max-temperature": {"maxValueQuantity": {"value": 37, "system": UCUM, "code": "Cel"}},
    "max-systolic": {"maxValueQuantity": {"value": 16, "system": UCUM, "code": "kPa"}},
    "max-rate": {"maxValueQuantity": {"value": 2, "system": UCUM, "code": "s-1"}},
    "max-fraction": {"maxValueQuantity": {"value": 1, "system": UCUM, "code": "1"}},
    "max-glucose": {"maxValueQuantity": {"value": 7, "system": UCUM, "code": "mmol/L"}},
    "max-thyrotropin": {"maxValueQuantity": {"value": 5, "system": UCUM, "code": "m[IU]/L"}},
    "max-egfr": {"maxValueQuantity": {"value": 2, "system": UCUM, "code": "mL/s/{1.73_m2}"}},
    "max-score": {"maxValueQuantity": {"value": 10, "system": UCUM, "code": "{score}"}},
    "max-energy": {"maxValueQuantity": {"value": 3000, "system": UCUM, "code": "kcal"}},
    "max-local": {"maxValueQuantity": {"value": 150, "system": "http://example.org/units", "code": "kg"}},
}


@pytest.fixture(scope="module")
def bounded() -> Validator:
    profiles = [
        sd(f"{URL}-{name}", "Observation", [{"id": "Observation.value[x]", **bound}]) for name, bound in BOUNDS.items()
    ]
    return validator_with(*profiles)


def quantity_verdicts(validator: Validator, bound: str, value: float, code: str, system: str = UCUM):
    quantity = {"value": value, "system": system, "code": code}
    resource = {"resourceType": "Observation", "meta": {"profile": [f"{URL}-{bound}"]}, **OBSERVATION}
    issues = validator.validate({**resource, "valueQuantity": quantity})
    return [(i.severity, i.message_id, i.expression) for i in issues if i.message_id.startswith("profile.")]


@pytest.mark.parametrize(
    ("bound", "value", "code"),
    [
        ("max-weight", 150_000, "g"),
        ("max-weight", 330, "[lb_av]"),  # 149.7 kg
        ("min-height", 100, "cm"),
        ("min-height", 40, "[in_i]"),  # 1.016 m
        ("max-temperature", 98.6, "[degF]"),  # exactly 37 °C: no floating-point flip
        ("max-temperature", 310.15, "K"),
        ("max-systolic", 120, "mm[Hg]"),  # 16.0 kPa less 0.001
        ("max-rate", 110, "/min"),
        ("max-fraction", 95, "%"),
        ("max-glucose", 6900, "umol/L"),
        ("max-thyrotropin", 0.004, "[IU]/L"),
        ("max-egfr", 100, "mL/min/{1.73_m2}"),
    ],
)
def test_a_quantity_in_a_commensurable_ucum_unit_within_the_bound_passes(
    bounded: Validator, bound: str, value: float, code: str
) -> None:
    assert quantity_verdicts(bounded, bound, value, code) == []


@pytest.mark.parametrize(
    ("bound", "value", "code", "message_id"),
    [
        ("max-weight", 150_001, "g", "profile.max-value"),
        ("max-weight", 331, "[lb_av]", "profile.max-value"),  # 150.1 kg
        ("min-height", 99, "cm", "profile.min-value"),
        ("min-height", 39, "[in_i]", "profile.min-value"),
        ("max-temperature", 98.7, "[degF]", "profile.max-value"),
        ("max-temperature", 311, "K", "profile.max-value"),
        ("max-systolic", 121, "mm[Hg]", "profile.max-value"),
        ("max-rate", 121, "/min", "profile.max-value"),
        ("max-fraction", 101, "%", "profile.max-value"),
        ("max-glucose", 7.1e-3, "mol/L", "profile.max-value"),
        ("max-thyrotropin", 0.0051, "[IU]/L", "profile.max-value"),
        ("max-egfr", 121, "mL/min/{1.73_m2}", "profile.max-value"),
    ],
)
def test_a_quantity_in_a_commensurable_ucum_unit_outside_the_bound_is_an_error(
    bounded: Validator, bound: str, value: float, code: str, message_id: str
) -> None:
    assert quantity_verdicts(bounded, bound, value, code) == [("error", message_id, "Observation.valueQuantity")]


@pytest.mark.parametrize(
    ("bound", "value", "code", "system"),
    [
        ("max-glucose", 500, "mg/dL", UCUM),  # mass vs amount: needs a molar mass
        ("max-weight", 2, "m", UCUM),  # other dimension
        ("max-weight", 1, "kilogram", UCUM),  # not a UCUM code
        ("max-weight", 1, "kg ", UCUM),
        ("max-weight", 200_000, "g", "http://example.org/units"),  # only UCUM is converted
        ("max-local", 200_000, "g", "http://example.org/units"),
        ("max-egfr", 500, "mL/min", UCUM),  # UCUM ignores annotations; we do not
        ("max-score", 2000, "%", UCUM),  # {score} is not 1
        ("max-fraction", 200, "{score}", UCUM),
        ("max-thyrotropin", 50, "%", UCUM),  # arbitrary units compare only with themselves
        ("max-energy", 5, "[Cal]", UCUM),  # ucumvert's [Cal] is not UCUM's (= kcal): the audit refuses it
        ("max-fraction", 7, "[pH]", UCUM),  # a special unit other than Cel/[degF]
    ],
)
def test_a_quantity_in_a_unit_that_does_not_convert_is_reported_as_not_comparable(
    bounded: Validator, bound: str, value: float, code: str, system: str
) -> None:
    assert quantity_verdicts(bounded, bound, value, code, system) == [
        ("warning", "profile.value-bound-incomparable", "Observation.valueQuantity")
    ]


@settings(max_examples=200, deadline=None)
@given(code=st.text(max_size=40), other=st.sampled_from(["kg", "Cel", "mmol/L", "%", "{score}", "/min"]))
def test_any_unit_code_is_compared_or_refused_never_raises(code: str, other: str) -> None:
    verdict = ucum.compare(1.0, code, 1.0, other)
    assert verdict in (-1, 0, 1, None)
    if verdict is not None:  # whatever converts is symmetric and agrees with itself
        assert ucum.compare(1.0, other, 1.0, code) == -verdict
        assert ucum.compare(1.0, code, 1.0, code) == 0


@settings(max_examples=200, deadline=None)
@given(
    value=st.floats(min_value=-100, max_value=200, allow_nan=False),
    pair=st.sampled_from([("Cel", "[degF]"), ("kg", "[lb_av]"), ("mm[Hg]", "kPa"), ("cm", "[in_i]")]),
)
def test_a_value_compares_with_itself_in_another_unit_as_equal(value: float, pair: tuple[str, str]) -> None:
    converted = _convert(value, *pair)
    assert ucum.compare(value, pair[0], converted, pair[1]) == 0
    assert ucum.compare(value, pair[0], converted + abs(converted) * 1e-3 + 1, pair[1]) == -1


def _convert(value: float, source: str, target: str) -> float:
    engine = ucum._engine()
    registry = engine.registry
    source_units = engine.to_pint(engine.parse(source)).units
    target_units = engine.to_pint(engine.parse(target)).units
    return float(registry.Quantity(value, source_units).to(target_units).magnitude)
