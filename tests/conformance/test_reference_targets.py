"""Reference target types from the R4 base model, as the reference validator checks them
(REFERENCE_REF_BADTARGETTYPE, an error): the type comes from the reference text, from the
contained resource or Bundle entry it resolves to, or from Reference.type."""

from __future__ import annotations

import copy
import gc
import weakref
from typing import Any

import pytest

from conformance.validator import Validator

SUBJECT = "Observation.subject"


def observation(subject: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "血压"}, "subject": subject, **extra}


def target_errors(validator: Validator, resource: dict[str, Any]) -> list[str]:
    return [i.expression for i in validator.validate(resource) if i.message_id == "reference.target-type"]


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "Patient/1"},
        {"reference": "http://example.org/fhir/Patient/1/_history/2"},
        {"reference": "Patient?identifier=urn:oid:2.16.156.10011.1.3|410105194912310020"},
        {"type": "Patient", "identifier": {"value": "1"}},
        {"reference": "http://example.org/somewhere"},
    ],
)
def test_a_reference_to_an_allowed_or_unknown_type_passes(validator: Validator, subject: dict[str, Any]) -> None:
    assert target_errors(validator, observation(subject)) == []


@pytest.mark.parametrize(
    "subject",
    [
        {"reference": "Organization/1"},
        {"reference": "http://example.org/fhir/Organization/1"},
        {"reference": "Organization?identifier=x|1"},
        {"type": "Organization", "identifier": {"value": "1"}},
    ],
)
def test_a_reference_to_a_type_the_element_does_not_allow_is_an_error(
    validator: Validator, subject: dict[str, Any]
) -> None:
    assert target_errors(validator, observation(subject)) == [SUBJECT]


def test_a_contained_target_is_judged_by_its_resource_type(validator: Validator) -> None:
    contained = [{"resourceType": "Organization", "id": "o", "name": "中心"}]
    resource = observation({"reference": "#o"}, contained=contained)
    assert target_errors(validator, resource) == [SUBJECT]


def test_a_bundle_entry_target_is_judged_by_its_resource_type(validator: Validator) -> None:
    entries = [
        {"fullUrl": "urn:uuid:1b4e28ba-2fa1-4d2e-9b1a-000000000001", "resource": {"resourceType": "Patient"}},
        {"fullUrl": "urn:uuid:1b4e28ba-2fa1-4d2e-9b1a-000000000002", "resource": {"resourceType": "Organization"}},
    ]
    entries.append(
        {
            "fullUrl": "urn:uuid:1b4e28ba-2fa1-4d2e-9b1a-000000000003",
            "resource": observation({"reference": entries[1]["fullUrl"]}),
        }
    )
    bundle = {"resourceType": "Bundle", "type": "collection", "entry": entries}
    assert target_errors(validator, bundle) == ["Bundle.entry[2].resource.subject"]


# -- targetProfile: a target the instance holds must meet the profile the reference names --------
def _encounter_bundle(patient: dict[str, Any]) -> dict[str, Any]:
    from tests.conftest import load_example

    encounter = load_example("yy-encounter/valid-home-visit.json")
    encounter["subject"] = {"reference": "urn:uuid:7f0e1c1e-2c55-4b7c-9b9e-1a2b3c4d5e6f"}
    for element in ("participant", "serviceProvider"):
        encounter.pop(element)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"fullUrl": "urn:uuid:7f0e1c1e-2c55-4b7c-9b9e-1a2b3c4d5e6f", "resource": patient},
            {"fullUrl": "urn:uuid:0b5d3f7a-3f1e-4d7c-8a55-6f7e8d9c0b1a", "resource": encounter},
        ],
    }


def _target_profile_errors(validator: Validator, patient: dict[str, Any]) -> list[str]:
    issues = validator.validate(_encounter_bundle(patient))
    return [i.expression for i in issues if i.message_id == "profile.reference-target-profile"]


def test_a_bundled_target_meeting_the_target_profile_passes(validator: Validator, patient: dict[str, Any]) -> None:
    assert _target_profile_errors(validator, patient) == []


