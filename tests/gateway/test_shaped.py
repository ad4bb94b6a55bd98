"""``_summary`` and ``_elements`` cut a resource down (gateway/fhir/search.py ``shaped``), never
below what its type requires."""

from __future__ import annotations

from typing import Any

import pytest

from gateway.fhir.search import shaped

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "bp",
    "meta": {"versionId": "1"},
    "text": {"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">血压</div>'},
    "status": "final",
    "code": {"text": "血压"},
    "subject": {"reference": "Patient/zhang-xiuying"},
    "valueQuantity": {"value": 132, "unit": "mmHg"},
    "note": [{"text": "晨起测量"}],
}


@pytest.mark.parametrize(
    ("summary", "elements", "expected"),
    [
        ("text", [], ["code", "id", "meta", "resourceType", "status", "text"]),
        (None, ["subject"], ["code", "id", "meta", "resourceType", "status", "subject"]),
    ],
)
def test_a_subset_keeps_the_types_mandatory_elements(
    summary: str | None, elements: list[str], expected: list[str]
) -> None:
    assert sorted(shaped(OBSERVATION, summary, elements)) == expected


def test_an_included_resource_stays_whole_unless_its_type_is_named() -> None:
    """_elements=subject emptied the Patients an _include added."""
    assert shaped(OBSERVATION, None, ["subject"], matched=False) == OBSERVATION


def test_an_element_qualified_by_its_type_cuts_an_included_resource() -> None:
    kept = shaped(OBSERVATION, None, ["subject", "Observation.note"], matched=False)
    assert sorted(kept) == ["code", "id", "meta", "note", "resourceType", "status"]


@pytest.mark.parametrize("named", ["value", "Observation.value"])
def test_a_choice_element_is_named_by_its_base_name(named: str) -> None:
    """R4 asks for base element names: ``_elements=value`` was refused, and a client cannot
    know which of value[x]'s types each match carries."""
    assert sorted(shaped(OBSERVATION, None, [named])) == [
        "code",
        "id",
        "meta",
        "resourceType",
        "status",
        "valueQuantity",
    ]


def test_a_subset_is_marked_subsetted() -> None:
    assert shaped(OBSERVATION, "text", [])["meta"]["tag"][-1]["code"] == "SUBSETTED"


def test_summary_true_keeps_the_elements_the_definitions_mark_summary() -> None:
    """Observation.subject and value[x] are summary elements in R4; text and note are not."""
    assert sorted(shaped(OBSERVATION, "true", [])) == [
        "code",
        "id",
        "meta",
        "resourceType",
        "status",
        "subject",
        "valueQuantity",
    ]


def test_summary_true_cuts_backbone_elements_down_to_their_summary_children() -> None:
    component = {"code": {"text": "收缩压"}, "valueQuantity": {"value": 132}, "interpretation": [{"text": "高"}]}
    observation = {**OBSERVATION, "component": [component]}
    assert shaped(observation, "true", [])["component"] == [
        {"code": {"text": "收缩压"}, "valueQuantity": {"value": 132}}
    ]
