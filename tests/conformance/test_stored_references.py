"""The form a reference must have in a resource a server stores."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.issues import IssueList
from conformance.stored_references import References, check_stored_references

TYPES = frozenset({"Patient", "Organization", "Encounter"})


def findings(resource: dict[str, Any]) -> list[tuple[str, str]]:
    issues = IssueList()
    check_stored_references(resource, "", TYPES, issues)
    return [(issue.message_id, issue.expression) for issue in issues]


def encounter(reference: str) -> dict[str, Any]:
    return {"resourceType": "Encounter", "subject": {"reference": reference}}


@pytest.mark.parametrize(
    "reference",
    ["Patient/zhang-xiuying", "Patient/1/_history/2", "#p1", "http://other.example/fhir/Patient/1"],
)
def test_a_followable_reference_passes(reference: str) -> None:
    assert findings(encounter(reference)) == []


@pytest.mark.parametrize(
    ("reference", "message_id"),
    [
        ("Patient/a b", "reference.malformed"),
        ("Patient/", "reference.malformed"),
        ("Foo/1", "reference.malformed"),
        ("Patient?", "reference.conditional-not-resolved"),
        ("Patient?name=x", "reference.conditional-not-resolved"),
        ("urn:uuid:99999999-9999-9999-9999-999999999999", "reference.bundle-only"),
    ],
)
def test_a_reference_that_can_never_be_followed_is_an_error_at_its_path(reference: str, message_id: str) -> None:
    assert findings(encounter(reference)) == [(message_id, "Encounter.subject.reference")]


def test_a_reference_in_a_primitives_extension_is_judged_at_its_fhirpath() -> None:
    """``_birthDate`` is ``birthDate`` in FHIRPath, as the validator locates it: a urn:uuid
    there was stored, never to be followed."""
    patient = {
        "resourceType": "Patient",
        "_birthDate": {"extension": [{"url": "http://e.example", "valueReference": {"reference": "urn:uuid:1"}}]},
    }
    assert findings(patient) == [("reference.bundle-only", "Patient.birthDate.extension[0].valueReference.reference")]


def test_a_uri_element_called_reference_is_no_reference() -> None:
    detected = {"resourceType": "DetectedIssue", "reference": "see the guideline", "status": "final"}
    assert findings(detected) == []


def test_a_contained_resources_references_are_judged_too() -> None:
    patient = {"resourceType": "Patient", "contained": [{"resourceType": "Organization", "partOf": {"reference": "x"}}]}
    assert findings(patient) == [("reference.malformed", "Patient.contained[0].partOf.reference")]


def test_a_stored_document_keeps_its_urn_references() -> None:
    entry = {"fullUrl": "urn:uuid:1", "resource": encounter("urn:uuid:2")}
    assert findings({"resourceType": "Bundle", "type": "document", "entry": [entry]}) == []


@given(st.text(max_size=80))
def test_any_text_is_judged_without_failing_and_at_most_once(reference: str) -> None:
    assert len(findings(encounter(reference))) <= 1


@given(st.from_regex(r"[A-Za-z0-9\-.]{1,64}", fullmatch=True))
def test_every_fhir_id_makes_a_valid_relative_reference(resource_id: str) -> None:
    assert findings(encounter(f"Patient/{resource_id}")) == []


def test_references_are_found_in_one_walk_and_located_when_asked() -> None:
    """Every Reference, a contained resource's and a primitive's extension's too, but no uri
    element called ``reference``; each located, in the path the resource was given, only
    when asked."""
    patient = {
        "resourceType": "Patient",
        "_birthDate": {"extension": [{"url": "http://e.example", "valueReference": {"reference": "Patient/e"}}]},
        "link": [{"other": {"reference": "Patient/b"}, "type": "seealso"}],
        "contained": [{"resourceType": "Patient", "id": "c", "link": [{"other": {"reference": "Patient/d"}}]}],
        "managingOrganization": {"reference": "Organization/o", "_display": {"extension": []}},
        "extension": [{"url": "http://e.example", "valueUri": "x", "reference": "not/a-reference", "more": 1}],
    }
    references = References(patient, "Bundle.entry[2].resource")
    assert sorted((node["reference"], references.where(node)) for node in references) == [
        ("Organization/o", "Bundle.entry[2].resource.managingOrganization.reference"),
        ("Patient/b", "Bundle.entry[2].resource.link[0].other.reference"),
        ("Patient/d", "Bundle.entry[2].resource.contained[0].link[0].other.reference"),
        ("Patient/e", "Bundle.entry[2].resource.birthDate.extension[0].valueReference.reference"),
    ]
    contained = References(patient["contained"][0], "")
    assert [contained.where(node) for node in contained] == ["Patient.link[0].other.reference"]
