"""A differential element whose path is not in the R4 base is a broken profile, reported as
such (the reference validator refuses the StructureDefinition), never compiled into a rule that
constrains what no instance can contain.  Paths through datatypes, typed choice names and
content references are real paths and pass."""

from __future__ import annotations

from typing import Any

import pytest

from conformance.validator import Validator
from tests.conformance.definitions import sd, validator_with

URL = "http://example.org/fhir/StructureDefinition/path-test"


def check(type_: str, element: dict[str, Any], **content: Any) -> list[tuple[str, str]]:
    validator: Validator = validator_with(sd(URL, type_, [element]))
    issues = validator.validate({"resourceType": type_, "meta": {"profile": [URL]}, **content})
    return [(i.severity, i.message_id) for i in issues if i.message_id.startswith(("definition.", "profile."))]


def test_a_misspelt_element_is_a_broken_profile() -> None:
    assert check("Patient", {"id": "Patient.nmae", "min": 1}) == [("error", "definition.unknown-path")]


def test_a_misspelt_element_is_not_compiled_into_a_minimum() -> None:
    issues = check("Patient", {"id": "Patient.nmae", "min": 1})
    assert ("error", "profile.cardinality-min") not in issues


def test_a_child_missing_from_the_datatype_is_a_broken_profile() -> None:
    issues = check(
        "Observation", {"id": "Observation.valueQuantity.unti", "min": 1}, status="final", code={"text": "x"}
    )
    assert issues == [("error", "definition.unknown-path")]


@pytest.mark.parametrize(
    ("type_", "element_id"),
    [
        ("Patient", "Patient.name.family"),
        ("Observation", "Observation.value[x]"),
        ("Observation", "Observation.valueQuantity.unit"),
        ("Questionnaire", "Questionnaire.item.item.linkId"),
        ("Patient", "Patient.extension:nickname.value[x]"),
        ("Patient", "Patient.birthDate.extension"),
    ],
)
def test_real_paths_compile_without_problems(type_: str, element_id: str) -> None:
    validator = validator_with(sd(URL, type_, [{"id": element_id, "short": "x"}]))
    assert validator.compiler.get(URL).problems == ()
