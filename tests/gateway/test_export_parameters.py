"""A bulk export kick-off's Parameters body read into the (name, value) pairs a query string
gives, each located in the body (gateway/fhir/export_parameters.py)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fhir.errors import FhirError
from gateway.fhir.export_parameters import body_arguments, kick_off_parts

STRING_PARTS = sorted(name for name, kind in kick_off_parts().elements.items() if kind == "valueString")
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=12), children, max_size=3),
    max_leaves=12,
)
parts = st.dictionaries(
    st.sampled_from(["name", "valueString", "valueInstant", "valueReference", "valueCode", "part", "resource"]),
    json_values | st.sampled_from(sorted(kick_off_parts().elements)),
    max_size=3,
)


def parameters(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": list(parts)}


@given(st.lists(st.tuples(st.sampled_from(STRING_PARTS), st.text(min_size=1, max_size=20)), max_size=6))
def test_string_parts_are_the_pairs_a_query_string_gives_in_order(pairs: list[tuple[str, str]]) -> None:
    body = parameters(*({"name": name, "valueString": value} for name, value in pairs))
    assert body_arguments(body).pairs == pairs


@given(st.lists(parts | json_values, max_size=4))
def test_any_body_is_read_or_refused_with_a_located_400(found: list[Any]) -> None:
    """Whatever a client sends, the answer is its arguments or a 400 naming where it failed:
    never a server error."""
    try:
        arguments = body_arguments(parameters(*found))
    except FhirError as refused:
        assert (refused.status, (refused.expression or "").startswith("Parameters.parameter")) == (400, True)
    else:
        assert len(arguments.pairs) == len(arguments.where) == len(found)


def test_each_pair_is_located_at_its_value() -> None:
    body = parameters({"name": "_type", "valueString": "Patient"}, {"name": "_since", "valueInstant": "2026-12-01"})
    assert body_arguments(body).where == ["Parameters.parameter[0].valueString", "Parameters.parameter[1].valueInstant"]


def test_a_patient_is_read_as_its_reference() -> None:
    body = parameters({"name": "patient", "valueReference": {"reference": "Patient/zhang"}})
    assert body_arguments(body).pairs == [("patient", "Patient/zhang")]


@pytest.mark.parametrize(
    ("part", "expression"),
    [
        ({"name": "patient", "valueReference": {"display": "张秀英"}}, "Parameters.parameter[0].valueReference"),
        ({"name": "_since", "valueDateTime": "2026-12-01"}, "Parameters.parameter[0].valueDateTime"),
        ({"name": "_type", "valueString": "Patient", "valueCode": "Patient"}, "Parameters.parameter[0]"),
    ],
)
def test_a_value_of_another_type_is_refused_where_it_is(part: dict[str, Any], expression: str) -> None:
    with pytest.raises(FhirError) as refused:
        body_arguments(parameters(part))
    assert (refused.value.message_id, refused.value.expression) == ("http.export-part-type", expression)


def test_an_unknown_part_is_passed_on_valueless_at_its_name_when_lenient() -> None:
    """For the kick-off to ignore, and its manifest to report where it was given."""
    body = parameters({"name": "includeAssociatedData", "valueCode": "x"}, {"name": "_type", "valueString": "Patient"})
    found = body_arguments(body, lenient=True)
    assert list(zip(found.pairs, found.where, strict=True)) == [
        (("includeAssociatedData", ""), "Parameters.parameter[0].name"),
        (("_type", "Patient"), "Parameters.parameter[1].valueString"),
    ]


def test_a_body_that_is_not_parameters_is_refused() -> None:
    with pytest.raises(FhirError) as refused:
        body_arguments({"resourceType": "Patient"})
    assert (refused.value.message_id, refused.value.expression) == ("http.wrong-type", "resourceType")


def test_each_part_takes_the_value_type_its_operation_definition_gives() -> None:
    """profiles/bulkdata: the IG's parameters the gateway implements, by their types."""
    assert dict(kick_off_parts().elements) == {
        "_outputFormat": "valueString",
        "_since": "valueInstant",
        "_type": "valueString",
        "_elements": "valueString",
        "_typeFilter": "valueString",
        "patient": "valueReference",
    }


def test_the_parts_of_one_value_are_those_their_definitions_allow_once() -> None:
    assert kick_off_parts().single == {"_since", "_outputFormat"}
