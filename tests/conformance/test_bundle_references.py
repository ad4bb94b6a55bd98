"""Reference resolution inside Bundles by the R4 rules (bundle.html#references): version-specific
references drop the version, match the fullUrl, then need that meta.versionId; relative
references resolve against the referring entry's RESTful base; an unresolved urn:uuid is an
error where the Bundle is processed whole (document, transaction, batch) and, as the reference
validator reports it, a warning in a collection."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.bundle_index import BundleIndex
from conformance.validator import Validator

BASE = "http://example.org/fhir"
SUBJECT = "Bundle.entry[1].resource.subject.reference"


def bundle(kind: str, reference: str, version: str | None = "2") -> dict[str, Any]:
    patient: dict[str, Any] = {"resourceType": "Patient", "id": "1", "active": True}
    if version:
        patient["meta"] = {"versionId": version}
    observation = {
        "resourceType": "Observation",
        "id": "o1",
        "status": "final",
        "code": {"text": "血压"},
        "subject": {"reference": reference},
    }
    return {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [
            {"fullUrl": f"{BASE}/Patient/1", "resource": patient},
            {"fullUrl": f"{BASE}/Observation/o1", "resource": observation},
        ],
    }


def at_subject(validator: Validator, document: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i.severity, i.message_id) for i in validator.validate(document) if i.expression == SUBJECT]


@pytest.mark.parametrize("reference", [f"{BASE}/Patient/1/_history/2", "Patient/1/_history/2", "Patient/1"])
def test_version_specific_and_plain_references_resolve(validator: Validator, reference: str) -> None:
    assert at_subject(validator, bundle("transaction", reference)) == []


def test_a_reference_to_another_version_does_not_resolve(validator: Validator) -> None:
    issues = at_subject(validator, bundle("transaction", "Patient/1/_history/1"))
    assert issues == [("error", "rule.reference-version-unresolved")]


def test_a_version_specific_reference_needs_the_entry_version(validator: Validator) -> None:
    issues = at_subject(validator, bundle("transaction", f"{BASE}/Patient/1/_history/2", version=None))
    assert issues == [("error", "rule.reference-version-unresolved")]


@pytest.mark.parametrize(
    ("kind", "severity"), [("collection", "warning"), ("searchset", "warning"), ("batch", "error")]
)
def test_unresolved_urn_uuid_severity_follows_the_bundle_type(validator: Validator, kind: str, severity: str) -> None:
    issues = at_subject(validator, bundle(kind, "urn:uuid:2b1c8a40-6f55-4d5f-8f0e-9d1f3d6b1a11"))
    assert issues == [(severity, "rule.reference-unresolved")]


def test_an_unresolved_urn_in_a_primitives_extension_is_located_as_the_validator_locates_it(
    validator: Validator,
) -> None:
    """``_status`` is ``status`` in FHIRPath, where the base walk and the stored-reference
    check locate what is in it: an issue at ``._status`` named no element a client knew."""
    document = bundle("transaction", "Patient/1")
    site = {"url": "http://hl7.org/fhir/StructureDefinition/bodySite", "valueReference": {"reference": "urn:uuid:1"}}
    document["entry"][1]["resource"]["_status"] = {"extension": [site]}
    issues = [(i.message_id, i.expression) for i in validator.validate(document) if i.message_id.startswith("rule.")]
    assert issues == [
        ("rule.reference-unresolved", "Bundle.entry[1].resource.status.extension[0].valueReference.reference")
    ]


def test_relative_reference_resolves_against_the_referring_entry_base(validator: Validator) -> None:
    document = bundle("transaction", "Patient/1")
    document["entry"][0]["fullUrl"] = "http://elsewhere.org/fhir/Patient/1"
    document["entry"].append({"fullUrl": f"{BASE}/Patient/1", "resource": {"resourceType": "Patient", "id": "1"}})
    assert BundleIndex(document).find("Patient/1", f"{BASE}/Observation/o1") == 2


@settings(max_examples=200, deadline=None)
@given(reference=st.text(max_size=60), full_url=st.none() | st.text(max_size=60))
def test_any_reference_text_resolves_or_not_without_raising(reference: str, full_url: str | None) -> None:
    index = BundleIndex(bundle("collection", "Patient/1"))
    assert index.find(reference, full_url) in (None, 0, 1)
