"""Conformance resources validated as definitions: the rules that need the base model or a
FHIRPath parser, each with a passing and a failing instance (the reference validator reports
these as errors)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from conformance.validator import Validator
from tests.conftest import found

EXTENSION_URL = "http://example.org/StructureDefinition/favourite-tea"


def _sd(**changes: Any) -> dict[str, Any]:
    base = {
        "resourceType": "StructureDefinition",
        "url": "http://example.org/StructureDefinition/p",
        "name": "P",
        "status": "active",
        "kind": "resource",
        "abstract": False,
        "type": "Patient",
        "baseDefinition": "http://hl7.org/fhir/StructureDefinition/Patient",
        "derivation": "constraint",
        "differential": {"element": [{"id": "Patient.name", "path": "Patient.name", "min": 1}]},
    }
    return {**base, **changes}


def _extension(fixed: bool) -> dict[str, Any]:
    elements = [
        {"id": "Extension", "path": "Extension"},
        {"id": "Extension.value[x]", "path": "Extension.value[x]", "type": [{"code": "string"}]},
    ]
    if fixed:
        elements.insert(1, {"id": "Extension.url", "path": "Extension.url", "fixedUri": EXTENSION_URL})
    return _sd(
        url=EXTENSION_URL,
        kind="complex-type",
        type="Extension",
        baseDefinition="http://hl7.org/fhir/StructureDefinition/Extension",
        context=[{"type": "element", "expression": "Patient"}],
        differential={"element": elements},
    )


def _search_parameter(**changes: Any) -> dict[str, Any]:
    base = {
        "resourceType": "SearchParameter",
        "url": "http://example.org/SearchParameter/nickname",
        "name": "Nickname",
        "status": "active",
        "description": "by nickname",
        "code": "nickname",
        "base": ["Patient"],
        "type": "string",
        "expression": "Patient.name.where(use = 'nickname').text",
    }
    return {**base, **changes}


def _capability(resource_type: str, interaction: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-12-02",
        "kind": "instance",
        "fhirVersion": "4.0.1",
        "format": ["json"],
        "implementation": {"description": "test"},
        "rest": [{"mode": "server", "resource": [{"type": resource_type, "interaction": [{"code": interaction}]}]}],
    }


def _definition_errors(validator: Validator, resource: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (i.message_id, i.expression) for i in validator.validate(resource) if i.message_id.startswith("definition.")
    }


def test_a_sound_profile_has_no_definition_problem(validator: Validator) -> None:
    assert _definition_errors(validator, _sd()) == set()


def test_a_differential_path_missing_from_the_base_is_a_broken_definition(validator: Validator) -> None:
    broken = _sd(differential={"element": [{"id": "Patient.nickname", "path": "Patient.nickname", "min": 1}]})
    assert found(validator.validate(broken), "definition.unknown-path", "StructureDefinition.differential")


def test_slicing_one_element_twice_is_refused(validator: Validator) -> None:
    slicing = {"discriminator": [{"type": "value", "path": "system"}], "rules": "open"}
    element = {"id": "Patient.identifier", "path": "Patient.identifier", "slicing": slicing}
    broken = _sd(differential={"element": [element, copy.deepcopy(element)]})
    assert found(
        validator.validate(broken),
        "definition.slicing-redefined",
        "StructureDefinition.differential.element[1].slicing",
    )


def test_a_misspelt_discriminator_type_is_a_broken_definition(validator: Validator) -> None:
    slicing = {"discriminator": [{"type": "valeu", "path": "system"}], "rules": "open"}
    element = {"id": "Patient.identifier", "path": "Patient.identifier", "slicing": slicing}
    broken = _sd(differential={"element": [element]})
    assert found(validator.validate(broken), "definition.invalid", "StructureDefinition.differential")


@pytest.mark.parametrize(("fixed", "broken"), [(True, False), (False, True)])
def test_an_extension_must_fix_its_own_url(validator: Validator, fixed: bool, broken: bool) -> None:
    issues = validator.validate(_extension(fixed))
    assert found(issues, "definition.extension-url-not-fixed", "StructureDefinition.differential") is broken


def test_a_search_parameter_on_an_unknown_type_is_refused(validator: Validator) -> None:
    issues = validator.validate(_search_parameter(base=["Patinet"]))
    assert found(issues, "definition.unknown-type", "SearchParameter.base[0]")


def test_an_unknown_type_is_told_once_not_again_as_outside_resource_types(validator: Validator) -> None:
    """SearchParameter.base is bound to R4's resource-types: the type finding supersedes it."""
    issues = validator.validate(_search_parameter(base=["Patinet"]))
    assert [i.message_id for i in issues if i.expression == "SearchParameter.base[0]"] == ["definition.unknown-type"]


def test_a_search_parameter_whose_expression_does_not_parse_is_refused(validator: Validator) -> None:
    issues = validator.validate(_search_parameter(expression="Patient.name.where(use = "))
    assert found(issues, "definition.expression-invalid", "SearchParameter.expression")


def test_a_sound_search_parameter_has_no_definition_problem(validator: Validator) -> None:
    assert _definition_errors(validator, _search_parameter()) == set()


@pytest.mark.parametrize(
    ("kind", "interaction", "expected"),
    [
        ("Patient", "read", set()),
        ("Patinet", "read", {("definition.unknown-type", "CapabilityStatement.rest[0].resource[0].type")}),
        (
            "Patient",
            "transaction",
            {("definition.unknown-interaction", "CapabilityStatement.rest[0].resource[0].interaction[0].code")},
        ),
    ],
)
def test_a_capability_statement_names_known_types_and_interactions(
    validator: Validator, kind: str, interaction: str, expected: set[tuple[str, str]]
) -> None:
    assert _definition_errors(validator, _capability(kind, interaction)) == expected
