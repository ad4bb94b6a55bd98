"""What a ``$validate`` request asks, read from its query and Parameters body
(gateway/fhir/validate_arguments.py): R4 Resource-validate's ``profile`` is 0..1, and a part
may carry it in any of the primitive types a client sends a URL in."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.fhir.errors import FhirError
from gateway.fhir.validate_arguments import ValidateQuery, validate_arguments

PATIENT = {"resourceType": "Patient"}
URLS = st.sampled_from(
    ["http://fhir.yiyang.cn/StructureDefinition/yy-patient", "http://hl7.org/fhir/StructureDefinition/Patient"]
)


def body(*parts: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Parameters", "parameter": [{"name": "resource", "resource": PATIENT}, *parts]}


@given(url=URLS, kind=st.sampled_from(["valueCanonical", "valueUri", "valueString"]))
def test_a_profile_part_is_read_from_any_type_a_url_is_sent_in(url: str, kind: str) -> None:
    asked = validate_arguments(ValidateQuery.parse([]), body({"name": "profile", kind: url}))
    assert asked.profiles == [url]


@given(first=URLS, second=URLS, in_body=st.booleans())
def test_a_second_profile_is_refused_as_repeated(first: str, second: str, in_body: bool) -> None:
    """profile is 0..1: given twice (in the query, or there and in the body), the resource was
    judged against both, which no client of R4 asks."""
    query = ValidateQuery.parse([("profile", first)] + ([] if in_body else [("profile", second)]))
    document = body({"name": "profile", "valueCanonical": second}) if in_body else PATIENT
    with pytest.raises(FhirError) as refused:
        validate_arguments(query, document)
    assert (refused.value.message_id, refused.value.expression) == ("http.repeated-parameter", "profile")


def test_a_profile_part_without_a_url_is_refused_where_it_stands() -> None:
    with pytest.raises(FhirError) as refused:
        validate_arguments(ValidateQuery.parse([]), body({"name": "profile", "valueBoolean": True}))
    expected = ("http.profile-parameter-without-url", "Parameters.parameter[1]")
    assert (refused.value.message_id, refused.value.expression) == expected
