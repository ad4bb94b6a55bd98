"""A worker's validator serves for days: what it remembers between instances must stay bounded
whatever the instances name.  Clients send any code system, value set or extension URL they
like, and a memo keeping an entry for each grew a worker's memory with every new one."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conformance.terminology import SYSTEMS_KEPT
from conformance.validator import Validator
from profiles.registry import Registry

#: resources validated per test: more than any memo here may keep
COUNT = SYSTEMS_KEPT + 500


def kept(holder: object) -> int:
    """The entries an object keeps in its containers (those inside a tuple attribute too)."""
    total = 0
    for value in vars(holder).values():
        for part in value if isinstance(value, tuple) else (value,):
            if isinstance(part, (dict, set, list)):
                total += len(part)
    return total


def coding_of_a_new_system(index: int) -> dict[str, Any]:
    return {"resourceType": "Basic", "code": {"coding": [{"system": f"http://example.org/cs/{index}", "code": "x"}]}}


def answer_from_a_new_value_set(index: int) -> dict[str, Any]:
    question = {"linkId": "q", "text": "问", "type": "choice", "answerValueSet": f"http://example.org/vs/{index}"}
    return {
        "resourceType": "QuestionnaireResponse",
        "contained": [{"resourceType": "Questionnaire", "id": "q", "status": "active", "item": [question]}],
        "questionnaire": "#q",
        "status": "completed",
        "item": [{"linkId": "q", "text": "问", "answer": [{"valueCoding": {"system": "urn:x", "code": "a"}}]}],
    }


def extension_of_a_new_url(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "code": {"text": "记录"},
        "extension": [{"url": f"http://example.org/ext/{index}", "valueString": "x"}],
    }


def extension_of_a_new_value(index: int) -> dict[str, Any]:
    return {
        "resourceType": "Basic",
        "code": {"text": "记录"},
        "extension": [{"url": "http://example.org/ext/bed", "valueString": f"{index}床"}],
    }


@pytest.fixture(scope="module")
def validator() -> Validator:
    return Validator(Registry())


@pytest.mark.parametrize(
    ("make", "holder"),
    [
        (coding_of_a_new_system, lambda v: v.terminology),
        (answer_from_a_new_value_set, lambda v: v.terminology),
        (extension_of_a_new_url, lambda v: v.structure.extensions),
        (extension_of_a_new_value, lambda v: v.structure),
    ],
    ids=["code systems", "value sets", "extension URLs", "extensions' findings"],
)
def test_what_a_validator_keeps_does_not_grow_with_each_new_name_instances_use(
    validator: Validator, make: Callable[[int], dict[str, Any]], holder: Callable[[Validator], object]
) -> None:
    validator.validate(make(-1))  # what the first of them keeps for good (the definitions it read)
    before = kept(holder(validator))
    for index in range(COUNT):
        validator.validate(make(index))
    assert kept(holder(validator)) - before <= SYSTEMS_KEPT
