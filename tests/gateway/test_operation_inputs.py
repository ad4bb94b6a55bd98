"""What an operation takes, read from its OperationDefinition (gateway/fhir/operation_inputs.py)."""

from __future__ import annotations

import pytest

from gateway.fhir.operation_inputs import operation_inputs

DEFINITION = {
    "resourceType": "OperationDefinition",
    "parameter": [
        {"name": "source-patient-identifier", "use": "in", "min": 0, "max": "*", "type": "Identifier"},
        {"name": "result-patient", "use": "in", "min": 0, "max": "1", "type": "Patient"},
        {"name": "preview", "use": "in", "min": 0, "max": "1", "type": "boolean"},
        {"name": "outcome", "use": "out", "min": 1, "max": "1", "type": "OperationOutcome"},
    ],
}


def test_each_in_parameter_is_carried_by_the_element_of_its_type() -> None:
    assert dict(operation_inputs([DEFINITION]).elements) == {
        "source-patient-identifier": "valueIdentifier",
        "result-patient": "resource",
        "preview": "valueBoolean",
    }


def test_the_parameters_given_once_at_most_are_those_of_max_one() -> None:
    assert operation_inputs([DEFINITION]).single == {"result-patient", "preview"}


def test_a_parameter_of_max_zero_is_named_to_be_refused_not_taken() -> None:
    """``$evaluate-measure``'s definition names R4's ``patient`` with max 0: the gateway does
    not serve it, and must not take it as a parameter it would then ignore."""
    refusing = [{"name": name, "use": "in", "min": 0, "max": "0", "type": "string"} for name in ("subject", "patient")]
    inputs = operation_inputs([{**DEFINITION, "parameter": [*DEFINITION["parameter"], *refusing]}])
    assert (list(inputs.types), inputs.refused) == (list(operation_inputs([DEFINITION]).types), ("subject", "patient"))


def test_the_required_parameters_are_those_of_min_one() -> None:
    period = [{"name": name, "use": "in", "min": 1, "max": "1", "type": "date"} for name in ("start", "end")]
    inputs = operation_inputs([{**DEFINITION, "parameter": [*DEFINITION["parameter"], *period]}])
    assert inputs.required == ("start", "end")


def test_a_bound_parameter_takes_the_codes_of_the_value_set_the_definition_contains() -> None:
    """``$evaluate-measure``'s ``reportType``: the few codes the gateway takes are listed with
    the operation, in a contained value set its binding names."""
    kind = {"name": "kind", "use": "in", "min": 0, "max": "1", "type": "code"}
    value_set = {
        "resourceType": "ValueSet",
        "id": "kinds",
        "status": "active",
        "expansion": {"timestamp": "2026-12-06", "contains": [{"code": "a"}, {"system": "urn:x", "code": "b"}]},
    }
    bound = {**kind, "binding": {"strength": "required", "valueSet": "#kinds"}}
    inputs = operation_inputs([{**DEFINITION, "contained": [value_set], "parameter": [bound]}])
    assert (dict(inputs.codes), dict(operation_inputs([DEFINITION]).codes)) == ({"kind": ("a", "b")}, {})


def test_a_binding_to_a_value_set_the_definition_does_not_contain_is_the_definitions_fault() -> None:
    bound = {"name": "kind", "use": "in", "min": 0, "max": "1", "type": "code", "binding": {"valueSet": "#none"}}
    with pytest.raises(LookupError):
        operation_inputs([{**DEFINITION, "parameter": [bound]}])