def test_a_bundled_target_failing_the_target_profile_is_an_error(validator: Validator) -> None:
    bare = {"resourceType": "Patient", "id": "bare", "gender": "female"}
    assert _target_profile_errors(validator, bare) == ["Bundle.entry[1].resource.subject"]


def test_a_reference_type_disagreeing_with_the_reference_is_an_error(validator: Validator) -> None:
    """R4: when Reference.type and a FHIR URL reference are both given, both SHALL be consistent."""
    resource = observation({"reference": "Patient/1", "type": "Group"})
    assert [i.expression for i in validator.validate(resource) if i.message_id == "reference.type-mismatch"] == [
        "Observation.subject.type"
    ]


# -- a target validated on its own: a transaction's Patient, then its Encounters ------------------
def _visit_of(patient: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """The example home visit, its subject resolving (as the gateway's resolver does) to this
    very Patient."""
    from tests.conftest import load_example

    encounter = load_example("yy-encounter/valid-home-visit.json")
    encounter["subject"] = {"reference": f"Patient/{patient['id']}"}
    return encounter, {f"Patient/{patient['id']}": patient}.get


def _applications_to(validator: Validator, monkeypatch: pytest.MonkeyPatch, target: dict[str, Any]) -> list[str]:
    """The profiles the walk applies to ``target`` from now on (the real walk, counted)."""
    applied: list[str] = []
    walk = validator.profiles._apply_profile

    def counted(profile: Any, value: Any, *rest: Any) -> None:
        if value is target:
            applied.append(profile.url)
        walk(profile, value, *rest)

    monkeypatch.setattr(validator.profiles, "_apply_profile", counted)
    return applied


def test_a_target_validated_on_its_own_is_not_judged_again(
    validator: Validator, patient: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert not [i for i in validator.validate(patient) if i.is_error]
    encounter, resolve = _visit_of(patient)
    applied = _applications_to(validator, monkeypatch, patient)
    issues = validator.validate(encounter, elsewhere=resolve)
    assert not [i for i in issues if i.message_id == "profile.reference-target-profile"]
    assert applied == []


def test_a_target_failing_its_own_profile_fails_the_target_profile_too(
    validator: Validator, patient: dict[str, Any]
) -> None:
    del patient["identifier"]
    assert [i for i in validator.validate(patient) if i.message_id == "profile.cardinality-min"]
    encounter, resolve = _visit_of(patient)
    issues = validator.validate(encounter, elsewhere=resolve)
    assert [i.expression for i in issues if i.message_id == "profile.reference-target-profile"] == ["Encounter.subject"]


def test_a_contained_resource_meeting_a_profile_leaves_no_verdict_for_others(
    validator: Validator, patient: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Inside a container %rootResource is the container: its verdict there is not the one a
    reference to it as a resource of its own asks for, so that one is worked out anew."""
    patient["id"] = "held"
    container = {
        "resourceType": "Basic",
        "code": {"text": "记录"},
        "contained": [patient],
        "subject": {"reference": "#held"},
    }
    validator.validate(container)
    encounter, resolve = _visit_of(patient)
    applied = _applications_to(validator, monkeypatch, patient)
    validator.validate(encounter, elsewhere=resolve)
    assert applied == ["http://fhir.yiyang.cn/StructureDefinition/yy-patient"]


def test_the_targets_judged_for_references_are_kept_alive_only_up_to_a_bound(
    validator: Validator, patient: dict[str, Any]
) -> None:
    """A worker validating visits of ever new people must not keep every person it resolved:
    each verdict on a target profile holds its target, and at 50,000 a worker held as many."""
    from conformance.profile_walker import VERDICT_LIMIT

    class Stored(dict):  # a plain dict, but one a weak reference can watch
        pass

    encounter, _ = _visit_of(patient)
    watched: list[weakref.ref[Stored]] = []
    for index in range(VERDICT_LIMIT + 500):
        person = Stored(copy.deepcopy(patient), id=f"p{index}")
        watched.append(weakref.ref(person))
        encounter["subject"] = {"reference": f"Patient/p{index}"}
        issues = validator.validate(encounter, elsewhere={f"Patient/p{index}": person}.get)
        assert not [i for i in issues if i.is_error]
        del person
    gc.collect()
    assert sum(ref() is not None for ref in watched) <= VERDICT_LIMIT
