"""minValue[x] / maxValue[x] and maxLength (elementdefinition.html): a value outside the bounds
is an error, as in the reference validator (TYPE_SPECIFIC_CHECKS_DT_*_LT / _GT,
TYPE_SPECIFIC_CHECKS_DT_PRIMITIVE_LENGTH); partial dates fail only when certainly outside."""

from __future__ import annotations

from typing import Any

import pytest

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


def test_a_quantity_in_another_unit_is_reported_as_not_comparable() -> None:
    value = {"value": 98, "system": "http://unitsofmeasure.org", "code": "[degF]"}
    assert verdicts("Observation", dict(TEMPERATURE), **OBSERVATION, valueQuantity=value) == [
        ("warning", "profile.value-bound-incomparable")
    ]


def test_a_string_within_max_length_passes() -> None:
    assert verdicts("Patient", {"id": "Patient.name.family", "maxLength": 4}, name=[{"family": "欧阳"}]) == []


def test_a_string_over_max_length_is_an_error() -> None:
    name = [{"family": "欧阳欧阳欧"}]
    assert verdicts("Patient", {"id": "Patient.name.family", "maxLength": 4}, name=name) == [
        ("error", "profile.max-length")
    ]
